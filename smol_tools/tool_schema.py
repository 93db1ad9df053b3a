"""Tool schemas in the one form every runtime renders identically.

Ollama decodes tool schemas into its own types: property names come out sorted, and only the
keywords it models survive (anyOf, type, description, enum, items, properties, required), in
that order; Jinja runtimes print whatever they are given. So the schemas we put in the prompt
are normalised to what Ollama keeps; the full schemas (lengths, ranges, patterns) are still
enforced when a call is validated and executed.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

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
