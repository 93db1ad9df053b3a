"""Ollama through the official `ollama` client: /api/chat with tools and thinking.

Ollama parses tool calls itself (from the `<tool_call>` prefix it finds in our Modelfile's
TEMPLATE) and returns thinking separately; content still passes through our parser so a call
Ollama left in the text is not lost.
"""

from __future__ import annotations

import time
from typing import Any, Iterator, Mapping, Sequence

import httpx
import ollama

from ..chat_format import load_params
from ..tool_choice import ToolChoice, restrict_tools, tool_names
from .base import BackendError, BackendStatus, CancelToken, SamplingParams
from ..events import TurnEvent, Usage
from .messages import to_ollama_wire
from .server_stream import ServerTurnAssembler


class OllamaBackend:
    name = "ollama"
    schema_view = "ollama"  # its templates get Go maps: sorted keys, only its schema keywords

    def __init__(self, host: str = "http://127.0.0.1:11434", model: str = "smol-tools", *,
                 timeout_s: float = 120.0, context_length: int | None = None) -> None:
        self.host = host.rstrip("/")
        self.model = model
        self.timeout_s = timeout_s
        self.context_length = context_length or load_params().context_length
        self.client = ollama.Client(host=self.host, timeout=timeout_s)

    def check(self) -> BackendStatus:
        try:
            names = [m.model for m in self.client.list().models]
        except (httpx.HTTPError, ConnectionError) as exc:
            return BackendStatus(False, f"cannot reach Ollama at {self.host}: is `ollama serve` running? ({exc})")
        except ollama.ResponseError as exc:
            return BackendStatus(False, f"Ollama at {self.host} answered an error: {exc.error}")
        wanted = {self.model, f"{self.model}:latest"}
        if not wanted & set(names):
            return BackendStatus(False, f"model {self.model!r} is not in Ollama; create it with "
                                        f"`ollama create {self.model} -f Modelfile` (have: {', '.join(names) or 'none'})")
        try:
            template = self.client.show(self.model).template or ""
        except (ollama.ResponseError, httpx.HTTPError, ValueError):  # ValueError: odd /api/show JSON
            template = ""
        if template and "<tool_call>" not in template:
            return BackendStatus(False, f"{self.model}'s TEMPLATE has no <tool_call>: Ollama will not parse tool calls")
        return BackendStatus(True, f"Ollama at {self.host} serves {self.model}", {"models": names})

    def count_tokens(self, text: str) -> int:
        return len(text.encode()) // 3  # Ollama has no tokenize endpoint: a conservative estimate

    @staticmethod
    def _tools_sent(tools: Sequence[Mapping[str, Any]] | None, sampling: SamplingParams) -> list | None:
        """Ollama has no tool_choice: "none" sends no tools (Ollama then parses no calls), a named
        function sends only that tool; "required" and parallel_tool_calls=false are enforced by the
        agent (docs/strict-calls.md). Strict calls have no Ollama equivalent for our format."""
        try:
            choice = ToolChoice.parse(sampling.tool_choice)
            choice.check(tool_names(tools))
        except ValueError as exc:
            raise BackendError(str(exc)) from exc
        sent = restrict_tools(tools, choice) if choice.mode in ("none", "function") else list(tools or [])
        return sent or None

    def stream_turn(self, messages: Sequence[Mapping[str, Any]],
                    tools: Sequence[Mapping[str, Any]] | None = None, *,
                    sampling: SamplingParams | None = None, enable_thinking: bool = True,
                    session_id: str = "default", cancel: CancelToken | None = None,
                    ) -> Iterator[TurnEvent]:
        sampling = sampling or SamplingParams.defaults()
        options = {"temperature": sampling.temperature, "top_p": sampling.top_p,
                   "top_k": sampling.top_k, "min_p": sampling.min_p,
                   "repeat_penalty": sampling.repeat_penalty,
                   "presence_penalty": sampling.presence_penalty,
                   "num_predict": sampling.max_tokens, "num_ctx": self.context_length,
                   "stop": list(load_params().stop)}
        if sampling.seed is not None:
            options["seed"] = sampling.seed
        assembler = ServerTurnAssembler()
        usage = Usage()
        finish = "length"
        call_index = 0
        started = time.perf_counter()
        try:
            for chunk in self.client.chat(model=self.model, messages=to_ollama_wire(messages),
                                          tools=self._tools_sent(tools, sampling), stream=True,
                                          think=enable_thinking, options=options):
                if cancel is not None and cancel.cancelled:
                    finish = "cancelled"
                    break
                message = chunk.message
                yield from assembler.reasoning(message.thinking or "")
                yield from assembler.content(message.content or "")
                for call in message.tool_calls or []:
                    # Ollama sends each call whole, arguments already an object.
                    yield from assembler.call_fragment(call_index, call.function.name,
                                                       dict(call.function.arguments or {}))
                    call_index += 1
                if chunk.done:
                    finish = {"stop": "stop", "length": "length"}.get(chunk.done_reason or "stop", "stop")
                    usage.prompt_tokens = chunk.prompt_eval_count or 0
                    usage.prompt_tokens_evaluated = usage.prompt_tokens
                    usage.completion_tokens = chunk.eval_count or 0
                    usage.prompt_seconds = (chunk.prompt_eval_duration or 0) / 1e9
                    usage.generation_seconds = (chunk.eval_duration or 0) / 1e9
        except ollama.ResponseError as exc:
            raise BackendError(f"Ollama error ({exc.status_code}): {exc.error}") from exc
        except (httpx.TimeoutException, TimeoutError) as exc:
            raise BackendError(f"Ollama at {self.host} did not answer within {self.timeout_s:g}s") from exc
        except (httpx.HTTPError, ConnectionError) as exc:
            raise BackendError(f"lost the connection to Ollama at {self.host}: {exc}") from exc
        except ValueError as exc:  # malformed JSON lines in the stream
            raise BackendError(f"malformed stream from Ollama at {self.host}: {exc}") from exc
        if not usage.generation_seconds:
            usage.generation_seconds = time.perf_counter() - started
        yield from assembler.finish(finish, usage)
