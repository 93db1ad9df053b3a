"""Convert a Hugging Face checkpoint to GGUF with llama.cpp's real converter."""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .atomic import atomic_output
from .children import die_with_parent
from ..llamacpp.source import LlamaCppSourceError, llama_cpp_dir

OUTTYPES = ("f32", "f16", "bf16", "q8_0")


class ConversionError(RuntimeError):
    """llama.cpp's converter failed; the message says why (or carries the tail of its log)."""


class UnknownPreTokenizerError(ConversionError):
    """The converter does not recognise the tokenizer's BPE pre-tokenizer (see --declare-pre)."""


# What the vendored converter raises and logs (conversion/base.py: get_vocab_base_pre,
# ModelBase.from_model_architecture; convert_hf_to_gguf.py: main); matched on its log because it
# runs in a child process.
_UNKNOWN_PRE = "BPE pre-tokenizer was not recognized"
_CHKHSH = re.compile(r"chkhsh:\s*([0-9a-f]{64})")
_UNKNOWN_ARCH = re.compile(r"Architecture '([^']+)' not supported|ERROR:hf-to-gguf:Model (\S+) is not supported")
# The pre-tokenizer of Qwen3.5's tokenizer, which smol-tools-4b keeps.
BASE_PRE_TOKENIZER = "qwen35"


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


def known_pre_tokenizers(llama_cpp: Path) -> set[str]:
    """The pre-tokenizer names llama.cpp loads (src/llama-vocab.cpp compares `tokenizer_pre` with
    each); empty if the layout is not the one we know, which disables the check, not the build."""
    try:
        text = (llama_cpp / "src" / "llama-vocab.cpp").read_text(encoding="utf-8")
    except OSError:
        return set()
    return set(re.findall(r'tokenizer_pre == "([^"]+)"', text))


def check_declare_pre(name: str, llama_cpp: Path) -> None:
    """A misspelt `--declare-pre` would convert fine and fail to load: refuse it up front."""
    known = known_pre_tokenizers(llama_cpp)
    if known and name not in known:
        raise ConversionError(
            f"--declare-pre {name!r} is not a pre-tokenizer llama.cpp knows (a GGUF naming it would "
            f"not load). Use the name of the tokenizer's base model, e.g. --declare-pre "
            f"{BASE_PRE_TOKENIZER} for Qwen3.5's; the names llama.cpp knows: {', '.join(sorted(known))}.")


def explain_failure(log: str, checkpoint: Path, returncode: int) -> ConversionError:
    """The converter's failure as one paragraph naming the fix, when we know the cause."""
    if _UNKNOWN_PRE in log:
        found = _CHKHSH.search(log)
        digest = f" (probe hash {found.group(1)[:16]}…)" if found else ""
        return UnknownPreTokenizerError(
            f"llama.cpp's converter does not recognise the BPE pre-tokenizer of the tokenizer in "
            f"{checkpoint}{digest}: it knows pre-tokenizers by how they split a probe text, and this "
            f"one is not in its list. If the tokenizer splits text exactly like its base model's "
            f"(tokenizer.json's pre_tokenizer; for a smol-tools or Qwen3.5 fine-tune that is Qwen3.5's), "
            f"re-run with --declare-pre {BASE_PRE_TOKENIZER} (or the base model's name in llama.cpp); "
            f"otherwise a newer llama.cpp (llama-cpp-python) may know it. Nothing was converted.")
    if found := _UNKNOWN_ARCH.search(log):
        arch = found.group(1) or found.group(2)
        return ConversionError(
            f"llama.cpp's converter does not support the architecture {arch!r} named in "
            f"{checkpoint / 'config.json'}. smol-tools packages Qwen3.5 checkpoints "
            f"(Qwen3_5ForCausalLM); check that SOURCE is the model you meant, or update llama-cpp-python. "
            f"Nothing was converted.")
    return ConversionError(f"convert_hf_to_gguf.py failed (exit {returncode}) on {checkpoint}:\n"
                           f"{log[-3000:]}")


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
    try:
        source = llama_cpp or llama_cpp_dir()
    except LlamaCppSourceError as exc:
        raise ConversionError(f"llama.cpp's converter is not available: {exc}") from exc
    if declare_pre:
        check_declare_pre(declare_pre, source)
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
        # The converter imports its siblings (conversion/) and the vendored gguf-py: put them first
        # on the child's path through the environment, not by editing sys.path in code.
        path = os.pathsep.join(p for p in (str(source), str(source / "gguf-py"), os.environ.get("PYTHONPATH")) if p)
        result = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=die_with_parent,
                                env={**os.environ, "PYTHONPATH": path})
        if result.returncode != 0:
            raise explain_failure(result.stdout + result.stderr, checkpoint, result.returncode)
    return ConversionResult(out_file, outtype, has_mtp, round(time.monotonic() - started, 2),
                            out_file.stat().st_size)
