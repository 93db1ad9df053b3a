"""The tool-calling evaluation harness: suites as data, scored per step, reported per scenario.

    suite = load_suite()                       # smol_tools/eval/suite.json (or "tiny": the scripted suite)
    report = evaluate(backend, suite)          # JSON-ready dict; markdown_table(report) for the card
    reports, comparison = evaluate_specs([parse_spec("llama-cpp-python:m-q8_0.gguf"), ...], suite)
"""

from .compare import RunSpec, agreement, compare_markdown, compare_reports, parse_spec
from .harness import evaluate, evaluate_specs, make_spec_backend
from .metrics import arguments_match, normalize_text, score_step, values_match
from .report import build_report, card_score, markdown_table
from .runner import run_suite
from .catalog import load_suite
from .suite import DEFAULT_SUITE, SCENARIOS, Suite, SuiteError, schema_errors, suite_from_data

__all__ = [
    "DEFAULT_SUITE", "SCENARIOS", "RunSpec", "Suite", "SuiteError", "agreement", "arguments_match",
    "build_report", "card_score", "compare_markdown", "compare_reports", "evaluate", "evaluate_specs",
    "load_suite", "make_spec_backend", "markdown_table", "normalize_text", "parse_spec", "run_suite",
    "schema_errors", "score_step", "suite_from_data", "values_match",
]
