"""Run llama.cpp programs as child processes that cannot outlive the pipeline.

If the pipeline is killed (SIGKILL, OOM), an orphaned `llama-quantize` would go on writing its
`.partial` file while a `--resume` run writes the same one. PR_SET_PDEATHSIG makes the kernel
kill the child when its parent dies, so a resumed build never races a ghost.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """`preexec_fn` for any child the pipeline starts: the kernel kills it when the pipeline dies."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: best effort only
        pass


@dataclass(frozen=True)
class ChildResult:
    returncode: int
    seconds: float
    peak_rss_kib: int  # the child's peak resident set size (getrusage ru_maxrss)
    log: str  # combined stdout/stderr

    def tail(self, chars: int = 3000) -> str:
        return self.log[-chars:]


def relative_to(path: Path, cwd: Path | None) -> str:
    """`path` as the child should see it: relative to its working directory when given, so
    the names llama.cpp records in metadata (imatrix file, dataset) carry no local folders."""
    return os.path.relpath(path, cwd) if cwd is not None else str(path)


def run_child(cmd: Sequence[str | os.PathLike[str]], log_path: Path | None = None,
              env: dict[str, str] | None = None, cwd: Path | None = None) -> ChildResult:
    """Run `cmd`, capturing its output (also to `log_path`), measuring time and peak RSS."""
    started = time.monotonic()
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path or os.devnull, "wb") as sink:
        process = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, preexec_fn=die_with_parent, env=env,
                                   cwd=cwd)
        assert process.stdout is not None
        chunks = []
        for block in iter(lambda: process.stdout.read1(1 << 16), b""):
            chunks.append(block)
            sink.write(block)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    return ChildResult(process.returncode, time.monotonic() - started, int(usage.ru_maxrss),
                       b"".join(chunks).decode("utf-8", errors="replace"))
