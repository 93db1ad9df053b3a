"""Shared fixtures: the tiny model and its GGUFs are built once per machine and cached."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures.tiny_gguf import ensure_tiny_gguf
from tests.fixtures.tiny_model import TinyModel, ensure_tiny_model

ROOT = Path(__file__).resolve().parent.parent
CORPUS_PATH = ROOT / "tests" / "corpus" / "render_corpus.json"


def render_corpus() -> list[dict]:
    return json.loads(CORPUS_PATH.read_text(encoding="utf-8"))["cases"]


@pytest.fixture(scope="session")
def tiny_model() -> TinyModel:
    return ensure_tiny_model()


@pytest.fixture(scope="session")
def tiny_gguf_f16(tiny_model) -> Path:
    return ensure_tiny_gguf("F16")


@pytest.fixture(scope="session")
def tiny_gguf_q8_0(tiny_model) -> Path:
    return ensure_tiny_gguf("Q8_0")
