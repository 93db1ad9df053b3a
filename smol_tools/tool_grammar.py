"""GBNF grammars that make tool calls impossible to malform (strict calls, tool_choice).

A grammar covers the tool-call blocks of our format,

    <tool_call>\\n{"name": "<declared tool>", "arguments": <object matching its schema>}\\n</tool_call>

one block, or several separated by a newline (parallel calls), then the end of the turn. Two
shapes:

- lazy (strict calls with tool_choice "auto"): the grammar waits for the `<tool_call>` token;
  reasoning and free text before it are not constrained. The backend arms it only after the
  reasoning block closed, so a `<tool_call>` written while thinking stays free text.
- eager (tool_choice "required" or one named function): the turn must end in a call. With the
  reasoning block open (thinking on) the grammar lets any token but `</think>` through, then
  `</think>`, whitespace and the calls; reasoning stays free, answering without a call cannot.

Arguments are converted from each tool's JSON schema with llama-cpp-python's schema converter
(the Python twin of llama.cpp's json-schema-to-grammar); the keywords it supports are listed in
docs/strict-calls.md. Keywords it cannot express (minimum, maximum, multipleOf, uniqueItems, not,
if/then, ...) still reach the agent's validation, which reports a violation to the model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .tool_choice import ToolChoice, restrict_tools

CALL_OPEN = "<tool_call>"
THINK_CLOSE = "</think>"
# Between `</think>` and a forced first call: the blank line the model writes there.
_GAP = '[\\n]{0,2}'
_JSON_CHAR = r'char ::= [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})'


class GrammarError(ValueError):
    """A schema the converter cannot turn into a grammar; the message names the tool."""


@dataclass(frozen=True)
class ToolGrammar:
    gbnf: str
    lazy: bool  # wait for the `<tool_call>` token; eager grammars apply from the first token
    tools: tuple[str, ...]  # the tool names a call may use


def _literal(text: str) -> str:
    """A GBNF string literal for `text`."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


_TYPING = ("type", "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "properties", "items", "prefixItems",
           "pattern", "format")
# Length and item bounds become one nested rule per allowed length (in the converter and in
# llama.cpp's own `{m,n}`): above this they are left to the agent's validation.
MAX_GRAMMAR_BOUND = 32
_BOUNDS = ("minLength", "maxLength", "minItems", "maxItems")
_ANY_VALUE = {"type": ["string", "number", "boolean", "null", "object", "array"]}


def _any_where_untyped(schema: Any) -> Any:
    """A subschema that constrains no type (`{"description": ...}`) accepts any JSON value; the
    converter would refuse it, so it becomes the union of every type."""
    if not isinstance(schema, Mapping):
        return schema
    if not any(key in schema for key in _TYPING):
        return dict(_ANY_VALUE)
    out = dict(schema)
    for key in _BOUNDS:
        if isinstance(out.get(key), int) and out[key] > MAX_GRAMMAR_BOUND:
            del out[key]  # left to validation: the grammar would spell out every length
    if isinstance(out.get("pattern"), str):
        out["pattern"] = _anchored(out["pattern"])
    for key in ("properties", "$defs", "definitions"):
        if isinstance(out.get(key), Mapping):
            out[key] = {k: _any_where_untyped(v) for k, v in out[key].items()}
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        if isinstance(out.get(key), list):
            out[key] = [_any_where_untyped(v) for v in out[key]]
    for key in ("items", "additionalProperties"):
        if isinstance(out.get(key), Mapping):
            out[key] = _any_where_untyped(out[key])
    return out


def _anchored(pattern: str) -> str:
    """JSON Schema patterns match anywhere in the string; the converter wants `^...$`."""
    starts, ends = pattern.startswith("^"), pattern.endswith("$") and not pattern.endswith("\\$")
    if starts and ends:
        return pattern
    core = pattern[1 if starts else 0: len(pattern) - 1 if ends else len(pattern)]
    return f"^{'' if starts else '.*'}({core}){'' if ends else '.*'}$"


def _without_patterns(schema: Any) -> Any:
    if isinstance(schema, Mapping):
        return {k: _without_patterns(v) for k, v in schema.items() if k != "pattern"}
    if isinstance(schema, list):
        return [_without_patterns(v) for v in schema]
    return schema


def _arguments_schema(function: Mapping[str, Any]) -> dict[str, Any]:
    params = function.get("parameters")
    if not isinstance(params, Mapping) or not params:
        return {"type": "object", "properties": {}}
    return _any_where_untyped(params)


def _visit(converter: Any, schema: dict[str, Any], index: int) -> str:
    return converter.visit(converter.resolve_refs(schema, f"tool-{index}"), f"tool-{index}-arguments")


def tool_call_grammar(tools: Sequence[Mapping[str, Any]], *, choice: ToolChoice | None = None,
                      parallel: bool = True, reasoning_open: bool = False) -> ToolGrammar:
    """The grammar for calls to `tools` under `choice`.

    `reasoning_open`: the prompt leaves a `<think>` block open (thinking on); only eager grammars
    use it (lazy ones are armed by the backend once the block closed)."""
    from llama_cpp.llama_grammar import SchemaConverter  # start-up time: llama_cpp loads its native library

    choice = choice or ToolChoice()
    allowed = restrict_tools(tools, choice)
    if not allowed:
        raise GrammarError(f"no tool a call may use (tool_choice {choice.wire()!r})")
    converter = SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
    alternatives = []
    for i, tool in enumerate(allowed):
        function = tool["function"]
        name = function["name"]
        try:
            arguments = _visit(converter, _arguments_schema(function), i)
        except (AssertionError, KeyError, TypeError, ValueError, RecursionError):
            try:  # a pattern the converter cannot read is left to the agent's validation
                arguments = _visit(converter, _without_patterns(_arguments_schema(function)), i)
            except (AssertionError, KeyError, TypeError, ValueError, RecursionError) as exc:
                raise GrammarError(f"tool {name!r}: its parameters schema cannot be turned into a grammar "
                                   f"({type(exc).__name__}: {exc})") from exc
        head = '{"name": ' + json.dumps(name, ensure_ascii=False) + ', "arguments": '
        alternatives.append(f"{_literal(head)} {arguments}")
    rules = [
        f"tool-call ::= {_literal(CALL_OPEN + chr(10))} ( {' | '.join(alternatives)} ) "
        f"{_literal('}' + chr(10) + '</tool_call>')}",
        f"tool-calls ::= tool-call ( \"\\n\" tool-call )*" if parallel else "tool-calls ::= tool-call",
    ]
    lazy = not choice.forces_call
    if lazy:
        rules.insert(0, "root ::= tool-calls")
    elif reasoning_open:
        # Token syntax: `!</think>` is any single token but `</think>`; the end of the
        # reasoning block is the token the template's `<think>` pairs with.
        rules.insert(0, f"root ::= ( !{THINK_CLOSE} )* {THINK_CLOSE} {_GAP} tool-calls")
    else:
        rules.insert(0, f"root ::= {_GAP} tool-calls")
    # JSON strings may not hold raw control characters (the converter's `char` allows them).
    body = "\n".join(_JSON_CHAR if line.startswith("char ::= ") else line
                     for line in converter.format_grammar().splitlines())
    gbnf = "\n".join(rules) + "\n" + body + "\n"
    return ToolGrammar(gbnf, lazy, tuple(t["function"]["name"] for t in allowed))
