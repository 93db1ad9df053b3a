"""Custom tools typed into the UI as JSON schemas: parse, normalize to the OpenAI form, and say
exactly what is wrong (JSON position, which tool, which field) so the UI can show it inline.
The model sees them like the built-in tools; a person answers their calls (manual results)."""

from __future__ import annotations

import json
import re
from typing import Any, Iterable

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from ..schema_regex import schema_shape_problems

# fullmatch, not `$`: `$` also matches before a trailing newline ("lookup\n" is not a name).
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
MAX_CUSTOM_TOOLS_CHARS = 64_000  # the whole custom tools text; a tool list, not a data dump
MAX_CUSTOM_TOOLS = 32

EXAMPLE = """[
  {
    "type": "function",
    "function": {
      "name": "lookup_order",
      "description": "Look up an order by its id.",
      "parameters": {
        "type": "object",
        "properties": {"order_id": {"type": "string"}},
        "required": ["order_id"]
      }
    }
  }
]"""


def parse_custom_tools(text: str, builtin: Iterable[str] = ()) -> tuple[list[dict[str, Any]], list[str]]:
    """(tools in OpenAI form, problems). Any problem means: apply none of them."""
    if not text.strip():
        return [], []
    if len(text) > MAX_CUSTOM_TOOLS_CHARS:
        return [], [f"the custom tools are {len(text):,} characters; the limit is {MAX_CUSTOM_TOOLS_CHARS:,}"]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return [], [f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"]
    except RecursionError:
        return [], ["the JSON nests too deeply"]
    items = data if isinstance(data, list) else [data]
    if len(items) > MAX_CUSTOM_TOOLS:
        return [], [f"{len(items)} custom tools; the limit is {MAX_CUSTOM_TOOLS}"]
    taken = set(builtin)
    tools: list[dict[str, Any]] = []
    problems: list[str] = []
    for position, item in enumerate(items, start=1):
        tool, errors = _one_tool(item, f"tool {position}")
        if tool is not None:
            name = tool["function"]["name"]
            if name in taken:
                errors.append(f"tool {position} ({name}): the name is already used"
                              + (" by a built-in tool" if name in builtin else ""))
            taken.add(name)
        problems += errors
        if tool is not None and not errors:
            tools.append(tool)
    return (tools, []) if not problems else ([], problems)


def _one_tool(item: Any, where: str) -> tuple[dict[str, Any] | None, list[str]]:
    if not isinstance(item, dict):
        return None, [f"{where}: expected an object, got {type(item).__name__}"]
    function = item.get("function", item) if item.get("type", "function") == "function" else None
    if function is None:
        return None, [f"{where}: \"type\" must be \"function\""]
    if not isinstance(function, dict):
        return None, [f"{where}: \"function\" must be an object"]
    name = function.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        return None, [f"{where}: \"name\" must be 1-64 letters, digits, _ . or - (starting with a letter or _)"]
    where = f"{where} ({name})"
    errors: list[str] = []
    description = function.get("description", "")
    if not isinstance(description, str):
        errors.append(f"{where}: \"description\" must be a string")
    parameters = function.get("parameters", {"type": "object", "properties": {}})
    if not isinstance(parameters, dict):
        errors.append(f"{where}: \"parameters\" must be a JSON Schema object")
    else:
        if parameters.get("type") != "object":
            errors.append(f"{where}: parameters.type must be \"object\" (calls pass named arguments)")
        shape = schema_shape_problems(parameters)  # depth and patterns first: check_schema recurses
        errors += [f"{where}: {problem}" for problem in shape]
        try:
            if not shape:
                Draft202012Validator.check_schema(parameters)
        except SchemaError as exc:
            path = "/".join(str(p) for p in exc.absolute_path) or "(root)"
            errors.append(f"{where}: invalid JSON Schema at parameters/{path}: {exc.message}")
        except RecursionError:
            errors.append(f"{where}: the schema nests too deeply")
    allowed = {"name", "description", "parameters", "strict"} | ({"type"} if function is item else set())
    unknown = set(function) - allowed
    if unknown:
        errors.append(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    tool = {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}
    return tool, errors
