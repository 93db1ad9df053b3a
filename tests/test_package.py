"""`smol-tools package` end to end on the tiny model (local SOURCE): convert, imatrix, the quant
ladder with llama-quantize, metadata, verification of every file, Modelfiles and Hub files,
the model card, the memory table checked against llama.cpp, the upload plan; then a build
killed mid-write and resumed, the template-drift refusal, llama.cpp's fallback types for odd
shapes, and a Hub SOURCE (recording stand-in) pinned, dropped, resumed and published.

One uninterrupted build is shared by the module (about 15 s on an idle 2-core machine; the
whole file about a minute idle, up to four on a busy shared machine)."""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from smol_tools.chat_format import load_params, load_template
from smol_tools.pipeline.cli_args import add_package_parser, options_from_args
from smol_tools.pipeline.progress import Progress
from smol_tools.pipeline.state import sha256_file

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
TURNS = ROOT / "tests" / "fixtures" / "scripted_conversations.json"
NAME = "tiny-smol-tools"
REPO = "test-owner/tiny-smol-tools-GGUF"
BASE = "test-owner/tiny-smol-tools"  # --base-model: a local SOURCE's card names only what it is told
QUANTS = ["Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "IQ4_XS"]
GOOD = ["BF16", "F16"] + QUANTS
# 2.3 bits per weight is far below what the tiny model's logit margin survives: IQ2_XS must fail
# verification (scripted turns differ), be reported, and never be published.
BAD = "IQ2_XS"
LADDER = ",".join(QUANTS + [BAD])
# One thread per llama.cpp program: on a shared 2-core machine, two spinning threads per program
# are several times slower than one as soon as anything else runs (measured: 49 s vs 139 s).
THREADS = ["--threads", "1", "--verify-threads", "1"]


def package_argv(source: Path, out: Path, *extra: str) -> list[str]:
    return [str(source), "--out", str(out), "--model-name", NAME, "--declare-pre", "qwen35",
            "--expect-turns", str(TURNS), "--quants", LADDER, "--f16", "--repo-id", REPO,
            "--base-model", BASE, *THREADS, *extra]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="smol-tools")
    add_package_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["package", *argv])


def gguf(kind: str) -> str:
    return f"{NAME}-{kind.lower()}.gguf"


def published_hashes(out: Path, names) -> dict[str, str]:
    return {name: sha256_file(out / name) for name in names}


@pytest.fixture(scope="module")
def built(tiny_model, tmp_path_factory):
    from smol_tools.pipeline.run import run_package

    out = tmp_path_factory.mktemp("package") / "out"
    args = parse(package_argv(tiny_model.path, out, "--eval", "tiny"))
    assert args.func.__name__ == "cmd_package"
    stream = io.StringIO()
    result = run_package(options_from_args(args), Progress(stream))
    return result, stream.getvalue()


def by_kind(result):
    return {f.kind: f for f in result.files}


def test_every_requested_file_is_made_and_verified(built) -> None:
    result, log = built
    files = by_kind(result)
    assert list(files) == GOOD + [BAD]
    for kind in GOOD:
        f = files[kind]
        assert f.verified and f.publishable, (kind, f.problems)
        assert (result.out / f.name).is_file() and f.name == gguf(kind)
        assert f.sha256 == sha256_file(result.out / f.name)
    # Smaller types really are smaller: the ladder is what it says.
    bpw = [files[k].bits_per_weight for k in GOOD]
    assert bpw == sorted(bpw, reverse=True) and bpw[0] > 16 and bpw[-1] < 5
    assert "Q4_K" in files["Q4_K_M"].tensor_types and "IQ4_XS" in files["IQ4_XS"].tensor_types
    # The tiny model's widths are multiples of 256: no fallback types anywhere.
    assert all(not f.fallbacks for f in result.files)


def test_progress_lines_and_summary(built) -> None:
    result, log = built
    for step in ("source", "template", "mtp", "convert", "imatrix", "quantize", "verify",
                 "memory", "ollama", "card", "publish"):
        assert f"]  {step}" in log, step
    convert = next(line for line in log.splitlines() if "]  convert" in line)
    assert "MiB" in convert and convert.rstrip().endswith("s)")  # size and step time
    assert "checkpoint has no MTP tensors" in log
    assert "turns 19/19" in log
    summary = log[log.index("\nfile "):]
    for kind in GOOD + [BAD]:
        assert gguf(kind) in summary
    assert f"NOT published: {gguf(BAD)}" in summary
    assert "scripted turns differ" in summary


