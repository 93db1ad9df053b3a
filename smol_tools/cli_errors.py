"""How the command line fails: one line on stderr that names the fix, and an exit status that
tells a script what went wrong (2: the command was used wrongly, 1: the job itself failed).
A traceback is for the person fixing smol-tools, so it appears only with `--debug` or
SMOL_TOOLS_DEBUG=1."""

from __future__ import annotations

import os

USAGE = 2  # bad usage: a missing file, bad JSON, a wrong shape, an unknown option value
FAILED = 1  # the job failed: a server down, a download refused, a model that will not load


class CliError(Exception):
    """A failure the user can act on; `code` is the exit status."""

    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message)
        self.code = code


class UsageError(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(message, USAGE)


def debug_enabled(flag: bool = False) -> bool:
    return flag or (os.environ.get("SMOL_TOOLS_DEBUG") or "").strip().lower() in {"1", "true", "yes", "on"}


def one_line(exc: BaseException, limit: int = 600) -> str:
    """The exception as one readable line (no class name when the message says it all)."""
    text = " ".join(str(exc).split())
    if not text:
        return type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
