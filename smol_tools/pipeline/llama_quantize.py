"""Quantize with the real `llama-quantize` program (built from the vendored llama.cpp).

The pipeline uses the program rather than llama-cpp-python's `llama_model_quantize` because
only the program takes an importance matrix, and its log tells us which tensors llama.cpp had
to quantize to another type (row widths not divisible by the block size: a "fallback")."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..llamacpp.build import ensure_llama_programs
from .atomic import atomic_output
from .children import relative_to, run_child
from .quantize import QuantizationError, quant_types

# llama-quant.cpp: "warning: <tensor> - ncols <n> not divisible by <b> (required for type <t>)
# [(WARNING: must use F16 due to unusual shape) ]-> falling back to <type>"
_FALLBACK = re.compile(
    r"warning: (?P<tensor>\S+)\s+- ncols\s+\d+ not divisible by\s+\d+ \(required for type\s+(?P<wanted>\S+)\)"
    r"\s*(?:\(WARNING: must use F16 due to unusual shape\)\s*)?-> falling back to\s+(?P<used>\S+)")


@dataclass(frozen=True)
class Fallback:
    tensor: str
    wanted: str
    used: str


@dataclass(frozen=True)
class ProgramQuantizeResult:
    path: Path
    quant: str
    seconds: float
    size_bytes: int
    peak_rss_kib: int
    imatrix: Path | None
    fallbacks: list[Fallback] = field(default_factory=list)


def parse_fallbacks(log: str) -> list[Fallback]:
    return [Fallback(m["tensor"], m["wanted"], m["used"]) for m in _FALLBACK.finditer(log)]


def default_program() -> Path:
    return ensure_llama_programs() / "llama-quantize"


def quantize_with_program(source: Path, out_file: Path, quant: str, *, imatrix: Path | None = None,
                          threads: int | None = None, program: Path | None = None,
                          log_path: Path | None = None, cwd: Path | None = None) -> ProgramQuantizeResult:
    """Run llama-quantize, writing `out_file` atomically. With `cwd`, paths are passed relative
    to it: llama-quantize records the imatrix path in the GGUF, which must not leak local
    folders into a published file (and must not differ between two identical builds)."""
    key = quant.upper()
    if key not in quant_types():
        raise QuantizationError(f"unknown quant type {quant!r}")
    program = program or default_program()
    with atomic_output(out_file) as partial:
        cmd = [str(program)]
        if imatrix is not None:
            cmd += ["--imatrix", relative_to(imatrix, cwd)]
        cmd += [relative_to(source, cwd), relative_to(partial, cwd), key, str(threads or os.cpu_count() or 1)]
        result = run_child(cmd, log_path, cwd=cwd)
        if result.returncode != 0:
            raise QuantizationError(f"llama-quantize {key} failed (exit {result.returncode}) on "
                                    f"{source}:\n{result.tail()}")
    return ProgramQuantizeResult(out_file, key, round(result.seconds, 3), out_file.stat().st_size,
                                 result.peak_rss_kib, imatrix, parse_fallbacks(result.log))
