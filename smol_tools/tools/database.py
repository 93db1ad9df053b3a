"""database_query: read-only SQL on a real SQLite database (the demo shop by default).

Three locks, any one of which stops a write: the file is opened with `mode=ro`; an authorizer
allows only reading actions (SELECT, reading columns, whitelisted functions and read-only
PRAGMAs), which also refuses ATTACH, VACUUM (it attaches), load_extension and every DDL/DML;
and the statement must start with SELECT, WITH, VALUES, EXPLAIN or PRAGMA. A progress handler
enforces a time limit, SQLite limits bound string sizes, and at most db_max_rows rows return."""

from __future__ import annotations

import base64
import hashlib
import math
import os
import re
import sqlite3
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

from .base import Tool, ToolError, ToolResult, ToolSession, ToolSettings, shorten, to_json

DATA_DIR = Path(__file__).resolve().parent / "data"
DEMO_SCRIPT = DATA_DIR / "demo_db.sql"
_build_lock = threading.Lock()

_ALLOWED_ACTIONS = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE})
_READ_ONLY_PRAGMAS = frozenset(
    {"table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo", "foreign_key_list"}
)
_DENIED_FUNCTIONS = frozenset({"load_extension", "fts3_tokenizer", "readfile", "writefile", "edit"})
_LEADING_COMMENTS = re.compile(r"^(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.DOTALL)
_READING_KEYWORDS = ("select", "with", "values", "explain", "pragma")
_MAX_VALUE_BYTES = 1_000_000
_PROGRESS_EVERY = 1000  # virtual machine instructions between deadline checks


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "smol-tools" / "tools"


def demo_database_path(settings: ToolSettings) -> Path:
    """The database to query: the operator's, or the demo built from its SQL script.

    The build goes to a temporary file renamed into place, and the name carries a hash of the
    script, so a half-built file is never opened and an edited script gets a fresh build."""
    if settings.database_path is not None:
        return Path(settings.database_path)
    script = DEMO_SCRIPT.read_bytes()
    cache_dir = Path(settings.cache_dir) if settings.cache_dir else _default_cache_dir()
    final = cache_dir / f"demo-{hashlib.sha256(script).hexdigest()[:16]}.sqlite3"
    if final.exists():
        return final
    with _build_lock:
        if final.exists():
            return final
        try:
            _build(script, cache_dir, final)
        except OSError as exc:
            raise ToolError(f"could not build the demo database ({exc.strerror}); the operator can set ToolSettings.cache_dir") from None
    return final


def _build(script: bytes, cache_dir: Path, final: Path) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=".demo-", suffix=".partial", dir=cache_dir)
    os.close(fd)
    try:
        connection = sqlite3.connect(temp_name)
        try:
            connection.executescript(script.decode("utf-8"))
            connection.commit()
        finally:
            connection.close()
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, final)  # atomic: readers see no file or the whole file
    finally:
        if os.path.exists(temp_name):
            os.unlink(temp_name)


def _authorizer(action: int, arg1: str | None, arg2: str | None, _db: str | None, _source: str | None) -> int:
    if action in _ALLOWED_ACTIONS:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_FUNCTION:  # arg2 is the function name
        return sqlite3.SQLITE_DENY if (arg2 or "").lower() in _DENIED_FUNCTIONS else sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() in _READ_ONLY_PRAGMAS:
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def _open_read_only(path: Path, deadline: float) -> sqlite3.Connection:
    if not path.is_file():
        raise ToolError("the database is not available on this server")
    uri = f"file:{quote(str(path))}?mode=ro"
    connection = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    connection.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, _MAX_VALUE_BYTES)
    connection.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, 10_000)
    connection.set_authorizer(_authorizer)
    # Returning True aborts the statement ("interrupted"): our time limit.
    connection.set_progress_handler(lambda: time.monotonic() > deadline, _PROGRESS_EVERY)
    return connection