def test_metadata_of_every_published_file(built) -> None:
    from gguf import GGUFReader

    result, _ = built
    special = load_params().special_tokens
    for f in result.files:
        reader = GGUFReader(result.out / f.name)
        field = lambda key: reader.get_field(key).contents() if reader.get_field(key) else None  # noqa: E731
        tokens = field("tokenizer.ggml.tokens")
        assert field("tokenizer.chat_template") == load_template()
        assert tokens[field("tokenizer.ggml.eos_token_id")] == special["eos"] == "<|im_end|>"
        assert tokens[field("tokenizer.ggml.eot_token_id")] == "<|im_end|>"
        assert tokens[field("tokenizer.ggml.padding_token_id")] == "<|endoftext|>"
        assert field("general.name") == NAME
        assert field("general.license") == "apache-2.0"
        assert field("general.quantized_by") == "enfuse"
        assert field("general.base_model.count") == 1
        assert field("general.base_model.0.repo_url") == "https://huggingface.co/Qwen/Qwen3.5-4B"
        assert field("general.sampling.temp") == pytest.approx(load_params().sampling["temperature"])
        assert field("general.sampling.top_k") == load_params().sampling["top_k"]
        if f.imatrix:
            # Relative names only: no local folder leaks into a published file.
            assert field("quantize.imatrix.file") == f"{NAME}.imatrix.gguf"
            assert field("quantize.imatrix.dataset") == "tool-use-calibration.txt"
        else:
            assert field("quantize.imatrix.file") is None


def test_imatrix_is_computed_kept_and_used_for_low_bit_types(built) -> None:
    from gguf import GGUFReader

    result, log = built
    files = by_kind(result)
    assert [k for k in GOOD if files[k].imatrix] == ["Q5_K_M", "Q4_K_M", "IQ4_XS"]
    assert result.imatrix == result.out / f"{NAME}.imatrix.gguf"
    reader = GGUFReader(result.imatrix)
    assert reader.get_field("general.type").contents() == "imatrix"
    assert reader.get_field("imatrix.datasets").contents() == ["tool-use-calibration.txt"]
    assert reader.get_field("imatrix.chunk_count").contents() > 0
    assert "(llama-imatrix)" in log


def test_a_failing_quant_is_reported_and_never_published(built) -> None:
    result, _ = built
    bad = by_kind(result)[BAD]
    assert not bad.verified and not bad.publishable
    assert any("scripted turns differ" in p for p in bad.problems)
    assert bad.name not in result.plan.files
    assert bad.name not in (result.out / "README.md").read_text()
    manifest = json.loads((result.out / "manifest.json").read_text())
    assert bad.name not in [f["name"] for f in manifest["files"]]
    assert not (result.out / f"Modelfile.{BAD}").exists()
    report = json.loads((result.out / "build" / "report.json").read_text())
    assert {f["name"]: f["verified"] for f in report["files"]}[bad.name] is False


def test_modelfiles_and_hub_ollama_files(built) -> None:
    from smol_tools.pipeline.modelfile import hub_ollama_files, render_modelfile

    result, _ = built
    for kind in QUANTS:
        text = (result.out / f"Modelfile.{kind}").read_text()
        assert text == render_modelfile(gguf(kind))
        assert f"FROM ./{gguf(kind)}" in text
    assert not (result.out / "Modelfile.BF16").exists() and not (result.out / "Modelfile.F16").exists()
    for name, text in hub_ollama_files().items():
        assert (result.out / name).read_text() == text
    assert json.loads((result.out / "params").read_text())["stop"] == list(load_params().stop)


