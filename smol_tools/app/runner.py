"""Run one agent turn on a worker thread and hand its progress to whoever renders it.

Why a thread: the agent asks for manual tool results through a blocking callback, and while it
waits the UI must still show the pending call and accept the typed result (another event).
And the worker always runs the turn to its end (or to a Stop), so a closed browser tab never
leaves the shared in-process model locked halfway through a generator."""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from ..events import AgentFinished
from ..backends.base import CancelToken
from ..chat_session import ChatSession
from .transcript import TurnBuilder, TurnRecord

log = logging.getLogger(__name__)
MANUAL_TIMEOUT_S = 600.0  # a result nobody types must not hold a worker forever


@dataclass
class ManualRequest:
    name: str
    arguments: dict[str, Any]
    answered: threading.Event = field(default_factory=threading.Event)
    result: str = ""


class TurnRunner:
    """One turn in flight. The worker folds events into the turn record itself (under a lock),
    so the record is complete even if nobody is watching; watchers read copies."""

    def __init__(self, chat: ChatSession, text: str,
                 on_finish: Callable[[TurnRecord], None] | None = None) -> None:
        self.chat = chat
        self.text = text
        self.on_finish = on_finish
        self.cancel = CancelToken()
        self.finished = threading.Event()
        self._builder = TurnBuilder(text)
        self._lock = threading.Lock()
        self._changed = threading.Event()
        self._pending: list[ManualRequest] = []
        self._thread = threading.Thread(target=self._work, name="smol-tools-turn", daemon=True)

    def start(self) -> "TurnRunner":
        self._thread.start()
        return self

    def snapshot(self) -> TurnRecord:
        with self._lock:
            return copy.deepcopy(self._builder.turn)

    def _apply(self, event: Any) -> None:
        with self._lock:
            self._builder.apply(event)
        self._changed.set()

    def _work(self) -> None:
        try:
            for event in self.chat.send(self.text, cancel=self.cancel, manual=self._manual):
                self._apply(event)
        except Exception as exc:  # a bug below must end the turn visibly, not hang the UI
            log.exception("turn failed")
            self._apply(AgentFinished("error", f"internal error: {type(exc).__name__}: {exc}"))
        finally:
            with self._lock:
                if self._builder.turn.finish_reason is None:
                    self._builder.apply(AgentFinished("error", "the turn ended without a result"))
                final = copy.deepcopy(self._builder.turn)
            if self.on_finish is not None:
                self.on_finish(final)
            self.finished.set()
            self._changed.set()

    # -- manual tool results -------------------------------------------------------------------
    def _manual(self, name: str, arguments: dict[str, Any]) -> str:
        request = ManualRequest(name, arguments)
        with self._lock:
            self._pending.append(request)
            self._builder.waiting_for_manual(name, arguments)
        self._changed.set()
        deadline = time.monotonic() + MANUAL_TIMEOUT_S
        while not request.answered.wait(0.2):
            if self.cancel.cancelled or time.monotonic() > deadline:
                with self._lock:
                    if request in self._pending:
                        self._pending.remove(request)
                why = "stopped by the user" if self.cancel.cancelled else "no result was typed in time"
                return json.dumps({"error": f"{name}: {why}"})
        return request.result

    @property
    def pending_manual(self) -> ManualRequest | None:
        with self._lock:
            return self._pending[0] if self._pending else None

    def submit_manual(self, result: str) -> ManualRequest | None:
        """Answer the oldest waiting call; None when nothing waits."""
        with self._lock:
            if not self._pending:
                return None
            request = self._pending.pop(0)
        request.result = result
        request.answered.set()
        return request

    def stop(self) -> None:
        self.cancel.cancel()

    # -- progress ------------------------------------------------------------------------------
    def updates(self, interval: float = 0.1) -> Iterator[TurnRecord]:
        """Copies of the turn as it changes, at most one per `interval`, the last one complete.
        Closing this early (the browser went away) stops the turn."""
        try:
            while not self.finished.is_set():
                if self._changed.wait(timeout=1.0):
                    time.sleep(interval)  # let a burst of tokens accumulate into one update
                    self._changed.clear()
                    if not self.finished.is_set():
                        yield self.snapshot()
            self._thread.join()
            yield self.snapshot()
        finally:
            if not self.finished.is_set():
                self.cancel.cancel()

    def wait(self) -> TurnRecord:
        self.finished.wait()
        self._thread.join()
        return self.snapshot()
