"""The tiny-model suite: the scripted conversations the test model memorised, as eval cases.

Greedy decoding of the tiny model reproduces every scripted turn, so running this suite gives
exact, known results (every metric 1.0) — the check that the harness measures what it claims.
The conversations ship with the package (smol_tools/tiny/), so an installed wheel runs it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

from ..tiny.scripted import SCRIPTED_PATH as TINY_SCRIPTED_PATH
from .suite import Suite, suite_from_data

SCRIPTED_PATH = TINY_SCRIPTED_PATH  # package data: smol_tools/tiny/scripted_conversations.json
# Scripted conversation id -> the card's scenario it exercises.
SCENARIO_OF = {
    "single_tool": "single_tool",
    "multi_tool_parallel": "multi_tool_parallel",
    "multi_tool_sequential": "multi_tool_sequential",
    "no_tool_needed": "no_tool_needed",
    "reasoning_then_call": "reasoning_heavy",
    "error_recovery": "error_recovery",
    "thinking_off_call": "single_tool",
    "two_user_turns": "complex_multi_step",
}


def suite_data_from_scripted(scripted: Mapping[str, Any]) -> dict[str, Any]:
    """Suite JSON (smol_tools/eval/suite.schema.json) from the scripted-conversations format."""
    cases = []
    for conversation in scripted["conversations"]:
        messages = [dict(entry["message"]) if entry["role"] == "assistant" else dict(entry)
                    for entry in conversation["messages"]]
        cases.append({"id": f"tiny-{conversation['id']}", "scenario": SCENARIO_OF.get(conversation["id"], "single_tool"),
                      "thinking": conversation["thinking"], "messages": messages})
    return {"name": "tiny-scripted", "version": 1,
            "description": "The tiny test model's scripted conversations (tests/fixtures).",
            "tools": scripted["tools"], "cases": cases}


def tiny_suite(path: Path = SCRIPTED_PATH) -> Suite:
    raw = path.read_bytes()
    return suite_from_data(suite_data_from_scripted(json.loads(raw)), path=path,
                           sha256=hashlib.sha256(raw).hexdigest())
