"""OpenAI-compatible servers (llama-server --jinja, vLLM, LM Studio) through the `openai` client.

Calls the server parsed itself are used as given; content always passes through our parser,
so a server that leaves `<tool_call>` text in the content still yields parsed calls.
"""

from __future__ import annotations

import time
from typing import Any, Iterator, Mapping, Sequence

import httpx
import openai

from ..chat_format import load_params
from ..tool_choice import ToolChoice, restrict_tools, tool_names
from .base import BackendError, BackendStatus, CancelToken, SamplingParams
from ..events import TurnEvent, Usage
from .messages import to_openai_wire
from .server_parse_recovery import is_unparsed_output_error, recover_unparsed_turn
from .server_stream import ServerTurnAssembler
from .server_template import FIX, probe_server_template


def openai_tool_fields(tools: Sequence[Mapping[str, Any]], sampling: SamplingParams) -> dict[str, Any]:
    """tools, tool_choice, parallel_tool_calls and strict as OpenAI-compatible servers read them.

    llama-server reads tool_choice as a string only ("auto", "none", "required"): a named
    function is sent as "required" with that one tool, which every server honours alike.
    `strict` is OpenAI's per-function flag (vLLM and OpenAI constrain the call; llama-server
    --jinja constrains tool calls with its own lazy grammar whether or not it is set)."""
    try:
        choice = ToolChoice.parse(sampling.tool_choice)
        choice.check(tool_names(tools))
    except ValueError as exc:
        raise BackendError(str(exc)) from exc
    sent = restrict_tools(tools, choice) if choice.mode == "function" else list(tools)
    if sampling.strict:
        sent = [{**t, "function": {**t["function"], "strict": True}} for t in sent]
    return {"tools": sent, "tool_choice": "required" if choice.mode == "function" else choice.mode,
            "parallel_tool_calls": sampling.parallel_tool_calls}


def _extra(obj: Any, name: str) -> Any:
    value = getattr(obj, name, None)
    if value is None and getattr(obj, "model_extra", None):
        value = obj.model_extra.get(name)
    return value


