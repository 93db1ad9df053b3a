"""The packaging pipeline's parts, without a model build: template drift, resume records,
fetching from the Hub (a recording stand-in for the network), llama-quantize's fallback log,
the memory formulas, the upload plan, the calibration set, the card and the CLI arguments."""

from __future__ import annotations

import argparse
import fnmatch
import json
import shutil
from pathlib import Path

import pytest

from smol_tools.chat_format import load_template
from smol_tools.pipeline.artifacts import FileReport
from smol_tools.pipeline.drift import (TemplateDriftError, check_template_drift, checkpoint_template,
                                       choose_template, load_corpus)
from smol_tools.pipeline.state import BuildState

DRIFTED = load_template().replace("within <tool_call></tool_call> XML tags", "inside <function=...> tags")


# ---- template drift ----------------------------------------------------------------------------

def test_identical_template_is_no_drift(tmp_path: Path) -> None:
    (tmp_path / "chat_template.jinja").write_text(load_template())
    report = check_template_drift(tmp_path)
    assert not report.drift and report.differences == [] and report.cases == len(load_corpus())
    assert choose_template(report, None) == (load_template(), "ours")


def test_drift_is_reported_and_must_be_chosen(tmp_path: Path) -> None:
    (tmp_path / "chat_template.jinja").write_text(DRIFTED)
    report = check_template_drift(tmp_path)
    assert report.drift and report.found_in == "chat_template.jinja"
    with_tools = {c["id"] for c in load_corpus() if c["tools"]}
    assert {d.case_id for d in report.differences} == with_tools  # only cases that list tools
    text = report.describe()
    assert "differs from ours on" in text and "<function=" in text
    with pytest.raises(TemplateDriftError, match="--template ours"):
        choose_template(report, None)
    assert choose_template(report, "ours") == (load_template(), "ours")
    assert choose_template(report, "checkpoint") == (DRIFTED, "checkpoint")


def test_checkpoint_template_sources(tmp_path: Path) -> None:
    assert checkpoint_template(tmp_path) == (None, None)
    report = check_template_drift(tmp_path)
    assert not report.drift and "no chat template" in report.summary()
    with pytest.raises(TemplateDriftError, match="ships no chat template"):
        choose_template(report, "checkpoint")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(
        {"chat_template": [{"name": "tool_use", "template": "x"}, {"name": "default", "template": DRIFTED}]}))
    assert checkpoint_template(tmp_path) == (DRIFTED, "tokenizer_config.json")
    (tmp_path / "chat_template.jinja").write_text(load_template())  # transformers prefers this file
    assert checkpoint_template(tmp_path) == (load_template(), "chat_template.jinja")


def test_a_template_that_fails_to_render_is_a_difference(tmp_path: Path) -> None:
    (tmp_path / "chat_template.jinja").write_text("{{ raise_exception('no tools here') if tools else 'x' }}")
    report = check_template_drift(tmp_path)
    failing = [d for d in report.differences if d.error]
    assert failing and "no tools here" in failing[0].describe()


# ---- resume records ----------------------------------------------------------------------------

def test_build_state_done_needs_file_record_params_and_size(tmp_path: Path) -> None:
    state = BuildState(tmp_path / "state.json")
    artifact = tmp_path / "a.gguf"
    params = {"quant": "Q4_K_M", "from": {"source": "x"}}
    assert not state.done("q", artifact, params)
    artifact.write_bytes(b"12345")
    assert not state.done("q", artifact, params)  # a file without a record is not trusted
    state.finish("q", artifact, params)
    assert state.done("q", artifact, params)
    assert not state.done("q", artifact, params | {"quant": "Q5_K_M"})
    reloaded = BuildState(tmp_path / "state.json")
    assert reloaded.done("q", artifact, params)
    artifact.write_bytes(b"123")  # replaced behind our back
    assert not reloaded.done("q", artifact, params)
    assert not BuildState(tmp_path / "state.json", fresh=True).done("q", artifact, params)
    assert not list(tmp_path.glob(".*partial"))


