"""The attack corpus (tests/attack_corpus/attacks.json) against the real tools: every attack is
refused with a clear message, or, for code the operator allowed, contained (killed at its
limits, no secrets, no network). 0 escapes is the goal; each refusal must say why."""

from __future__ import annotations

import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from smol_tools.tools import ToolSession, ToolSettings, default_registry
from smol_tools.tools.netguard import resolve_host

CORPUS = json.loads((Path(__file__).parent / "attack_corpus" / "attacks.json").read_text())["attacks"]
REGISTRY = default_registry()
SECRET = "s3cr3t-value-that-must-not-leak"


class Redirector(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        target = parse_qs(urlparse(self.path).query).get("to", ["/"])[0]
        self.send_response(302)
        self.send_header("Location", target)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture(scope="module")
def redirector() -> str:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _fake_resolver(table: dict[str, list[str]]):
    def resolve(host: str, port: int) -> list[str]:
        return table[host] if host in table else resolve_host(host, port)
    return resolve


def _prepare(attack: dict[str, Any], tmp_path: Path, redirector: str) -> tuple[ToolSettings, dict[str, Any]]:
    setup = attack.get("setup", "")
    arguments = dict(attack["arguments"])
    settings: dict[str, Any] = {}
    if setup == "code enabled":
        settings |= {"allow_code_execution": True, "code_timeout_s": 3, "code_memory_mb": 256}
    if setup.startswith("resolve "):
        host, addresses = re.match(r"resolve (\S+) -> (.+)", setup).groups()
        settings["resolver"] = _fake_resolver({host: [a.strip() for a in addresses.split(",")]})
    if setup == "allowed local server redirecting":
        settings["allowed_private_hosts"] = frozenset({redirector})
        arguments["url"] = arguments["url"].replace("ALLOWED", f"http://{redirector}")
    if setup == "expand content":
        arguments["content"] = "x" * 2_000_001
    return ToolSettings(**settings), arguments


def _plant_symlinks(setup: str, workspace: Path, outside: Path) -> None:
    match = re.match(r"symlink (\S+) -> (\S+)", setup or "")
    if match:
        name, target = match.groups()
        (workspace / name).symlink_to(outside if target == "OUTSIDE" else Path(target))


@pytest.mark.parametrize("attack", CORPUS, ids=[f"{i}-{a['category']}-{a['tool']}" for i, a in enumerate(CORPUS)])
def test_attack_is_refused_or_contained(attack: dict[str, Any], tmp_path: Path, redirector: str,
                                        monkeypatch) -> None:
    monkeypatch.setenv("SMOL_TOOLS_TEST_SECRET", SECRET)
    settings, arguments = _prepare(attack, tmp_path, redirector)
    session = ToolSession.create(root=tmp_path / "sessions", settings=settings)
    outside = tmp_path / "outside"
    outside.mkdir()
    _plant_symlinks(attack.get("setup", ""), session.workspace, outside)
    try:
        result = REGISTRY.execute(attack["tool"], arguments, session)
    finally:
        session.cleanup()
    text = result.content
    assert SECRET not in text
    assert "root:x:0:0" not in text  # /etc/passwd never read
    assert not any(outside.iterdir()), "a write escaped the workspace"
    if attack["category"] in ("code", "shell"):
        # Allowed code runs, but only inside its limits: killed, failed, or harmless output.
        data = json.loads(text) if text.startswith("{") else {}
        contained = result.is_error or data.get("timed_out") or data.get("exit_code", 0) != 0 \
            or "absent" in text or len(text) < 100_000
        assert contained, text[:500]
        return
    assert result.is_error, f"not refused: {text[:300]}"
    message = json.loads(text)["error"]
    assert len(message) > 10, message
    # The refusal must be the one the attack is about (a redirect attack refused by a crash or a
    # failed connection, not by the re-check of the redirect target, proves nothing).
    assert "internal error" not in message, message
    if "expect" in attack:
        assert attack["expect"] in message, message


def test_corpus_covers_every_category() -> None:
    categories = {a["category"] for a in CORPUS}
    assert {"path_traversal", "symlink_escape", "ssrf", "ssrf_dns", "ssrf_redirect", "sql_write", "code",
            "code_disabled", "shell", "calculate", "oversized"} <= categories
    assert len(CORPUS) >= 100


# ---------------------------------------------------------------------------------------------
# Issue 15 §1, §5: model outputs that must not lose the user's work or poison the session, and
# tool-level attacks on single-line fields and on writes that are refused.

from tests.test_no_silent_loss import StrictModel, strict_wire  # noqa: E402

from smol_tools.agent import AgentConfig  # noqa: E402
from smol_tools.events import ToolResultReady as _Result  # noqa: E402
from smol_tools.chat_session import ChatSession  # noqa: E402

_OUTPUTS = json.loads((Path(__file__).parent / "attack_corpus" / "model_outputs.json").read_text())["families"]
OUTPUT_ATTACKS = [(family, i, attack) for family, attacks in _OUTPUTS.items() for i, attack in enumerate(attacks)]
FIELD_ATTACKS = json.loads((Path(__file__).parent / "attack_corpus" / "tool_fields.json").read_text())["attacks"]
_CAP = AgentConfig().max_calls_per_round


def _workspace_files(workspace: Path) -> list[str]:
    return sorted(str(p.relative_to(workspace)) for p in workspace.rglob("*") if p.is_file())


@pytest.mark.parametrize("family,i,attack", OUTPUT_ATTACKS, ids=[f"{f}-{i}" for f, i, _ in OUTPUT_ATTACKS])
def test_model_output_attack_loses_nothing_and_poisons_nothing(family: str, i: int, attack: dict[str, Any],
                                                             tmp_path: Path) -> None:
    output = attack["output"]
    for mark, (text, count) in attack.get("expand", {}).items():
        output = output.replace(mark, text * count)
    tools = ToolSession.create(root=tmp_path / "sessions")
    if attack.get("setup") == "non-utf8 file name":
        os.close(os.open(os.path.join(os.fsencode(tools.workspace), b"bad\xff.txt"), os.O_CREAT | os.O_WRONLY, 0o644))
    model = StrictModel([output, "</think>\n\nDone.<|im_end|>"], thinking_open=attack.get("thinking_open", True))
    chat = ChatSession(model, registry=REGISTRY, tool_session=tools)
    try:
        events = list(chat.send("go"))
        first = [e for e in events if isinstance(e, _Result) and e.round == 1]
        ran = [e.name for e in first if not e.outcome.is_error]
        errors = [e.outcome.content for e in first if e.outcome.is_error]
        assert all(len(text) <= 2100 for text in errors), max(map(len, errors))
        errors = [json.loads(text)["error"] for text in errors]  # as the model reads them
        expect = attack["expect"]
        if "runs" in expect:
            assert ran == expect["runs"], (ran, errors[:3])
        if "refused" in expect:
            assert ran == [] and any(expect["refused"] in text for text in errors), errors[:3]
        if "errors_contain" in expect:
            assert any(expect["errors_contain"] in text for text in errors), errors[:3]
        if "max_run" in expect:
            assert len(ran) <= expect["max_run"]
        if "files" in expect:
            assert _workspace_files(tools.workspace) == expect["files"]
        # Always: at most the cap (+1 "not run" error) per round, every error text bounded,
        # and the session goes on: the next turn renders, encodes and answers.
        assert len(first) <= _CAP + 1
        model.outputs = ["</think>\n\nStill here.<|im_end|>"]
        last = list(chat.send("next"))[-1]
        if expect.get("next_turn") == "answer or context_overflow" and last.reason == "context_overflow":
            assert "Start a new session" in last.message
        else:
            assert last.content == "Still here."
        strict_wire(chat.messages, chat.tool_schemas())
    finally:
        tools.cleanup()


@pytest.mark.parametrize("attack", FIELD_ATTACKS, ids=[f"{i}-{a['category']}-{a['tool']}" for i, a in enumerate(FIELD_ATTACKS)])
def test_field_attack_is_refused_and_leaves_nothing(attack: dict[str, Any], tmp_path: Path) -> None:
    setup = attack.get("setup", "")
    settings = ToolSettings()
    if setup.startswith("quota "):
        settings = ToolSettings(max_workspace_bytes=int(setup.split()[1]))
    elif setup.startswith("file limit "):
        settings = ToolSettings(max_file_bytes=int(setup.split()[2]))
    session = ToolSession.create(root=tmp_path / "sessions", settings=settings)
    try:
        result = REGISTRY.execute(attack["tool"], dict(attack["arguments"]), session)
        assert result.is_error, f"not refused: {result.content[:300]}"
        assert len(json.loads(result.content)["error"]) > 10
        assert list(session.workspace.iterdir()) == [], "a refused call left something behind"
        assert session.outbox == [] and session.calendar == []
    finally:
        session.cleanup()


def test_issue15_families_are_all_there() -> None:
    assert {"unclosed_reasoning", "invalid_unicode", "nonfinite_number", "oversized_error", "call_flood",
            "duplicate_keys"} <= set(_OUTPUTS)
    assert all(len(attacks) >= 5 for attacks in _OUTPUTS.values())
    assert {a["category"] for a in FIELD_ATTACKS} == {"single_line_field", "refused_write_leaves_nothing"}



# ---------------------------------------------------------------------------------------------
# Issue 15 §2-4: time limits, real HTTP servers, redirect credentials, port 0 (network.json) and
# the code sandbox's scratch space, unix sockets, zombies and root (sandbox.json).

import shutil  # noqa: E402
import socket  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from tests.fixtures.raw_http import address as _raw_address  # noqa: E402
from tests.fixtures.raw_http import raw_http_server  # noqa: E402

from smol_tools.tools.sandbox import private_world_available, running_as_root  # noqa: E402

_NETWORK = json.loads((Path(__file__).parent / "attack_corpus" / "network.json").read_text())["families"]
NETWORK_ATTACKS = [(family, i, a) for family, attacks in _NETWORK.items() for i, a in enumerate(attacks)]
_SANDBOX = json.loads((Path(__file__).parent / "attack_corpus" / "sandbox.json").read_text())["families"]
SANDBOX_ATTACKS = [(family, i, a) for family, attacks in _SANDBOX.items() for i, a in enumerate(attacks)]


@pytest.fixture(scope="module")
def raw_server():
    with raw_http_server() as server:
        yield server


def _fill(value: Any, table: dict[str, str]) -> Any:
    if isinstance(value, str):
        for mark, text in table.items():
            value = value.replace(mark, text)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, table) for k, v in value.items()}
    return value


