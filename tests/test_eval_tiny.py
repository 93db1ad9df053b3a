"""The harness on the tiny model: greedy decoding reproduces every scripted turn, so the
scripted suite has exact, known scores; planted wrong answers lower them by exactly the
predicted amount; quants and runtimes compare with full agreement; the CLI writes the report."""

from __future__ import annotations

import argparse
import copy
import json
from fractions import Fraction

import pytest

from smol_tools.backends.llama_cpp import LlamaCppBackend
from smol_tools.backends.openai_compat import OpenAICompatBackend
from smol_tools.eval import compare_markdown, compare_reports, evaluate, markdown_table
from smol_tools.eval.cli_args import add_eval_parser
from smol_tools.eval.scripted import suite_data_from_scripted
from smol_tools.eval.suite import suite_from_data
from devkit.scripted import load_scripted

pytestmark = pytest.mark.slow

DATA = suite_data_from_scripted(load_scripted())
PERFECT = ("tool_f1", "tool_precision", "tool_recall", "json_validity", "argument_correctness", "no_tool_accuracy",
           "step_exact")
# The scripted suite: 8 cases, 19 steps, 11 expected calls in 10 call steps, 9 answer steps.
EXPECTED_COUNTS = {"tp": 11, "fp": 0, "fn": 0, "args_ok": 11, "blocks": 11, "valid_blocks": 11, "no_tool_total": 9,
                   "no_tool_ok": 9, "steps": 19, "exact_steps": 19}


@pytest.fixture(scope="module")
def q8(tiny_gguf_q8_0) -> LlamaCppBackend:
    return LlamaCppBackend(tiny_gguf_q8_0, n_ctx=4096)


@pytest.fixture(scope="module")
def q8_report(q8):
    return evaluate(q8, suite_from_data(DATA), label="Q8_0", progress=False, resamples=200)


def _exact(value: float) -> Fraction:
    return Fraction(value).limit_denominator(1000)


def _plant(edit) -> dict:
    data = copy.deepcopy(DATA)
    cases = {c["id"]: c for c in data["cases"]}
    edit(cases)
    return data


def _assistant(case: dict, index: int) -> dict:
    return [m for m in case["messages"] if m["role"] == "assistant"][index]


def test_scripted_suite_scores_exactly_one(q8_report) -> None:
    overall = q8_report["overall"]
    assert overall["counts"] == EXPECTED_COUNTS
    for metric in PERFECT:
        assert overall["metrics"][metric]["value"] == 1.0
        assert overall["metrics"][metric]["ci95"] == [1.0, 1.0]
    assert {k: v["steps"] for k, v in q8_report["scenarios"].items()} == {
        "single_tool": 4, "multi_tool_parallel": 2, "multi_tool_sequential": 3, "no_tool_needed": 1,
        "error_recovery": 4, "reasoning_heavy": 2, "complex_multi_step": 3}
    assert q8_report["scenarios"]["no_tool_needed"]["metrics"]["json_validity"]["value"] is None
    assert "| **overall** | 8 | 19 | 1.000 [1.000, 1.000] |" in markdown_table(q8_report)


# Each plant: (what is changed in the expected answers, the exact overall values it must give).
PLANTS = {
    "wrong tool name": (
        lambda cs: _assistant(cs["tiny-single_tool"], 0)["tool_calls"][0]["function"].update(name="calculate",
                                                                                          arguments={"expression": "1"}),
        {"tool_precision": Fraction(10, 11), "tool_recall": Fraction(10, 11), "tool_f1": Fraction(10, 11),
         "argument_correctness": Fraction(1), "no_tool_accuracy": Fraction(1), "step_exact": Fraction(18, 19)}),
    "wrong argument": (
        lambda cs: _assistant(cs["tiny-multi_tool_parallel"], 0)["tool_calls"][1]["function"]["arguments"].update(
            city="Quito"),
        {"tool_f1": Fraction(1), "argument_correctness": Fraction(10, 11), "step_exact": Fraction(18, 19)}),
    "call expected where the model answers": (
        lambda cs: _assistant(cs["tiny-no_tool_needed"], 0).update(
            tool_calls=[{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]),
        {"tool_precision": Fraction(1), "tool_recall": Fraction(11, 12), "tool_f1": Fraction(22, 23),
         "no_tool_accuracy": Fraction(1), "step_exact": Fraction(18, 19)}),
    "answer expected where the model calls": (
        lambda cs: _assistant(cs["tiny-single_tool"], 0).update(expected=[]),
        {"tool_precision": Fraction(10, 11), "tool_recall": Fraction(1), "tool_f1": Fraction(20, 21),
         "no_tool_accuracy": Fraction(9, 10), "step_exact": Fraction(18, 19)}),
}


@pytest.mark.parametrize("plant", PLANTS, ids=list(PLANTS))
def test_planted_wrong_answer_is_caught_exactly(q8, plant) -> None:
    edit, expected = PLANTS[plant]
    report = evaluate(q8, suite_from_data(_plant(edit)), progress=False, resamples=200)
    metrics = report["overall"]["metrics"]
    assert {m: _exact(metrics[m]["value"]) for m in expected} == expected
    if expected["tool_f1"] < 1:
        low, high = metrics["tool_f1"]["ci95"]
        assert low <= metrics["tool_f1"]["value"] <= high


def test_compare_quants_and_llama_server_agree(q8_report, tiny_gguf_f16, tiny_llama_server) -> None:
    suite = suite_from_data(DATA)
    f16 = evaluate(LlamaCppBackend(tiny_gguf_f16, n_ctx=4096), suite, label="F16", progress=False, resamples=200)
    server = evaluate(OpenAICompatBackend(tiny_llama_server.base_url, context_length=4096), suite,
                      label="llama-server F16", progress=False, resamples=200)
    comparison = compare_reports([q8_report, f16, server])
    assert comparison["all_agree"] == 1.0 and comparison["steps"] == 19
    assert all(row["agreement_with_reference"] == 1.0 and row["tool_f1"]["value"] == 1.0
               for row in comparison["rows"])
    table = compare_markdown(comparison)
    assert "| llama-server F16 | 1.000 [1.000, 1.000] |" in table
    assert "identical calls on 1.000 of 19 steps" in table


def test_cli_eval_writes_report_and_table(tmp_path, capsys, tiny_gguf_q8_0) -> None:
    parser = argparse.ArgumentParser(prog="smol-tools")
    add_eval_parser(parser.add_subparsers(dest="command", required=True))
    out, markdown = tmp_path / "report.json", tmp_path / "table.md"
    args = parser.parse_args(["eval", "--model", str(tiny_gguf_q8_0), "--n-ctx", "4096", "--suite", "tiny",
                              "--out", str(out), "--markdown", str(markdown), "--no-progress", "--bootstrap", "100",
                              "--scenario", "error_recovery", "--scenario", "single_tool", "--fail-under", "1.0"])
    assert args.func(args) == 0
    report = json.loads(out.read_text())
    assert report["suite"]["cases"] == 3 and report["overall"]["steps"] == 8
    assert report["overall"]["metrics"]["tool_f1"]["value"] == 1.0
    assert report["settings"]["bootstrap_resamples"] == 100
    printed = capsys.readouterr().out
    assert "| `error_recovery` | 1 | 4 | 1.000 [1.000, 1.000] |" in printed
    assert markdown.read_text().strip() == printed.strip()
