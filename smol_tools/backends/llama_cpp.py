"""In-process llama-cpp-python backend (the default).

The prompt is rendered by our `chat_format` (the GGUF's embedded template is the same text;
tests prove it) and the raw tokens go through our streaming parser. One loaded model is shared
by every session; a lock serializes turns. Prompt reuse is per session: when a session's next
prompt extends its previous prompt + generated text byte for byte (the template guarantees
it), the new prompt's tokens are the tokens already in the model state plus the tokens of the
new suffix, so only the suffix is evaluated. On this hybrid architecture that matters: the
linear-attention layers' recurrent state cannot be rolled back to an earlier position, so a
token mismatch anywhere would mean re-evaluating the whole prompt. Where a later prompt can
diverge — a new user query re-renders the previous exchange without its reasoning — the backend
keeps recurrent-state checkpoints (checkpoints.py) and resumes from the newest one inside the
common prefix. When another session takes the model, the owner's state is saved (llama.cpp's
state data) and restored on its return; its checkpoints stay with it.
"""

from __future__ import annotations

import atexit
import codecs
import ctypes
import math
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from ..chat_format import load_params
from ..llamacpp.mapping import use_mmap_for
from ..tool_choice import ToolChoice, tool_names
from ..toolcalls import StreamingParser
from ..events import ToolCallCompleted, ToolCallFailed, TurnComplete, TurnEvent, Usage
from ..tool_grammar import CALL_OPEN, THINK_CLOSE, GrammarError, tool_call_grammar
from .base import BackendError, BackendStatus, CancelToken, SamplingParams
from .checkpoints import (Checkpoint, CheckpointStore, restore_partial_state, save_partial_state,
                          token_digest)
from .llama_sampling import LogitsProcessor, TurnSampler
from .prepared import ASSISTANT_START, PreparedPrompts, divergence_reason


@dataclass
class _SessionState:
    text: bytes  # prompt + generated text the model state holds, as bytes
    tokens: list[int]  # the tokens the model state holds
    saved: bytes | None = None  # llama.cpp's state data while another session owns the model


