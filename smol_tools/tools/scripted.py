"""The scripted provider: while the tiny offline model runs, the calls its scripted
conversations make are answered with the results those conversations show.

The tiny model was trained on a handful of conversations (smol_tools/tiny/); it can only
continue from the tool results it saw there. Some tools cannot give those results: the offline
simulations (get_weather, web_search, translate) generate theirs from a hash of the input, and the
clock tells the real time. From a result it never saw the model wanders (wrong answers, extra
rounds). So, in front of those tools, this provider answers each scripted call (same tool, same
arguments) with its scripted result, byte for byte, and marks the result as scripted
(`ToolResult.data` is a `ScriptedAnswer`; the app and the terminal chat show the mark). The
real tools whose answers already agree with the scripts on the demo workspace (calculate,
read_file, list_directory) keep running for real, so a file a person puts in the workspace is
read as it is. Only sessions on the tiny model use the provider.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..tiny.scripted import call_key, scripted_tool_results
from .base import Tool, ToolResult, ToolSession
from .registry import ToolRegistry

SCRIPTED_NOTE = "scripted result (the tiny offline model's training conversation)"
# Real tools whose answers cannot match a script: the clock (the simulated ones say so themselves).
UNREPEATABLE_TOOLS = frozenset({"get_current_datetime"})


@dataclass(frozen=True)
class ScriptedAnswer:
    """The structured form of a scripted result: what the UI shows, and that it is scripted."""

    value: Any  # the result parsed as JSON when it is JSON, else the text
    note: str = SCRIPTED_NOTE
    scripted: bool = True


def _answer(content: str) -> ToolResult:
    try:
        value: Any = json.loads(content)
    except ValueError:
        value = content
    # The scripts' failed calls read {"error": ...}, as the real tools' errors do.
    is_error = isinstance(value, dict) and "error" in value
    return ToolResult(content=content, is_error=is_error, data=ScriptedAnswer(value))


class ScriptedToolRegistry(ToolRegistry):
    """A ToolRegistry whose `execute` answers scripted calls from the scripts and passes every
    other call to the real tools."""

    def __init__(self, tools: Iterable[Tool], results: Mapping[tuple[str, str], str] | None = None) -> None:
        super().__init__(tools)
        self.results = dict(scripted_tool_results() if results is None else results)
        self.answered = frozenset(n for n in self.names() if self.get(n).simulated or n in UNREPEATABLE_TOOLS)  # type: ignore[union-attr]

    def scripted_result(self, name: str, arguments: Any) -> ToolResult | None:
        if name not in self.answered or not isinstance(arguments, dict):
            return None
        try:
            content = self.results.get(call_key(name, arguments))
        except (TypeError, ValueError):  # arguments JSON cannot encode: not a scripted call
            return None
        return None if content is None else _answer(content)

    def execute(self, name: str, arguments: dict, session: ToolSession) -> ToolResult:
        return self.scripted_result(name, arguments) or super().execute(name, arguments, session)


def is_scripted(data: Any) -> bool:
    return isinstance(data, ScriptedAnswer)


def with_scripted_provider(registry: ToolRegistry, on: bool) -> ToolRegistry:
    """`registry` with the scripted provider in front (on) or removed (off); the same tools."""
    if on == isinstance(registry, ScriptedToolRegistry):
        return registry
    tools = [registry.get(name) for name in registry.names()]
    return ScriptedToolRegistry(tools) if on else ToolRegistry(tools)  # type: ignore[arg-type]
