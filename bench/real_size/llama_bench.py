"""llama.cpp's own benchmark program, `llama-bench`: the anchor every other runtime is divided by.

The pipeline builds llama-server, llama-quantize and llama-imatrix only
(smol_tools/llamacpp/build.py); llama-bench is built here from the same vendored source
with the same CMake options, once per version, cached beside them under
~/.cache/smol-tools/llama.cpp-bin/<version>-bench-<options hash>/bin/llama-bench.
`--llama-bin DIR` uses a llama-bench you built yourself (CUDA, Metal) instead.

Its JSON output (`-o json`) has one object per test with `n_prompt`, `n_gen`, `n_threads`,
`avg_ts` and `stddev_ts` (tokens/s); see tools/llama-bench/README.md in the vendored source.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from smol_tools.llamacpp.build import CMAKE_OPTIONS, LlamaCppBuildError
from smol_tools.llamacpp.source import CACHE_ROOT, llama_cpp_dir, llama_cpp_python_version

PROGRAM = "llama-bench"


def _build_dir(version: str) -> Path:
    key = hashlib.sha256("\n".join(CMAKE_OPTIONS + (PROGRAM,)).encode()).hexdigest()[:10]
    return CACHE_ROOT / "llama.cpp-bin" / f"{version}-bench-{key}"


def llama_bench_path(llama_bin: Path | None = None) -> Path:
    if llama_bin is not None:
        return Path(llama_bin) / PROGRAM
    return _build_dir(llama_cpp_python_version()) / "bin" / PROGRAM


def ensure_llama_bench(llama_bin: Path | None = None, jobs: int | None = None, log=print) -> Path:
    """The llama-bench program, built from the vendored source on first use (minutes, once)."""
    target = llama_bench_path(llama_bin)
    if target.exists():
        return target
    if llama_bin is not None:
        raise FileNotFoundError(f"{target} does not exist (--llama-bin must hold llama-bench)")
    version = llama_cpp_python_version()
    final = _build_dir(version)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".build-bench-", dir=final.parent))
    try:
        work = staging / "cmake"
        log(f"building {PROGRAM} from llama.cpp {version} (minutes, once)")
        for cmd in (["cmake", "-S", str(llama_cpp_dir(version)), "-B", str(work), *CMAKE_OPTIONS],
                    ["cmake", "--build", str(work), "-j", str(jobs or os.cpu_count() or 2), "--target", PROGRAM]):
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                raise LlamaCppBuildError(f"{' '.join(cmd[:3])} failed:\n{(done.stdout + done.stderr)[-4000:]}")
        (staging / "bin").mkdir()
        shutil.copy2(work / "bin" / PROGRAM, staging / "bin" / PROGRAM)
        shutil.rmtree(work)
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)  # atomic: an existing folder is a finished build
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def run_llama_bench(program: Path, gguf: Path, threads: int, n_prompt: int, n_gen: int,
                    repetitions: int, n_ctx_depth: int = 0, timeout: float = 3600) -> dict[str, Any]:
    """pp and tg rates (tokens/s) of one GGUF, as llama-bench reports them."""
    cmd = [str(program), "-m", str(gguf), "-t", str(threads), "-p", str(n_prompt), "-n", str(n_gen),
           "-r", str(repetitions), "-o", "json"]
    if n_ctx_depth:
        cmd += ["-d", str(n_ctx_depth)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"llama-bench failed ({done.returncode}): {done.stderr[-1500:]}")
    rows = json.loads(done.stdout)
    result: dict[str, Any] = {"command": " ".join(cmd)}
    for row in rows:
        kind = "pp" if row.get("n_gen", 0) == 0 else "tg"
        result[f"{kind}_tokens_per_s"] = row["avg_ts"]
        result[f"{kind}_stddev"] = row.get("stddev_ts")
        result[f"{kind}_samples"] = row.get("samples_ts")
        result["build_commit"] = row.get("build_commit")
        result["cpu_info"] = row.get("cpu_info")
    return result
