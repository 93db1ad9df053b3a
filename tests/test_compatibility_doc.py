"""docs/compatibility.md states facts the code can check: the sampling-key table is what the
pipeline writes (templates/params.json through gguf_doctor.SAMPLING_KEYS), the Ollama MTP
Modelfile variant parses as `ollama create` parses it (the Go harness reproduces Ollama's
Modelfile parser and the release each parameter first appeared in), and the minimum versions
are smol_tools/compat.py's (the table the model card's "Runs on" list, the Modelfiles' REQUIRES
and the wheel's llama extra take theirs from)."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

from smol_tools.chat_format import load_params
from smol_tools.compat import RUNTIME_FLOORS
from smol_tools.gguf_doctor import SAMPLING_KEYS
from smol_tools.ollama_render import parse_modelfile_with_ollama
from smol_tools.pipeline.artifacts import FileReport
from smol_tools.pipeline.card import CardInput, render_card
from smol_tools.pipeline.modelfile import OLLAMA_REQUIRES, render_modelfile

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


VERSION = re.compile(r"\bb\d{4,}\b|\b\d+\.\d+\.\d+\b")  # a llama.cpp build tag or a release number


def _floor_rows() -> list[tuple[str, str]]:
    """(Runtime cell, Minimum version cell) of the first table."""
    table = DOC.split("| Runtime | Minimum version |", 1)[1].split("\n\n", 1)[0]
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    return [(cells[0].removeprefix("| "), cells[1]) for cells in rows]


def test_the_minimum_versions_are_the_compat_table() -> None:
    rows = _floor_rows()
    assert len(rows) >= len(RUNTIME_FLOORS)
    for runtime_cell, minimum_cell in rows:  # every row's floor is one the code knows
        [floor] = [f for f in RUNTIME_FLOORS if runtime_cell.startswith(f.runtime)]
        assert VERSION.findall(minimum_cell)[0] == floor.minimum, runtime_cell
    for floor in RUNTIME_FLOORS:  # every floor the code knows has its row
        assert any(cell.startswith(floor.runtime) for cell, _ in rows), floor.runtime
    # "Where the floors come from" names the same versions.
    sourced = dict(re.findall(r"^- \*\*(.+?) (b\d+|\d+\.\d+\.\d+)\*\*", DOC, re.M))
    assert sourced == {f.runtime: f.minimum for f in RUNTIME_FLOORS if f.runtime != "LM Studio"}


def test_the_code_takes_its_floors_from_the_table() -> None:
    floors = {f.runtime: f.minimum for f in RUNTIME_FLOORS}
    assert OLLAMA_REQUIRES == floors["Ollama"]
    assert f"\nREQUIRES {floors['Ollama']}\n" in render_modelfile("m-q8_0.gguf")
    pyproject = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    assert pyproject["project"]["optional-dependencies"]["llama"] == [f"llama-cpp-python>={floors['llama-cpp-python']}"]


def test_the_model_card_lists_the_floors() -> None:
    file = FileReport("m-q8_0.gguf", "Q8_0", size=2000, bits_per_weight=8.5, sha256="cd" * 32, verified=True)
    card = render_card(CardInput(
        model_name="m", repo_id="o/m-GGUF", base_model="o/m", license="apache-2.0", pipeline_tag="text-generation",
        tags=["gguf"], quantized_by="me", files=[file], default_quant="Q8_0", source={"kind": "local"},
        template_choice="ours", drift_summary="same", has_mtp=False))
    runs_on = card.split("## Runs on\n", 1)[1].split("\n## ", 1)[0]
    listed = [line for line in runs_on.splitlines() if line.startswith("- ")]
    assert listed == [f.card_line() for f in RUNTIME_FLOORS]
    assert all(f"{f.runtime}: " in line and f.minimum in line for f, line in zip(RUNTIME_FLOORS, listed))
    assert "- llama.cpp: b7990 or newer" in runs_on and "- Ollama: 0.17.5 or newer" in runs_on
