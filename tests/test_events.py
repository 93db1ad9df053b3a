"""One event vocabulary (smol_tools/events.py): every consumer handles every event the agent can
yield, and raises on one it does not know instead of dropping it silently."""

from __future__ import annotations

import dataclasses
import io
import typing

import pytest

from smol_tools import events
from smol_tools.app.transcript import TurnBuilder
from smol_tools.events import (AgentEvent, AgentFinished, CallError, ContentDelta, ContextStatus, ParseResult,
                               ReasoningDelta, RoundStarted, ToolCall, ToolCallChecked, ToolCallCompleted,
                               ToolCallFailed, ToolCallStarted, ToolOutcome, ToolResultReady, TurnComplete,
                               UnknownEvent, Usage)
from smol_tools.terminal_chat import _show

CALL = ToolCall("get_weather", {"city": "Paris"}, '<tool_call>\n{"name": "get_weather"}\n</tool_call>', "json")

# One instance of every AgentEvent member, in the order an agent yields them in a tool round.
ONE_OF_EACH = [
    RoundStarted(1),
    ReasoningDelta("thinking"),
    ContentDelta("Let me check."),
    ToolCallStarted(0, "get_weather"),
    ToolCallCompleted(0, CALL),
    ToolCallFailed(1, CallError("<tool_call>{", "invalid JSON")),
    TurnComplete(ParseResult("thinking", "Let me check.", [CALL], [CallError("<tool_call>{", "invalid JSON")]),
                 None, "tool_calls", Usage(prompt_tokens=10, completion_tokens=5)),
    ContextStatus(1, 100, 4096, "context 100/4096"),
    ToolCallChecked(1, 0, "get_weather", {"city": "Paris"}, CALL.raw, True, ()),
    ToolResultReady(1, 0, "get_weather", {"city": "Paris"}, ToolOutcome('{"temperature_c": 21}'), 0.01),
    AgentFinished("answer", "done", "It is 21 °C."),
]


@dataclasses.dataclass(frozen=True)
class RenamedEvent:  # what a renamed or newly added event looks like to an old consumer
    text: str


def test_the_sample_covers_the_whole_union():
    assert {type(e) for e in ONE_OF_EACH} == set(typing.get_args(AgentEvent))
    # The turn and parser unions are parts of the agent's.
    assert set(typing.get_args(events.TurnEvent)) <= set(typing.get_args(AgentEvent))
    assert set(typing.get_args(events.StreamEvent)) <= set(typing.get_args(events.TurnEvent))


def test_turn_builder_handles_every_event():
    builder = TurnBuilder("weather?")
    for event in ONE_OF_EACH:
        builder.apply(event)
    turn = builder.turn
    assert turn.finish_reason == "answer" and turn.answer == "It is 21 °C."
    assert [(c.name, c.status, c.result) for c in turn.calls()] == [
        ("get_weather", "done", '{"temperature_c": 21}'), ("(malformed)", "cut", None)]
    assert turn.context_used == 100 and turn.rounds[0].usage.prompt_tokens == 10


def test_turn_builder_raises_on_an_unknown_event():
    builder = TurnBuilder("hi")
    builder.apply(RoundStarted(1))
    with pytest.raises(UnknownEvent, match="TurnBuilder.*RenamedEvent"):
        builder.apply(RenamedEvent("lost"))


def test_terminal_chat_handles_every_event(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    for event in ONE_OF_EACH:
        _show(event)
    text = out.getvalue()
    assert "Let me check." in text and '[call 1] {"name": "get_weather"' in text and "temperature_c" in text


def test_terminal_chat_raises_on_an_unknown_event(monkeypatch):
    monkeypatch.setattr("sys.stdout", io.StringIO())
    with pytest.raises(UnknownEvent, match="terminal chat.*RenamedEvent"):
        _show(RenamedEvent("lost"))


def test_events_module_depends_on_nothing_in_the_package():
    # Every layer imports it; it must import no layer.
    source = open(events.__file__, encoding="utf-8").read()
    assert "from ." not in source and "import smol_tools" not in source
