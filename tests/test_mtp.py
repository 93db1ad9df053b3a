"""Issue 4, multi-token prediction: `smol-tools package` on a checkpoint that carries Qwen3.5
`mtp.*` tensors keeps them, says so, still verifies, and measures llama-server with and without
`--spec-type draft-mtp`.

The checkpoint is the tiny model plus a seeded *random* MTP head (devkit/mtp_checkpoint.py): it
proves the path runs end to end (convert -> quantize -> verify -> llama-server draft-mtp ->
card), not that MTP speeds anything up. A random draft head is rejected almost always, so the
measured "speed-up" is below 1x here; the figures are asserted to exist, not to be good.

One build shared by the module (about 50 s on a shared 2-core machine, most of it verification)."""

from __future__ import annotations

import argparse
import io
import json
import re
from pathlib import Path

import pytest

from smol_tools.pipeline.cli_args import add_package_parser, options_from_args
from smol_tools.pipeline.progress import Progress
from devkit.mtp_checkpoint import ensure_mtp_checkpoint, mtp_tensor_shapes

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
TURNS = ROOT / "tests" / "fixtures" / "scripted_conversations.json"
NAME = "tiny-mtp"
KINDS = ["BF16", "Q8_0", "Q4_K_M"]
# One thread per llama.cpp program (see tests/test_package.py: a shared 2-core machine).
THREADS = ["--threads", "1", "--verify-threads", "1"]
# What the converter turns the HF `mtp.*` names into, in the block after the 4 main layers.
NEXTN = ["blk.4.nextn.eh_proj.weight", "blk.4.nextn.enorm.weight", "blk.4.nextn.hnorm.weight",
         "blk.4.nextn.shared_head_norm.weight", "blk.4.attn_q.weight", "blk.4.attn_k.weight",
         "blk.4.attn_v.weight", "blk.4.attn_output.weight", "blk.4.ffn_gate.weight",
         "blk.4.ffn_up.weight", "blk.4.ffn_down.weight"]
SPEED = re.compile(r"([\d.]+) tokens/s plain, ([\d.]+) tokens/s with `--spec-type draft-mtp` "
                   r"\(([\d.]+)x, draft acceptance (\d+)/(\d+)")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="smol-tools")
    add_package_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["package", *argv])


@pytest.fixture(scope="module")
def mtp_checkpoint(tiny_model) -> Path:
    return ensure_mtp_checkpoint(tiny_model.path)


@pytest.fixture(scope="module")
def built(mtp_checkpoint, tmp_path_factory):
    from smol_tools.pipeline.run import run_package

    out = tmp_path_factory.mktemp("package-mtp") / "out"
    args = parse([str(mtp_checkpoint), "--out", str(out), "--model-name", NAME,
                  "--declare-pre", "qwen35", "--expect-turns", str(TURNS),
                  "--quants", ",".join(KINDS[1:]), "--imatrix", "off", *THREADS])
    stream = io.StringIO()
    result = run_package(options_from_args(args), Progress(stream))
    return result, stream.getvalue()


def test_helper_adds_every_tensor_the_converter_maps(mtp_checkpoint) -> None:
    from smol_tools.pipeline.convert import checkpoint_has_mtp, checkpoint_tensor_names

    config = json.loads((mtp_checkpoint / "config.json").read_text())
    assert config["mtp_num_hidden_layers"] == 1
    names = set(checkpoint_tensor_names(mtp_checkpoint))
    assert set(mtp_tensor_shapes(config)) <= names
    assert checkpoint_has_mtp(mtp_checkpoint)


def test_source_step_reports_the_mtp_tensors(built) -> None:
    result, log = built
    assert result.has_mtp
    assert "checkpoint has MTP tensors: kept (llama-server --spec-type draft-mtp)" in log
    assert "no MTP tensors" not in log


