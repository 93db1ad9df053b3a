"""The app's non-widget logic without a server: settings from the environment, custom tool
validation, events → transcript → chat messages, and import of an export."""

from __future__ import annotations

import json
import tomllib

import pytest

from smol_tools.agent import ToolOutcome
from smol_tools.events import (AgentFinished, ContentDelta, ContextStatus, ReasoningDelta, RoundStarted,
                               ToolCallChecked, ToolCallCompleted, ToolCallStarted, ToolResultReady, TurnComplete,
                               Usage)
from smol_tools.app.config import QUANTS, AppConfig, ConfigError, hub_spec
from smol_tools.app.custom_tools import EXAMPLE, parse_custom_tools
from smol_tools.app.render import fence, render_history, render_metrics
from smol_tools.app.transcript import TurnBuilder, turns_from_messages
from smol_tools.chat_session import ChatSession
from smol_tools.toolcalls import parse_output
from tests.test_app_support import ROOT


def test_config_defaults_and_env() -> None:
    config = AppConfig.from_env({})
    assert (config.backend, config.host, config.port, config.allow_code) == ("llama-cpp-python", "127.0.0.1", 7860, False)
    assert config.model_spec() == "default:Q4_K_M"  # the model's known homes, in order
    config = AppConfig.from_env({"SMOL_TOOLS_QUANT": "q8_0", "SMOL_TOOLS_ALLOW_CODE": "1",
                                 "GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": "9000"})
    assert (config.model_spec(), config.allow_code, config.host, config.port) == (
        "default:Q8_0", True, "0.0.0.0", 9000)
    server = AppConfig.from_env({"SMOL_TOOLS_BACKEND": "openai", "SMOL_TOOLS_URL": "http://h:8080", "SMOL_TOOLS_MODEL": "m"})
    assert (server.backend, server.url, server.model_spec()) == ("openai", "http://h:8080", "m")
    with pytest.raises(ConfigError, match="SMOL_TOOLS_BACKEND"):
        AppConfig.from_env({"SMOL_TOOLS_BACKEND": "vllm"})
    with pytest.raises(ConfigError, match="SMOL_TOOLS_ALLOW_CODE"):
        AppConfig.from_env({"SMOL_TOOLS_ALLOW_CODE": "maybe"})


def test_hub_spec_only_touches_bare_repos() -> None:
    assert hub_spec("owner/repo", "Q5_K_M") == "owner/repo:Q5_K_M"
    assert hub_spec("owner/repo:Q8_0", "Q5_K_M") == "owner/repo:Q8_0"
    assert hub_spec("models/x.gguf", "Q5_K_M") == "models/x.gguf"
    assert hub_spec("tiny", "Q5_K_M") == "tiny"
    assert hub_spec("default", "Q5_K_M") == "default:Q5_K_M"


def test_quant_choices_are_the_published_ones() -> None:
    from smol_tools.pipeline.settings import CONFIG_PATH

    config = tomllib.loads(CONFIG_PATH.read_text())
    assert set(QUANTS) == set(config["build"]["quants"])


def test_custom_tools_are_validated_with_positions() -> None:
    tools, problems = parse_custom_tools(EXAMPLE, ["get_weather"])
    assert problems == [] and tools[0]["function"]["name"] == "lookup_order"
    _, problems = parse_custom_tools('[{"name": "x",\n "parameters": {"type": "object",}}]')
    assert problems and "line 2" in problems[0]
    _, problems = parse_custom_tools('{"name": "x", "parameters": {"type": "object", "properties": {"a": {"type": "strin"}}}}')
    assert "parameters/properties/a/type" in problems[0]
    _, problems = parse_custom_tools('{"name": "get_weather"}', ["get_weather"])
    assert "built-in" in problems[0]
    _, problems = parse_custom_tools('{"name": "bad name!"}')
    assert '"name"' in problems[0]


def _call_turn(text: str) -> TurnComplete:
    return TurnComplete(parse_output(text, thinking_open=True), text, "tool_calls",
                        Usage(400, 40, 360, 30, 0.1, 0.5))


def _parallel_events():
    raw = ('Two cities.\n</think>\n\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Tokyo"}}\n'
           '</tool_call>\n<tool_call>\n{"name": "get_weather", "arguments": {"city": 1}}\n</tool_call>')
    complete = _call_turn(raw)
    calls = complete.result.tool_calls
    return [
        RoundStarted(1), ReasoningDelta("Two cities."), ToolCallStarted(0, "get_weather"),
        ToolCallCompleted(0, calls[0]), ToolCallCompleted(1, calls[1]), complete,
        ToolCallChecked(1, 0, "get_weather", {"city": "Tokyo"}, calls[0].raw, True, ()),
        ToolCallChecked(1, 1, "get_weather", {"city": 1}, calls[1].raw, False, ("city: 1 is not of type 'string'",)),
        ToolResultReady(1, 0, "get_weather", {"city": "Tokyo"}, ToolOutcome('{"temperature_c": 12}'), 0.02),
        ToolResultReady(1, 1, "get_weather", {"city": 1}, ToolOutcome('{"error": "schema"}', True), 0.0),
        ContextStatus(1, 430, 4096),
        RoundStarted(2), ContentDelta("Tokyo: 12 °C."),
        TurnComplete(parse_output("\n</think>\n\nTokyo: 12 °C.", thinking_open=True), None, "stop",
                     Usage(460, 10, 450, 8, 0.01, 0.1)),
        ContextStatus(2, 468, 4096), AgentFinished("answer", "answered after 2 round(s)", "Tokyo: 12 °C."),
    ]


