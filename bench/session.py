"""The 10-round session the reuse and overhead benchmarks drive through the real agent.

The tiny model memorised short scripted sessions only; what keeps it calling tools for ten
rounds is the workspace: `read_file` always answers "file not found", and after each failure
the model lists the directory and tries again (read, list, read, ...), every round a
well-formed call, under one user query — the card's 10-20 rounds of tool calls in one context.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any, Callable

from smol_tools.agent import Agent, AgentConfig, ToolOutcome
from smol_tools.events import AgentFinished, ToolResultReady, TurnComplete
from smol_tools.backends.base import SamplingParams

ROUNDS = 10
QUESTION = "Show me notes.txt."


def scripted_tools() -> list[dict[str, Any]]:
    from devkit.scripted import load_scripted

    return load_scripted()["tools"]


def looping_executor(name: str, arguments: dict) -> ToolOutcome:
    if name == "list_directory":
        return ToolOutcome('["todo.txt"]')
    if name == "read_file":
        return ToolOutcome(json.dumps({"error": "file not found: notes.txt"}), True)
    return ToolOutcome(json.dumps({"error": f"{name} is not available"}), True)


@dataclass
class Recorder:
    """Delegates to a backend and keeps, per round, the messages it was given."""

    backend: Any
    on_turn: Callable[[], None] | None = None
    prompts: list[list[dict[str, Any]]] = field(default_factory=list)
    record: bool = True  # off in timed runs: the deep copy is the benchmark's cost, not the agent's

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    def stream_turn(self, messages, tools=None, **kwargs):
        if self.record:
            self.prompts.append(copy.deepcopy(list(messages)))
        if self.on_turn is not None:
            self.on_turn()
        return self.backend.stream_turn(messages, tools, **kwargs)


@dataclass
class SessionRun:
    usages: list[Any]  # Usage per round
    finish_reasons: list[str]
    prompts: list[list[dict[str, Any]]]  # the messages of each round
    calls: list[str]
    finished: str


def run_session(backend: Any, *, session_id: str, thinking: bool = True, rounds: int = ROUNDS,
                max_tokens: int = 100, on_turn: Callable[[], None] | None = None,
                record: bool = True) -> SessionRun:
    return _drive(backend, [{"role": "user", "content": QUESTION}], looping_executor, session_id=session_id,
                  thinking=thinking, rounds=rounds, max_tokens=max_tokens, on_turn=on_turn, record=record)


def run_scripted(backend: Any, conversation_id: str, *, session_id: str) -> SessionRun:
    """One scripted conversation of the tiny model (tests/fixtures), its tools answering as scripted."""
    from devkit.scripted import conversation, scripted_tool_results

    script, results = conversation(conversation_id), scripted_tool_results()
    first_answer = next(i for i, m in enumerate(script["messages"]) if m["role"] == "assistant")

    def execute(name: str, arguments: dict) -> ToolOutcome:
        key = (name, json.dumps(arguments, sort_keys=True))
        if key not in results:
            return ToolOutcome(json.dumps({"error": f"no scripted result for {key}"}), True)
        return ToolOutcome(results[key])
    return _drive(backend, [dict(m) for m in script["messages"][:first_answer]], execute, session_id=session_id,
                  thinking=script["thinking"], rounds=ROUNDS, max_tokens=200)


def _drive(backend: Any, messages: list[dict[str, Any]], execute: Callable[[str, dict], ToolOutcome], *,
           session_id: str, thinking: bool, rounds: int, max_tokens: int,
           on_turn: Callable[[], None] | None = None, record: bool = True) -> SessionRun:
    recorder = Recorder(backend, on_turn, record=record)
    agent = Agent(recorder, scripted_tools(), execute, session_id=session_id,
                  config=AgentConfig(max_rounds=rounds, enable_thinking=thinking,
                                     sampling=SamplingParams.greedy(max_tokens=max_tokens)))
    usages, finishes, calls, finished = [], [], [], ""
    for event in agent.run(messages):
        if isinstance(event, TurnComplete):
            usages.append(event.usage)
            finishes.append(event.finish_reason)
        elif isinstance(event, ToolResultReady):
            calls.append(event.name)
        elif isinstance(event, AgentFinished):
            finished = event.reason
    return SessionRun(usages, finishes, recorder.prompts, calls, finished)


def new_tokens(run: SessionRun, *, stop_counted: bool) -> list[int]:
    """Tokens of round k's prompt beyond round k-1's prompt and generated text (round 1: all).

    The stop token ends a turn without being evaluated, so it is new in the next round;
    llama-server counts it in completion_tokens (`stop_counted`), the in-process backend not."""
    new = [run.usages[0].prompt_tokens]
    for previous, current, finish in zip(run.usages, run.usages[1:], run.finish_reasons):
        generated = previous.completion_tokens - (1 if stop_counted and finish != "length" else 0)
        new.append(current.prompt_tokens - previous.prompt_tokens - generated)
    return new
