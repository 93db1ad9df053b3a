"""Write-then-rename helpers: a file only appears under its final name once it is complete."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_output(final: Path) -> Iterator[Path]:
    """Yield a temporary path next to `final`; rename it into place only on success.

    An interrupted step leaves at most a `.partial` file, which no later step mistakes for a
    finished artifact (they look for the final name only)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.with_name(f".{final.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        yield partial
        if not partial.exists():
            raise FileNotFoundError(f"step produced no output at {partial}")
        with open(partial, "rb") as handle:  # flush to disk before the rename publishes it
            os.fsync(handle.fileno())
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)
