"""Render prompts with @huggingface/jinja, the JavaScript Jinja engine of the Hugging Face Hub
and transformers.js (Node, from npm).

The pinned package (hf_jinja_harness/package.json) is installed once into
~/.cache/smol-tools/hf-jinja/<version>/ with npm (scripts/setup.sh does it for the tests);
`hf_jinja_harness/render.mjs` renders a batch of conversations in one Node process. Messages
reach the engine as transformers.js passes them: as given, parsed from JSON by JavaScript, so
what JavaScript cannot represent (integers beyond 2**53, 1.0 as distinct from 1, the order of
integer-like object keys) is the engine's input, not a template difference.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

from .chat_format import load_template

HARNESS_DIR = Path(__file__).resolve().parent / "hf_jinja_harness"  # package data
PACKAGE = "@huggingface/jinja"
# The folder scripts/setup.sh installs into (SMOL_TOOLS_CACHE, as for the other cached builds).
CACHE_ROOT = Path(os.environ.get("SMOL_TOOLS_CACHE") or Path.home() / ".cache" / "smol-tools") / "hf-jinja"


class HfJinjaError(RuntimeError):
    """Node or the pinned @huggingface/jinja is missing, or the renderer failed."""


def pinned_version() -> str:
    manifest = json.loads((HARNESS_DIR / "package.json").read_text(encoding="utf-8"))
    return manifest["dependencies"][PACKAGE]


def _module_entry(folder: Path) -> Path:
    return folder / "node_modules" / "@huggingface" / "jinja" / "dist" / "index.js"


@functools.cache
def ensure_hf_jinja() -> Path:
    """The pinned @huggingface/jinja's ES module entry, installed with npm on first use."""
    version = pinned_version()
    folder = CACHE_ROOT / version
    entry = _module_entry(folder)
    if entry.is_file():
        return entry
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise HfJinjaError("Node.js and npm are needed for --engine hf-jinja "
                           "(Debian/Ubuntu: apt-get install nodejs npm)")
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    # Install into a private folder and rename it into place: no half-installed cache entry.
    work = Path(tempfile.mkdtemp(prefix=".install-", dir=CACHE_ROOT))
    try:
        shutil.copyfile(HARNESS_DIR / "package.json", work / "package.json")
        proc = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--ignore-scripts",
                               "--save-exact", f"{PACKAGE}@{version}"],
                              cwd=work, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0 or not _module_entry(work).is_file():
            raise HfJinjaError(f"npm install {PACKAGE}@{version} failed:\n{proc.stderr.strip()[-2000:]}")
        try:
            work.rename(folder)
        except OSError:  # another process finished first: use theirs
            if not entry.is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return entry


def render_cases_with_hf_jinja(cases: Sequence[Mapping[str, Any]], template: str | None = None) -> list[dict[str, str]]:
    """Each case ({messages, tools, add_generation_prompt, enable_thinking}) rendered by
    @huggingface/jinja: {"prompt": text} or {"error": the engine's message}."""
    entry = ensure_hf_jinja()
    payload = json.dumps({"template": template if template is not None else load_template(),
                          "cases": [{"messages": c["messages"], "tools": c.get("tools"),
                                     "add_generation_prompt": c.get("add_generation_prompt", True),
                                     "enable_thinking": c.get("enable_thinking", True)} for c in cases]},
                         ensure_ascii=False)
    proc = subprocess.run(["node", str(HARNESS_DIR / "render.mjs")], input=payload, capture_output=True,
                          text=True, encoding="utf-8", timeout=300,
                          env={**os.environ, "SMOL_TOOLS_HF_JINJA": str(entry)})
    if proc.returncode != 0:
        raise HfJinjaError(f"@huggingface/jinja renderer failed: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout)


def render_with_hf_jinja(messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] | None = None,
                         *, add_generation_prompt: bool = True, enable_thinking: bool = True) -> str:
    """One conversation through @huggingface/jinja; its error becomes HfJinjaError."""
    [result] = render_cases_with_hf_jinja([{"messages": list(messages), "tools": list(tools) if tools else None,
                                            "add_generation_prompt": add_generation_prompt,
                                            "enable_thinking": enable_thinking}])
    if "error" in result:
        raise HfJinjaError(f"@huggingface/jinja: {result['error']}")
    return result["prompt"]
