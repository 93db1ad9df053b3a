"""The tiny model's scripted conversations (package data): the tools it was trained on, each
example's messages, and the tool results those conversations show.

tests/fixtures/scripted_conversations.json is a link to this file; the fixtures train the model
on it. Runtime code reads it from here (the app's tool panel, the terminal chat, the scripted
provider in front of the simulated tools).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SCRIPTED_PATH = Path(__file__).resolve().with_name("scripted_conversations.json")


@cache
def _raw() -> str:
    return SCRIPTED_PATH.read_text(encoding="utf-8")


def load_scripted() -> dict[str, Any]:
    """A fresh copy each call: callers may edit what they get."""
    return json.loads(_raw())


def scripted_tools() -> list[dict[str, Any]]:
    """The tool schemas the tiny model was trained on, in training order."""
    return load_scripted()["tools"]


def call_key(name: str, arguments: Any) -> tuple[str, str]:
    """A tool call as a lookup key: the name and its arguments as canonical JSON."""
    return name, json.dumps(arguments, sort_keys=True)


def scripted_tool_results() -> dict[tuple[str, str], str]:
    """call_key(name, arguments) -> the tool result the scripted conversations show for it."""
    results: dict[tuple[str, str], str] = {}
    for conversation in load_scripted()["conversations"]:
        pending: list[tuple[str, str]] = []
        for entry in conversation["messages"]:
            if entry["role"] == "assistant":
                pending = [call_key(c["function"]["name"], c["function"]["arguments"])
                           for c in entry["message"].get("tool_calls", [])]
            elif entry["role"] == "tool" and pending:
                results[pending.pop(0)] = entry["content"]
    return results
