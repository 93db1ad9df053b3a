"""What every benchmark returns (a `Figure`), the statistics, and the report files."""

from __future__ import annotations

import json
import os
import platform
import statistics
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def spread(values: Sequence[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "stdev": statistics.stdev(values) if len(values) > 1 else 0.0, "n": len(values)}


@dataclass
class Figure:
    """One measured ratio: `measured` ÷ `anchor`, one sample per repetition (both sides timed
    in the same repetition, their order alternating).

    For short timings, `best` holds (fastest measured run, fastest anchor run) over all
    repetitions and the figure is their ratio: on a shared machine other load only ever adds
    time, so the fastest runs are the least disturbed estimate; the per-repetition ratios give
    the spread. Otherwise (token counts; runs of seconds) the figure is the median of the
    repetitions' ratios."""

    id: str
    title: str
    measured: str  # what the numerator is
    anchor: str  # what the denominator is
    goal: str  # e.g. "<= 1.1"
    goal_value: float | None
    samples: list[float] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    status: str = "measured"  # or "not measured: <why>"
    best: tuple[float, float] | None = None  # timings: (fastest measured, fastest anchor) seconds

    @property
    def estimator(self) -> str:
        return "fastest ÷ fastest" if self.best else "median of repetitions"

    @property
    def ratio(self) -> float | None:
        if not self.samples or self.status != "measured":
            return None
        return self.best[0] / self.best[1] if self.best else statistics.median(self.samples)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = self.ratio
        data["estimator"] = self.estimator
        data["spread"] = spread(self.samples) if self.samples and self.status == "measured" else None
        data["goal_met"] = (self.ratio <= self.goal_value) if self.ratio is not None and self.goal_value else None
        return data


def not_measured(id: str, title: str, reason: str, **kw: Any) -> Figure:
    return Figure(id, title, kw.pop("measured", ""), kw.pop("anchor", ""), kw.pop("goal", ""), None,
                  status=f"not measured: {reason}", **kw)


def host() -> dict[str, Any]:
    try:
        from importlib import metadata

        llama = metadata.version("llama-cpp-python")
    except Exception:
        llama = None
    return {"python": platform.python_version(), "machine": platform.machine(), "cpu_count": os.cpu_count(),
            "load_average_1m": os.getloadavg()[0], "llama_cpp_python": llama}


def build_report(figures: list[Figure], *, mode: str, command: str, seconds: float) -> dict[str, Any]:
    return {"bench_version": 1, "mode": mode, "command": command,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "host": host(),
            "seconds": round(seconds, 1), "figures": [f.to_dict() for f in figures]}


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def to_markdown(report: dict[str, Any]) -> str:
    h = report["host"]
    lines = [f"Command: `{report['command']}` ({report['mode']} mode, {report['seconds']:.0f} s, "
             f"{report['created']}; Python {h['python']}, {h['cpu_count']} CPUs, load {h['load_average_1m']:.2f}, "
             f"llama-cpp-python {h['llama_cpp_python']}).", "",
             "| Figure | Ratio | Spread of repetitions [min–max], n | Goal | Met | Measured ÷ anchor |",
             "|---|---|---|---|---|---|"]
    for f in report["figures"]:
        if f["ratio"] is None:
            lines.append(f"| {f['title']} | {f['status']} | | {f['goal']} | | {f['measured']} ÷ {f['anchor']} |")
            continue
        s = f["spread"]
        met = {True: "yes", False: "no", None: ""}[f["goal_met"]]
        mark = "" if f["best"] is None else " ᵇ"
        lines.append(f"| {f['title']} | **{_fmt(f['ratio'])}**{mark} | [{_fmt(s['min'])}–{_fmt(s['max'])}], {s['n']} | "
                     f"{f['goal']} | {met} | {f['measured']} ÷ {f['anchor']} |")
    lines.append("")
    lines.append("ᵇ timing figure: fastest measured run ÷ fastest anchor run over all repetitions (other load on "
                 "the machine only adds time); unmarked figures are the median of repetitions (token counts, and quantize "
                 "runs, which last long enough for the load to drift). The spread is the ratio within each "
                 "repetition, both sides run back to back in alternating order.")
    lines.append("")
    for f in report["figures"]:
        if f["notes"]:
            lines.append(f"**{f['title']}.** " + " ".join(f["notes"]))
            lines.append("")
    return "\n".join(lines)


def write_report(report: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    md = to_markdown(report)
    text = json.dumps(report, indent=1, ensure_ascii=False) + "\n"
    for name in (f"bench-{report['mode']}-{stamp}", f"bench-{report['mode']}-latest"):
        (out_dir / f"{name}.json").write_text(text, encoding="utf-8")
        (out_dir / f"{name}.md").write_text(md + "\n", encoding="utf-8")
    return out_dir / f"bench-{report['mode']}-latest.json", out_dir / f"bench-{report['mode']}-latest.md"
