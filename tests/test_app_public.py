"""The app as a public service (issue 16), against real `python app.py` processes on 127.0.0.1,
driven through gradio_client and raw Gradio HTTP: one configured like a local instance with an
API key, one like a Space (SPACE_ID set, listening on every interface, picker unlocked).

Each test is one finding of the outside review: a visitor must not freeze, evict, read or steer
what belongs to others or to the operator."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.test_app_public_support import (API_KEY, HeaderRecorder, assert_no_internals, fn_index_of,
                                           public_app, raw_call, raw_queue_call, upload)
from tests.test_app_support import AppProcess, FakeOpenAI, call, client

pytestmark = pytest.mark.slow
EXPORT_FORMAT = "smol-tools-session/1"
POLICY = ["auto", True, False]  # set_options' tool_choice, parallel_tool_calls, strict (raw calls send every input)
EVIL = "^(a+)+$"  # exponential backtracking in Python's re: 2x time per extra "a"
SLOW_INPUT = "a" * 34 + "!"  # ~9 minutes of backtracking in re on this machine; microseconds in RE2
CUSTOM_LOOKUP = {"type": "function", "function": {"name": "lookup", "description": "Look codes up.", "parameters": {
    "type": "object", "properties": {"codes": {"type": "array", "items": {"type": "string", "pattern": EVIL}}}}}}


@pytest.fixture(scope="module")
def recorders():
    configured, visitor = HeaderRecorder(), HeaderRecorder()
    yield configured, visitor
    configured.close()
    visitor.close()


@pytest.fixture(scope="module")
def local_app(tiny_gguf_q8_0, recorders, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("app-tmp")
    with AppProcess("test_app_public-local", SMOL_TOOLS_API_KEY=API_KEY, SMOL_TOOLS_URL=recorders[0].url,
                    SMOL_TOOLS_MAX_SESSIONS="40", TMPDIR=str(tmp)) as app:
        app.tmp = tmp
        yield app


@pytest.fixture(scope="module")
def space_app(tiny_gguf_q8_0):
    with public_app("test_app_public-space", SPACE_ID="tests/smol-tools", SMOL_TOOLS_LOCK_BACKEND="0",
                    SMOL_TOOLS_NEW_SESSIONS_PER_MINUTE="6") as app:
        yield app


class CodeCaller(FakeOpenAI):
    """A server whose model calls the custom `lookup` tool with codes RE2 rejects in linear time
    and Python's re only after minutes."""

    def reply(self, body):
        if body["messages"][-1]["role"] == "tool":
            return self._text("Checked.")
        return self._call("lookup", {"codes": [SLOW_INPUT]})


def _export(messages: list[dict], tools: list[dict]) -> str:
    return json.dumps({"format": EXPORT_FORMAT, "messages": messages, "tools": tools, "enable_thinking": True})


def _timed(fn, *args):
    started = time.monotonic()
    result = fn(*args)
    return result, time.monotonic() - started


# -- local instance ---------------------------------------------------------------------------

def test_catastrophic_pattern_freezes_no_one(local_app) -> None:
    """Imported and sent calls are checked against a visitor's `^(a+)+$` in bounded time, and
    another session keeps answering meanwhile."""
    hash_a, hash_b = uuid.uuid4().hex, uuid.uuid4().hex
    raw_call(local_app, "status", session_hash=hash_b)
    call_message = {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function", "function": {
        "name": "lookup", "arguments": json.dumps({"codes": [SLOW_INPUT]})}}]}
    data = _export([{"role": "user", "content": "check"}, call_message,
                    {"role": "tool", "tool_call_id": "c1", "name": "lookup", "content": "ok"},
                    {"role": "assistant", "content": "done"}], [CUSTOM_LOOKUP])
    other: dict[str, float] = {}

    def probe() -> None:
        time.sleep(0.5)
        other["seconds"] = _timed(lambda: raw_call(local_app, "status", session_hash=hash_b))[1]

    watcher = threading.Thread(target=probe)
    watcher.start()
    (event, _), seconds = _timed(lambda: raw_call(local_app, "import_session", data, session_hash=hash_a, timeout=30))
    watcher.join(timeout=30)
    assert event == "complete" and seconds < 10, (event, seconds)
    assert other.get("seconds", 99) < 5, other
    _, history = raw_call(local_app, "history", session_hash=hash_a)
    checked = history[0]["calls"][0]
    assert checked["schema_ok"] is False and "does not match" in checked["problems"][0]

    # The same check during /send, for a call the model makes.
    server = CodeCaller().start()
    try:
        assert raw_call(local_app, "set_backend", "openai", "fake", server.base_url, "", session_hash=hash_a)[1]["ok"]
        (event, turn), seconds = _timed(lambda: raw_call(local_app, "send", "look up", session_hash=hash_a, timeout=30))
    finally:
        server.stop()
    assert event == "complete" and seconds < 15, (event, seconds)
    assert turn["calls"][0]["schema_ok"] is False and turn["answer"] == "Checked."


