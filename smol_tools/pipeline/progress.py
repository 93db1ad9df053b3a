"""One line per step (elapsed time, what, size, step time) and plain-text tables."""

from __future__ import annotations

import sys
import time
from typing import Sequence, TextIO


def human_size(n: int | float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


class Progress:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def step(self, name: str, detail: str, *, seconds: float | None = None,
             size: int | None = None) -> None:
        parts = [f"[{self.elapsed():7.1f}s]", f"{name:<10}", detail]
        if size is not None:
            parts.append(human_size(size))
        if seconds is not None:
            parts.append(f"({seconds:.1f}s)")
        print("  ".join(parts), file=self.stream, flush=True)
