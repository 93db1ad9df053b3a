"""Eval suites as data: load, validate against the JSON schema, expand into scored steps.

A suite file holds OpenAI tool schemas and cases; a case is an OpenAI conversation whose
assistant turns are the steps to score. For each assistant turn the model sees the messages
before it, with earlier assistant turns and tool results replayed from the case (so every step
is scored on the intended history, whatever the model did before), and its calls are compared
with the turn's `expected` calls (default: its own `tool_calls`; none for a plain answer).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Mapping, Sequence

import jsonschema

from .generate import expand

EVALS_DIR = Path(__file__).resolve().parent  # package data; metric definitions: evals/README.md
DEFAULT_SUITE = EVALS_DIR / "suite.json"
SCHEMA_PATH = EVALS_DIR / "suite.schema.json"
SCENARIOS = ("single_tool", "multi_tool_parallel", "multi_tool_sequential", "no_tool_needed",
             "error_recovery", "reasoning_heavy", "complex_multi_step")
# Keys a message may carry to the runtime; suite-only keys (`expected`) are stripped.
_WIRE_KEYS = ("role", "content", "reasoning_content", "tool_calls", "name", "tool_call_id")


class SuiteError(ValueError):
    """The suite file is missing, not JSON, or does not follow smol_tools/eval/suite.schema.json."""


@dataclass(frozen=True)
class Step:
    index: int  # 0-based assistant turn within the case
    history: list[dict[str, Any]]  # the messages the model sees
    expected: list[dict[str, Any]]  # [{"name", "arguments", "optional"?}]


@dataclass(frozen=True)
class Case:
    id: str
    scenario: str
    thinking: bool
    tools: list[dict[str, Any]]  # OpenAI tool schemas offered to the model
    messages: list[dict[str, Any]]
    notes: str = ""

    @property
    def schemas(self) -> dict[str, Mapping[str, Any]]:
        return {t["function"]["name"]: t["function"].get("parameters", {}) for t in self.tools}

    def steps(self) -> list[Step]:
        steps: list[Step] = []
        history: list[dict[str, Any]] = []
        for message in self.messages:
            wire = {k: message[k] for k in _WIRE_KEYS if k in message}
            if message["role"] == "tool":
                wire["content"] = expand(message["content"])
            if message["role"] == "assistant":
                steps.append(Step(len(steps), [dict(m) for m in history], expected_calls(message)))
            history.append(wire)
        return steps


@dataclass(frozen=True)
class Suite:
    name: str
    cases: list[Case]
    path: Path | None = None
    sha256: str = ""
    description: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_steps(self) -> int:
        return sum(sum(1 for m in c.messages if m["role"] == "assistant") for c in self.cases)

    def subset(self, *, scenarios: Sequence[str] | None = None, limit: int | None = None,
               ids: Sequence[str] | None = None) -> "Suite":
        cases = [c for c in self.cases if (not scenarios or c.scenario in scenarios)
                 and (not ids or c.id in ids)]
        return Suite(self.name, cases[:limit] if limit else cases, self.path, self.sha256, self.description,
                     self.meta)

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path) if self.path else None, "sha256": self.sha256,
                "cases": len(self.cases), "steps": self.n_steps}


def _arguments(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def expected_calls(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    if "expected" in message:
        return [dict(e) for e in message["expected"]]
    calls = []
    for call in message.get("tool_calls") or []:
        function = call.get("function", call)
        calls.append({"name": function["name"], "arguments": _arguments(function.get("arguments", {}))})
    return calls


@cache
def suite_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def schema_errors(data: Any) -> list[str]:
    """Every place where `data` breaks smol_tools/eval/suite.schema.json, plus the cross-references a JSON
    schema cannot state (case tools exist, expected calls name offered tools, ids unique)."""
    validator = jsonschema.Draft202012Validator(suite_schema())
    errors = [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
              for e in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))]
    if errors:
        return errors
    names = {t["function"]["name"] for t in data["tools"]}
    seen: set[str] = set()
    for case in data["cases"]:
        where = f"case {case['id']}"
        if case["id"] in seen:
            errors.append(f"{where}: duplicate id")
        seen.add(case["id"])
        offered = names if case.get("tools", "all") == "all" else set(case["tools"])
        if offered - names:
            errors.append(f"{where}: unknown tools {sorted(offered - names)}")
        for message in case["messages"]:
            if message["role"] == "assistant":
                replayed = [c["function"]["name"] for c in message.get("tool_calls") or []]
                for name in [c["name"] for c in expected_calls(message)] + replayed:
                    if name not in offered:
                        errors.append(f"{where}: calls {name}, which the case does not offer")
    return errors


def suite_from_data(data: Mapping[str, Any], *, path: Path | None = None, sha256: str = "",
                    validate: bool = True) -> Suite:
    if validate:
        errors = schema_errors(data)
        if errors:
            shown = "\n  ".join(errors[:20])
            raise SuiteError(f"{path or 'suite'} does not follow {SCHEMA_PATH.name}:\n  {shown}")
    by_name = {t["function"]["name"]: t for t in data["tools"]}
    cases = []
    for raw in data["cases"]:
        chosen = raw.get("tools", "all")
        tools = list(data["tools"]) if chosen == "all" else [by_name[n] for n in chosen]
        cases.append(Case(raw["id"], raw["scenario"], raw.get("thinking", True), tools,
                          [dict(m) for m in raw["messages"]], raw.get("notes", "")))
    return Suite(data.get("name", "suite"), cases, path, sha256, data.get("description", ""),
                 dict(data.get("meta", {})))


def load_suite_file(path: str | Path | None = None, *, validate: bool = True) -> Suite:
    """Load a suite file (default: smol_tools/eval/suite.json). Names such as `tiny`: catalog.load_suite."""
    path = Path(path) if path else DEFAULT_SUITE
    try:
        raw = path.read_bytes()
        data = json.loads(raw)
    except OSError as exc:
        raise SuiteError(f"cannot read suite {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise SuiteError(f"{path} is not JSON: {exc}") from exc
    return suite_from_data(data, path=path, sha256=hashlib.sha256(raw).hexdigest(), validate=validate)
