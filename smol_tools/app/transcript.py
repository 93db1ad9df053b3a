"""What happened in a turn, as plain data: rounds, each tool call (raw text, parsed JSON, schema
check, result, timing), usage and how the turn ended.

`TurnBuilder` folds the agent's events into a `TurnRecord` as they stream; `turns_from_messages`
rebuilds the same records from exported OpenAI messages, so an imported session looks like a
live one. The UI renders these records and the API returns `TurnRecord.to_dict()`: both read
one structure, so what a test sees through the API is what a person sees in the browser."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Mapping, Sequence


from ..backends.messages import arguments_object
from ..events import (AgentEvent, AgentFinished, ContentDelta, ContextStatus, ReasoningDelta, RoundStarted,
                      ToolCallChecked, ToolCallCompleted, ToolCallFailed, ToolCallStarted, ToolResultReady,
                      TurnComplete, UnknownEvent)
from ..tool_schema import call_problems
from ..toolcalls import canonical_call_text
from ..tools.scripted import is_scripted

CallStatus = Literal["streaming", "parsed", "running", "waiting", "done", "cut"]
MALFORMED = "(malformed)"


@dataclass
class CallRecord:
    index: int
    name: str
    raw: str = ""  # the exact <tool_call> block the model wrote (canonical form for server parses)
    arguments: Any = None  # the parsed JSON arguments
    status: CallStatus = "streaming"
    schema_ok: bool | None = None
    problems: list[str] = field(default_factory=list)
    result: str | None = None
    is_error: bool = False
    seconds: float | None = None
    manual: bool = False
    scripted: bool = False  # answered by the tiny model's scripted provider (tools/scripted.py)

    @property
    def malformed(self) -> bool:
        return self.name == MALFORMED


@dataclass
class UsageRecord:
    prompt_tokens: int = 0
    prompt_tokens_evaluated: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    prompt_seconds: float = 0.0
    generation_seconds: float = 0.0
    tokens_per_second: float = 0.0
    reuse_note: str = ""  # why the runtime re-evaluated earlier conversation, when it says

    @classmethod
    def from_usage(cls, usage: Any) -> "UsageRecord":
        return cls(usage.prompt_tokens, usage.prompt_tokens_evaluated,
                   max(0, usage.cached_tokens),  # a fresh prompt can read -1 from llama.cpp's counters
                   usage.completion_tokens, usage.prompt_seconds, usage.generation_seconds,
                   usage.tokens_per_second, getattr(usage, "reuse_note", ""))

    @property
    def reuse_ratio(self) -> float:
        return self.cached_tokens / self.prompt_tokens if self.prompt_tokens else 0.0


@dataclass
class RoundRecord:
    number: int
    reasoning: str = ""
    content: str = ""
    raw: str | None = None  # the model's whole output, when the runtime exposes it
    calls: list[CallRecord] = field(default_factory=list)
    finish_reason: str | None = None  # None while the model is still generating
    usage: UsageRecord | None = None
    context_used: int | None = None
    context_limit: int | None = None

    @property
    def generating(self) -> bool:
        return self.finish_reason is None

    @property
    def tools_seconds(self) -> float:
        return sum(c.seconds or 0.0 for c in self.calls)


@dataclass
class TurnRecord:
    user: str
    rounds: list[RoundRecord] = field(default_factory=list)
    finish_reason: str | None = None  # AgentFinished.reason; None while running
    finish_message: str = ""
    answer: str = ""
    notes: list[str] = field(default_factory=list)  # context warnings, dropped results, parser notes
    context_used: int | None = None
    context_limit: int | None = None
    started_at: float = field(default_factory=time.time)
    seconds: float | None = None

    @property
    def running(self) -> bool:
        return self.finish_reason is None

    def calls(self) -> list[CallRecord]:
        return [c for r in self.rounds for c in r.calls]

    def to_dict(self) -> dict[str, Any]:
        """The API's view of a turn: JSON-ready, stable keys."""
        return {
            "user": self.user,
            "answer": self.answer,
            "finish": {"reason": self.finish_reason, "message": self.finish_message},
            "rounds": [_round_dict(r) for r in self.rounds],
            "calls": [{"round": r.number, **_call_dict(c)} for r in self.rounds for c in r.calls],
            "notes": list(self.notes),
            "context": {"used": self.context_used, "limit": self.context_limit},
            "seconds": self.seconds,
        }


