"""The demo tools without network or code execution: registry and schemas, workspace files and
their sandbox, calculator, database, outbox/calendar, simulated tools, date and time."""

from __future__ import annotations

import hashlib
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from smol_tools.tools import (
    DANGEROUS_TOOLS,
    DEMO_WORKSPACE,
    Tool,
    ToolError,
    ToolRegistry,
    ToolResult,
    ToolSession,
    ToolSettings,
    default_registry,
)
from smol_tools.tools.calculator import evaluate_expression
from smol_tools.tools.database import demo_database_path

EXPECTED_NAMES = [
    "web_search", "get_webpage", "execute_python", "read_file", "write_file", "list_directory",
    "send_email", "get_current_datetime", "calculate", "translate", "get_weather",
    "create_calendar_event", "database_query", "http_request", "shell_command",
]  # fmt: skip
SCRIPTED = Path(__file__).parent / "fixtures" / "scripted_conversations.json"
FIXED_NOW = datetime(2026, 11, 24, 12, 5, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def registry() -> ToolRegistry:
    return default_registry()


@pytest.fixture(scope="module")
def db_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("db-cache")


@pytest.fixture
def session(tmp_path, db_cache) -> ToolSession:
    settings = ToolSettings(cache_dir=db_cache, clock=lambda: FIXED_NOW)
    return ToolSession.create(root=tmp_path, settings=settings)


def run(registry: ToolRegistry, session: ToolSession, name: str, **arguments) -> ToolResult:
    return registry.execute(name, arguments, session)


def error_of(result: ToolResult) -> str:
    assert result.is_error, result.content
    return json.loads(result.content)["error"]


# --- registry and schemas ---------------------------------------------------------------------


def test_registry_exposes_exactly_the_15_tools(registry):
    assert registry.names() == EXPECTED_NAMES
    assert [schema["function"]["name"] for schema in registry.schemas()] == EXPECTED_NAMES
    assert DANGEROUS_TOOLS == {"execute_python", "shell_command", "http_request", "get_webpage"}
    assert all(registry.get(name).dangerous == (name in DANGEROUS_TOOLS) for name in EXPECTED_NAMES)
    assert registry.get("nope") is None and registry.get(None) is None


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_schema_is_valid_tight_and_canonically_ordered(registry, name):
    schema = registry.get(name).schema()
    assert list(schema) == ["type", "function"] and schema["type"] == "function"
    assert list(schema["function"]) == ["name", "description", "parameters"]
    assert len(schema["function"]["description"]) > 20
    parameters = schema["function"]["parameters"]
    Draft202012Validator.check_schema(parameters)
    expected_order = ["type", "properties"] + (["required"] if "required" in parameters else [])
    assert list(parameters)[: len(expected_order)] == expected_order
    assert parameters["type"] == "object" and parameters["additionalProperties"] is False
    assert set(parameters.get("required", [])) <= set(parameters["properties"])
    for prop_name, prop in parameters["properties"].items():
        assert list(prop)[:2] == ["type", "description"], (name, prop_name)
        if prop["type"] == "string" and "enum" not in prop:
            assert "maxLength" in prop, (name, prop_name)
        if prop["type"] == "integer":
            assert "minimum" in prop and "maximum" in prop, (name, prop_name)
        if prop["type"] == "array":
            assert "maxItems" in prop and list(prop["items"])[0] == "type"
    # The schema survives a JSON round trip unchanged (what the runtimes do with it).
    assert json.loads(json.dumps(schema)) == schema


def test_schemas_enabled_filter_keeps_registry_order(registry):
    picked = registry.schemas(enabled=["calculate", "web_search"])
    assert [s["function"]["name"] for s in picked] == ["web_search", "calculate"]
    with pytest.raises(ValueError, match="unknown tool names: bogus"):
        registry.schemas(enabled=["bogus"])


def test_schema_returns_a_copy(registry):
    registry.schemas()[0]["function"]["parameters"]["properties"].clear()
    assert registry.schemas()[0]["function"]["parameters"]["properties"]


def test_scripted_demo_calls_fit_our_schemas(registry):
    """The tiny test model's tool calls (its memorized arguments) are valid for the real tools."""
    calls = []
    for conversation in json.loads(SCRIPTED.read_text(encoding="utf-8"))["conversations"]:
        for message in conversation.get("messages", []):
            for call in message.get("message", message).get("tool_calls") or []:
                function = call.get("function", call)
                arguments = function["arguments"]
                calls.append((function["name"], json.loads(arguments) if isinstance(arguments, str) else arguments))
    assert calls
    for name, arguments in calls:
        Draft202012Validator(registry.get(name).schema()["function"]["parameters"]).validate(arguments)


def test_execute_never_raises(registry, session):
    assert "unknown tool: nope" in error_of(run(registry, session, "nope"))
    assert "must be a JSON object" in error_of(registry.execute("calculate", ["1+1"], session))
    assert "not of type 'string'" in error_of(run(registry, session, "calculate", expression=5))
    assert "'expression' is a required property" in error_of(run(registry, session, "calculate"))
    # the registry's RE2-backed validator words it in lower case ('extra' unexpected)
    assert "additional properties are not allowed ('extra'" in error_of(
        run(registry, session, "calculate", expression="1", extra=1))
    assert "is not one of" in error_of(run(registry, session, "get_weather", city="Oslo", unit="kelvin"))

    def explode(arguments, session):
        raise RuntimeError("secret internals")

    broken = ToolRegistry([Tool("boom", "Always fails.", {"type": "object", "properties": {}}, explode)])
    message = error_of(broken.execute("boom", {}, session))
    assert message == "internal error in tool boom: RuntimeError" and "secret" not in message


def test_registry_caps_result_length(session):
    def chatty(arguments, session):
        return ToolResult(content="x" * 50_000)

    registry = ToolRegistry([Tool("chatty", "Talks a lot.", {"type": "object", "properties": {}}, chatty)])
    session.settings.max_result_chars = 1000
    result = registry.execute("chatty", {}, session)
    assert len(result.content) < 1100 and result.content.endswith("more characters]")


def test_duplicate_tool_names_rejected():
    tool = Tool("t", "A tool.", {"type": "object", "properties": {}}, lambda a, s: ToolResult("ok"))
    with pytest.raises(ValueError, match="duplicate"):
        ToolRegistry([tool, tool])


# --- sessions ---------------------------------------------------------------------------------


def test_sessions_get_fresh_private_workspaces(tmp_path):
    first, second = ToolSession.create(root=tmp_path), ToolSession.create(root=tmp_path)
    assert first.workspace != second.workspace
    for session in (first, second):
        assert session.workspace.is_dir() and not any(session.workspace.iterdir())
        assert (session.workspace.stat().st_mode & 0o777) == 0o700
        assert session.outbox == [] and session.calendar == []
    first.cleanup()
    assert not first.workspace.exists() and second.workspace.exists()


def test_demo_seed_matches_the_scripted_world(registry, tmp_path):
    session = ToolSession.create(root=tmp_path, settings=ToolSettings(workspace_seed=DEMO_WORKSPACE))
    assert run(registry, session, "list_directory", path=".").content == '["todo.txt"]'
    assert run(registry, session, "read_file", path="todo.txt").content == "buy milk"
    assert run(registry, session, "read_file", path="notes.txt").content == '{"error": "file not found: notes.txt"}'
    assert (session.workspace.stat().st_mode & 0o777) == 0o700


# --- workspace files --------------------------------------------------------------------------


def test_write_read_list_append(registry, session):
    written = run(registry, session, "write_file", path="notes/today.md", content="héllo\n")
    assert not written.is_error and json.loads(written.content)["bytes_written"] == 7
    assert run(registry, session, "write_file", path="notes/today.md", content="more\n", mode="append").data["mode"] == "append"
    assert run(registry, session, "read_file", path="notes/today.md").content == "héllo\nmore\n"
    assert run(registry, session, "read_file", path="./notes//today.md").content == "héllo\nmore\n"
    run(registry, session, "write_file", path="top.txt", content="x")
    listing = run(registry, session, "list_directory")
    assert json.loads(listing.content) == ["notes/", "top.txt"]
    assert {entry["name"]: entry["type"] for entry in listing.data["entries"]} == {"notes": "directory", "top.txt": "file"}
    assert json.loads(run(registry, session, "list_directory", path="notes").content) == ["today.md"]
    run(registry, session, "write_file", path="top.txt", content="replaced")
    assert run(registry, session, "read_file", path="top.txt").content == "replaced"
    assert not [p for p in session.workspace.rglob("*.tmp")]  # atomic writes leave no temp files


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("../etc/passwd", "path escapes the workspace: ../etc/passwd"),
        ("notes/../../secret", "path escapes the workspace"),
        ("..", "path escapes the workspace"),
        ("/etc/passwd", "absolute paths are not allowed"),
        ("//etc/passwd", "absolute paths are not allowed"),
        ("C:\\Windows\\win.ini", "backslashes are not allowed"),
        ("C:/Windows/win.ini", "drive letter"),
        ("..\\..\\etc\\passwd", "backslashes are not allowed"),
        ("notes\\x.txt", "backslashes are not allowed"),
        ("a\x00b", "NUL byte"),
        ("bad\nname", "control characters"),
        ("x" * 300, "longer than 200 bytes"),
    ],
)
def test_paths_outside_the_rules_are_refused(registry, session, path, message):
    for name, extra in (("read_file", {}), ("write_file", {"content": "x"}), ("list_directory", {})):
        assert message in error_of(run(registry, session, name, path=path, **extra))
    assert not any(session.workspace.iterdir())


