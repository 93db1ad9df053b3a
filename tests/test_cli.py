"""The `smol-tools` command line: render and parse, a stable interface other checks rely on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from smol_tools.chat_format import render_prompt
from smol_tools.toolcalls import parse_output
from tests.conftest import render_corpus

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "smol_tools", *args], input=stdin,
                          capture_output=True, text=True, cwd=ROOT)


def _write(tmp_path: Path, name: str, data) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("case_id", ["tools_with_system", "parallel_calls", "unicode_everywhere",
                                     "tools_no_think", "no_generation_prompt"])
def test_render_writes_the_exact_prompt(tmp_path: Path, case_id: str) -> None:
    case = next(c for c in render_corpus() if c["id"] == case_id)
    args = ["render", "--messages", _write(tmp_path, "m.json", case["messages"])]
    if case["tools"]:
        args += ["--tools", _write(tmp_path, "t.json", case["tools"])]
    if not case["add_generation_prompt"]:
        args.append("--no-generation-prompt")
    if not case["enable_thinking"]:
        args.append("--no-think")
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    expected = render_prompt(case["messages"], case["tools"],
                             add_generation_prompt=case["add_generation_prompt"],
                             enable_thinking=case["enable_thinking"])
    assert result.stdout == expected  # byte-exact: no added newline


def test_render_accepts_an_object_with_messages_and_tools(tmp_path: Path) -> None:
    case = next(c for c in render_corpus() if c["id"] == "single_call_round")
    path = _write(tmp_path, "conv.json", {"messages": case["messages"], "tools": case["tools"]})
    result = run_cli("render", "--messages", path)
    assert result.stdout == render_prompt(case["messages"], case["tools"])


def test_render_reports_bad_input_clearly(tmp_path: Path) -> None:
    result = run_cli("render", "--messages", _write(tmp_path, "m.json", [{"role": "robot", "content": "x"}]))
    assert result.returncode == 2
    assert "unexpected message role" in result.stderr
    result = run_cli("render", "--messages", _write(tmp_path, "m.json", {"nothing": 1}))
    assert result.returncode != 0 and "messages" in result.stderr


OUTPUT = ('<think>\nweather needed\n</think>\n\nChecking.\n\n<tool_call>\n{"name": "get_weather", '
          '"arguments": {"city": "Paris"}}\n</tool_call>\n<tool_call>\n{"name": "oops"\n</tool_call>'
          '<|im_end|>ignored')


@pytest.mark.parametrize("extra", [[], ["--stream"], ["--stream", "--chunk", "7"]])
def test_parse_prints_the_result_object(extra: list[str]) -> None:
    result = run_cli("parse", *extra, stdin=OUTPUT)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"reasoning", "content", "tool_calls", "errors", "notes"}
    assert data["notes"] == []
    assert data["reasoning"] == "weather needed"
    assert data["content"] == "Checking."
    assert data["tool_calls"] == [{"name": "get_weather", "arguments": {"city": "Paris"}}]
    assert len(data["errors"]) == 1 and data["errors"][0]["raw"].startswith("<tool_call>")
    assert data == parse_output(OUTPUT).to_dict()


def test_parse_never_fails_on_garbage() -> None:
    result = run_cli("parse", stdin="\x00<tool_call>{{{\udcff".encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
    assert result.returncode == 0
    assert json.loads(result.stdout)["errors"]