def _call_dict(call: CallRecord) -> dict[str, Any]:
    return {"index": call.index, "name": call.name, "arguments": call.arguments, "raw": call.raw,
            "schema_ok": call.schema_ok, "problems": list(call.problems), "result": call.result,
            "is_error": call.is_error, "seconds": call.seconds, "manual": call.manual, "scripted": call.scripted,
            "status": call.status}


def _round_dict(rnd: RoundRecord) -> dict[str, Any]:
    return {"round": rnd.number, "reasoning": rnd.reasoning, "content": rnd.content, "raw": rnd.raw,
            "finish_reason": rnd.finish_reason, "usage": asdict(rnd.usage) if rnd.usage else None,
            "context": {"used": rnd.context_used, "limit": rnd.context_limit},
            "calls": [_call_dict(c) for c in rnd.calls]}


class TurnBuilder:
    """Folds agent events, in order, into one `TurnRecord`."""

    def __init__(self, user: str) -> None:
        self.turn = TurnRecord(user)
        self._streaming: dict[int, CallRecord] = {}  # parser block index -> call, until TurnComplete

    @property
    def round(self) -> RoundRecord | None:
        return self.turn.rounds[-1] if self.turn.rounds else None

    def apply(self, event: AgentEvent) -> None:
        """Fold one event in; an event class this builder does not know raises UnknownEvent."""
        match event:
            case RoundStarted():
                self._on_RoundStarted(event)
            case ReasoningDelta():
                self._on_ReasoningDelta(event)
            case ContentDelta():
                self._on_ContentDelta(event)
            case ToolCallStarted():
                self._on_ToolCallStarted(event)
            case ToolCallCompleted():
                self._on_ToolCallCompleted(event)
            case ToolCallFailed():
                self._on_ToolCallFailed(event)
            case TurnComplete():
                self._on_TurnComplete(event)
            case ToolCallChecked():
                self._on_ToolCallChecked(event)
            case ToolResultReady():
                self._on_ToolResultReady(event)
            case ContextStatus():
                self._on_ContextStatus(event)
            case AgentFinished():
                self._on_AgentFinished(event)
            case _:
                raise UnknownEvent("TurnBuilder", event)

    def waiting_for_manual(self, name: str, arguments: Mapping[str, Any]) -> CallRecord | None:
        """Mark the call a manual result is asked for (the callback gets no index: match it)."""
        rnd = self.round
        for call in rnd.calls if rnd else []:
            if call.name == name and call.arguments == dict(arguments) and call.status == "running":
                call.status = "waiting"
                return call
        return None

    # -- events ------------------------------------------------------------------------------
    def _on_RoundStarted(self, event: RoundStarted) -> None:
        self.turn.rounds.append(RoundRecord(event.round))
        self._streaming = {}

    def _on_ReasoningDelta(self, event: ReasoningDelta) -> None:
        if self.round is not None:
            self.round.reasoning += event.text

    def _on_ContentDelta(self, event: ContentDelta) -> None:
        if self.round is not None:
            self.round.content += event.text

    def _on_ToolCallStarted(self, event: ToolCallStarted) -> None:
        if self.round is not None and event.index not in self._streaming:
            call = CallRecord(len(self.round.calls), event.name)
            self._streaming[event.index] = call
            self.round.calls.append(call)

    def _on_ToolCallCompleted(self, event: ToolCallCompleted) -> None:
        self._on_ToolCallStarted(ToolCallStarted(event.index, event.call.name))
        call = self._streaming.get(event.index)
        if call is not None:
            call.name, call.raw, call.arguments = event.call.name, event.call.raw, event.call.arguments
            call.status = "parsed"

    def _on_ToolCallFailed(self, event: ToolCallFailed) -> None:
        self._on_ToolCallStarted(ToolCallStarted(event.index, MALFORMED))
        call = self._streaming.get(event.index)
        if call is not None:
            call.name, call.raw, call.arguments = MALFORMED, event.error.raw, None
            call.problems, call.schema_ok, call.status = [event.error.message], False, "parsed"

    def _on_TurnComplete(self, event: TurnComplete) -> None:
        rnd = self.round
        if rnd is None:
            return
        result = event.result
        rnd.reasoning = result.reasoning or rnd.reasoning.strip()
        rnd.content = result.content
        rnd.raw = event.raw
        rnd.finish_reason = event.finish_reason
        rnd.usage = UsageRecord.from_usage(event.usage)
        # The agent numbers calls by their place in the final parse (calls, then malformed
        # blocks); renumber so its ToolCallChecked/ToolResultReady indices land on the right card.
        calls = [CallRecord(i, c.name, c.raw, c.arguments, "parsed") for i, c in enumerate(result.tool_calls)]
        calls += [CallRecord(len(calls) + j, MALFORMED, e.raw, None, "parsed", False, [e.message])
                  for j, e in enumerate(result.errors)]
        rnd.calls = calls
        self._streaming = {}
        # How the output was read (reasoning never closed, calls over the per-round cap).
        self.turn.notes.extend(f"round {rnd.number}: {note}" for note in result.notes)

    def _on_ToolCallChecked(self, event: ToolCallChecked) -> None:
        call = self._call(event.index)
        if call is not None:
            call.schema_ok, call.problems = event.ok, list(event.problems)
            call.status = "running"

    def _on_ToolResultReady(self, event: ToolResultReady) -> None:
        call = self._call(event.index)
        if call is None:
            return
        call.result, call.is_error = event.outcome.content, event.outcome.is_error
        call.seconds, call.manual, call.status = event.seconds, event.manual, "done"
        call.scripted = is_scripted(event.outcome.data)
        if call.malformed and call.schema_ok is None:
            call.schema_ok = False

    def _on_ContextStatus(self, event: ContextStatus) -> None:
        self.turn.context_used, self.turn.context_limit = event.used_tokens, event.limit
        rnd = self.round
        if rnd is not None and rnd.number == event.round:
            rnd.context_used, rnd.context_limit = event.used_tokens, event.limit
        if event.note:
            self.turn.notes.append(event.note)

    def _on_AgentFinished(self, event: AgentFinished) -> None:
        self.turn.finish_reason, self.turn.finish_message = event.reason, event.message
        self.turn.answer = event.content
        self.turn.seconds = time.time() - self.turn.started_at
        for call in self.turn.calls():
            if call.status != "done":  # a stop or a failure ended the turn before this call ran
                call.status = "cut"

    def _call(self, index: int) -> CallRecord | None:
        rnd = self.round
        if rnd is None or not 0 <= index < len(rnd.calls):
            return None
        return rnd.calls[index]


