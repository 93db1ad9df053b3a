"""The agent loop's rules, driven by a stand-in model that replays fixed raw outputs through
our real parser (the loop is what is under test here; real runtimes are in test_backends.py)."""

from __future__ import annotations

import json
import time
from typing import Any, Iterator

from smol_tools.agent import Agent, AgentConfig, ToolOutcome
from smol_tools.events import AgentFinished, ContextStatus, ToolCallChecked, ToolResultReady, TurnComplete, Usage
from smol_tools.toolcalls import StreamingParser
from devkit.scripted import load_scripted

TOOLS = load_scripted()["tools"]


class ReplayModel:
    """Answers each turn with the next scripted raw output (our parser turns it into events)."""

    name = "replay"

    def __init__(self, outputs: list[str], context_length: int = 32768) -> None:
        self.outputs = list(outputs)
        self.context_length = context_length
        self.seen: list[list[dict[str, Any]]] = []

    def count_tokens(self, text: str) -> int:
        return len(text) // 4

    def stream_turn(self, messages, tools=None, **kwargs) -> Iterator[Any]:
        self.seen.append([dict(m) for m in messages])
        raw = self.outputs.pop(0) if self.outputs else "Done.<|im_end|>"
        parser = StreamingParser(thinking_open=False)
        yield from parser.feed(raw)
        yield from parser.finish()
        result = parser.result
        yield TurnComplete(result, raw, "tool_calls" if result.tool_calls else "stop",
                           Usage(prompt_tokens=100, completion_tokens=10))


def call(name: str, arguments: Any) -> str:
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return f'<tool_call>\n{{"name": "{name}", "arguments": {args}}}\n</tool_call>'


def echo_executor(name: str, arguments: dict) -> ToolOutcome:
    return ToolOutcome(json.dumps({"tool": name, "arguments": arguments}))


def run(outputs: list[str], executor=echo_executor, **config: Any):
    model = ReplayModel(outputs, config.pop("context_length", 32768))
    messages = [{"role": "user", "content": "go"}]
    agent = Agent(model, TOOLS, executor, config=AgentConfig(**config), manual=config.pop("manual", None))
    return model, messages, list(agent.run(messages))


def results(events) -> list[ToolResultReady]:
    return [e for e in events if isinstance(e, ToolResultReady)]


def test_answer_without_calls_finishes_in_one_round() -> None:
    _, messages, events = run(["Hello there.<|im_end|>"])
    assert events[-1] == AgentFinished("answer", "answered after 1 round(s)", "Hello there.")
    assert messages[-1]["content"] == "Hello there."


def test_parallel_calls_run_and_return_in_call_order() -> None:
    slow_first = {"Tokyo": 0.3, "Lima": 0.0}

    def executor(name: str, arguments: dict) -> ToolOutcome:
        time.sleep(slow_first[arguments["city"]])
        return ToolOutcome(arguments["city"])
    model, messages, events = run([call("get_weather", {"city": "Tokyo"}) + "\n" +
                                   call("get_weather", {"city": "Lima"}), "Both done.<|im_end|>"], executor)
    assert [r.outcome.content for r in results(events)] == ["Tokyo", "Lima"]
    assert [m["content"] for m in messages if m["role"] == "tool"] == ["Tokyo", "Lima"]
    assert events[-1].reason == "answer"
    assert len(model.seen) == 2 and model.seen[1][-1]["role"] == "tool"


def test_unknown_tool_and_schema_violation_become_error_results() -> None:
    _, messages, events = run([call("launch_rocket", {}) + "\n" + call("get_weather", {"town": "Paris"}),
                               "Sorry.<|im_end|>"])
    checks = [e for e in events if isinstance(e, ToolCallChecked)]
    assert [c.ok for c in checks] == [False, False]
    first, second = results(events)
    assert first.outcome.is_error and "unknown tool 'launch_rocket'" in first.outcome.content
    assert second.outcome.is_error and "'city' is a required property" in second.outcome.content
    assert "arguments do not match the schema of get_weather" in second.outcome.content
    assert events[-1].reason == "answer"


def test_malformed_call_is_fed_back_for_recovery() -> None:
    model, messages, events = run(['<tool_call>\n{"name": "get_weather", "arguments": {"city": }\n</tool_call>',
                                   call("get_weather", {"city": "Paris"}), "Fine.<|im_end|>"])
    bad = results(events)[0]
    assert bad.outcome.is_error and "malformed tool call" in bad.outcome.content
    assert results(events)[1].outcome.content == json.dumps({"tool": "get_weather", "arguments": {"city": "Paris"}})
    assert events[-1].reason == "answer"


def test_tool_exception_and_timeout_are_results_not_crashes() -> None:
    def executor(name: str, arguments: dict) -> ToolOutcome:
        if name == "calculate":
            raise ZeroDivisionError("division by zero")
        time.sleep(2)
        return ToolOutcome("late")
    _, _, events = run([call("calculate", {"expression": "1/0"}) + "\n" + call("get_weather", {"city": "X"}),
                        "ok<|im_end|>"], executor, tool_timeout_s=0.5)
    crash, late = results(events)
    assert crash.outcome.is_error and "ZeroDivisionError" in crash.outcome.content
    assert late.outcome.is_error and "timed out after 0.5s" in late.outcome.content


def test_round_limit_stops_a_model_that_never_answers() -> None:
    _, messages, events = run([call("calculate", {"expression": "1"})] * 10, max_rounds=3)
    assert events[-1].reason == "round_limit"
    assert sum(1 for m in messages if m["role"] == "assistant") == 3
    assert sum(1 for m in messages if m["role"] == "tool") == 3


def test_manual_mode_uses_the_given_result() -> None:
    asked = []

    def manual(name: str, arguments: dict) -> str:
        asked.append((name, arguments))
        return "typed by the operator"
    model = ReplayModel([call("get_weather", {"city": "Paris"}), "ok<|im_end|>"])
    agent = Agent(model, TOOLS, echo_executor, manual=manual,
                  config=AgentConfig(manual_tools=frozenset({"get_weather"})))
    events = list(agent.run([{"role": "user", "content": "go"}]))
    assert asked == [("get_weather", {"city": "Paris"})]
    assert results(events)[0].manual and results(events)[0].outcome.content == "typed by the operator"


def test_context_overflow_stops_with_a_clear_choice() -> None:
    big = "x" * 40_000
    model = ReplayModel([call("calculate", {"expression": "1"}), "ok<|im_end|>"], context_length=8192)
    messages = [{"role": "user", "content": "go"}, {"role": "assistant", "content": "",
                "tool_calls": [{"type": "function", "function": {"name": "calculate", "arguments": {}}}]},
                {"role": "tool", "content": big}, {"role": "user", "content": "again"}]
    events = list(Agent(model, TOOLS, echo_executor, config=AgentConfig()).run(messages))
    assert events[-1].reason == "context_overflow" and "drop oldest tool results" in events[-1].message
    assert messages[2]["content"] == big  # nothing lost
    events = list(Agent(model, TOOLS, echo_executor,
                        config=AgentConfig(context_policy="drop_oldest")).run(messages))
    assert any(isinstance(e, ContextStatus) and "dropped" in e.note for e in events)
    assert messages[2]["content"].startswith("[tool result dropped to fit")
    assert events[-1].reason == "answer"
