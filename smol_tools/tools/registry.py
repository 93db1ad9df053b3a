"""ToolRegistry: look tools up, list their schemas, and execute calls without ever raising."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from ..safe_text import bound_text
from ..schema_regex import GuardedValidator, bounded_validator
from .base import Tool, ToolError, ToolResult, ToolSession, error_result, shorten

log = logging.getLogger(__name__)


def _argument_error_message(error) -> str:
    where = "/".join(str(part) for part in error.absolute_path)
    # bound_text keeps the value's start, its size and the verdict at the end ("is too long").
    return f"invalid arguments{f' at {where!r}' if where else ''}: {bound_text(error.message, 400)}"


class ToolRegistry:
    def __init__(self, tools: Iterable[Tool]) -> None:
        self._tools: dict[str, Tool] = {}
        # `pattern` & co. on RE2 (linear time): an MCP server's schema is outside code, and a
        # backtracking `re` here would hold the GIL for seconds on one call.
        self._validators: dict[str, GuardedValidator] = {}
        for tool in tools:
            if tool.name in self._tools:
                raise ValueError(f"duplicate tool name: {tool.name}")
            Draft202012Validator.check_schema(tool.parameters)
            self._tools[tool.name] = tool
            self._validators[tool.name] = bounded_validator(tool.parameters)

    def names(self) -> list[str]:
        return list(self._tools)

    def get(self, name: object) -> Tool | None:
        return self._tools.get(name) if isinstance(name, str) else None

    def schemas(self, enabled: Iterable[str] | None = None) -> list[dict]:
        """OpenAI tool dicts, in registry order; only `enabled` ones when given."""
        if enabled is None:
            return [tool.schema() for tool in self._tools.values()]
        wanted = set(enabled)
        unknown = wanted - self._tools.keys()
        if unknown:
            raise ValueError(f"unknown tool names: {', '.join(sorted(unknown))}")
        return [tool.schema() for name, tool in self._tools.items() if name in wanted]

    def execute(self, name: str, arguments: dict, session: ToolSession) -> ToolResult:
        """Run one call. Never raises: every failure comes back as an error result the model reads."""
        try:
            return self._execute(name, arguments, session)
        except Exception as exc:  # noqa: BLE001 - the contract is "never raises"
            log.exception("tool %r failed", name)
            return error_result(f"internal error in tool {shorten(str(name), 60)}: {type(exc).__name__}")

    def _execute(self, name: str, arguments: dict, session: ToolSession) -> ToolResult:
        tool = self.get(name)
        if tool is None:
            return error_result(f"unknown tool: {shorten(str(name), 60)}", available=self.names())
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            return error_result(f"arguments for {name} must be a JSON object, not {type(arguments).__name__}")
        # The agent validates too; checking here keeps every tool safe on its own.
        error = best_match(self._validators[name].iter_errors(arguments))
        if error is not None:
            return error_result(_argument_error_message(error))
        try:
            result = tool.run(arguments, session)
        except ToolError as exc:
            return error_result(exc.message, **exc.details)
        except RecursionError:
            return error_result(f"{name}: input too deeply nested")
        if not isinstance(result, ToolResult):
            return error_result(f"internal error in tool {name}: it returned no result")
        return _capped(result, session.settings.max_result_chars)


def _capped(result: ToolResult, limit: int) -> ToolResult:
    """A last guard on context use; tools shorten their own output more gracefully first.

    JSON results stay valid JSON (long strings inside are shortened), so the model can still
    read the structure; other text is cut with a note."""
    if len(result.content) <= limit:
        return result
    dropped = len(result.content) - limit
    content = _shrink_json(result.content, limit)
    if content is None:
        content = result.content[:limit] + f"\n[truncated: {dropped} more characters]"
    return ToolResult(content=content, is_error=result.is_error, data=result.data)


def _shrink_json(text: str, limit: int) -> str | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    budget = limit
    while budget > 50:
        shrunk = _shorten_strings(value, budget)
        encoded = json.dumps(shrunk, ensure_ascii=False)
        if len(encoded) <= limit:
            return encoded
        budget //= 2
    return None


def _shorten_strings(value, budget: int):
    if isinstance(value, str) and len(value) > budget:
        return value[:budget] + f"... [truncated: {len(value) - budget} more characters]"
    if isinstance(value, list):
        return [_shorten_strings(v, budget) for v in value]
    if isinstance(value, dict):
        return {k: _shorten_strings(v, budget) for k, v in value.items()}
    return value
