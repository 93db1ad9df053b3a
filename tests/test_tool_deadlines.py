"""The agent's tool timeout releases the round at the deadline (issue 15 §2): the late call is
abandoned on its own thread, and a sandboxed process it started is killed."""

from __future__ import annotations

import json
import threading
import time

from smol_tools.agent import ToolOutcome
from smol_tools.tool_deadline import ToolDeadlineExceeded, call_with_deadline, cancel_requested
from tests.test_agent import call, results, run

import pytest


def test_a_sleeping_tool_releases_the_round_at_the_deadline() -> None:
    finished = threading.Event()

    def executor(name: str, arguments: dict) -> ToolOutcome:
        time.sleep(4)
        finished.set()
        return ToolOutcome("late")

    started = time.monotonic()
    _, messages, events = run([call("get_weather", {"city": "X"}), "ok<|im_end|>"], executor, tool_timeout_s=0.5)
    elapsed = time.monotonic() - started
    assert elapsed < 2.5, f"the round waited {elapsed:.1f} s for a tool that timed out after 0.5 s"
    assert not finished.is_set()  # the answer came before the tool could have returned
    late = results(events)[0]
    assert late.outcome.is_error and "timed out after 0.5s" in late.outcome.content
    assert late.seconds < 2.5
    assert events[-1].reason == "answer"
    assert messages[-2]["role"] == "tool" and "timed out" in messages[-2]["content"]


def test_parallel_calls_each_stop_at_the_deadline() -> None:
    def executor(name: str, arguments: dict) -> ToolOutcome:
        if arguments["city"] == "slow":
            time.sleep(4)
        return ToolOutcome(json.dumps({"city": arguments["city"]}))

    outputs = [call("get_weather", {"city": "slow"}) + "\n" + call("get_weather", {"city": "fast"}), "ok<|im_end|>"]
    started = time.monotonic()
    _, _, events = run(outputs, executor, tool_timeout_s=0.5)
    assert time.monotonic() - started < 2.5
    slow, fast = results(events)
    assert slow.outcome.is_error and "timed out" in slow.outcome.content
    assert not fast.outcome.is_error and json.loads(fast.outcome.content) == {"city": "fast"}


def test_the_abandoned_call_is_told_to_stop() -> None:
    noticed = threading.Event()

    def tool() -> str:
        for _ in range(400):
            if cancel_requested():
                noticed.set()
                return "stopped"
            time.sleep(0.01)
        return "ran to the end"

    with pytest.raises(ToolDeadlineExceeded):
        call_with_deadline(tool, 0.2)
    assert noticed.wait(2)
    assert not cancel_requested()  # the flag belongs to the call's thread, not the caller's


def test_results_and_errors_pass_through() -> None:
    assert call_with_deadline(lambda: 42, 1) == 42
    with pytest.raises(ZeroDivisionError):
        call_with_deadline(lambda: 1 / 0, 1)
