"""Suites by name: a suite file (default smol_tools/eval/suite.json) or `tiny`, the tiny model's
scripted suite. Above both loaders, so suite.py (the format) never imports scripted.py."""

from __future__ import annotations

from pathlib import Path

from .scripted import tiny_suite
from .suite import Suite, load_suite_file


def load_suite(path: str | Path | None = None, *, validate: bool = True) -> Suite:
    """Load a suite file (default: smol_tools/eval/suite.json); `tiny` names the tiny-model scripted suite."""
    if str(path) == "tiny":
        return tiny_suite()
    return load_suite_file(path, validate=validate)
