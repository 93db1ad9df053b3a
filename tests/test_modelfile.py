"""The Ollama recipe is generated from templates/: the committed Modelfile is never stale,
and it carries the Go template, the stop tokens and the sampling defaults."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from smol_tools.chat_format import load_params, render_prompt
from smol_tools.pipeline.modelfile import (
    ROOT_MODELFILE,
    hub_ollama_files,
    load_go_template,
    ollama_params,
    render_modelfile,
)
from tests.conftest import render_corpus

ROOT = Path(__file__).resolve().parent.parent


def test_committed_modelfile_is_not_stale() -> None:
    expected = render_modelfile("smol-tools-4b-32k-q4_k_m.gguf")
    assert ROOT_MODELFILE.read_text(encoding="utf-8") == expected, (
        "Modelfile is stale: run `python -m smol_tools.pipeline.modelfile`")


def _directives(text: str) -> list[tuple[str, str]]:
    # Ollama's Modelfile grammar: INSTRUCTION value, values either bare or in triple quotes.
    pattern = re.compile(r'^(FROM|TEMPLATE|SYSTEM|PARAMETER|LICENSE) (?:"""(.*?)"""|([^\n]*))$', re.M | re.S)
    return [(m[1], m[2] if m[2] is not None else m[3]) for m in pattern.finditer(text)]


def test_modelfile_carries_template_stops_and_parameters() -> None:
    directives = _directives(ROOT_MODELFILE.read_text(encoding="utf-8"))
    kinds = [d[0] for d in directives]
    assert kinds[0] == "FROM" and directives[0][1] == "./smol-tools-4b-32k-q4_k_m.gguf"
    assert dict(directives)["TEMPLATE"] == load_go_template()
    parameters = [d[1] for d in directives if d[0] == "PARAMETER"]
    assert 'stop "<|im_end|>"' in parameters and 'stop "<|endoftext|>"' in parameters
    assert not any("</tool_call>" in p for p in parameters)
    assert "num_ctx 32768" in parameters and "temperature 0.1" in parameters
    assert "LICENSE" in kinds


def test_hub_files_for_ollama_run_hf_co() -> None:
    files = hub_ollama_files()
    assert files["template"] == load_go_template()
    params = json.loads(files["params"])
    assert params == ollama_params()
    assert params["stop"] == list(load_params().stop) and params["num_ctx"] == 32768


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
