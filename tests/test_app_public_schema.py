"""Visitor schemas in bounded time (smol_tools/schema_regex.py, issue 16 §1), without a server:
RE2 answers `^(a+)+$` on long input at once, the entry gate refuses what RE2 cannot run, and
the operator's own lookahead patterns (built-in tools) still validate as before."""

from __future__ import annotations

import time

from smol_tools.schema_regex import bounded_validator, patterns_in, schema_shape_problems
from smol_tools.tools import default_registry

EVIL = {"type": "object", "properties": {"codes": {"type": "array", "items": {"type": "string", "pattern": "^(a+)+$"}}},
        "patternProperties": {"^(b+)+$": {"type": "integer"}}, "additionalProperties": False}


def test_catastrophic_patterns_answer_in_linear_time() -> None:
    started = time.monotonic()
    problems = [e.message for e in bounded_validator(EVIL).iter_errors(
        {"codes": ["a" * 100_000 + "!"], "b" * 100_000 + "!": 1})]
    assert time.monotonic() - started < 1.0  # Python's re: 2x per character, forever at this size
    assert any("does not match" in p for p in problems)
    assert any("additional properties are not allowed" in p for p in problems)
    assert list(bounded_validator(EVIL).iter_errors({"codes": ["aaa"], "bb": 2})) == []


def test_the_gate_refuses_what_re2_cannot_run() -> None:
    assert "lookahead" in schema_shape_problems({"properties": {"a": {"pattern": "(?=x)"}}})[0]
    assert "backreferences" in schema_shape_problems({"patternProperties": {"(a)\\1": {}}})[0]
    nested: dict = {}
    node = nested
    for _ in range(40):
        node["items"] = {}
        node = node["items"]
    assert "deeper than 32" in schema_shape_problems(nested)[0]
    assert schema_shape_problems(EVIL) == []  # RE2 runs it in linear time: nothing to refuse


def test_builtin_schemas_with_lookahead_still_validate() -> None:
    # send_email's single-line fields end in (?![\s\S]), which RE2 lacks: the operator's own.
    schema = next(t for t in default_registry().schemas() if t["function"]["name"] == "send_email")
    validator = bounded_validator(schema["function"]["parameters"])
    good = {"to": ["a@example.com"], "subject": "Hi", "body": "Hello"}
    assert list(validator.iter_errors(good)) == []
    assert list(validator.iter_errors({**good, "to": ["a@example.com\nBcc: x@y.z"]}))


def test_schemas_that_cannot_be_walked_are_problems_not_crashes() -> None:
    assert "nests too deeply" in next(bounded_validator({"$ref": "#"}).iter_errors(1)).message
    assert "cannot be checked" in next(bounded_validator({"$ref": "#/missing"}).iter_errors(1)).message


def test_exports_carry_the_builtin_patterns_back() -> None:
    registry = default_registry()
    email = next(t for t in registry.schemas() if t["function"]["name"] == "send_email")["function"]["parameters"]
    assert schema_shape_problems(email)  # a visitor writing that lookahead is refused...
    assert schema_shape_problems(email, trusted=patterns_in(registry.schemas())) == []  # ...the built-in's is not
