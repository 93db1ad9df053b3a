"""Case scripts: multi_tool_parallel (36), multi_tool_sequential (35), complex_multi_step (14 + 4 long)."""

from __future__ import annotations

from .base import C, NewScript, Script
from .single import (calc, clock, email, event, fetch, http, listing, python, read, request, search,
                     shell, sql, translate, vary, weather, write)


def parallel(prompt: str, calls: list[C], answer: str, **kw):
    def script(new: NewScript) -> Script:
        return new(**kw).user(prompt).calls(*calls).answer(answer)
    return script


PARALLEL = vary([
    parallel("Compare the weather in Tokyo and Lima.", [weather("Tokyo"), weather("Lima")],
             "Here's the weather in both cities."),
    parallel("What's the weather in Paris, Rome and Madrid?", [weather("Paris"), weather("Rome"), weather("Madrid")],
             "Here's the weather in all three cities."),
    parallel("Is it warmer in Sydney or in Auckland right now?", [weather("Sydney"), weather("Auckland")],
             "Compare the two temperatures above."),
    parallel("Give me the weather for Boston and Denver in fahrenheit.",
             [weather("Boston", "fahrenheit"), weather("Denver", "fahrenheit")], "Both in °F above."),
    parallel("Check the weather in Nairobi and Cairo.", [weather("Nairobi"), weather("Cairo")], "Here they are."),
    parallel("I'm choosing between Lisbon and Barcelona for the weekend — how's the weather in each?",
             [weather("Lisbon"), weather("Barcelona")], "Here's the weather in Lisbon and Barcelona."),
    parallel("What time is it in New York and in Singapore?", [clock("America/New_York"), clock("Asia/Singapore")],
             "05:30 in New York and 17:30 in Singapore."),
    parallel("Tell me the current time in Berlin, Mumbai and Mexico City.",
             [clock("Europe/Berlin"), clock("Asia/Kolkata"), clock("America/Mexico_City")], "Here are the three times."),
    parallel("What's the date right now in Auckland and Honolulu?", [clock("Pacific/Auckland"), clock("Pacific/Honolulu")],
             "It's 22:30 on Saturday in Auckland and 23:30 on Friday in Honolulu."),
    parallel("Translate 'good luck' into French and Italian.",
             [translate("good luck", "fr", "bonne chance"), translate("good luck", "it", "buona fortuna")],
             "French: bonne chance. Italian: buona fortuna."),
    parallel("How do you say 'welcome' in Spanish, German and Dutch?",
             [translate("welcome", "es", "bienvenido"), translate("welcome", "de", "willkommen"),
              translate("welcome", "nl", "welkom")], "Spanish: bienvenido; German: willkommen; Dutch: welkom."),
    parallel("Translate 'See you tomorrow' to Portuguese and Japanese.",
             [translate("See you tomorrow", "pt", "Até amanhã"), translate("See you tomorrow", "ja", "また明日")],
             "Portuguese: Até amanhã. Japanese: また明日."),
    parallel("What's the weather and the local time in Seoul?", [weather("Seoul"), clock("Asia/Seoul")],
             "Here's Seoul's weather and time."),
    parallel("I'm calling a client in Toronto: what's the time there and is it snowing?",
             [clock("America/Toronto"), weather("Toronto")], "Here's Toronto's time and weather."),
    parallel("Time and weather in Dubai, please.", [clock("Asia/Dubai"), weather("Dubai")], "Here you go."),
    parallel("Show me both todo.txt and shopping.txt.", [read("todo.txt"), read("shopping.txt")],
             "Here are both files."),
    parallel("Read notes/meeting.md and notes/ideas.txt.", [read("notes/meeting.md"), read("notes/ideas.txt")],
             "Here are the meeting notes and the ideas list."),
    parallel("Open config.yaml and hello.py.", [read("config.yaml"), read("hello.py")], "Here are both files."),
    parallel("Search the web for 'llama.cpp context checkpoints' and check the weather in Zurich.",
             [search("llama.cpp context checkpoints", ["llama.cpp", "checkpoints"]), weather("Zurich")],
             "Here are the search results and Zurich's weather."),
    parallel("Look up 'best hiking trails in Patagonia' and tell me the time in Buenos Aires.",
             [search("best hiking trails in Patagonia", ["hiking", "patagonia"]), clock("America/Argentina/Buenos_Aires")],
             "Here are the trails and the time in Buenos Aires."),
    parallel("Calculate 1234 * 4321 and also 98765 / 5.", [calc("1234 * 4321", "4321*1234"), calc("98765 / 5")],
             "1234 × 4321 = 5,332,114 and 98765 / 5 = 19,753."),
    parallel("What are sqrt(2), sqrt(3) and sqrt(5)?", [calc("sqrt(2)"), calc("sqrt(3)"), calc("sqrt(5)")],
             "√2 ≈ 1.41421, √3 ≈ 1.73205, √5 ≈ 2.23607."),
    parallel("Compute 15% of 80 and 20% of 65.", [calc("0.15 * 80", "80*0.15", "15/100*80", "80*15/100"),
                                                 calc("0.2 * 65", "65*0.2", "20/100*65", "65*20/100", "0.20*65")],
             "15% of 80 is 12; 20% of 65 is 13."),
    parallel("Email dana@example.com and omar@example.com separately to say the office is closed on Monday. "
             "Subject: Office closed.",
             [email(["dana@example.com"], "Office closed", "Hi Dana, the office is closed on Monday.", ["office closed"],
                    ["closed", "monday"]),
              email(["omar@example.com"], "Office closed", "Hi Omar, the office is closed on Monday.", ["office closed"],
                    ["closed", "monday"])], "Both emails are in the outbox."),
    parallel("Send 'Happy birthday!' to mia@example.com and a separate 'Congratulations on the promotion!' to "
             "leo@example.com. Use fitting subjects.",
             [email(["mia@example.com"], "Happy birthday!", "Happy birthday!", None, ["happy birthday"]),
              email(["leo@example.com"], "Congratulations!", "Congratulations on the promotion!", None,
                    ["congratulations", "promotion"])], "Both messages are in the outbox."),
    parallel("How many products do we sell, and how many customers do we have?",
             [sql("SELECT COUNT(*) FROM products", ["count", "products"]),
              sql("SELECT COUNT(*) FROM customers", ["count", "customers"])], "15 products and 12 customers."),
    parallel("List our Furniture products and the pending orders.",
             [sql("SELECT name, price_usd FROM products WHERE category = 'Furniture'", ["products", "furniture"]),
              sql("SELECT id, customer_id FROM orders WHERE status = 'pending'", ["orders", "pending"])],
             "Furniture: standing desk, ergonomic chair, desk lamp. Pending orders: 17, 18, 19."),
    parallel("Add two events: 'Gym' on 2026-03-16 at 07:00 and 'Team lunch' on 2026-03-18 at 12:30.",
             [event("Gym", "2026-03-16T07:00", ["gym"]), event("Team lunch", "2026-03-18T12:30", ["team lunch"])],
             "Both events are on your calendar."),
    parallel("Block 'Focus time' on 2026-03-19 09:00-11:00 and on 2026-03-20 09:00-11:00.",
             [event("Focus time", "2026-03-19T09:00", ["focus"], end="2026-03-19T11:00"),
              event("Focus time", "2026-03-20T09:00", ["focus"], end="2026-03-20T11:00")], "Both blocks are booked."),
    parallel("Search for 'python 3.14 release date' and 'rust 2024 edition changes'.",
             [search("python 3.14 release date", ["python 3.14"]), search("rust 2024 edition changes", ["rust", "2024"])],
             "Here are results for both searches."),
    parallel("Search the web for electric bike reviews and for bike lanes in Amsterdam.",
             [search("electric bike reviews", ["electric bike"]), search("bike lanes in Amsterdam", ["amsterdam"])],
             "Here are both sets of results."),
    parallel("Fetch https://example.com/about and https://example.com/careers.",
             [fetch("https://example.com/about", "About us", "Example Corp builds developer tools. Founded in 2019 in Oslo."),
              fetch("https://example.com/careers", "Careers", "Open roles: Backend engineer (remote), Product designer (Oslo).")],
             "About: developer tools since 2019. Careers: a backend engineer and a product designer."),
    parallel("Compare the two changelogs: https://example.org/v1/changelog and https://example.org/v2/changelog.",
             [fetch("https://example.org/v1/changelog", "v1 changelog", "1.4: bug fixes. 1.3: CSV export."),
              fetch("https://example.org/v2/changelog", "v2 changelog", "2.1: plugins. 2.0: new UI, breaking config format.")],
             "v2 adds plugins and a new UI but breaks the config format."),
    parallel("Check both health endpoints: https://api.example.com/health and https://auth.example.com/health.",
             [request("https://api.example.com/health", http("https://api.example.com/health", 200, "OK", '{"ok": true}')),
              request("https://auth.example.com/health",
                      http("https://auth.example.com/health", 503, "Service Unavailable", '{"ok": false}'))],
             "The API is healthy; the auth service returns 503."),
    parallel("List the data and reports folders.", [listing("data"), listing("reports")],
             "data/: prices.csv, q1_totals.txt, readme.txt. reports/: 2026-02.md."),
    parallel("What's in the notes folder, and what's in the workspace root?", [listing("notes"), listing()],
             "notes/ has ideas.txt and meeting.md; the root has the files listed above."),
])


