"""llama-server through its native `/completion` endpoint, fed token ids instead of text.

Why a second llama-server adapter: the OpenAI endpoint makes the server render and re-tokenize
the whole conversation every round. On Qwen3.5's hybrid architecture that loses the prompt
cache whenever re-tokenization differs from what the model generated (an empty think block:
`<think>\\n` + `\\n` re-tokenizes as one `\\n\\n`), because the linear-attention layers' state
cannot be rolled back; the server then restores a checkpoint and re-evaluates the previous turn
(about 2x the new tokens per round). Here the prompt is rendered by our `chat_format` (the
template embedded in the GGUF; tests prove them equal), and each round's prompt is sent as the
exact token ids the server's slot already holds (previous prompt + generated tokens) followed by
the tokens of the new suffix, so only the suffix is evaluated. Tool calls are parsed by our
streaming parser from the raw text, as in process.

Parallel slots: a server started with `-np N` decodes N sequences at once, each slot keeping its
own prompt cache. Each session is pinned to one slot (`id_slot`) so its cache stays put; with
more sessions than slots, the least recently used session's slot is handed over (that session's
next round is evaluated in full, still correct). A slot changes hands only while idle; while
every slot is busy a request waits here for one: sessions queue, they never fail for lack of a
slot. Every request carries the session id
in the `X-Session-Id` header, so a load balancer in front of several servers can keep a session
on one of them (examples/nginx-llama-server.conf).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

import httpx

from ..chat_format import load_params
from ..tool_choice import ToolChoice, tool_names
from ..toolcalls import StreamingParser
from .base import BackendError, BackendStatus, CancelToken, SamplingParams
from ..events import TurnComplete, TurnEvent, Usage
from .prepared import PreparedPrompts, divergence_reason
from .server_template import FIX, probe_server_template
from ..tool_grammar import CALL_OPEN, GrammarError, tool_call_grammar


CALL_CLOSE = "</tool_call>"
SESSION_HEADER = "X-Session-Id"  # what a load balancer keys session affinity on
# llama.cpp's common_grammar_trigger_type values, as /completion reads them.
_TRIGGER_TOKEN, _TRIGGER_PATTERN = 0, 2


@dataclass
class _SlotText:
    text: bytes  # the prompt and generated text the server's slot holds for this session
    tokens: list[int]  # the same, as the token ids the slot holds


def _http_error(response: httpx.Response) -> str:
    """`HTTP 502 Bad Gateway: ...` with a proxy's HTML page reduced to its text."""
    text = response.text
    if "html" in response.headers.get("content-type", ""):
        text = " ".join(re.sub(r"<[^>]+>", " ", text).split())
        if response.status_code in (502, 503, 504):
            text += " (a proxy in front of llama-server found no replica answering)"
    return f"HTTP {response.status_code} {response.reason_phrase}: {text[:300]}"


