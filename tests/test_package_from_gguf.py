"""`smol-tools package --from-gguf owner/repo`: republish GGUFs someone else built, fixed.

The "published" repo is served by tests.hub_standin, a local stand-in of the Hub's HTTP API on
127.0.0.1 that the real huggingface_hub client talks to (HF_ENDPOINT). It holds two tiny-model
GGUFs carrying Qwen3.5-4B's stock template, named the way other uploaders name them, and a
README. The build must download both, give them our template without touching tensor data,
verify them and write the card, Modelfiles, Hub Ollama files and upload plan."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from smol_tools.chat_format import load_template
from smol_tools.gguf_doctor import diagnose
from smol_tools.gguf_header import read_header
from smol_tools.pipeline.cli_args import add_package_parser, options_from_args
from smol_tools.pipeline.progress import Progress
from tests.hub_standin import HubStandIn, StandInRepo
from tests.test_doctor_retemplate import STOCK_TEMPLATE, _rewrite, _tensor_bytes

pytestmark = pytest.mark.slow

REPO = "someone/smol-tools-4b-32k"
NAME = "tiny-smol-tools"
FILES = {"Q8_0": "smol-tools-4b-32k.Q8_0.gguf", "F16": "smol-tools-4b-32k-f16.gguf"}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="smol-tools")
    add_package_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["package", *argv])


@pytest.fixture(scope="module")
def published(tiny_gguf_f16, tiny_gguf_q8_0, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("published")
    stock = STOCK_TEMPLATE.read_text(encoding="utf-8")
    return {"Q8_0": _rewrite(tiny_gguf_q8_0, folder / FILES["Q8_0"], stock),
            "F16": _rewrite(tiny_gguf_f16, folder / FILES["F16"], stock)}


@pytest.fixture(scope="module")
def built(published, tmp_path_factory):
    from huggingface_hub import constants

    from smol_tools.pipeline.run import run_package

    root = tmp_path_factory.mktemp("from-gguf")
    files = {name: published[q].read_bytes() for q, name in FILES.items()} | {"README.md": b"# a card\n"}
    hub = HubStandIn({REPO: StandInRepo(files, sha="b" * 40)}).start()
    patch = pytest.MonkeyPatch()
    patch.setenv("HF_ENDPOINT", hub.endpoint)
    patch.setenv("HF_HUB_CACHE", str(root / "hub-cache"))
    patch.delenv("HF_HUB_OFFLINE", raising=False)
    patch.delenv("HF_TOKEN", raising=False)
    patch.setattr(constants, "HF_HUB_OFFLINE", False)
    try:
        args = parse([REPO, "--from-gguf", "--out", str(root / "out"), "--model-name", NAME,
                      "--repo-id", "test-owner/tiny-smol-tools-GGUF", "--threads", "1", "--verify-threads", "1",
                      "--no-memory-check"])
        stream = io.StringIO()
        result = run_package(options_from_args(args), Progress(stream))
        yield result, stream.getvalue(), hub
    finally:
        patch.undo()
        hub.stop()


def test_every_published_quant_is_retemplated_and_verified(built, published) -> None:
    result, log, hub = built
    assert sorted(f.kind for f in result.files) == ["F16", "Q8_0"]
    assert not result.failed, [f.problems for f in result.files]
    assert sorted(Path(p).name for p in hub.downloads()) == sorted(FILES.values())
    for f in result.files:
        path = result.out / f.name
        assert f.name == f"{NAME}-{f.kind.lower()}.gguf"
        assert diagnose(path).ok
        header = read_header(path)
        assert header.get("tokenizer.chat_template") == load_template()
        assert header.get("general.name") == NAME
        assert header.get("general.base_model.count") == 1
        assert _tensor_bytes(path) == _tensor_bytes(published[f.kind])  # weights untouched
    assert "differs from ours" in log and "embedding ours" in log
    assert "retemplate" in log and "verify" in log


def test_card_modelfiles_and_upload_plan(built) -> None:
    result, _, _ = built
    out = result.out
    expected = {f.name for f in result.files} | {"Modelfile.Q8_0", "template", "params", "README.md",
                                                  "manifest.json"}
    assert expected <= set(result.plan.files)
    assert all((out / name).is_file() for name in result.plan.files)
    assert not [name for name in result.plan.files if name.startswith(("source", "build"))]
    card = (out / "README.md").read_text(encoding="utf-8")
    assert f"{NAME}-q8_0.gguf" in card
    # Someone else converted these files: the card says they were retemplated, not converted here.
    assert "Not converted here" in card and "converter and quantizer" not in card
    assert f"[{REPO}](https://huggingface.co/{REPO}) at commit" in card


def test_a_quant_the_repo_lacks_is_refused_with_the_list(built, tmp_path) -> None:
    from smol_tools.pipeline.package import PackageError
    from smol_tools.pipeline.run import run_package

    args = parse([REPO, "--from-gguf", "--out", str(tmp_path / "out"), "--quants", "Q4_K_M"])
    with pytest.raises(PackageError, match="quants there: F16, Q8_0"):
        run_package(options_from_args(args), Progress(io.StringIO()))


def test_doctor_and_retemplate_take_a_hub_spec(built, tmp_path, capsys) -> None:
    """`smol-tools doctor owner/repo:QUANT` diagnoses the published file (the resolver picks it;
    doctor asks for its header's bytes only, which this stand-in answers with the whole file:
    tests/test_doctor_remote.py checks the range reads); its fix line names the spec as typed
    and writes to the current folder."""
    import json

    from smol_tools.cli import main

    capsys.readouterr()
    assert main(["doctor", f"{REPO}:Q8_0", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["template"]["status"] == "different"
    assert report["fix"] == f"smol-tools retemplate {REPO}:Q8_0 smol-tools-4b-32k.Q8_0.smol-tools.gguf"
    out = tmp_path / "fixed.gguf"
    assert main(["retemplate", f"{REPO}:Q8_0", str(out)]) == 0
    assert diagnose(out).ok
    assert main(["retemplate", f"{REPO}:Q8_0", "--in-place"]) == 2
    assert "needs a local file" in capsys.readouterr().err
