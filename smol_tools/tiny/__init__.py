"""The tiny offline model: the demo's answer when the Hub cannot be reached, and the model the
scripted examples replay on.

Its GGUF ships inside the package (`SHIPPED_GGUF`, package data), so an installed wheel answers
offline with no torch and no training. The model is built from source by the test suite
(devkit/tiny_model.py trains it, devkit/tiny_gguf.py converts and quantizes it);
`python -m devkit.ship_tiny` (from a checkout, test profile) rebuilds the shipped file,
and tests/test_tiny_shipped.py proves the shipped file reproduces every scripted turn greedily.
Everything about the model that runtime code needs is here: the file, its context size, and its
scripted conversations (`smol_tools.tiny.scripted`).
"""

from __future__ import annotations

from pathlib import Path

TINY_N_CTX = 4096  # the tiny model's trained context: the one place this figure lives
SHIPPED_QUANT = "Q3_K_M"  # the smallest quant that reproduces every scripted turn (Q3_K_S does not)
PACKAGE_DIR = Path(__file__).resolve().parent
SHIPPED_GGUF = PACKAGE_DIR / f"tiny-smol-tools-{SHIPPED_QUANT.lower()}.gguf"


class TinyModelUnavailable(RuntimeError):
    """The asked-for tiny model file is not in this installation."""


def tiny_gguf(quant: str | None = None) -> Path:
    """The shipped tiny GGUF. Only `SHIPPED_QUANT` ships; other quants are built by the test
    fixtures from a checkout (devkit/tiny_gguf.py) and loaded by path."""
    wanted = (quant or SHIPPED_QUANT).upper()
    if wanted != SHIPPED_QUANT:
        raise TinyModelUnavailable(
            f"the tiny model ships as {SHIPPED_QUANT} only (asked for {wanted}); build other quants from a "
            "checkout (devkit/tiny_gguf.py) and give the .gguf path")
    if not SHIPPED_GGUF.is_file():
        raise TinyModelUnavailable(
            f"the tiny model's GGUF is missing from this installation ({SHIPPED_GGUF}); reinstall smol-tools, "
            "or from a checkout run `python -m devkit.ship_tiny`")
    return SHIPPED_GGUF