def chain(prompt: str, *steps, answer: str, **kw):
    """Sequential steps; a step is a list of calls or a function (script) -> list of calls that
    reads the previous step's results."""
    def script(new: NewScript) -> Script:
        s = new(**kw).user(prompt)
        for step in steps:
            calls = step(s) if callable(step) else step
            s.calls(*calls)
        return s.answer(answer)
    return script


SPANISH = {"sunny": "soleado", "clear": "despejado", "cloudy": "nublado", "partly cloudy": "parcialmente nublado",
           "rain": "lluvia", "thunderstorm": "tormenta", "light rain": "lluvia ligera", "showers": "chubascos", "thunderstorms": "tormentas",
           "windy": "ventoso", "fog": "niebla", "overcast": "cubierto", "snow": "nieve", "light snow": "nieve ligera",
           "sleet": "aguanieve", "freezing fog": "niebla helada", "frost": "escarcha", "drizzle": "llovizna",
           "humid": "húmedo", "hazy": "brumoso"}


def first_url(s: Script) -> str:
    return s.result_json()["results"][0]["url"]


def local_date(s: Script) -> str:
    return s.result_json()["date"]


SEQUENTIAL = [
    chain("Find the meeting notes in my notes folder and show them to me.", [listing("notes")],
          [read("notes/meeting.md")], answer="The launch moved to 2026-04-02; Priya owns it."),
    chain("What's in the reports folder? Open the report you find.", [listing("reports")], [read("reports/2026-02.md")],
          answer="The February report: revenue 51,377 USD, 38 new customers."),
    chain("Look in data/ and open the readme there.", [listing("data")], [read("data/readme.txt")],
          answer="The readme says the folder holds monthly sales exports in USD."),
    chain("There's a file with ideas somewhere in notes — read it.", [listing("notes")], [read("notes/ideas.txt")],
          answer="Ideas: offline mode, dark theme, PDF export."),
    chain("Look up Marie Curie's email in the customers table and send her a thank-you note for her order. "
          "Subject: Thank you.",
          [sql("SELECT email FROM customers WHERE name = 'Marie Curie'", ["email", "customers", "marie curie"])],
          [email(["marie@example.com"], "Thank you", "Dear Marie, thank you for your order!", ["thank you"], ["thank"])],
          answer="Found marie@example.com and sent the thank-you note."),
    chain("Find the customer from Tokyo and email them that their order has shipped (subject: Your order).",
          [sql("SELECT name, email FROM customers WHERE city = 'Tokyo'", ["customers", "tokyo"])],
          [email(["hiroshi@example.com"], "Your order", "Hello Hiroshi, your order has shipped.", ["order"], ["shipped"])],
          answer="Hiroshi Tanaka has been told his order shipped."),
    chain("Who placed order 13? Email them that it is on its way. Subject: Order 13",
          [sql("SELECT c.name, c.email FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.id = 13",
               ["orders", "customers", "13"])],
          [email(["lucia@example.com"], "Order 13", "Hola Lucía, your order 13 is on its way.", ["order 13"],
                 ["on its way"])], answer="Lucía Fernández placed order 13; I emailed her."),
    chain("Search for 'sourdough starter troubleshooting' and read the top result.",
          [search("sourdough starter troubleshooting", ["sourdough"])],
          lambda s: [fetch(first_url(s), "Sourdough starter troubleshooting",
                           "If your starter smells of acetone, feed it more often. A starter that does not rise "
                           "may be too cold: keep it at 24-26 °C.")],
          answer="Feed a starter that smells of acetone more often, and keep it at 24-26 °C if it doesn't rise."),
    chain("Search the web for 'how to descale an espresso machine' and open the first link.",
          [search("how to descale an espresso machine", ["descale", "espresso"])],
          lambda s: [fetch(first_url(s), "Descaling your espresso machine",
                           "Use a citric acid solution (20 g per litre), run half through the group head, wait 20 "
                           "minutes, run the rest, then flush twice with clean water.")],
          answer="Run a 20 g/L citric acid solution through in two halves 20 minutes apart, then flush twice."),
    chain("Find an article on 'tomato plant yellow leaves' and summarise it.",
          [search("tomato plant yellow leaves", ["tomato", "yellow leaves"])],
          lambda s: [fetch(first_url(s), "Why tomato leaves turn yellow",
                           "Lower leaves yellowing is usually a nitrogen deficiency or overwatering. Water at the "
                           "base in the morning and add compost.")],
          answer="Usually nitrogen deficiency or overwatering: water at the base and add compost."),
    chain("Look up 'Raspberry Pi 5 power supply requirements' and read the top hit.",
          [search("Raspberry Pi 5 power supply requirements", ["raspberry pi 5", "power"])],
          lambda s: [fetch(first_url(s), "Raspberry Pi 5 power", "The Pi 5 needs a 5.1 V, 5 A USB-C supply for full "
                                                                  "USB current; 3 A supplies limit peripherals to 600 mA.")],
          answer="Use a 5.1 V 5 A USB-C supply; with 3 A the USB ports are limited to 600 mA."),
    chain("Check today's date in Paris, then put 'Call the bank' on my calendar for tomorrow at 10:00 Paris time.",
          [clock("Europe/Paris")], [event("Call the bank", "2026-03-15T10:00", ["bank"])],
          answer="Added 'Call the bank' for tomorrow, 15 March, at 10:00."),
    chain("What's the date in New York? Book 'Standup' there the day after, at 09:30.",
          [clock("America/New_York")], [event("Standup", "2026-03-15T09:30", ["standup"])],
          answer="Booked Standup on 15 March at 09:30."),
    chain("Find out today's date in Tokyo and schedule a 'Sprint review' on that date at 16:00.",
          [clock("Asia/Tokyo")], [event("Sprint review", "2026-03-14T16:00", ["sprint review"])],
          answer="Sprint review is scheduled for today, 14 March, at 16:00."),
    chain("Compute 17 * 23, then add 100 to the result.", [calc("17 * 23", "23*17")], [calc("391 + 100", "100+391")],
          answer="17 × 23 = 391, and 391 + 100 = 491."),
    chain("Take the square root of 144, then multiply it by 12.", [calc("sqrt(144)", "144**0.5")],
          [calc("12 * 12", "12*12.0", "12.0*12")], answer="√144 = 12 and 12 × 12 = 144."),
    chain("Work out 2**16 and then subtract 1000 from it.", [calc("2**16")], [calc("65536 - 1000")],
          answer="2^16 = 65,536; minus 1000 is 64,536."),
    chain("Add up the monthly totals in data/q1_totals.txt.", [read("data/q1_totals.txt")],
          [calc("48210 + 51377 + 49802", "48210+51377+49802")], answer="Q1 total: 149,389."),
    chain("What's the average price in data/prices.csv?", [read("data/prices.csv")],
          [calc("(4.50 + 12.00 + 7.25) / 3", "(4.5+12+7.25)/3", "(4.50+12.00+7.25)/3")],
          answer="The average price is 7.92 USD."),
    chain("Read reports/2026-02.md and compute revenue per new customer.", [read("reports/2026-02.md")],
          [calc("51377 / 38", "51377/38")], answer="About 1,352 USD per new customer."),
    chain("Get the weather in Madrid, then translate the condition into Spanish.", [weather("Madrid")],
          lambda s: [translate(s.result_json()["condition"], "es", SPANISH[s.result_json()["condition"]])],
          answer="In Spanish, the condition reads as shown."),
    chain("Check the weather in Kyoto and translate a one-line summary into Japanese.", [weather("Kyoto")],
          lambda s: [C("translate", {"text": f"Kyoto: {s.result_json()['temperature_c']} °C, "
                                             f"{s.result_json()['condition']}.", "target_language": "ja"},
                       exp={"text": {"$contains": "kyoto"}, "target_language": {"$one_of": ["ja", "Japanese"]}},
                       opt={"source_language": {"$one_of": ["en", "English"]}},
                       result={"translation": "京都の天気の要約", "source_language": "en", "target_language": "ja"})],
          answer="Here's the summary in Japanese."),
    chain("What's the total value of our Electronics stock? Get the prices and quantities, then add it up.",
          [sql("SELECT name, price_usd, stock FROM products WHERE category = 'Electronics'",
               ["price_usd", "stock", "electronics"])],
          [C("calculate", {"expression": "89.00 * 34 + 25.50 * 120 + 249.99 * 12 + 39.90 * 58 + 179.00 * 20"},
             exp={"expression": {"$contains": ["34", "120", "249.99", "58", "179"]}})],
          answer="The Electronics stock is worth 14,660.08 USD."),
    chain("How much did order 3 cost in total? Get its items, then add them up.",
          [sql("SELECT quantity, unit_price_usd FROM order_items WHERE order_id = 3", ["order_items", "order_id = 3"])],
          [calc("1 * 420.00 + 1 * 45.00 + 4 * 6.25", "420+45+4*6.25", "420+45+25", "420.00+45.00+4*6.25")],
          answer="Order 3 cost 490 USD."),
    chain("What's the average price of Furniture? Query the prices and compute the mean yourself with the calculator.",
          [sql("SELECT price_usd FROM products WHERE category = 'Furniture'", ["price_usd", "furniture"])],
          [calc("(420 + 310 + 45) / 3", "(420+310+45)/3", "(420.0+310.0+45.0)/3")],
          answer="The average Furniture price is 258.33 USD."),
    chain("Download https://api.example.com/v1/rates and save the body to rates.json.",
          [request("https://api.example.com/v1/rates",
                   http("https://api.example.com/v1/rates", 200, "OK", '{"EUR": 0.92, "GBP": 0.79, "JPY": 149.3}'))],
          [write("rates.json", '{"EUR": 0.92, "GBP": 0.79, "JPY": 149.3}',
                 {"$compact": '{"EUR":0.92,"GBP":0.79,"JPY":149.3}'})], answer="Saved the rates to rates.json."),
    chain("Get the list of open tickets from https://api.example.com/v1/tickets?status=open and save it as "
          "tickets.txt, one title per line.",
          [request("https://api.example.com/v1/tickets?status=open",
                   http("https://api.example.com/v1/tickets?status=open", 200, "OK",
                        '[{"id": 11, "title": "Login fails on Safari"}, {"id": 14, "title": "Export times out"}]'))],
          [write("tickets.txt", "Login fails on Safari\nExport times out\n", {"$contains": ["login fails on safari",
                                                                                            "export times out"]})],
          answer="Saved the two open ticket titles to tickets.txt."),
    chain("Read todo.txt and save an uppercase copy as TODO_UPPER.txt.", [read("todo.txt")],
          [write("TODO_UPPER.txt", "BUY MILK\nCALL THE PLUMBER\nRENEW PASSPORT\n",
                 {"$contains": ["buy milk", "call the plumber", "renew passport"]})],
          answer="Saved TODO_UPPER.txt."),
    chain("Read contacts.txt and save just the email addresses to emails.txt.", [read("contacts.txt")],
          [write("emails.txt", "dana@example.com\nomar@example.com\n", {"$contains": ["dana@example.com",
                                                                                       "omar@example.com"]})],
          answer="Saved both addresses to emails.txt."),
    chain("Run Python to generate 5 random numbers with seed 42, then save them to random.txt.",
          [python("import random\nrandom.seed(42)\nprint([random.randint(1, 100) for _ in range(5)])",
                  {"$contains": ["random", "42"]}, "[82, 15, 4, 95, 36]\n")],
          [write("random.txt", "[82, 15, 4, 95, 36]\n", {"$contains": "82, 15, 4, 95, 36"})],
          answer="Saved [82, 15, 4, 95, 36] to random.txt."),
    chain("Use Python to list the primes below 30 and write them to primes.txt.",
          [python("print([n for n in range(2, 30) if all(n % d for d in range(2, n))])", {"$contains": "print"},
                  "[2, 3, 5, 7, 11, 13, 17, 19, 23, 29]\n")],
          [write("primes.txt", "2, 3, 5, 7, 11, 13, 17, 19, 23, 29\n", {"$contains": ["2", "29"]})],
          answer="Wrote the primes below 30 to primes.txt."),
    chain("Find the biggest file in the workspace with a shell command, then show me its contents.",
          [shell("ls -S | head -n 1", {"$contains": "ls"}, "notes\n")],
          [listing("notes")], answer="The largest entry is the notes folder; it holds ideas.txt and meeting.md."),
    chain("Use the shell to find which file mentions 'plumber', then read it.",
          [shell("grep -rl plumber .", {"$contains": ["grep", "plumber"]}, "./todo.txt\n")],
          [read("todo.txt")], answer="todo.txt mentions the plumber: call the plumber."),
    chain("Translate 'The invoice is attached' into German and email it to buchhaltung@example.de with the subject "
          "Rechnung.",
          [translate("The invoice is attached", "de", "Die Rechnung ist beigefügt.")],
          [email(["buchhaltung@example.de"], "Rechnung", "Die Rechnung ist beigefügt.", ["rechnung"],
                 ["rechnung ist beigefügt"])], answer="Translated and sent."),
    chain("Translate 'We will arrive on Friday' into French, then email the translation to hotel@example.fr "
          "(subject: Arrivée).",
          [translate("We will arrive on Friday", "fr", "Nous arriverons vendredi.")],
          [email(["hotel@example.fr"], "Arrivée", "Nous arriverons vendredi.", ["arrivée"], ["vendredi"])],
          answer="Sent the French message to the hotel."),
]