def test_lookaround_patterns_are_refused_with_a_reason(local_app) -> None:
    tool = json.loads(json.dumps(CUSTOM_LOOKUP))
    tool["function"]["parameters"]["properties"]["codes"]["items"]["pattern"] = "^(?=a)a+$"
    result = call(client(local_app), "set_tools", [], json.dumps(tool), False)
    assert not result["ok"] and "lookahead" in result["problems"][0]


def test_api_key_goes_only_to_the_configured_url(local_app, recorders) -> None:
    configured, visitor = recorders
    c = client(local_app)
    call(c, "test_connection", "openai", "m", visitor.url, "")
    assert visitor.seen and not any(API_KEY in (h or "") for h in visitor.seen), visitor.seen
    call(c, "test_connection", "openai", "m", configured.url + "/", "")
    assert f"Bearer {API_KEY}" in configured.seen  # the operator's own server still gets it
    before = len(visitor.seen)
    port = visitor.url.rsplit(":", 1)[1]
    refused = call(c, "test_connection", "openai", "m", f"http://user:pw@127.0.0.1:{port}", "")
    assert not refused["ok"] and "credentials" in refused["message"] and len(visitor.seen) == before
    assert not call(c, "test_connection", "openai", "m", "file:///etc/passwd", "")["ok"]


def test_every_write_path_enforces_every_quota(local_app) -> None:
    session = uuid.uuid4().hex
    events = [raw_call(local_app, "put_file", f"big{i}.txt", "x" * 950_000, session_hash=session)[0]
              for i in range(23)]
    assert "error" in events, "25 MB accepted into a 20 MB workspace"
    _, event_message = raw_call(local_app, "put_file", "big-last.txt", "x" * 950_000, session_hash=session)
    assert "20000000" in event_message and "limit" in event_message
    assert_no_internals(event_message)
    _, view = raw_call(local_app, "workspace", session_hash=session)
    assert len([name for name in view["files"] if name.startswith("big")]) <= 21  # 21 x 950 kB < 20 MB

    # The upload buttons: Gradio stores an upload before any handler sees it, so the cap is there.
    assert upload(local_app, "small.txt", b"x" * 1000) == 200
    assert upload(local_app, "huge.txt", b"x" * 3_000_000) == 413

    raw_call(local_app, "reset", session_hash=session)
    deep = "/".join(f"d{j}" for j in range(24))
    results = [raw_call(local_app, "put_file", f"t{i}/{deep}/f.txt", "x", session_hash=session)[0] for i in range(25)]
    assert results[0] == "complete" and "error" in results, "more than 500 entries accepted"
    _, message = raw_call(local_app, "put_file", f"t99/{deep}/f.txt", "x", session_hash=session)
    assert "limit is 500" in message


def test_oversized_message_never_enters_history(local_app) -> None:
    session = uuid.uuid4().hex
    event, message = raw_call(local_app, "send", "x" * 1_000_000, session_hash=session)
    assert event == "error" and "16,000" in message
    event, turn = raw_call(local_app, "send", "Compute 17 * 23, then add 100 to it.", session_hash=session)
    assert event == "complete" and turn["answer"] == "17 * 23 = 391, and 391 + 100 = 491."
    _, history = raw_call(local_app, "history", session_hash=session)
    assert len(history) == 1


