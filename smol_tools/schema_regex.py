"""JSON Schema checks that finish in bounded time, for schemas a visitor wrote.

Custom tools and imported sessions bring their own schemas. jsonschema matches `pattern` and
`patternProperties` with Python's backtracking `re`, which holds the GIL while it works: one
`"pattern": "^(a+)+$"` and a 30-character argument freeze every session of the app for
seconds, doubling with each character. Here those keywords run on RE2 (google-re2), whose
matching time is linear in the input, so there is nothing to time out. RE2 has no lookaround
and no backreferences; a visitor's schema using them is refused where it enters
(`schema_shape_problems`: custom tools, imports) with a message that says so. A pattern that
gets past those gates is the operator's own (the built-in tools' schemas, e.g. send_email's
end-of-text lookahead), so it runs on Python's `re`, as jsonschema would run it.

Why RE2 rather than a thread with a timeout: Python cannot stop a thread stuck inside `re`,
and that thread keeps the GIL, so the timeout would never get to run. A subprocess could be
killed, but costs a process start or a pool per check on a shared CPU.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Iterator, Mapping

import re2
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

from .safe_text import clean_text

MAX_SCHEMA_DEPTH = 32  # nesting of a visitor's schema; deeper ones are refused before any use
MAX_PATTERN_CHARS = 1000
_SHOWN = 80  # characters of a value quoted in an error

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a refused pattern is reported to the visitor, not logged by C++


class _Unsupported:
    """A pattern RE2 cannot run (lookaround, backreference, or simply invalid)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> Any:
    if len(pattern) > MAX_PATTERN_CHARS:
        return _Unsupported(f"longer than {MAX_PATTERN_CHARS} characters")
    try:
        return re2.compile(clean_text(pattern), options=_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        return _Unsupported(reason)


def pattern_problem(pattern: Any) -> str | None:
    """Why `pattern` cannot be used in a linear-time check, or None."""
    if not isinstance(pattern, str):
        return "a pattern must be a string"
    compiled = _compiled(pattern)
    if isinstance(compiled, _Unsupported):
        return (f"pattern {_quote(pattern)} cannot be checked by this server ({compiled.reason}); "
                "lookahead, lookbehind and backreferences are not supported")
    return None


@lru_cache(maxsize=256)
def _trusted(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except (re.error, RecursionError, OverflowError):
        return None


def _search(pattern: str, text: str) -> bool | None:
    """True/False for a match, None when the pattern cannot be run at all."""
    compiled = _compiled(pattern)
    if isinstance(compiled, _Unsupported):
        fallback = _trusted(pattern)  # past the entry gates: the operator's own schema
        return None if fallback is None else fallback.search(text) is not None
    return compiled.search(clean_text(text)) is not None


def _quote(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "…")


# -- the keywords, on RE2 ---------------------------------------------------------------------

def _pattern(validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "string"):
        return
    found = _search(pattern, instance)
    if found is None:
        yield ValidationError(pattern_problem(pattern) or "unusable pattern")
    elif not found:
        yield ValidationError(f"{_quote(instance)} does not match {_quote(pattern)}")


def _matching_keys(patterns: Mapping[str, Any], key: str) -> list[str]:
    return [p for p in patterns if _search(p, key)]


def _pattern_properties(validator: Any, patterns: Mapping[str, Any], instance: Any,
                        schema: Mapping[str, Any]) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        if isinstance(_compiled(pattern), _Unsupported) and _trusted(pattern) is None:
            yield ValidationError(pattern_problem(pattern) or "unusable pattern")
            continue
        for key, value in instance.items():
            if _search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(validator: Any, additional: Any, instance: Any,
                           schema: Mapping[str, Any]) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    named = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    extras = sorted((k for k in instance if k not in named and not _matching_keys(patterns, k)), key=str)
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif additional is False and extras:
        shown = ", ".join(_quote(k) for k in extras[:10]) + (" …" if len(extras) > 10 else "")
        yield ValidationError(f"additional properties are not allowed ({shown} unexpected)")


BoundedValidator = validators.extend(Draft202012Validator, {
    "pattern": _pattern, "patternProperties": _pattern_properties, "additionalProperties": _additional_properties,
})


class GuardedValidator:
    """`iter_errors` that never raises: a schema too deep to walk or with a $ref that cannot be
    resolved is one more problem in the list, not an exception in the request thread."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.schema = schema
        self._validator = BoundedValidator(schema)

    def iter_errors(self, instance: Any) -> Iterator[ValidationError]:
        try:
            errors = list(self._validator.iter_errors(instance))
        except RecursionError:
            errors = [ValidationError("the schema nests too deeply to be checked")]
        except Exception as exc:  # noqa: BLE001 - referencing's Unresolvable and kin: a bad schema
            errors = [ValidationError(f"the schema cannot be checked ({type(exc).__name__})")]
        return iter(errors)

    def is_valid(self, instance: Any) -> bool:
        return next(self.iter_errors(instance), None) is None


def bounded_validator(schema: Mapping[str, Any]) -> GuardedValidator:
    """A Draft 2020-12 validator for `schema` whose regex keywords run in linear time."""
    return GuardedValidator(schema)


def patterns_in(schema: Any) -> set[str]:
    """Every `pattern` and `patternProperties` key in a schema (the operator's trusted ones)."""
    found: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                found.add(node["pattern"])
            if isinstance(node.get("patternProperties"), dict):
                found.update(node["patternProperties"])
            stack.extend(v for v in node.values() if isinstance(v, (dict, list)))
    return found


def schema_shape_problems(schema: Any, where: str = "parameters",
                          trusted: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """What makes a visitor's schema unusable here: nesting deeper than MAX_SCHEMA_DEPTH,
    patterns RE2 cannot run (unless in `trusted`: the built-in tools' own, which an export
    carries back), and unevaluatedProperties next to patternProperties (jsonschema evaluates
    that pair with Python's `re`). Iterative: any nesting is measured safely."""
    problems: list[str] = []
    uses_unevaluated = uses_pattern_properties = False
    stack: list[tuple[Any, str, int]] = [(schema, where, 0)]
    while stack and len(problems) < 10:
        node, path, depth = stack.pop()
        if depth > MAX_SCHEMA_DEPTH:
            problems.append(f"{where}: nested deeper than {MAX_SCHEMA_DEPTH} levels")
            break
        if isinstance(node, list):
            stack.extend((item, f"{path}/{i}", depth + 1) for i, item in enumerate(node))
            continue
        if not isinstance(node, dict):
            continue
        if isinstance(node.get("pattern"), str) and node["pattern"] not in trusted:
            problem = pattern_problem(node["pattern"])
            if problem:
                problems.append(f"{path}/pattern: {problem}")
        if isinstance(node.get("patternProperties"), dict):
            uses_pattern_properties = True
            for key in node["patternProperties"]:
                problem = None if key in trusted else pattern_problem(key)
                if problem:
                    problems.append(f"{path}/patternProperties: {problem}")
        uses_unevaluated = uses_unevaluated or "unevaluatedProperties" in node
        stack.extend((value, f"{path}/{key}", depth + 1) for key, value in node.items()
                     if isinstance(value, (dict, list)))
    if uses_unevaluated and uses_pattern_properties and len(problems) < 10:
        problems.append(f"{where}: unevaluatedProperties together with patternProperties is not supported here")
    return problems