class SharedModel:
    """One loaded GGUF, its lock, and the per-session states (LRU-bounded)."""

    def __init__(self, path: Path, n_ctx: int, n_threads: int | None, max_sessions: int) -> None:
        from llama_cpp import Llama  # start-up time: llama_cpp loads its native library

        if not path.is_file():
            raise BackendError(f"no GGUF file at {path}")
        try:
            # Prompt batches get the same thread count (llama-cpp-python would use every core).
            threads = n_threads or os.cpu_count()
            # Not mapped when llama.cpp would repack most weights: mapped, they are held twice.
            self.mapped = use_mmap_for(path)
            # Flash attention, as llama-server and llama.cpp's own default ("auto") use it on CPU:
            # llama-cpp-python turns it off, and without it every prompt batch materialises its
            # attention scores over the whole context (1,131 MiB of compute buffer at 32K for
            # the 4B instead of 527: measured, bench/README.md "Real size").
            self.llm = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                             n_batch=512, use_mmap=self.mapped, flash_attn=True, verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise BackendError(f"llama-cpp-python could not load {path}: {exc}") from exc
        self.path = path
        self.lock = threading.Lock()
        self.owner: str | None = None
        self.sessions: OrderedDict[str, _SessionState] = OrderedDict()
        self.max_sessions = max_sessions
        self.checkpoints = CheckpointStore()  # recurrent-state checkpoints, per session
        stop_ids = {self.llm.token_eos()}
        for stop in load_params().stop:
            ids = self.llm.tokenize(stop.encode(), add_bos=False, special=True)
            if len(ids) == 1:
                stop_ids.add(ids[0])
        self.stop_ids = frozenset(stop_ids)
        self.add_bos = bool(self.llm._model.add_bos_token())

    def tokenize(self, data: bytes, *, first: bool) -> list[int]:
        return self.llm.tokenize(data, add_bos=self.add_bos and first, special=True)

    def switch_to(self, session_id: str) -> None:
        """Make the model state belong to `session_id` (lock held)."""
        if self.owner == session_id:
            return
        if self.owner is not None and self.owner in self.sessions:
            self.sessions[self.owner].saved = _state_data(self.llm)
        state = self.sessions.get(session_id)
        if state is not None and state.saved is not None:
            _restore_state(self.llm, state.saved, state.tokens)
            state.saved = None  # the live state is the truth now
        self.owner = session_id

    def prompt_tokens(self, session_id: str, prompt: bytes) -> list[int]:
        state = self.sessions.get(session_id)
        if state is not None and self._intact(session_id, state):
            if prompt.startswith(state.text) and len(prompt) > len(state.text):
                return state.tokens + self.tokenize(prompt[len(state.text):], first=False)
            # Diverges: keep the tokens up to the checkpoint the turn will resume from, so the
            # restore cannot be defeated by a different tokenization of the same bytes.
            checkpoint = self.checkpoints.for_prompt(session_id, prompt, state.text)
            if checkpoint is not None:
                return state.tokens[:checkpoint.n_tokens] + self.tokenize(prompt[checkpoint.text_len:], first=False)
        return self.tokenize(prompt, first=True)

    def rewind(self, session_id: str, prompt: bytes, tokens: list[int]) -> str:
        """Make the live state a prefix of `tokens` that leaves at least one token to evaluate:
        as it is when the prompt extends it, else from the newest usable checkpoint, else empty.
        Returns why part of the conversation is re-evaluated ("" when nothing is)."""
        llm = self.llm
        live = llm.n_tokens
        if live == 0:
            return ""
        common = _common_prefix(llm._input_ids[:live], tokens)
        if common == live and live < len(tokens):
            return ""
        state = self.sessions.get(session_id)
        if state is None or not self._intact(session_id, state):  # a new conversation, or its state is gone
            llm.reset()
            self.checkpoints.forget(session_id)
            return "" if state is None else "the conversation's model state was dropped: whole prompt evaluated"
        reason = divergence_reason(prompt, state.text)
        checkpoint = self.checkpoints.for_tokens(session_id, tokens, min(common, len(tokens) - 1))
        if checkpoint is None:
            llm.reset()
            self.checkpoints.forget(session_id)
            return f"{reason}; no checkpoint before token {common}: whole prompt evaluated"
        restore_partial_state(llm, checkpoint)
        self.checkpoints.keep_until(session_id, checkpoint.n_tokens)
        return f"{reason}: resumed from the checkpoint at token {checkpoint.n_tokens}"

    def checkpoint_query_start(self, session_id: str, prompt: bytes, tokens: list[int]) -> None:
        """Evaluate up to the end of `<|im_start|>assistant\\n` of the generation prompt and save
        the recurrent state there: where the next user query's prompt will diverge."""
        if not self.checkpoints.enabled:
            return
        cut = prompt.rfind(ASSISTANT_START)
        if cut < 0:
            return
        cut += len(ASSISTANT_START)
        tail = self.tokenize(prompt[cut:], first=False)
        at = len(tokens) - len(tail)
        llm = self.llm
        # The split must fall on a token boundary of this very token list, inside what is left.
        if tokens[at:] != tail or not llm.n_tokens <= at < len(tokens) or self.checkpoints.has(session_id, at):
            return
        if at > llm.n_tokens:
            llm.eval(tokens[llm.n_tokens:at])
        self.checkpoints.add(session_id, Checkpoint(at, cut, token_digest(tokens[:at]), save_partial_state(llm)))

    def _intact(self, session_id: str, state: _SessionState) -> bool:
        """The session's model state still exists: saved while another session runs, or live."""
        if state.saved is not None:
            return True
        return self.owner == session_id and list(self.llm._input_ids[: self.llm.n_tokens]) == state.tokens

    def remember(self, session_id: str, text: bytes) -> None:
        self.sessions[session_id] = _SessionState(text, list(self.llm._input_ids[: self.llm.n_tokens]))
        self.sessions.move_to_end(session_id)
        while len(self.sessions) > self.max_sessions:
            evicted, _ = self.sessions.popitem(last=False)
            self.checkpoints.forget(evicted)

    def forget(self, session_id: str) -> None:
        self.sessions.pop(session_id, None)
        self.checkpoints.forget(session_id)