def test_percent_encoded_dots_are_literal_names_inside(registry, session):
    assert not run(registry, session, "write_file", path="%2e%2e/%2e%2e/x.txt", content="inside").is_error
    assert (session.workspace / "%2e%2e" / "%2e%2e" / "x.txt").read_text() == "inside"
    assert run(registry, session, "read_file", path="%2e%2e/%2e%2e/x.txt").content == "inside"


def test_symlinks_are_never_followed(registry, session, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("top secret")
    ws = session.workspace
    os.symlink("/etc", ws / "etc_link")
    os.symlink("/etc/passwd", ws / "passwd_link")
    os.symlink(outside, ws / "out_dir")
    os.symlink(outside / "secret.txt", ws / "secret_link")
    (ws / "real.txt").write_text("fine")
    os.symlink("real.txt", ws / "inner_link")  # even links that stay inside are refused
    passwd_before = hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest()

    assert "symlink" in error_of(run(registry, session, "read_file", path="etc_link/passwd"))
    assert "symlink" in error_of(run(registry, session, "read_file", path="passwd_link"))
    assert "symlink" in error_of(run(registry, session, "read_file", path="secret_link"))
    assert "symlink" in error_of(run(registry, session, "read_file", path="out_dir/secret.txt"))
    assert "symlink" in error_of(run(registry, session, "read_file", path="inner_link"))
    assert "symlink" in error_of(run(registry, session, "list_directory", path="etc_link"))
    assert "symlink" in error_of(run(registry, session, "list_directory", path="out_dir"))
    assert "symlink" in error_of(run(registry, session, "write_file", path="passwd_link", content="pwned"))
    assert "symlink" in error_of(run(registry, session, "write_file", path="passwd_link", content="x", mode="append"))
    assert "symlink" in error_of(run(registry, session, "write_file", path="out_dir/new.txt", content="pwned"))
    assert "symlink" in error_of(run(registry, session, "write_file", path="secret_link", content="pwned"))

    assert hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest() == passwd_before
    assert (outside / "secret.txt").read_text() == "top secret"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    listing = run(registry, session, "list_directory")
    assert {e["name"]: e["type"] for e in listing.data["entries"]}["etc_link"] == "symlink"


def test_list_directory_is_bounded(registry, session):
    for index in range(30):
        (session.workspace / f"file{index:02d}.txt").write_text("x")
    session.settings.max_directory_entries = 10
    names = json.loads(run(registry, session, "list_directory").content)
    assert len(names) == 11 and names[-1] == "... (20 more entries not shown)"
    session.settings.max_directory_entries = 500
    session.settings.max_result_chars = 200  # the reply budget bounds it too
    result = run(registry, session, "list_directory")
    assert len(result.content) <= 200 and json.loads(result.content)[-1].endswith("more entries not shown)")
    assert result.data["total"] == 30 and result.data["truncated"]


def test_file_size_limits(registry, session):
    session.settings.max_file_bytes = 100
    assert "the limit is 100" in error_of(run(registry, session, "write_file", path="big.txt", content="x" * 101))
    run(registry, session, "write_file", path="grow.txt", content="x" * 80)
    assert "would grow to 160" in error_of(run(registry, session, "write_file", path="grow.txt", content="y" * 80, mode="append"))
    (session.workspace / "huge.txt").write_text("z" * 1000)
    result = run(registry, session, "read_file", path="huge.txt")
    assert not result.is_error and result.data["truncated"]
    assert result.content.startswith("z" * 100 + "\n[truncated: huge.txt is 1000 bytes")


def test_workspace_quota(registry, session):
    session.settings.max_workspace_bytes = 150
    run(registry, session, "write_file", path="a.txt", content="a" * 100)
    assert "the limit is 150" in error_of(run(registry, session, "write_file", path="b.txt", content="b" * 100))
    assert not run(registry, session, "write_file", path="a.txt", content="c" * 140).is_error  # replacing frees space


def test_read_refuses_directories_binaries_and_special_files(registry, session):
    (session.workspace / "dir").mkdir()
    (session.workspace / "blob.bin").write_bytes(b"\x00\x01\xff" * 10)
    os.mkfifo(session.workspace / "fifo")
    assert "is a directory" in error_of(run(registry, session, "read_file", path="dir"))
    assert "binary file" in error_of(run(registry, session, "read_file", path="blob.bin"))
    started = time.monotonic()
    assert "not a regular file" in error_of(run(registry, session, "read_file", path="fifo"))
    assert time.monotonic() - started < 1  # opening a FIFO must not block
    assert "not a regular file" in error_of(run(registry, session, "write_file", path="fifo", content="x"))
    assert "is a directory" in error_of(run(registry, session, "write_file", path="dir", content="x"))
    assert "not found" in error_of(run(registry, session, "list_directory", path="missing"))
    assert "not a directory" in error_of(run(registry, session, "list_directory", path="blob.bin"))


# --- calculate --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("17 * 23", "391"),
        ("391 + 100", "491"),
        ("2 + 3 * 4 ** 2", "50"),
        ("(2 + 3) * 4", "20"),
        ("-7 // 2", "-4"),
        ("7 % 3", "1"),
        ("1 / 4", "0.25"),
        ("0.1 + 0.2", "0.3"),
        ("sqrt(16)", "4"),
        ("2 ** -1", "0.5"),
        ("round(pi, 4)", "3.1416"),
        ("log(8, 2)", "3"),
        ("max(3, 9, 4) - min(1, 2)", "8"),
        ("factorial(20)", "2432902008176640000"),
        ("2 ** 100", "1267650600228229401496703205376"),
        ("6 × 7 − 2 ÷ 2", "41"),
        ("hypot(3, 4)", "5"),
    ],
)
def test_calculate(registry, session, expression, expected):
    result = run(registry, session, "calculate", expression=expression)
    assert not result.is_error and result.content == expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os')", "unsupported function call: __import__"),
        ("__import__('os').system('id')", "unsupported function call"),
        ("().__class__.__bases__[0]", "unsupported syntax"),
        ("os.system('id')", "unsupported function call"),
        ("x + 1", "unknown name: x"),
        ("'a' * 3", "unsupported literal"),
        ("lambda: 1", "unsupported syntax"),
        ("[1, 2]", "unsupported syntax"),
        ("True + 1", "unsupported literal: True"),
        ("1j * 2", "unsupported literal"),
        ("2 ^ 8", "use ** for powers"),
        ("1 < 2", "unsupported syntax"),
        ("1 / 0", "division by zero"),
        ("5 % 0", "division by zero"),
        ("sqrt(-1)", "math error"),
        ("sqrt(1, 2)", "wrong arguments for sqrt()"),
        ("round(2.5, ndigits=1)", "positional arguments only"),
        ("1e308 * 10", "not a finite number"),
        ("1 +", "not a valid arithmetic expression"),
        ("9**9**9", "result too large"),
        ("2 ** 100000", "result too large"),
        ("(10 ** 3000) * (10 ** 3000)", "result too large"),
        ("factorial(100000)", "factorial() accepts whole numbers from 0 to 1000"),
        ("exp(1000)", "result too large"),
        ("2.0 ** 5000", "result too large"),
        ("(" * 150 + "1" + ")" * 150, ""),
    ],
)
def test_calculate_refuses(registry, session, expression, message):
    started = time.monotonic()
    result = run(registry, session, "calculate", expression=expression)
    assert time.monotonic() - started < 0.5  # refused quickly, nothing huge computed
    if message:
        assert message in error_of(result)
    else:  # deep nesting: either evaluated or refused, never a crash
        assert result.content == "1" or result.is_error


