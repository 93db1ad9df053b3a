"""Many users on one machine: 1, 2, 4 and 8 concurrent sessions of 5 tool rounds each, on the
heavy twin (the tiny model's answers at a realistic per-token cost), in process (one model;
sessions take turns, each with its parked state) vs a managed llama-server with `-np 4`
(parallel slots, each session pinned to one).

Per configuration: aggregate decode tokens/s (every session's generated tokens ÷ wall time),
p50/p95 round latency (one model turn, as a session waits for it, queueing included), and prompt
reuse: prompt tokens evaluated per round ÷ the round's new tokens (1.0 = only what is new was
evaluated; a session whose slot was handed to another is evaluated in full and shows above 1).
The figure per backend is aggregate throughput at 4 sessions ÷ at 1 session (issue 20's target on
the heavy twin: >= 2.5 for the managed server).

`nice python -m bench --only concurrency` (not in the default run: minutes, all cores).
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from typing import Any, Callable

from .common import Figure, not_measured
from .session import new_tokens, run_session

SESSIONS = (1, 2, 4, 8)
ROUNDS = 5
SLOTS = 4
CTX = 4096


class TimedBackend:
    """Delegates to a backend and records each turn's wall time as the session sees it."""

    def __init__(self, backend: Any, latencies: list[float]) -> None:
        self.backend = backend
        self.latencies = latencies
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    def stream_turn(self, messages, tools=None, **kwargs):
        started = time.perf_counter()
        yield from self.backend.stream_turn(messages, tools, **kwargs)
        with self._lock:
            self.latencies.append(time.perf_counter() - started)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def measure(backend: Any, sessions: int, tag: str, *, stop_counted: bool) -> dict[str, Any]:
    latencies: list[float] = []
    timed = TimedBackend(backend, latencies)
    runs: list[Any] = [None] * sessions
    errors: list[str] = []

    def one(index: int) -> None:
        try:
            runs[index] = run_session(timed, session_id=f"{tag}-{sessions}-{index}", rounds=ROUNDS, record=False)
        except Exception as exc:  # noqa: BLE001 - reported in the figure
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(sessions)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if errors:
        raise RuntimeError("; ".join(errors[:3]))
    generated = sum(u.completion_tokens for run in runs for u in run.usages)
    reuse = []  # rounds 2..: evaluated ÷ new (llama-server counts the stop token as generated)
    for run in runs:
        for usage, new in list(zip(run.usages, new_tokens(run, stop_counted=stop_counted)))[1:]:
            if new > 0:
                reuse.append(usage.prompt_tokens_evaluated / new)
    rounds = [len(run.usages) for run in runs]
    return {"sessions": sessions, "wall_s": round(wall, 3), "generated_tokens": generated,
            "tokens_per_s": round(generated / wall, 1), "round_p50_s": round(_percentile(latencies, 0.5), 3),
            "round_p95_s": round(_percentile(latencies, 0.95), 3), "rounds_per_session": rounds,
            "prompt_evaluated_per_new_token": round(statistics.mean(reuse), 3) if reuse else None,
            "prompt_evaluated_per_round": round(statistics.mean(
                u.prompt_tokens_evaluated for run in runs for u in run.usages), 1)}


def _series(make: Callable[[], Any], tag: str, counts: tuple[int, ...], *, stop_counted: bool) -> list[dict[str, Any]]:
    backend = make()
    try:
        run_session(backend, session_id=f"{tag}-warmup", rounds=2, record=False)  # load, first-use costs
        return [measure(backend, n, tag, stop_counted=stop_counted) for n in counts]
    finally:
        close = getattr(backend, "close", None)
        if close is not None:
            close()


def _figure(tag: str, title: str, rows: list[dict[str, Any]], notes: list[str]) -> Figure:
    by_n = {r["sessions"]: r for r in rows}
    figure = Figure(f"concurrency_{tag}", title, measured="aggregate decode tok/s at 4 sessions",
                    anchor="aggregate decode tok/s at 1 session", goal=">= 2.5 (managed, heavy twin)",
                    goal_value=None, details={"rows": rows}, notes=notes)
    if 4 in by_n and 1 in by_n and by_n[1]["tokens_per_s"]:
        figure.samples = [by_n[4]["tokens_per_s"] / by_n[1]["tokens_per_s"]]
    return figure


def run(quick: bool) -> list[Figure]:
    from smol_tools.backends.llama_cpp import LlamaCppBackend
    from smol_tools.backends.managed_server import ManagedLlamaServerBackend

    from .heavy_twin import ensure_heavy_twin

    counts = (1, 2, 4) if quick else SESSIONS
    threads = int(os.environ.get("SMOL_TOOLS_BENCH_THREADS", "0")) or (os.cpu_count() or 2)
    try:
        gguf = ensure_heavy_twin()
    except Exception as exc:  # noqa: BLE001 - torch or the converter missing: say so
        return [not_measured("concurrency", "concurrent sessions", f"heavy twin unavailable: {exc}")]
    notes = [f"heavy twin {gguf.name}, {ROUNDS} rounds per session (read/list loop), greedy, {threads} threads, "
             f"{os.cpu_count()} cores on this host"]
    in_process = _series(lambda: LlamaCppBackend(gguf, n_ctx=CTX, n_threads=threads), "in-process", counts,
                         stop_counted=False)
    managed = _series(lambda: ManagedLlamaServerBackend(gguf, slots=SLOTS, context_length=CTX, threads=threads),
                      "managed", counts, stop_counted=True)
    return [_figure("in_process", "in process: sessions take turns on one model", in_process, notes),
            _figure("managed", f"managed llama-server -np {SLOTS}: parallel slots", managed, notes)]