def test_sha256_is_cached_by_size_and_mtime(tmp_path: Path) -> None:
    import hashlib

    state = BuildState(tmp_path / "state.json")
    artifact = tmp_path / "f.bin"
    artifact.write_bytes(b"abc")
    assert state.sha256(artifact) == hashlib.sha256(b"abc").hexdigest()
    artifact.write_bytes(b"abcd")
    assert state.sha256(artifact) == hashlib.sha256(b"abcd").hexdigest()


# ---- fetching from the Hub ---------------------------------------------------------------------

class FakeHub:
    """A recording stand-in for the huggingface_hub calls the pipeline makes (no network here):
    `HfApi.model_info` resolves a revision to a commit, `snapshot_download` copies the files
    its allow_patterns select (fnmatch, as huggingface_hub filters) from a local folder,
    `create_repo` / `upload_folder` record what publishing would send."""

    def __init__(self, files: Path, shas: list[str]) -> None:
        self.files, self.shas, self.calls = files, list(shas), []

    def model_info(self, repo_id, revision=None):
        self.calls.append(("model_info", repo_id, revision))
        return type("Info", (), {"sha": self.shas.pop(0)})()

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs["repo_id"], kwargs))
        return type("CommitInfo", (), {"commit_url": f"https://huggingface.co/{kwargs['repo_id']}/commit/1"})()

    def snapshot_download(self, repo_id, *, revision, local_dir, allow_patterns):
        self.calls.append(("snapshot_download", repo_id, revision, tuple(allow_patterns)))
        Path(local_dir).mkdir(parents=True, exist_ok=True)
        for item in self.files.iterdir():
            if any(fnmatch.fnmatch(item.name, p) for p in allow_patterns):
                shutil.copy2(item, Path(local_dir) / item.name)
                meta = Path(local_dir) / ".cache" / "huggingface" / "download" / f"{item.name}.metadata"
                meta.parent.mkdir(parents=True, exist_ok=True)
                meta.write_text(revision)
        return str(local_dir)


def test_fetch_pins_the_revision_and_downloads_only_what_conversion_needs(tiny_model, tmp_path, monkeypatch) -> None:
    import huggingface_hub

    from smol_tools.pipeline.fetch import drop_weights, fetch_source
    from smol_tools.pipeline.settings import load_config

    hub = FakeHub(tiny_model.path, ["a" * 40, "b" * 40])
    monkeypatch.setattr(huggingface_hub, "snapshot_download", hub.snapshot_download)
    patterns = load_config().allow_patterns
    info = fetch_source("owner/model", tmp_path / "src", allow_patterns=patterns, api=hub)
    assert info.kind == "hub" and info.revision == "a" * 40
    assert hub.calls[0] == ("model_info", "owner/model", "main")
    assert hub.calls[1][2] == "a" * 40 and "*.safetensors" in hub.calls[1][3]
    assert "build_report.json" not in info.files and "model.safetensors" in info.files
    manifest = info.manifest()
    assert manifest["revision"] == "a" * 40 and manifest["url"].endswith("/tree/" + "a" * 40)
    assert info.fingerprint == f"hub:owner/model@{'a' * 40}"

    # Resume: the recorded commit wins even though "main" has moved on (sha "b..." unused);
    # the weights are not fetched again once conversion is done.
    freed = drop_weights(info)
    assert freed > 0 and not (tmp_path / "src" / "model.safetensors").exists()
    assert not list((tmp_path / "src" / ".cache").rglob("model.safetensors.*"))
    again = fetch_source("owner/model", tmp_path / "src", pinned="a" * 40, allow_patterns=patterns,
                         with_weights=False, api=hub)
    assert again.revision == "a" * 40 and hub.calls[-1][0] == "snapshot_download"
    assert "*.safetensors" not in hub.calls[-1][3] and "model.safetensors" not in again.files
    assert len([c for c in hub.calls if c[0] == "model_info"]) == 1


def test_a_local_source_is_used_in_place_and_never_dropped(tiny_model) -> None:
    from smol_tools.pipeline.fetch import drop_weights, fetch_source

    info = fetch_source(str(tiny_model.path), Path("/nonexistent"))
    assert info.kind == "local" and info.path == tiny_model.path.resolve()
    assert info.fingerprint.startswith("local:") and info.fingerprint == fetch_source(str(tiny_model.path), Path("/x")).fingerprint
    assert drop_weights(info) == 0 and (tiny_model.path / "model.safetensors").exists()


