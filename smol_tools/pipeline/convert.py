"""Convert a Hugging Face checkpoint to GGUF with llama.cpp's real converter."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .atomic import atomic_output
from .children import die_with_parent
from .llama_cpp_source import llama_cpp_dir

OUTTYPES = ("f32", "f16", "bf16", "q8_0")


class ConversionError(RuntimeError):
    """llama.cpp's converter failed; the message carries the tail of its log."""


@dataclass(frozen=True)
class ConversionResult:
    path: Path
    outtype: str
    has_mtp: bool
    seconds: float
    size_bytes: int


def _safetensors_tensor_names(path: Path) -> list[str]:
    # The header is an 8-byte little-endian length followed by JSON: no need to load weights.
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    return [name for name in header if name != "__metadata__"]


def checkpoint_tensor_names(checkpoint: Path) -> list[str]:
    index = checkpoint / "model.safetensors.index.json"
    if index.exists():
        return list(json.loads(index.read_text())["weight_map"])
    names: list[str] = []
    for shard in sorted(checkpoint.glob("*.safetensors")):
        names.extend(_safetensors_tensor_names(shard))
    return names


def checkpoint_has_mtp(checkpoint: Path) -> bool:
    """Qwen3.5 checkpoints may carry multi-token-prediction tensors (`mtp.*`)."""
    return any(name.startswith(("mtp.", "model.mtp.")) for name in checkpoint_tensor_names(checkpoint))


def convert_to_gguf(checkpoint: Path, out_file: Path, *, outtype: str = "bf16",
                    declare_pre: str | None = None, keep_mtp: bool = True,
                    llama_cpp: Path | None = None) -> ConversionResult:
    """Run convert_hf_to_gguf.py on `checkpoint`, writing `out_file` atomically.

    MTP tensors are kept when the checkpoint has them (`keep_mtp`); a checkpoint without them
    needs `--no-mtp`, or the converter stops on a bare assertion."""
    if outtype not in OUTTYPES:
        raise ValueError(f"outtype must be one of {OUTTYPES}, not {outtype!r}")
    if not (checkpoint / "config.json").exists():
        raise ConversionError(f"{checkpoint} is not a Hugging Face checkpoint (no config.json)")
    has_mtp = checkpoint_has_mtp(checkpoint)
    source = llama_cpp or llama_cpp_dir()
    started = time.monotonic()
    with atomic_output(out_file) as partial:
        cmd = [sys.executable, "-m", "smol_tools.pipeline.convert_entry",
               "--llama-cpp-dir", str(source)]
        if declare_pre:
            cmd += ["--declare-pre", declare_pre]
        cmd += ["--", str(checkpoint), "--outfile", str(partial), "--outtype", outtype]
        if not (has_mtp and keep_mtp):
            cmd.append("--no-mtp")
        # Tied to the pipeline: an orphaned converter killed with it would go on writing the
        # .partial file a --resume run writes again.
        result = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=die_with_parent)
        if result.returncode != 0:
            raise ConversionError(
                f"convert_hf_to_gguf.py failed (exit {result.returncode}) on {checkpoint}:\n"
                f"{(result.stdout + result.stderr)[-3000:]}")
    return ConversionResult(out_file, outtype, has_mtp, round(time.monotonic() - started, 2),
                            out_file.stat().st_size)
