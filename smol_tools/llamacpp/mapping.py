"""Whether to memory-map a GGUF on the CPU: not when llama.cpp will repack most of its weights.

llama.cpp's CPU backend copies the weights of some quant types into an interleaved layout
("CPU_REPACK" buffers) at load time. With the file memory-mapped, the source pages it read stay
mapped and resident as well, so those weights count twice (upstream: ggml-org/llama.cpp issue
16761, open; a fix, PR 24156, is unmerged). Measured on the 4B-shaped stand-in's Q4_K_M at 4K
context (bench/real_size/, 2 threads): 4,454 MiB RSS mapped (1,858 anonymous + 2,595 of file
pages) against 2,886 MiB with `use_mmap=False`, which is what the memory table computes; Q8_0,
which this CPU does not repack, is the same either way. Loading without the mapping reads the
file once (a few seconds more for a 4B file in the page cache), so we map unless repacking would
duplicate a material share of the weights.

Which types repack follows `ggml_repack_get_optimal_repack_type` in the llama.cpp that
llama-cpp-python 0.3.36 vendors (ggml/src/ggml-cpu/repack.cpp): x86 with AVX2 repacks Q4_0,
Q4_K, IQ4_NL and MXFP4 (Q2_K needs AVX-512); ARM with the dot-product extension also Q5_K, Q6_K,
Q8_0 and Q1_0. Only matrices (2-D weights) are repacked.
"""

from __future__ import annotations

import os
import platform
from functools import cache
from pathlib import Path

from ..gguf_header import read_header

# ggml type ids (gguf.GGMLQuantizationType), spelled out so this needs no numpy import.
Q4_0, Q8_0, Q2_K, Q4_K, Q5_K, Q6_K, IQ4_NL, MXFP4 = 2, 8, 10, 12, 13, 14, 20, 39
Q1_0 = 41  # newest type in the vendored llama.cpp; unknown ids simply never match
X86_AVX2 = frozenset({Q4_0, Q4_K, IQ4_NL, MXFP4})
X86_AVX512 = frozenset({Q2_K})
ARM_DOTPROD = frozenset({Q4_0, Q4_K, Q5_K, Q6_K, IQ4_NL, MXFP4, Q8_0, Q1_0})
DUPLICATE_SHARE = 0.10  # map unless repacking would hold more than this share of the weights twice
SETTING_ENV = "SMOL_TOOLS_MMAP"  # auto (default), on, off


@cache
def cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def repacked_types(machine: str | None = None, flags: frozenset[str] | None = None) -> frozenset[int]:
    """The ggml types llama.cpp's CPU backend repacks on this machine (or the one described)."""
    machine = (machine or platform.machine()).lower()
    flags = cpu_flags() if flags is None else flags
    if machine in ("x86_64", "amd64"):
        types = set(X86_AVX2) if "avx2" in flags else set()
        if "avx512f" in flags:
            types |= X86_AVX512
        return frozenset(types)
    if machine in ("aarch64", "arm64"):
        return ARM_DOTPROD if ("asimddp" in flags or platform.system() == "Darwin") else frozenset()
    return frozenset()


def repacked_share(path: Path, types: frozenset[int] | None = None) -> float:
    """The share of the file's weight bytes that llama.cpp would copy into repacked buffers."""
    types = repacked_types() if types is None else types
    tensors = read_header(Path(path)).tensors
    total = sum(t.n_bytes for t in tensors)
    repacked = sum(t.n_bytes for t in tensors if t.ggml_type in types and len(t.shape) >= 2 and t.shape[1] % 4 == 0)
    return repacked / total if total else 0.0


def use_mmap_for(path: Path, setting: str | None = None) -> bool:
    """`setting` (else $SMOL_TOOLS_MMAP, else "auto"): "on"/"off" force it; "auto" maps the file
    unless more than DUPLICATE_SHARE of its weights would be repacked, i.e. held twice."""
    setting = (setting or os.environ.get(SETTING_ENV) or "auto").strip().lower()
    if setting in ("on", "1", "true", "yes"):
        return True
    if setting in ("off", "0", "false", "no"):
        return False
    if setting != "auto":
        raise ValueError(f"{SETTING_ENV}={setting!r}: use auto, on or off")
    try:
        return repacked_share(path) <= DUPLICATE_SHARE
    except (OSError, ValueError):  # not a GGUF we can read: llama.cpp will say why when it loads it
        return True
