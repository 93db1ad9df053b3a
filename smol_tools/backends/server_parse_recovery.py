"""Keep a turn that llama-server generated but could not parse itself.

llama-server `--jinja` parses the model's output with a parser derived from the chat template
(common/chat.cpp, `common_chat_peg_parse`). When the finished output does not fit that parser
it throws "The model produced output that does not match the expected <format> format": a
plain request gets HTTP 500, a streamed one an `error` event, and either way no text. Outputs
it refuses include a call to a tool the request did not declare, text after a call, and a call
whose JSON never closes before the turn ends (its tool-call grammar keeps most sampled calls
valid, so in practice this comes from an assistant prefill or from a template/server mismatch).

Recovery: render the same request with the server's own `/apply-template` (same messages,
tools, template kwargs), generate from that prompt through `/completion` (raw text, no server
parsing), and parse the text with ours. The turn's notes say the server could not parse it.
With temperature > 0 the regenerated text is a new sample, not the refused one; `/completion`
also has no tool-call grammar, so what our parser finds is what the model wrote.
"""

from __future__ import annotations

import time
from typing import Any, Iterator, Mapping

import httpx

from ..chat_format import load_params
from ..toolcalls import StreamingParser
from .base import BackendError, SamplingParams
from ..events import TurnComplete, TurnEvent, Usage

# llama-server's messages for output its parser refuses (common/chat.cpp).
_REFUSALS = ("does not match the expected", "failed to parse input", "failed to parse tool call")


def is_unparsed_output_error(status: int | None, message: str) -> bool:
    """True for the server's "I generated it but cannot parse it" answer, not for bad requests."""
    return status in (None, 500) and any(marker in message.lower() for marker in _REFUSALS)


def _prefill(messages: list[Mapping[str, Any]]) -> str:
    """A trailing assistant message is continued, and the server parses it with the output."""
    if messages and messages[-1].get("role") == "assistant" and isinstance(messages[-1].get("content"), str):
        return messages[-1]["content"]
    return ""


def recover_unparsed_turn(base_url: str, chat_request: Mapping[str, Any], sampling: SamplingParams, *,
                          server_message: str, timeout_s: float) -> Iterator[TurnEvent]:
    """Regenerate the refused turn as raw text and parse it with ours (see the module doc).

    `chat_request` is the /v1/chat/completions body that was refused (openai client form:
    server-specific fields under `extra_body`)."""
    extra = chat_request.get("extra_body") or {}
    messages = list(chat_request.get("messages") or [])
    template_body: dict[str, Any] = {"messages": messages}
    for key in ("tools", "tool_choice", "parallel_tool_calls"):
        if chat_request.get(key) is not None:
            template_body[key] = chat_request[key]
    if extra.get("chat_template_kwargs"):
        template_body["chat_template_kwargs"] = extra["chat_template_kwargs"]
    started = time.perf_counter()
    try:
        with httpx.Client(base_url=base_url, timeout=timeout_s) as client:
            rendered = client.post("/apply-template", json=template_body)
            rendered.raise_for_status()
            prompt = rendered.json()["prompt"]
            body: dict[str, Any] = {
                "prompt": prompt, "stream": False, "cache_prompt": True, "n_predict": sampling.max_tokens,
                "temperature": sampling.temperature, "top_p": sampling.top_p, "top_k": sampling.top_k,
                "min_p": sampling.min_p, "repeat_penalty": sampling.repeat_penalty,
                "presence_penalty": sampling.presence_penalty, "stop": list(load_params().stop),
            }
            if sampling.seed is not None:
                body["seed"] = sampling.seed
            if getattr(sampling, "logit_bias", None):
                body["logit_bias"] = [[int(token), bias] for token, bias in sampling.logit_bias]
            answer = client.post("/completion", json=body)
            answer.raise_for_status()
            final = answer.json()
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        raise BackendError(f"{base_url} could not parse the model's output ({server_message}) and the raw-text "
                           f"retry through /apply-template + /completion failed too: {exc}") from exc
    prefill = _prefill(messages)
    before_prefill = prompt[:-len(prefill)] if prefill and prompt.endswith(prefill) else prompt
    parser = StreamingParser(thinking_open=before_prefill.rstrip().endswith("<think>"))
    raw = prefill + str(final.get("content") or "")
    yield from parser.feed(raw)
    yield from parser.finish()
    result = parser.result
    result.notes.append(f"llama-server could not parse this output ({server_message}); "
                        "smol-tools regenerated it as raw text through /completion and parsed it")
    timings = final.get("timings") or {}
    usage = Usage(prompt_tokens=int(final.get("tokens_evaluated") or 0),
                  completion_tokens=int(timings.get("predicted_n", final.get("tokens_predicted") or 0)),
                  prompt_seconds=float(timings.get("prompt_ms", 0.0)) / 1000,
                  generation_seconds=float(timings.get("predicted_ms", 0.0)) / 1000 or time.perf_counter() - started)
    usage.prompt_tokens_evaluated = int(timings.get("prompt_n", usage.prompt_tokens))
    usage.cached_tokens = max(0, usage.prompt_tokens - usage.prompt_tokens_evaluated)
    finish = "stop" if final.get("stop_type") in ("eos", "word") else "length"
    if finish == "stop" and result.tool_calls:
        finish = "tool_calls"
    yield TurnComplete(result, raw, finish, usage)
