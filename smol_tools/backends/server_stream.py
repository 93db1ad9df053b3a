"""Turn a server's streamed chat deltas (reasoning, content, already-parsed tool calls) into
the same events and final result our own parser gives for raw text.

Servers that parse tool calls themselves (llama-server --jinja, vLLM with a tool parser,
Ollama) send calls as structured data; ones that do not leave `<tool_call>` blocks in the
content. Content therefore always goes through our streaming parser too: it passes plain text
through unchanged and catches any call the server left unparsed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterator

from ..toolcalls import (CALL_OPEN, CallError, ParseResult, StreamingParser, ToolCall, canonical_call_text,
                         parse_output)
from ..events import (ReasoningDelta, ToolCallCompleted, ToolCallFailed, ToolCallStarted, TurnComplete, TurnEvent,
                      Usage)


@dataclass
class _PendingCall:
    name: str = ""
    arguments: Any = ""  # a JSON string being streamed, or an object given whole
    announced: bool = False


@dataclass
class ServerTurnAssembler:
    parser: StreamingParser = field(default_factory=lambda: StreamingParser(thinking_open=False))
    reasoning_parts: list[str] = field(default_factory=list)
    calls: dict[int, _PendingCall] = field(default_factory=dict)

    def reasoning(self, text: str) -> Iterator[TurnEvent]:
        if text:
            self.reasoning_parts.append(text)
            yield ReasoningDelta(text)

    def content(self, text: str) -> Iterator[TurnEvent]:
        if text:
            yield from self.parser.feed(text)

    def call_fragment(self, index: int, name: str | None = None, arguments: Any = None) -> Iterator[TurnEvent]:
        pending = self.calls.setdefault(index, _PendingCall())
        if name:
            pending.name += name
        if isinstance(arguments, str) and isinstance(pending.arguments, str):
            pending.arguments += arguments
        elif arguments is not None:
            pending.arguments = arguments
        if pending.name and not pending.announced:
            pending.announced = True
            yield ToolCallStarted(self._event_index(index), pending.name)

    def _event_index(self, index: int) -> int:
        # Server-parsed calls are numbered 1000+ so they never collide with parser blocks.
        return 1000 + index

    def finish(self, finish_reason: str, usage: Usage) -> Iterator[TurnEvent]:
        yield from self.parser.finish()
        parsed = self.parser.result
        calls: list[ToolCall] = []
        errors: list[CallError] = []
        for index in sorted(self.calls):
            pending = self.calls[index]
            raw = canonical_call_text(pending.name, pending.arguments)
            arguments = pending.arguments
            problem = None
            if isinstance(arguments, str):
                try:
                    arguments = json.loads(arguments) if arguments.strip() else {}
                except json.JSONDecodeError as exc:
                    problem = f"server tool call {pending.name!r} has arguments that are not JSON: {exc}"
            # Arguments the model wrote as a JSON string (vLLM's hermes parser passes them on as
            # the JSON text of a string) and null: read as our parser reads them in the text.
            if problem is None and isinstance(arguments, str) and isinstance(pending.arguments, str):
                reread = parse_output(canonical_call_text(pending.name, arguments), thinking_open=False)
                if reread.tool_calls:
                    arguments = reread.tool_calls[0].arguments
                elif reread.errors:
                    problem = f"server tool call {pending.name!r}: {reread.errors[0].message}"
            if problem is None and arguments is None:
                arguments = {}
            if problem is None and not isinstance(arguments, dict):
                problem = f"server tool call {pending.name!r} has non-object arguments"
            if problem is None and not pending.name:
                problem = "server tool call without a name"
            if problem is not None:
                error = CallError(raw, problem)
                errors.append(error)
                yield ToolCallFailed(self._event_index(index), error)
            else:
                call = ToolCall(pending.name, arguments, raw, "json")
                calls.append(call)
                yield ToolCallCompleted(self._event_index(index), call)
        reasoning = "".join(self.reasoning_parts).strip() or parsed.reasoning
        content, notes = parsed.content, list(parsed.notes)
        if not (calls or errors or parsed.tool_calls or parsed.errors or content) and CALL_OPEN in (reasoning or ""):
            # The server put everything in its reasoning field: a model that never closed
            # <think> (llama.cpp #21118, Ollama's thinking parser). The server dropped that tag,
            # so "nothing after the reasoning" is all we can see; read its calls as our parser
            # reads an unclosed block, rather than answer with nothing.
            recovered = parse_output(reasoning or "", thinking_open=True)
            for i, call in enumerate(recovered.tool_calls):
                yield ToolCallStarted(2000 + i, call.name)
                yield ToolCallCompleted(2000 + i, call)
            for j, error in enumerate(recovered.errors):
                yield ToolCallFailed(2000 + len(recovered.tool_calls) + j, error)
            reasoning, content = recovered.reasoning, recovered.content
            calls, errors, notes = recovered.tool_calls, recovered.errors, recovered.notes
        result = ParseResult(reasoning or None, content, calls + parsed.tool_calls,
                             errors + parsed.errors, notes)
        if result.tool_calls and finish_reason in ("stop", "tool_calls"):
            finish_reason = "tool_calls"
        elif finish_reason == "tool_calls":
            finish_reason = "stop"
        yield TurnComplete(result, None, finish_reason, usage)
