"""Packaging defaults from `smol_tools/pipeline/data/config.toml` (package data, so an installed
wheel packages too): the model's facts live there, not in code."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"  # package data: ships in the wheel
CONFIG_PATH = DATA_DIR / "config.toml"
CALIBRATION_PATH = DATA_DIR / "calibration" / "conversations.json"
# The render corpus is the one the tests prove parity on; the drift check reuses it as-is.
CORPUS_PATH = DATA_DIR / "render_corpus.json"  # the drift check renders it; tests use it too


@dataclass(frozen=True)
class PackagingConfig:
    name: str
    source: str
    repo_id: str
    base_model: str
    license: str
    quantized_by: str
    pipeline_tag: str
    tags: tuple[str, ...]
    quants: tuple[str, ...]
    imatrix_types: tuple[str, ...]
    imatrix_ctx: int
    imatrix_chunks: int
    allow_patterns: tuple[str, ...]
    memory_contexts: tuple[int, ...]


def load_config(path: Path = CONFIG_PATH) -> PackagingConfig:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    model, build = raw["model"], raw["build"]
    return PackagingConfig(
        name=model["name"], source=model["source"], repo_id=model["repo_id"],
        base_model=model["base_model"], license=model["license"],
        quantized_by=model["quantized_by"], pipeline_tag=model["pipeline_tag"],
        tags=tuple(model["tags"]),
        quants=tuple(q.upper() for q in build["quants"]),
        imatrix_types=tuple(q.upper() for q in build["imatrix_types"]),
        imatrix_ctx=int(build["imatrix_ctx"]), imatrix_chunks=int(build["imatrix_chunks"]),
        allow_patterns=tuple(build["allow_patterns"]),
        memory_contexts=tuple(int(c) for c in build["memory_contexts"]),
    )
