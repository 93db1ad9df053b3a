"""Importance matrix from our own calibration set, with llama.cpp's `llama-imatrix`.

The calibration set is tool-use conversations (smol_tools/pipeline/data/calibration/conversations.json)
rendered with *our* template, special tokens and all: the activations that matter are the ones
the model sees when it reads tool schemas and writes <tool_call> blocks."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..chat_format import render_prompt
from ..llamacpp.build import ensure_llama_programs
from .atomic import atomic_output
from .children import relative_to, run_child
from .settings import CALIBRATION_PATH


class ImatrixError(RuntimeError):
    """llama-imatrix failed; the message carries the tail of its log."""


@dataclass(frozen=True)
class ImatrixResult:
    path: Path
    seconds: float
    chunks: int
    peak_rss_kib: int


def calibration_text(path: Path = CALIBRATION_PATH, template: str | None = None) -> str:
    """Every calibration conversation rendered as the model reads it, one after another."""
    data = json.loads(path.read_text(encoding="utf-8"))
    tools = {t["function"]["name"]: t for t in data["tools"]}
    return "".join(
        render_prompt(c["messages"], [tools[name] for name in c["tools"]] or None,
                      add_generation_prompt=False, enable_thinking=c["thinking"], template=template)
        for c in data["conversations"])


def default_program() -> Path:
    return ensure_llama_programs() / "llama-imatrix"


def compute_imatrix(model: Path, text_file: Path, out_file: Path, *, ctx: int = 512,
                    chunks: int = 0, threads: int | None = None, program: Path | None = None,
                    log_path: Path | None = None) -> ImatrixResult:
    """Run llama-imatrix over `text_file`, writing `out_file` (GGUF imatrix format) atomically.

    It runs in the text file's folder and is given the bare file name, because the name is
    recorded in the imatrix (and from there in every quant made with it)."""
    program = program or default_program()
    cwd = text_file.parent
    with atomic_output(out_file) as partial:
        cmd = [str(program), "-m", relative_to(model, cwd), "-f", text_file.name,
               "-o", relative_to(partial, cwd), "--output-format", "gguf",
               "-c", str(ctx), "-t", str(threads or os.cpu_count() or 1),
               "--parse-special",  # <|im_start|> etc. are single tokens, as at inference
               "--no-ppl"]  # perplexity needs the full vocab projection: slow, and not used
        if chunks > 0:
            cmd += ["--chunks", str(chunks)]
        result = run_child(cmd, log_path, cwd=cwd)
        if result.returncode != 0:
            raise ImatrixError(f"llama-imatrix failed (exit {result.returncode}):\n{result.tail()}")
    found = re.search(r"computing over (\d+) chunks", result.log)
    return ImatrixResult(out_file, round(result.seconds, 2), int(found[1]) if found else 0,
                         result.peak_rss_kib)
