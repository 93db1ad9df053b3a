"""Render prompts through our Ollama Go TEMPLATE, as Ollama's /api/chat would, without Ollama.

`ollama_harness/` (package data) is a small Go program (standard library only) that reproduces what
Ollama hands a chat template: its message/tool types, its collation of messages, its `json`
and other template helpers, and the Think/IsThinkSet values. This module builds it once
(cached by a hash of its source and the Go version), converts OpenAI-format conversations
into the shape Ollama's /api/chat receives, and runs `templates/smol-tools.gotmpl` through it,
so tests can prove the Go template renders the same bytes as `templates/smol-tools.jinja`.
The same program also reproduces how Ollama extracts thinking and tool calls from a model's
output given that template (`extract_with_ollama`), and how `ollama create -f` parses a
Modelfile (`parse_modelfile_with_ollama`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

from smol_tools.chat_format import REASONING_FIELDS, TEMPLATES_DIR, load_params

GO_TEMPLATE_PATH = TEMPLATES_DIR / "smol-tools.gotmpl"
RENDERER_SOURCE_DIR = Path(__file__).resolve().parent / "ollama_harness"  # package data (Go sources)
CACHE_ROOT = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "smol-tools" / "ollama-render"
BINARY_NAME = "ollama-render"


class OllamaRenderError(RuntimeError):
    """The Go renderer could not be built, or refused the request (its stderr is the message)."""


def _go_version(go: str) -> str:
    out = subprocess.run([go, "version"], capture_output=True, text=True, check=True,
                         env=_go_env(), timeout=60)
    return out.stdout.strip()


def _go_env() -> dict[str, str]:
    # GOTOOLCHAIN=local: newer Go must not try to download another toolchain; no cgo needed.
    return {**os.environ, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}


@functools.cache
def ensure_ollama_renderer() -> Path:
    """Build the Go renderer once per source/toolchain and return the binary's path."""
    go = shutil.which("go")
    if go is None:
        raise OllamaRenderError(
            "the Go toolchain ('go') is not on PATH; it is needed to check the Ollama template "
            "(Debian/Ubuntu: apt-get install golang-go)")
    sources = [RENDERER_SOURCE_DIR / "main.go", RENDERER_SOURCE_DIR / "go.mod",
               *sorted(p for p in RENDERER_SOURCE_DIR.glob("*.go") if p.name != "main.go")]
    missing = [str(p) for p in sources if not p.is_file()]
    if missing:
        raise OllamaRenderError(f"renderer source missing: {', '.join(missing)}")
    digest = hashlib.sha256()
    for path in sources:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(_go_version(go).encode())
    final_dir = CACHE_ROOT / digest.hexdigest()
    binary = final_dir / BINARY_NAME
    if binary.is_file():
        return binary

    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    # Build into a private directory and rename it into place: a finished build appears
    # atomically, and concurrent builders cannot see (or clobber) a half-written binary.
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=CACHE_ROOT))
    try:
        proc = subprocess.run(
            [go, "build", "-trimpath", "-o", str(work / BINARY_NAME), "."],
            cwd=RENDERER_SOURCE_DIR, env=_go_env(), capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            raise OllamaRenderError(f"go build failed:\n{proc.stderr.strip()}")
        try:
            os.rename(work, final_dir)
        except OSError:
            if not binary.is_file():  # not a lost race with another builder: a real failure
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return binary


def _text_content(content: Any) -> str:
    # Ollama messages carry one string; mirror how our Jinja template flattens content.
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Mapping):
        return json.dumps(content, ensure_ascii=False)
    if isinstance(content, Sequence):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and "text" in part:
                parts.append(str(part["text"]))
            else:
                raise ValueError(f"only text content parts can be sent to Ollama: {part!r}")
        return "".join(parts)
    raise ValueError(f"unexpected message content: {content!r}")


def _ollama_tool_call(call: Mapping[str, Any]) -> dict[str, Any]:
    function = call.get("function", call)  # OpenAI-wrapped or bare {"name", "arguments"}
    arguments = function.get("arguments")
    if arguments is None:
        arguments = {}
    elif isinstance(arguments, str):
        # Ollama's ToolCallFunctionArguments is a JSON object, never a string.
        arguments = json.loads(arguments) if arguments.strip() else {}
    if not isinstance(arguments, Mapping):
        raise ValueError(f"tool-call arguments must be a JSON object for Ollama: {arguments!r}")
    out: dict[str, Any] = {"function": {"name": function.get("name", ""),
                                        "arguments": dict(arguments)}}
    if call.get("id"):
        out["id"] = call["id"]
    return out