# ---- llama-quantize's fallback log -------------------------------------------------------------

def test_fallbacks_are_parsed_from_llama_quantize_log() -> None:
    from smol_tools.pipeline.llama_quantize import parse_fallbacks

    log = (
        "[  12/ 162] blk.0.ffn_down.weight - [  320,  256,  1,  1], type =   bf16, "
        "warning: blk.0.ffn_down.weight                  - ncols    320 not divisible by 256 "
        "(required for type  iq4_xs) -> falling back to  iq4_nl\n"
        "converting to iq4_nl .. size = 0.16 MiB -> 0.04 MiB\n"
        "warning: blk.1.ssm_out.weight                   - ncols     96 not divisible by  32 "
        "(required for type    q5_0) (WARNING: must use F16 due to unusual shape) -> falling back to     f16\n"
        "llama_model_quantize_impl: WARNING: 2 of 162 tensor(s) required fallback quantization\n")
    found = parse_fallbacks(log)
    assert [(f.tensor, f.wanted, f.used) for f in found] == [
        ("blk.0.ffn_down.weight", "iq4_xs", "iq4_nl"), ("blk.1.ssm_out.weight", "q5_0", "f16")]


# ---- memory ------------------------------------------------------------------------------------

def _write_hybrid_gguf(path: Path, *, n_main: int, n_mtp: int) -> None:
    import numpy as np
    from gguf import GGUFWriter

    writer = GGUFWriter(path, arch="qwen35")
    n_layer = n_main + n_mtp
    writer.add_block_count(n_layer)
    writer.add_uint32("qwen35.attention.head_count", 16)
    writer.add_uint32("qwen35.attention.head_count_kv", 4)
    writer.add_uint32("qwen35.attention.key_length", 256)
    writer.add_uint32("qwen35.attention.value_length", 256)
    writer.add_array("qwen35.attention.recurrent_layers",
                     [(i + 1) % 4 != 0 for i in range(n_main)] + [False] * n_mtp)
    writer.add_uint32("qwen35.ssm.conv_kernel", 4)
    writer.add_uint32("qwen35.ssm.state_size", 128)
    writer.add_uint32("qwen35.ssm.group_count", 16)
    writer.add_uint32("qwen35.ssm.inner_size", 4096)
    if n_mtp:
        writer.add_uint32("qwen35.nextn_predict_layers", n_mtp)
    writer.add_tensor("token_embd.weight", np.zeros((8, 32), dtype=np.float32))
    for i in range(n_layer):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.zeros(32, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_memory_formulas_for_a_4b_shaped_hybrid(tmp_path: Path) -> None:
    """32 layers, every 4th full attention (8 full, 24 linear), 4 KV heads of 256+256 dims; one
    MTP block appended. The MTP block is neither in the KV cache nor the recurrent state."""
    from smol_tools.pipeline.memory import (compute_buffer_bytes, estimate, kv_cache_bytes,
                                            memory_table_markdown, read_shape, recurrent_state_bytes)

    path = tmp_path / "shape.gguf"
    _write_hybrid_gguf(path, n_main=32, n_mtp=1)
    shape = read_shape(path)
    assert len(shape.full_layers) == 8 and len(shape.recurrent_layers) == 24 and shape.mtp_layers == (32,)
    assert shape.mtp_bytes == 32 * 4 and shape.weights_bytes == 8 * 32 * 4 + 32 * 32 * 4
    # KV: 8 layers x 4 heads x (256 + 256) x 2 bytes = 32 KiB per token -> 128 MiB at 4K.
    assert kv_cache_bytes(shape, 4096) == 128 * 2**20
    assert kv_cache_bytes(shape, 32768) == 1024 * 2**20
    # Recurrent, per linear layer, f32: conv 3 x (4096 + 2*16*128) + ssm 128 x 4096.
    per_layer = (3 * (4096 + 2 * 16 * 128) + 128 * 4096) * 4
    assert recurrent_state_bytes(shape) == 24 * per_layer  # ~50 MiB, whatever the context
    # llama.cpp's scratch for a 512-token batch: logits over the 8-row vocabulary (f32) and the
    # f16 mask over the context; this file names no embedding or MLP width (no activations term).
    assert shape.n_vocab == 8 and compute_buffer_bytes(shape, 16384) == 512 * (8 * 4 + 16384 * 2)
    assert estimate(shape, 16384).total == (shape.weights_bytes + 512 * 2**20 + 24 * per_layer
                                            + 512 * (8 * 4 + 16384 * 2))
    table = memory_table_markdown([("m.gguf", shape)], [4096, 16384, 32768])
    assert "8 full-attention layers" in table and "24 linear-attention layers" in table
    assert "MTP layer(s)" in table and "compute buffer for a 512-token batch" in table


def test_llama_log_parsing() -> None:
    from smol_tools.pipeline.memory import parse_llama_log

    log = ("load_tensors:          CPU model buffer size =     0.61 MiB\n"
           "load_tensors:   CPU_REPACK model buffer size =     1.18 MiB\n"
           "llama_kv_cache: size =    2.00 MiB (  4096 cells,   1 layers,  1/1 seqs), K (f16): 1.00 MiB\n"
           "llama_memory_recurrent: size =    0.21 MiB (     1 cells,   4 layers,  1 seqs  0 rs_seq)\n")
    # Each sum also says how many rounded figures it added up (the memory check's tolerance).
    log += "sched_reserve:        CPU compute buffer size =     8.53 MiB\n"
    assert parse_llama_log(log) == {"weights": 1.79, "kv_cache": 2.0, "recurrent": 0.21, "compute": 8.53,
                                    "weights_figures": 2, "kv_cache_figures": 1, "recurrent_figures": 1,
                                    "compute_figures": 1}


# ---- plan, calibration, card, summary, CLI ----------------------------------------------------

def test_upload_plan_refuses_missing_files(tmp_path: Path) -> None:
    from smol_tools.pipeline.publish import build_plan

    (tmp_path / "a.gguf").write_bytes(b"x" * 2048)
    plan = build_plan(tmp_path, "o/r", ["a.gguf"])
    assert plan.total_bytes == 2048 and "a.gguf" in plan.describe() and "2.00 KiB" in plan.describe()
    with pytest.raises(FileNotFoundError, match="b.gguf"):
        build_plan(tmp_path, "o/r", ["a.gguf", "b.gguf"])


def test_calibration_set_is_our_format() -> None:
    from smol_tools.pipeline.imatrix import calibration_text
    from smol_tools.pipeline.settings import CALIBRATION_PATH

    data = json.loads(CALIBRATION_PATH.read_text())
    names = {t["function"]["name"] for t in data["tools"]}
    assert all(set(c["tools"]) <= names for c in data["conversations"])
    text = calibration_text()
    assert text.count("<|im_start|>system") == sum(1 for c in data["conversations"] if c["tools"])
    assert text.count("<tool_call>\n{") > 20 and "<tool_response>" in text
    assistants = sum(1 for c in data["conversations"] for m in c["messages"] if m["role"] == "assistant")
    assert text.count("<|im_start|>assistant\n") == assistants


def test_summary_and_card_show_fallbacks() -> None:
    from smol_tools.pipeline.card import CardInput, render_card
    from smol_tools.pipeline.package import PackageResult, summary_table

    fell = FileReport("m-iq4_xs.gguf", "IQ4_XS", size=1000, bits_per_weight=4.6, sha256="ab" * 32,
                      verified=True, fallbacks=["blk.0.ffn_down.weight: iq4_xs -> iq4_nl"], imatrix=True)
    ok = FileReport("m-q8_0.gguf", "Q8_0", size=2000, bits_per_weight=8.5, sha256="cd" * 32, verified=True)
    result = PackageResult(Path("."), [ok, fell], None, None, "ours", False, None, [])
    table = summary_table(result)
    assert "1 fallback(s): blk.0.ffn_down.weight: iq4_xs -> iq4_nl" in table
    assert "2/2 files verified" in table
    card = render_card(CardInput(
        model_name="m", repo_id="o/m-GGUF", base_model="o/m", license="apache-2.0",
        pipeline_tag="text-generation", tags=["gguf", "conversational"], quantized_by="me",
        files=[ok, fell], default_quant="Q8_0", source={"kind": "hub", "repo_id": "o/m", "revision": "c" * 40},
        template_choice="ours", drift_summary="same", has_mtp=True))
    assert "llama.cpp used other types for 1 tensor(s)" in card and "iq4_xs -> iq4_nl" in card
    assert f"at commit `{'c' * 40}`" in card and "--spec-type draft-mtp" in card
    assert "| IQ4_XS (imatrix) |" in card


def _parser() -> argparse.ArgumentParser:
    from smol_tools.pipeline.cli_args import add_package_parser

    parser = argparse.ArgumentParser(prog="smol-tools")
    add_package_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def test_cli_arguments_and_defaults() -> None:
    from smol_tools.pipeline.cli_args import options_from_args

    args = _parser().parse_args(["package"])
    opts = options_from_args(args)
    assert opts.source == "enfuse/smol-tools-4b-32k" and opts.out == Path("out/smol-tools-4b-32k-GGUF")
    assert opts.ladder == ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "IQ4_XS")
    assert opts.imatrix == "auto" and opts.template is None and not opts.publish and not opts.resume
    assert opts.needs_imatrix("IQ4_XS") and opts.needs_imatrix("IQ2_XS") and not opts.needs_imatrix("Q8_0")
    args = _parser().parse_args(["package", "some/repo", "--quants", "q4_k_m, iq4_xs", "--template",
                                 "checkpoint", "--publish", "--resume", "--imatrix", "off"])
    opts = options_from_args(args)
    assert opts.ladder == ("Q4_K_M", "IQ4_XS") and opts.template == "checkpoint"
    assert opts.publish and opts.resume and opts.imatrix == "off"
    with pytest.raises(SystemExit):
        _parser().parse_args(["package", "--template", "theirs"])


