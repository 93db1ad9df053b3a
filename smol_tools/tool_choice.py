"""`tool_choice` and `parallel_tool_calls`: one parsed form for the agent and every backend.

OpenAI clients send `tool_choice` as "auto", "none", "required" or
`{"type": "function", "function": {"name": ...}}`, and `parallel_tool_calls` as a bool. The
backends carry them to servers that accept them and enforce them where the server does not
(see docs/strict-calls.md); the agent checks every turn against them whatever the backend did.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, Mapping, Sequence

if TYPE_CHECKING:
    from .toolcalls import ParseResult

Mode = Literal["auto", "none", "required", "function"]
MODES = ("auto", "none", "required")


@dataclass(frozen=True)
class ToolChoice:
    mode: Mode = "auto"
    name: str | None = None  # the one function allowed, when mode == "function"

    @classmethod
    def parse(cls, value: Any) -> "ToolChoice":
        """Accept every OpenAI form (and a ToolChoice); anything else is a clear ValueError."""
        if value is None:
            return cls()
        if isinstance(value, ToolChoice):
            return value
        if isinstance(value, str):
            if value in MODES:
                return cls(value)  # type: ignore[arg-type]
            raise ValueError(f"tool_choice must be one of {', '.join(MODES)} or "
                             f'{{"type": "function", "function": {{"name": ...}}}}; got {value!r}')
        if isinstance(value, Mapping):
            function = value.get("function")
            name = function.get("name") if isinstance(function, Mapping) else value.get("name")
            if value.get("type", "function") == "function" and isinstance(name, str) and name:
                return cls("function", name)
        raise ValueError(f'tool_choice object must be {{"type": "function", "function": {{"name": "<tool>"}}}}; '
                         f"got {value!r}")

    @property
    def forces_call(self) -> bool:
        return self.mode in ("required", "function")

    def allowed(self, tool_names: Sequence[str]) -> list[str]:
        """The tool names a call may use under this choice."""
        if self.mode == "none":
            return []
        if self.mode == "function":
            return [n for n in tool_names if n == self.name]
        return list(tool_names)

    def check(self, tool_names: Sequence[str]) -> None:
        """A choice that cannot be met with these tools is the caller's error, said before a turn."""
        if self.mode == "function" and self.name not in tool_names:
            known = ", ".join(tool_names) or "none"
            raise ValueError(f"tool_choice names {self.name!r}, which is not among the tools ({known})")
        if self.mode == "required" and not tool_names:
            raise ValueError("tool_choice 'required' needs at least one tool")

    def wire(self) -> str | dict[str, Any]:
        """The OpenAI request form."""
        if self.mode == "function":
            return {"type": "function", "function": {"name": self.name}}
        return self.mode


def tool_names(tools: Sequence[Mapping[str, Any]] | None) -> list[str]:
    return [t["function"]["name"] for t in tools or []]


def restrict_tools(tools: Sequence[Mapping[str, Any]] | None, choice: ToolChoice) -> list[Mapping[str, Any]]:
    """The declared tools a call may use under `choice`, in declared order."""
    allowed = set(choice.allowed(tool_names(tools)))
    return [t for t in tools or [] if t["function"]["name"] in allowed]


def enforce_choice(result: "ParseResult", choice: ToolChoice, parallel: bool,
                   tools: Sequence[Mapping[str, Any]] | None) -> "ParseResult":
    """The turn as the policy allows it, whatever the runtime did: with "none" no call (nor a
    malformed block) is kept, a named function keeps only its calls, and parallel_tool_calls=false
    keeps the first call. Each removal is a note, so nothing disappears silently."""
    calls, errors, notes = list(result.tool_calls), list(result.errors), list(result.notes)
    allowed = set(choice.allowed(tool_names(tools)))
    if choice.mode == "none" and (calls or errors):
        notes.append(f"tool_choice is 'none': {len(calls) + len(errors)} tool call(s) the model wrote were not run")
        calls, errors = [], []
    elif choice.forces_call:
        refused = [c for c in calls if c.name not in allowed]
        if refused:
            notes.append(f"tool_choice allows only {', '.join(sorted(allowed))}: "
                         f"not run: {', '.join(c.name for c in refused)}")
            calls = [c for c in calls if c.name in allowed]
    if not parallel and len(calls) + len(errors) > 1:
        kept = 1
        notes.append(f"parallel_tool_calls is off: {len(calls) + len(errors) - kept} call(s) after the first "
                     "were not run")
        calls, errors = (calls[:1], []) if calls else ([], errors[:1])
    return replace(result, tool_calls=calls, errors=errors, notes=notes)
