"""What strict calls cost while decoding (issue 19 §2): in process, per generated token,

    decode seconds per token with strict calls on (lazy tool-call grammar)
    ÷ decode seconds per token with strict calls off (llama-cpp-python's own sampler)

over the scripted tool-call turns (reasoning, one call, parallel calls, thinking off), greedy,
both variants on the same model in the same repetition, their order alternating; the figure is
fastest ÷ fastest (see common.Figure), in CPU seconds of this process (llama.cpp decodes on the
calling thread with n_threads=1). Target <= 1.10.

The model is the heavy twin (bench/heavy_twin.py: the tiny model's outputs at a few ms a token)
so the per-token cost is not all Python; the quick run uses the tiny model itself, where a token
costs ~0.3 ms and the ratio is a worst case. Both variants must produce the same text (strict
only rejects what the grammar forbids, and these turns' calls are valid): the bench checks it.

`python -m bench --only strict` (not in the default run).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from smol_tools.backends.base import SamplingParams
from smol_tools.events import TurnComplete

from .common import Figure

TURNS = ("reasoning_then_call#0", "multi_tool_parallel#0", "single_tool#0", "thinking_off_call#0")


def _decode(backend: Any, turn: Any, tools: list, strict: bool) -> tuple[float, int, str]:
    """CPU seconds of this process from the turn's first event (the prompt is read by then) to
    its end, tokens generated, text. CPU time, not wall time: the machine this runs on is shared,
    and other processes' load would swamp a difference of a few percent."""
    sampling = SamplingParams.greedy(max_tokens=200, strict=strict)
    # A fresh session each time: the prompt is evaluated the same way in both variants.
    session = f"bench-strict-{strict}-{time.perf_counter_ns()}"
    started = None
    for event in backend.stream_turn(turn.history, tools, sampling=sampling, enable_thinking=turn.thinking,
                                     session_id=session):
        started = time.process_time() if started is None else started
        if isinstance(event, TurnComplete):
            complete, seconds = event, time.process_time() - started
    backend.forget_session(session)
    return seconds, complete.usage.completion_tokens, complete.raw or ""


def measure(gguf: Path, repeats: int, label: str) -> Figure:
    from smol_tools.backends.llama_cpp import LlamaCppBackend
    from devkit.scripted import load_scripted, scripted_turns

    tools = load_scripted()["tools"]
    turns = [t for t in scripted_turns() if t.name in TURNS]
    backend = LlamaCppBackend(gguf, n_ctx=4096, n_threads=1)
    figure = Figure(f"strict_decode_{label}", f"Strict calls: decode cost per token, in process ({label})",
                    "seconds per generated token, strict on", "the same, strict off", "<= 1.10", 1.10)
    best_on = best_off = float("inf")
    tokens = 0
    for repeat in range(repeats):
        per_token: dict[bool, float] = {}
        for strict in ((False, True) if repeat % 2 == 0 else (True, False)):
            seconds, count, texts = 0.0, 0, []
            for turn in turns:
                s, n, raw = _decode(backend, turn, tools, strict)
                seconds, count = seconds + s, count + n
                texts.append(raw)
            per_token[strict] = seconds / count
            tokens = count
            figure.details.setdefault(f"texts_strict_{strict}", texts)
        assert figure.details["texts_strict_True"] == figure.details["texts_strict_False"], \
            "strict calls changed what the model wrote"
        figure.samples.append(per_token[True] / per_token[False])
        best_on, best_off = min(best_on, per_token[True]), min(best_off, per_token[False])
    figure.best = (best_on, best_off)
    for key in ("texts_strict_True", "texts_strict_False"):
        figure.details.pop(key)
    figure.details.update(model=gguf.name, tokens_per_repeat=tokens, repeats=repeats,
                          ms_per_token_on=round(best_on * 1000, 4), ms_per_token_off=round(best_off * 1000, 4))
    return figure


def run(quick: bool) -> list[Figure]:
    from devkit.tiny_gguf import ensure_tiny_gguf

    figures = [measure(ensure_tiny_gguf("Q8_0"), 3 if quick else 7, "tiny")]
    if not quick:
        from .heavy_twin import ensure_heavy_twin

        figures.append(measure(ensure_heavy_twin(), 5, "heavy twin"))
    return figures
