"""The Ollama recipes are generated from templates/: the committed `Modelfile` (pulls from the
Hub) and `Modelfile.local` are never stale, and every Modelfile we generate — those two and the
per-quant ones a build writes — is accepted by Ollama's Modelfile parser with the template,
stop tokens, context length and sampling defaults intact (the parser is reproduced from
Ollama's source in smol_tools/ollama_harness/modelfile.go; no Ollama binary here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from smol_tools.chat_format import load_params, render_prompt
from smol_tools.model_source import PUBLISHED_HOME
from smol_tools.ollama_render import OllamaRenderError, parse_modelfile_with_ollama
from smol_tools.pipeline.modelfile import (
    LICENSE_TEXT,
    OLLAMA_REQUIRES,
    ROOT_LOCAL_MODELFILE,
    ROOT_MODELFILE,
    hub_ollama_files,
    load_go_template,
    ollama_params,
    render_hub_modelfile,
    render_modelfile,
    root_modelfiles,
)
from smol_tools.pipeline.quantize import hub_file_name
from tests.conftest import render_corpus

ROOT = Path(__file__).resolve().parent.parent
GGUF_NAME = "smol-tools-4b-32k-q4_k_m.gguf"


def test_committed_modelfiles_are_not_stale() -> None:
    for path, expected in root_modelfiles().items():
        assert path.read_text(encoding="utf-8") == expected, (
            f"{path.name} is stale: run `python -m smol_tools.pipeline.modelfile`")
    assert set(root_modelfiles()) == {ROOT_MODELFILE, ROOT_LOCAL_MODELFILE}


def _accepted(text: str, folder: Path | None = None, *, context_length: int = 32768) -> dict:
    """Ollama's parser takes the file, and what it reads is exactly our format."""
    report = parse_modelfile_with_ollama(text, folder)
    assert report["requires"] == OLLAMA_REQUIRES
    assert report["template"] == load_go_template()  # byte for byte through the parser
    assert report["parameters"] == ollama_params(context_length=context_length)
    assert report["parameters"]["stop"] == list(load_params().stop) == ["<|im_end|>", "<|endoftext|>"]
    assert report["parameters"]["num_ctx"] == context_length
    assert report["license"] == [LICENSE_TEXT]
    assert report["warnings"] == [] and report["newer_than_requires"] == []
    assert "system" not in report  # no default system prompt: it would change every prompt
    return report


def test_root_modelfile_pulls_from_the_hub_and_ollama_accepts_it() -> None:
    text = ROOT_MODELFILE.read_text(encoding="utf-8")
    report = _accepted(text, ROOT)
    # Not a file here, so Ollama takes it as a model name and pulls it from hf.co.
    assert report["from"] == f"hf.co/{PUBLISHED_HOME}:Q4_K_M" == "hf.co/enfuse/smol-tools-4b-32k:Q4_K_M"
    assert report["from_name"] == {"host": "hf.co", "namespace": "enfuse", "model": "smol-tools-4b-32k",
                                   "tag": "Q4_K_M", "valid": True}
    assert "ollama create smol-tools -f Modelfile && ollama run smol-tools" in text


def test_local_modelfile_reads_the_file_next_to_it(tmp_path: Path) -> None:
    text = ROOT_LOCAL_MODELFILE.read_text(encoding="utf-8")
    (tmp_path / "Modelfile.local").write_text(text)
    (tmp_path / GGUF_NAME).write_bytes(b"GGUF")  # a stand-in: the parser only resolves the path
    report = _accepted(text, tmp_path)
    assert report["from_path"] == str(tmp_path / GGUF_NAME) and "from" not in report
    assert f"hf download {PUBLISHED_HOME} {GGUF_NAME} --local-dir ." in text


@pytest.mark.parametrize("context_length", [4096, 16384, 32768])
def test_per_quant_modelfiles_are_accepted(tmp_path: Path, context_length: int) -> None:
    """What a build writes next to each quant, for each context length of the family."""
    for quant in ("Q8_0", "Q4_K_M", "IQ4_XS"):
        name = hub_file_name("smol-tools-4b-16k", quant)
        (tmp_path / name).write_bytes(b"GGUF")
        report = _accepted(render_modelfile(name, context_length=context_length), tmp_path,
                           context_length=context_length)
        assert report["from_path"] == str(tmp_path / name)


def test_hub_modelfile_for_another_repo() -> None:
    report = _accepted(render_hub_modelfile("someone/smol-tools-4b-16k-GGUF", "q8_0", context_length=16384),
                       context_length=16384)
    assert report["from"] == "hf.co/someone/smol-tools-4b-16k-GGUF:Q8_0" and report["from_name"]["valid"]


