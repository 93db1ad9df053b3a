"""Reports: the JSON record of a run, and the markdown tables the model card includes."""

from __future__ import annotations

import platform
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

from .bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED, confidence_intervals
from .metrics import METRICS, SUPPORT, add_counts, metric_values
from .runner import CaseResult, RunResult
from .suite import SCENARIOS

REPORT_VERSION = 1
LABELS = {"tool_f1": "Tool F1", "tool_precision": "Precision", "tool_recall": "Recall",
          "json_validity": "JSON validity", "argument_correctness": "Arg. correctness",
          "no_tool_accuracy": "No-tool acc.", "step_exact": "Step exact"}


def _support(metric: str, counts: Mapping[str, int]) -> list[int] | None:
    num, den = SUPPORT[metric]
    if den is None:
        return None
    return [counts[num], sum(counts[k] for k in den)]


def group_summary(cases: Sequence[CaseResult], *, name: str, stratify: bool, resamples: int,
                  seed: int) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for case in cases:
        add_counts(counts, case.counts())
    strata: dict[str, list[dict[str, int]]] = {}
    for case in cases:
        strata.setdefault(case.scenario if stratify else name, []).append(case.counts())
    intervals = confidence_intervals(strata, name=name, resamples=resamples, seed=seed) if cases else {}
    values = metric_values(counts) if cases else {m: None for m in METRICS}
    metrics = {m: {"value": values[m], "ci95": list(intervals[m]) if intervals.get(m) else None,
                   "support": _support(m, counts) if cases else None} for m in METRICS}
    return {"cases": len(cases), "steps": counts.get("steps", 0), "counts": counts, "metrics": metrics}


def build_report(run: RunResult, *, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    scenarios = {}
    for scenario in [s for s in SCENARIOS if any(c.scenario == s for c in run.cases)]:
        chosen = [c for c in run.cases if c.scenario == scenario]
        scenarios[scenario] = group_summary(chosen, name=scenario, stratify=False, resamples=resamples, seed=seed)
    failures = [{"case": c.id, "step": s.index, "failure": s.failure} for c in run.cases for s in c.steps if s.failure]
    return {
        "report_version": REPORT_VERSION,
        "label": run.label,
        "backend": run.backend,
        "suite": run.suite.info(),
        "settings": {**run.settings, "bootstrap_resamples": resamples, "bootstrap_seed": seed},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": {"python": platform.python_version(), "machine": platform.machine()},
        "seconds": round(run.seconds, 3),
        "overall": group_summary(run.cases, name="overall", stratify=True, resamples=resamples, seed=seed),
        "scenarios": scenarios,
        "failures": failures,
        "cases": [c.to_dict() for c in run.cases],
    }


def fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def fmt_ci(metric: Mapping[str, Any]) -> str:
    value, ci = metric["value"], metric["ci95"]
    if value is None:
        return "n/a"
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{value:.3f}"


def markdown_table(report: Mapping[str, Any]) -> str:
    """Overall and per-scenario metrics, Tool F1 with its bootstrap 95 % interval."""
    head = ["Scenario", "Cases", "Steps", "Tool F1 [95% CI]", "Precision", "Recall", "JSON validity",
            "Arg. correctness", "No-tool acc."]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rows = [("**overall**", report["overall"])] + [(f"`{k}`", v) for k, v in report["scenarios"].items()]
    for name, group in rows:
        m = group["metrics"]
        lines.append("| " + " | ".join([name, str(group["cases"]), str(group["steps"]), fmt_ci(m["tool_f1"]),
                                        fmt(m["tool_precision"]["value"]), fmt(m["tool_recall"]["value"]),
                                        fmt(m["json_validity"]["value"]), fmt(m["argument_correctness"]["value"]),
                                        fmt(m["no_tool_accuracy"]["value"])]) + " |")
    suite = report["suite"]
    lines.append("")
    lines.append(f"{report['label']} on suite `{suite['name']}` ({suite['cases']} cases, {suite['steps']} steps, "
                 f"sha256 {suite['sha256'][:12]}), greedy, max_tokens {report['settings']['max_tokens']}; "
                 f"95% CIs: {report['settings']['bootstrap_resamples']} bootstrap resamples of cases "
                 f"(seed {report['settings']['bootstrap_seed']}).")
    if report["failures"]:
        lines.append(f"{len(report['failures'])} step(s) failed in the runtime (scored as wrong); see the JSON report.")
    return "\n".join(lines)


def card_score(report: Mapping[str, Any]) -> str:
    """One cell for the model card's file table (CardInput.eval_scores)."""
    return f"F1 {fmt_ci(report['overall']['metrics']['tool_f1'])}"