def test_calculate_never_uses_eval(monkeypatch):
    import builtins

    def forbidden(*args, **kwargs):
        raise AssertionError("eval/exec used")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    assert evaluate_expression("2 * (3 + 4)") == 14
    with pytest.raises(ToolError):
        evaluate_expression("__import__('os')")


# --- database_query ---------------------------------------------------------------------------


def query(registry, session, sql: str) -> ToolResult:
    return run(registry, session, "database_query", query=sql)


def test_database_select_returns_json_rows(registry, session):
    result = query(registry, session, "SELECT id, name, city FROM customers WHERE country = 'France' ORDER BY id")
    assert not result.is_error
    data = json.loads(result.content)
    assert data["columns"] == ["id", "name", "city"]
    assert data["rows"] == [{"id": 5, "name": "Marie Curie", "city": "Paris"}]
    assert data["row_count"] == 1 and data["truncated"] is False


def test_database_joins_aggregates_ctes_and_schema_pragmas(registry, session):
    revenue = query(
        registry,
        session,
        """-- revenue per category
        WITH lines AS (SELECT p.category, i.quantity * i.unit_price_usd AS amount
                       FROM order_items i JOIN products p ON p.id = i.product_id
                       JOIN orders o ON o.id = i.order_id WHERE o.status != 'cancelled')
        SELECT category, ROUND(SUM(amount), 2) AS revenue FROM lines GROUP BY category ORDER BY revenue DESC""",
    )
    rows = json.loads(revenue.content)["rows"]
    assert rows[0]["category"] == "Electronics" and len(rows) == 5
    info = json.loads(query(registry, session, "PRAGMA table_info(orders)").content)
    assert [row["name"] for row in info["rows"]] == ["id", "customer_id", "order_date", "status"]
    recursive = query(registry, session, "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 5) SELECT x FROM n")
    assert [row["x"] for row in json.loads(recursive.content)["rows"]] == [1, 2, 3, 4, 5]
    duplicate = json.loads(query(registry, session, "SELECT 1 AS a, 2 AS a").content)
    assert duplicate["columns"] == ["a", "a_2"]


