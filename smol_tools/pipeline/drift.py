"""Template drift: does the checkpoint's own chat template render our corpus like ours does?

A checkpoint re-uploaded with a stock Qwen3.5 template (XML tool calls) would silently teach
every runtime the wrong format. We render the whole render corpus through both templates and
refuse to build until the user picks one (`--template ours|checkpoint`) when they differ."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..chat_format import TemplateRenderError, load_template, render_prompt
from .settings import CORPUS_PATH

TEMPLATE_CHOICES = ("ours", "checkpoint")


class TemplateDriftError(RuntimeError):
    """The checkpoint's template differs from ours and the user has not chosen one."""


@dataclass(frozen=True)
class CaseDiff:
    case_id: str
    ours: str | None
    theirs: str | None
    error: str | None = None  # the checkpoint template refused the case

    def describe(self) -> str:
        if self.error is not None:
            return f"{self.case_id}: checkpoint template fails: {self.error}"
        ours, theirs = self.ours or "", self.theirs or ""
        at = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
        return (f"{self.case_id}: first difference at char {at}: "
                f"ours {ours[max(0, at - 20): at + 40]!r} vs checkpoint {theirs[max(0, at - 20): at + 40]!r}")


@dataclass(frozen=True)
class DriftReport:
    template: str | None  # the checkpoint's template text, None if it ships none
    found_in: str | None  # file it came from
    cases: int
    differences: list[CaseDiff] = field(default_factory=list)

    @property
    def drift(self) -> bool:
        return self.template is not None and bool(self.differences)

    def summary(self) -> str:
        if self.template is None:
            return "checkpoint ships no chat template; ours is embedded"
        if not self.differences:
            return f"checkpoint template ({self.found_in}) renders all {self.cases} corpus cases identically"
        return (f"checkpoint template ({self.found_in}) differs from ours on "
                f"{len(self.differences)}/{self.cases} corpus cases")

    def describe(self, limit: int = 5) -> str:
        lines = [self.summary()]
        lines += [f"  - {d.describe()}" for d in self.differences[:limit]]
        if len(self.differences) > limit:
            lines.append(f"  - ... and {len(self.differences) - limit} more")
        return "\n".join(lines)


def load_corpus(path: Path = CORPUS_PATH) -> list[dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8"))["cases"]


def checkpoint_template(folder: Path) -> tuple[str | None, str | None]:
    """The template transformers would use: chat_template.jinja first, then tokenizer_config."""
    jinja = folder / "chat_template.jinja"
    if jinja.exists():
        return jinja.read_text(encoding="utf-8"), jinja.name
    config = folder / "tokenizer_config.json"
    if config.exists():
        value = json.loads(config.read_text(encoding="utf-8")).get("chat_template")
        if isinstance(value, list):  # named templates: transformers uses "default"
            value = next((t["template"] for t in value if t.get("name") == "default"), None)
        if isinstance(value, str):
            return value, config.name
    return None, None


def render_case(case: dict[str, Any], template: str) -> str:
    return render_prompt(case["messages"], case["tools"],
                         add_generation_prompt=case["add_generation_prompt"],
                         enable_thinking=case["enable_thinking"], template=template)


def check_template_drift(folder: Path, ours: str | None = None,
                         cases: list[dict[str, Any]] | None = None) -> DriftReport:
    ours = ours if ours is not None else load_template()
    cases = cases if cases is not None else load_corpus()
    theirs, found_in = checkpoint_template(folder)
    if theirs is None:
        return DriftReport(None, None, len(cases))
    differences = []
    for case in cases:
        expected = render_case(case, ours)
        try:
            got = render_case(case, theirs)
        except TemplateRenderError as exc:
            differences.append(CaseDiff(case["id"], expected, None, str(exc)))
            continue
        if got != expected:
            differences.append(CaseDiff(case["id"], expected, got))
    return DriftReport(theirs, found_in, len(cases), differences)


def choose_template(report: DriftReport, choice: str | None, ours: str | None = None) -> tuple[str, str]:
    """(template text to embed, which one) — or TemplateDriftError when the user must choose."""
    ours = ours if ours is not None else load_template()
    if choice is not None and choice not in TEMPLATE_CHOICES:
        raise ValueError(f"--template must be one of {TEMPLATE_CHOICES}, not {choice!r}")
    if choice == "checkpoint":
        if report.template is None:
            raise TemplateDriftError("--template checkpoint: the checkpoint ships no chat template")
        return report.template, "checkpoint"
    if report.drift and choice is None:
        raise TemplateDriftError(
            "template drift: " + report.describe()
            + "\nRefusing to guess which format to embed. Re-run with --template ours (the format "
              "smol-tools was trained on, templates/smol-tools.jinja) or --template checkpoint.")
    return ours, "ours"
