"""Template drift: does the checkpoint's own chat template render our corpus like ours does?

A checkpoint re-uploaded with a stock Qwen3.5 template (XML tool calls) would silently teach
every runtime the wrong format. We render the whole render corpus through both templates and
refuse to build until the user picks one (`--template ours|checkpoint`) when they differ.

A checkpoint's template is foreign code: stock templates fail on inputs ours accepts (Qwen3.5's
applies `|items` to tool-call arguments, which OpenAI-format messages carry as a JSON string;
Qwen3's tests `in` on content that is None beside tool calls). Every way it can fail — a syntax
error, any exception while rendering, a file that cannot be read — is a reported difference,
never a crash of this step."""

from __future__ import annotations

import json
import traceback
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
            return f"{self.case_id}: the checkpoint's template fails: {self.error}"
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
    read_error: str | None = None  # the template file exists but could not be read

    @property
    def drift(self) -> bool:
        return self.read_error is not None or (self.template is not None and bool(self.differences))

    @property
    def failures(self) -> list[CaseDiff]:
        """The cases the checkpoint's template could not render at all."""
        return [d for d in self.differences if d.error is not None]

    def summary(self) -> str:
        if self.read_error is not None:
            return f"checkpoint's chat template ({self.found_in}) cannot be read: {self.read_error}"
        if self.template is None:
            return "checkpoint ships no chat template; ours is embedded"
        if not self.differences:
            return f"checkpoint template ({self.found_in}) renders all {self.cases} corpus cases identically"
        failing = f" ({len(self.failures)} of them it cannot render)" if self.failures else ""
        return (f"checkpoint template ({self.found_in}) differs from ours on "
                f"{len(self.differences)}/{self.cases} corpus cases{failing}")

    def describe(self, limit: int = 5) -> str:
        lines = [self.summary()]
        lines += [f"  - {d.describe()}" for d in self.differences[:limit]]
        if len(self.differences) > limit:
            lines.append(f"  - ... and {len(self.differences) - limit} more")
        return "\n".join(lines)