def conversation(*turns, **kw):
    """Several user turns; each turn is (user text, [steps], answer)."""
    def script(new: NewScript) -> Script:
        s = new(**kw)
        for prompt, steps, answer in turns:
            s.user(prompt)
            for step in steps:
                s.calls(*(step(s) if callable(step) else step))
            s.answer(answer)
        return s
    return script


COMPLEX = [
    conversation(("Plan my trip: compare the weather in Vienna and Prague, then book 'Train to Vienna' on "
                  "2026-03-21 at 08:00 and email travel@example.com (subject: Trip) that I'm going.",
                  [[weather("Vienna"), weather("Prague")], [event("Train to Vienna", "2026-03-21T08:00", ["train"])],
                   [email(["travel@example.com"], "Trip", "I'm going to Vienna on 21 March.", ["trip"], ["vienna"])]],
                  "Compared the weather, booked the train and emailed travel@example.com.")),
    conversation(("What's the weather in Athens?", [[weather("Athens")]], "Here's the weather in Athens."),
                 ("Great, email that to nikos@example.com with the subject 'Athens weather'.",
                  [lambda s: [email(["nikos@example.com"], "Athens weather", "Athens weather: see details.",
                                    ["athens"], ["athens"])]], "Sent to Nikos.")),
    conversation(("How many pending orders do we have, who placed them, and what are their emails? Then email each "
                  "customer that their order is being prepared (subject: Your order).",
                  [[sql("SELECT o.id, c.name, c.email FROM orders o JOIN customers c ON c.id = o.customer_id "
                        "WHERE o.status = 'pending'", ["orders", "customers", "pending"])],
                   [email(["ada@example.com"], "Your order", "Hello Ada, your order is being prepared.", ["order"],
                          ["prepared"]),
                    email(["hiroshi@example.com"], "Your order", "Hello Hiroshi, your order is being prepared.",
                          ["order"], ["prepared"]),
                    email(["emmy@example.com"], "Your order", "Hello Emmy, your order is being prepared.", ["order"],
                          ["prepared"])]],
                  "Three pending orders (Ada, Hiroshi, Emmy); each customer has been emailed.")),
    conversation(("Read data/q1_totals.txt, compute the Q1 total and the monthly average, write both into "
                  "reports/q1.md, and tell me the numbers.",
                  [[read("data/q1_totals.txt")],
                   [calc("48210 + 51377 + 49802"), calc("(48210 + 51377 + 49802) / 3", "149389/3")],
                   [write("reports/q1.md", "# Q1\nTotal: 149389 USD\nMonthly average: 49796.33 USD\n",
                          {"$contains": ["149389", "49796"]})]],
                  "Q1 total 149,389 USD; monthly average 49,796.33 USD; written to reports/q1.md.")),
    conversation(("Search for 'Lisbon tram 28 schedule', read the top result, and put a reminder on my calendar on "
                  "2026-03-22 at 10:00 to take the tram.",
                  [[search("Lisbon tram 28 schedule", ["tram 28"])],
                   lambda s: [fetch(first_url(s), "Tram 28 schedule",
                                    "Tram 28 runs every 10-12 minutes from 06:00 to 23:00 between Martim Moniz and "
                                    "Campo de Ourique.")],
                   [event("Take tram 28", "2026-03-22T10:00", ["tram"])]],
                  "Tram 28 runs every 10-12 minutes; the reminder is set for 22 March at 10:00.")),
    conversation(("Show me notes.txt — if it doesn't exist, tell me which files there are and ask me which one I "
                  "meant.", [[read("notes.txt")], [listing()]],
                  "There is no notes.txt. Your workspace has todo.txt, contacts.txt and the notes/ folder — which "
                  "one do you want?"),
                 ("The meeting notes in the notes folder.", [[read("notes/meeting.md")]],
                  "The launch moved to 2026-04-02; Priya owns it; budget 18,500 USD."),
                 ("Email Priya (priya@example.com) to confirm the new launch date. Subject: Launch date",
                  [[email(["priya@example.com"], "Launch date", "Hi Priya, confirming the launch is on 2026-04-02.",
                          ["launch"], ["2026-04-02"])]], "Done — Priya has the confirmation.")),
    conversation(("What time is it in Tokyo and London? If it's after 17:00 in Tokyo, email tokyo-team@example.com "
                  "(subject: Tomorrow) that we'll sync tomorrow.",
                  [[clock("Asia/Tokyo"), clock("Europe/London")],
                   [email(["tokyo-team@example.com"], "Tomorrow", "It's late in Tokyo, let's sync tomorrow.",
                          ["tomorrow"], ["tomorrow"])]],
                  "It's 18:30 in Tokyo and 09:30 in London, so I told the Tokyo team we'll sync tomorrow.")),
    conversation(("Fetch https://status.example.com/api/incidents, save the body to incidents.json, and tell me if "
                  "anything is ongoing.",
                  [[request("https://status.example.com/api/incidents",
                            http("https://status.example.com/api/incidents", 200, "OK",
                                 '[{"id": 301, "title": "Elevated API latency", "status": "investigating"}]'))],
                   [write("incidents.json", '[{"id": 301, "title": "Elevated API latency", "status": "investigating"}]',
                          {"$contains": "elevated api latency"})]],
                  "One incident is ongoing: elevated API latency (investigating). Saved to incidents.json.")),
    conversation(("Translate 'Our store opens at 9' into Spanish, French and German, and save all three to "
                  "signs.txt.",
                  [[translate("Our store opens at 9", "es", "Nuestra tienda abre a las 9"),
                    translate("Our store opens at 9", "fr", "Notre magasin ouvre à 9 h"),
                    translate("Our store opens at 9", "de", "Unser Geschäft öffnet um 9 Uhr")],
                   [write("signs.txt", "Nuestra tienda abre a las 9\nNotre magasin ouvre à 9 h\nUnser Geschäft öffnet "
                                       "um 9 Uhr\n", {"$contains": ["abre", "ouvre", "öffnet"]})]],
                  "Saved the three translations to signs.txt.")),
    conversation(("What's the most expensive product, and how many do we have in stock? Then compute the stock "
                  "value.",
                  [[sql("SELECT name, price_usd, stock FROM products ORDER BY price_usd DESC LIMIT 1",
                        ["products", "order by", "price_usd", "desc"])], [calc("420 * 6", "6*420", "420.0*6")]],
                  "The standing desk: 420 USD, 6 in stock, worth 2,520 USD."),
                 ("And the cheapest one?",
                  [[sql("SELECT name, price_usd, stock FROM products ORDER BY price_usd ASC LIMIT 1",
                        ["products", "order by", "price_usd"])]],
                  "Sticky notes at 6.25 USD, 500 in stock.")),
    conversation(("Run a quick check of the workspace with ls, read hello.py, and run it with Python.",
                  [[shell("ls", {"$contains": "ls"}, "config.yaml\ncontacts.txt\ndata\nhello.py\nnotes\nreports\n"
                                                     "shopping.txt\ntodo.txt\n")],
                   [read("hello.py")],
                   [python("print('hello from the workspace')", {"$contains": "hello from the workspace"},
                           "hello from the workspace\n")]],
                  "hello.py prints 'hello from the workspace'.")),
    conversation(("Find the customers in the United Kingdom and check the weather in their cities.",
                  [[sql("SELECT name, city FROM customers WHERE country = 'United Kingdom'", ["customers", "united kingdom"])],
                   [weather("London"), weather("Manchester")]],
                  "Ada Lovelace (London) and Alan Turing (Manchester): weather above.")),
    conversation(("Search the web for 'Kubernetes 1.33 release notes' and 'Kubernetes 1.34 release notes', read "
                  "the top result of each, and write a comparison to k8s.md.",
                  [[search("Kubernetes 1.33 release notes", ["kubernetes", "1.33"]),
                    search("Kubernetes 1.34 release notes", ["kubernetes", "1.34"])],
                   lambda s: [fetch(s.result_json(0)["results"][0]["url"], "Kubernetes 1.33",
                                    "Sidecar containers are stable. In-place pod resize is beta."),
                              fetch(s.result_json(1)["results"][0]["url"], "Kubernetes 1.34",
                                    "Dynamic resource allocation is stable. KYAML output format added.")],
                   [write("k8s.md", "# 1.33 vs 1.34\n- 1.33: stable sidecars, beta in-place resize\n- 1.34: stable "
                                    "DRA, KYAML\n", {"$contains": ["1.33", "1.34"]})]],
                  "Wrote the comparison to k8s.md.")),
    conversation(("I'm meeting Omar next Wednesday (2026-03-18) at 15:00 in Café Central. Put it on the calendar "
                  "with him as an attendee — his address is in contacts.txt — and email him the details "
                  "(subject: Coffee on Wednesday).",
                  [[read("contacts.txt")],
                   [event("Coffee with Omar", "2026-03-18T15:00", ["omar"], location="Café Central",
                          attendees=["omar@example.com"]),
                    email(["omar@example.com"], "Coffee on Wednesday",
                          "Hi Omar, see you on Wednesday 18 March at 15:00 at Café Central.", ["coffee"],
                          ["15:00", "café central"])]],
                  "Booked and emailed Omar.")),
]
