"""Prompts of a chosen token length, and the scripted 20-round tool session.

Random weights say nothing meaningful, so what is measured is the work, not the words: prompts
are plain English filler sized with the runtime's own token counter, and the session's assistant
turns are scripted (a tool call per round) and forced through the model (evaluated as if it had
written them), so every round's prompt work is real.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Sequence

WORDS = ("the model reads each file in the workspace and reports what it found about the weather "
         "in Paris, the notes for Monday, and the numbers in the budget table ").split()


def filler(n_words: int, offset: int = 0) -> str:
    return " ".join(WORDS[(offset + i) % len(WORDS)] for i in range(n_words))


def filler_messages(count_prompt_tokens: Callable[[Sequence[dict[str, Any]]], int],
                    target: int) -> list[dict[str, Any]]:
    """A one-user-message conversation whose rendered prompt is `target` tokens (± a few)."""
    def messages(n: int) -> list[dict[str, Any]]:
        return [{"role": "user", "content": filler(n)}]

    low, high = 1, max(8, target * 2)
    while low < high:  # the fewest words that reach the target
        mid = (low + high) // 2
        if count_prompt_tokens(messages(mid)) < target:
            low = mid + 1
        else:
            high = mid
    return messages(low)


TOOLS = [{"type": "function", "function": {
    "name": "read_file", "description": "Read a text file from the workspace.",
    "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}}]
QUESTION = "Read every report in the workspace, one by one, and summarise them."


def session_turns(rounds: int, tool_words: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(assistant message, tool message) per round: one read_file call, a long file back."""
    turns = []
    for k in range(1, rounds + 1):
        call = {"name": "read_file", "arguments": {"path": f"reports/report-{k:02d}.txt"}}
        raw = (f"<think>\nReport {k} next.\n</think>\n\n<tool_call>\n{json.dumps(call)}\n</tool_call>")
        assistant = {"role": "assistant", "content": raw}
        tool = {"role": "tool", "content": f"report {k}: " + filler(tool_words, offset=k)}
        turns.append((assistant, tool))
    return turns