def test_database_row_cap(registry, session):
    session.settings.db_max_rows = 5
    data = json.loads(query(registry, session, "SELECT * FROM order_items").content)
    assert data["row_count"] == 5 and data["truncated"] is True


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO customers (name, email, city, country, signup_date) VALUES ('x', 'x@example.com', 'x', 'x', '2025-01-01')",
        "UPDATE products SET price_usd = 0",
        "DELETE FROM orders",
        "DROP TABLE customers",
        "CREATE TABLE evil (x)",
        "ALTER TABLE customers ADD COLUMN x",
        "ATTACH DATABASE '/tmp/smol-tools-evil.db' AS evil",
        "  /* sneaky */ ATTACH DATABASE ':memory:' AS evil",
        "VACUUM INTO '/tmp/smol-tools-evil.db'",
        "PRAGMA user_version = 7",
        "PRAGMA journal_mode = WAL",
        "PRAGMA writable_schema = ON",
        "SELECT load_extension('/tmp/evil.so')",
        "WITH t AS (SELECT 1) INSERT INTO products (id, name, category, price_usd, stock) SELECT 99, 'x', 'x', 1, 1 FROM t",
        "WITH t AS (SELECT 1) DELETE FROM orders",
        "SELECT 1; DROP TABLE customers",
        "BEGIN",
        "REINDEX",
        "ANALYZE",
    ],
)
def test_database_refuses_writes_and_escapes(registry, session, sql):
    path = demo_database_path(session.settings)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    message = error_of(query(registry, session, sql))
    assert any(word in message for word in ("read-only", "not authorized", "only read-only", "one statement")), message
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert not Path("/tmp/smol-tools-evil.db").exists()
    assert json.loads(query(registry, session, "SELECT COUNT(*) AS n FROM customers").content)["rows"] == [{"n": 12}]


