"""Start and stop a real `llama-server` on 127.0.0.1 (built from the vendored llama.cpp)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .build import ensure_llama_programs
from .mapping import use_mmap_for


# Context checkpoints: llama-server's saved recurrent states for hybrid models, whose
# linear-attention layers cannot be rolled back. It takes two per request (where the request's
# new tokens start, and 4 tokens before the prompt's end); when a new user query re-renders the
# previous exchange without its reasoning, the one 4 tokens before the end of that exchange's
# first prompt is where it resumes. With the default `--checkpoint-min-step 8192`, a full list
# (`--ctx-checkpoints`, 32) is thinned to checkpoints 8192 tokens apart, which deletes that one
# with all but the oldest; 0 makes the list first-in-first-out, so it survives while a query takes fewer than
# about 15 tool rounds (bench/bench_checkpoints.py measures both with a 12-checkpoint list).
CHECKPOINT_ARGS: tuple[str, ...] = ("--checkpoint-min-step", "0")


class LlamaServerError(RuntimeError):
    """llama-server did not start or answered with an error."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LlamaServer:
    """A llama-server process serving one GGUF with `--jinja` (the embedded chat template) and
    CHECKPOINT_ARGS; `extra_args` come last, so they can override them."""

    model: Path
    binary: Path | None = None
    ctx_size: int = 4096
    extra_args: Sequence[str] = ()
    threads: int | None = None  # None: every core
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    _log: Any = None

    def mapping_args(self) -> list[str]:
        """`--load-mode none` (this llama.cpp's spelling of the older `--no-mmap`) where the CPU
        backend would repack most weights (mapping.py), unless the caller chose with `extra_args`."""
        if {"--load-mode", "-lm", "--mmap", "--no-mmap"} & set(self.extra_args):
            return []
        return [] if use_mmap_for(Path(self.model)) else ["--load-mode", "none"]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> "LlamaServer":
        if self.binary is None:
            self.binary = ensure_llama_programs() / "llama-server"
        self._log = tempfile.NamedTemporaryFile(prefix="llama-server-", suffix=".log", delete=False)
        cmd = [str(self.binary), "-m", str(self.model), "--host", "127.0.0.1",
               "--port", str(self.port), "--jinja", "-c", str(self.ctx_size),
               "--threads", str(self.threads or os.cpu_count() or 2), *CHECKPOINT_ARGS, *self.mapping_args(),
               *self.extra_args]
        self.process = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LlamaServerError(f"llama-server exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/health", timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        self.stop()
        raise LlamaServerError(f"llama-server not healthy after {timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        if self._log is None:
            return ""
        return Path(self._log.name).read_text(errors="replace")[-chars:]

    def post(self, path: str, payload: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
        request = urllib.request.Request(f"{self.base_url}{path}", data=json.dumps(payload).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise LlamaServerError(f"{path}: HTTP {exc.code}: {exc.read().decode(errors='replace')}") from exc

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
            Path(self._log.name).unlink(missing_ok=True)
            self._log = None

    def __enter__(self) -> "LlamaServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