def _json_value(value: object) -> object:
    if isinstance(value, bytes):
        return {"blob_base64": base64.b64encode(value[:64]).decode("ascii"), "bytes": len(value)}
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _column_names(description) -> list[str]:
    names: list[str] = []
    for column in description:
        name, suffix = column[0], 2
        while name in names:  # "SELECT 1 AS a, 2 AS a": keep both columns
            name, suffix = f"{column[0]}_{suffix}", suffix + 1
        names.append(name)
    return names


def run_query(query: str, settings: ToolSettings) -> dict:
    stripped = _LEADING_COMMENTS.sub("", query, count=1)
    first_word = stripped.split(None, 1)[0].lower() if stripped.strip() else ""
    if first_word.rstrip("(;") not in _READING_KEYWORDS:
        raise ToolError("only read-only queries are allowed (SELECT, WITH, VALUES, EXPLAIN, PRAGMA table_info)")
    deadline = time.monotonic() + settings.db_timeout_s
    connection = _open_read_only(demo_database_path(settings), deadline)
    try:
        cursor = connection.execute(query)
        if cursor.description is None:
            raise ToolError("the statement returned no result set")
        columns = _column_names(cursor.description)
        fetched = cursor.fetchmany(settings.db_max_rows + 1)
    except sqlite3.DatabaseError as exc:
        raise ToolError(_explain_sqlite_error(exc, settings)) from None
    except (sqlite3.Warning, sqlite3.ProgrammingError) as exc:  # e.g. several statements
        raise ToolError(f"SQL error: {exc}") from None
    finally:
        connection.close()
    truncated = len(fetched) > settings.db_max_rows
    rows = [dict(zip(columns, map(_json_value, row))) for row in fetched[: settings.db_max_rows]]
    return {"columns": columns, "rows": rows, "row_count": len(rows), "truncated": truncated}


def _explain_sqlite_error(exc: sqlite3.DatabaseError, settings: ToolSettings) -> str:
    message = str(exc)
    if message == "interrupted":
        return f"query took longer than {settings.db_timeout_s:g} s and was stopped"
    if "not authorized" in message or "readonly" in message or "read-only" in message:
        return f"refused: this database is read-only ({message})"
    return f"SQL error: {shorten(message, 300)}"


def _fit_rows(result: dict, budget: int) -> str:
    """JSON for the model within `budget` characters: drop rows from the end if needed."""
    text = to_json(result)
    if len(text) <= budget:
        return text
    rows = result["rows"]
    low, high = 0, len(rows)
    while low < high:  # the largest prefix of rows that fits
        middle = (low + high + 1) // 2
        if len(to_json({**result, "rows": rows[:middle]})) <= budget - 80:
            low = middle
        else:
            high = middle - 1
    shown = {**result, "rows": rows[:low], "row_count": low, "truncated": True}
    shown["note"] = f"only {low} of {len(rows)} fetched rows fit in the reply; narrow the query"
    return to_json(shown)


def database_query(arguments: dict, session: ToolSession) -> ToolResult:
    result = run_query(arguments["query"], session.settings)
    return ToolResult(content=_fit_rows(result, session.settings.max_result_chars), data=result)


DATABASE_QUERY = Tool(
    name="database_query",
    description=(
        "Run one read-only SQL query (SQLite dialect) on the demo shop database and get the rows "
        "as JSON. Tables: customers(id, name, email, city, country, signup_date), "
        "products(id, name, category, price_usd, stock), orders(id, customer_id, order_date, "
        "status: pending|shipped|delivered|cancelled), order_items(order_id, product_id, "
        "quantity, unit_price_usd). Dates are ISO 8601 text. At most 200 rows are returned."
    ),
    parameters={
        "type": "object",
        "properties": {
            "query": {
                "type": "string",
                "description": "A single SELECT (or WITH ... SELECT) statement.",
                "minLength": 1,
                "maxLength": 4000,
            },
        },
        "required": ["query"],
        "additionalProperties": False,
    },
    run=database_query,
)