def test_database_time_and_size_limits(registry, session):
    session.settings.db_timeout_s = 0.3
    started = time.monotonic()
    message = error_of(query(registry, session, "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT MAX(x) FROM n"))
    assert "longer than 0.3 s" in message and time.monotonic() - started < 3
    assert "SQL error" in error_of(query(registry, session, "SELECT length(randomblob(100000000))"))
    assert "SQL error" in error_of(query(registry, session, "SELECT nosuchcolumn FROM customers"))


def test_database_is_built_once_atomically(tmp_path):
    settings = ToolSettings(cache_dir=tmp_path / "cache")
    first = demo_database_path(settings)
    mtime = first.stat().st_mtime_ns
    assert demo_database_path(settings) == first and first.stat().st_mtime_ns == mtime
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [first.name]  # no partial files left
    assert first.name.startswith("demo-") and first.suffix == ".sqlite3"


def test_database_result_fits_the_reply_budget(registry, session):
    session.settings.max_result_chars = 1500
    result = query(registry, session, "SELECT * FROM order_items")
    data = json.loads(result.content)  # still valid JSON, rows dropped instead of cut mid-way
    assert len(result.content) <= 1500 and data["truncated"] and 0 < data["row_count"] < 34


# --- send_email / create_calendar_event -------------------------------------------------------


