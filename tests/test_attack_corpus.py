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
from smol_tools.agent import ToolResultReady as _Result  # noqa: E402
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
