"""Model selection: local files, Hub repo + quant naming, and a clear error offline."""

from __future__ import annotations

from pathlib import Path

import pytest

from smol_tools.model_source import ModelSourceError, pick_quant_file, resolve_gguf


def test_local_file_and_missing_file(tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve_gguf(str(gguf)) == gguf
    with pytest.raises(ModelSourceError, match="no GGUF file"):
        resolve_gguf(str(tmp_path / "missing.gguf"))
    with pytest.raises(ModelSourceError, match="neither a GGUF file nor a Hub repo"):
        resolve_gguf("not a model")


def test_quant_file_follows_hub_naming() -> None:
    files = ["README.md", "smol-tools-4b-32k-q8_0.gguf", "smol-tools-4b-32k-q4_k_m.gguf"]
    assert pick_quant_file(files, "Q4_K_M") == "smol-tools-4b-32k-q4_k_m.gguf"
    with pytest.raises(ModelSourceError, match="no IQ4_XS GGUF"):
        pick_quant_file(files, "IQ4_XS")


def test_unreachable_hub_is_a_clear_error(monkeypatch, tmp_path: Path) -> None:
    # No network here: the Hub call fails, and the message says what could not be fetched.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(ModelSourceError, match="could not download Q8_0 from enfuse/smol-tools-4b-32k-GGUF"):
        resolve_gguf("enfuse/smol-tools-4b-32k-GGUF:Q8_0")