def test_send_email_goes_to_the_session_outbox_only(registry, session):
    result = run(registry, session, "send_email", to=["ada@example.com"], subject="Hello", body="See you at 3.", cc=["bob@example.org"])
    data = json.loads(result.content)
    assert data["status"] == "stored" and data["delivered"] is False and "nothing was sent" in data["note"]
    assert session.outbox == [
        {
            "id": "msg-1",
            "to": ["ada@example.com"],
            "cc": ["bob@example.org"],
            "subject": "Hello",
            "body": "See you at 3.",
            "created_at": "2026-11-24T12:05:00+00:00",
            "delivered": False,
        }
    ]
    assert "does not match" in error_of(run(registry, session, "send_email", to=["not an address"], subject="x", body="x"))
    assert "does not match" in error_of(run(registry, session, "send_email", to=["a@example.com"], subject="x\r\nBcc: evil@example.com", body="x"))
    assert "should be non-empty" in error_of(run(registry, session, "send_email", to=[], subject="x", body="x"))
    assert len(session.outbox) == 1


def test_outbox_is_bounded(registry, session):
    session.settings.max_outbox_items = 2
    for _ in range(2):
        assert not run(registry, session, "send_email", to=["a@example.com"], subject="s", body="b").is_error
    assert "outbox is full" in error_of(run(registry, session, "send_email", to=["a@example.com"], subject="s", body="b"))


def test_calendar_events(registry, session):
    first = json.loads(run(registry, session, "create_calendar_event", title="Standup", start="2026-03-14T09:30", duration_minutes=15).content)
    assert (first["start"], first["end"], first["status"]) == ("2026-03-14T09:30", "2026-03-14T09:45", "created")
    assert "no invitations were sent" in first["note"]
    run(registry, session, "create_calendar_event", title="Lunch", start="2026-03-14T12:00+01:00", end="2026-03-14T13:30+01:00", location="Café", attendees=["ada@example.com"])
    assert [event["title"] for event in session.calendar] == ["Standup", "Lunch"]
    assert session.calendar[1]["end"] == "2026-03-14T13:30+01:00" and session.calendar[1]["location"] == "Café"
    assert "ISO 8601" in error_of(run(registry, session, "create_calendar_event", title="x", start="next tuesday"))
    assert "end after it starts" in error_of(run(registry, session, "create_calendar_event", title="x", start="2026-03-14T10:00", end="2026-03-14T09:00"))
    assert "both have" in error_of(run(registry, session, "create_calendar_event", title="x", start="2026-03-14T10:00", end="2026-03-14T11:00Z"))
    assert len(session.calendar) == 2


# --- simulated tools --------------------------------------------------------------------------


def test_weather_is_deterministic_and_marked_simulated(registry, session, tmp_path):
    first = json.loads(run(registry, session, "get_weather", city="Paris").content)
    other_session = ToolSession.create(root=tmp_path)
    assert json.loads(run(registry, other_session, "get_weather", city="  paris ").content)["temperature_c"] == first["temperature_c"]
    assert first["simulated"] is True and "not real weather" in first["note"]
    assert set(first) >= {"city", "temperature_c", "condition"}
    fahrenheit = json.loads(run(registry, session, "get_weather", city="Paris", unit="fahrenheit").content)
    assert fahrenheit["temperature_f"] == round(first["temperature_c"] * 9 / 5 + 32) and "temperature_c" not in fahrenheit
    cities = {json.loads(run(registry, session, "get_weather", city=c).content)["temperature_c"] for c in ("Oslo", "Lima", "Rome", "Tokyo", "Cairo")}
    assert len(cities) > 1


