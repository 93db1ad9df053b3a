"""The family, and honest provenance: `smol-tools package enfuse/smol-tools-4b-16k` makes a repo
for *that* model — names, context length (Modelfile num_ctx, params, memory table, card usage
lines) and base_model all come from the source — and a card never names a guessed base_model:
a local folder without --base-model has none, and --publish is refused before any work.
Also: every file the card names is in the upload plan.

The Hub is the recording stand-in of tests/test_package_units.py (FakeHub: huggingface_hub's
model_info, snapshot_download and upload calls replaced in-process, no network), serving a copy
of the tiny checkpoint whose config.json says max_position_embeddings = 16384."""

from __future__ import annotations

import argparse
import io
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from smol_tools.ollama_render import parse_modelfile_with_ollama
from smol_tools.pipeline.artifacts import FileReport
from smol_tools.pipeline.card import CardInput, render_card
from smol_tools.pipeline.cli_args import add_package_parser, options_from_args
from smol_tools.pipeline.modelfile import HUB_OLLAMA_FILES, ollama_params
from smol_tools.pipeline.progress import Progress
from smol_tools.pipeline.provenance import (checkpoint_context_length, default_model_name, default_repo_id,
                                            memory_contexts)
from smol_tools.pipeline.settings import load_config

REPO = "enfuse/smol-tools-4b-16k"
NAME = "smol-tools-4b-16k"
SHA = "c" * 40
THREADS = ["--threads", "1", "--verify-threads", "1"]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="smol-tools")
    add_package_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["package", *argv])


def checkpoint_16k(tiny_model, folder: Path) -> Path:
    """The tiny checkpoint with a 16K context: what smol-tools-4b-16k differs in."""
    shutil.copytree(tiny_model.path, folder)
    config = json.loads((folder / "config.json").read_text())
    assert config["max_position_embeddings"] == 32768
    config["max_position_embeddings"] = 16384
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return folder


def card_file_claims(card: str) -> set[str]:
    """Every repo file the card names: backticked names and blob links of GGUFs, Modelfiles, the
    Ollama files, the card and the manifest."""
    prose = re.sub(r"^```.*?^```", "", card, flags=re.M | re.S)  # fenced code: commands, not claims
    names = {token for span in re.findall(r"`([^`\n]+)`", prose) for token in span.split()}
    names |= set(re.findall(r"/blob/main/([^)\s]+)\)", card))
    wanted = re.compile(r"^(?:[\w.-]+\.gguf|Modelfile(?:\.\w+)?|template|params|system|README\.md|manifest\.json)$")
    return {n for n in names if wanted.match(n)}


# ---- names and options (no build) --------------------------------------------------------------

def test_names_come_from_the_source() -> None:
    config = load_config()
    assert default_model_name(config.source, config) == "smol-tools-4b-32k"
    assert default_model_name(REPO, config) == NAME
    assert default_model_name("enfuse/smol-tools-4b", config) == "smol-tools-4b"
    assert default_model_name("enfuse/smol-tools-4b-GGUF@main", config) == "smol-tools-4b"
    assert default_repo_id(NAME, config) == "enfuse/smol-tools-4b-16k-GGUF"
    assert default_repo_id(config.name, config) == config.repo_id
    opts = options_from_args(parse([REPO]))
    assert opts.name == NAME and opts.out == Path("out/smol-tools-4b-16k-GGUF")
    assert options_from_args(parse([])).out == Path("out/smol-tools-4b-32k-GGUF")
    assert options_from_args(parse([REPO, "--model-name", "x"])).name == "x"


def test_local_folder_names_and_context_length(tmp_path: Path) -> None:
    folder = tmp_path / "my-checkpoint"
    folder.mkdir()
    config = load_config()
    assert default_model_name(str(folder), config) == "my-checkpoint"
    assert default_model_name(str(folder), config, "enfuse/smol-tools-4b") == "smol-tools-4b"
    assert checkpoint_context_length(folder) is None
    (folder / "config.json").write_text(json.dumps({"text_config": {"max_position_embeddings": 4096}}))
    assert checkpoint_context_length(folder) == 4096  # a multimodal config nests it
    assert memory_contexts((4096, 16384, 32768), 4096) == [4096]
    assert memory_contexts((4096, 16384, 32768), 16384) == [4096, 16384]
    assert memory_contexts((4096, 16384, 32768), 262144) == [4096, 16384, 32768, 262144]


def test_local_folder_without_base_model_refuses_to_publish(tiny_model, tmp_path) -> None:
    from smol_tools.pipeline.package import PackageError
    from smol_tools.pipeline.run import run_package

    out = tmp_path / "out"
    argv = [str(tiny_model.path), "--out", str(out), "--quants", "Q8_0", "--publish"]
    with pytest.raises(PackageError, match="--base-model") as refused:
        run_package(options_from_args(parse(argv)), Progress(io.StringIO()))
    assert "--publish with a local SOURCE" in str(refused.value)
    assert not out.exists()  # refused before any step wrote anything
    with pytest.raises(PackageError, match="not a Hub repo id"):
        run_package(options_from_args(parse(argv + ["--base-model", "not a repo!"])), Progress(io.StringIO()))
    assert not out.exists()


