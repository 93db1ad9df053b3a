"""The backend interface: one call streams the events of one assistant turn.

Events are the parser's own (`ReasoningDelta`, `ContentDelta`, `ToolCallStarted`,
`ToolCallCompleted`, `ToolCallFailed`) followed by exactly one `TurnComplete` carrying the
final parse, the raw text where the runtime exposes it, usage and the finish reason. Every
adapter produces the same events for the same model output.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Protocol, Sequence, Union

from ..chat_format import load_params
from ..toolcalls import (
    ContentDelta,
    ParseResult,
    ReasoningDelta,
    ToolCallCompleted,
    ToolCallFailed,
    ToolCallStarted,
)


class BackendError(RuntimeError):
    """The runtime is unreachable or answered something unusable; the message says which."""


@dataclass(frozen=True)
class SamplingParams:
    temperature: float
    top_p: float
    top_k: int
    min_p: float
    repeat_penalty: float
    presence_penalty: float
    max_tokens: int
    seed: int | None = None
    # Tool-call policy (smol_tools.tool_choice, docs/strict-calls.md): OpenAI's tool_choice
    # ("auto", "none", "required" or {"type": "function", "function": {"name": ...}}), whether a
    # turn may hold several calls, and strict calls (a grammar from the tools' schemas).
    tool_choice: Any = "auto"
    parallel_tool_calls: bool = True
    strict: bool = False
    logit_bias: tuple[tuple[int, float], ...] = ()  # (token id, bias); -inf bans a token

    @classmethod
    def defaults(cls, **overrides: Any) -> "SamplingParams":
        """Defaults from templates/params.json, shared by every runtime."""
        params = load_params()
        values = {**params.sampling, "max_tokens": params.max_tokens, **overrides}
        return cls(**{k: values[k] for k in cls.__dataclass_fields__ if k in values})

    @classmethod
    def greedy(cls, **overrides: Any) -> "SamplingParams":
        return cls.defaults(temperature=0.0, **overrides)


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


class CancelToken:
    """Set from another thread (a stop button) to end generation at the next token."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


@dataclass(frozen=True)
class BackendStatus:
    ok: bool
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)


class Backend(Protocol):
    name: str
    context_length: int

    def stream_turn(self, messages: Sequence[Mapping[str, Any]],
                    tools: Sequence[Mapping[str, Any]] | None = None, *,
                    sampling: SamplingParams | None = None, enable_thinking: bool = True,
                    session_id: str = "default", cancel: CancelToken | None = None,
                    ) -> Iterator[TurnEvent]:
        ...

    def check(self) -> BackendStatus:
        ...

    def count_tokens(self, text: str) -> int:
        ...

    # Optional: `count_prompt_tokens(messages, tools, *, enable_thinking, session_id) -> int`, the
    # exact size of the next turn's prompt. A backend that renders prompts itself provides it so
    # the agent's context check costs no second render (the agent falls back to count_tokens).
