"""MCP tools for the agent, against a real MCP server (tests/mcp_demo_server.py, the `mcp` SDK)
over stdio and streamable HTTP: schemas become our tool schemas (namespaced on collision), and
calls go through the agent's validation, deadline, result cap and error results, on the tiny
model (greedy, scripted turn) and on scripted replayed turns."""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path

import pytest

from smol_tools.events import AgentFinished, ToolCallChecked, ToolResultReady
from smol_tools.backends.base import SamplingParams
from smol_tools.chat_session import ChatSession
from smol_tools.mcp_tools import McpError, McpServerSpec, McpToolbox, attach_to_chat, split_lines
from smol_tools.tools import ALL_TOOLS, ToolRegistry, ToolSession, ToolSettings, default_registry
from tests.test_agent import ReplayModel, call
from tests.mcp_demo_server import HttpDemoServer
from tests.test_app_support import free_port

SERVER = Path(__file__).with_name("mcp_demo_server.py")
STDIO = f"{shlex.quote(sys.executable)} {shlex.quote(str(SERVER))}"
BUILTIN = [t.name for t in ALL_TOOLS]


@pytest.fixture(scope="module")
def box():
    with McpToolbox.connect([STDIO], taken=BUILTIN, call_timeout_s=3) as toolbox:
        yield toolbox


@pytest.fixture()
def tool_session():
    session = ToolSession.create()
    yield session
    session.cleanup()


def test_specs_and_field_lines() -> None:
    assert McpServerSpec.parse("http://127.0.0.1:9/mcp").is_http
    assert McpServerSpec.parse("npx -y 'some server'").command == ("npx", "-y", "some server")
    with pytest.raises(McpError, match="only http"):
        McpServerSpec.parse("ftp://example.com/x")
    with pytest.raises(McpError, match="No closing quotation"):
        McpServerSpec.parse("python 'unterminated")
    assert split_lines("# comment\n\n python a.py \nhttp://x/mcp\n") == ["python a.py", "http://x/mcp"]


def test_unreachable_servers_are_clear_errors() -> None:
    with pytest.raises(McpError, match="no-such-mcp-command"):
        McpToolbox.connect(["no-such-mcp-command --flag"])
    with pytest.raises(McpError, match=f"127.0.0.1:{free_port()}|ConnectError|connect"):
        McpToolbox.connect([f"http://127.0.0.1:{free_port()}/mcp"])


def test_schemas_become_tools_namespaced_on_collision(box) -> None:
    # get_weather and calculate are built-in names too: the server's copies get its name as prefix.
    assert box.names() == ["demo-tools__get_weather", "demo-tools__calculate", "slow_echo", "always_fails",
                           "plan_trip"]
    assert box.origin["demo-tools__calculate"] == "demo-tools: calculate"
    registry = ToolRegistry(list(ALL_TOOLS) + box.tools)
    schema = {s["function"]["name"]: s["function"] for s in registry.schemas()}["plan_trip"]
    legs = schema["parameters"]["properties"]["trip"]["properties"]["legs"]
    assert legs["items"]["required"] == ["from", "to", "days"]  # the nested schema, unchanged
    assert schema["description"] == "Count the legs and days of a trip."


def test_calls_go_through_the_registry(box, tool_session) -> None:
    registry = ToolRegistry(list(ALL_TOOLS) + box.tools)
    # A namespaced tool reaches the server under its own name.
    assert registry.execute("demo-tools__calculate", {"a": 2, "b": 40}, tool_session).content == "42"
    assert registry.execute("calculate", {"expression": "2 + 40"}, tool_session).content == "42"  # built-in
    ok = registry.execute("plan_trip", {"trip": {"destination": "Oslo", "legs": [
        {"from": "Bergen", "to": "Oslo", "days": 2}, {"from": "Oslo", "to": "Tromsø", "days": 3}]}}, tool_session)
    assert json.loads(ok.content) == {"destination": "Oslo", "legs": 2, "days": 5}
    # Validation happens here, before the server sees anything.
    bad = registry.execute("plan_trip", {"trip": {"destination": "Oslo", "legs": [{"from": "a", "to": "b"}]}},
                           tool_session)
    assert bad.is_error and "days" in json.loads(bad.content)["error"]
    failed = registry.execute("always_fails", {"reason": "no quota"}, tool_session)
    assert failed.is_error and json.loads(failed.content) == {"error": "refused: no quota"}
    started = time.monotonic()
    slow = registry.execute("slow_echo", {"text": "late", "seconds": 30}, tool_session)
    assert slow.is_error and "did not answer within 3s" in json.loads(slow.content)["error"]
    assert time.monotonic() - started < 10
    # The connection survives a timed-out call.
    assert registry.execute("slow_echo", {"text": "prompt", "seconds": 0}, tool_session).content == "prompt"


