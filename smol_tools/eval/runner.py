"""Run a suite through any backend, one scored step per assistant turn.

Each case runs in its own backend session, steps in order, so a runtime that reuses the prompt
across rounds (in process: the model state; llama-server: its cache) does so here too: the
replayed history extends the previous step's prompt exactly when the model's turn matched the
expected one. Decoding is greedy by default, so a run is reproducible.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..backends.base import Backend, SamplingParams
from ..events import TurnComplete
from .metrics import StepScore, add_counts, score_step, step_counts
from .suite import Case, Step, Suite


@dataclass
class StepResult:
    case_id: str
    scenario: str
    index: int
    expected: list[dict[str, Any]]
    calls: list[dict[str, Any]]  # parsed: {"name", "arguments"}
    malformed: list[str]  # parser/server messages for blocks that were not valid calls
    content: str
    reasoning: str | None
    finish_reason: str
    score: StepScore
    seconds: float
    usage: dict[str, Any] = field(default_factory=dict)
    failure: str | None = None  # the runtime failed this step (counted as wrong)

    def counts(self) -> dict[str, int]:
        return step_counts(self.score)

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "expected": self.expected, "calls": self.calls,
                "malformed": self.malformed, "content": self.content, "reasoning": self.reasoning,
                "finish_reason": self.finish_reason, "score": self.score.to_dict(),
                "seconds": round(self.seconds, 4), "usage": self.usage, "failure": self.failure}


@dataclass
class CaseResult:
    id: str
    scenario: str
    steps: list[StepResult]

    def counts(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for step in self.steps:
            add_counts(total, step.counts())
        return total

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "scenario": self.scenario, "steps": [s.to_dict() for s in self.steps]}


@dataclass
class RunResult:
    label: str
    backend: dict[str, Any]
    suite: Suite
    cases: list[CaseResult]
    settings: dict[str, Any]
    seconds: float


def _usage_dict(usage: Any) -> dict[str, Any]:
    keys = ("prompt_tokens", "prompt_tokens_evaluated", "cached_tokens", "completion_tokens",
            "prompt_seconds", "generation_seconds")
    return {k: getattr(usage, k) for k in keys if hasattr(usage, k)}


def run_step(backend: Backend, case: Case, step: Step, *, sampling: SamplingParams,
             session_id: str) -> StepResult:
    started = time.perf_counter()
    complete: TurnComplete | None = None
    failure = None
    try:
        for event in backend.stream_turn(step.history, case.tools, sampling=sampling,
                                         enable_thinking=case.thinking, session_id=session_id):
            if isinstance(event, TurnComplete):
                complete = event
        if complete is None:
            failure = f"{backend.name} ended the turn without a result"
    except Exception as exc:  # a runtime failure scores the step as wrong; the run goes on
        failure = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - started
    if complete is None:
        score = score_step(step.expected, [], 0, case.schemas, failed=True)
        return StepResult(case.id, case.scenario, step.index, step.expected, [], [], "", None, "error",
                          score, seconds, failure=failure)
    result = complete.result
    calls = [(c.name, c.arguments) for c in result.tool_calls]
    score = score_step(step.expected, calls, len(result.errors), case.schemas)
    return StepResult(case.id, case.scenario, step.index, step.expected,
                      [{"name": n, "arguments": a} for n, a in calls], [e.message for e in result.errors],
                      result.content, result.reasoning, complete.finish_reason, score, seconds,
                      _usage_dict(complete.usage))


def run_suite(backend: Backend, suite: Suite, *, label: str = "", backend_info: dict[str, Any] | None = None,
              sampling: SamplingParams | None = None, progress: bool = True,
              on_step: Callable[[StepResult], None] | None = None) -> RunResult:
    """Score every step of every case of `suite` on `backend`."""
    from tqdm import tqdm  # start-up time: tqdm

    sampling = sampling or SamplingParams.greedy()
    started = time.perf_counter()
    cases: list[CaseResult] = []
    bar = tqdm(total=suite.n_steps, desc=label or backend.name, unit="step", file=sys.stderr,
               disable=not progress, dynamic_ncols=True)
    try:
        for case in suite.cases:
            session_id = f"eval:{label}:{case.id}"
            steps = []
            for step in case.steps():
                result = run_step(backend, case, step, sampling=sampling, session_id=session_id)
                steps.append(result)
                if on_step is not None:
                    on_step(result)
                bar.set_postfix_str(case.id, refresh=False)
                bar.update(1)
            forget = getattr(backend, "forget_session", None)
            if callable(forget):  # free the in-process state this case kept for prompt reuse
                forget(session_id)
            cases.append(CaseResult(case.id, case.scenario, steps))
    finally:
        bar.close()
    settings = {"temperature": sampling.temperature, "max_tokens": sampling.max_tokens,
                "top_k": sampling.top_k, "top_p": sampling.top_p, "seed": sampling.seed}
    return RunResult(label or backend.name, backend_info or {"name": backend.name}, suite, cases, settings,
                     time.perf_counter() - started)
