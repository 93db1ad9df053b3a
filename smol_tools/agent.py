"""The tool loop: model → parse → validate → execute → tool results → model, until the model
answers without calls or a limit is reached. It knows tools, not transports: any backend.

`Agent.run` appends to the caller's message list as it goes, so whatever happens (a backend
failure, a cancel, the round limit) the history up to that point is kept and the next turn
can continue from it. Bad calls never crash the loop: unknown tools, invalid JSON, schema
violations, tool exceptions and timeouts all become error results the model can read.

Nothing enters the history that could break a later turn: model text, call arguments and tool
results are valid Unicode, numbers are finite, every error text is bounded, and at most
`max_calls_per_round` calls are handled per round (the rest get one error result): see
`history_guard`.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, Literal, Mapping, Sequence

from .backends.base import Backend, BackendError, CancelToken, CountsPromptTokens, SamplingParams
from .chat_format import render_prompt
from .events import (AgentEvent, AgentFinished, CallError, ContextStatus, RoundStarted, ToolCall, ToolCallChecked,
                     ToolOutcome, ToolResultReady, TurnComplete)
from .history_guard import error_json as _error_json
from .history_guard import safe_result_text, screen_turn
from .safe_text import clean_text
from .tool_choice import ToolChoice, enforce_choice, tool_names
from .tool_deadline import ToolDeadlineExceeded, call_with_deadline
from .tool_schema import call_problems

ContextPolicy = Literal["stop", "drop_oldest"]
DROPPED_MARKER = "[tool result dropped to fit the 32K context: {chars} characters]"


ToolExecutor = Callable[[str, dict[str, Any]], ToolOutcome]
ManualHandler = Callable[[str, dict[str, Any]], str]


@dataclass
class AgentConfig:
    max_rounds: int = 20
    enable_thinking: bool = True
    sampling: SamplingParams | None = None
    tool_timeout_s: float = 60.0
    parallel_tools: bool = True
    context_policy: ContextPolicy = "stop"
    context_warning_ratio: float = 0.8
    manual_tools: frozenset[str] = field(default_factory=frozenset)
    # Calls (and malformed blocks) handled per round; the rest get one error result. A 4B
    # model's useful parallel calls are a handful; thousands would flood the context.
    max_calls_per_round: int = 16
    # Tool-call policy (docs/strict-calls.md). "required" or a named function applies to the
    # first round of each user query, then the rounds go back to "auto" (unless
    # reset_tool_choice is off), so a forced call cannot loop until the round limit.
    tool_choice: Any = "auto"
    parallel_tool_calls: bool = True
    strict: bool = False
    reset_tool_choice: bool = True
    # Turns retried when a forced call is missing (runtimes that cannot force one: Ollama).
    tool_choice_retries: int = 2


class Agent:
    """Runs tool rounds for one session over `backend`.

    `tools` are OpenAI tool schemas the model sees; `execute(name, arguments)` runs a validated
    call (the tool registry); `manual(name, arguments)` supplies a result typed by a person for
    tools in `config.manual_tools` or tools that have no implementation (custom schemas)."""

    def __init__(self, backend: Backend, tools: Sequence[Mapping[str, Any]],
                 execute: ToolExecutor | None, *, config: AgentConfig | None = None,
                 manual: ManualHandler | None = None, session_id: str = "default",
                 implemented: Callable[[str], bool] | None = None) -> None:
        self.backend = backend
        self.tools = list(tools)
        self.schemas = {t["function"]["name"]: t["function"].get("parameters", {}) for t in self.tools}
        self.execute = execute
        self.manual = manual
        self.config = config or AgentConfig()
        self.session_id = session_id
        self.implemented = implemented or (lambda name: execute is not None)

    # -- public -----------------------------------------------------------------------------
    def run(self, messages: list[dict[str, Any]], cancel: CancelToken | None = None) -> Iterator[AgentEvent]:
        """Continue the conversation in `messages` (ending in a user turn) until an answer."""
        limit = self.backend.context_length
        for round_number in range(1, self.config.max_rounds + 1):
            try:  # counting the prompt asks the backend too (a server tokenizes it)
                overflow = self._fit_context(messages, round_number, limit)
            except BackendError as exc:
                yield AgentFinished("error", str(exc))
                return
            if overflow is not None:
                yield overflow
                if isinstance(overflow, AgentFinished):
                    return
            yield RoundStarted(round_number)
            try:
                choice = ToolChoice.parse(self.config.tool_choice)
                if round_number > 1 and self.config.reset_tool_choice and choice.forces_call:
                    choice = ToolChoice("auto")
                if self.tools or choice.mode != "auto":
                    choice.check(tool_names(self.tools))
            except ValueError as exc:
                yield AgentFinished("error", str(exc))
                return
            sampling = replace(self.config.sampling or SamplingParams.defaults(), tool_choice=choice.wire(),
                               parallel_tool_calls=self.config.parallel_tool_calls, strict=self.config.strict)
            for attempt in range(self.config.tool_choice_retries + 1):
                # A retry asks again for the call the policy requires, in a message kept out of the history.
                request = messages if attempt == 0 else [*messages, self._call_reminder(choice)]
                complete: TurnComplete | None = None
                skipped = 0
                try:
                    for event in self.backend.stream_turn(
                            request, self.tools or None, sampling=sampling,
                            enable_thinking=self.config.enable_thinking, session_id=self.session_id,
                            cancel=cancel):
                        if isinstance(event, TurnComplete):
                            screened, skipped = screen_turn(event.result, self.config.max_calls_per_round)
                            screened = enforce_choice(screened, choice, self.config.parallel_tool_calls, self.tools)
                            raw = clean_text(event.raw) if event.raw else event.raw  # the app exports it
                            event = complete = replace(event, result=screened, raw=raw)
                        yield event
                except BackendError as exc:
                    yield AgentFinished("error", str(exc))
                    return
                except Exception as exc:  # a transport library's own error: report, keep history
                    yield AgentFinished("error", f"{self.backend.name}: {type(exc).__name__}: {exc}")
                    return
                if complete is None:
                    yield AgentFinished("error", f"{self.backend.name} ended the turn without a result")
                    return
                missing = choice.forces_call and not (complete.result.tool_calls or complete.result.errors)
                if not missing or complete.finish_reason == "cancelled":
                    break
            result = complete.result
            if missing and complete.finish_reason != "cancelled":
                yield AgentFinished("error", f"tool_choice {choice.wire()!r} asks for a tool call; "
                                             f"{self.backend.name} answered without one "
                                             f"{self.config.tool_choice_retries + 1} time(s)", result.content)
                return
            messages.append(self._assistant_message(round_number, result.content, result.reasoning,
                                                    result.tool_calls))
            used = complete.usage.prompt_tokens + complete.usage.completion_tokens
            yield ContextStatus(round_number, used, limit)
            if complete.finish_reason == "cancelled":
                yield AgentFinished("cancelled", "generation stopped by the user", result.content)
                return
            if not result.tool_calls and not result.errors:
                note = " (cut at max_tokens)" if complete.finish_reason == "length" else ""
                yield AgentFinished("answer", f"answered after {round_number} round(s){note}", result.content)
                return
            yield from self._run_calls(round_number, result.tool_calls, result.errors, messages, skipped)
        yield AgentFinished("round_limit",
                            f"stopped after {self.config.max_rounds} rounds of tool calls without an answer")

    # -- rounds -----------------------------------------------------------------------------
    def _call_reminder(self, choice: ToolChoice) -> dict[str, Any]:
        names = ", ".join(choice.allowed(tool_names(self.tools)))
        return {"role": "user", "content": f"Answer with a tool call now, to one of: {names}."}

    def _assistant_message(self, round_number: int, content: str, reasoning: str | None,
                           calls: Sequence[ToolCall]) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": content,
                                   "reasoning_content": reasoning or ""}
        if calls:
            message["tool_calls"] = [
                {"id": f"call_{round_number}_{i}", "type": "function",
                 "function": {"name": c.name, "arguments": c.arguments}} for i, c in enumerate(calls)]
        return message

    def _check(self, round_number: int, index: int, call: ToolCall) -> ToolCallChecked:
        problems = call_problems(call.name, call.arguments, self.schemas)
        return ToolCallChecked(round_number, index, call.name, call.arguments, call.raw,
                               not problems, tuple(problems))

    def _run_calls(self, round_number: int, calls: Sequence[ToolCall], errors: Sequence[CallError],
                   messages: list[dict[str, Any]], skipped: int = 0) -> Iterator[AgentEvent]:
        checks = [self._check(round_number, i, call) for i, call in enumerate(calls)]
        yield from checks
        outcomes: list[tuple[ToolOutcome, float, bool]] = [None] * len(calls)  # type: ignore[list-item]
        runnable = []
        for i, check in enumerate(checks):
            if not check.ok:
                message = "; ".join(check.problems)
                if check.name in self.schemas:
                    message = f"arguments do not match the schema of {check.name}: {message}"
                outcomes[i] = (ToolOutcome(_error_json(message), True), 0.0, False)
            else:
                runnable.append(i)
        for i, (outcome, seconds, manual) in self._execute_all(calls, runnable):
            outcomes[i] = (outcome, seconds, manual)
        for i, call in enumerate(calls):
            outcome, seconds, manual = outcomes[i]
            yield ToolResultReady(round_number, i, call.name, call.arguments, outcome, seconds, manual)
            messages.append({"role": "tool", "tool_call_id": f"call_{round_number}_{i}",
                             "name": call.name, "content": outcome.content})
        for j, error in enumerate(errors):
            outcome = ToolOutcome(_error_json(f"malformed tool call: {error.message}. "
                                              "Answer each call as <tool_call>\\n{\"name\": ..., "
                                              "\"arguments\": {...}}\\n</tool_call>"), True)
            yield ToolResultReady(round_number, len(calls) + j, "(malformed)", error.raw, outcome, 0.0)
            messages.append({"role": "tool", "name": "(malformed)", "content": outcome.content})
        if skipped:
            cap = self.config.max_calls_per_round
            outcome = ToolOutcome(_error_json(
                f"too many tool calls: {skipped} more call(s) in this round were not run, because "
                f"at most {cap} are handled per round. Read these results, then make the remaining "
                "calls in the next round."), True)
            yield ToolResultReady(round_number, len(calls) + len(errors), "(not run)", None, outcome, 0.0)
            messages.append({"role": "tool", "name": "(not run)", "content": outcome.content})

    def _execute_all(self, calls: Sequence[ToolCall], indices: list[int]):
        if not indices:
            return []
        if not self.config.parallel_tools or len(indices) == 1:
            return [(i, self._execute_one(calls[i])) for i in indices]
        with ThreadPoolExecutor(max_workers=min(8, len(indices))) as pool:
            futures = {i: pool.submit(self._execute_one, calls[i]) for i in indices}
            return [(i, futures[i].result()) for i in indices]  # results in call order

    def _execute_one(self, call: ToolCall) -> tuple[ToolOutcome, float, bool]:
        started = time.perf_counter()
        manual = call.name in self.config.manual_tools or not self.implemented(call.name)
        try:
            if manual:
                if self.manual is None:
                    outcome = ToolOutcome(_error_json(
                        f"{call.name} has no implementation here and no manual result was given"), True)
                else:
                    outcome = ToolOutcome(clean_text(self.manual(call.name, dict(call.arguments))))
            else:
                # The round is released at the deadline: the late call is abandoned on its own
                # thread and asked to stop (a sandboxed process is killed when it notices).
                arguments = dict(call.arguments)
                try:
                    outcome = call_with_deadline(lambda: self.execute(call.name, arguments),  # type: ignore[misc]
                                                 self.config.tool_timeout_s, name=call.name)
                except ToolDeadlineExceeded:
                    outcome = ToolOutcome(_error_json(
                        f"{call.name} timed out after {self.config.tool_timeout_s:g}s"), True)
        except Exception as exc:  # a tool's own failure is a result for the model, not a crash
            outcome = ToolOutcome(_error_json(f"{call.name} failed: {type(exc).__name__}: {exc}"), True)
        outcome = ToolOutcome(safe_result_text(outcome.content, outcome.is_error), outcome.is_error, outcome.data)
        return outcome, time.perf_counter() - started, manual

    # -- context ----------------------------------------------------------------------------
    def _prompt_tokens(self, messages: list[dict[str, Any]]) -> int:
        if isinstance(self.backend, CountsPromptTokens):  # renders and tokenizes once for the check and the turn
            return self.backend.count_prompt_tokens(messages, self.tools or None,
                                                    enable_thinking=self.config.enable_thinking,
                                                    session_id=self.session_id)
        prompt = render_prompt(messages, self.tools or None, enable_thinking=self.config.enable_thinking)
        return self.backend.count_tokens(prompt)

    def _fit_context(self, messages: list[dict[str, Any]], round_number: int, limit: int):
        reserve = (self.config.sampling or SamplingParams.defaults()).max_tokens
        budget = limit - reserve
        used = self._prompt_tokens(messages)
        if used <= budget:
            if used >= self.config.context_warning_ratio * limit:
                return ContextStatus(round_number, used, limit,
                                     f"context {used}/{limit} tokens: nearly full")
            return None
        if self.config.context_policy == "stop":
            return AgentFinished("context_overflow",
                                 f"the next round needs {used} prompt tokens + {reserve} to answer, "
                                 f"over the {limit}-token context. Start a new session, or choose "
                                 "'drop oldest tool results'.")
        dropped = 0
        for message in messages:
            if used <= budget:
                break
            if message.get("role") == "tool" and not str(message.get("content", "")).startswith("[tool result dropped"):
                message["content"] = DROPPED_MARKER.format(chars=len(str(message.get("content", ""))))
                dropped += 1
                used = self._prompt_tokens(messages)
        if used > budget:
            return AgentFinished("context_overflow",
                                 f"even after dropping {dropped} tool results the prompt needs {used} tokens")
        return ContextStatus(round_number, used, limit, f"dropped the {dropped} oldest tool result(s) to fit")
