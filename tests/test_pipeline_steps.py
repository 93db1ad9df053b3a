"""Convert/quantize building blocks: atomic outputs, MTP detection, clear errors."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from smol_tools.pipeline.atomic import atomic_output
from smol_tools.pipeline.convert import ConversionError, checkpoint_has_mtp, convert_to_gguf
from smol_tools.pipeline.quantize import QuantizationError, hub_file_name, quant_types, quantize_gguf


def _write_safetensors_header(path: Path, names: list[str]) -> None:
    header = {name: {"dtype": "F32", "shape": [1], "data_offsets": [4 * i, 4 * i + 4]}
              for i, name in enumerate(names)}
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + b"\0" * 4 * len(names))


def test_atomic_output_publishes_only_on_success(tmp_path: Path) -> None:
    final = tmp_path / "model.gguf"
    with pytest.raises(RuntimeError):
        with atomic_output(final) as partial:
            partial.write_bytes(b"half")
            raise RuntimeError("killed mid-write")
    assert not final.exists()
    assert list(tmp_path.iterdir()) == []  # the partial file is gone too
    with atomic_output(final) as partial:
        partial.write_bytes(b"whole")
    assert final.read_bytes() == b"whole"


def test_mtp_detection(tmp_path: Path) -> None:
    _write_safetensors_header(tmp_path / "model.safetensors", ["model.embed_tokens.weight"])
    assert not checkpoint_has_mtp(tmp_path)
    _write_safetensors_header(tmp_path / "model.safetensors", ["model.embed_tokens.weight", "mtp.fc.weight"])
    assert checkpoint_has_mtp(tmp_path)


def test_convert_rejects_a_folder_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match="no config.json"):
        convert_to_gguf(tmp_path, tmp_path / "out.gguf", outtype="f16")
    with pytest.raises(ValueError, match="outtype"):
        convert_to_gguf(tmp_path, tmp_path / "out.gguf", outtype="q3")


def test_converter_failure_is_reported_and_leaves_no_file(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["NoSuchModel"]}))
    _write_safetensors_header(tmp_path / "model.safetensors", ["x"])
    out = tmp_path / "out" / "model.gguf"
    with pytest.raises(ConversionError, match="does not support the architecture 'NoSuchModel'"):
        convert_to_gguf(tmp_path, out, outtype="f16")
    assert not out.exists()
    assert list(out.parent.iterdir()) == []


def test_quant_names_and_hub_file_names() -> None:
    types = quant_types()
    for name in ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "IQ4_XS", "BF16"):
        assert name in types
    assert hub_file_name("smol-tools-4b-32k", "Q4_K_M") == "smol-tools-4b-32k-q4_k_m.gguf"


def test_quantize_errors_are_clear(tmp_path: Path, tiny_gguf_f16: Path) -> None:
    with pytest.raises(QuantizationError, match="unknown quant type"):
        quantize_gguf(tiny_gguf_f16, tmp_path / "x.gguf", "Q9_9")
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF not really")
    with pytest.raises(QuantizationError, match="failed"):
        quantize_gguf(broken, tmp_path / "y.gguf", "Q8_0")
    assert not (tmp_path / "y.gguf").exists()


def test_quantize_q4_k_m_applies_k_quants(tmp_path: Path, tiny_gguf_f16: Path) -> None:
    from gguf import GGUFReader

    result = quantize_gguf(tiny_gguf_f16, tmp_path / "tiny-q4_k_m.gguf", "Q4_K_M")
    types = {t.tensor_type.name for t in GGUFReader(result.path).tensors}
    assert "Q4_K" in types  # widths are multiples of 256, so no fallback to Q5_0/Q8_0
    assert result.size_bytes < tiny_gguf_f16.stat().st_size / 2