def _common_prefix(held: Any, tokens: Sequence[int]) -> int:
    """Length of the common prefix of the state's tokens (a numpy view) and a token list."""
    import numpy as np  # start-up time: numpy

    n = min(len(held), len(tokens))
    mismatch = np.flatnonzero(np.asarray(held[:n]) != np.asarray(tokens[:n], dtype=np.asarray(held).dtype))
    return int(mismatch[0]) if len(mismatch) else n


def is_query_start(messages: Sequence[Mapping[str, Any]]) -> bool:
    """The turn answers a real user query (not tool results): the first round of an exchange."""
    if not messages or messages[-1].get("role") != "user":
        return False
    content = messages[-1].get("content")
    text = content.strip() if isinstance(content, str) else ""
    return not (text.startswith("<tool_response>") and text.endswith("</tool_response>"))


def _state_data(llm: Any) -> bytes:
    """llama.cpp's own state of the context (memory cells, recurrent state, last outputs).

    Not Llama.save_state: that also copies llama-cpp-python's `scores` buffer (n_batch rows of
    vocabulary-sized logits: 311 MB at n_batch 512 and a 151,936-token vocabulary) for every
    saved session, which nothing here reads (sampling runs in llama.cpp's sampler)."""
    import llama_cpp  # start-up time: llama_cpp loads its native library

    ctx = llm._ctx.ctx
    size = llama_cpp.llama_state_get_size(ctx)
    buffer = (ctypes.c_uint8 * size)()
    written = llama_cpp.llama_state_get_data(ctx, buffer, size)
    return ctypes.string_at(buffer, written)


def _restore_state(llm: Any, data: bytes, tokens: list[int]) -> None:
    """Put back a state from `_state_data`, with the tokens it holds (Llama.load_state's steps,
    the scores excepted)."""
    import llama_cpp  # start-up time: llama_cpp loads its native library

    buffer = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
    if llama_cpp.llama_state_set_data(llm._ctx.ctx, buffer, len(data)) != len(data):
        raise BackendError("llama.cpp refused a saved session state")
    llm.input_ids[: len(tokens)] = tokens
    llm.n_tokens = len(tokens)
    llm._requires_eval = True  # the next generate decodes at least one token for fresh logits


_MODELS: dict[tuple[str, int], SharedModel] = {}
_MODELS_LOCK = threading.Lock()


@atexit.register
def _close_models() -> None:
    # Free the models while llama_cpp's module globals still exist: left to Llama.__del__ at
    # interpreter teardown, freeing raises "'NoneType' object is not callable" on stderr.
    with _MODELS_LOCK:
        for model in _MODELS.values():
            model.llm.close()
        _MODELS.clear()


def shared_model(path: Path, n_ctx: int, n_threads: int | None = None, max_sessions: int = 8) -> SharedModel:
    """Load each GGUF once per process, whatever number of sessions use it."""
    key = (str(Path(path).resolve()), n_ctx)
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = SharedModel(Path(path), n_ctx, n_threads, max_sessions)
        return _MODELS[key]


def _tokens_evaluated(perf: Any) -> int:
    """Tokens decoded since the last perf reset. llama.cpp reports each counter as at least 1
    (it guards a division), so a counter whose time is zero counted nothing."""
    batched = perf.n_p_eval if perf.t_p_eval_ms > 0 else 0
    single = perf.n_eval if perf.t_eval_ms > 0 else 0
    return batched + single


