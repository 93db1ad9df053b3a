"""HTML to text on adversarial inputs up to the 1 MB response cap: is it linear?

`python -m bench.bench_html_text [--quick]` times `smol_tools.tools.html_text.html_to_text` on
each shape repeated to 62 KB, 250 KB and 1 MB (fastest of 3 runs) and prints, per shape, the
seconds per MB and the growth from 250 KB to 1 MB (4.0 is linear; 16 is quadratic). The
anchor is the stdlib `html.parser` doing the same walk (what get_webpage used before), timed
only at sizes where it stays under a few seconds, to show the quadratic shapes.
"""

from __future__ import annotations

import argparse
import sys
import time
from html.parser import HTMLParser

from smol_tools.tools.html_text import html_to_text

SHAPES = {
    "unclosed start tags `<a `": "<a ",
    "unclosed quoted value `<a x=\"`": '<a x="',
    "end-tag openers `</`": "</",
    "unclosed comments `<!--`": "<!--",
    "deep nesting `<div>`": "<div>",
    "deep skipped nesting `<svg>`": "<svg>",
    "unclosed raw text `<script>`": "<script>",
    "false end tags `</script`": "<script></script",
    "character references `&amp;`": "&amp;",
    "a real-looking page": '<div class="c"><p>Some <b>text</b> &amp; <a href="/x?a=1">a link</a></p></div>\n',
}
SIZES = (62_500, 250_000, 1_000_000)


class _StdlibWalk(HTMLParser):
    """The anchor: html.parser visiting every token, as the old extractor did."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []

    def handle_data(self, data: str) -> None:
        self.pieces.append(data)


def _stdlib(text: str) -> None:
    parser = _StdlibWalk()
    parser.feed(text)
    parser.close()


def _best(function, text: str, runs: int) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        function(text)
        timings.append(time.perf_counter() - started)
    return min(timings)


def measure(quick: bool = False) -> list[dict]:
    runs = 1 if quick else 3
    rows = []
    for label, unit in SHAPES.items():
        row: dict = {"shape": label, "seconds": {}, "stdlib_seconds": {}}
        for size in SIZES:
            text = (unit * (size // len(unit) + 1))[:size]
            row["seconds"][size] = _best(lambda t: html_to_text(t), text, runs)
        # The anchor only where it stays short: at 62 KB the quadratic shapes already show.
        small = (unit * (SIZES[0] // len(unit) + 1))[: SIZES[0] // 4]
        row["stdlib_seconds"][len(small)] = _best(_stdlib, small, 1)
        doubled = small * 2
        row["stdlib_seconds"][len(doubled)] = _best(_stdlib, doubled, 1)
        rows.append(row)
    return rows


def to_markdown(rows: list[dict]) -> str:
    lines = [
        "| shape | 62 KB s | 250 KB s | 1 MB s | growth 250 KB → 1 MB (4 = linear) | stdlib html.parser: 15.6 KB → 31 KB s |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        s = row["seconds"]
        growth = s[SIZES[2]] / max(s[SIZES[1]], 1e-6)
        small, doubled = sorted(row["stdlib_seconds"])
        lines.append(
            f"| {row['shape']} | {s[SIZES[0]]:.3f} | {s[SIZES[1]]:.3f} | {s[SIZES[2]]:.3f} | {growth:.1f} | "
            f"{row['stdlib_seconds'][small]:.3f} → {row['stdlib_seconds'][doubled]:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_html_text", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one run per size instead of the best of 3")
    args = parser.parse_args(argv)
    print(to_markdown(measure(args.quick)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