def _schema_check(call: CallRecord, schemas: Mapping[str, Any]) -> None:
    call.problems = call_problems(call.name, call.arguments, schemas)  # the agent's check and wording
    call.schema_ok = not call.problems


def turns_from_messages(messages: Sequence[Mapping[str, Any]],
                        tools: Sequence[Mapping[str, Any]] = ()) -> list[TurnRecord]:
    """Rebuild turn records from OpenAI messages (an imported or reloaded session); calls are
    checked against `tools`' schemas as the agent would have checked them."""
    schemas = {t["function"]["name"]: t["function"].get("parameters", {}) for t in tools}
    turns: list[TurnRecord] = []
    for message in messages:
        role = message.get("role")
        if role == "user":
            turns.append(TurnRecord(str(message.get("content") or ""), finish_reason="answer",
                                    finish_message="imported"))
            continue
        if not turns or role not in ("assistant", "tool"):
            continue  # the system prompt, or messages before the first user turn
        turn = turns[-1]
        if role == "assistant":
            rnd = RoundRecord(len(turn.rounds) + 1, str(message.get("reasoning_content") or ""),
                              str(message.get("content") or ""))
            for i, tc in enumerate(message.get("tool_calls") or []):
                function = tc.get("function", {})
                name, args = function.get("name", ""), arguments_object(function.get("arguments"))
                call = CallRecord(i, name, canonical_call_text(name, args), args, "done")
                if schemas:
                    _schema_check(call, schemas)
                rnd.calls.append(call)
            rnd.finish_reason = "tool_calls" if rnd.calls else "stop"
            turn.rounds.append(rnd)
            turn.answer = rnd.content if not rnd.calls else ""
        elif turn.rounds:
            pending = [c for c in turn.rounds[-1].calls if c.result is None]
            call = pending[0] if pending else None
            if call is None:  # a tool message for a malformed block (no tool_call entry)
                call = CallRecord(len(turn.rounds[-1].calls), str(message.get("name") or MALFORMED), status="done")
                turn.rounds[-1].calls.append(call)
            call.result = str(message.get("content") or "")
            call.is_error = _looks_like_error(call.result)
    for turn in turns:
        if turn.rounds and turn.rounds[-1].calls:
            turn.finish_reason, turn.finish_message = "error", "imported: the turn ended before an answer"
    return turns


def _looks_like_error(content: str) -> bool:
    try:
        data = json.loads(content)
    except json.JSONDecodeError:
        return False
    return isinstance(data, dict) and set(data) >= {"error"}