@pytest.mark.parametrize(("old", "new", "message"), [
    ("PARAMETER top_k 20", "PARAMETER top_kk 20", "unknown parameter 'top_kk'"),
    ("PARAMETER num_ctx 32768", "PARAMETER num_ctx 32k", "invalid int value"),
    ("PARAMETER temperature 0.1", "PARAMETER temperature warm", "invalid float value"),
    (f"REQUIRES {OLLAMA_REQUIRES}", "REQUIRES latest", "requires must be a valid semver"),
    (f"REQUIRES {OLLAMA_REQUIRES}", "REQUIRES 0.17.05", "requires must be a valid semver"),
    (f"REQUIRES {OLLAMA_REQUIRES}", "REQUIRE 0.17.5", "command must be one of"),
    ("FROM hf.co/", "# FROM hf.co/", "no FROM line"),
])
def test_ollama_parser_refuses_what_ollama_refuses(old: str, new: str, message: str) -> None:
    """The check can fail: the same file with one line broken is refused with Ollama's message."""
    text = ROOT_MODELFILE.read_text(encoding="utf-8")
    assert old in text
    with pytest.raises(OllamaRenderError, match=message):
        parse_modelfile_with_ollama(text.replace(old, new, 1), ROOT)


def test_parser_corner_cases_match_ollama() -> None:
    """Cases read off Ollama's parser: case-insensitive commands, v-prefixed REQUIRES, repeated
    stops appended, quotes stripped once, a value ending at the newline once its quotes close,
    a parameter newer than REQUIRES flagged (our own check)."""
    text = ('from some-model\nrequires v0.17.5\nparameter stop "a b"\nPARAMETER stop <x>\n'
            'SYSTEM """one\ntwo"""\nMESSAGE user hi there\nPARAMETER draft_num_predict 4\n'
            "PARAMETER mirostat 1\n")
    report = parse_modelfile_with_ollama(text)
    assert report["from"] == "some-model" and report["from_name"]["host"] == "registry.ollama.ai"
    assert report["requires"] == "0.17.5"
    assert report["parameters"] == {"stop": ["a b", "<x>"], "draft_num_predict": 4}
    assert report["system"] == "one\ntwo"
    assert report["messages"] == [{"role": "user", "content": "hi there"}]
    assert report["warnings"] == ["parameter mirostat is deprecated"]
    assert report["newer_than_requires"] == ["draft_num_predict"]
    with pytest.raises(OllamaRenderError, match="unexpected EOF"):
        parse_modelfile_with_ollama('FROM x\nTEMPLATE """never closed\n')


def test_hub_files_for_ollama_run_hf_co() -> None:
    files = hub_ollama_files()
    assert list(files) == ["template", "params"]
    assert files["template"] == load_go_template()
    params = json.loads(files["params"])
    assert params == ollama_params()
    assert params["stop"] == list(load_params().stop) and params["num_ctx"] == 32768
    assert json.loads(hub_ollama_files(context_length=4096)["params"])["num_ctx"] == 4096


def test_render_cli_engines_agree(tmp_path: Path, tiny_gguf_f16: Path) -> None:
    case = next(c for c in render_corpus() if c["id"] == "parallel_calls")
    (tmp_path / "m.json").write_text(json.dumps(case["messages"]))
    (tmp_path / "t.json").write_text(json.dumps(case["tools"]))
    expected = render_prompt(case["messages"], case["tools"])
    for engine in ("jinja", "ollama", "llama", "llama-cpp-python"):
        args = [sys.executable, "-m", "smol_tools", "render", "--messages", str(tmp_path / "m.json"),
                "--tools", str(tmp_path / "t.json"), "--engine", engine, "--gguf", str(tiny_gguf_f16)]
        result = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert result.returncode == 0, result.stderr
        assert result.stdout == expected, engine


def test_recipes_open_with_what_a_user_needs() -> None:
    # How to create the model and change its context size; nothing about how the repo checks them.
    text = render_modelfile("smol-tools-4b-16k-IQ4_XS.gguf", context_length=16384)
    header = text.split("\nFROM ")[0]
    assert "ollama create smol-tools -f Modelfile.IQ4_XS && ollama run smol-tools" in header
    assert "Context size: 16384 tokens" in header and "/set parameter num_ctx" in header
    for text in (header, ROOT_MODELFILE.read_text(encoding="utf-8").split("\nFROM ")[0]):
        assert "test" not in text and "do not edit" not in text and "python -m" not in text
