"""Scoring: one step's predicted calls against its expected calls, and the suite's metrics.

Definitions (the README states them for users):

* Tool selection. Per step, E = multiset of expected tool names, P = multiset of predicted call
  blocks (each parsed call by its name; each malformed block as a nameless item that matches
  nothing). TP = |E ∩ P| (multiset intersection), FP = |P| − TP, FN = |E| − TP. The counts are
  summed over every step of every case (micro-average): precision = ΣTP / Σ(TP+FP) (1 when
  nothing was predicted), recall = ΣTP / Σ(TP+FN) (1 when nothing was expected),
  F1 = 2PR / (P+R) (0 when P+R = 0).
* JSON validity = parsed calls / call blocks (parsed + malformed); n/a without blocks.
* Argument correctness = correct pairs / TP. Within each tool name, predicted and expected calls
  are paired to maximise the number of correct pairs; a pair is correct when the predicted
  arguments are valid against the tool's JSON schema and `arguments_match` the expected ones.
* No-tool accuracy = steps expecting no call where the model made no call block / steps
  expecting no call (a runtime failure counts as wrong).
* Step exactness (extra) = steps whose name multiset is right, with no malformed block and
  every expected call correctly argued.

Normalisation (`normalize_text`): Unicode NFC, whitespace runs collapsed to one space and
trimmed, then case-folded. Values match when: strings are equal after normalisation; numbers
are numerically equal (1 == 1.0, booleans are not numbers); booleans and null are identical;
objects have the same keys with matching values; arrays have the same length and match as
multisets (order-free: recipients and attendees are sets). An expected value may be a matcher
object instead: {"$any": true} (anything), {"$contains": [..]} (a string containing each
normalised part), {"$compact": s | [s..]} (equal to one of them with all whitespace removed,
case-folded: "17*23" matches "17 * 23"), {"$one_of": [v..]} (matches one of the values).
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections import Counter
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, Callable, Mapping, Sequence

import jsonschema

MATCHERS = ("$any", "$contains", "$compact", "$one_of")


def normalize_text(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split()).casefold()


def _compact(text: str) -> str:
    return "".join(unicodedata.normalize("NFC", text).split()).casefold()


def is_matcher(value: Any) -> bool:
    return isinstance(value, Mapping) and len(value) == 1 and next(iter(value)) in MATCHERS


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _match_matcher(matcher: Mapping[str, Any], actual: Any) -> bool:
    (kind, spec), = matcher.items()
    if kind == "$any":
        return True
    if kind == "$one_of":
        return any(values_match(option, actual) for option in spec)
    if not isinstance(actual, str):
        return False
    if kind == "$contains":
        text = normalize_text(actual)
        return all(normalize_text(part) in text for part in _as_list(spec))
    return _compact(actual) in {_compact(option) for option in _as_list(spec)}  # $compact


def _multiset_match(expected: Sequence[Any], actual: Sequence[Any]) -> bool:
    if len(expected) != len(actual):
        return False
    ok = [[values_match(e, a) for a in actual] for e in expected]
    return _max_pairs(ok) == len(expected)


def values_match(expected: Any, actual: Any) -> bool:
    """Does `actual` (a model's value) match `expected` (a suite value or matcher)?"""
    if is_matcher(expected):
        return _match_matcher(expected, actual)
    if isinstance(expected, str):
        return isinstance(actual, str) and normalize_text(expected) == normalize_text(actual)
    if isinstance(expected, bool) or expected is None:
        return type(actual) is type(expected) and actual == expected
    if _is_number(expected):
        return _is_number(actual) and math.isclose(expected, actual, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(expected, Mapping):
        return (isinstance(actual, Mapping) and set(expected) == set(actual)
                and all(values_match(v, actual[k]) for k, v in expected.items()))
    if isinstance(expected, (list, tuple)):
        return isinstance(actual, (list, tuple)) and _multiset_match(expected, actual)
    return expected == actual


def arguments_match(expected: Mapping[str, Any], actual: Any) -> bool:
    """`expected` = {"arguments": {...}, "optional": {...}}: every argument present and matching;
    any other key the model passed must be an optional one, matching its value."""
    if not isinstance(actual, Mapping):
        return False
    required = expected.get("arguments", {})
    optional = expected.get("optional", {})
    for key, value in required.items():
        if key not in actual or not values_match(value, actual[key]):
            return False
    for key, value in actual.items():
        if key in required:
            continue
        if key not in optional or not values_match(optional[key], value):
            return False
    return True


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(schema_json))


def schema_valid(schema: Mapping[str, Any] | None, arguments: Any) -> bool:
    if schema is None:
        return False  # a tool the case does not offer
    return _validator(json.dumps(schema, sort_keys=True)).is_valid(arguments)


def _max_pairs(ok: list[list[bool]]) -> int:
    """Maximum bipartite matching (Kuhn's algorithm; the sets are a handful of calls)."""
    owner: dict[int, int] = {}

    def assign(row: int, seen: set[int]) -> bool:
        for col, good in enumerate(ok[row]):
            if good and col not in seen:
                seen.add(col)
                if col not in owner or assign(owner[col], seen):
                    owner[col] = row
                    return True
        return False
    return sum(assign(row, set()) for row in range(len(ok)))


@dataclass
class StepScore:
    expected: int = 0  # |E|
    blocks: int = 0  # |P|: parsed calls + malformed blocks
    tp: int = 0
    args_ok: int = 0
    valid_blocks: int = 0  # parsed calls
    no_tool_expected: bool = False
    no_tool_ok: bool = False
    exact: bool = False

    @property
    def fp(self) -> int:
        return self.blocks - self.tp

    @property
    def fn(self) -> int:
        return self.expected - self.tp

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fp": self.fp, "fn": self.fn}


def score_step(expected: Sequence[Mapping[str, Any]], calls: Sequence[tuple[str, Any]],
               malformed: int, schemas: Mapping[str, Mapping[str, Any]], *, failed: bool = False) -> StepScore:
    """`expected`: [{"name", "arguments", "optional"?}]; `calls`: the parsed (name, arguments)."""
    score = StepScore(expected=len(expected), blocks=len(calls) + malformed, valid_blocks=len(calls))
    names_e = Counter(e["name"] for e in expected)
    names_p = Counter(name for name, _ in calls)
    score.tp = sum((names_e & names_p).values())
    for name in names_e.keys() & names_p.keys():
        want = [e for e in expected if e["name"] == name]
        got = [args for n, args in calls if n == name]
        ok = [[schema_valid(schemas.get(name), args) and arguments_match(e, args) for args in got] for e in want]
        score.args_ok += _max_pairs(ok)
    score.no_tool_expected = not expected
    score.no_tool_ok = not expected and score.blocks == 0 and not failed
    score.exact = (not failed and names_e == names_p and malformed == 0 and score.args_ok == len(expected))
    return score


# -- aggregation -----------------------------------------------------------------------------
COUNTERS = ("tp", "fp", "fn", "args_ok", "blocks", "valid_blocks", "no_tool_total", "no_tool_ok",
            "steps", "exact_steps")


def step_counts(score: StepScore) -> dict[str, int]:
    return {"tp": score.tp, "fp": score.fp, "fn": score.fn, "args_ok": score.args_ok,
            "blocks": score.blocks, "valid_blocks": score.valid_blocks,
            "no_tool_total": int(score.no_tool_expected), "no_tool_ok": int(score.no_tool_ok),
            "steps": 1, "exact_steps": int(score.exact)}


def add_counts(total: dict[str, int], more: Mapping[str, int]) -> dict[str, int]:
    for key in COUNTERS:
        total[key] = total.get(key, 0) + more.get(key, 0)
    return total


def _ratio(num: float, den: float, empty: float | None) -> float | None:
    return num / den if den else empty


def precision(c: Mapping[str, float]) -> float | None:
    return _ratio(c["tp"], c["tp"] + c["fp"], 1.0)


def recall(c: Mapping[str, float]) -> float | None:
    return _ratio(c["tp"], c["tp"] + c["fn"], 1.0)


def f1(c: Mapping[str, float]) -> float | None:
    p, r = precision(c), recall(c)
    return 2 * p * r / (p + r) if p + r else 0.0


METRICS: dict[str, Callable[[Mapping[str, float]], float | None]] = {
    "tool_f1": f1,
    "tool_precision": precision,
    "tool_recall": recall,
    "json_validity": lambda c: _ratio(c["valid_blocks"], c["blocks"], None),
    "argument_correctness": lambda c: _ratio(c["args_ok"], c["tp"], None),
    "no_tool_accuracy": lambda c: _ratio(c["no_tool_ok"], c["no_tool_total"], None),
    "step_exact": lambda c: _ratio(c["exact_steps"], c["steps"], None),
}
# The numerator/denominator each metric is computed from, shown next to it in reports.
SUPPORT = {"tool_f1": ("tp", None), "tool_precision": ("tp", ("tp", "fp")), "tool_recall": ("tp", ("tp", "fn")),
           "json_validity": ("valid_blocks", ("blocks",)), "argument_correctness": ("args_ok", ("tp",)),
           "no_tool_accuracy": ("no_tool_ok", ("no_tool_total",)), "step_exact": ("exact_steps", ("steps",))}


def metric_values(counts: Mapping[str, float]) -> dict[str, float | None]:
    return {name: fn(counts) for name, fn in METRICS.items()}