def test_unknown_quant_types_are_refused_before_any_work() -> None:
    from smol_tools.pipeline.package import PackageError, validate_quants

    validate_quants(("Q8_0", "IQ4_XS"))
    with pytest.raises(PackageError, match="Q9_K"):
        validate_quants(("Q8_0", "Q9_K"))


def test_mtp_layers_are_read_from_metadata(tmp_path: Path, tiny_gguf_f16: Path) -> None:
    from smol_tools.pipeline.mtp import gguf_mtp_layers

    path = tmp_path / "mtp.gguf"
    _write_hybrid_gguf(path, n_main=4, n_mtp=1)
    assert gguf_mtp_layers(path) == 1
    assert gguf_mtp_layers(tiny_gguf_f16) == 0


@pytest.mark.slow
def test_mtp_speed_probe_reads_llama_server_timings(tiny_gguf_f16: Path) -> None:
    """The plain half of the MTP measurement, on the tiny model (it has no MTP layers; the
    `--spec-type draft-mtp` half runs in tests/test_mtp.py, on a copy with an MTP head added)."""
    from smol_tools.pipeline.mtp import _tokens_per_second

    assert _tokens_per_second(tiny_gguf_f16, [], 16) > 0


def test_the_memory_table_agrees_with_llama_cpp_on_the_tiny_model(tiny_gguf_q8_0) -> None:
    """Weights, KV cache and recurrent state to llama.cpp's rounding; the compute buffer (the
    approximated term, added after the real-size run found the table at 0.70 of a filled 32K
    context's RSS) within 4 MiB or 10 % of what llama.cpp reserves with flash attention."""
    from smol_tools.pipeline.memory import check_against_llama_cpp

    checks = check_against_llama_cpp(tiny_gguf_q8_0, [4096, 32768])
    assert [c.n_ctx for c in checks] == [4096, 32768]
    for check in checks:
        assert check.ok, (check.ours_mib, check.llama_cpp_mib)
        assert check.llama_cpp_mib["compute"] > 0 and check.compute_close, (check.compute_ours_mib, check.llama_cpp_mib)
    # the compute buffer grows with the context (the attention mask): both sides say so
    assert checks[1].llama_cpp_mib["compute"] > checks[0].llama_cpp_mib["compute"]
    assert checks[1].compute_ours_mib > checks[0].compute_ours_mib