def test_every_file_carries_the_nextn_block(built) -> None:
    from gguf import GGUFReader

    from smol_tools.pipeline.mtp import gguf_mtp_layers

    result, _ = built
    assert [f.kind for f in result.files] == KINDS
    for f in result.files:
        path = result.out / f.name
        assert gguf_mtp_layers(path) == 1, f.name
        reader = GGUFReader(path)
        assert reader.get_field("qwen35.block_count").contents() == 5  # 4 main + 1 MTP
        names = {t.name for t in reader.tensors}
        assert set(NEXTN) <= names, (f.name, set(NEXTN) - names)


def test_mtp_tensors_do_not_change_the_main_model(built) -> None:
    """The scripted turns still reproduce greedily from every file: llama.cpp loads the MTP
    block but never runs it in the main pass."""
    result, log = built
    for f in result.files:
        assert f.verified and f.publishable, (f.kind, f.problems)
        line = next(line for line in log.splitlines() if "]  verify" in line and f.name in line)
        assert "OK" in line and "turns 19/19" in line, line


def test_speed_is_measured_plain_and_with_draft_mtp(built) -> None:
    result, log = built
    lines = [line for line in log.splitlines() if "]  mtp" in line]
    assert len(lines) == 2, lines  # the report, then the measurement
    found = SPEED.search(lines[1])
    assert found, lines[1]
    plain, mtp, ratio = (float(found.group(i)) for i in (1, 2, 3))
    accepted, drafted = int(found.group(4)), int(found.group(5))
    assert plain > 0 and mtp > 0 and ratio > 0
    # The draft head really ran: llama-server proposed tokens (a random head gets few accepted).
    assert drafted > 0 and 0 <= accepted <= drafted
    assert f"`{NAME}-q4_k_m.gguf`" in lines[1]


def test_draft_mtp_decoding_gives_the_same_greedy_text(built) -> None:
    """Speculative decoding is lossless under greedy sampling: the random head's drafts are
    rejected, never emitted."""
    from smol_tools.llamacpp.server import LlamaServer
    from smol_tools.pipeline.mtp import PROMPT

    result, _ = built
    texts = []
    for extra in ([], ["--spec-type", "draft-mtp"]):
        with LlamaServer(result.out / f"{NAME}-q4_k_m.gguf", extra_args=extra, threads=1) as server:
            reply = server.post("/completion", {"prompt": PROMPT, "n_predict": 64, "ignore_eos": True,
                                                "temperature": 0.0, "cache_prompt": False})
        texts.append(reply["content"])
        assert ("draft_n" in reply["timings"]) == bool(extra)
    assert texts[0] == texts[1] and texts[0]


def test_card_and_manifest_carry_the_measurement(built) -> None:
    result, log = built
    card = (result.out / "README.md").read_text()
    note = card.split("## Multi-token prediction\n\n", 1)[1].strip()
    assert SPEED.search(note) and note in log
    assert "MTP layer(s) add" in card  # the memory table counts the nextn block separately
    assert json.loads((result.out / "manifest.json").read_text())["has_mtp"] is True


def test_tiny_model_without_mtp_says_so(tiny_model, tmp_path) -> None:
    """The same steps on the plain tiny model: no MTP tensors, no measurement, the card says so."""
    from smol_tools.pipeline.card import CardInput, render_card
    from smol_tools.pipeline.package import Pipeline

    args = parse([str(tiny_model.path), "--out", str(tmp_path / "out"), "--model-name", NAME,
                  "--declare-pre", "qwen35", "--quants", "Q8_0", "--imatrix", "off", *THREADS])
    stream = io.StringIO()
    pipeline = Pipeline(options_from_args(args), Progress(stream))
    pipeline.fetch()
    pipeline.check_template()
    pipeline.report_mtp()
    assert pipeline.has_mtp is False
    assert "checkpoint has no MTP tensors" in stream.getvalue()
    assert pipeline.mtp_speed() is None
    card = render_card(CardInput(
        model_name=NAME, repo_id="o/r", base_model="b", license="apache-2.0", pipeline_tag="text-generation",
        tags=[], quantized_by="q", files=[], default_quant="Q8_0", source={}, template_choice="ours",
        drift_summary="same", has_mtp=False))
    assert "The checkpoint has no MTP tensors, so these files have none." in card