class LlamaCppBackend:
    name = "llama-cpp-python"

    def __init__(self, model_path: str | Path, *, n_ctx: int | None = None,
                 n_threads: int | None = None, max_sessions: int = 8,
                 checkpoints_per_session: int | None = None,
                 checkpoint_budget_bytes: int | None = None,
                 logits_processors: Sequence[LogitsProcessor] = ()) -> None:
        """`checkpoints_per_session` / `checkpoint_budget_bytes`: recurrent-state checkpoints kept
        per session and for all sessions of the model together (defaults 4 and 512 MiB; 0 turns
        them off). Given, they apply to every session of the shared model.
        `logits_processors`: change the logits before each token is sampled (a tool-call grammar
        still has the last word: a strict call stays valid whatever they do)."""
        self.logits_processors = list(logits_processors)
        self.context_length = n_ctx or load_params().context_length
        self.model = shared_model(Path(model_path), self.context_length, n_threads, max_sessions)
        store = self.model.checkpoints
        if checkpoints_per_session is not None or checkpoint_budget_bytes is not None:
            with self.model.lock:
                store.per_session = store.per_session if checkpoints_per_session is None else checkpoints_per_session
                store.budget_bytes = store.budget_bytes if checkpoint_budget_bytes is None else checkpoint_budget_bytes
                store.trim()
        self.prepared = PreparedPrompts(self._tokens_for)

    def check(self) -> BackendStatus:
        meta = self.model.llm.metadata
        return BackendStatus(True, f"loaded {self.model.path.name} in process",
                             {"architecture": meta.get("general.architecture"),
                              "has_chat_template": "tokenizer.chat_template" in meta})

    def count_tokens(self, text: str) -> int:
        return len(self.model.tokenize(text.encode(), first=True))

    def count_prompt_tokens(self, messages: Sequence[Mapping[str, Any]],
                            tools: Sequence[Mapping[str, Any]] | None = None, *,
                            enable_thinking: bool = True, session_id: str = "default") -> int:
        """Exact token count of the next turn's prompt, as this session will feed it."""
        return len(self.prepared.prepare(messages, tools, enable_thinking, session_id)[1])

    def _tokens_for(self, session_id: str, prompt: bytes) -> list[int]:
        with self.model.lock:
            return self.model.prompt_tokens(session_id, prompt)

    def forget_session(self, session_id: str) -> None:
        self.prepared.forget(session_id)
        with self.model.lock:
            self.model.forget(session_id)
            if self.model.owner == session_id:
                self.model.owner = None

    def _tool_policy(self, tools: Sequence[Mapping[str, Any]] | None, sampling: SamplingParams,
                     reasoning_open: bool) -> dict[str, Any] | None:
        """TurnSampler arguments enforcing tool_choice and strict calls; None: the default sampler."""
        try:
            choice = ToolChoice.parse(sampling.tool_choice)
            choice.check(tool_names(tools))
        except ValueError as exc:
            raise BackendError(str(exc)) from exc
        bias = {int(t): float(b) for t, b in sampling.logit_bias}
        policy: dict[str, Any] = {"end_tokens": self.model.stop_ids, "processors": self.logits_processors}
        if tools and (choice.forces_call or (sampling.strict and choice.mode == "auto")):
            call_open, think_close = self._single_token(CALL_OPEN), self._single_token(THINK_CLOSE)
            try:
                grammar = tool_call_grammar(tools, choice=choice, parallel=sampling.parallel_tool_calls,
                                            reasoning_open=reasoning_open)
            except GrammarError as exc:
                raise BackendError(str(exc)) from exc
            policy.update(grammar=grammar.gbnf, lazy=grammar.lazy, trigger_token=call_open,
                          arm_token=think_close if grammar.lazy and reasoning_open else None)
        elif tools and choice.mode == "none":
            bias[self._single_token(CALL_OPEN)] = -math.inf  # the model cannot open a call
        if "grammar" not in policy and not bias and not self.logits_processors:
            return None
        policy["logit_bias"] = bias
        return policy

    def _single_token(self, text: str) -> int:
        ids = self.model.tokenize(text.encode(), first=False)
        if len(ids) != 1:
            raise BackendError(f"this model has no single {text} token: tool_choice and strict calls need it")
        return ids[0]

    def stream_turn(self, messages: Sequence[Mapping[str, Any]],
                    tools: Sequence[Mapping[str, Any]] | None = None, *,
                    sampling: SamplingParams | None = None, enable_thinking: bool = True,
                    session_id: str = "default", cancel: CancelToken | None = None,
                    ) -> Iterator[TurnEvent]:
        import llama_cpp  # start-up time: llama_cpp loads its native library

        sampling = sampling or SamplingParams.defaults()
        prompt_bytes, tokens = self.prepared.take(messages, tools, enable_thinking, session_id)
        reasoning_open = prompt_bytes.rstrip().endswith(b"<think>")
        parser = StreamingParser(thinking_open=reasoning_open)
        policy = self._tool_policy(tools, sampling, reasoning_open)
        single_call = bool(tools) and not sampling.parallel_tool_calls
        model = self.model
        with model.lock:
            model.switch_to(session_id)
            if len(tokens) >= self.context_length:
                raise BackendError(f"prompt is {len(tokens)} tokens; the context holds {self.context_length}")
            llm = model.llm
            ctx = llm._ctx.ctx
            llama_cpp.llama_perf_context_reset(ctx)
            started = time.perf_counter()
            usage = Usage(prompt_tokens=len(tokens))
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            raw_parts: list[str] = []
            finish = "length"
            first_token_at: float | None = None
            max_tokens = min(sampling.max_tokens, self.context_length - len(tokens))
            try:
                usage.reuse_note = model.rewind(session_id, prompt_bytes, tokens)
                if is_query_start(messages):
                    model.checkpoint_query_start(session_id, prompt_bytes, tokens)
                sampler = TurnSampler(llm, sampling, **policy) if policy is not None else None
                if sampler is not None:  # generate takes this turn's sampler instead of building one
                    llm._init_sampler = lambda **_: sampler
                for token in llm.generate(tokens, temp=sampling.temperature, top_k=sampling.top_k,
                                          top_p=sampling.top_p, min_p=sampling.min_p,
                                          repeat_penalty=sampling.repeat_penalty,
                                          presence_penalty=sampling.presence_penalty, reset=True):
                    if first_token_at is None:
                        first_token_at = time.perf_counter()
                        usage.prompt_tokens_evaluated = _tokens_evaluated(llama_cpp.llama_perf_context(ctx))
                        usage.cached_tokens = len(tokens) - usage.prompt_tokens_evaluated
                        usage.prompt_seconds = first_token_at - started
                    if token in model.stop_ids:
                        finish = "stop"
                        break
                    if cancel is not None and cancel.cancelled:
                        finish = "cancelled"
                        break
                    piece = llm.detokenize([token], special=True)
                    usage.completion_tokens += 1
                    text = decoder.decode(piece)
                    if text:
                        raw_parts.append(text)
                        events = list(parser.feed(text))
                        yield from events
                        # parallel_tool_calls=false: the first call ends the turn.
                        if single_call and any(isinstance(e, (ToolCallCompleted, ToolCallFailed)) for e in events):
                            finish = "stop"
                            break
                    if usage.completion_tokens >= max_tokens:
                        break
            finally:
                if "_init_sampler" in vars(llm):
                    del llm._init_sampler
                    llm._sampler = None
                    sampler.close()
                # The state holds the prompt and the generated tokens up to (not including) the
                # last sampled one; remember exactly that, as text, for the next round's check.
                # A turn that failed before its prompt was read leaves a state nobody can name.
                if llm.n_tokens >= len(tokens):
                    in_state = list(llm._input_ids[len(tokens): llm.n_tokens])
                    kept = llm.detokenize(in_state, special=True) if in_state else b""
                    model.remember(session_id, prompt_bytes + kept)
                else:
                    model.forget(session_id)
        tail = decoder.decode(b"", final=True)
        if tail:
            raw_parts.append(tail)
            yield from parser.feed(tail)
        yield from parser.finish()
        usage.generation_seconds = time.perf_counter() - (first_token_at or started)
        result = parser.result
        if finish == "stop" and result.tool_calls:
            finish = "tool_calls"
        yield TurnComplete(result, "".join(raw_parts), finish, usage)