def test_result_cap_applies(box, tool_session) -> None:
    registry = ToolRegistry(box.tools)
    tool_session.settings = ToolSettings(max_result_chars=100)
    long = registry.execute("slow_echo", {"text": "x" * 5000, "seconds": 0}, tool_session)
    assert long.content.startswith("x" * 100) and "[truncated: 4900 more characters]" in long.content


def test_agent_rounds_with_mcp_tools(box) -> None:
    """Scripted turns: a nested call, a bad call, an erroring tool and a slow one in one round,
    then the answer; every outcome is a result the model reads, in call order."""
    chat = ChatSession(ReplayModel([
        call("plan_trip", {"trip": {"destination": "Oslo", "legs": [{"from": "a", "to": "b", "days": 1}]}})
        + call("plan_trip", {"trip": {"destination": "Oslo"}})
        + call("always_fails", {"reason": "x"})
        + call("slow_echo", {"text": "t", "seconds": 20}) + "<|im_end|>",
        "Done.<|im_end|>"]), default_registry(), ToolSession.create())
    chat.config.tool_timeout_s = 2  # the agent's own deadline, below the toolbox's
    attached = attach_to_chat(chat, [STDIO])
    try:
        assert "plan_trip" in [t["function"]["name"] for t in chat.tool_schemas()]
        events = list(chat.send("plan it"))
    finally:
        attached.close()
    checks = [e for e in events if isinstance(e, ToolCallChecked)]
    assert [c.ok for c in checks] == [True, False, True, True]
    assert "legs" in checks[1].problems[0]
    results = [e for e in events if isinstance(e, ToolResultReady)]
    assert json.loads(results[0].outcome.content) == {"destination": "Oslo", "legs": 1, "days": 1}
    assert results[1].outcome.is_error and "arguments do not match the schema of plan_trip" in results[1].outcome.content
    assert results[2].outcome.is_error and "refused: x" in results[2].outcome.content
    assert results[3].outcome.is_error and "timed out after 2s" in results[3].outcome.content
    assert events[-1] == AgentFinished("answer", "answered after 2 round(s)", "Done.")
    tool_messages = [m for m in chat.messages if m["role"] == "tool"]
    assert [m["name"] for m in tool_messages] == ["plan_trip", "plan_trip", "always_fails", "slow_echo"]


@pytest.mark.slow
def test_tiny_model_uses_an_mcp_tool_end_to_end(tiny_gguf_q8_0) -> None:
    """The server's get_weather has the scripted schema. With the built-in get_weather left out,
    the MCP tool keeps its name, the prompt shows the tiny model its five scripted tools (the
    other four built-ins with their scripted schemas), the model calls the MCP tool, the server
    answers, and the model gives its scripted answer from that result."""
    from smol_tools.backends.llama_cpp import LlamaCppBackend
    from smol_tools.chat_session import scripted_tool_overrides
    from smol_tools.tiny.scripted import scripted_tools

    scripted = scripted_tools()
    builtins = [t for t in ALL_TOOLS if t.name != "get_weather"]
    overrides = {k: v for k, v in scripted_tool_overrides(scripted).items() if k != "get_weather"}
    with McpToolbox.connect([STDIO], taken=[t.name for t in builtins]) as toolbox:
        chat = ChatSession(LlamaCppBackend(tiny_gguf_q8_0, n_ctx=4096, n_threads=1),
                           ToolRegistry(builtins + toolbox.tools), ToolSession.create(),
                           enabled_tools=[t["function"]["name"] for t in scripted], schema_overrides=overrides)
        assert chat.tool_schemas() == scripted  # the MCP schema is exactly the trained one
        chat.config.sampling = SamplingParams.greedy(max_tokens=256)
        events = list(chat.send("What is the weather in Paris?"))
    results = [e for e in events if isinstance(e, ToolResultReady)]
    assert [(r.name, r.arguments) for r in results] == [("get_weather", {"city": "Paris"})]
    assert results[0].outcome.content == '{"city": "Paris", "temperature_c": 18, "condition": "cloudy"}'
    assert events[-1].content == "It is 18 °C and cloudy in Paris."


def test_streamable_http_server(tool_session) -> None:
    with HttpDemoServer() as server:
        with McpToolbox.connect([server.url], taken=BUILTIN) as toolbox:
            registry = ToolRegistry(toolbox.tools)
            assert registry.execute("demo-tools__calculate", {"a": 1, "b": 2}, tool_session).content == "3"