class OpenAICompatBackend:
    name = "openai-compatible"

    def __init__(self, base_url: str, model: str = "default", *, api_key: str | None = None,
                 timeout_s: float = 120.0, context_length: int | None = None) -> None:
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self.model = model
        self.timeout_s = timeout_s
        self.context_length = context_length or load_params().context_length
        self.client = openai.OpenAI(base_url=f"{self.base_url}/v1", api_key=api_key or "sk-no-key",
                                    timeout=timeout_s, max_retries=0)

    def check(self) -> BackendStatus:
        try:
            models = [m.id for m in self.client.models.list().data]
        except openai.APIConnectionError as exc:
            return BackendStatus(False, f"cannot reach {self.base_url}: the server is down or the URL is wrong ({exc.__cause__ or exc})")
        except openai.APIStatusError as exc:
            return BackendStatus(False, f"{self.base_url} answered HTTP {exc.status_code} to /v1/models")
        if self.model != "default" and models and self.model not in models:
            return BackendStatus(False, f"model {self.model!r} is not served by {self.base_url}; it serves: {', '.join(models)}")
        details: dict[str, Any] = {"models": models}
        with httpx.Client(base_url=self.base_url) as client:
            probe = probe_server_template(client)
        details["template_matches"] = probe.matches
        if probe.matches is False:  # llama-server with a GGUF carrying a foreign template
            return BackendStatus(False, f"{probe.detail}: tool calls will not work as trained. Fix: {FIX}", details)
        try:  # llama-server tells which template it uses; a template without tools cannot call them
            props = httpx.get(f"{self.base_url}/props", timeout=5).json()
            template = props.get("chat_template", "")
            details["chat_template_has_tools"] = "<tool_call>" in template or "tools" in template
            if template and not details["chat_template_has_tools"]:
                return BackendStatus(False, "the server's chat template has no tool support; start llama-server with --jinja and a GGUF carrying our template", details)
        except (httpx.HTTPError, ValueError):
            pass
        return BackendStatus(True, f"connected to {self.base_url} ({len(models)} model(s))", details)

    def count_tokens(self, text: str) -> int:
        try:
            response = httpx.post(f"{self.base_url}/tokenize", json={"content": text},
                                  timeout=min(30.0, self.timeout_s))
            response.raise_for_status()
            return len(response.json()["tokens"])
        except (httpx.HTTPError, KeyError, ValueError):
            return len(text.encode()) // 3  # servers without /tokenize: a conservative estimate

    def _call_open_token(self) -> int | None:
        """The id of `<tool_call>` when the server tokenizes it as one token (llama-server's
        /tokenize); None elsewhere, and the agent alone enforces tool_choice "none"."""
        if not hasattr(self, "_call_open"):
            self._call_open: int | None = None
            try:
                response = httpx.post(f"{self.base_url}/tokenize",
                                      json={"content": "<tool_call>", "parse_special": True},
                                      timeout=min(10.0, self.timeout_s))
                response.raise_for_status()
                tokens = response.json()["tokens"]
                if len(tokens) == 1 and isinstance(tokens[0], int):
                    self._call_open = tokens[0]
            except (httpx.HTTPError, KeyError, ValueError, TypeError):
                pass
        return self._call_open

    def stream_turn(self, messages: Sequence[Mapping[str, Any]],
                    tools: Sequence[Mapping[str, Any]] | None = None, *,
                    sampling: SamplingParams | None = None, enable_thinking: bool = True,
                    session_id: str = "default", cancel: CancelToken | None = None,
                    ) -> Iterator[TurnEvent]:
        sampling = sampling or SamplingParams.defaults()
        params = load_params()
        request: dict[str, Any] = {
            "model": self.model, "messages": to_openai_wire(messages), "stream": True,
            "temperature": sampling.temperature, "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens, "presence_penalty": sampling.presence_penalty,
            "stop": list(params.stop), "stream_options": {"include_usage": True},
            "extra_body": {"top_k": sampling.top_k, "min_p": sampling.min_p,
                           "repeat_penalty": sampling.repeat_penalty, "cache_prompt": True,
                           "chat_template_kwargs": {"enable_thinking": enable_thinking}},
        }
        if sampling.seed is not None:
            request["seed"] = sampling.seed
        bias = {str(t): max(-100.0, min(100.0, b)) for t, b in sampling.logit_bias}  # OpenAI's range
        if tools:
            request.update(openai_tool_fields(tools, sampling))
            if request["tool_choice"] == "none" and (call_open := self._call_open_token()) is not None:
                # llama-server keeps the tools in the prompt and lets the model write a call
                # anyway; banning the token that opens one makes "none" hold at the source.
                bias[str(call_open)] = -100.0
        if bias:
            request["logit_bias"] = bias
        assembler = ServerTurnAssembler()
        usage = Usage()
        finish = "length"
        started = time.perf_counter()
        try:
            stream = self.client.chat.completions.create(**request)
            with stream:
                for chunk in stream:
                    if cancel is not None and cancel.cancelled:
                        finish = "cancelled"
                        break
                    if chunk.usage is not None:
                        usage.prompt_tokens = chunk.usage.prompt_tokens
                        usage.completion_tokens = chunk.usage.completion_tokens
                        details = chunk.usage.prompt_tokens_details
                        usage.cached_tokens = (details.cached_tokens or 0) if details else 0
                        usage.prompt_tokens_evaluated = usage.prompt_tokens - usage.cached_tokens
                    timings = _extra(chunk, "timings")
                    if timings:  # llama-server's own measurements
                        usage.prompt_seconds = timings.get("prompt_ms", 0) / 1000
                        usage.generation_seconds = timings.get("predicted_ms", 0) / 1000
                        usage.prompt_tokens_evaluated = timings.get("prompt_n", usage.prompt_tokens_evaluated)
                    for choice in chunk.choices:
                        delta = choice.delta
                        yield from assembler.reasoning(_extra(delta, "reasoning_content") or _extra(delta, "reasoning") or "")
                        yield from assembler.content(delta.content or "")
                        for call in delta.tool_calls or []:
                            function = call.function
                            yield from assembler.call_fragment(call.index, function.name if function else None,
                                                               function.arguments if function else None)
                        if choice.finish_reason:
                            finish = choice.finish_reason
        except (openai.APITimeoutError, httpx.TimeoutException) as exc:  # before its base class
            raise BackendError(f"{self.base_url} did not answer within {self.timeout_s:g}s") from exc
        except (openai.APIConnectionError, httpx.TransportError) as exc:
            raise BackendError(f"lost the connection to {self.base_url}: {exc.__cause__ or exc}") from exc
        except openai.APIError as exc:  # HTTP status, or an error event inside the stream
            status = getattr(exc, "status_code", None)
            if not is_unparsed_output_error(status, exc.message):
                raise BackendError(f"{self.base_url} answered " + (f"HTTP {status}" if status else "an error")
                                   + f": {exc.message}") from exc
            # llama-server generated the turn but its own parser refused it: keep the turn.
            yield from recover_unparsed_turn(self.base_url, request, sampling, server_message=exc.message,
                                             timeout_s=self.timeout_s)
            return
        except (httpx.HTTPError, ValueError) as exc:
            raise BackendError(f"malformed stream from {self.base_url}: {exc}") from exc
        if not usage.generation_seconds:
            usage.generation_seconds = time.perf_counter() - started
        yield from assembler.finish(finish, usage)
