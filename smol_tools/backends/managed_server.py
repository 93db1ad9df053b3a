""""llama-server, managed": the app starts and supervises its own llama-server (our built binary,
the GGUF, N parallel slots) and talks to it with the token backend, so a shared demo decodes
several sessions at once without anyone running a server by hand.

The server starts on first use (not when the backend is chosen: a connection test must not load
a model), listens on 127.0.0.1 only, and is started again if it dies; sessions keep their
histories (their next round is evaluated in full on the new process). It stops with the app.

    SMOL_TOOLS_SERVER_SLOTS    parallel slots (-np), default 4
    SMOL_TOOLS_SERVER_THREADS  CPU threads (default: every core)
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from ..chat_format import load_params
from ..events import TurnEvent
from ..llamacpp.server import LlamaServer, LlamaServerError
from .base import BackendError, BackendStatus, CancelToken, SamplingParams
from .llama_server_tokens import LlamaServerTokensBackend

log = logging.getLogger(__name__)
DEFAULT_SLOTS = 4


def _env_int(name: str, default: int | None) -> int | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise BackendError(f"{name}={value!r} is not an integer") from None
    if number < 1:
        raise BackendError(f"{name}={number} must be at least 1")
    return number


class ManagedLlamaServerBackend(LlamaServerTokensBackend):
    name = "llama-server, managed"

    def __init__(self, gguf: Path, *, slots: int | None = None, context_length: int | None = None,
                 threads: int | None = None, binary: Path | None = None) -> None:
        slots = slots or _env_int("SMOL_TOOLS_SERVER_SLOTS", DEFAULT_SLOTS) or DEFAULT_SLOTS
        per_slot = context_length or load_params().context_length
        threads = threads or _env_int("SMOL_TOOLS_SERVER_THREADS", None)
        # -c is shared by the slots: each session gets the full context it would get alone.
        self.server = LlamaServer(Path(gguf), binary=binary, ctx_size=per_slot * slots, threads=threads,
                                  extra_args=["-np", str(slots)])
        super().__init__(self.server.base_url, context_length=per_slot, slots=slots)
        self.restarts = 0
        self._start_lock = threading.Lock()
        atexit.register(self.close)

    # -- supervision ------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.server.process is not None and self.server.process.poll() is None

    def _ensure_running(self) -> None:
        with self._start_lock:
            if self.running:
                return
            if self.server.process is not None:  # it was running and died: start it again
                log.warning("managed llama-server exited with %s; starting it again", self.server.process.returncode)
                self.server.stop()
                self.restarts += 1
                with self._lock:
                    self._slot_of.clear()
                    self._busy.clear()
            try:
                self.server.start()
            except (LlamaServerError, OSError) as exc:
                self.server.process = None
                raise BackendError(f"could not start llama-server on {self.server.model.name}: {exc}") from exc

    def close(self) -> None:
        self.server.stop()

    # -- Backend ----------------------------------------------------------------------------
    def check(self) -> BackendStatus:
        if not self.running and self.server.process is None:
            return BackendStatus(True, f"llama-server, managed: starts on first use with {self.slots} slots "
                                       f"on {self.server.model.name}", {"slots": self.slots})
        self._ensure_running()
        status = super().check()
        return BackendStatus(status.ok, f"{status.message}; managed, {self.slots} slots, "
                                        f"{self.restarts} restart(s)", {**(status.details or {}), "slots": self.slots})

    def count_tokens(self, text: str) -> int:
        self._ensure_running()
        return super().count_tokens(text)

    def count_prompt_tokens(self, messages: Sequence[Mapping[str, Any]],
                            tools: Sequence[Mapping[str, Any]] | None = None, *,
                            enable_thinking: bool = True, session_id: str = "default") -> int:
        self._ensure_running()
        return super().count_prompt_tokens(messages, tools, enable_thinking=enable_thinking, session_id=session_id)

    def stream_turn(self, messages: Sequence[Mapping[str, Any]],
                    tools: Sequence[Mapping[str, Any]] | None = None, *,
                    sampling: SamplingParams | None = None, enable_thinking: bool = True,
                    session_id: str = "default", cancel: CancelToken | None = None) -> Iterator[TurnEvent]:
        self._ensure_running()
        yield from super().stream_turn(messages, tools, sampling=sampling, enable_thinking=enable_thinking,
                                       session_id=session_id, cancel=cancel)