def test_card_without_a_known_base_model_names_none() -> None:
    ok = FileReport("m-q8_0.gguf", "Q8_0", size=2000, bits_per_weight=8.5, sha256="cd" * 32, verified=True)
    common = dict(model_name="m", repo_id="o/m-GGUF", license="apache-2.0", pipeline_tag="text-generation",
                  tags=["gguf"], quantized_by="me", files=[ok], default_quant="Q8_0", template_choice="ours",
                  drift_summary="same", has_mtp=False, context_length=4096,
                  ollama_files=("Modelfile.Q8_0", "template", "params"))
    card = render_card(CardInput(base_model=None, source={"kind": "local"}, **common))
    meta = yaml.safe_load(card.split("---\n")[1])
    assert "base_model" not in meta and "base_model_relation" not in meta
    assert "a local checkpoint whose Hub repo was not given (`--base-model`)" in card
    assert "-c 4096" in card and "n_ctx=4096" in card and "4,096-token context" in card
    stated = render_card(CardInput(base_model="enfuse/smol-tools-4b", source={"kind": "local"}, **common))
    assert yaml.safe_load(stated.split("---\n")[1])["base_model"] == "enfuse/smol-tools-4b"
    assert "local copy of that checkpoint (named with `--base-model`" in stated
    # The card names only the Ollama files that were written.
    bare = render_card(CardInput(base_model="o/m", source={"kind": "local"}, **(common | {"ollama_files": ()})))
    assert card_file_claims(bare) == {"m-q8_0.gguf"}
    assert {"template", "params", "Modelfile.Q8_0"} <= card_file_claims(card)


# ---- a build of the 16K sibling from the Hub (stand-in) ----------------------------------------

@pytest.fixture(scope="module")
def built_16k(tiny_model, tmp_path_factory):
    import huggingface_hub

    from smol_tools.pipeline.run import run_package
    from tests.test_package_units import FakeHub

    root = tmp_path_factory.mktemp("family")
    hub = FakeHub(checkpoint_16k(tiny_model, root / "hub-files"), [SHA, "d" * 40])
    argv = [REPO, "--out", str(root / "out"), "--declare-pre", "qwen35", "--quants", "Q8_0",
            "--imatrix", "off", "--no-memory-check", *THREADS]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(huggingface_hub, "snapshot_download", hub.snapshot_download)
        patch.setattr(huggingface_hub, "HfApi", lambda: hub)
        stream = io.StringIO()
        result = run_package(options_from_args(parse(argv)), Progress(stream))
        # The Hub SOURCE is its own provenance: --publish needs no --base-model.
        published = run_package(options_from_args(parse(argv + ["--resume", "--publish"])), Progress(io.StringIO()))
    return result, published, hub, stream.getvalue()


@pytest.mark.slow
def test_sibling_build_is_named_and_sized_after_its_checkpoint(built_16k) -> None:
    from gguf import GGUFReader

    result, _, _, log = built_16k
    out = result.out
    assert not result.failed, [f.problems for f in result.failed]
    assert [f.name for f in result.files] == [f"{NAME}-bf16.gguf", f"{NAME}-q8_0.gguf"]
    assert out.name == "out" and result.plan.repo_id == "enfuse/smol-tools-4b-16k-GGUF"
    reader = GGUFReader(out / f"{NAME}-q8_0.gguf")
    assert reader.get_field("qwen35.context_length").contents() == 16384
    assert reader.get_field("general.name").contents() == NAME
    # Ollama: the per-quant Modelfile and the Hub params say 16K, as Ollama's parser reads them.
    modelfile = parse_modelfile_with_ollama((out / "Modelfile.Q8_0").read_text(), out)
    assert modelfile["parameters"]["num_ctx"] == 16384 and modelfile["from_path"] == str(out / f"{NAME}-q8_0.gguf")
    assert json.loads((out / "params").read_text()) == ollama_params(context_length=16384)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"] == NAME and manifest["base_model"] == REPO and manifest["context_length"] == 16384
    assert manifest["source"]["repo_id"] == REPO and manifest["source"]["revision"] == SHA
    assert f"source      hub {REPO}@{SHA[:12]}" in log


@pytest.mark.slow
def test_sibling_card_names_its_own_model(built_16k) -> None:
    result, _, _, _ = built_16k
    card = (result.out / "README.md").read_text()
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["base_model"] == REPO and meta["base_model_relation"] == "quantized"
    assert f"# {NAME} GGUF" in card
    assert f"GGUF quantizations of [{REPO}](https://huggingface.co/{REPO})" in card
    assert f"at commit `{SHA}`" in card and "16,384-token context" in card
    assert "-c 16384" in card and "n_ctx=16384" in card
    assert "Total @ 16K ctx" in card and "Total @ 4K ctx" in card and "@ 32K" not in card
    assert "smol-tools-4b-32k" not in card and "32768" not in card


@pytest.mark.slow
def test_every_file_the_card_names_is_uploaded(built_16k) -> None:
    result, published, hub, _ = built_16k
    card = (result.out / "README.md").read_text()
    claims = card_file_claims(card)
    assert {f"{NAME}-q8_0.gguf", "Modelfile.Q8_0", *HUB_OLLAMA_FILES} <= claims
    assert claims <= set(result.plan.files), claims - set(result.plan.files)
    assert "system" not in claims and not (result.out / "system").exists()
    uploads = [c for c in hub.calls if c[0] == "upload_folder"]
    assert len(uploads) == 1 and uploads[0][1] == "enfuse/smol-tools-4b-16k-GGUF"
    assert claims <= set(uploads[0][2]["allow_patterns"]) == set(published.plan.files)
