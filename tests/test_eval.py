"""The eval harness without a model: metric definitions, the suite's data and schema, the
oracle (a stand-in model that answers every step with the intended turn) scores perfectly."""

from __future__ import annotations

import copy
import json
from collections import Counter
from fractions import Fraction

import pytest

from smol_tools.events import TurnComplete, Usage
from smol_tools.eval import (compare_reports, evaluate, load_suite, parse_spec, schema_errors, score_step,
                             values_match)
from smol_tools.eval.metrics import arguments_match, metric_values, normalize_text
from smol_tools.eval.report import markdown_table
from smol_tools.eval.selfcheck import replay_problems
from smol_tools.eval.suite import DEFAULT_SUITE, SCENARIOS, suite_from_data
from smol_tools.backends.server_stream import canonical_call_text
from smol_tools.chat_format import render_prompt
from smol_tools.toolcalls import StreamingParser
from smol_tools.tools import default_registry

SUITE_DATA = json.loads(DEFAULT_SUITE.read_text(encoding="utf-8"))


# -- metric definitions ------------------------------------------------------------------------
def test_normalisation_and_matchers() -> None:
    assert normalize_text("  New\u00a0York \n") == "new york"
    assert values_match("Paris", " paris ")
    assert not values_match("Paris", "Pariss")
    assert values_match(3, 3.0) and not values_match(1, True) and not values_match(True, 1)
    assert values_match(["b@x.io", "a@x.io"], ["a@x.io", "b@x.io"])  # arrays are multisets
    assert not values_match(["a@x.io"], ["a@x.io", "a@x.io"])
    assert values_match({"$compact": "17*23"}, "17 * 23")
    assert values_match({"$contains": ["from customers", "COUNT"]}, "SELECT count(*)  FROM   customers")
    assert values_match({"$one_of": ["de", "German"]}, "german")
    assert values_match({"$any": True}, None)
    assert not values_match({"$contains": "x"}, 5)


def test_arguments_need_every_required_key_and_only_known_optional_ones() -> None:
    expected = {"arguments": {"city": "Paris"}, "optional": {"unit": "celsius"}}
    assert arguments_match(expected, {"city": "paris"})
    assert arguments_match(expected, {"city": "Paris", "unit": "celsius"})
    assert not arguments_match(expected, {"city": "Paris", "unit": "fahrenheit"})
    assert not arguments_match(expected, {"city": "Paris", "country": "FR"})
    assert not arguments_match(expected, {"unit": "celsius"})


SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in default_registry().schemas()}


def test_step_score_counts_multisets_and_malformed_blocks() -> None:
    expected = [{"name": "get_weather", "arguments": {"city": "Tokyo"}},
                {"name": "get_weather", "arguments": {"city": "Lima"}}]
    # Order-free pairing of same-name calls; one extra call and one malformed block are FPs.
    score = score_step(expected, [("get_weather", {"city": "Lima"}), ("get_weather", {"city": "Tokyo"}),
                                  ("calculate", {"expression": "1"})], 1, SCHEMAS)
    assert (score.tp, score.fp, score.fn, score.args_ok, score.blocks, score.valid_blocks) == (2, 2, 0, 2, 4, 3)
    assert not score.exact
    # Right name, schema-invalid arguments: a TP whose arguments are wrong.
    score = score_step(expected[:1], [("get_weather", {"city": "Tokyo", "unit": "kelvin"})], 0, SCHEMAS)
    assert (score.tp, score.args_ok) == (1, 0)
    # A no-tool step: any block is wrong, a runtime failure is wrong.
    assert score_step([], [], 0, SCHEMAS).no_tool_ok
    assert not score_step([], [], 1, SCHEMAS).no_tool_ok
    assert not score_step([], [], 0, SCHEMAS, failed=True).no_tool_ok


def test_micro_averaged_metrics_from_counts() -> None:
    counts = {"tp": 9, "fp": 1, "fn": 3, "args_ok": 6, "blocks": 10, "valid_blocks": 8, "no_tool_total": 4,
              "no_tool_ok": 3, "steps": 12, "exact_steps": 7}
    values = metric_values(counts)
    assert values["tool_precision"] == 0.9 and values["tool_recall"] == 0.75
    assert values["tool_f1"] == pytest.approx(2 * 0.9 * 0.75 / 1.65)
    assert values["json_validity"] == 0.8 and values["argument_correctness"] == pytest.approx(6 / 9)
    assert values["no_tool_accuracy"] == 0.75 and values["step_exact"] == pytest.approx(7 / 12)
    empty = metric_values({k: 0 for k in counts})
    assert empty["tool_f1"] == 1.0 and empty["json_validity"] is None  # nothing expected, nothing called


