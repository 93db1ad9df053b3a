"""Generate Ollama recipes from `templates/`: the root Modelfile, per-quant Modelfiles and the
`template` / `params` / `system` files that `ollama run hf.co/<repo>:<quant>` reads from a
Hugging Face repository. One generator, so they can never disagree.

`python -m smol_tools.pipeline.modelfile` rewrites the committed root Modelfile.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ..chat_format import TEMPLATES_DIR, FormatParams, load_params
from .quantize import hub_file_name

GO_TEMPLATE_PATH = TEMPLATES_DIR / "smol-tools.gotmpl"
SYSTEM_PATH = TEMPLATES_DIR / "system.txt"
ROOT_MODELFILE = TEMPLATES_DIR.parent / "Modelfile"
DEFAULT_QUANT = "Q4_K_M"
LICENSE_TEXT = ("Apache License 2.0 (as the Qwen3.5 base model). "
                "Full text: https://www.apache.org/licenses/LICENSE-2.0")

# Ollama's parameter names for our shared sampling defaults.
OLLAMA_PARAMETER_NAMES = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "repeat_penalty": "repeat_penalty",
    "presence_penalty": "presence_penalty",
}


def load_go_template() -> str:
    return GO_TEMPLATE_PATH.read_text(encoding="utf-8")


def default_system() -> str | None:
    if SYSTEM_PATH.exists():
        text = SYSTEM_PATH.read_text(encoding="utf-8").strip()
        return text or None
    return None


def ollama_params(params: FormatParams | None = None) -> dict[str, Any]:
    """The `params` JSON Ollama applies: stop strings, context length, sampling defaults."""
    params = params or load_params()
    values: dict[str, Any] = {"stop": list(params.stop), "num_ctx": params.context_length}
    for ours, theirs in OLLAMA_PARAMETER_NAMES.items():
        if ours in params.sampling:
            values[theirs] = params.sampling[ours]
    return values


def _triple_quoted(label: str, text: str) -> str:
    # Modelfile multi-line values are delimited by triple quotes and cannot contain them.
    if '"""' in text:
        raise ValueError(f'{label} contains """, which a Modelfile cannot quote')
    return f'{label} """{text}"""'


def _format_value(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def render_modelfile(gguf_name: str) -> str:
    """A complete Modelfile for the GGUF file `gguf_name` (a path relative to the Modelfile)."""
    lines = [
        "# Ollama recipe for smol-tools-4b-32k, generated from templates/ by",
        "# `python -m smol_tools.pipeline.modelfile`; do not edit by hand (a test checks it).",
        "#   ollama create smol-tools -f Modelfile && ollama run smol-tools",
        f"FROM ./{gguf_name}",
        "",
        _triple_quoted("TEMPLATE", load_go_template()),
    ]
    system = default_system()
    if system:
        lines += ["", _triple_quoted("SYSTEM", system)]
    lines.append("")
    for name, value in ollama_params().items():
        for item in value if isinstance(value, list) else [value]:
            lines.append(f"PARAMETER {name} {_format_value(item)}")
    lines += ["", _triple_quoted("LICENSE", LICENSE_TEXT), ""]
    return "\n".join(lines)


def hub_ollama_files() -> dict[str, str]:
    """Files for a Hugging Face GGUF repo so `ollama run hf.co/<repo>` gets our format."""
    files = {"template": load_go_template(),
             "params": json.dumps(ollama_params(), indent=2, ensure_ascii=False) + "\n"}
    system = default_system()
    if system:
        files["system"] = system
    return files


def write_root_modelfile(path: Path = ROOT_MODELFILE) -> Path:
    model_name = load_params().model_name
    path.write_text(render_modelfile(hub_file_name(model_name, DEFAULT_QUANT)), encoding="utf-8")
    return path


if __name__ == "__main__":
    print(write_root_modelfile())
    sys.exit(0)