def test_broken_unicode_through_import_and_send(local_app) -> None:
    session = uuid.uuid4().hex
    # A lone surrogate as JSON escapes it: what the review imported.
    text = ('{"format": "%s", "messages": [{"role": "user", "content": "a\\ud800b"}, '
            '{"role": "assistant", "content": "seen \\udfff"}], "enable_thinking": true}' % EXPORT_FORMAT)
    event, _ = raw_call(local_app, "import_session", text, session_hash=session)
    assert event == "complete"
    _, history = raw_call(local_app, "history", session_hash=session)
    assert history[0]["user"] == "a\ufffdb"
    event, exported = raw_call(local_app, "export_session", session_hash=session)
    assert event == "complete" and exported["messages"][0]["content"] == "a\ufffdb"
    event, turn = raw_call(local_app, "send", "Compute 17 * 23, then add 100 to it.", session_hash=session)
    assert event == "complete" and turn["finish"]["reason"] in ("answer", "round_limit")
    # A raw /send carrying the surrogate itself: a complete response, not a cut stream.
    event, turn = raw_call(local_app, "send", "x\ud800y", session_hash=uuid.uuid4().hex)
    assert event == "complete" and turn["user"] == "x\ufffdy"


def test_errors_say_what_was_wrong_not_where(local_app) -> None:
    session = uuid.uuid4().hex
    raw_call(local_app, "put_file", "sub/a.txt", "x", session_hash=session)
    event, message = raw_call(local_app, "put_file", "sub", "x", session_hash=session)
    assert event == "error" and "directory" in message
    assert_no_internals(message)
    for bad in ('{"format": "%s", "messages": ["str"]}' % EXPORT_FORMAT,
                '{"format": "%s", "messages": [%s1%s]}' % (EXPORT_FORMAT, "[" * 5000, "]" * 5000),
                '{"format": "%s", "messages": [], "tools": [{"function": {"name": "x", "parameters": %s}}]}'
                % (EXPORT_FORMAT, '{"items": ' * 200 + "{}" + "}" * 200)):
        event, message = raw_call(local_app, "import_session", bad, session_hash=session)
        assert event == "error" and message, message
        assert_no_internals(message)


def test_set_options_takes_real_types_and_applies_all_or_nothing(local_app) -> None:
    session = uuid.uuid4().hex
    event, message = raw_call(local_app, "set_options", "no", True, 3, *POLICY, session_hash=session)
    assert event == "error" and "thinking must be true or false" in message
    _, status = raw_call(local_app, "status", session_hash=session)
    assert status["thinking"] is True
    event, _ = raw_call(local_app, "set_options", False, False, "x", *POLICY, session_hash=session)
    assert event == "error"
    _, status = raw_call(local_app, "status", session_hash=session)
    assert status["thinking"] is True and status["greedy"] is True  # nothing half-applied
    event, status = raw_call(local_app, "set_options", False, True, 5, *POLICY, session_hash=session)
    assert event == "complete" and status["thinking"] is False and status["max_rounds"] == 5
    assert raw_call(local_app, "set_options", True, True, 500, *POLICY, session_hash=session)[0] == "error"
    # The tool-call policy is part of the session's status (what the page's widgets show).
    event, status = raw_call(local_app, "set_options", False, True, 5, "none", False, True, session_hash=session)
    assert event == "complete"
    assert (status["tool_choice"], status["parallel_tool_calls"], status["strict"]) == ("none", False, True)


def test_custom_tool_names_are_whole_names(local_app) -> None:
    result = call(client(local_app), "set_tools", [], '{"name": "lookup\\n"}', False)
    assert not result["ok"] and '"name"' in result["problems"][0]


def test_failed_import_changes_nothing(local_app) -> None:
    session = uuid.uuid4().hex
    raw_call(local_app, "send", "Compute 17 * 23, then add 100 to it.", session_hash=session)
    _, before = raw_call(local_app, "export_session", session_hash=session)
    _, shown = raw_call(local_app, "chat_messages", session_hash=session)
    bad = _export([{"role": "user", "content": "hi"}, {"role": "assistant", "tool_calls": "not a list"}], [])
    event, _ = raw_call(local_app, "import_session", bad, session_hash=session)
    assert event == "error"
    assert raw_call(local_app, "export_session", session_hash=session)[1] == before
    assert raw_call(local_app, "chat_messages", session_hash=session)[1] == shown
    assert len(raw_call(local_app, "history", session_hash=session)[1]) == 1