# -- the suite -------------------------------------------------------------------------------
def test_suite_validates_against_its_schema() -> None:
    assert schema_errors(SUITE_DATA) == []
    broken = copy.deepcopy(SUITE_DATA)
    broken["cases"][0]["scenario"] = "guessing"
    del broken["cases"][1]["messages"][1]["content"]
    broken["cases"][2]["messages"][1]["expected"] = [{"name": "get_weather", "arguments": {"city": {"$regex": "."}}}]
    errors = schema_errors(broken)
    assert any("cases/0/scenario" in e for e in errors)
    assert any(e.startswith("cases/1/messages/1") for e in errors)
    assert any(e.startswith("cases/2/messages/1") for e in errors)
    unknown = copy.deepcopy(SUITE_DATA)
    unknown["cases"][0]["messages"][1]["tool_calls"][0]["function"]["name"] = "launch_rocket"
    assert any("launch_rocket" in e for e in schema_errors(unknown))


def test_suite_composition() -> None:
    suite = load_suite()
    counts = Counter(c.scenario for c in suite.cases)
    assert len(suite.cases) >= 200
    assert [counts[s] for s in SCENARIOS] == [53, 36, 35, 22, 18, 18, 18]
    used = {e["name"] for c in suite.cases for s in c.steps() for e in s.expected}
    assert used == set(default_registry().names())  # all 15 tools are exercised
    assert {t["function"]["name"] for t in SUITE_DATA["tools"]} == set(default_registry().names())
    long_cases = SUITE_DATA["meta"]["long_cases"]
    targets = sorted(f["target_tokens"] for f in long_cases.values())
    assert targets == [16000, 16000, 28000, 28000]
    for facts in long_cases.values():
        assert abs(facts["last_step_tokens"] - facts["target_tokens"]) <= 0.02 * facts["target_tokens"]
        assert facts["longest_result_chars"] <= 12_000  # the app's tool-result cap


def test_every_expected_call_fits_the_registry_schema_and_the_replay() -> None:
    assert replay_problems(load_suite()) == []


def test_long_cases_are_generated_deterministically_and_reach_their_size() -> None:
    from smol_tools.eval.build_suite import qwen35_token_counter

    suite = load_suite()
    long_ids = SUITE_DATA["meta"]["long_cases"]
    steps = {c.id: c.steps() for c in suite.cases if c.id in long_ids}
    again = {c.id: c.steps() for c in load_suite().cases if c.id in long_ids}
    assert [s.history for s in steps["complex_multi_step-018"]] == [s.history for s in again["complex_multi_step-018"]]
    count = qwen35_token_counter()
    if count is None:
        pytest.skip("the vendored llama.cpp vocabulary is not available")
    for case in suite.cases:
        if case.id in long_ids:
            prompt = render_prompt(case.steps()[-1].history, case.tools, enable_thinking=case.thinking)
            assert count(prompt) == long_ids[case.id]["last_step_tokens"]
    # The planted fact a later step needs is inside the filler.
    history = steps["complex_multi_step-015"][-1].history
    assert any("connection refused to db-replica-2:5432" in m["content"] for m in history if m["role"] == "tool")


# -- the harness end to end, with an oracle model --------------------------------------------
class OracleModel:
    """Answers each step with the case's intended assistant turn, as canonical model text
    through our parser; `wrong` maps (case id, step) -> raw text to answer instead."""

    name = "oracle"
    context_length = 32768

    def __init__(self, suite, wrong=None) -> None:
        self.turns = {}
        for case in suite.cases:
            assistants = [m for m in case.messages if m["role"] == "assistant"]
            for step, message in zip(case.steps(), assistants):
                key = render_prompt(step.history, case.tools, enable_thinking=case.thinking)
                blocks = [canonical_call_text(c["function"]["name"], c["function"]["arguments"])
                          for c in message.get("tool_calls") or []]
                raw = (wrong or {}).get((case.id, step.index)) or (message["content"] + "\n\n".join(blocks))
                self.turns[key] = raw

    def count_tokens(self, text: str) -> int:
        return len(text) // 4

    def stream_turn(self, messages, tools=None, *, enable_thinking=True, **kwargs):
        raw = self.turns[render_prompt(messages, tools, enable_thinking=enable_thinking)]
        parser = StreamingParser(thinking_open=False)
        yield from parser.feed(raw)
        yield from parser.finish()
        yield TurnComplete(parser.result, raw, "stop", Usage())


