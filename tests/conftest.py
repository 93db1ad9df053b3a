"""Shared fixtures: the tiny model and its GGUFs are built once per machine and cached."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smol_tools.pipeline.settings import CORPUS_PATH as RENDER_CORPUS_PATH
from devkit.tiny_gguf import ensure_tiny_gguf
from devkit.tiny_model import TinyModel, ensure_tiny_model

ROOT = Path(__file__).resolve().parent.parent
CORPUS_PATH = RENDER_CORPUS_PATH  # package data: the drift check renders it too


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


@pytest.fixture(scope="session")
def tiny_llama_server(tiny_gguf_f16):
    """A real llama-server (built from the vendored llama.cpp) serving the tiny F16 GGUF with
    --jinja. --no-prefill-assistant makes a trailing assistant message render as a finished
    turn (what transformers does) instead of a prefix to continue."""
    from smol_tools.llamacpp.server import LlamaServer

    with LlamaServer(tiny_gguf_f16, extra_args=["--no-prefill-assistant"]) as server:
        yield server