def test_search_is_deterministic_and_marked_simulated(registry, session):
    first = run(registry, session, "web_search", query="solar panels", num_results=3)
    assert first.content == run(registry, session, "web_search", query="solar panels", num_results=3).content
    data = json.loads(first.content)
    assert data["simulated"] is True and "not from a real search engine" in data["note"]
    assert len(data["results"]) == 3
    assert all(r["url"].startswith(("https://example.com/", "https://example.org/", "https://example.net/")) for r in data["results"])
    assert "greater than the maximum" in error_of(run(registry, session, "web_search", query="x", num_results=50))


def test_translate_is_marked_simulated(registry, session):
    data = json.loads(run(registry, session, "translate", text="Thank you!", target_language="es").content)
    assert data == {
        "translation": "gracias",
        "source_language": "auto",
        "target_language": "es",
        "simulated": True,
        "note": "Offline demo: not a real translation service; this is from a small built-in phrasebook.",
    }
    placeholder = json.loads(run(registry, session, "translate", text="The cat sleeps.", target_language="German").content)
    assert placeholder["translation"] == "[German] The cat sleeps." and placeholder["simulated"] is True
    assert "unsupported language 'Klingon'" in error_of(run(registry, session, "translate", text="hi", target_language="Klingon"))


def test_providers_replace_the_simulations(registry, tmp_path):
    settings = ToolSettings(
        search_provider=lambda q, n: [{"title": f"real {q}", "url": "https://real.example", "snippet": ""}] * n,
        weather_provider=lambda city, unit: {"city": city, "temperature_c": 21, "condition": "sunny"},
        translate_provider=lambda text, target, source: f"{target}:{text}",
    )
    session = ToolSession.create(root=tmp_path, settings=settings)
    assert json.loads(run(registry, session, "web_search", query="q", num_results=2).content)["results"][0]["title"] == "real q"
    weather = json.loads(run(registry, session, "get_weather", city="Oslo").content)
    assert weather == {"city": "Oslo", "temperature_c": 21, "condition": "sunny", "simulated": False}
    translated = json.loads(run(registry, session, "translate", text="hi", target_language="fr").content)
    assert translated["translation"] == "fr:hi" and translated["simulated"] is False


# --- get_current_datetime ---------------------------------------------------------------------


def test_datetime_uses_the_injected_clock(registry, session):
    tokyo = json.loads(run(registry, session, "get_current_datetime", timezone="Asia/Tokyo").content)
    assert tokyo == {
        "timezone": "Asia/Tokyo",
        "datetime": "2026-11-24T21:05:00+09:00",
        "date": "2026-11-24",
        "time": "21:05:00",
        "weekday": "Tuesday",
        "utc_offset": "+09:00",
    }
    assert json.loads(run(registry, session, "get_current_datetime").content)["datetime"] == "2026-11-24T12:05:00+00:00"
    new_york = json.loads(run(registry, session, "get_current_datetime", timezone="America/New_York").content)
    assert new_york["datetime"] == "2026-11-24T07:05:00-05:00"
    session.settings.clock = lambda: datetime(2026, 7, 1, 0, 0)  # naive: taken as UTC
    assert json.loads(run(registry, session, "get_current_datetime", timezone="Europe/Paris").content)["utc_offset"] == "+02:00"


def test_real_clock_is_the_default(registry, tmp_path):
    session = ToolSession.create(root=tmp_path)
    reported = datetime.fromisoformat(json.loads(run(registry, session, "get_current_datetime").content)["datetime"])
    assert abs((reported - datetime.now(timezone.utc)).total_seconds()) < 5


@pytest.mark.parametrize("zone", ["../../etc/passwd", "/etc/localtime", "Mars/Olympus_Mons", "Europe/../UTC", "Europe\\Paris", ""])
def test_datetime_refuses_bad_zones(registry, session, zone):
    message = error_of(run(registry, session, "get_current_datetime", timezone=zone))
    assert "time zone" in message or "should be non-empty" in message
