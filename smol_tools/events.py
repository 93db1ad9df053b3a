"""Every event of one user turn, in one vocabulary: what the parser reads from model text, what
a backend streams for one assistant turn, and what the agent adds around tool rounds.

    parser   ReasoningDelta, ContentDelta, ToolCallStarted, ToolCallCompleted, ToolCallFailed
             (`StreamEvent`; payloads ToolCall, CallError)
    turn     TurnComplete (payloads ParseResult, Usage), once per assistant turn
             (`TurnEvent` = parser events + TurnComplete: what `Backend.stream_turn` yields)
    agent    RoundStarted, ToolCallChecked, ToolResultReady (payload ToolOutcome),
             ContextStatus, AgentFinished
             (`AgentEvent` = all of the above: what `Agent.run` yields and the UI consumes)

Consumers dispatch on these classes with `match`/`isinstance` and raise `UnknownEvent` on
anything else, so a renamed or added event fails loudly instead of vanishing from a page.
This module imports nothing from the package: every layer can depend on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Union

# ---------------------------------------------------------------------------------------------
# Parser: model text -> reasoning, content, tool calls


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]
    raw: str
    form: Literal["json", "xml"]


@dataclass(frozen=True)
class CallError:
    raw: str
    message: str


@dataclass
class ParseResult:
    reasoning: str | None
    content: str
    tool_calls: list[ToolCall]
    errors: list[CallError]
    # Things the user should know about how the text was read (e.g. reasoning never closed).
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "reasoning": self.reasoning,
            "content": self.content,
            "tool_calls": [{"name": c.name, "arguments": c.arguments} for c in self.tool_calls],
            "errors": [{"raw": e.raw, "message": e.message} for e in self.errors],
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True)
class ContentDelta:
    text: str


@dataclass(frozen=True)
class ToolCallStarted:
    index: int
    name: str


@dataclass(frozen=True)
class ToolCallCompleted:
    index: int
    call: ToolCall


@dataclass(frozen=True)
class ToolCallFailed:
    index: int
    error: CallError


StreamEvent = Union[ReasoningDelta, ContentDelta, ToolCallStarted, ToolCallCompleted, ToolCallFailed]

# ---------------------------------------------------------------------------------------------
# Turn: what a backend streams for one assistant turn


@dataclass
class Usage:
    prompt_tokens: int = 0  # tokens in the full prompt
    prompt_tokens_evaluated: int = 0  # of which the runtime actually had to evaluate
    cached_tokens: int = 0  # reused from an earlier round
    completion_tokens: int = 0
    prompt_seconds: float = 0.0
    generation_seconds: float = 0.0
    reuse_note: str = ""  # why the runtime re-evaluated part of the conversation, when it knows

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.generation_seconds if self.generation_seconds else 0.0


@dataclass(frozen=True)
class TurnComplete:
    result: ParseResult
    raw: str | None  # exact model text, when the runtime gives it
    finish_reason: str  # "stop", "tool_calls", "length", "cancelled"
    usage: Usage


TurnEvent = Union[ReasoningDelta, ContentDelta, ToolCallStarted, ToolCallCompleted, ToolCallFailed,
                  TurnComplete]

# ---------------------------------------------------------------------------------------------
# Agent: tool rounds around the backend's turns


@dataclass(frozen=True)
class ToolOutcome:
    """What one tool call produced; `content` is what the model reads."""

    content: str
    is_error: bool = False
    data: Any = None


@dataclass(frozen=True)
class RoundStarted:
    round: int


@dataclass(frozen=True)
class ToolCallChecked:
    round: int
    index: int
    name: str
    arguments: Any
    raw: str
    ok: bool
    problems: tuple[str, ...]  # schema errors, unknown tool, malformed call


@dataclass(frozen=True)
class ToolResultReady:
    round: int
    index: int
    name: str
    arguments: Any
    outcome: ToolOutcome
    seconds: float
    manual: bool = False


@dataclass(frozen=True)
class ContextStatus:
    round: int
    used_tokens: int
    limit: int
    note: str = ""


@dataclass(frozen=True)
class AgentFinished:
    reason: Literal["answer", "round_limit", "cancelled", "error", "context_overflow"]
    message: str
    content: str = ""


AgentEvent = Union[RoundStarted, ReasoningDelta, ContentDelta, ToolCallStarted, ToolCallCompleted,
                   ToolCallFailed, TurnComplete, ToolCallChecked, ToolResultReady, ContextStatus,
                   AgentFinished]


class UnknownEvent(TypeError):
    """A consumer met an event class it does not handle: a new or renamed event that the
    consumer was not updated for. Raised, never ignored."""

    def __init__(self, consumer: str, event: object) -> None:
        super().__init__(f"{consumer} does not know the event {type(event).__module__}."
                         f"{type(event).__qualname__}: handle it there (smol_tools/events.py lists them all)")
