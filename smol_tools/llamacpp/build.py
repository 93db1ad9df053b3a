"""Build llama.cpp's programs (llama-server, llama-quantize, llama-imatrix) from the source tree
vendored in the pinned llama-cpp-python sdist, offline, once per version; cached under
~/.cache/smol-tools/llama.cpp-bin/<version>-<options hash>/bin/.

Run directly to build: `python -m smol_tools.llamacpp.build`.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .source import CACHE_ROOT, llama_cpp_dir, llama_cpp_python_version

PROGRAMS = ("llama-server", "llama-quantize", "llama-imatrix")
CMAKE_OPTIONS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DGGML_NATIVE=OFF",  # portable binaries: the cache may move between machines of the fleet
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",  # would download the web UI: no network here, not needed
    "-DLLAMA_OPENSSL=OFF",
)


class LlamaCppBuildError(RuntimeError):
    """CMake failed; the message carries the tail of its log."""


def _build_dir(version: str) -> Path:
    key = hashlib.sha256("\n".join(CMAKE_OPTIONS + PROGRAMS).encode()).hexdigest()[:10]
    return CACHE_ROOT / "llama.cpp-bin" / f"{version}-{key}"


def program_path(name: str, version: str | None = None) -> Path:
    return _build_dir(version or llama_cpp_python_version()) / "bin" / name


def ensure_llama_programs(version: str | None = None, log=print) -> Path:
    """Return the folder holding the built programs, building them on first use."""
    version = version or llama_cpp_python_version()
    final = _build_dir(version)
    if _complete(final):
        return final / "bin"
    final.parent.mkdir(parents=True, exist_ok=True)
    # One builder per machine: two processes building at once (parallel tests, an app and a
    # test) both ran CMake and replaced each other's folder. The second waits, then finds it built.
    with open(final.parent / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _complete(final):
            _build_into(final, version, log)
    return final / "bin"


def _complete(final: Path) -> bool:
    return all((final / "bin" / name).exists() for name in PROGRAMS)


def _build_into(final: Path, version: str, log) -> None:
    # Build in a sibling temp folder and rename: an interrupted build never looks finished.
    source = llama_cpp_dir(version)
    staging = Path(tempfile.mkdtemp(prefix=".build-", dir=final.parent))
    started = time.monotonic()
    try:
        work = staging / "cmake"
        jobs = str(os.cpu_count() or 2)
        log(f"building {', '.join(PROGRAMS)} from llama.cpp {version} (several minutes, once)")
        for cmd in (["cmake", "-S", str(source), "-B", str(work), *CMAKE_OPTIONS],
                    ["cmake", "--build", str(work), "-j", jobs, "--target", *PROGRAMS]):
            result = subprocess.run(cmd, capture_output=True, text=True)
            if result.returncode != 0:
                raise LlamaCppBuildError(
                    f"{' '.join(cmd[:3])} failed:\n{(result.stdout + result.stderr)[-4000:]}")
        (staging / "bin").mkdir()
        for name in PROGRAMS:
            shutil.copy2(work / "bin" / name, staging / "bin" / name)
        shutil.rmtree(work)
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log(f"built in {time.monotonic() - started:.0f}s: {final / 'bin'}")


if __name__ == "__main__":
    print(ensure_llama_programs())
    sys.exit(0)
