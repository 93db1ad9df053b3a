"""Run one tool call under a hard deadline.

The call runs on a daemon thread of its own; the caller gets control back at the deadline
whether or not the tool has returned (a `ThreadPoolExecutor` would wait for it on shutdown).
Python cannot stop a thread, so the late call is abandoned; a tool that holds something worth
stopping (a sandboxed process) polls `cancel_requested()` and ends its work when it is set."""

from __future__ import annotations

import contextvars
import threading
from typing import Callable, TypeVar

T = TypeVar("T")

_cancel_event: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar(
    "smol_tools_tool_cancel", default=None
)


class ToolDeadlineExceeded(TimeoutError):
    """The call did not return before its deadline; it was abandoned and asked to stop."""


def cancel_requested() -> bool:
    """Whether the call running on this thread was abandoned by its caller."""
    event = _cancel_event.get()
    return event is not None and event.is_set()


def current_cancel_event() -> threading.Event | None:
    """The event set when the current call is abandoned (None outside `call_with_deadline`)."""
    return _cancel_event.get()


def call_with_deadline(function: Callable[[], T], timeout_s: float, *, name: str = "tool") -> T:
    """`function()`, or ToolDeadlineExceeded after `timeout_s` seconds (the call keeps running
    on its own thread, with its cancel event set, until it notices or finishes)."""
    cancel = threading.Event()
    finished = threading.Event()
    box: dict[str, object] = {}

    def target() -> None:
        _cancel_event.set(cancel)
        try:
            box["value"] = function()
        except BaseException as exc:  # handed to the caller, who decides what it means
            box["error"] = exc
        finally:
            finished.set()

    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(target,), name=f"smol-tools-{name}", daemon=True)
    thread.start()
    if not finished.wait(timeout_s):
        cancel.set()
        raise ToolDeadlineExceeded(f"{name} did not return within {timeout_s:g} s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]
