"""Prompt reuse across rounds: prompt tokens evaluated per round ÷ tokens new in that round, on
the 10-round session (bench/session.py), in process and through a real llama-server.

The figure sums rounds 2-10 (round 1 is all new for any runtime): Σ evaluated ÷ Σ new; 1.0 is
perfect reuse. The anchor is naive re-evaluation, measured side by side: every round's full
prompt evaluated from an empty state (in process: the model reset; llama-server: /completion
with cache_prompt=false), whose token ratio is Σ prompt ÷ Σ new; prompt times of both arms are
reported too.
"""

from __future__ import annotations

import time
from typing import Any

from smol_tools.backends.base import SamplingParams
from smol_tools.events import TurnComplete
from smol_tools.chat_format import render_prompt

from .common import Figure
from .session import ROUNDS, new_tokens, run_scripted, run_session, scripted_tools

# llama-server option sets tried (the first is what a user gets by default).
SERVER_VARIANTS = [
    ("defaults (--ctx-checkpoints 32 --checkpoint-min-step 8192)", []),
    ("--checkpoint-min-step 0", ["--checkpoint-min-step", "0"]),
    ("--ctx-checkpoints 0 (checkpoints off)", ["--ctx-checkpoints", "0"]),
]


def _summary(evaluated: list[int], new: list[int], prompts: list[int]) -> dict[str, Any]:
    later = slice(1, None)
    return {"ratio": sum(evaluated[later]) / sum(new[later]),
            "naive_ratio": sum(prompts[later]) / sum(new[later]),
            "per_round": [round(e / n, 3) for e, n in zip(evaluated, new)],
            "evaluated": evaluated, "new": new, "prompt_tokens": prompts}


def _in_process_rep(backend, figure: Figure, run, evaluated: list[int], reported: list[int],
                    reuse_seconds: list[float], naive_seconds: list[float]) -> None:
    new = new_tokens(run, stop_counted=False)
    summary = _summary(evaluated, new, [u.prompt_tokens for u in run.usages])
    figure.samples.append(summary["ratio"])
    # The anchor: each round's prompt from an empty model state.
    naive = []
    for k, messages in enumerate(run.prompts):
        backend.model.llm.reset()
        events = list(backend.stream_turn(messages, scripted_tools(), sampling=SamplingParams.greedy(max_tokens=1),
                                          session_id=f"bench-naive-{k}"))
        backend.forget_session(f"bench-naive-{k}")
        naive.append(next(e for e in events if isinstance(e, TurnComplete)).usage)
    reuse_seconds.append(sum(u.prompt_seconds for u in run.usages[1:]))
    naive_seconds.append(sum(u.prompt_seconds for u in naive[1:]))
    figure.details = {**summary, "reported_prompt_tokens_evaluated": reported, "calls": run.calls,
                      "finished": run.finished}


def in_process(quick: bool) -> Figure:
    from smol_tools.backends.llama_cpp import LlamaCppBackend
    from devkit.tiny_gguf import ensure_tiny_gguf

    backend = LlamaCppBackend(ensure_tiny_gguf("Q8_0"), n_ctx=4096, n_threads=1)
    figure = Figure("reuse_in_process", "Prompt reuse, in process (10 rounds)",
                    "prompt tokens evaluated per round", "tokens new in that round", "<= 1.1", 1.1)
    reuse_seconds, naive_seconds = [], []
    llm = backend.model.llm
    fed: list[list[int]] = []  # per round, the sizes of llm.eval calls: the first is the prompt
    original_eval = llm.eval
    llm.eval = lambda tokens: (fed and fed[-1].append(len(tokens)), original_eval(tokens))[1]
    try:
        warm = f"bench-reuse-warm-{time.monotonic_ns()}"  # first-use costs stay out of the timings
        run_session(backend, session_id=warm)
        backend.forget_session(warm)
        for rep in range(1 if quick else 5):
            session_id = f"bench-reuse-{rep}-{time.monotonic_ns()}"
            fed.clear()
            run = run_session(backend, session_id=session_id, on_turn=lambda: fed.append([]))
            assert len(run.usages) == ROUNDS, f"the session ran {len(run.usages)} rounds"
            backend.forget_session(session_id)
            reported = [u.prompt_tokens_evaluated for u in run.usages]
            evaluated = [calls[0] for calls in fed]  # what was really decoded for the prompt
            _in_process_rep(backend, figure, run, evaluated, reported, reuse_seconds, naive_seconds)
    finally:
        del llm.eval  # back to the class method

    figure.details["prompt_seconds_reuse_rounds_2_10"] = reuse_seconds
    figure.details["prompt_seconds_naive_rounds_2_10"] = naive_seconds
    d = figure.details
    figure.notes = [
        f"Tiny Q8_0 GGUF, 10 tool rounds under one user query ({' → '.join(d['calls'][:4])} → …), "
        f"thinking on. Per round: {d['per_round']}. Naive re-evaluation would be {d['naive_ratio']:.1f}× the new "
        f"tokens; prompt time rounds 2-10: {1e3 * min(reuse_seconds):.1f} ms with reuse vs "
        f"{1e3 * min(naive_seconds):.1f} ms naive. The backend keeps the model state at the end of each turn and "
        "tokenizes only the new suffix, so the recurrent (linear-attention) state is never rolled back. Evaluated "
        "tokens are counted at llama-cpp-python's `eval` (the prompt batch of each turn); the backend's own "
        f"`usage.prompt_tokens_evaluated` (from llama.cpp's perf counters) reads {d['reported_prompt_tokens_evaluated']}"
        + (", the same." if d['reported_prompt_tokens_evaluated'] == d['evaluated'] else
           f", which differs from the decoded {d['evaluated']}: a counting bug to fix.")]
    return figure


