"""docs/compatibility.md states facts the code can check: the sampling-key table is what the
pipeline writes (templates/params.json through gguf_doctor.SAMPLING_KEYS), and the Ollama MTP
Modelfile variant parses as `ollama create` parses it (the Go harness reproduces Ollama's
Modelfile parser and the release each parameter first appeared in)."""

from __future__ import annotations

import re
from pathlib import Path

from smol_tools.chat_format import load_params
from smol_tools.gguf_doctor import SAMPLING_KEYS
from smol_tools.ollama_render import parse_modelfile_with_ollama

DOC = (Path(__file__).resolve().parent.parent / "docs" / "compatibility.md").read_text(encoding="utf-8")


def test_sampling_table_is_what_the_pipeline_writes() -> None:
    rows = re.findall(r"^\| (\w+) \| `(general\.sampling\.\w+)` \| (\w+) \| ([\d.]+) \|$", DOC, re.M)
    sampling = load_params().sampling
    assert {name: key for name, key, _, _ in rows} == {name: key for name, (key, _) in SAMPLING_KEYS.items()}
    for name, _, kind, value in rows:
        assert float(value) == float(sampling[name]), name
        assert kind == ("int32" if SAMPLING_KEYS[name][1] == 5 else "float32")


def test_the_mtp_modelfile_variant_is_valid_for_its_required_version() -> None:
    block = re.search(r"# Modelfile\.mtp[^\n]*\n(.*?)```", DOC, re.S).group(1)
    parsed = parse_modelfile_with_ollama(block)
    assert parsed["from"] == "smol-tools" and parsed["requires"] == "0.30.0"
    assert parsed["parameters"] == {"draft_num_predict": 4}
    assert not parsed.get("newer_than_requires")
    # The same parameter under the base Modelfile's REQUIRES is flagged as too new.
    older = parse_modelfile_with_ollama(block.replace("REQUIRES 0.30.0", "REQUIRES 0.17.5"))
    assert "draft_num_predict" in str(older.get("newer_than_requires"))