def test_oracle_scores_perfectly_on_the_whole_suite() -> None:
    suite = load_suite()
    report = evaluate(OracleModel(suite), suite, progress=False, resamples=200)
    overall = report["overall"]["metrics"]
    for metric in ("tool_f1", "tool_precision", "tool_recall", "json_validity", "argument_correctness",
                   "no_tool_accuracy", "step_exact"):
        assert overall[metric]["value"] == 1.0, metric
    assert report["overall"]["steps"] == suite.n_steps and report["failures"] == []
    assert set(report["scenarios"]) == set(SCENARIOS)
    table = markdown_table(report)
    assert table.count("\n| `") == 7 and "1.000 [1.000, 1.000]" in table


def test_oracle_with_planted_mistakes_loses_exactly_what_it_should() -> None:
    suite = load_suite().subset(scenarios=["single_tool"])
    first = suite.cases[0]  # web_search, then an answer
    wrong = {(first.id, 0): canonical_call_text("get_webpage", {"url": "https://example.com/search?q=postgres"}),
             (suite.cases[1].id, 0): '<tool_call>\n{"name": "web_search", "arguments": {"query": }\n</tool_call>',
             (suite.cases[2].id, 1): canonical_call_text("web_search", {"query": "more"})}
    report = evaluate(OracleModel(suite, wrong), suite, progress=False, resamples=200)
    counts = report["overall"]["counts"]
    n = len(suite.cases)  # 53 call steps + 53 answer steps
    assert (counts["tp"], counts["fp"], counts["fn"]) == (n - 2, 3, 2)
    assert (counts["blocks"], counts["valid_blocks"]) == (n + 1, n)
    metrics = report["overall"]["metrics"]
    assert Fraction(metrics["tool_precision"]["value"]).limit_denominator(1000) == Fraction(n - 2, n + 1)
    assert Fraction(metrics["no_tool_accuracy"]["value"]).limit_denominator(1000) == Fraction(n - 1, n)
    low, high = metrics["tool_f1"]["ci95"]
    assert low < metrics["tool_f1"]["value"] <= high <= 1.0


def test_compare_agreement_counts_identical_calls() -> None:
    suite = load_suite().subset(limit=10)
    base = evaluate(OracleModel(suite), suite, label="a", progress=False, resamples=50)
    other = evaluate(OracleModel(suite, {(suite.cases[0].id, 0): "I'd rather not."}), suite, label="b",
                     progress=False, resamples=50)
    comparison = compare_reports([base, other, base])
    steps = suite.n_steps
    assert comparison["steps"] == steps
    assert comparison["rows"][1]["agreement_with_reference"] == pytest.approx((steps - 1) / steps)
    assert comparison["rows"][2]["agreement_with_reference"] == 1.0
    assert comparison["all_agree"] == pytest.approx((steps - 1) / steps)


def test_bootstrap_is_seeded() -> None:
    suite = load_suite().subset(limit=30)
    wrong = {(suite.cases[i].id, 0): "No." for i in (0, 5, 9)}
    first = evaluate(OracleModel(suite, wrong), suite, progress=False, resamples=300, seed=7)
    second = evaluate(OracleModel(suite, wrong), suite, progress=False, resamples=300, seed=7)
    assert first["overall"]["metrics"] == second["overall"]["metrics"]


def test_compare_spec_grammar() -> None:
    spec = parse_spec("Q8_0=llama-cpp-python:models/m-q8_0.gguf")
    assert (spec.label, spec.backend, spec.model, spec.url) == ("Q8_0", "llama-cpp-python", "models/m-q8_0.gguf", "")
    spec = parse_spec("openai:default@http://127.0.0.1:8080")
    assert (spec.backend, spec.model, spec.url) == ("openai", "default", "http://127.0.0.1:8080")
    assert parse_spec("llama-cpp-python:enfuse/smol-tools-4b-32k:Q4_K_M").model == "enfuse/smol-tools-4b-32k:Q4_K_M"
    with pytest.raises(ValueError, match="BACKEND"):
        parse_spec("vllm:model")


def test_a_runtime_failure_is_scored_and_reported_not_raised() -> None:
    class Broken:
        name = "broken"
        context_length = 32768

        def stream_turn(self, *args, **kwargs):
            raise RuntimeError("server went away")
            yield

    suite = suite_from_data({**SUITE_DATA, "cases": SUITE_DATA["cases"][:2]})
    report = evaluate(Broken(), suite, progress=False, resamples=50)
    assert len(report["failures"]) == suite.n_steps
    assert "server went away" in report["failures"][0]["failure"]
    assert report["overall"]["metrics"]["tool_recall"]["value"] == 0.0
