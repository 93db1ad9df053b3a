"""Generate Ollama recipes from `templates/`: the root `Modelfile` (pulls from the Hub by
itself), `Modelfile.local` (a downloaded file), the per-quant Modelfiles of a build and the
`template` / `params` files that `ollama run hf.co/<repo>:<quant>` reads from a Hugging Face
repository. One generator, so they can never disagree.

`python -m smol_tools.pipeline.modelfile` rewrites the committed `Modelfile` and
`Modelfile.local` (a test fails when they are stale, and another parses them the way Ollama's
Modelfile parser does: smol_tools/ollama_harness).

No SYSTEM and no `system` file: the model was fine-tuned with no system prompt besides the tool
list our template writes, and a default one would change every prompt Ollama renders.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Sequence

from ..chat_format import TEMPLATES_DIR, FormatParams, load_params
from ..compat import OLLAMA
from ..model_source import PUBLISHED_HOME, quant_of
from .atomic import atomic_output
from .quantize import hub_file_name

GO_TEMPLATE_PATH = TEMPLATES_DIR / "smol-tools.gotmpl"
REPO_ROOT = Path(__file__).resolve().parents[2]  # the root recipes are checkout files (`--write-root`)
ROOT_MODELFILE = REPO_ROOT / "Modelfile"
ROOT_LOCAL_MODELFILE = REPO_ROOT / "Modelfile.local"
DEFAULT_QUANT = "Q4_K_M"
OLLAMA_MODEL = "smol-tools"  # the name the recipes create (the app's Ollama default)
# The first Ollama release that loads a qwen35 GGUF written by llama.cpp's converter: 0.17.1
# added the architecture but required a per-layer attention.head_count_kv array, which only
# Ollama's own converter writes (llama.cpp writes one number plus recurrent_layers /
# full_attention_interval), and assumed V heads in grouped order; 0.17.5 (ollama commit
# 8da09b1e7, "qwen3next: add compatibility with imported GGUF models") infers the layout from
# full_attention_interval and defaults ssm.v_head_reordered to true for qwen35, the order
# llama.cpp's converter writes. Ollama records REQUIRES (`ollama show`) but, as of its source
# today, does not refuse to run a model on an older server.
OLLAMA_REQUIRES = OLLAMA  # smol_tools/compat.py: the one table of runtime floors
LICENSE_TEXT = ("Apache License 2.0 (as the Qwen3.5 base model). "
                "Full text: https://www.apache.org/licenses/LICENSE-2.0")
HUB_OLLAMA_FILES = ("template", "params")  # what hub_ollama_files() writes, in that order

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


def ollama_params(params: FormatParams | None = None, *, context_length: int | None = None) -> dict[str, Any]:
    """The `params` JSON Ollama applies: stop strings, context length, sampling defaults.
    `context_length` is the packaged checkpoint's (default: templates/params.json's)."""
    params = params or load_params()
    values: dict[str, Any] = {"stop": list(params.stop),
                              "num_ctx": int(context_length or params.context_length)}
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
        # Ollama strips one pair of surrounding quotes and unescapes nothing: a value that
        # needs escaping cannot be written (the Go harness test proves the round trip).
        if '"' in value or "\n" in value:
            raise ValueError(f"parameter value {value!r} cannot be written in a Modelfile")
        return f'"{value}"'
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _render(from_ref: str, comments: Sequence[str], context_length: int | None) -> str:
    lines = [f"# {line}".rstrip() for line in comments]
    lines += [f"FROM {from_ref}", f"REQUIRES {OLLAMA_REQUIRES}", "",
              _triple_quoted("TEMPLATE", load_go_template()), ""]
    for name, value in ollama_params(context_length=context_length).items():
        for item in value if isinstance(value, list) else [value]:
            lines.append(f"PARAMETER {name} {_format_value(item)}")
    lines += ["", _triple_quoted("LICENSE", LICENSE_TEXT), ""]
    return "\n".join(lines)


def _user_notes(create: str, context_length: int | None) -> list[str]:
    """What a person opening the file needs: how to create the model, how to change the context
    size, and which Ollama it needs. (How the file is generated is in this module, not here.)"""
    n_ctx = int(ollama_params(context_length=context_length)["num_ctx"])
    return ["Create and run the model:",
            f"  {create}",
            f"Context size: {n_ctx} tokens (PARAMETER num_ctx below). To use less memory, lower it here",
            "and create the model again, or for one session type: /set parameter num_ctx 8192",
            "Keep the TEMPLATE as it is: it is the prompt format the model was trained on, tool calls included.",
            f"Needs Ollama {OLLAMA_REQUIRES} or newer (the first release that loads this architecture, qwen35,",
            "from a GGUF converted by llama.cpp)."]


def render_modelfile(gguf_name: str, *, context_length: int | None = None,
                     modelfile_name: str | None = None, download: str | None = None) -> str:
    """A Modelfile for the GGUF file `gguf_name` lying next to it (`FROM ./gguf_name`): the
    per-quant Modelfiles of a build, and the root `Modelfile.local`. `download` is the command
    that fetches the file, for a recipe that ships without it."""
    comments = [f"Ollama recipe for {gguf_name}, which must lie next to this file."]
    if download:
        comments += ["Download the file first:", f"  {download}"]
    if modelfile_name is None:  # a build names its per-quant recipes Modelfile.<QUANT> (package.py)

        quant = quant_of(gguf_name)
        modelfile_name = f"Modelfile.{quant}" if quant else "<this file>"
    create = f"ollama create {OLLAMA_MODEL} -f {modelfile_name} && ollama run {OLLAMA_MODEL}"
    return _render(f"./{gguf_name}", comments + _user_notes(create, context_length), context_length)


def render_hub_modelfile(repo_id: str, quant: str = DEFAULT_QUANT, *, context_length: int | None = None,
                         modelfile_name: str = "Modelfile") -> str:
    """A Modelfile that pulls its GGUF from the Hub (`FROM hf.co/<repo>:<QUANT>`; Ollama picks the
    repo's file whose name carries the quant tag). Our TEMPLATE and PARAMETERs replace whatever
    the Hub derives from the file's embedded template."""
    comments = [f"Ollama recipe for {repo_id}:{quant.upper()}: Ollama downloads the GGUF from the Hugging Face",
                "Hub itself on `ollama create` (no separate download)."]
    create = f"ollama create {OLLAMA_MODEL} -f {modelfile_name} && ollama run {OLLAMA_MODEL}"
    return _render(f"hf.co/{repo_id}:{quant.upper()}", comments + _user_notes(create, context_length),
                   context_length)


def hub_ollama_files(*, context_length: int | None = None) -> dict[str, str]:
    """Files for a Hugging Face GGUF repo so `ollama run hf.co/<repo>` gets our format."""
    files = {"template": load_go_template(),
             "params": json.dumps(ollama_params(context_length=context_length), indent=2,
                                  ensure_ascii=False) + "\n"}
    return files


def root_modelfiles() -> dict[Path, str]:
    """The committed recipes: `Modelfile` pulls the file the model repo publishes today;
    `Modelfile.local` uses the same file downloaded next to it."""
    gguf_name = hub_file_name(load_params().model_name, DEFAULT_QUANT)
    return {
        ROOT_MODELFILE: render_hub_modelfile(PUBLISHED_HOME, DEFAULT_QUANT),
        ROOT_LOCAL_MODELFILE: render_modelfile(
            gguf_name, modelfile_name=ROOT_LOCAL_MODELFILE.name,
            download=f"hf download {PUBLISHED_HOME} {gguf_name} --local-dir ."),
    }


def write_root_modelfiles() -> list[Path]:
    written = []
    for path, text in root_modelfiles().items():
        with atomic_output(path) as partial:
            partial.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for written in write_root_modelfiles():
        print(written)
    sys.exit(0)
