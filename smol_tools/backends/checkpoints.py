"""Recurrent-state checkpoints for the in-process backend: a new user query costs only what changed.

Why they are needed: the template drops the reasoning of assistant turns before the last user
query, so when a new query arrives the previous exchange re-renders from its first assistant
turn on, and the prompt no longer extends the model state there. Attention layers can cut their
cache at any position; the linear-attention layers' recurrent state cannot be rolled back. So at
the point where a later prompt will diverge (right after `<|im_start|>assistant\\n` of each
query's first turn) the backend saves llama.cpp's *partial* sequence state — the recurrent
layers only (LLAMA_STATE_SEQ_FLAGS_PARTIAL_ONLY; the attention cache stays where it is and is
cut at the checkpoint on restore), the same data llama-server keeps as its context
checkpoints. A checkpoint's size does not depend on its position: one recurrent state (tiny
model 210 KiB; the real 4B model about 50 MiB, see `recurrent_state_bytes` in
pipeline/memory.py).

A checkpoint is valid only on top of the same token prefix, so it carries a digest of the
tokens it was taken after; a restore checks it against the prompt, whatever session the live
model state came from.
"""

from __future__ import annotations

import ctypes
import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .base import BackendError

MIB = 1024 * 1024
DEFAULT_PER_SESSION = 4  # the newest serves the next query; older ones serve edits and dropped results
DEFAULT_BUDGET_BYTES = 512 * MIB  # ten checkpoints of the real 4B model, thousands of the tiny one


def token_digest(tokens: Sequence[int]) -> bytes:
    return hashlib.blake2b(np.asarray(tokens, dtype=np.int32).tobytes(), digest_size=16).digest()


@dataclass(frozen=True)
class Checkpoint:
    n_tokens: int  # the state holds tokens[:n_tokens] of the prompt it was taken on
    text_len: int  # the bytes of the session's text those tokens spell
    digest: bytes  # token_digest(tokens[:n_tokens])
    data: bytes  # llama.cpp's partial (recurrent-only) sequence state

    @property
    def size(self) -> int:
        return len(self.data)


class CheckpointStore:
    """Checkpoints per session, oldest first: at most `per_session` each and `budget_bytes` for
    all sessions together. Over budget, the least recently used sessions lose their older
    checkpoints first, then their newest (the one the next query of that session would use)."""

    def __init__(self, per_session: int = DEFAULT_PER_SESSION, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        self.per_session = per_session
        self.budget_bytes = budget_bytes
        self._sessions: OrderedDict[str, list[Checkpoint]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.per_session > 0 and self.budget_bytes > 0

    def of(self, session_id: str) -> list[Checkpoint]:
        return list(self._sessions.get(session_id, ()))

    def total_bytes(self) -> int:
        return sum(c.size for cps in self._sessions.values() for c in cps)

    def has(self, session_id: str, n_tokens: int) -> bool:
        return any(c.n_tokens == n_tokens for c in self._sessions.get(session_id, ()))

    def add(self, session_id: str, checkpoint: Checkpoint) -> None:
        if not self.enabled:
            return
        kept = [c for c in self._sessions.pop(session_id, []) if c.n_tokens < checkpoint.n_tokens]
        self._sessions[session_id] = (kept + [checkpoint])[-self.per_session:]
        self._fit_budget()

    def for_prompt(self, session_id: str, prompt: bytes, held_text: bytes) -> Checkpoint | None:
        """The newest checkpoint whose text the prompt still starts with (before its end)."""
        for c in reversed(self._sessions.get(session_id, ())):
            if c.text_len < len(prompt) and prompt[:c.text_len] == held_text[:c.text_len]:
                return c
        return None

    def for_tokens(self, session_id: str, tokens: Sequence[int], limit: int) -> Checkpoint | None:
        """The newest checkpoint at or before token `limit` that was taken on `tokens`' prefix."""
        for c in reversed(self._sessions.get(session_id, ())):
            if c.n_tokens <= limit and token_digest(tokens[:c.n_tokens]) == c.digest:
                return c
        return None

    def keep_until(self, session_id: str, n_tokens: int) -> None:
        """Drop the checkpoints past `n_tokens`: the state they continued is gone."""
        if session_id in self._sessions:
            self._sessions[session_id] = [c for c in self._sessions[session_id] if c.n_tokens <= n_tokens]
            self._sessions.move_to_end(session_id)

    def forget(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def trim(self) -> None:
        """Apply changed limits to what is stored."""
        for session_id in list(self._sessions):
            kept = self._sessions[session_id][-self.per_session:] if self.per_session > 0 else []
            if kept:
                self._sessions[session_id] = kept
            else:
                del self._sessions[session_id]
        self._fit_budget()

    def _fit_budget(self) -> None:
        while self.total_bytes() > self.budget_bytes:
            # Older checkpoints of the least recently used session first, then newest ones.
            victim = next((s for s, cps in self._sessions.items() if len(cps) > 1), None)
            if victim is not None:
                self._sessions[victim].pop(0)
                continue
            oldest = next(iter(self._sessions))
            self._sessions[oldest].pop(0)
            if not self._sessions[oldest]:
                del self._sessions[oldest]


def save_partial_state(llm: Any) -> bytes:
    """The recurrent layers' state of sequence 0 (llama.cpp's partial sequence state)."""
    import llama_cpp  # start-up time: llama_cpp loads its native library

    ctx = llm._ctx.ctx
    flags = llama_cpp.LLAMA_STATE_SEQ_FLAGS_PARTIAL_ONLY
    size = llama_cpp.llama_state_seq_get_size_ext(ctx, 0, flags)
    buffer = (ctypes.c_uint8 * size)()
    written = llama_cpp.llama_state_seq_get_data_ext(ctx, buffer, size, 0, flags)
    if written == 0:
        raise BackendError("llama.cpp could not save a recurrent-state checkpoint")
    return ctypes.string_at(buffer, written)


def restore_partial_state(llm: Any, checkpoint: Checkpoint) -> None:
    """Put the recurrent layers back to the checkpoint and cut the attention cache there; the
    tokens before it are the prompt's (the caller checked the digest)."""
    import llama_cpp  # start-up time: llama_cpp loads its native library

    ctx = llm._ctx.ctx
    buffer = (ctypes.c_uint8 * checkpoint.size).from_buffer_copy(checkpoint.data)
    if llama_cpp.llama_state_seq_set_data_ext(ctx, buffer, checkpoint.size, 0,
                                              llama_cpp.LLAMA_STATE_SEQ_FLAGS_PARTIAL_ONLY) == 0:
        raise BackendError("llama.cpp refused a recurrent-state checkpoint")
    if not llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(ctx), 0, checkpoint.n_tokens, -1):
        raise BackendError("llama.cpp could not cut the cache at a restored checkpoint")
    llm.n_tokens = checkpoint.n_tokens
    llm._requires_eval = True  # the next generate decodes at least one token for fresh logits