class LlamaServerTokensBackend:
    name = "llama-server (token prompts)"

    def __init__(self, base_url: str, *, timeout_s: float = 120.0, context_length: int | None = None,
                 max_sessions: int = 64, slots: int | None = None) -> None:
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self.timeout_s = timeout_s
        self.context_length = context_length or load_params().context_length
        self.client = httpx.Client(base_url=self.base_url, timeout=timeout_s)
        self.sessions: dict[str, _SlotText] = {}
        self.max_sessions = max_sessions
        self._lock = threading.Lock()
        self.prepared = PreparedPrompts(self._prompt_tokens)
        self._special: dict[str, int] = {}  # token ids of `<tool_call>` and friends on this server
        self.slots = slots  # the server's parallel slots; None: read from /props on first use
        self._slot_of: OrderedDict[str, int] = OrderedDict()  # session -> slot, least recently used first
        self._busy: set[int] = set()  # slots with a request of ours in flight
        self._slot_freed = threading.Condition(self._lock)

    # -- server calls -----------------------------------------------------------------------
    def _post(self, path: str, body: Mapping[str, Any]) -> Any:
        try:
            response = self.client.post(path, json=body)
        except httpx.TimeoutException as exc:
            raise BackendError(f"{self.base_url} did not answer within {self.timeout_s:g}s") from exc
        except httpx.TransportError as exc:
            raise BackendError(f"cannot reach {self.base_url}: {exc}") from exc
        if response.status_code != 200:
            raise BackendError(f"{self.base_url}{path} answered {_http_error(response)}")
        try:
            return response.json()
        except ValueError as exc:
            raise BackendError(f"{self.base_url}{path} answered malformed JSON: {exc}") from exc

    def _tokenize(self, text: bytes, *, first: bool) -> list[int]:
        # parse_special: `<|im_start|>` and friends are single tokens, as in our renderer's prompt.
        reply = self._post("/tokenize", {"content": text.decode("utf-8"), "add_special": first,
                                         "parse_special": True})
        return [int(t) for t in reply["tokens"]]

    def _detokenize(self, tokens: list[int]) -> bytes:
        return self._post("/detokenize", {"tokens": tokens})["content"].encode("utf-8") if tokens else b""

    # -- Backend ----------------------------------------------------------------------------
    def check(self) -> BackendStatus:
        try:
            props = self.client.get("/props", timeout=5).json()
        except (httpx.HTTPError, ValueError) as exc:
            return BackendStatus(False, f"cannot reach llama-server at {self.base_url} ({exc})")
        details = {"n_ctx": props.get("default_generation_settings", {}).get("n_ctx")}
        # This adapter renders prompts itself and sends token ids, so a foreign embedded template
        # does not reach the model here; it does reach every /v1/chat/completions client of the
        # same server, so say so and how to fix it.
        probe = probe_server_template(self.client)
        details["template_matches"] = probe.matches
        message = f"connected to llama-server at {self.base_url} (token prompts)"
        if probe.matches is False:
            message += (f". Note: {probe.detail}; this adapter is unaffected (it sends our prompt as tokens), "
                        f"but OpenAI-API clients of this server are. Fix: {FIX}")
        return BackendStatus(True, message, details)

    def count_tokens(self, text: str) -> int:
        return len(self._tokenize(text.encode(), first=True))

    def count_prompt_tokens(self, messages: Sequence[Mapping[str, Any]],
                            tools: Sequence[Mapping[str, Any]] | None = None, *,
                            enable_thinking: bool = True, session_id: str = "default") -> int:
        """Exact token count of the next turn's prompt (one /tokenize of the new suffix)."""
        return len(self.prepared.prepare(messages, tools, enable_thinking, session_id)[1])

    def forget_session(self, session_id: str) -> None:
        self.prepared.forget(session_id)
        with self._lock:
            self.sessions.pop(session_id, None)
            self._slot_of.pop(session_id, None)

    def _slot_for(self, session_id: str, cancel: CancelToken | None = None) -> int | None:
        """Pin `session_id` to a slot and mark it busy; waits while every slot is busy. None when
        the server does not say how many slots it has (then the server picks)."""
        if self.slots is None:
            try:
                self.slots = int(self.client.get("/props", timeout=5).json().get("total_slots") or 0)
            except (httpx.HTTPError, ValueError, TypeError):
                return None
        if self.slots <= 0:
            return None
        with self._slot_freed:
            while True:
                slot = self._pick_slot(session_id)
                if slot is not None:
                    self._busy.add(slot)
                    return slot
                if cancel is not None and cancel.cancelled:
                    raise BackendError("cancelled while waiting for a free llama-server slot")
                # Queue here rather than in the server: a slot is handed to another session only
                # while idle (the server's queue for one busy slot mixed sessions' caches).
                self._slot_freed.wait(0.5)

    def _pick_slot(self, session_id: str) -> int | None:
        assert self.slots
        if session_id in self._slot_of:
            slot = self._slot_of[session_id]
            if slot in self._busy:
                return None
            self._slot_of.move_to_end(session_id)
            return slot
        used = set(self._slot_of.values())
        free = [n for n in range(self.slots) if n not in used]
        if free:
            slot = free[0]
        else:  # hand over the least recently used idle slot
            idle = [(s, n) for s, n in self._slot_of.items() if n not in self._busy]
            if not idle:
                return None
            owner, slot = idle[0]
            del self._slot_of[owner]
        self._slot_of[session_id] = slot
        return slot

    def _release_slot(self, slot: int | None) -> None:
        if slot is None:
            return
        with self._slot_freed:
            self._busy.discard(slot)
            self._slot_freed.notify_all()

    def _prompt_tokens(self, session_id: str, prompt: bytes) -> list[int]:
        with self._lock:
            held = self.sessions.get(session_id)
        if held is not None and prompt.startswith(held.text) and len(prompt) > len(held.text):
            return held.tokens + self._tokenize(prompt[len(held.text):], first=False)
        return self._tokenize(prompt, first=True)

    def stream_turn(self, messages: Sequence[Mapping[str, Any]],
                    tools: Sequence[Mapping[str, Any]] | None = None, *,
                    sampling: SamplingParams | None = None, enable_thinking: bool = True,
                    session_id: str = "default", cancel: CancelToken | None = None,
                    ) -> Iterator[TurnEvent]:
        sampling = sampling or SamplingParams.defaults()
        prompt, tokens = self.prepared.take(messages, tools, enable_thinking, session_id)
        with self._lock:
            held = self.sessions.get(session_id)
        # A prompt that does not extend what the slot holds makes the server resume from a context
        # checkpoint before the change (or from the start): say why, for the app's round table.
        reason = "" if held is None or (prompt.startswith(held.text) and len(prompt) > len(held.text)) \
            else divergence_reason(prompt, held.text)
        if len(tokens) >= self.context_length:
            raise BackendError(f"prompt is {len(tokens)} tokens; the context holds {self.context_length}")
        request: dict[str, Any] = {
            "prompt": tokens, "stream": True, "cache_prompt": True, "return_tokens": True,
            "n_predict": min(sampling.max_tokens, self.context_length - len(tokens)),
            "temperature": sampling.temperature, "top_p": sampling.top_p, "top_k": sampling.top_k,
            "min_p": sampling.min_p, "repeat_penalty": sampling.repeat_penalty,
            "presence_penalty": sampling.presence_penalty, "stop": list(load_params().stop),
        }
        if sampling.seed is not None:
            request["seed"] = sampling.seed
        reasoning_open = prompt.rstrip().endswith(b"<think>")
        request.update(self._tool_fields(tools, sampling, reasoning_open))
        parser = StreamingParser(thinking_open=reasoning_open)
        usage = Usage(prompt_tokens=len(tokens))
        generated: list[int] = []
        raw_parts: list[str] = []
        final: dict[str, Any] = {}
        finish = "length"
        started = time.perf_counter()
        slot = self._slot_for(session_id, cancel)
        if slot is not None:
            request["id_slot"] = slot
        try:
            with self.client.stream("POST", "/completion", json=request,
                                    headers={SESSION_HEADER: session_id}) as response:
                if response.status_code != 200:
                    raise BackendError(f"{self.base_url}/completion answered HTTP {response.status_code}: "
                                       f"{response.read()[:300]!r}")
                for line in response.iter_lines():
                    if cancel is not None and cancel.cancelled:
                        finish = "cancelled"
                        break  # closing the stream makes the server stop generating
                    if not line.startswith("data: "):
                        continue
                    chunk = json.loads(line[len("data: "):])
                    if "error" in chunk:
                        raise BackendError(f"{self.base_url}/completion: {chunk['error']}")
                    generated += [int(t) for t in chunk.get("tokens") or []]
                    text = chunk.get("content") or ""
                    if text:
                        raw_parts.append(text)
                        yield from parser.feed(text)
                    if chunk.get("stop"):
                        final = chunk
                        break
        except httpx.TimeoutException as exc:
            raise BackendError(f"{self.base_url} did not answer within {self.timeout_s:g}s") from exc
        except httpx.TransportError as exc:
            raise BackendError(f"lost the connection to {self.base_url}: {exc}") from exc
        except ValueError as exc:
            raise BackendError(f"malformed stream from {self.base_url}: {exc}") from exc
        finally:
            self._release_slot(slot)
        self._remember(session_id, prompt, tokens, generated, final)
        if final.get("stop_type") == "word" and final.get("stopping_word") == CALL_CLOSE:
            # parallel_tool_calls=false stopped at the first call's end; the server drops the
            # stop word from the text, the call needs it back.
            raw_parts.append(CALL_CLOSE)
            yield from parser.feed(CALL_CLOSE)
        yield from parser.finish()
        timings = final.get("timings") or {}
        usage.completion_tokens = int(timings.get("predicted_n", len(generated)))
        usage.prompt_tokens_evaluated = int(timings.get("prompt_n", len(tokens)))
        usage.cached_tokens = len(tokens) - usage.prompt_tokens_evaluated
        usage.prompt_seconds = float(timings.get("prompt_ms", 0.0)) / 1000
        usage.generation_seconds = float(timings.get("predicted_ms", 0.0)) / 1000 or time.perf_counter() - started
        if reason:
            usage.reuse_note = (f"{reason}: the server resumed from token {usage.cached_tokens}" if usage.cached_tokens > 0
                                else f"{reason}; the server had no context checkpoint before the change: "
                                     "whole prompt evaluated")
        if final.get("stop_type") in ("eos", "word"):
            finish = "stop"
        result = parser.result
        if finish == "stop" and result.tool_calls:
            finish = "tool_calls"
        yield TurnComplete(result, "".join(raw_parts), finish, usage)

    def _tool_fields(self, tools: Sequence[Mapping[str, Any]] | None, sampling: SamplingParams,
                     reasoning_open: bool) -> dict[str, Any]:
        """/completion options enforcing tool_choice and strict calls (llama-server's grammar,
        grammar_lazy and grammar_triggers; logit_bias bans `<tool_call>` for "none")."""
        try:
            choice = ToolChoice.parse(sampling.tool_choice)
            choice.check(tool_names(tools))
        except ValueError as exc:
            raise BackendError(str(exc)) from exc
        fields: dict[str, Any] = {}
        bias = [[int(t), float(b) if b != float("-inf") else False] for t, b in sampling.logit_bias]
        if tools and (choice.forces_call or (sampling.strict and choice.mode == "auto")):
            try:
                grammar = tool_call_grammar(tools, choice=choice, parallel=sampling.parallel_tool_calls,
                                            reasoning_open=reasoning_open)
            except GrammarError as exc:
                raise BackendError(str(exc)) from exc
            fields["grammar"] = grammar.gbnf
            if grammar.lazy:
                fields["grammar_lazy"] = True
                if reasoning_open:
                    # The server arms a lazy grammar from the first token; a pattern that needs the
                    # reasoning block closed first keeps a `<tool_call>` inside it free text.
                    fields["grammar_triggers"] = [{"type": _TRIGGER_PATTERN,
                                                   "value": "</think>[\\s\\S]*?(<tool_call>)"}]
                else:
                    fields["grammar_triggers"] = [{"type": _TRIGGER_TOKEN, "value": CALL_OPEN,
                                                   "token": self._special_token(CALL_OPEN)}]
        elif tools and choice.mode == "none":
            bias.append([self._special_token(CALL_OPEN), False])  # false: the server bans it
        if tools and not sampling.parallel_tool_calls and "grammar" not in fields:
            fields["stop"] = [*load_params().stop, CALL_CLOSE]  # the first call ends the turn
        if bias:
            fields["logit_bias"] = bias
        return fields

    def _special_token(self, text: str) -> int:
        if text not in self._special:
            ids = self._tokenize(text.encode(), first=False)
            if len(ids) != 1:
                raise BackendError(f"the server's model has no single {text} token: tool_choice and strict "
                                   "calls need it")
            self._special[text] = ids[0]
        return self._special[text]

    def _remember(self, session_id: str, prompt: bytes, tokens: list[int], generated: list[int],
                  final: Mapping[str, Any]) -> None:
        """What the slot now holds: the prompt and every generated token but the last sampled one,
        which ends generation without being evaluated. Unknown after a broken stream: forget."""
        with self._lock:
            self.sessions.pop(session_id, None)
        if not final or not generated:
            return
        kept = generated[:-1]
        held = _SlotText(prompt + self._detokenize(kept), tokens + kept)
        with self._lock:
            self.sessions[session_id] = held
            while len(self.sessions) > self.max_sessions:
                self.sessions.pop(next(iter(self.sessions)))

