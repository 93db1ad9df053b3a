"""What may enter a session's history from one round: the agent's gate.

A turn's parse (from our parser or from a server that parsed the calls itself) and each tool
result pass through here before the agent appends them: text is made valid Unicode, calls
whose values could not be encoded again (a lone surrogate, an infinite number) become errors
the model reads, every error text is bounded, and at most `max_calls` blocks are handled."""

from __future__ import annotations

import json
from dataclasses import replace

from .safe_text import bound_text, clean_text, invalid_text_in
from .toolcalls import CallError, ParseResult, ToolCall

ERROR_RESULT_LIMIT = 2000  # characters of one error result, all problems together


def error_json(message: str) -> str:
    """The error result the model reads: valid text, bounded."""
    return json.dumps({"error": bound_text(clean_text(message), ERROR_RESULT_LIMIT)}, ensure_ascii=False)


def safe_result_text(content: str, is_error: bool) -> str:
    """A tool's result as history text: valid Unicode (a file name that is not UTF-8 decodes to
    lone surrogates) and, for an error, bounded (JSON errors stay JSON)."""
    content = clean_text(content) if isinstance(content, str) else str(content)
    if not is_error or len(content) <= ERROR_RESULT_LIMIT:
        return content
    try:
        payload = json.loads(content)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        payload = {k: bound_text(v) if isinstance(v, str) else v for k, v in payload.items()}
        content = json.dumps(payload, ensure_ascii=False)
    return content if len(content) <= ERROR_RESULT_LIMIT else error_json(content)


def screen_turn(result: ParseResult, max_calls: int) -> tuple[ParseResult, int]:
    """The turn as it may enter the history, and how many blocks were left over the cap.

    Calls come first, then malformed blocks; the blocks over `max_calls` are dropped from the
    turn (a note says how many) and the agent answers them with one error result."""
    calls: list[ToolCall] = []
    errors: list[CallError] = []
    for call in result.tool_calls:
        problem = invalid_text_in(call.name) or invalid_text_in(call.arguments)
        if problem is None:
            calls.append(call)
        else:
            errors.append(CallError(clean_text(call.raw), f"tool call {clean_text(call.name)!r}: {problem}"))
    errors += [CallError(clean_text(e.raw), clean_text(e.message)) for e in result.errors]
    notes = list(result.notes)
    limit = max(max_calls, 1)  # at least one, so a capped round is never taken for an answer
    skipped = max(len(calls) + len(errors) - limit, 0)
    if skipped:
        calls = calls[:limit]
        errors = errors[: limit - len(calls)]
        notes.append(f"{skipped} of {skipped + limit} tool calls in this round were not run "
                     f"(at most {limit} per round)")
    reasoning = clean_text(result.reasoning) if result.reasoning else result.reasoning
    return replace(result, reasoning=reasoning, content=clean_text(result.content), tool_calls=calls,
                   errors=errors, notes=notes), skipped
