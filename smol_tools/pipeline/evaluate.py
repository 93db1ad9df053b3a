"""Per-quant tool-calling scores for the model card: `smol-tools eval` on each verified GGUF.

Each file is scored in a child process (`python -m smol_tools eval`), like verification: a
model loaded per quant would otherwise stay resident in the build's process, and a llama.cpp
abort on one file must not end the build. The JSON report is kept under build/eval/.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from .atomic import atomic_output
from .children import run_child
from .state import sha256_file


class EvalError(RuntimeError):
    """The eval of one file could not run (its report is missing or unreadable)."""


@dataclass(frozen=True)
class EvalOutcome:
    score: str  # the card's cell, e.g. "F1 0.912 [0.88–0.94]"
    tool_f1: float
    cases: int
    suite: str
    seconds: float


def eval_gguf(gguf: Path, report_path: Path, *, suite: str, limit: int | None = None,
              n_ctx: int | None = None, log_path: Path | None = None) -> EvalOutcome:
    """Run `suite` ('default', 'tiny' or a suite file) greedily on `gguf`; write the report atomically."""
    from ..eval.report import card_score  # start-up time: eval.report pulls in jsonschema, numpy

    with atomic_output(report_path) as partial:
        cmd = [sys.executable, "-m", "smol_tools", "eval", "--backend", "llama-cpp-python",
               "--model", str(gguf), "--out", str(partial), "--no-progress"]
        if suite != "default":
            cmd += ["--suite", suite]
        if limit:
            cmd += ["--limit", str(limit)]
        if n_ctx:
            cmd += ["--n-ctx", str(n_ctx)]
        result = run_child(cmd, log_path)
        if result.returncode != 0 or not partial.exists():
            raise EvalError(f"eval of {gguf.name} failed (exit {result.returncode}):\n{result.tail()}")
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
        return EvalOutcome(card_score(report), float(report["overall"]["metrics"]["tool_f1"]["value"]),
                           int(report["suite"]["cases"]), str(report["suite"]["name"]), round(result.seconds, 1))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EvalError(f"eval report of {gguf.name} is unreadable: {exc}") from exc


def suite_fingerprint(suite: str) -> str:
    """SHA256 of the suite's file: a changed suite means scores to compute again."""
    from ..eval.scripted import SCRIPTED_PATH  # start-up time: eval.scripted pulls in jsonschema, numpy
    from ..eval.suite import DEFAULT_SUITE  # start-up time: eval.suite pulls in jsonschema, numpy

    path = {"default": DEFAULT_SUITE, "tiny": SCRIPTED_PATH}.get(suite, Path(suite))
    if not path.is_file():
        raise EvalError(f"eval suite {suite!r}: no file at {path}")
    return f"{suite}:{sha256_file(path)}"
