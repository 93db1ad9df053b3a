"""The tiny offline model: the demo's answer when the Hub cannot be reached, and the test
suite's model. It is trained from tests/fixtures on first use (a repository checkout with the
test profile installed); this is the one place runtime code reaches for it."""

from __future__ import annotations

from pathlib import Path

TINY_N_CTX = 4096  # the tiny model's trained context


class TinyModelUnavailable(RuntimeError):
    """The tiny model cannot be built here (no repository checkout, or no torch)."""


def tiny_gguf(quant: str = "Q8_0") -> Path:
    """The tiny model's GGUF for `quant`, built and cached once per machine."""
    try:
        from tests.fixtures.tiny_gguf import ensure_tiny_gguf  # repository checkout only
    except ImportError as exc:
        raise TinyModelUnavailable(
            "the tiny offline model is built from the repository's tests/fixtures, which this "
            f"installation does not have ({exc}); run from a checkout or give a .gguf path") from exc
    return ensure_tiny_gguf(quant)