def _server_session(gguf, extra: list[str], thinking: bool, quick: bool) -> dict[str, Any]:
    from smol_tools.backends.openai_compat import OpenAICompatBackend
    from smol_tools.llamacpp.server import LlamaServer

    # -lv 4 logs checkpoint restores (trace level), counted below.
    with LlamaServer(gguf, extra_args=[*extra, "--no-prefill-assistant", "-lv", "4"], ctx_size=4096) as server:
        backend = OpenAICompatBackend(server.base_url, context_length=4096)
        samples, details = [], {}
        for rep in range(1 if quick else 3):
            run = run_session(backend, session_id="server", thinking=thinking)
            # With thinking off the tiny model gives up after a round or two; that still shows
            # whether the token boundary survives.
            assert len(run.usages) == ROUNDS or (not thinking and len(run.usages) >= 2), \
                f"the session ran {len(run.usages)} rounds"
            new = new_tokens(run, stop_counted=True)
            evaluated = [u.prompt_tokens_evaluated for u in run.usages]
            summary = _summary(evaluated, new, [u.prompt_tokens for u in run.usages])
            naive_ms = []
            for messages in run.prompts[1:]:
                prompt = render_prompt(messages, scripted_tools(), enable_thinking=thinking)
                timings = server.post("/completion", {"prompt": prompt, "n_predict": 1, "cache_prompt": False,
                                                      "temperature": 0})["timings"]
                naive_ms.append(timings["prompt_ms"])
            samples.append(summary["ratio"])
            details = {**summary, "rounds": len(run.usages), "prompt_ms_reuse_rounds_2_10": sum(1e3 * u.prompt_seconds for u in run.usages[1:]),
                       "prompt_ms_naive_rounds_2_10": sum(naive_ms)}
        log = server.log_tail(400_000)
        details["log"] = {"checkpoints_restored": log.count("restored context checkpoint"),
                          "forced_full_reprocessing": log.count("forcing full prompt re-processing")}
    return {"samples": samples, **details}


def llama_server_tokens(quick: bool) -> Figure:
    """The 10-round session through LlamaServerTokensBackend: /completion fed token ids."""
    from smol_tools.backends.llama_server_tokens import LlamaServerTokensBackend
    from smol_tools.llamacpp.server import LlamaServer
    from devkit.tiny_gguf import ensure_tiny_gguf

    figure = Figure("reuse_llama_server_tokens", "Prompt reuse, llama-server fed token prompts (10 rounds)",
                    "prompt tokens evaluated per round (timings.prompt_n)", "tokens new in that round", "<= 1.1", 1.1)
    with LlamaServer(ensure_tiny_gguf("Q8_0"), extra_args=["-lv", "4"], ctx_size=4096) as server:
        backend = LlamaServerTokensBackend(server.base_url, context_length=4096)
        for rep in range(1 if quick else 3):
            run = run_session(backend, session_id=f"tokens-{rep}")
            backend.forget_session(f"tokens-{rep}")
            assert len(run.usages) == ROUNDS, f"the session ran {len(run.usages)} rounds"
            summary = _summary([u.prompt_tokens_evaluated for u in run.usages], new_tokens(run, stop_counted=True),
                               [u.prompt_tokens for u in run.usages])
            figure.samples.append(summary["ratio"])
            figure.details = {**summary, "calls": run.calls}
        log = server.log_tail(400_000)
    d = figure.details
    figure.details["log"] = {"checkpoints_restored": log.count("restored context checkpoint"),
                             "forced_full_reprocessing": log.count("forcing full prompt re-processing")}
    figure.notes = [
        "The same 10-round session, thinking on, through `LlamaServerTokensBackend`: our renderer's prompt sent "
        "to llama-server's `/completion` as token ids, each round the ids the slot already holds (previous prompt "
        "and generated tokens) plus the new suffix's. Per round: "
        f"{d['per_round']}; naive re-evaluation {d['naive_ratio']:.1f}; checkpoints restored "
        f"{d['log']['checkpoints_restored']}, full re-processing {d['log']['forced_full_reprocessing']} (round 1 "
        "of a later repetition finds its first prompt in the slot already). The empty think block "
        "that costs the OpenAI endpoint a checkpoint restore every round never re-tokenizes here."]
    return figure


