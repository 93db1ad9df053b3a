"""The six offline examples replay exactly on the shipped tiny model (issue 14 §2), through the
running app's `/send` (gradio_client, `python app.py` offline, as a user runs it) and through
`smol-tools chat --model tiny --once MESSAGE --json` run from a directory outside the checkout.

For each example the expected turn is its scripted conversation: the final answer, the number
of rounds (one per scripted assistant turn) and, call by call, the tool and arguments and the
result the scripted answer was written from. Results of the tools the scripted provider stands
in front of (the simulations and the clock) are marked scripted; the others ran for real on
the demo workspace and agree with the script byte for byte. Greedy decoding makes a second
run take the same path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from smol_tools.app.examples import EXAMPLES
from smol_tools.app.render import pretty_json
from smol_tools.tiny.scripted import load_scripted
from smol_tools.tools.scripted import UNREPEATABLE_TOOLS
from tests.test_app_support import AppProcess, call, client

pytestmark = pytest.mark.slow
OFFLINE = [e for e in EXAMPLES if e.offline]
SIMULATED = {"get_weather", "web_search", "translate", *UNREPEATABLE_TOOLS}


def expected_turn(prompt: str) -> dict[str, Any]:
    """The scripted conversation that starts with `prompt`, as a turn: answer, rounds, calls."""
    conversation = next(c for c in load_scripted()["conversations"] if c["messages"][0].get("content") == prompt)
    calls: list[dict[str, Any]] = []
    rounds = 0
    answer = ""
    for entry in conversation["messages"][1:]:
        if entry["role"] == "user":
            break  # a later user turn is another /send
        if entry["role"] == "assistant":
            rounds += 1
            answer = entry["message"].get("content") or ""
            calls += [{"name": c["function"]["name"], "arguments": c["function"]["arguments"]}
                      for c in entry["message"].get("tool_calls", [])]
        elif entry["role"] == "tool":
            next(c for c in calls if "result" not in c)["result"] = entry["content"]
    return {"answer": answer, "rounds": rounds, "calls": calls}


def assert_replays(turn: dict[str, Any], prompt: str) -> None:
    want = expected_turn(prompt)
    assert turn["answer"] == want["answer"], prompt
    assert len(turn["rounds"]) == want["rounds"] and turn["finish"]["reason"] == "answer", (prompt, turn["finish"])
    got = [{"name": c["name"], "arguments": c["arguments"], "result": c["result"]} for c in turn["calls"]]
    assert got == want["calls"], prompt  # each result shown is the one the scripted answer used
    for c in turn["calls"]:
        assert c["scripted"] == (c["name"] in SIMULATED), c  # marked where the provider answered
        assert c["schema_ok"] is True and c["status"] == "done"


def test_every_example_has_a_script() -> None:
    assert len(OFFLINE) == 6
    assert [expected_turn(e.prompt)["rounds"] for e in OFFLINE] == [2, 2, 3, 1, 2, 4]


@pytest.fixture(scope="module")
def tiny_app():
    # Offline (AppProcess sets HF_HUB_OFFLINE=1): the app falls back to the shipped tiny model.
    with AppProcess("test_tiny_examples") as app:
        yield app


def test_each_example_replays_through_the_apps_send(tiny_app) -> None:
    c = client(tiny_app)
    for example in OFFLINE:
        call(c, "reset")
        turn = call(c, "send", example.prompt)
        assert "tiny" in turn["backend"], turn["backend"]
        assert_replays(turn, example.prompt)
        page = "\n".join(m["content"] for m in call(c, "chat_messages") if isinstance(m.get("content"), str))
        for x in turn["calls"]:  # the page shows the very result the answer used, and its mark
            try:
                shown = pretty_json(json.loads(x["result"]))
            except ValueError:
                shown = x["result"]
            assert shown in page, (example.prompt, shown)
        assert ("📜 scripted result" in page) == any(x["scripted"] for x in turn["calls"])


def _chat_once(prompt: str, cwd: Path) -> dict[str, Any]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SMOL_TOOLS_HISTORY": ""}
    done = subprocess.run([sys.executable, "-m", "smol_tools", "chat", "--model", "tiny", "--once", prompt, "--json"],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.mark.parametrize("example", OFFLINE, ids=[e.scenario for e in OFFLINE])
def test_each_example_replays_through_chat_from_any_directory(example, tmp_path) -> None:
    turn = _chat_once(example.prompt, tmp_path)  # tmp_path: not the checkout
    assert_replays(turn, example.prompt)
    if example.scenario in ("Parallel calls", "Error recovery"):  # greedy: the same path again
        again = _chat_once(example.prompt, tmp_path)
        strip = lambda t: [(c["name"], c["arguments"], c["result"], c["raw"]) for c in t["calls"]]  # noqa: E731
        assert (again["answer"], strip(again)) == (turn["answer"], strip(turn))
