"""The in-process sampler for turns that constrain tool calls (strict calls, tool_choice).

llama-cpp-python's `Llama.generate` builds one sampler chain and can add a grammar that applies
from the first token. Tool-call grammars must wait: reasoning and free text stay free, and the
grammar starts at the `<tool_call>` token (a lazy grammar, llama.cpp's
`llama_sampler_init_grammar_lazy_patterns`) or, for "required"/named tool_choice, at the first
token with a rule that lets reasoning through. This sampler does what llama.cpp's common
sampler does: sample with the ordinary chain, check only the chosen token against the grammar,
and resample with the grammar applied to every candidate only when that token is rejected, so a
grammar costs one token check per step while the model writes what it may.

`LlamaCppBackend` hands it to `Llama.generate` in place of the sampler generate would build; the
same chain as llama-cpp-python's (penalties, top-k, top-p, min-p, temperature, distribution or
greedy), plus logit biases (a banned `<tool_call>` for tool_choice "none") and optional extra
logit processors.
"""

from __future__ import annotations

import ctypes
import math
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from .base import BackendError, SamplingParams

# A processor sees the candidate logits (a numpy view, in token-id order) and the tokens sampled
# so far in this turn; it changes the logits in place.
LogitsProcessor = Callable[[np.ndarray, Sequence[int]], None]


class TurnSampler:
    def __init__(self, llm: Any, sampling: SamplingParams, *, grammar: str | None = None,
                 lazy: bool = False, trigger_token: int | None = None, arm_token: int | None = None,
                 logit_bias: Mapping[int, float] | None = None, end_tokens: Iterable[int] = (),
                 processors: Iterable[LogitsProcessor] = ()) -> None:
        """`grammar`: GBNF; `lazy`: wait for `trigger_token`; `arm_token`: feed the grammar
        nothing until this token was sampled (the end of the reasoning block)."""
        import llama_cpp  # start-up time: llama_cpp loads its native library

        self._llama_cpp = llama_cpp
        self.n_vocab = llm.n_vocab()
        self.penalties = llama_cpp.llama_sampler_init_penalties(
            self.n_vocab, llm.last_n_tokens_size, sampling.repeat_penalty, 0.0, sampling.presence_penalty)
        self.chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        if logit_bias:
            entries = (llama_cpp.llama_logit_bias * len(logit_bias))()
            for i, (token, bias) in enumerate(logit_bias.items()):
                entries[i].token, entries[i].bias = int(token), float(bias)
            llama_cpp.llama_sampler_chain_add(
                self.chain, llama_cpp.llama_sampler_init_logit_bias(self.n_vocab, len(logit_bias), entries))
        if sampling.temperature <= 0:
            llama_cpp.llama_sampler_chain_add(self.chain, llama_cpp.llama_sampler_init_greedy())
        else:
            for sampler in (llama_cpp.llama_sampler_init_top_k(sampling.top_k),
                            llama_cpp.llama_sampler_init_top_p(sampling.top_p, 1),
                            llama_cpp.llama_sampler_init_min_p(sampling.min_p, 1),
                            llama_cpp.llama_sampler_init_temp(sampling.temperature)):
                llama_cpp.llama_sampler_chain_add(self.chain, sampler)
            seed = sampling.seed if sampling.seed is not None else llama_cpp.LLAMA_DEFAULT_SEED
            llama_cpp.llama_sampler_chain_add(self.chain, llama_cpp.llama_sampler_init_dist(seed))
        self.grammar = None
        if grammar is not None:
            vocab = llm._model.vocab
            if lazy:
                tokens = (llama_cpp.llama_token * 1)(trigger_token if trigger_token is not None else -1)
                self.grammar = llama_cpp.llama_sampler_init_grammar_lazy_patterns(
                    vocab, grammar.encode(), b"root", None, 0, tokens, 1 if trigger_token is not None else 0)
            else:
                self.grammar = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode(), b"root")
            if not self.grammar:
                self.close()
                raise BackendError("llama.cpp rejected the tool-call grammar (see its log on stderr)")
        self.end_tokens = frozenset(end_tokens)
        self.armed = arm_token is None
        self.arm_token = arm_token
        self.processors = list(processors)
        self.sampled: list[int] = []
        self._data = (llama_cpp.llama_token_data * self.n_vocab)()
        self._view = np.ctypeslib.as_array(ctypes.cast(self._data, ctypes.POINTER(ctypes.c_float)),
                                           shape=(self.n_vocab * 3,))
        self._ids = np.arange(self.n_vocab, dtype=np.int32).view(np.float32)
        self._array = llama_cpp.llama_token_data_array(self._data, self.n_vocab, -1, False)
        self._single = (llama_cpp.llama_token_data * 1)()

    # -- what Llama.generate calls ----------------------------------------------------------
    def sample(self, ctx: Any, idx: int = -1) -> int:
        token = self._pick(ctx.ctx, idx, with_grammar=False)
        if self._grammar_live() and not self._allowed(token):
            token = self._pick(ctx.ctx, idx, with_grammar=True)
        self._accept(token)
        return token

    def close(self) -> None:
        free = self._llama_cpp.llama_sampler_free
        for name in ("chain", "penalties", "grammar"):
            sampler = getattr(self, name, None)
            if sampler:
                free(sampler)
                setattr(self, name, None)

    def __del__(self) -> None:  # generate drops its sampler reference without closing it
        try:
            self.close()
        except Exception:
            pass

    # -- steps ------------------------------------------------------------------------------
    def _grammar_live(self) -> bool:
        return self.grammar is not None and self.armed

    def _pick(self, ctx: Any, idx: int, *, with_grammar: bool) -> int:
        lib = self._llama_cpp
        logits = lib.llama_get_logits_ith(ctx, idx)
        view = self._view.reshape(self.n_vocab, 3)
        view[:, 0] = self._ids
        view[:, 1] = np.ctypeslib.as_array(logits, shape=(self.n_vocab,))
        view[:, 2] = 0.0
        if self.processors:
            for processor in self.processors:
                processor(view[:, 1], self.sampled)
        array = self._array
        array.size, array.selected, array.sorted = self.n_vocab, -1, False
        pointer = ctypes.byref(array)
        lib.llama_sampler_apply(self.penalties, pointer)
        if with_grammar:
            lib.llama_sampler_apply(self.grammar, pointer)
        lib.llama_sampler_apply(self.chain, pointer)
        if not 0 <= array.selected < array.size or math.isinf(self._data[array.selected].logit) \
                and self._data[array.selected].logit < 0:
            raise BackendError("no token fits the tool-call grammar and the sampling settings")
        return int(self._data[array.selected].id)

    def _allowed(self, token: int) -> bool:
        lib = self._llama_cpp
        self._single[0].id, self._single[0].logit, self._single[0].p = token, 0.0, 0.0
        single = lib.llama_token_data_array(self._single, 1, -1, False)
        lib.llama_sampler_apply(self.grammar, ctypes.byref(single))
        return not math.isinf(self._single[0].logit)

    def _accept(self, token: int) -> None:
        lib = self._llama_cpp
        lib.llama_sampler_accept(self.penalties, token)
        lib.llama_sampler_accept(self.chain, token)
        # An end-of-turn token ends generation; it never goes to the grammar (llama.cpp aborts
        # on one the grammar did not allow, and a finished turn has nothing left to check).
        if self.grammar is not None and token not in self.end_tokens:
            if self.armed:
                lib.llama_sampler_accept(self.grammar, token)
            elif token == self.arm_token:
                self.armed = True
        self.sampled.append(token)
