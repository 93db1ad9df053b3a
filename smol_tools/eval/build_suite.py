"""Write smol_tools/eval/suite.json (package data), the 200-case tool-calling suite, from the case scripts below.

    python -m smol_tools.eval.build_suite            # rewrite smol_tools/eval/suite.json
    python -m smol_tools.eval.build_suite --stdout   # print it instead

The scripts are the source; the JSON is the data the harness reads (and what is committed).
Tool results come from the real demo tools where they run offline and deterministically
(calculate, clocks at a fixed time, the demo database, a seeded workspace, the outbox and
calendar, the simulated weather and search), and are written out literally for the tools that
need the network or code execution, in exactly the shape those tools return. The long cases
hold `$generate` specs (see generate.py) sized here with llama.cpp's Qwen3.5 vocabulary so the
context at their last step reaches about 16K and 28K tokens.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..llamacpp.source import llama_cpp_dir
from ..tools import default_registry
from .cases.base import FIXED_NOW, Script, Tools
from .cases import COMPLEX, ERROR_RECOVERY, LONG_CASES, NO_TOOL, PARALLEL, REASONING, SEQUENTIAL, SINGLE
from .cases.long import size_long_cases
from .selfcheck import replay_problems
from .suite import DEFAULT_SUITE, SCENARIOS, suite_from_data

def build(vocab_counter=None) -> dict[str, Any]:
    groups = [("single_tool", SINGLE), ("multi_tool_parallel", PARALLEL), ("multi_tool_sequential", SEQUENTIAL),
              ("no_tool_needed", NO_TOOL), ("error_recovery", ERROR_RECOVERY), ("reasoning_heavy", REASONING),
              ("complex_multi_step", COMPLEX)]
    root = Path(tempfile.mkdtemp(prefix="smol-tools-suite-"))
    try:
        tools = Tools(root)
        cases: list[dict[str, Any]] = []
        for scenario, scripts in groups:
            for number, script in enumerate(scripts, 1):
                case = script(lambda **kw: Script(tools, f"{scenario}-{number:03d}", scenario, **kw))
                cases.append(case.case)
        long_cases = []
        for number, (_, script) in enumerate(LONG_CASES, len(COMPLEX) + 1):
            case = script(lambda **kw: Script(tools, f"complex_multi_step-{number:03d}", "complex_multi_step", **kw))
            long_cases.append(case.case)
        cases.extend(long_cases)
        schemas = default_registry().schemas()
        long_meta = {}
        if vocab_counter is not None:
            long_meta = size_long_cases(long_cases, [t for t, _ in LONG_CASES], schemas, vocab_counter)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    counts = {s: sum(1 for c in cases if c["scenario"] == s) for s in SCENARIOS}
    return {
        "name": "smol-tools-eval",
        "version": 1,
        "description": "200 tool-calling cases over the 15 smol-tools tools and 7 scenarios; see evals/README.md.",
        "meta": {"built_by": "python -m smol_tools.eval.build_suite", "clock": FIXED_NOW.isoformat(),
                 "scenario_counts": counts, "long_cases": long_meta},
        "tools": schemas,
        "cases": cases,
    }


def qwen35_token_counter():
    """Token counts with llama.cpp's Qwen3.5 vocabulary (ggml-vocab-qwen35.gguf in the vendored
    llama.cpp tree); None when that tree is not available."""
    try:
        from llama_cpp import Llama  # start-up time: llama_cpp loads its native library


        path = llama_cpp_dir() / "models" / "ggml-vocab-qwen35.gguf"
        if not path.exists():
            return None
        vocab = Llama(model_path=str(path), vocab_only=True, verbose=False)
    except Exception:
        return None
    return lambda text: len(vocab.tokenize(text.encode(), add_bos=False, special=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_SUITE)
    parser.add_argument("--stdout", action="store_true")
    args = parser.parse_args(argv)
    counter = qwen35_token_counter()
    if counter is None:
        print("error: the Qwen3.5 vocabulary (vendored llama.cpp) is needed to size the long cases", file=sys.stderr)
        return 2
    data = build(counter)

    problems = replay_problems(suite_from_data(data))  # also validates against the schema
    if problems:
        print("error: the built suite is inconsistent:\n  " + "\n  ".join(problems[:20]), file=sys.stderr)
        return 1
    text = json.dumps(data, ensure_ascii=False, indent=1) + "\n"
    if args.stdout:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}: {len(data['cases'])} cases {data['meta']['scenario_counts']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
