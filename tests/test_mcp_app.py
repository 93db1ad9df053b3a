"""MCP servers in the app's Tools panel, through `python app.py` and gradio_client: the field's
gates (off on a public instance unless allowed; a command needs code execution, a URL needs
network access), a real MCP server's tools joining the session's registry (namespaced on
collision) and the tools checkboxes, and a scripted turn after they are gone; and a turn whose calls reach the MCP server's tools."""

from __future__ import annotations

import json
import shlex
import sys
from typing import Any

import pytest

from smol_tools.app.config import AppConfig
from smol_tools.app.mcp_servers import OFF, gate_problems
from smol_tools.mcp_tools import McpServerSpec
from smol_tools.tools import ToolSettings
from tests.mcp_demo_server import HttpDemoServer
from tests.test_app_support import AppProcess, FakeOpenAI, call, client

pytestmark = pytest.mark.slow
STDIO = f"{shlex.quote(sys.executable)} tests/mcp_demo_server.py"


def test_gates_follow_the_operator_switches() -> None:
    specs = [McpServerSpec.parse(STDIO), McpServerSpec.parse("http://10.0.0.7:9000/mcp")]
    space = AppConfig.from_env({"SPACE_ID": "me/demo"})
    assert not space.allow_mcp_servers and gate_problems(space, specs, ToolSettings()) == [OFF]
    assert AppConfig.from_env({}).allow_mcp_servers  # loopback: the visitor is the operator
    assert not AppConfig.from_env({"GRADIO_SERVER_NAME": "0.0.0.0"}).allow_mcp_servers
    # A host name that merely starts like a loopback one is reachable from elsewhere.
    assert not AppConfig.from_env({"GRADIO_SERVER_NAME": "localhost.example.com"}).allow_mcp_servers
    assert AppConfig.from_env({"GRADIO_SERVER_NAME": "[::1]"}).allow_mcp_servers
    allowed = AppConfig.from_env({"SPACE_ID": "me/demo", "SMOL_TOOLS_ALLOW_MCP_SERVERS": "1",
                                  "SMOL_TOOLS_ALLOW_NETWORK": "1"})
    problems = gate_problems(allowed, specs, ToolSettings())
    assert "code execution is off" in problems[0]
    assert "10.0.0.7" in problems[1] and "private" in problems[1].lower()  # the intranet stays out of reach
    with_code = AppConfig.from_env({"SPACE_ID": "me/demo", "SMOL_TOOLS_ALLOW_MCP_SERVERS": "1",
                                    "SMOL_TOOLS_ALLOW_CODE": "1", "SMOL_TOOLS_ALLOW_NETWORK": "0"})
    problems = gate_problems(with_code, specs, ToolSettings())
    assert len(problems) == 1 and "network access is off" in problems[0]


def test_mcp_servers_through_the_app(tiny_gguf_q8_0) -> None:
    with HttpDemoServer() as server, AppProcess("test_mcp_app") as app:
        c = client(app)
        refused = call(c, "set_mcp_servers", STDIO)  # code execution is off in this app
        assert not refused["ok"] and "code execution is off" in refused["problems"][0]
        bad = call(c, "set_mcp_servers", "ftp://127.0.0.1/x")
        assert not bad["ok"] and "only http:// and https://" in bad["problems"][0]
        connected = call(c, "set_mcp_servers", server.url)
        assert connected["ok"], connected
        names = [t["name"] for t in connected["tools"]]
        assert names == ["demo-tools__get_weather", "demo-tools__calculate", "slow_echo", "always_fails", "plan_trip"]
        scripted = ["get_weather", "calculate", "get_current_datetime", "read_file", "list_directory"]
        assert call(c, "status")["tools"] == scripted + names  # switched on after the tools that were on
        # Clearing the field disconnects them; the tools that were on stay on, in their order,
        # so the tiny model sees its scripted prompt again and answers its scripted turn.
        cleared = call(c, "set_mcp_servers", "")
        assert cleared["ok"] and cleared["tools"] == []
        assert call(c, "status")["tools"] == scripted
        turn = call(c, "send", "Compute 17 * 23, then add 100 to it.")
        assert [c_["result"] for c_ in turn["calls"]] == ["391", "491"] and turn["finish"]["reason"] == "answer"
        # The panel takes MCP tools like any tool, and forgets them with their server.
        assert call(c, "set_mcp_servers", server.url)["ok"]
        assert call(c, "set_tools", scripted + ["plan_trip"], "", False)["ok"]
        assert call(c, "set_mcp_servers", "")["ok"]
        assert not call(c, "set_tools", ["plan_trip"], "", False)["ok"]


class _McpCallingModel(FakeOpenAI):
    """The fake OpenAI-compatible server, scripted to call the MCP server's tools: a nested
    `plan_trip` call and one to `always_fails`, then an answer quoting the first result."""

    def reply(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        last = body["messages"][-1]
        if last["role"] == "tool":
            results = [m for m in body["messages"] if m["role"] == "tool"]
            return self._text(f"Planned: {results[0]['content']}")
        trip = {"trip": {"destination": "Rome", "legs": [{"from": "Paris", "to": "Milan", "days": 2},
                                                         {"from": "Milan", "to": "Rome", "days": 3}]}}
        return self._calls([("plan_trip", trip), ("always_fails", {"reason": "closed today"})])

    def _calls(self, calls: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
        deltas = [{"tool_calls": [{"index": i, "id": f"call_{i}", "type": "function",
                                   "function": {"name": name, "arguments": json.dumps(args)}}]}
                  for i, (name, args) in enumerate(calls)]
        return ([self._chunk({"role": "assistant", "content": ""})] + [self._chunk(d) for d in deltas]
                + [self._chunk({}, "tool_calls"), self._usage()])


def test_a_turn_in_the_app_calls_the_mcp_servers_tools() -> None:
    """Through the app, a model's calls reach the MCP server and its answers come back as the
    calls' results, shown like any tool's: schema-checked (the nested schema), an error the
    model reads for the tool that fails. The model is a scripted OpenAI-compatible server (the
    tiny model only knows the built-in names, which the MCP tools here do not take)."""
    model = _McpCallingModel().start()
    try:
        with HttpDemoServer() as server, AppProcess("test_mcp_app_turn") as app:
            c = client(app)
            assert call(c, "set_backend", "openai", "fake", model.base_url, "")["ok"]
            assert call(c, "set_mcp_servers", server.url)["ok"]
            turn = call(c, "send", "Plan my trip to Rome.")
            assert turn["finish"]["reason"] == "answer", turn["finish"]
            by_name = {c_["name"]: c_ for c_ in turn["calls"]}
            assert by_name["plan_trip"]["schema_ok"] and not by_name["plan_trip"]["problems"]
            assert json.loads(by_name["plan_trip"]["result"]) == {"destination": "Rome", "legs": 2, "days": 5}
            assert "closed today" in by_name["always_fails"]["result"]
            assert turn["answer"].startswith("Planned: ") and '"days": 5' in turn["answer"]
            # The model was offered the MCP tools with their own schemas (the nested one included).
            offered = {t["function"]["name"]: t["function"] for t in model.requests[0]["tools"]}
            assert offered["plan_trip"]["parameters"]["properties"]["trip"]["properties"]["legs"]["minItems"] == 1
    finally:
        model.stop()
