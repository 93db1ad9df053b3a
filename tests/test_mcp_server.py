"""The app as an MCP server: `python app.py` on 127.0.0.1 (offline, the tiny model), driven by
the real `mcp` SDK client over streamable HTTP at /gradio_api/mcp/: only the deliberate tools
are listed (with descriptions and typed parameters), the turn tool runs the agent and returns
the structured turn, conversations continue by id, the browser endpoints stay out of reach."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.test_app_support import AppProcess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def app(tiny_gguf_q8_0):
    with AppProcess("test_mcp_server") as process:
        yield process


async def _session_calls(url: str, calls: list[tuple[str, dict[str, Any]]]) -> tuple[list, list]:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with streamable_http_client(url) as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = (await session.list_tools()).tools
            results = [await session.call_tool(name, arguments) for name, arguments in calls]
    return tools, results


def _text(result) -> str:
    assert not result.isError, result.content
    return "".join(part.text for part in result.content if part.type == "text")


def _json(result) -> Any:
    value = json.loads(_text(result))
    return json.loads(value) if isinstance(value, str) else value  # JSON text, possibly quoted once


def test_mcp_client_lists_and_calls_the_deliberate_tools(app) -> None:
    url = f"{app.url.rstrip('/')}/gradio_api/mcp/"
    tools, results = asyncio.run(_session_calls(url, [
        ("run_agent_turn", {"message": "What is the weather in Paris?"}),
        ("parse_model_output", {"text": '<tool_call>\n{"name": "calculate", "arguments": {"expression": "1+1"}}\n'
                                        '</tool_call><tool_call>\n{"name": 1}\n</tool_call>'}),
        ("list_agent_tools", {}),
    ]))
    by_name = {t.name: t for t in tools}
    assert sorted(by_name) == ["list_agent_tools", "parse_model_output", "run_agent_turn"]
    turn_tool = by_name["run_agent_turn"]
    assert "Send one user message to the smol-tools agent" in (turn_tool.description or "")
    properties = turn_tool.inputSchema["properties"]
    assert properties["message"]["type"] == "string" and "user's message" in properties["message"]["description"]
    assert turn_tool.inputSchema["required"] == ["message"]
    assert by_name["parse_model_output"].inputSchema["properties"]["thinking_open"]["type"] == "boolean"

    turn = _json(results[0])
    assert [(c["name"], c["arguments"]) for c in turn["calls"]] == [("get_weather", {"city": "Paris"})]
    assert turn["calls"][0]["schema_ok"] and not turn["calls"][0]["is_error"]
    assert turn["finish"]["reason"] == "answer" and turn["answer"]
    assert turn["conversation"].startswith("mcp-") and turn["turn"] == 1
    assert len(turn["rounds"]) == 2 and turn["rounds"][0]["raw"].lstrip().startswith(("<tool_call>", "</think>"))

    parsed = _json(results[1])
    assert parsed["tool_calls"] == [{"name": "calculate", "arguments": {"expression": "1+1"}}]
    assert len(parsed["errors"]) == 1  # the malformed block is reported, not dropped

    listed = _json(results[2])
    names = [t["name"] for t in listed["tools"]]
    assert len(names) == 15 and "get_weather" in names
    assert {t["name"]: t["enabled"] for t in listed["tools"]}["execute_python"] is False


def test_conversation_continues_by_id_and_other_endpoints_are_not_tools(app) -> None:
    url = f"{app.url.rstrip('/')}/gradio_api/mcp/"
    _, first = asyncio.run(_session_calls(url, [("run_agent_turn", {"message": "What is 2 + 2?"})]))
    conversation = _json(first[0])["conversation"]
    _, second = asyncio.run(_session_calls(url, [
        ("run_agent_turn", {"message": "And the weather in Rome?", "conversation": conversation})]))
    turn = _json(second[0])
    assert turn["conversation"] == conversation and turn["turn"] == 2
    assert [(c["name"], c["arguments"]) for c in turn["calls"]] == [("get_weather", {"city": "Rome"})]

    async def forbidden() -> Any:
        from mcp import ClientSession
        from mcp.client.streamable_http import streamable_http_client

        async with streamable_http_client(url) as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await session.call_tool("put_file", {"path": "x.txt", "text": "no"})

    refused = asyncio.run(forbidden())
    assert refused.isError and "Unknown tool" in "".join(p.text for p in refused.content if p.type == "text")
