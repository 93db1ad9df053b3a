"""Compare runs of one suite over several quants/backends: one table plus call agreement.

Agreement of two runs = the share of steps where both made the same calls: the same multiset
of (tool name, arguments after `normalize_text` on every string) and the same number of
malformed blocks. It is computed against the first run (the reference) and for every pair.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Mapping, Sequence

from ..backends.factory import BACKEND_KINDS
from .metrics import normalize_text
from .report import fmt, fmt_ci

BACKENDS = BACKEND_KINDS
_SPEC = re.compile(r"^(?:(?P<label>[^=]+)=)?(?P<backend>llama-cpp-python|openai|llama-server|ollama):(?P<rest>.*)$")


@dataclass(frozen=True)
class RunSpec:
    label: str
    backend: str
    model: str
    url: str = ""
    api_key: str | None = field(default=None, repr=False)  # never printed with the spec


def parse_spec(text: str) -> RunSpec:
    """`[LABEL=]BACKEND:MODEL[@URL]`, e.g. `Q8_0=llama-cpp-python:model-q8_0.gguf`,
    `server=openai:default@http://127.0.0.1:8080`."""
    match = _SPEC.match(text.strip())
    if not match:
        raise ValueError(f"bad --compare spec {text!r}: use [LABEL=]BACKEND:MODEL[@URL] with BACKEND one of "
                         f"{', '.join(BACKENDS)}")
    rest, url = match["rest"], ""
    if "@http" in rest:
        rest, url = rest.rsplit("@http", 1)
        url = "http" + url
    label = match["label"] or f"{match['backend']}:{rest}"
    return RunSpec(label, match["backend"], rest, url)


def _canonical(value: Any) -> Any:
    if isinstance(value, str):
        return normalize_text(value)
    if isinstance(value, Mapping):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def step_signature(step: Mapping[str, Any]) -> tuple:
    calls = sorted(json.dumps([c["name"], _canonical(c["arguments"])], sort_keys=True, ensure_ascii=False)
                   for c in step["calls"])
    return tuple(calls), len(step["malformed"]), step.get("failure") is not None


def _signatures(report: Mapping[str, Any]) -> dict[tuple[str, int], tuple]:
    return {(case["id"], step["index"]): step_signature(step) for case in report["cases"] for step in case["steps"]}


def agreement(a: Mapping[str, Any], b: Mapping[str, Any]) -> float | None:
    sa, sb = _signatures(a), _signatures(b)
    shared = sa.keys() & sb.keys()
    return sum(sa[k] == sb[k] for k in shared) / len(shared) if shared else None


def compare_reports(reports: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    labels = [r["label"] for r in reports]
    pairwise = {f"{reports[i]['label']} | {reports[j]['label']}": agreement(reports[i], reports[j])
                for i, j in combinations(range(len(reports)), 2)}
    signatures = [_signatures(r) for r in reports]
    shared = set.intersection(*(set(s) for s in signatures)) if signatures else set()
    all_agree = (sum(len({s[k] for s in signatures}) == 1 for k in shared) / len(shared)) if shared else None
    rows = []
    for report in reports:
        overall = report["overall"]["metrics"]
        rows.append({"label": report["label"], "backend": report["backend"],
                     **{m: overall[m] for m in overall},
                     "agreement_with_reference": agreement(reports[0], report)})
    return {"labels": labels, "reference": labels[0] if labels else None, "rows": rows,
            "pairwise_agreement": pairwise, "all_agree": all_agree, "steps": len(shared)}


def compare_markdown(comparison: Mapping[str, Any]) -> str:
    head = ["Run", "Tool F1 [95% CI]", "Precision", "Recall", "JSON validity", "Arg. correctness",
            "No-tool acc.", f"Agreement with {comparison['reference']}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in comparison["rows"]:
        lines.append("| " + " | ".join([row["label"], fmt_ci(row["tool_f1"]), fmt(row["tool_precision"]["value"]),
                                        fmt(row["tool_recall"]["value"]), fmt(row["json_validity"]["value"]),
                                        fmt(row["argument_correctness"]["value"]),
                                        fmt(row["no_tool_accuracy"]["value"]),
                                        fmt(row["agreement_with_reference"])]) + " |")
    lines.append("")
    lines.append(f"All runs made identical calls on {fmt(comparison['all_agree'])} of {comparison['steps']} steps.")
    return "\n".join(lines)
