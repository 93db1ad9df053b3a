"""Does a server render our prompt? Ask llama-server's `/apply-template` for one probe
conversation and compare its prompt with our template's, byte for byte.

A published GGUF someone else built may embed another chat template (Qwen3.5's stock one asks
for XML calls); llama-server `--jinja` then prompts the model in a format it was not trained on
and tool calls quietly degrade. A connection test is the moment to say so, with the fix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from ..chat_format import TemplateRenderError, render_prompt

FIX = ("restart llama-server with `--jinja --chat-template-file templates/smol-tools.jinja`, or fix "
       "the file once with `smol-tools retemplate IN.gguf OUT.gguf` (then no flag is needed)")

# One tool, one call, its result and a generation prompt: enough to tell the call format, the
# tool listing and the result wrapping of a foreign template from ours.
_PROBE_TOOLS: list[dict[str, Any]] = [{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}},
                   "required": ["city"]}}}]
_PROBE_MESSAGES: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "", "tool_calls": [{"id": "call_0", "type": "function", "function": {
        "name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
    {"role": "tool", "tool_call_id": "call_0", "content": '{"temp_c": 18}'},
]


@dataclass(frozen=True)
class TemplateProbe:
    matches: bool | None  # None: the server cannot tell (no /apply-template: vLLM, LM Studio, Ollama)
    detail: str = ""


def _first_difference(ours: str, theirs: str) -> str:
    at = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
    return (f"first difference at char {at}: ours {ours[max(0, at - 15): at + 35]!r}, "
            f"server {theirs[max(0, at - 15): at + 35]!r}")


def probe_server_template(client: httpx.Client, *, timeout_s: float = 10.0) -> TemplateProbe:
    """Render the probe on the server and compare. `client` has the server's base URL."""
    payload = {"messages": _PROBE_MESSAGES, "tools": _PROBE_TOOLS, "add_generation_prompt": True,
               "chat_template_kwargs": {"enable_thinking": True}}
    try:
        response = client.post("/apply-template", json=payload, timeout=timeout_s)
    except httpx.HTTPError:
        return TemplateProbe(None, "the server could not be asked which prompt it renders")
    if response.status_code == 404:
        return TemplateProbe(None, "the server has no /apply-template (not llama-server)")
    try:
        theirs = response.json()["prompt"]
    except (ValueError, KeyError, TypeError):
        # llama-server answers 500 with the template's own error when the template cannot
        # render the probe: that template is not ours.
        text = " ".join(response.text.split())[:200]
        return TemplateProbe(False, f"the server's chat template fails on a tool conversation ({text})")
    try:
        ours = render_prompt(_PROBE_MESSAGES, _PROBE_TOOLS, add_generation_prompt=True, enable_thinking=True)
    except TemplateRenderError as exc:  # our own template is broken: a bug, say it plainly
        return TemplateProbe(None, f"our template cannot render the probe: {exc}")
    if theirs == ours:
        return TemplateProbe(True, "the server renders smol-tools' prompt format exactly")
    return TemplateProbe(False, "the server renders a different prompt than smol-tools' template ("
                         + _first_difference(ours, theirs) + ")")
