"""Portability traps in the template (issue 19 §4).

- `messages[::-1]` (Qwen's reverse scan for the last real user query; LM Studio's engine once
  rejected reverse slicing): the shipped template scans forward instead. Proven byte-neutral
  here on the whole render corpus against Qwen's reverse scan put back (our renderer =
  transformers), and the shipped forward scan renders identically in @huggingface/jinja and
  llama.cpp's engine (llama-server --chat-template-file).
- `raise_exception` stays: its four calls reject inputs the format cannot express (no
  messages, an unknown role, non-text content parts, content of another type), so a caller
  gets an error instead of a silently wrong prompt. llama.cpp's capability and format
  detection renders the template with synthetic conversations of valid roles and text
  content, which never reach them: llama-server --jinja still reports tool support and
  returns parsed tool_calls (checked below, with the template embedded in the GGUF and given as a file)."""

from __future__ import annotations

import httpx
import pytest

from smol_tools.chat_format import load_template, render_prompt
from smol_tools.hf_jinja_render import render_cases_with_hf_jinja
from smol_tools.llamacpp.server import LlamaServer
from tests.conftest import render_corpus
from devkit.scripted import load_scripted, scripted_turns

CASES = render_corpus()
REVERSE_SCAN = """{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == 'user' %}
        {%- set query = render_content(message.content) | trim %}
        {%- if not (query.startswith('<tool_response>') and query.endswith('</tool_response>')) %}
            {%- set ns.multi_step_tool = false %}
            {%- set ns.last_query_index = index %}
        {%- endif %}
    {%- endif %}
{%- endfor %}
"""
FORWARD_SCAN = """{#- The last real user query (not a wrapped tool result): reasoning is kept only after it. A forward
    scan rather than Qwen's reversed slice of messages, a portability trap (LM Studio's engine once
    rejected it). With no such query it stays the last index. -#}
{%- set ns = namespace(last_query_index=messages|length - 1) %}
{%- for message in messages %}
    {%- if message.role == 'user' %}
        {%- set query = render_content(message.content) | trim %}
        {%- if not (query.startswith('<tool_response>') and query.endswith('</tool_response>')) %}
            {%- set ns.last_query_index = loop.index0 %}
        {%- endif %}
    {%- endif %}
{%- endfor %}
"""
# Input shapes an engine does not accept or alias (asserted in test_render_parity.py / test_hf_jinja.py).
SERVER_INPUT_LIMITS = {"unwrapped_call_objects", "reasoning_field_thinking_alias"}
HF_JINJA_INPUT_LIMITS = {"reasoning_field_thinking_alias"}
CALL_TURN = next(t for t in scripted_turns() if t.message.get("tool_calls") and t.turn_index == 0)


def portable_template() -> str:
    """The shipped template: it carries the forward scan."""
    shipped = load_template()
    assert shipped.count(FORWARD_SCAN) == 1 and "[::-1]" not in shipped
    return shipped


def reverse_scan_template() -> str:
    """The shipped template with Qwen's reverse scan put back: what the forward scan replaced."""
    return portable_template().replace(FORWARD_SCAN, REVERSE_SCAN)


def _render(case: dict, template: str | None = None) -> str:
    return render_prompt(case["messages"], case["tools"], add_generation_prompt=case["add_generation_prompt"],
                         enable_thinking=case["enable_thinking"], template=template)


def test_portable_template_has_no_reverse_slice_and_keeps_its_guards() -> None:
    portable = portable_template()
    assert "[::-1]" not in portable and "|reverse" not in portable.replace(" ", "")
    assert portable.count("raise_exception(") == 4


def test_forward_scan_renders_every_corpus_case_as_the_reverse_scan_did() -> None:
    reverse = reverse_scan_template()
    assert "[::-1]" in reverse
    assert [_render(c, reverse) for c in CASES] == [_render(c) for c in CASES]
    # The corpus exercises the scan: cases where reasoning is dropped before a later user query.
    assert any(c["messages"][-1]["role"] == "tool" for c in CASES)


def test_portable_template_renders_every_corpus_case_identically_in_hf_jinja() -> None:
    results = render_cases_with_hf_jinja(CASES, template=portable_template())
    for case, result in zip(CASES, results):
        if case["id"] not in HF_JINJA_INPUT_LIMITS:
            assert result == {"prompt": _render(case)}, case["id"]


@pytest.fixture(scope="module")
def portable_server(tiny_gguf_f16, tmp_path_factory):
    path = tmp_path_factory.mktemp("portable") / "smol-tools.jinja"
    path.write_text(portable_template(), encoding="utf-8")
    with LlamaServer(tiny_gguf_f16, ctx_size=2048,
                     extra_args=["--no-prefill-assistant", "--chat-template-file", str(path)]) as server:
        yield server


def test_llama_server_renders_the_portable_template_identically(portable_server) -> None:
    for case in CASES:
        if case["id"] in SERVER_INPUT_LIMITS:
            continue
        payload = {"messages": case["messages"], "add_generation_prompt": case["add_generation_prompt"],
                   "chat_template_kwargs": {"enable_thinking": case["enable_thinking"]}}
        if case["tools"]:
            payload["tools"] = case["tools"]
        assert portable_server.post("/apply-template", payload)["prompt"] == _render(case), case["id"]


@pytest.mark.parametrize("which", ["portable", "shipped"])
def test_llama_server_detects_the_tool_call_format_despite_raise_exception(which, portable_server, tiny_llama_server) -> None:
    server = portable_server if which == "portable" else tiny_llama_server
    props = httpx.get(f"{server.base_url}/props", timeout=30).json()
    caps = props["chat_template_caps"]
    assert caps["supports_tools"] and caps["supports_tool_calls"], caps
    reply = server.post("/v1/chat/completions", {
        "messages": CALL_TURN.history, "tools": load_scripted()["tools"], "temperature": 0, "max_tokens": 200,
        "chat_template_kwargs": {"enable_thinking": CALL_TURN.thinking}})
    message = reply["choices"][0]["message"]
    expected = [c["function"]["name"] for c in CALL_TURN.message["tool_calls"]]
    assert [c["function"]["name"] for c in message.get("tool_calls") or []] == expected, message
    assert "<tool_call>" not in (message.get("content") or "")
