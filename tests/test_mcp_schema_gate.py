"""An MCP server's tool schemas pass the same gate as a visitor's (smol_tools/schema_regex.py),
against the real `mcp` SDK server of tests/mcp_demo_server.py started with --hostile:
a pattern that backtracks exponentially in Python's `re` (`^(a+)+$`) is kept and checked on
RE2, so a call with 30 a's and a '!' is refused at once with an error the model reads, by the
agent and by the registry alike; a tool whose pattern RE2 cannot run (a lookahead) is refused
at connect time with a message saying why. The < 2 s bounds are hang guards: on `re` the same
check takes minutes (2^30 backtracking steps), not a performance target."""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path

import pytest

from smol_tools.chat_session import ChatSession
from smol_tools.events import ToolCallChecked, ToolResultReady
from smol_tools.mcp_tools import McpToolbox, attach_to_chat
from smol_tools.tools import ALL_TOOLS, ToolRegistry, ToolSession, default_registry
from tests.test_agent import ReplayModel, call

SERVER = Path(__file__).with_name("mcp_demo_server.py")
HOSTILE = f"{shlex.quote(sys.executable)} {shlex.quote(str(SERVER))} --hostile"
EVIL = "a" * 30 + "!"


@pytest.fixture(scope="module")
def box():
    with McpToolbox.connect([HOSTILE], taken=[t.name for t in ALL_TOOLS], call_timeout_s=5) as toolbox:
        yield toolbox


def test_lookahead_tool_is_refused_with_the_reason(box) -> None:
    assert "match_word" in box.names() and "peek" not in box.names()
    [refused] = [s for s in box.skipped if ": peek:" in s]
    assert "refused" in refused and "^(?=(a+)+$)a" in refused
    assert "lookahead, lookbehind and backreferences are not supported" in refused


def test_backtracking_pattern_is_checked_in_linear_time_by_the_registry(box) -> None:
    registry = ToolRegistry(box.tools)
    session = ToolSession.create()
    try:
        assert registry.execute("match_word", {"word": "aaaa"}, session).content == "aaaa"  # the pattern still works
        started = time.monotonic()
        bad = registry.execute("match_word", {"word": EVIL}, session)
        bad_key = registry.execute("match_word", {"word": "a", "tags": {EVIL: 1}}, session)
        elapsed = time.monotonic() - started
    finally:
        session.cleanup()
    assert elapsed < 2, f"validation took {elapsed:.1f}s"
    assert bad.is_error and "does not match '^(a+)+$'" in json.loads(bad.content)["error"]
    assert bad_key.is_error and "additional properties are not allowed" in json.loads(bad_key.content)["error"]


def test_the_agent_refuses_the_call_fast_and_the_model_reads_why() -> None:
    chat = ChatSession(ReplayModel([call("match_word", {"word": EVIL}) + "<|im_end|>", "Sorry.<|im_end|>"]),
                       default_registry(), ToolSession.create())
    attached = attach_to_chat(chat, [HOSTILE])
    try:
        started = time.monotonic()
        events = list(chat.send("echo it"))
        elapsed = time.monotonic() - started
    finally:
        attached.close()
    assert elapsed < 2, f"the turn took {elapsed:.1f}s"
    [checked] = [e for e in events if isinstance(e, ToolCallChecked)]
    assert not checked.ok and "does not match" in checked.problems[0]
    [result] = [e for e in events if isinstance(e, ToolResultReady)]
    assert result.outcome.is_error and "arguments do not match the schema of match_word" in result.outcome.content
    tool_message = [m for m in chat.messages if m["role"] == "tool"][0]
    assert "^(a+)+$" in tool_message["content"]  # what the model reads names the pattern


def test_the_app_lists_the_refused_tool_with_why(box) -> None:
    from types import SimpleNamespace

    from smol_tools.app.mcp_servers import skipped_tools

    [listed] = skipped_tools(SimpleNamespace(mcp_toolbox=box))
    assert "peek" in listed and "lookahead" in listed
    assert skipped_tools(SimpleNamespace(mcp_toolbox=None)) == []


def test_without_the_sdk_the_error_names_the_extra(monkeypatch) -> None:
    """The wheel's `mcp` extra (pyproject.toml) is what the message tells a user to install."""
    import tomllib

    from smol_tools.mcp_tools import McpError

    monkeypatch.setitem(sys.modules, "mcp", None)  # `import mcp` raises ImportError
    with pytest.raises(McpError, match=r"pip install 'smol-tools\[mcp\]'"):
        McpToolbox.connect([HOSTILE])
    pyproject = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    assert pyproject["project"]["optional-dependencies"]["mcp"] == ["mcp>=1.30,<2"]
    pinned = [line.split("#")[0].strip() for line in (Path(__file__).parent.parent / "requirements.txt")
              .read_text().splitlines() if line.startswith("mcp==")]
    [version] = [tuple(int(part) for part in pin.removeprefix("mcp==").split(".")[:2]) for pin in pinned]
    assert (1, 30) <= version < (2, 0)  # the pin CI tests sits inside the extra's range