@pytest.mark.parametrize("family,i,attack", NETWORK_ATTACKS, ids=[f"{f}-{i}-{a['tool']}" for f, i, a in NETWORK_ATTACKS])
def test_network_attack(family: str, i: int, attack: dict[str, Any], raw_server, tmp_path: Path) -> None:
    where = _raw_address(raw_server)
    port = where.split(":")[1]
    table = {"RAW_HOST": "http://127.0.0.1", "RAW": f"http://{where}", "OTHER": f"http://other.test:{port}"}
    settings = ToolSettings(**{
        "allowed_private_hosts": frozenset({where, f"other.test:{port}", "127.0.0.1", "[::1]"}),
        "resolver": _fake_resolver({"other.test": ["127.0.0.1"], "public.test": ["93.184.216.34"]}),
        "http_timeout_s": 5, **attack.get("settings", {}),
    })
    session = ToolSession.create(root=tmp_path / "sessions", settings=settings)
    started = time.monotonic()
    try:
        result = REGISTRY.execute(attack["tool"], _fill(attack["arguments"], table), session)
    finally:
        session.cleanup()
    elapsed = time.monotonic() - started
    assert elapsed < attack["max_seconds"], f"{elapsed:.1f} s"
    assert "internal error" not in result.content, result.content[:300]
    if "expect_error" in attack:
        assert result.is_error and attack["expect_error"] in json.loads(result.content)["error"], result.content[:300]
    if attack.get("expect_ok"):
        assert not result.is_error, result.content[:300]
    for secret in attack.get("forbid", []):
        assert secret not in result.content, f"{secret} reached another origin"