def test_model_card(built) -> None:
    import yaml

    result, _ = built
    card = (result.out / "README.md").read_text()
    assert card.startswith("---\n")
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["base_model"] == BASE
    assert meta["base_model_relation"] == "quantized"
    assert meta["pipeline_tag"] == "text-generation"
    assert meta["license"] == "apache-2.0"
    assert {"gguf", "conversational"} <= set(meta["tags"])
    for f in result.files:
        if f.publishable:
            row = next(line for line in card.splitlines() if line.startswith(f"| [`{f.name}`]"))
            # The tiny model reproduces its scripted suite greedily from every published quant.
            assert f"`{f.sha256}`" in row and f"{f.bits_per_weight:.2f}" in row
            assert row.endswith("| yes | F1 1.000 [1.000, 1.000] |"), row
    assert "| Eval |" in card and "on the `tiny-scripted` suite, 8 cases" in card
    for usage in (f"llama-server -hf {REPO}:Q4_K_M --jinja", f"ollama run hf.co/{REPO}:Q4_K_M",
                  'filename="*q4_k_m.gguf"', "Modelfile.Q4_K_M"):
        assert usage in card
    assert "## Memory" in card and "Total @ 32K ctx" in card
    assert "greedy decoding reproduces every scripted tool-call turn exactly" in card


def test_eval_scores_every_published_file_and_resume_reuses_them(built, tiny_model) -> None:
    from smol_tools.pipeline.run import run_package

    result, log = built
    published = [f for f in result.files if f.publishable]
    assert all(f.eval_score == "F1 1.000 [1.000, 1.000]" for f in published)
    assert all(f.eval_score is None for f in result.files if not f.publishable)  # IQ2_XS: never scored
    for f in published:
        assert f"{f.name}: F1 1.000" in log
        report = json.loads((result.out / "build" / "eval" / f"{f.name}.json").read_text())
        assert report["suite"]["name"] == "tiny-scripted" and report["suite"]["cases"] == 8
    manifest = json.loads((result.out / "manifest.json").read_text())
    assert {f["name"]: f["eval_score"] for f in manifest["files"]} == {f.name: f.eval_score for f in published}
    # Resumed with the same suite: nothing is scored again.
    stream = io.StringIO()
    again = run_package(options_from_args(parse(package_argv(tiny_model.path, result.out, "--eval", "tiny",
                                                             "--resume"))), Progress(stream))
    text = stream.getvalue()
    assert [f.eval_score for f in again.files] == [f.eval_score for f in result.files]
    assert text.count("(done earlier)") >= len(published) and "eval" in text


def test_unknown_eval_suite_is_refused_before_building(tiny_model, tmp_path) -> None:
    from smol_tools.pipeline.package import PackageError
    from smol_tools.pipeline.run import run_package

    with pytest.raises(PackageError, match="no file at"):
        run_package(options_from_args(parse(package_argv(tiny_model.path, tmp_path / "out", "--eval",
                                                         str(tmp_path / "missing.json")))), Progress(io.StringIO()))
    assert not (tmp_path / "out" / gguf("BF16")).exists()


def test_memory_table_agrees_with_llama_cpp(built) -> None:
    result, _ = built
    checks = result.memory_checks
    assert [c.n_ctx for c in checks] == [4096, 16384, 32768]
    for check in checks:
        assert check.ok, check
        # Tiny model: 1 full-attention layer, 1 KV head of 128+128 dims, f16 -> 512 B per token.
        assert check.llama_cpp_mib["kv_cache"] == pytest.approx(check.n_ctx * 512 / 2**20)
        assert check.llama_cpp_mib["recurrent"] > 0
    card = (result.out / "README.md").read_text()
    assert "the computation above agrees" in card


def test_upload_plan_is_exactly_the_verified_set(built, tiny_model) -> None:
    from huggingface_hub.utils import filter_repo_objects

    result, log = built
    expected = ([gguf(k) for k in GOOD] + [f"{NAME}.imatrix.gguf"]
                + [f"Modelfile.{k}" for k in QUANTS] + ["template", "params"]
                + (["system"] if (result.out / "system").exists() else []) + ["README.md", "manifest.json"])
    assert sorted(result.plan.files) == sorted(expected)
    assert result.plan.repo_id == REPO and result.published_url is None
    assert "dry run (pass --publish to upload)" in log
    assert f"upload plan: {len(expected)} files" in log and f"https://huggingface.co/{REPO}" in log
    # upload_folder filters the folder with huggingface_hub's own filter_repo_objects: with our
    # allow_patterns it selects exactly the plan, nothing from build/ or the failed quant.
    everything = [p.relative_to(result.out).as_posix() for p in result.out.rglob("*") if p.is_file()]
    assert sorted(filter_repo_objects(everything, allow_patterns=list(result.plan.files))) == sorted(expected)


