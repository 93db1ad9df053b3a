"""One results file from several real-size runs: `python -m bench --real-size --merge A.json B.json ...`.

At the real size the whole run takes hours on two cores, more than one sitting; each sitting runs
some parts (`--parts`, `--quants`, `--contexts`) into its own file and this folds them together.
Rules: a later run (by its `date`) wins figure by figure, down to one runtime at one context; the
ratios are recomputed from the merged figures; `not_measured` is rebuilt from what is still missing
(with the latest failure message where a run tried and failed), so no figure is ever filled in and
no stale "not run" survives a later run that measured it.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterable

from smol_tools.pipeline.measured import context_full_rss

from .harness import link_session_fill, ratios, roofline_tokens_per_s

# Whole parts: the latest run that has one wins it outright (they are measured as one piece).
WHOLE_PARTS = ("standin", "convert_plan", "package", "quick_build", "bandwidth", "session", "shape_key")
SIDES = {"in_process": "in process", "llama_server": "llama-server", "app": "app /send"}


def _by_date(reports: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(reports, key=lambda r: str(r.get("date", "")))


def _merge_runtimes(into: dict[str, Any], runtimes: dict[str, Any]) -> None:
    for quant, entry in (runtimes or {}).items():
        target = into.setdefault(quant, {"contexts": {}})
        for key, value in entry.items():
            if key == "contexts":
                for ctx, row in (value or {}).items():
                    merged_row = target["contexts"].setdefault(ctx, {})
                    merged_row.update({k: v for k, v in row.items() if v is not None})
            elif key != "ratios" and value is not None:
                target[key] = value


def _attempt_failures(reports: list[dict[str, Any]]) -> dict[str, str]:
    """The latest message each attempted-but-failed item left (`what: reason`)."""
    failures: dict[str, str] = {}
    for report in reports:
        for line in report.get("not_measured") or []:
            what = str(line).split(":", 1)[0]
            if "not run (not in --parts)" not in str(line):
                failures[what] = str(line)
    return failures


def missing_items(merged: dict[str, Any], failures: dict[str, str]) -> list[str]:
    """Every figure the full plan names that the merged report lacks, with why."""
    plan = merged.get("plan") or {}
    wanted: list[tuple[str, bool]] = [("package", bool(merged.get("package"))),
                                      ("bandwidth", bool(merged.get("bandwidth")))]
    runtimes = merged.get("runtimes") or {}
    for quant in plan.get("quants") or ():
        entry = runtimes.get(quant) or {}
        wanted.append((f"{quant} llama-bench", bool(entry.get("llama_bench"))))
        for ctx in plan.get("contexts") or ():
            row = (entry.get("contexts") or {}).get(str(ctx)) or {}
            for side, label in SIDES.items():
                wanted.append((f"{quant} @ {ctx} {label}", bool(row.get(side))))
        top = str(max(plan.get("contexts") or [0]))
        top_row = (entry.get("contexts") or {}).get(top) or {}
        wanted.append((f"{quant} @ {top} context filled", bool(context_full_rss(top_row))))
    if plan.get("quants"):
        wanted.append((f"session ({plan['quants'][0]})", bool(merged.get("session"))))
    return [failures.get(what, f"{what}: not run yet") for what, present in wanted if not present]


def merge_reports(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Fold several runs' reports into one; see the module docstring for the rules."""
    if not reports:
        raise ValueError("nothing to merge")
    ordered = _by_date(reports)
    scales = {r.get("scale") for r in ordered}
    if len(scales) != 1:
        raise ValueError(f"cannot merge runs of different scales: {sorted(map(str, scales))}")
    keys = {r.get("shape_key") for r in ordered if r.get("shape_key")}
    if len(keys) > 1:
        raise ValueError(f"cannot merge runs of different model shapes: {sorted(keys)}")
    latest = ordered[-1]
    merged: dict[str, Any] = {"schema": latest.get("schema"), "scale": latest.get("scale"),
                              "date": latest.get("date"), "machine": copy.deepcopy(latest.get("machine")),
                              "commands": [], "runs": [], "config_sources": latest.get("config_sources")}
    plan: dict[str, Any] = {"quants": [], "contexts": [], "parts": []}
    runtimes: dict[str, Any] = {}
    for report in ordered:
        merged["commands"] += [c for c in report.get("commands") or [] if c not in merged["commands"]]
        report_plan = report.get("plan") or {}
        merged["runs"].append({"date": report.get("date"), "commands": report.get("commands"),
                               "parts": report_plan.get("parts"), "machine": report.get("machine"),
                               "stopped_part_way": bool(report.get("in_progress"))})
        for key in ("quants", "contexts", "parts"):
            plan[key] += [v for v in report_plan.get(key) or [] if v not in plan[key]]
        for key, value in report_plan.items():
            if key not in ("quants", "contexts", "parts"):
                plan[key] = value
        for part in WHOLE_PARTS:
            if report.get(part):
                merged[part] = copy.deepcopy(report[part])
        _merge_runtimes(runtimes, copy.deepcopy(report.get("runtimes") or {}))
    plan["contexts"] = sorted(plan["contexts"])
    merged["plan"] = plan
    bandwidth = merged.get("bandwidth")
    for entry in runtimes.values():
        per_token = (entry.get("roofline") or {}).get("weight_bytes_per_token")
        if bandwidth and per_token:  # the merged bandwidth, whichever run measured it
            entry["roofline"] = {"weight_bytes_per_token": per_token,
                                 "roofline_tokens_per_s": roofline_tokens_per_s(bandwidth, per_token)}
        entry["contexts"] = dict(sorted(entry["contexts"].items(), key=lambda kv: int(kv[0])))
        entry["ratios"] = ratios(entry)
    merged["runtimes"] = runtimes
    link_session_fill(merged)
    merged["notes"] = [n for r in ordered for n in r.get("notes") or []]
    merged["not_measured"] = missing_items(merged, _attempt_failures(ordered))
    return merged


def recompute_tables(merged: dict[str, Any], folder: Path) -> list[str]:
    """Recompute every row's `computed_total_mib` with today's memory table (and the ratios built
    on it) for each quant whose GGUF is in `folder`, so an older run's figures are compared with
    the table the card prints now. Returns the files it read."""
    from smol_tools.pipeline.memory import estimate, read_shape

    done = []
    for entry in (merged.get("runtimes") or {}).values():
        path = Path(folder) / str(entry.get("file", ""))
        if not entry.get("file") or not path.is_file():
            continue
        shape = read_shape(path)
        for ctx, row in (entry.get("contexts") or {}).items():
            row["computed_total_mib"] = round(estimate(shape, int(ctx)).total / 2**20, 1)
        entry["ratios"] = ratios(entry)
        done.append(path.name)
    return done