def to_ollama_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI chat messages -> the messages an /api/chat client sends for the same turn.

    Content becomes one string (parts joined, None -> ""); the reasoning (reasoning_content,
    or its aliases thinking/reasoning, as chat_format reads them) becomes `thinking`; tool
    calls get object arguments; a tool message's `name` becomes `tool_name`.
    """
    out = []
    for message in messages:
        converted: dict[str, Any] = {"role": message["role"],
                                     "content": _text_content(message.get("content"))}
        reasoning = next((message[k] for k in REASONING_FIELDS if message.get(k) is not None), None)
        if reasoning:
            converted["thinking"] = str(reasoning)
        if message.get("tool_calls"):
            converted["tool_calls"] = [_ollama_tool_call(c) for c in message["tool_calls"]]
        if message.get("name") and message["role"] == "tool":
            converted["tool_name"] = message["name"]
        if message.get("tool_call_id"):
            converted["tool_call_id"] = message["tool_call_id"]
        out.append(converted)
    return out


def to_ollama_tools(tools: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]] | None:
    """OpenAI tools -> api.Tools JSON. The shape is the same; Ollama's decoder (mirrored by
    the Go renderer) is what drops schema keywords it has no field for."""
    if tools is None:
        return None
    return [json.loads(json.dumps(tool)) for tool in tools]


def run_ollama_renderer(request: Mapping[str, Any]) -> str:
    """Run the Go renderer on a raw request (see smol_tools/ollama_harness/main.go for its shape)."""
    binary = ensure_ollama_renderer()
    proc = subprocess.run([str(binary)], input=json.dumps(request).encode("utf-8"),
                          capture_output=True, timeout=120)
    if proc.returncode != 0:
        raise OllamaRenderError(proc.stderr.decode("utf-8", "replace").strip())
    return proc.stdout.decode("utf-8")


def inspect_ollama_template(template: str | None = None) -> dict[str, Any]:
    """What Ollama detects in the template: tool-call prefix, thinking tags, variables."""
    source = template if template is not None else GO_TEMPLATE_PATH.read_text(encoding="utf-8")
    return json.loads(run_ollama_renderer({"template": source, "inspect": True}))


def render_with_ollama_template(
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None = None,
    *,
    add_generation_prompt: bool = True,
    enable_thinking: bool = True,
) -> str:
    """The prompt Ollama's /api/chat would render with templates/smol-tools.gotmpl.

    `enable_thinking` is sent as the request's "think"; Ollama has no add_generation_prompt,
    so the renderer refuses a value the last message's role contradicts.
    """
    return run_ollama_renderer({
        "template": GO_TEMPLATE_PATH.read_text(encoding="utf-8"),
        "messages": to_ollama_messages(messages),
        "tools": to_ollama_tools(tools),
        "think": enable_thinking,
        "add_generation_prompt": add_generation_prompt,
    })


def extract_with_ollama(
    output: str,
    tools: Sequence[Mapping[str, Any]],
    *,
    think: bool | None = True,
    chunkings: Sequence[str | int] = ("tokens",),
    messages: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """What Ollama's /api/chat would return for this raw model output, per chunking.

    `tools` (OpenAI format) are the request's tools: Ollama only recognises calls to tools
    the request declares. `think=None` leaves "think" out (Ollama then turns it on for our
    template). The output is cut at our stop strings, as the runner would stop there.
    Returns the Go report: `replies` holds one {"chunking", "chunks", "reply"} per chunking,
    each reply {"thinking", "content", "tool_calls", "dropped_tool_calls"}.
    """
    # The prompt decides whether Ollama's thinking parser starts inside <think>.
    conversation = messages or [{"role": "user", "content": "Hi"}]
    return json.loads(run_ollama_renderer({
        "template": GO_TEMPLATE_PATH.read_text(encoding="utf-8"),
        "messages": to_ollama_messages(conversation),
        "tools": to_ollama_tools(tools),
        "think": think,
        "extract": {"output": output, "stop": list(load_params().stop),
                    "chunkings": list(chunkings)},
    }))


def parse_modelfile_with_ollama(text: str, relative_dir: str | Path | None = None) -> dict[str, Any]:
    """What `ollama create -f FILE` makes of a Modelfile (parser.ParseFile + CreateRequest):
    `from` (a model name, with `from_name` parts) or `from_path` (a local file it resolves to,
    relative to `relative_dir`, the Modelfile's folder), `requires`, `template`, `system`,
    `license`, `parameters` (typed as Ollama's api.Options holds them), `warnings`
    (deprecated parameters), `commands`, and our own `newer_than_requires` (parameters newer
    than the REQUIRES version). Raises OllamaRenderError with Ollama's message when Ollama
    would refuse the file."""
    request = {"text": text, "relative_dir": str(relative_dir) if relative_dir is not None else ""}
    return json.loads(run_ollama_renderer({"modelfile": request}))