def _host_has(directory: str, mark: str) -> bool:
    try:
        return any(name.startswith(mark) for name in os.listdir(directory))
    except OSError:
        return False


def _listeners(mark: str):
    directory = Path(tempfile.mkdtemp(prefix="smol-sock-", dir="/tmp"))
    directory.chmod(0o755)
    path = str(directory / "service.sock")
    stream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stream.bind(path)
    os.chmod(path, 0o777)
    stream.listen(8)
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    abstract.bind("\0" + mark)
    abstract.listen(8)
    for listener in (stream, abstract):
        listener.setblocking(False)
    return directory, path, (stream, abstract)


def _accepted(listeners) -> int:
    count = 0
    for listener in listeners:
        try:
            listener.accept()[0].close()
            count += 1
        except (BlockingIOError, OSError):
            pass
    return count


@pytest.mark.parametrize("family,i,attack", SANDBOX_ATTACKS, ids=[f"{f}-{i}-{a['tool']}" for f, i, a in SANDBOX_ATTACKS])
def test_sandbox_attack(family: str, i: int, attack: dict[str, Any], tmp_path: Path, monkeypatch) -> None:
    if attack.get("root_only") and not running_as_root():
        pytest.skip("the refusal is for a server running as root")
    monkeypatch.setenv("SMOL_TOOLS_TEST_SECRET", SECRET)
    mark = f"smol-attack-{os.getpid()}-{time.monotonic_ns()}"
    directory, path, listeners = _listeners(mark)
    table = {"MARK": mark, "SOCKET": path, "ABSTRACT": mark}
    settings = ToolSettings(**{"allow_code_execution": True, "code_timeout_s": 5, "code_memory_mb": 256,
                               "code_scratch_mb": 16, **attack.get("settings", {})})
    session = ToolSession.create(root=tmp_path / "sessions", settings=settings)
    try:
        result = REGISTRY.execute(attack["tool"], _fill(attack["arguments"], table), session)
        follow = None
        if "then" in attack and not (attack.get("private_world_only_then") and not private_world_available()):
            follow = REGISTRY.execute(attack["then"]["tool"], _fill(attack["then"]["arguments"], table), session)
    finally:
        session.cleanup()
        accepted = _accepted(listeners)
        for listener in listeners:
            listener.close()
        os.unlink(path)
        directory.rmdir()
    text = result.content
    assert SECRET not in text and not re.search(r"\broot:[^:\s]*:\d", text)  # no passwd/shadow line
    if "refused" in attack:
        assert result.is_error and attack["refused"] in json.loads(text)["error"], text[:300]
        return
    assert "internal error" not in text, text[:300]
    payload = json.loads(text)
    leftovers = [d for d in attack.get("host_paths", []) if running_as_root() and _host_has(d, mark)]
    for directory_left in leftovers:  # tidy up before failing, so one failure does not pollute the machine
        for name in os.listdir(directory_left):
            if name.startswith(mark):
                target = os.path.join(directory_left, name)
                shutil.rmtree(target, ignore_errors=True) if os.path.isdir(target) else os.remove(target)
    if running_as_root():  # without root, /tmp stays shared (SECURITY.md): nothing to assert there
        assert not leftovers, f"sandboxed code left files in {leftovers}"
    if "listener" in attack:
        assert accepted == 0 and "connected" not in payload.get("stdout", ""), payload
    if "stdout_forbid" in attack:
        assert attack["stdout_forbid"] not in payload.get("stdout", ""), payload
    if private_world_available() and "private_world" in attack:
        assert attack["private_world"]["stderr"] in payload.get("stderr", ""), payload
    if follow is not None:
        data = json.loads(follow.content)
        if "stdout" in attack["then"]:
            assert data["stdout"] == attack["then"]["stdout"], data
        if "then_min_children" in attack:
            children = [line for line in data["stdout"].splitlines() if line.startswith("children")]
            assert children and int(children[0].split()[1]) >= attack["then_min_children"], data
