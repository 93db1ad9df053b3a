"""Fuzzing the parser and the agent with generated model outputs (issue: hardening).

Hypothesis builds valid outputs (reasoning, content, JSON and XML calls with nested, unicode
and huge arguments) and mutates them (truncation, stray and nested tags, broken JSON, control
characters, mixed forms). For each: the one-shot parser never raises, streaming with random
chunking gives the identical result, every bad call is an error with its raw text and a
message. A sample also goes through the agent loop, which must end cleanly. The coverage-
guided target (fuzz/fuzz_toolcalls.py, atheris) gets a short run here too."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smol_tools.agent import Agent, AgentConfig, ToolOutcome
from smol_tools.events import AgentFinished, ToolResultReady
from smol_tools.toolcalls import StreamingParser, parse_output
from tests.test_agent import ReplayModel

ROOT = Path(__file__).resolve().parent.parent
FUZZ_EXAMPLES = int(os.environ.get("SMOL_TOOLS_FUZZ_EXAMPLES", "10000"))
TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=20)
names = st.one_of(st.sampled_from(["get_weather", "calculate", "read_file", "f"]),
                  st.text(min_size=1, max_size=12))


@st.composite
def json_call(draw) -> str:
    args = draw(st.dictionaries(st.text(max_size=10), json_values, max_size=5))
    body = json.dumps({"name": draw(names), "arguments": args}, ensure_ascii=draw(st.booleans()))
    return f"<tool_call>\n{body}\n</tool_call>"


@st.composite
def xml_call(draw) -> str:
    params = draw(st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), st.text(max_size=20), max_size=3))
    inner = "".join(f"<parameter={k}>\n{v}\n</parameter>\n" for k, v in params.items())
    return f"<tool_call>\n<function={draw(st.from_regex(r'[a-z_]{1,10}', fullmatch=True))}>\n{inner}</function>\n</tool_call>"


@st.composite
def valid_output(draw) -> str:
    parts = []
    think = draw(st.sampled_from(["closed", "unclosed", "none"]))
    if think == "closed":
        parts.append(f"<think>\n{draw(st.text(max_size=40))}\n</think>\n\n")
    elif think == "unclosed":  # the calls below stand inside a reasoning block that never closes
        parts.append(f"<think>\n{draw(st.text(max_size=40))}\n")
    parts.append(draw(st.text(max_size=40)))
    parts.extend(draw(st.lists(st.one_of(json_call(), xml_call()), max_size=4)))
    parts.append(draw(st.sampled_from(["<|im_end|>", "", "<|endoftext|>trailing"])))
    return "\n".join(parts)


TAGS = ["<tool_call>", "</tool_call>", "<think>", "</think>", "<|im_end|>", "<function=x>",
        "<parameter=y>", "</parameter>", "</function>", '"', "\\", "{", "}", "\x00", "\x1b", "\ud7ff",
        "\udc80", "\\udc80", "\\ud83d", "1e999", "-1E400", '"a": 1, "a": 2', '"parameters": {}']


@st.composite
def mutated_output(draw) -> str:
    text = draw(valid_output())
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["truncate", "insert", "delete", "duplicate"]))
        position = draw(st.integers(0, len(text)))
        if kind == "truncate":
            text = text[:position]
        elif kind == "insert":
            text = text[:position] + draw(st.one_of(st.sampled_from(TAGS), st.text(max_size=5))) + text[position:]
        elif kind == "delete":
            text = text[:position] + text[position + draw(st.integers(1, 5)):]
        else:
            text = text[:position] + text[position:position + 50] + text[position:]
    return text


def assert_sound(text: str, chunk: int, mode) -> None:
    one_shot = parse_output(text, thinking_open=mode)
    parser = StreamingParser(thinking_open=mode)
    for start in range(0, len(text), chunk):
        parser.feed(text[start:start + chunk])
    parser.finish()
    assert parser.result.to_dict() == one_shot.to_dict()
    for call in one_shot.tool_calls:
        assert isinstance(call.name, str) and call.name and isinstance(call.arguments, dict)
    for error in one_shot.errors:
        assert error.raw and error.message and len(error.message) <= 700
    # Whatever came in, what comes out can enter a history: valid UTF-8, finite JSON numbers.
    json.dumps(one_shot.to_dict(), ensure_ascii=False, allow_nan=False).encode("utf-8")


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(text=mutated_output(), chunk=st.integers(1, 40), mode=st.sampled_from([None, True, False]))
def test_fuzzed_outputs_parse_soundly(text: str, chunk: int, mode) -> None:
    assert_sound(text, chunk, mode)


def test_truncation_at_every_position() -> None:
    full = ('<think>\nweather for two cities\n</think>\n\nChecking "both".\n\n<tool_call>\n'
            '{"name": "get_weather", "arguments": {"city": "Zürich \\"Z\\"", "days": [1, {"x": null}]}}\n'
            '</tool_call>\n<tool_call>\n<function=get_weather>\n<parameter=city>\nLima\n</parameter>\n'
            '</function>\n</tool_call><|im_end|>')
    for end in range(len(full) + 1):
        for mode in (None, True, False):
            assert_sound(full[:end], 3, mode)


def test_thousands_of_calls_and_deep_arguments() -> None:
    many = "\n".join('<tool_call>\n{"name": "f", "arguments": {"i": %d}}\n</tool_call>' % i for i in range(3000))
    result = parse_output(many)
    assert len(result.tool_calls) == 3000 and result.errors == []
    deep = '<tool_call>\n{"name": "f", "arguments": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + "}\n</tool_call>"
    result = parse_output(deep)  # deeper than json's recursion limit: an error, not a crash
    assert len(result.tool_calls) + len(result.errors) == 1
    huge = '<tool_call>\n{"name": "f", "arguments": {"blob": "%s"}}\n</tool_call>' % ("x" * 2_000_000)
    assert parse_output(huge).tool_calls[0].arguments["blob"] == "x" * 2_000_000


@settings(max_examples=min(FUZZ_EXAMPLES // 20, 500), deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(outputs=st.lists(mutated_output(), min_size=1, max_size=3))
def test_agent_survives_fuzzed_outputs(outputs: list[str]) -> None:
    model = ReplayModel(outputs)
    agent = Agent(model, TOOLS, lambda name, args: ToolOutcome("ok"), config=AgentConfig(max_rounds=4))
    events = list(agent.run([{"role": "user", "content": "go"}]))
    assert isinstance(events[-1], AgentFinished)
    assert events[-1].reason in ("answer", "round_limit")
    for event in events:
        if isinstance(event, ToolResultReady) and event.outcome.is_error:
            assert json.loads(event.outcome.content)["error"]


def test_atheris_short_run(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(ROOT / "fuzz" / "corpus", corpus)
    result = subprocess.run([sys.executable, str(ROOT / "fuzz" / "fuzz_toolcalls.py"),
                             "-max_total_time=20", "-print_final_stats=1",
                             # Linux carries the parent's peak RSS (pytest with torch loaded) into
                             # the child's ru_maxrss, which libFuzzer reads: raise its limit.
                             "-rss_limit_mb=16384", f"-artifact_prefix={tmp_path}/", str(corpus)],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = int(next(line for line in result.stderr.splitlines()
                    if line.startswith("stat::number_of_executed_units")).split()[-1])
    assert runs > 1000
