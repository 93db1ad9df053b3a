"""Sampling defaults travel inside the GGUF (issue 19 §3).

The packaging pipeline's metadata step (`pipeline.metadata.fix_metadata`) writes the
`general.sampling.*` keys llama.cpp reads (common/common.cpp, `common_init_sampler_from_model`;
key names in src/llama-arch.cpp) from templates/params.json. Checked here on a copy of the tiny
F16 GGUF: the keys are there, `doctor` no longer warns about them, a second check finds nothing
to fix, and a real llama-server started with no sampling flags reports our values in `/props`."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from smol_tools.chat_format import load_params, load_template
from smol_tools.gguf_doctor import SAMPLING_KEYS, diagnose
from smol_tools.gguf_header import read_header
from smol_tools.llamacpp.server import LlamaServer
from smol_tools.pipeline.metadata import MetadataSpec, check_metadata, fix_metadata

SPEC = MetadataSpec(name="tiny-smol-tools", base_model="Qwen/Qwen3.5-4B", license="apache-2.0",
                    quantized_by="enfuse", chat_template=load_template())
# /props reports each sampling value under llama-server's own request name.
PROPS_NAME = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "min_p": "min_p",
              "repeat_penalty": "repeat_penalty"}


@pytest.fixture(scope="module")
def packaged(tiny_gguf_f16: Path, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sampling") / "tiny.gguf"
    shutil.copyfile(tiny_gguf_f16, path)
    fixed = {m.key for m in fix_metadata(path, SPEC)}
    assert {key for key, _ in SAMPLING_KEYS.values()} <= fixed  # the converter alone writes none
    return path


def test_pipeline_writes_the_keys_llama_cpp_reads(packaged: Path) -> None:
    header = read_header(packaged)
    sampling = load_params().sampling
    for name, (key, _) in SAMPLING_KEYS.items():
        assert header.get(key) == pytest.approx(sampling[name]), key
    assert isinstance(header.get("general.sampling.top_k"), int)  # llama.cpp reads it as int32
    # float32 storage (0.1 -> 0.100000001...) is not a difference: nothing left to fix.
    assert check_metadata(packaged, SPEC) == []
    report = diagnose(packaged)
    assert report.ok and not [w for w in report.warnings if "general.sampling" in w], report.warnings


def test_llama_server_without_sampling_flags_uses_the_files_defaults(packaged: Path, tiny_gguf_f16: Path) -> None:
    sampling = load_params().sampling
    with LlamaServer(tiny_gguf_f16, ctx_size=512) as plain:
        before = httpx.get(f"{plain.base_url}/props", timeout=30).json()["default_generation_settings"]["params"]
    # The unfixed file gets llama.cpp's own defaults (temperature 0.8), so the check below can fail.
    assert before["temperature"] != pytest.approx(sampling["temperature"])
    with LlamaServer(packaged, ctx_size=512) as server:
        params = httpx.get(f"{server.base_url}/props", timeout=30).json()["default_generation_settings"]["params"]
    for name, props_name in PROPS_NAME.items():
        assert params[props_name] == pytest.approx(sampling[name], abs=1e-6), name
