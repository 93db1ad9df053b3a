"""Convert our history (OpenAI messages with object arguments) into each server's wire form."""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence


def arguments_object(arguments: Any) -> Any:
    """Tool-call arguments as an object when they arrive as a JSON string (else unchanged)."""
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except json.JSONDecodeError:
            return arguments
    return arguments


def to_openai_wire(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI's wire format: tool-call arguments are JSON strings; every call has an id."""
    wire = []
    for message in messages:
        out = {k: v for k, v in message.items() if k not in ("thinking", "reasoning")}
        if message.get("tool_calls"):
            calls = []
            for i, call in enumerate(message["tool_calls"]):
                function = call.get("function", call)
                arguments = function.get("arguments", {})
                calls.append({"id": call.get("id") or f"call_{i}", "type": "function",
                              "function": {"name": function["name"],
                                           "arguments": arguments if isinstance(arguments, str)
                                           else json.dumps(arguments, ensure_ascii=False)}})
            out["tool_calls"] = calls
        if out.get("content") is None:
            out["content"] = ""
        wire.append(out)
    return wire


def to_ollama_wire(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Ollama's /api/chat: `thinking` instead of reasoning_content, object arguments,
    `tool_name` on tool results."""
    wire = []
    for message in messages:
        out: dict[str, Any] = {"role": message["role"], "content": message.get("content") or ""}
        reasoning = message.get("reasoning_content") or message.get("thinking")
        if reasoning:
            out["thinking"] = reasoning
        if message.get("tool_calls"):
            out["tool_calls"] = [
                {"function": {"name": (c.get("function", c))["name"],
                              "arguments": arguments_object((c.get("function", c)).get("arguments", {}))}}
                for c in message["tool_calls"]]
        if message["role"] == "tool" and message.get("name"):
            out["tool_name"] = message["name"]
        wire.append(out)
    return wire
