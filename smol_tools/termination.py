"""SIGTERM and SIGHUP end a command by unwinding it, as an error would, instead of killing it.

Their default action ends the process at once: no `finally` block and no atexit hook runs, so a
llama-server the command started (`chat` on the managed backend, `render --engine llama-server`)
would keep running with its model in memory. `kill`, systemd and `docker stop` send SIGTERM;
closing the terminal a `smol-tools chat` runs in sends SIGHUP.

SystemExit rather than KeyboardInterrupt: the chat loop reads Ctrl-C as "stop this answer" and
goes on, and a termination must not be taken for that.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

TERMINATING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _exit_for(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # the shell's status for "ended by signal N"


def unwind_on_termination() -> None:
    """Make SIGTERM and SIGHUP raise SystemExit(128 + N) in the main thread. Python lets only the
    main thread install handlers; called from another one (an embedding program), it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        return
    for number in TERMINATING_SIGNALS:
        signal.signal(number, _exit_for)