def test_events_fold_into_a_transcript() -> None:
    builder = TurnBuilder("Compare")
    for event in _parallel_events():
        builder.apply(event)
    data = builder.turn.to_dict()
    assert data["answer"] == "Tokyo: 12 °C." and data["finish"]["reason"] == "answer"
    first = data["rounds"][0]
    assert first["reasoning"] == "Two cities." and first["usage"]["cached_tokens"] == 360
    assert [(c["name"], c["arguments"], c["schema_ok"]) for c in first["calls"]] == [
        ("get_weather", {"city": "Tokyo"}, True), ("get_weather", {"city": 1}, False)]
    assert first["calls"][1]["problems"] == ["city: 1 is not of type 'string'"]
    assert first["calls"][0]["raw"].startswith("<tool_call>") and first["calls"][0]["seconds"] == 0.02
    assert data["context"] == {"used": 468, "limit": 4096}


def test_parallel_calls_render_side_by_side_in_one_numbered_round() -> None:
    builder = TurnBuilder("Compare")
    for event in _parallel_events():
        builder.apply(event)
    messages = render_history([builder.turn])
    titles = [m.get("metadata", {}).get("title") for m in messages]
    assert titles == [None, "Reasoning · round 1", "Round 1 · 2 parallel tool calls: get_weather, get_weather", None]
    assert messages[1]["metadata"]["status"] == "done"  # reasoning: collapsed once done
    cards = messages[2]["content"]
    assert cards.count('<div class="st-call">') == 2 and cards.startswith('<div class="st-calls">')
    assert "&lt;tool_call&gt;" not in cards and "```text\n<tool_call>" in cards  # raw text, literally
    assert '```json\n{\n  "name": "get_weather"' in cards and "✗ schema: `city` 1 is not of type 'string'" in cards
    assert messages[-1] == {"role": "assistant", "content": "Tokyo: 12 °C."}
    metrics = render_metrics([builder.turn], 4096)
    assert "468 / 4,096 tokens" in metrics and "| 1.2 |" in metrics


def test_a_failed_turn_says_so_and_marks_unfinished_calls() -> None:
    builder = TurnBuilder("Weather?")
    for event in [RoundStarted(1), ToolCallStarted(0, "get_weather"),
                  AgentFinished("error", "lost the connection to http://x: peer closed connection")]:
        builder.apply(event)
    assert builder.turn.calls()[0].status == "cut"
    messages = render_history([builder.turn])
    assert "cut off" in messages[1]["content"] and "cut off" in messages[1]["metadata"]["log"]
    assert "The backend failed" in messages[-1]["content"] and "kept" in messages[-1]["content"]


def test_fence_survives_backticks() -> None:
    assert fence("a ``` b").startswith("````\n")


def test_import_rebuilds_turns_and_tools() -> None:
    from devkit.scripted import load_scripted

    tools = load_scripted()["tools"]
    messages = [
        {"role": "user", "content": "Compare the weather in Tokyo and Lima."},
        {"role": "assistant", "content": "", "reasoning_content": "", "tool_calls": [
            {"id": "call_1_0", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Tokyo"}}},
            {"id": "call_1_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Lima"}'}}]},
        {"role": "tool", "tool_call_id": "call_1_0", "name": "get_weather", "content": '{"temperature_c": 12}'},
        {"role": "tool", "tool_call_id": "call_1_1", "name": "get_weather", "content": '{"error": "down"}'},
        {"role": "assistant", "content": "Tokyo: 12 °C.", "reasoning_content": ""},
    ]
    export = {"format": "smol-tools-session/1", "messages": messages, "tools": tools, "enable_thinking": False}
    turns = turns_from_messages(messages, tools)
    assert [(c.name, c.arguments, c.is_error, c.schema_ok) for c in turns[0].calls()] == [
        ("get_weather", {"city": "Tokyo"}, False, True), ("get_weather", {"city": "Lima"}, True, True)]
    assert turns[0].answer == "Tokyo: 12 °C." and turns[0].finish_reason == "answer"
    # ChatSession.load restores which registry tools were on, with the schemas the model saw.
    session = ChatSession(backend=None)  # type: ignore[arg-type]  (loading needs no model)
    session.load(json.loads(json.dumps(export)))
    assert session.tool_schemas() == tools and session.config.enable_thinking is False
