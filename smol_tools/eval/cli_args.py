"""`smol-tools eval`: parse arguments, run the harness, print the markdown table."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from .bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED
from .compare import BACKENDS, RunSpec, compare_markdown, parse_spec
from .suite import SCENARIOS, SuiteError
from ..cli_help import URL_HELP


def add_eval_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "eval", help="score tool calling on an eval suite (per scenario, with 95%% CIs)",
        description="Run an eval suite through a backend and report tool-selection P/R/F1, JSON validity, "
                    "argument correctness and no-tool accuracy, overall and per scenario, with bootstrap "
                    "95% confidence intervals. Metric definitions: evals/README.md.")
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="where the model runs (default: $SMOL_TOOLS_BACKEND, else llama-cpp-python: "
                             "in process)")
    parser.add_argument("--model", default=None,
                        help="in process: a GGUF path, owner/repo:QUANT, or tiny[:QUANT] (the test model); "
                             "servers: the model name (default: $SMOL_TOOLS_MODEL, with $SMOL_TOOLS_QUANT)")
    parser.add_argument("--url", default=None, help=URL_HELP + " (default: $SMOL_TOOLS_URL)")
    parser.add_argument("--api-key", default=None,
                        help="bearer token for an OpenAI-compatible server (default: $SMOL_TOOLS_API_KEY)")
    parser.add_argument("--suite", default=None,
                        help="suite JSON (default: the packaged smol_tools/eval/suite.json); 'tiny' = the tiny model's scripted suite")
    parser.add_argument("--out", type=Path, help="write the JSON report here")
    parser.add_argument("--markdown", type=Path, help="also write the markdown table here")
    parser.add_argument("--compare", nargs="+", metavar="SPEC", default=None,
                        help="run the suite for each [LABEL=]BACKEND:MODEL[@URL] (after --backend/--model "
                             "when --model is given) and print one table with call agreement")
    parser.add_argument("--scenario", action="append", choices=SCENARIOS, help="only these scenarios")
    parser.add_argument("--case", action="append", help="only these case ids")
    parser.add_argument("--limit", type=int, help="only the first N (selected) cases")
    parser.add_argument("--max-tokens", type=int, help="generation limit per step (default: templates/params.json)")
    parser.add_argument("--n-ctx", type=int,
                        help="context length (default: $SMOL_TOOLS_N_CTX, else 32768; 4096 for the tiny model)")
    parser.add_argument("--bootstrap", type=int, default=DEFAULT_RESAMPLES, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="bootstrap seed")
    parser.add_argument("--fail-under", type=float, help="exit 1 when the overall tool F1 is below this")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=cmd_eval)
    return parser


def _write(path: Path | None, text: str) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def cmd_eval(args: argparse.Namespace) -> int:
    from .harness import evaluate_specs  # start-up time: the CLI loads only what the chosen subcommand runs
    from .report import markdown_table  # start-up time: the CLI loads only what the chosen subcommand runs
    from .catalog import load_suite  # start-up time: the CLI loads only what the chosen subcommand runs

    try:
        suite = load_suite(args.suite).subset(scenarios=args.scenario, limit=args.limit, ids=args.case)
        specs = [parse_spec(s) for s in args.compare or []]
    except (SuiteError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # Flags left out: `smol-tools eval` fills them from the SMOL_TOOLS_* variables first
    # (cli_chat.apply_model_variables); called directly, the defaults are these.
    args.backend, args.url = args.backend or "llama-cpp-python", args.url or ""
    if args.model:
        specs.insert(0, RunSpec(f"{args.backend}:{args.model}", args.backend, args.model, args.url))
    specs = [replace(spec, api_key=spec.api_key or args.api_key) for spec in specs]
    if not specs:
        print("error: give --model (and --backend), or --compare SPEC...", file=sys.stderr)
        return 2
    if not suite.cases:
        print("error: no case selected", file=sys.stderr)
        return 2
    for spec in specs:  # a server that is down would be scored as a model that never calls a tool
        problem = _unreachable(spec)
        if problem:
            print(f"error: {problem[0]}", file=sys.stderr)
            return problem[1]
    options = {"max_tokens": args.max_tokens, "progress": not args.no_progress,
               "resamples": args.bootstrap, "seed": args.seed}
    try:
        reports, comparison = evaluate_specs(specs, suite, n_ctx=args.n_ctx, **options)
    except Exception as exc:  # a backend that cannot start: say which, no traceback
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    tables = [f"### {r['label']}\n\n{markdown_table(r)}" for r in reports]
    if len(reports) > 1:
        tables.append(f"### Comparison\n\n{compare_markdown(comparison)}")
    text = "\n\n".join(tables)
    print(text)
    payload: dict[str, Any] = reports[0] if len(reports) == 1 else {"comparison": comparison, "reports": reports}
    _write(args.out, json.dumps(payload, indent=1, ensure_ascii=False) + "\n")
    _write(args.markdown, text + "\n")
    for report in reports:  # runtime failures are scored as wrong answers: say why they happened
        failures = report.get("failures") or []
        if failures:
            first = failures[0]
            print(f"{report['label']}: {len(failures)} of {report['suite']['steps']} step(s) failed in the "
                  f"runtime; the first ({first['case']}, step {first['step']}): {first['failure']}",
                  file=sys.stderr)
        if failures and len(failures) >= report["suite"]["steps"]:
            print(f"error: every step failed to run on {report['label']}: these scores measure the failure, "
                  "not the model", file=sys.stderr)
            return 1
    if args.fail_under is not None:
        worst = min(r["overall"]["metrics"]["tool_f1"]["value"] for r in reports)
        if worst < args.fail_under:
            print(f"tool F1 {worst:.3f} is below --fail-under {args.fail_under}", file=sys.stderr)
            return 1
    return 0


def _unreachable(spec: RunSpec) -> tuple[str, int] | None:
    """Why the server of `spec` cannot be reached and the exit status (2: not a URL, 1: nothing
    answers there), or None: any HTTP answer, even an error status, means something listens."""
    if spec.backend == "llama-cpp-python":
        return None
    import httpx  # start-up time: httpx

    from ..cli_help import DEFAULT_URLS  # start-up time: the CLI loads only what the chosen subcommand runs

    url = spec.url or DEFAULT_URLS.get(spec.backend, "")
    try:
        httpx.get(url, timeout=10.0)
    except (httpx.UnsupportedProtocol, httpx.InvalidURL):
        return f"{url!r} is not a server URL (give one like http://127.0.0.1:8080)", 2
    except httpx.TransportError as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        return (f"cannot reach {url} for {spec.label}: {reason}. Start the server (or check --url) "
                "and run again"), 1
    return None