def test_publish_sends_the_plan_to_the_hub_api(built) -> None:
    """The upload path against a recording stand-in of `HfApi` (dependency injection): we check
    the calls `publish` makes — create_repo, then one upload_folder restricted to the plan —
    without network. The filtering those arguments imply is proven with huggingface_hub's own
    code in test_upload_plan_is_exactly_the_verified_set."""
    from smol_tools.pipeline.publish import publish

    result, _ = built
    calls = []

    class RecordingApi:
        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id, kwargs))

        def upload_folder(self, **kwargs):
            calls.append(("upload_folder", kwargs["repo_id"], kwargs))
            return type("CommitInfo", (), {"commit_url": f"https://huggingface.co/{REPO}/commit/abc"})()

    url = publish(result.plan, api=RecordingApi())
    assert url.endswith("/commit/abc")
    assert [c[:2] for c in calls] == [("create_repo", REPO), ("upload_folder", REPO)]
    assert calls[0][2]["exist_ok"] is True
    upload = calls[1][2]
    assert Path(upload["folder_path"]) == result.out
    assert upload["allow_patterns"] == list(result.plan.files)
    assert "*.gguf" in upload["delete_patterns"]


def _wrapper_bin(folder: Path, marker: Path) -> Path:
    """llama-quantize that, for Q4_K_M, writes its output, truncates it to half, reports its pid
    and hangs: the build is caught with a half-written .partial file."""
    from smol_tools.llamacpp.build import ensure_llama_programs

    real = ensure_llama_programs()
    folder.mkdir()
    script = folder / "llama-quantize"
    script.write_text(
        "#!/bin/sh\n"
        f'"{real / "llama-quantize"}" "$@" || exit $?\n'
        'case " $* " in *" Q4_K_M "*)\n'
        '  out=$(for a; do case "$a" in *.partial) echo "$a";; esac; done)\n'
        '  truncate -s $(( $(stat -c %s "$out") / 2 )) "$out"\n'
        f'  echo $$ > "{marker}"\n'
        "  exec sleep 300;;\n"
        "esac\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    (folder / "llama-imatrix").symlink_to(real / "llama-imatrix")
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat")
    return not (state.exists() and state.read_text().split()[2] == "Z")


def test_killed_mid_write_then_resumed_equals_uninterrupted(built, tiny_model, tmp_path) -> None:
    """SIGKILL the real command while llama-quantize is writing Q4_K_M, then `--resume`: only
    Q4_K_M is redone, and every GGUF (and the imatrix) is byte-identical to the uninterrupted
    build's. A shorter ladder than the shared build keeps this test quick."""
    result, _ = built
    out, marker = tmp_path / "out", tmp_path / "quantizer.pid"
    bin_dir = _wrapper_bin(tmp_path / "bin", marker)
    cmd = [sys.executable, str(ROOT / "packaging" / "build_quants.py"), str(tiny_model.path),
           "--out", str(out), "--model-name", NAME, "--declare-pre", "qwen35",
           "--expect-turns", str(TURNS), "--quants", "Q8_0,Q4_K_M", "--repo-id", REPO, *THREADS]
    with open(tmp_path / "first.log", "w") as log:
        proc = subprocess.Popen(cmd + ["--llama-bin", str(bin_dir)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), (tmp_path / "first.log").read_text()[-3000:]
        partial = out / f".{gguf('Q4_K_M')}.partial"
        assert partial.exists() and not (out / gguf("Q4_K_M")).exists()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # The quantizer was tied to the pipeline (PR_SET_PDEATHSIG): it does not outlive it.
    quantizer = int(marker.read_text())
    deadline = time.monotonic() + 10
    while _alive(quantizer) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(quantizer)
    assert partial.exists()  # the half-written file is still there, under its temporary name

    resumed = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    text = resumed.stdout
    for kind in ("BF16", "Q8_0"):
        assert f"{gguf(kind)}: done earlier" in text
        assert f"{gguf(kind)}: OK" in text and "already verified" in text
    assert f"{NAME}.imatrix.gguf: done earlier" in text
    assert f"{gguf('Q4_K_M')} (Q4_K_M + imatrix; llama-quantize)" in text  # redone, not reused
    assert not partial.exists()
    names = [gguf("BF16"), gguf("Q8_0"), gguf("Q4_K_M"), f"{NAME}.imatrix.gguf"]
    assert published_hashes(out, names) == published_hashes(result.out, names)


def test_template_drift_refuses_until_chosen(tiny_model, tmp_path) -> None:
    from gguf import GGUFReader

    source = tmp_path / "checkpoint"
    source.mkdir()
    for item in tiny_model.path.iterdir():
        (source / item.name).symlink_to(item)
    (source / "chat_template.jinja").unlink()
    drifted = load_template().replace("within <tool_call></tool_call> XML tags", "inside <function=...> tags")
    assert drifted != load_template()
    (source / "chat_template.jinja").write_text(drifted)
    out = tmp_path / "out"
    argv = [str(source), "--out", str(out), "--model-name", NAME, "--declare-pre", "qwen35",
            "--quants", "Q8_0", "--imatrix", "off", "--no-memory-check", *THREADS]

    refused = subprocess.run([sys.executable, str(ROOT / "packaging" / "build_quants.py"), *argv],
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2
    assert "template drift" in refused.stderr and "--template ours" in refused.stderr
    assert "corpus cases" in refused.stderr
    assert not list(out.glob("*.gguf"))  # refused before converting anything

    ok = subprocess.run([sys.executable, str(ROOT / "packaging" / "build_quants.py"), *argv,
                         "--template", "ours"], capture_output=True, text=True, timeout=600)
    assert ok.returncode == 0, ok.stdout[-3000:] + ok.stderr[-3000:]
    # The converter embedded the checkpoint's template; the gguf rewrite replaced it with ours.
    metadata = [line for line in ok.stdout.splitlines() if "]  metadata" in line]
    assert metadata and "tokenizer.chat_template" in metadata[0]
    for kind in ("BF16", "Q8_0"):
        reader = GGUFReader(out / gguf(kind))
        assert reader.get_field("tokenizer.chat_template").contents() == load_template()


def _random_checkpoint(tiny_path: Path, folder: Path, **overrides) -> Path:
    """An untrained Qwen3.5 with the tiny model's tokenizer and template: enough for llama.cpp's
    converter and quantizer to see real shapes."""
    import shutil

    import torch
    from transformers.models.qwen3_5 import Qwen3_5ForCausalLM, Qwen3_5TextConfig

    folder.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        shutil.copy2(tiny_path / name, folder / name)
    config = json.loads((tiny_path / "config.json").read_text())
    keep = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "layer_types",
            "num_attention_heads", "num_key_value_heads", "head_dim", "linear_num_key_heads",
            "linear_key_head_dim", "linear_num_value_heads", "linear_value_head_dim",
            "linear_conv_kernel_dim", "max_position_embeddings", "rope_parameters",
            "eos_token_id", "pad_token_id", "tie_word_embeddings")
    torch.manual_seed(0)
    model = Qwen3_5ForCausalLM(Qwen3_5TextConfig(
        **{k: config[k] for k in keep} | overrides, bos_token_id=None, architectures=["Qwen3_5ForCausalLM"]))
    model.save_pretrained(folder, safe_serialization=True)
    return folder


def test_fallback_types_for_odd_shapes_are_shown(tiny_model, tmp_path) -> None:
    """A 320-wide MLP (not a multiple of 256): llama.cpp quantizes ffn_down (320 columns) with a
    fallback type (IQ4_XS -> IQ4_NL, Q4_K -> Q5_0, ...); the build reports it per tensor in the
    summary, the manifest and the card."""
    from smol_tools.pipeline.run import run_package

    source = _random_checkpoint(tiny_model.path, tmp_path / "odd", intermediate_size=320)
    out = tmp_path / "out"
    args = parse([str(source), "--out", str(out), "--model-name", "odd", "--declare-pre", "qwen35",
                  "--quants", "Q8_0,Q4_K_M,IQ4_XS", "--imatrix-from", "q8_0", "--no-memory-check",
                  "--repo-id", REPO, *THREADS])
    stream = io.StringIO()
    result = run_package(options_from_args(args), Progress(stream))
    q4 = by_kind(result)["Q4_K_M"]
    assert q4.publishable, q4.problems  # runs, renders the corpus, stops on the right tokens
    downs = [f for f in q4.fallbacks if ".ffn_down." in f]
    assert len(downs) == 4 and all(": q4_K -> " in f or ": q6_K -> " in f for f in downs), q4.fallbacks
    iq4 = by_kind(result)["IQ4_XS"]
    assert iq4.publishable and iq4.imatrix, iq4.problems
    assert iq4.fallbacks == [f"blk.{i}.ffn_down.weight: iq4_xs -> iq4_nl" for i in range(4)]
    log = stream.getvalue()
    assert "tensor(s) fell back" in log and "fallback(s): blk." in log
    assert "through odd-q8_0.gguf (llama-imatrix)" in log  # --imatrix-from q8_0
    manifest = json.loads((out / "manifest.json").read_text())
    assert [f["fallbacks"] for f in manifest["files"]] == [[], [], q4.fallbacks, iq4.fallbacks]
    assert "llama.cpp used other types for" in (out / "README.md").read_text()


def test_hub_source_pinned_dropped_and_resumed(tiny_model, tmp_path, monkeypatch) -> None:
    """SOURCE as a Hub repo id, through a recording stand-in for huggingface_hub's network
    calls (see FakeHub): the revision is pinned to a commit and recorded, `--drop-source`
    deletes the downloaded weights once converted, `--resume` neither re-resolves the
    revision nor downloads the weights again, and `--resume --publish` uploads the plan."""
    import huggingface_hub
    from gguf import GGUFReader

    from smol_tools.pipeline.run import run_package
    from tests.test_package_units import FakeHub

    hub = FakeHub(tiny_model.path, ["a" * 40, "b" * 40])
    monkeypatch.setattr(huggingface_hub, "snapshot_download", hub.snapshot_download)
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda: hub)
    out = tmp_path / "out"
    argv = ["owner/tiny-smol-tools", "--out", str(out), "--model-name", NAME, "--declare-pre", "qwen35",
            "--quants", "Q8_0", "--imatrix", "off", "--no-memory-check", "--drop-source", *THREADS]
    first = run_package(options_from_args(parse(argv)), Progress(io.StringIO()))
    assert not first.failed
    assert not (out / "source" / "model.safetensors").exists()  # dropped after conversion
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source"]["repo_id"] == "owner/tiny-smol-tools" and manifest["source"]["revision"] == "a" * 40
    assert f"at commit `{'a' * 40}`" in (out / "README.md").read_text()
    reader = GGUFReader(out / gguf("Q8_0"))
    assert reader.get_field("general.source.repo_url").contents() == "https://huggingface.co/owner/tiny-smol-tools"
    before = published_hashes(out, first.plan.files)

    stream = io.StringIO()
    second = run_package(options_from_args(parse(argv + ["--resume"])), Progress(stream))
    assert not second.failed and "done earlier" in stream.getvalue()
    assert [c[0] for c in hub.calls] == ["model_info", "snapshot_download", "snapshot_download"]
    assert "*.safetensors" not in hub.calls[-1][3] and hub.calls[-1][2] == "a" * 40
    assert second.plan.files == first.plan.files
    assert published_hashes(out, second.plan.files) == before

    # --publish on top of the finished build: nothing is rebuilt, the plan goes up in one commit.
    stream = io.StringIO()
    third = run_package(options_from_args(parse(argv + ["--resume", "--publish", "--repo-id", REPO])),
                        Progress(stream))
    uploads = [c for c in hub.calls if c[0] in ("create_repo", "upload_folder")]
    assert [c[:2] for c in uploads] == [("create_repo", REPO), ("upload_folder", REPO)]
    assert uploads[1][2]["allow_patterns"] == list(third.plan.files) == list(first.plan.files)
    assert third.published_url == f"https://huggingface.co/{REPO}/commit/1"
    assert f"uploaded {len(third.plan.files)} files" in stream.getvalue()
    assert "]  quantize    " + gguf("Q8_0") + ": done earlier" in stream.getvalue()