def _server_reasoning_session(gguf) -> dict[str, Any]:
    """The scripted session whose first turn reasons before calling (non-empty `<think>`)."""
    from smol_tools.backends.openai_compat import OpenAICompatBackend
    from smol_tools.llamacpp.server import LlamaServer

    with LlamaServer(gguf, extra_args=["--no-prefill-assistant", "-lv", "4"], ctx_size=4096) as server:
        backend = OpenAICompatBackend(server.base_url, context_length=4096)
        run = run_scripted(backend, "reasoning_then_call", session_id="server-reasoning")
        assert len(run.usages) == 2 and run.finished == "answer", (len(run.usages), run.finished)
        new = new_tokens(run, stop_counted=True)
        evaluated = [u.prompt_tokens_evaluated for u in run.usages]
        summary = _summary(evaluated, new, [u.prompt_tokens for u in run.usages])
        log = server.log_tail(400_000)
    return {**summary, "rounds": 2, "log": {"checkpoints_restored": log.count("restored context checkpoint"),
                                             "forced_full_reprocessing": log.count("forcing full prompt re-processing")}}


def llama_server(quick: bool) -> list[Figure]:
    from devkit.tiny_gguf import ensure_tiny_gguf

    gguf = ensure_tiny_gguf("Q8_0")
    variants = SERVER_VARIANTS[:1] if quick else SERVER_VARIANTS
    results = {}
    for label, extra in variants:
        results[label] = {"thinking on": _server_session(gguf, extra, True, quick)}
        if label == SERVER_VARIANTS[0][0] and not quick:
            results[label]["thinking off"] = _server_session(gguf, extra, False, quick)
    reasoning = _server_reasoning_session(gguf)
    default = results[SERVER_VARIANTS[0][0]]
    figure = Figure("reuse_llama_server", "Prompt reuse, llama-server (10 rounds)",
                    "prompt tokens evaluated per round (timings.prompt_n)", "tokens new in that round", "<= 1.1", 1.1,
                    samples=default["thinking on"]["samples"])
    figure.details = {label: {mode: {k: v for k, v in r.items() if k != "samples"} | {"ratio": r["samples"]}
                              for mode, r in modes.items()} for label, modes in results.items()}
    lines = [f"{label}, thinking {mode.split()[1]}, {r['rounds']} rounds: {min(r['samples']):.2f} "
             f"(naive {r['naive_ratio']:.1f}; "
             f"per round {r['per_round'][1:]}; checkpoints restored {r['log']['checkpoints_restored']}, full "
             f"re-processing {r['log']['forced_full_reprocessing']})"
             for label, modes in results.items() for mode, r in modes.items()]
    figure.details["non-empty reasoning"] = reasoning
    lines.append(f"defaults, thinking on with non-empty reasoning (scripted `reasoning_then_call`: the model "
                 f"reasons, calls, then answers), round 2: {reasoning['ratio']:.2f} (naive {reasoning['naive_ratio']:.1f}; "
                 f"checkpoints restored {reasoning['log']['checkpoints_restored']}, full re-processing "
                 f"{reasoning['log']['forced_full_reprocessing']})")
    figure.notes = [
        "The same session through `llama-server --jinja` (built from the vendored llama.cpp), tiny Q8_0 GGUF. "
        + "; ".join(lines) + ".",
        "Why not 1.0 with thinking on: llama-server re-tokenizes the whole rendered prompt each round, and the "
        "generation prompt ends in `<think>\\n` while the model's first token is `\\n` (empty reasoning), so the "
        "re-rendered `<think>\\n\\n</think>` tokenizes as one `\\n\\n` token where the cache holds `\\n`,`\\n`: the "
        "common prefix ends at the first generated token. An attention-only model would just drop the tail; the "
        "linear-attention layers' recurrent state cannot be rolled back, so the server restores the context "
        "checkpoint it took 4 tokens before the end of the previous prompt and re-evaluates those 4 tokens, the "
        "whole previous generation and the new tokens (about 2× the new tokens here, against ~15-30× for full "
        "re-processing). With checkpoints off (`--ctx-checkpoints 0`) every round is reprocessed from scratch; "
        "`--checkpoint-min-step 0` changes nothing here because the useful checkpoint is the one near the prompt "
        "end, which the default already makes. With thinking off the generation prompt ends in `</think>\\n\\n` "
        "and the model starts with `<tool_call>`: the token boundary survives and reuse is near-perfect; so it does "
        "with thinking on when the model writes any reasoning (`<think>\\n` then a word does not merge), which "
        "is the scripted reasoning session's figure above. The 10-round figure is the worst case of an empty "
        "think block every round. The in-process backend avoids the merge by keeping the token sequence and "
        "tokenizing only the new suffix."]
    return [figure]


def run(quick: bool) -> list[Figure]:
    return [in_process(quick), *llama_server(quick), llama_server_tokens(quick)]