def test_a_server_session_exports_and_imports_back(local_app) -> None:
    """Every built-in tool (send_email's lookahead patterns included) survives the round trip."""
    server = FakeOpenAI().start()
    try:
        first, second = uuid.uuid4().hex, uuid.uuid4().hex
        assert raw_call(local_app, "set_backend", "openai", "fake", server.base_url, "", session_hash=first)[1]["ok"]
        turn = raw_call(local_app, "send", "Email bob@example.com", session_hash=first)[1]
        assert turn["calls"][0]["schema_ok"] and not turn["calls"][0]["is_error"], turn["calls"]
        _, exported = raw_call(local_app, "export_session", session_hash=first)
        assert "send_email" in [t["function"]["name"] for t in exported["tools"]]
        event, _ = raw_call(local_app, "import_session", json.dumps(exported), session_hash=second)
        assert event == "complete"
        assert raw_call(local_app, "export_session", session_hash=second)[1]["messages"] == exported["messages"]
    finally:
        server.stop()


def test_export_button_files_are_private_and_removed(local_app) -> None:
    """The export button's handler is reachable through the queue like any page event; what it
    writes is the caller's own session, readable by the server's user only, and gone at reset."""
    session = uuid.uuid4().hex
    raw_call(local_app, "put_file", "note.txt", "private", session_hash=session)
    fn_index = fn_index_of(local_app, "on_export")
    result = raw_queue_call(local_app, fn_index, [], session)
    assert result["success"], result
    tmp: Path = local_app.tmp
    assert not (tmp / "smol-tools-exports").exists()
    files = list(tmp.glob("smol-tools-export-*/*.json"))
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(files[0].parent.stat().st_mode) == 0o700
    raw_call(local_app, "reset", session_hash=session)
    assert not files[0].exists() and not files[0].parent.exists()


# -- the attack corpus's app family (tests/attack_corpus/app_attacks.json) ----------------------

_APP_CORPUS = json.loads((Path(__file__).parent / "attack_corpus" / "app_attacks.json").read_text())["families"]
APP_ATTACKS = [(family, i, attack) for family, attacks in _APP_CORPUS.items() for i, attack in enumerate(attacks)]


def _expand(value, table):
    if isinstance(value, str):
        for mark, (text, count) in table.items():
            value = value.replace(mark, text * count)
        return value
    if isinstance(value, list):
        return [_expand(v, table) for v in value]
    return value


@pytest.mark.parametrize("family,i,attack", APP_ATTACKS, ids=[f"{f}-{i}-{a['endpoint']}" for f, i, a in APP_ATTACKS])
def test_app_attack(family: str, i: int, attack: dict, request) -> None:
    app = request.getfixturevalue("space_app" if attack.get("app") == "space" else "local_app")
    session = f"corpus-{attack.get('app', 'local')}-{family}"  # one session per family: no flood of our own
    raw_call(app, "reset", session_hash=session)
    for endpoint, args in attack.get("before", []):
        raw_call(app, endpoint, *args, session_hash=session)
    args = _expand(attack["args"], attack.get("expand", {}))
    (event, value), seconds = _timed(lambda: raw_call(app, attack["endpoint"], *args, session_hash=session,
                                                      timeout=attack.get("max_seconds", 20) + 30))
    assert seconds < attack.get("max_seconds", 20), f"{seconds:.1f} s"
    assert_no_internals(json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value)
    expect = attack["expect"]
    if expect == "complete":
        assert event == "complete", value
    elif "error" in expect:
        assert event == "error" and expect["error"] in value, (event, value)
    elif "problem" in expect:
        assert event == "complete" and not value["ok"] and any(expect["problem"] in p for p in value["problems"]), value
    elif "message" in expect:
        assert event == "complete" and not value["ok"] and expect["message"] in value["message"], value
    elif "ok" in expect:
        assert event == "complete" and value["ok"] is expect["ok"], value
    # The session goes on: it answers, and what it shows encodes.
    then = attack.get("then")
    event, status = raw_call(app, "status", session_hash=session)
    assert event == "complete" and status["busy"] is False
    if then == "history":
        event, history = raw_call(app, "history", session_hash=session)
        assert event == "complete" and history[0]["calls"], history
    elif then == "history_empty":
        assert raw_call(app, "history", session_hash=session)[1] == []
    elif then in ("export", "workspace"):
        event, shown = raw_call(app, "export_session" if then == "export" else "workspace", session_hash=session)
        assert event == "complete" and "\ufffd" in json.dumps(shown, ensure_ascii=False), shown


