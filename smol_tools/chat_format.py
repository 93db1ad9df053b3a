"""The prompt format as data: load `templates/`, render prompts, expose stop tokens.

Rendering mirrors Hugging Face transformers' `apply_chat_template` exactly (same jinja2
environment options, the same globals and `tojson` filter, the same aliasing of reasoning
fields), so a prompt rendered here is byte-identical to the one the model was trained on.
Tests prove it against transformers itself. Templates from elsewhere (a checkpoint, a GGUF)
render in transformers' immutable sandbox; our own shipped template, rendered every round of
every session, skips the sandbox's per-attribute checks, which cost half the render time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, Mapping, Sequence

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

# The packaged copy (package data, so an installed wheel renders prompts); the repository's
# root templates/ is the user-facing copy, kept byte-identical by tests/test_package_data.py.
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
JINJA_TEMPLATE_PATH = TEMPLATES_DIR / "smol-tools.jinja"
PARAMS_PATH = TEMPLATES_DIR / "params.json"

# transformers copies a message's reasoning from these names into `reasoning_content`.
REASONING_FIELDS = ("reasoning_content", "thinking", "reasoning")


class TemplateRenderError(ValueError):
    """The template refused the conversation (raise_exception) or the input is malformed."""


@dataclass(frozen=True)
class FormatParams:
    """Stop strings, sampling defaults and context length shared by every runtime."""

    model_name: str
    context_length: int
    stop: tuple[str, ...]
    sampling: Mapping[str, float]
    max_tokens: int
    special_tokens: Mapping[str, str | None]


@cache
def load_params(path: Path = PARAMS_PATH) -> FormatParams:
    raw = json.loads(path.read_text(encoding="utf-8"))
    return FormatParams(
        model_name=raw["model_name"],
        context_length=int(raw["context_length"]),
        stop=tuple(raw["stop"]),
        sampling=dict(raw["sampling"]),
        max_tokens=int(raw["max_tokens"]),
        special_tokens=dict(raw["special_tokens"]),
    )


def load_template(path: Path = JINJA_TEMPLATE_PATH) -> str:
    return _read_cached(path, path.stat().st_mtime_ns)


@cache
def _read_cached(path: Path, mtime_ns: int) -> str:
    # Keyed by mtime so an edited template is picked up; one stat instead of a read per render.
    return path.read_text(encoding="utf-8")


def _tojson(x: Any, ensure_ascii: bool = False, indent: int | None = None,
            separators: tuple[str, str] | None = None, sort_keys: bool = False) -> str:
    # jinja2's built-in tojson HTML-escapes and sorts keys; HF's does neither.
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def _raise_exception(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


@cache
def _compile(template_source: str, sandboxed: bool = True) -> jinja2.Template:
    environment = ImmutableSandboxedEnvironment if sandboxed else jinja2.Environment
    env = environment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env.from_string(template_source)


def _alias_reasoning(message: Mapping[str, Any]) -> dict[str, Any]:
    reasoning = next((message[k] for k in REASONING_FIELDS if message.get(k) is not None), None)
    if reasoning is None:
        return dict(message)
    return {"thinking": reasoning, **message, "reasoning_content": reasoning}


def render_prompt(
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None = None,
    *,
    add_generation_prompt: bool = True,
    enable_thinking: bool = True,
    template: str | None = None,
) -> str:
    """Render the exact prompt string for `messages` (OpenAI chat format) and `tools`."""
    if not isinstance(messages, Sequence) or isinstance(messages, (str, bytes)):
        raise TemplateRenderError("messages must be a list of message objects")
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise TemplateRenderError(f"message {i} is not an object: {message!r}")
        if "role" not in message:
            raise TemplateRenderError(f"message {i} has no role")
    ours = load_template()
    # Only our own shipped template is trusted outside the sandbox (a caller's text equal to it
    # is the same template).
    source = template if template is not None else ours
    compiled = _compile(source, sandboxed=source != ours)
    try:
        return compiled.render(
            messages=[_alias_reasoning(m) for m in messages],
            tools=list(tools) if tools is not None else None,
            documents=None,
            add_generation_prompt=add_generation_prompt,
            enable_thinking=enable_thinking,
        )
    except jinja2.exceptions.TemplateError as exc:
        raise TemplateRenderError(str(exc)) from exc


def generation_prompt(enable_thinking: bool = True) -> str:
    """The text that opens an assistant turn; the model's output continues from it."""
    return "<|im_start|>assistant\n" + ("<think>\n" if enable_thinking else "<think>\n\n</think>\n\n")


def stop_strings() -> list[str]:
    return list(load_params().stop)
