"""Tool schemas as each runtime can carry them, and schema checks.

Ollama decodes tool schemas into its own types: property names come out sorted, and only the
keywords it models survive (anyOf, type, description, enum, items, properties, required), in
that order (the "portable" form below, Ollama's view). Jinja runtimes (llama-cpp-python,
llama-server, vLLM, LM Studio) print whatever they are given, so they get the tools as declared:
the author's property order and every keyword (`format`, `minimum`, `pattern`, ...), which small
models read. `tool_view` picks the form for a backend (its `schema_view` attribute: "ollama" or,
by default, "full"); the full schemas are enforced when a call is validated and executed either way.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping, Sequence

from .safe_text import bound_text
from .schema_regex import bounded_validator

PROPERTY_KEYS = ("anyOf", "type", "description", "enum", "items", "properties", "required")


def sorted_deep(value: Any) -> Any:
    """Objects with sorted keys, recursively (how Go maps marshal)."""
    if isinstance(value, Mapping):
        return {k: sorted_deep(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [sorted_deep(v) for v in value]
    return value


def _portable_property(prop: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in PROPERTY_KEYS:
        if key not in prop:
            continue
        value = prop[key]
        if key == "anyOf":
            value = [_portable_property(p) for p in value]
        elif key == "properties":
            value = {k: _portable_property(value[k]) for k in sorted(value)}
        elif key in ("items", "enum"):
            value = sorted_deep(value)
        out[key] = value
    return out


def portable_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    function = tool["function"]
    params = function.get("parameters") or {}
    new_params: dict[str, Any] = {}
    if params.get("type"):
        new_params["type"] = params["type"]
    if "properties" in params:
        new_params["properties"] = {k: _portable_property(params["properties"][k])
                                    for k in sorted(params["properties"])}
    if "required" in params:
        new_params["required"] = list(params["required"])
    new_function: dict[str, Any] = {"name": function["name"]}
    if function.get("description"):
        new_function["description"] = function["description"]
    if new_params:
        new_function["parameters"] = new_params
    return {"type": tool.get("type", "function"), "function": new_function}


def portable_tools(tools: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [portable_tool(t) for t in tools]


FULL_VIEW, OLLAMA_VIEW = "full", "ollama"


def backend_view(backend: Any) -> str:
    """The schema form `backend` can carry: "ollama" for Ollama, "full" for every Jinja runtime."""
    return getattr(backend, "schema_view", FULL_VIEW)


def tool_view(tools: Sequence[Mapping[str, Any]], view: str = FULL_VIEW) -> list[dict[str, Any]]:
    """The tools in the form a runtime of `view` shows the model: as declared, or Ollama's view."""
    if view == OLLAMA_VIEW:
        return portable_tools(tools)
    if view != FULL_VIEW:
        raise ValueError(f"unknown schema view {view!r} (full or ollama)")
    return [copy.deepcopy(dict(t)) for t in tools]


def schema_problems(schema: Mapping[str, Any], arguments: Any) -> list[str]:
    """Where `arguments` break the tool's full JSON schema, one bounded line each, in path order
    (empty when they conform). Visitor schemas are safe: regexes run in linear time."""
    validator = bounded_validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(arguments), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(p) for p in error.absolute_path) or "(arguments)"
        # jsonschema echoes the whole value ("'xxxx…' is too long"): keep start, size, verdict.
        problems.append(bound_text(f"{where}: {error.message}"))
    return problems


def call_problems(name: str, arguments: Any, schemas: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """What is wrong with a call of `name` given the tools' parameter schemas (name -> schema):
    an unknown tool, or its arguments' schema problems. The agent and the app's transcript
    both use it, so a call reads the same live and imported."""
    if name not in schemas:
        known = ", ".join(sorted(schemas)) or "none"
        return [f"unknown tool {bound_text(name, 100)!r}; available tools: {known}"]
    return schema_problems(schemas[name], arguments)
