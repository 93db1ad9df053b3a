-- The demo shop database behind the database_query tool (built into a cache file on first use).
-- Keep the table list in sync with the tool description in smol_tools/tools/database.py.

CREATE TABLE customers (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    email       TEXT NOT NULL UNIQUE,
    city        TEXT NOT NULL,
    country     TEXT NOT NULL,
    signup_date TEXT NOT NULL  -- ISO 8601 date
);

CREATE TABLE products (
    id        INTEGER PRIMARY KEY,
    name      TEXT NOT NULL,
    category  TEXT NOT NULL,
    price_usd REAL NOT NULL,
    stock     INTEGER NOT NULL
);

CREATE TABLE orders (
    id          INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    order_date  TEXT NOT NULL,  -- ISO 8601 date
    status      TEXT NOT NULL CHECK (status IN ('pending', 'shipped', 'delivered', 'cancelled'))
);

CREATE TABLE order_items (
    order_id       INTEGER NOT NULL REFERENCES orders(id),
    product_id     INTEGER NOT NULL REFERENCES products(id),
    quantity       INTEGER NOT NULL CHECK (quantity > 0),
    unit_price_usd REAL NOT NULL,
    PRIMARY KEY (order_id, product_id)
);

INSERT INTO customers (id, name, email, city, country, signup_date) VALUES
    (1, 'Ada Lovelace', 'ada@example.com', 'London', 'United Kingdom', '2025-01-14'),
    (2, 'Alan Turing', 'alan@example.com', 'Manchester', 'United Kingdom', '2025-02-03'),
    (3, 'Grace Hopper', 'grace@example.com', 'New York', 'United States', '2025-02-21'),
    (4, 'Katherine Johnson', 'katherine@example.com', 'Hampton', 'United States', '2025-03-09'),
    (5, 'Marie Curie', 'marie@example.com', 'Paris', 'France', '2025-03-30'),
    (6, 'Emmy Noether', 'emmy@example.com', 'Göttingen', 'Germany', '2025-04-18'),
    (7, 'Hedy Lamarr', 'hedy@example.com', 'Vienna', 'Austria', '2025-05-02'),
    (8, 'Srinivasa Ramanujan', 'srinivasa@example.com', 'Chennai', 'India', '2025-05-27'),
    (9, 'Hiroshi Tanaka', 'hiroshi@example.com', 'Tokyo', 'Japan', '2025-06-15'),
    (10, 'Lucía Fernández', 'lucia@example.com', 'Madrid', 'Spain', '2025-07-08'),
    (11, 'Chidi Okafor', 'chidi@example.com', 'Lagos', 'Nigeria', '2025-08-19'),
    (12, 'Ana Souza', 'ana@example.com', 'São Paulo', 'Brazil', '2025-09-23');

INSERT INTO products (id, name, category, price_usd, stock) VALUES
    (1, 'Mechanical keyboard', 'Electronics', 89.00, 34),
    (2, 'Wireless mouse', 'Electronics', 25.50, 120),
    (3, '27-inch monitor', 'Electronics', 249.99, 12),
    (4, 'USB-C hub', 'Electronics', 39.90, 58),
    (5, 'Noise-cancelling headphones', 'Electronics', 179.00, 20),
    (6, 'Standing desk', 'Furniture', 420.00, 6),
    (7, 'Ergonomic chair', 'Furniture', 310.00, 9),
    (8, 'Desk lamp', 'Furniture', 45.00, 40),
    (9, 'Notebook (A5, dotted)', 'Stationery', 8.50, 300),
    (10, 'Fountain pen', 'Stationery', 32.00, 75),
    (11, 'Sticky notes (pack of 12)', 'Stationery', 6.25, 500),
    (12, 'Coffee beans (1 kg)', 'Pantry', 24.00, 60),
    (13, 'Green tea (100 bags)', 'Pantry', 11.00, 80),
    (14, 'Water bottle', 'Accessories', 19.99, 150),
    (15, 'Laptop backpack', 'Accessories', 69.00, 25);

INSERT INTO orders (id, customer_id, order_date, status) VALUES
    (1, 1, '2025-02-01', 'delivered'),
    (2, 2, '2025-02-15', 'delivered'),
    (3, 3, '2025-03-05', 'delivered'),
    (4, 1, '2025-03-20', 'delivered'),
    (5, 4, '2025-04-02', 'delivered'),
    (6, 5, '2025-04-11', 'cancelled'),
    (7, 6, '2025-05-06', 'delivered'),
    (8, 3, '2025-05-28', 'delivered'),
    (9, 7, '2025-06-10', 'delivered'),
    (10, 8, '2025-06-30', 'delivered'),
    (11, 9, '2025-07-14', 'delivered'),
    (12, 2, '2025-08-01', 'delivered'),
    (13, 10, '2025-08-22', 'shipped'),
    (14, 5, '2025-09-09', 'delivered'),
    (15, 11, '2025-09-30', 'shipped'),
    (16, 12, '2025-10-12', 'shipped'),
    (17, 1, '2025-10-28', 'pending'),
    (18, 9, '2025-11-03', 'pending'),
    (19, 6, '2025-11-10', 'pending'),
    (20, 4, '2025-11-18', 'cancelled');

INSERT INTO order_items (order_id, product_id, quantity, unit_price_usd) VALUES
    (1, 1, 1, 89.00), (1, 9, 3, 8.50),
    (2, 3, 2, 249.99), (2, 4, 1, 39.90),
    (3, 6, 1, 420.00), (3, 8, 1, 45.00), (3, 11, 4, 6.25),
    (4, 12, 2, 24.00), (4, 13, 1, 11.00),
    (5, 5, 1, 179.00),
    (6, 7, 1, 310.00),
    (7, 10, 2, 32.00), (7, 9, 5, 8.50),
    (8, 2, 1, 25.50), (8, 14, 2, 19.99),
    (9, 15, 1, 69.00), (9, 4, 1, 39.90),
    (10, 12, 3, 24.00),
    (11, 1, 1, 89.00), (11, 2, 1, 25.50), (11, 3, 1, 249.99),
    (12, 7, 1, 310.00),
    (13, 14, 3, 19.99), (13, 13, 2, 11.00),
    (14, 5, 1, 179.00), (14, 10, 1, 32.00),
    (15, 6, 1, 420.00),
    (16, 8, 2, 45.00), (16, 11, 10, 6.25),
    (17, 3, 1, 249.99),
    (18, 12, 1, 24.00), (18, 9, 2, 8.50),
    (19, 15, 1, 69.00),
    (20, 2, 2, 25.50);
