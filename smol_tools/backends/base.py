"""The backend interface: one call streams the events of one assistant turn.

Events (smol_tools/events.py, `TurnEvent`) are the parser's own (`ReasoningDelta`,
`ContentDelta`, `ToolCallStarted`, `ToolCallCompleted`, `ToolCallFailed`) followed by exactly
one `TurnComplete` carrying the final parse, the raw text where the runtime exposes it, usage
and the finish reason. Every adapter produces the same events for the same model output.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Protocol, Sequence, runtime_checkable

from ..chat_format import load_params
from ..events import TurnComplete, TurnEvent, Usage

__all__ = ["Backend", "BackendError", "BackendStatus", "CancelToken", "CountsPromptTokens", "SamplingParams",
           # The turn's events, defined in smol_tools/events.py; adapters may import them from here.
           "TurnComplete", "TurnEvent", "Usage"]


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


@runtime_checkable
class CountsPromptTokens(Protocol):
    """Optional second face of a backend that renders prompts itself (llama-cpp-python,
    llama-server fed token ids): the exact size of the next turn's prompt, so the agent's
    context check costs no second render. Other backends are measured with `count_tokens` on
    `chat_format.render_prompt`."""

    def count_prompt_tokens(self, messages: Sequence[Mapping[str, Any]],
                            tools: Sequence[Mapping[str, Any]] | None = None, *,
                            enable_thinking: bool = True, session_id: str = "default") -> int:
        ...