def load_corpus(path: Path = CORPUS_PATH) -> list[dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8"))["cases"]


# Where a checkpoint keeps its template, in the order transformers 5 reads them: the .jinja file,
# then tokenizer_config.json, then a processor's chat_template.json. (llama.cpp's converter
# prefers tokenizer_config's; that does not matter here, because the metadata step embeds the
# chosen template anyway.)
TEMPLATE_FILES = ("chat_template.jinja", "tokenizer_config.json", "chat_template.json")


def _read_template(path: Path) -> str | None:
    if path.suffix == ".jinja":
        return path.read_text(encoding="utf-8")
    value = json.loads(path.read_text(encoding="utf-8")).get("chat_template")
    if isinstance(value, list):  # named templates: transformers uses "default"
        value = next((t.get("template") for t in value
                      if isinstance(t, dict) and t.get("name") == "default"), None)
    return value if isinstance(value, str) else None


def _find_template(folder: Path) -> tuple[str | None, str | None, str | None]:
    """(template, file it came from, why that file could not be read)."""
    for name in TEMPLATE_FILES:
        path = folder / name
        if not path.exists():
            continue
        try:
            value = _read_template(path)
        except (OSError, ValueError, AttributeError) as exc:  # unreadable, bad UTF-8, broken JSON
            return None, name, f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        if value is not None:
            return value, name, None
    return None, None, None


def checkpoint_template(folder: Path) -> tuple[str | None, str | None]:
    """(the template transformers 5 would use, its file), or (None, None).
    Raises ValueError when that file cannot be read; `check_template_drift` reports it instead."""
    template, found_in, error = _find_template(folder)
    if error is not None:
        raise ValueError(f"{found_in}: {error}")
    return template, found_in


def render_case(case: dict[str, Any], template: str) -> str:
    return render_prompt(case["messages"], case["tools"],
                         add_generation_prompt=case["add_generation_prompt"],
                         enable_thinking=case["enable_thinking"], template=template)


def _template_line(exc: BaseException) -> int | None:
    """The line of the template where rendering failed: Jinja maps its frames to `<template>`."""
    if isinstance(getattr(exc, "lineno", None), int):  # TemplateSyntaxError knows it directly
        return exc.lineno  # type: ignore[attr-defined]
    for cause in (exc, exc.__cause__):
        if cause is None:
            continue
        lines = [frame.lineno for frame in traceback.extract_tb(cause.__traceback__)
                 if frame.filename == "<template>"]
        if lines:
            return lines[-1]
    return None


def describe_render_error(exc: BaseException) -> str:
    """The template's own error, as one line: the original exception type, message and line."""
    original = exc.__cause__ if isinstance(exc, TemplateRenderError) and exc.__cause__ else exc
    message = " ".join(str(original).split()) or "(no message)"
    line = _template_line(exc)
    return f"{type(original).__name__}: {message[:300]}" + (f" (template line {line})" if line else "")


def render_foreign(case: dict[str, Any], template: str) -> tuple[str | None, str | None]:
    """(prompt, None), or (None, the template's error) whatever the template does wrong."""
    try:
        return render_case(case, template), None
    except Exception as exc:  # noqa: BLE001 - foreign code: any failure is a difference to report
        return None, describe_render_error(exc)


def check_template_drift(folder: Path, ours: str | None = None,
                         cases: list[dict[str, Any]] | None = None) -> DriftReport:
    ours = ours if ours is not None else load_template()
    cases = cases if cases is not None else load_corpus()
    theirs, found_in, read_error = _find_template(folder)
    if read_error is not None:
        return DriftReport(None, found_in, len(cases), read_error=read_error)
    if theirs is None:
        return DriftReport(None, None, len(cases))
    differences = []
    for case in cases:
        expected = render_case(case, ours)
        got, error = render_foreign(case, theirs)
        if error is not None:
            differences.append(CaseDiff(case["id"], expected, None, error))
        elif got != expected:
            differences.append(CaseDiff(case["id"], expected, got))
    return DriftReport(theirs, found_in, len(cases), differences)


def drift_message(report: DriftReport) -> str:
    """Why the build stops without `--template`, and the choices: one paragraph."""
    if report.read_error is not None:
        return (f"template drift: {report.summary()}. The build cannot compare it with ours. Re-run "
                "with --template ours to embed the format smol-tools was trained on "
                "(templates/smol-tools.jinja), or fix that file.")
    first = report.differences[0].describe()
    why = ("the template embedded in the GGUF decides the prompt llama-server --jinja, LM Studio and "
           "llama-cpp-python build, smol-tools was trained on templates/smol-tools.jinja, and the "
           "build will not guess which one to embed")
    if report.failures:
        failing = report.failures[0]
        choices = (f"Re-run with --template ours (--template checkpoint is refused: that template "
                   f"cannot render {len(report.failures)} of the corpus cases, e.g. {failing.case_id}: "
                   f"{failing.error}).")
    else:
        choices = ("Re-run with --template ours (recommended: the format the model was trained on) or "
                   "--template checkpoint (keep the checkpoint's; the Ollama files still follow ours).")
    return f"template drift: {report.summary()}; first: {first}. Stopped because {why}. {choices}"


def choose_template(report: DriftReport, choice: str | None, ours: str | None = None) -> tuple[str, str]:
    """(template text to embed, which one) — or TemplateDriftError when the user must choose,
    or chose a checkpoint template that cannot be embedded."""
    ours = ours if ours is not None else load_template()
    if choice is not None and choice not in TEMPLATE_CHOICES:
        raise ValueError(f"--template must be one of {TEMPLATE_CHOICES}, not {choice!r}")
    if choice == "checkpoint":
        if report.read_error is not None:
            raise TemplateDriftError(f"--template checkpoint: {report.summary()}. Fix that file, or "
                                     "use --template ours.")
        if report.template is None:
            raise TemplateDriftError("--template checkpoint: the checkpoint ships no chat template. "
                                     "Leave out --template (ours is embedded) or use --template ours.")
        if report.failures:
            # Verification renders the corpus through the embedded template: every file would fail.
            raise TemplateDriftError(
                f"--template checkpoint: the checkpoint's template ({report.found_in}) cannot render "
                f"{len(report.failures)}/{report.cases} render-corpus cases (first: "
                f"{report.failures[0].describe()}), so every file would fail verification and no "
                "runtime could build those prompts. Use --template ours (the format smol-tools was "
                "trained on), or fix the checkpoint's template.")
        return report.template, "checkpoint"
    if report.drift and choice is None:
        raise TemplateDriftError(drift_message(report))
    return ours, "ours"