def test_app_corpus_covers_every_finding() -> None:
    assert {"schema_regex", "backend_url", "public_backend", "space_ceiling", "quota", "input_size", "unicode",
            "internals", "options"} <= set(_APP_CORPUS)
    assert len(APP_ATTACKS) >= 50


# -- a Space: public, picker unlocked on purpose ------------------------------------------------

def test_unlocked_public_picker_warns_loudly_at_start(space_app) -> None:
    log = space_app.log_tail(20_000)
    assert "WARNING" in log and "UNLOCKED" in log and "SMOL_TOOLS_LOCK_BACKEND=1" in log


def test_space_keeps_network_tools_off_unless_the_operator_turns_them_on(space_app) -> None:
    session = uuid.uuid4().hex
    _, status = raw_call(space_app, "status", session_hash=session)
    assert "http_request" not in status["tools"] and "get_webpage" not in status["tools"]
    _, result = raw_call(space_app, "set_tools", ["read_file", "http_request"], "", False, session_hash=session)
    assert not result["ok"] and "network tools are off" in result["problems"][0]
    schema = {"type": "function", "function": {"name": "get_webpage", "description": "",
                                               "parameters": {"type": "object", "properties": {}}}}
    event, message = raw_call(space_app, "import_session", _export([], [schema]), session_hash=session)
    assert event == "error" and "network tools are off" in message
    _, status = raw_call(space_app, "status", session_hash=session)
    assert "get_webpage" not in status["tools"]


def test_visitors_cannot_aim_a_public_server_at_this_machine(space_app, recorders) -> None:
    session = uuid.uuid4().hex
    _, visitor = recorders
    before = len(visitor.seen)
    _, result = raw_call(space_app, "test_connection", "openai", "m", visitor.url, "", session_hash=session)
    assert not result["ok"] and "public servers only" in result["message"] and len(visitor.seen) == before
    _, shadow = raw_call(space_app, "test_connection", "llama-cpp-python", "/etc/shadow", "", "", session_hash=session)
    _, missing = raw_call(space_app, "test_connection", "llama-cpp-python", "/nonexistent/x", "", "", session_hash=session)
    assert not shadow["ok"] and shadow["message"] == missing["message"]  # no oracle for which files exist
    assert "paths are not accepted" in shadow["message"]


def test_a_flood_of_new_sessions_evicts_no_one(local_app) -> None:
    """70 raw calls, each a new session, against a 40-session store: the victim keeps its files
    and history; the flood is refused once the store is full of sessions in recent use."""
    victim = uuid.uuid4().hex
    raw_call(local_app, "put_file", "mine.txt", "victim data", session_hash=victim)
    raw_call(local_app, "send", "Compute 17 * 23, then add 100 to it.", session_hash=victim)
    outcomes = [raw_call(local_app, "status")[0:2] for _ in range(70)]
    refused = [message for event, message in outcomes if event == "error"]
    assert refused and "server is full" in refused[-1]
    assert raw_call(local_app, "workspace", session_hash=victim)[1]["files"]["mine.txt"] == "victim data"
    assert len(raw_call(local_app, "history", session_hash=victim)[1]) == 1


def test_new_sessions_per_client_are_capped(space_app) -> None:
    kept = uuid.uuid4().hex
    first = raw_call(space_app, "status", session_hash=kept)[0]  # refused if this minute is spent
    outcomes = [raw_call(space_app, "status")[0:2] for _ in range(10)]
    refused = [message for event, message in outcomes if event == "error"]
    assert len(refused) >= 4 and "too many new sessions" in refused[0]
    assert all(event == "error" for event, _ in outcomes[6:])
    if first == "complete":  # a session that exists is never refused
        assert raw_call(space_app, "status", session_hash=kept)[0] == "complete"
