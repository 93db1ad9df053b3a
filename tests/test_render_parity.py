"""The same corpus renders byte-identical prompts through our jinja2 renderer (= transformers),
llama.cpp's own Jinja engine (a real llama-server's /apply-template, template read from the
GGUF) and llama-cpp-python's chat formatter (template read from the GGUF). The Go template
twin is checked in test_ollama_template.py."""

from __future__ import annotations

import pytest

from smol_tools.chat_format import load_template
from smol_tools.llamacpp.server import LlamaServerError
from tests.conftest import render_corpus
from tests.fixtures.server_render import SERVER_INPUT_LIMITS, ours_render, server_render

CASES = render_corpus()
# SERVER_INPUT_LIMITS: input shapes llama-server's message parser refuses or does not alias; each
# is asserted explicitly below rather than skipped.
# llama-cpp-python passes messages as given: it does not copy `thinking` into
# `reasoning_content` the way transformers does.
LLAMA_CPP_PYTHON_INPUT_LIMITS = {"reasoning_field_thinking_alias"}


@pytest.mark.parametrize("case", [c for c in CASES if c["id"] not in SERVER_INPUT_LIMITS],
                         ids=lambda c: c["id"])
def test_llama_server_renders_identically(tiny_llama_server, case: dict) -> None:
    assert server_render(tiny_llama_server, case) == ours_render(case)


def test_llama_server_input_limits_are_what_we_document(tiny_llama_server) -> None:
    by_id = {c["id"]: c for c in CASES}
    # Tool calls without the OpenAI {"type": "function", "function": ...} wrapper are refused.
    with pytest.raises(LlamaServerError, match="Missing tool call type"):
        server_render(tiny_llama_server, by_id["unwrapped_call_objects"])
    # `thinking` is not read as reasoning: the kept think block renders empty.
    case = by_id["reasoning_field_thinking_alias"]
    assert "<think>\n\n</think>\n\nHello" in server_render(tiny_llama_server, case)
    renamed = {**case, "messages": [
        {k if k != "thinking" else "reasoning_content": v for k, v in m.items()} for m in case["messages"]]}
    assert server_render(tiny_llama_server, renamed) == ours_render(case)


@pytest.fixture(scope="module")
def embedded_template(tiny_gguf_f16) -> str:
    from llama_cpp import Llama

    llm = Llama(model_path=str(tiny_gguf_f16), vocab_only=True, verbose=False)
    template = llm.metadata["tokenizer.chat_template"]
    assert template == load_template()
    return template


def _llama_cpp_python_render(template: str, case: dict) -> str:
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    formatter = Jinja2ChatFormatter(template, eos_token="<|im_end|>", bos_token="",
                                    add_generation_prompt=case["add_generation_prompt"])
    return formatter(messages=case["messages"], tools=case["tools"],
                     enable_thinking=case["enable_thinking"]).prompt


@pytest.mark.parametrize("case", [c for c in CASES if c["id"] not in LLAMA_CPP_PYTHON_INPUT_LIMITS],
                         ids=lambda c: c["id"])
def test_llama_cpp_python_formatter_renders_identically(embedded_template: str, case: dict) -> None:
    assert _llama_cpp_python_render(embedded_template, case) == ours_render(case)


def test_llama_cpp_python_does_not_alias_thinking(embedded_template: str) -> None:
    case = next(c for c in CASES if c["id"] == "reasoning_field_thinking_alias")
    assert "<think>\n\n</think>\n\nHello" in _llama_cpp_python_render(embedded_template, case)


def test_llama_server_parses_our_tool_calls(tiny_llama_server) -> None:
    """llama-server --jinja recognises our template as a tool-aware one: calls come back parsed."""
    from devkit.scripted import load_scripted

    tools = load_scripted()["tools"]
    reply = tiny_llama_server.post("/v1/chat/completions", {
        "messages": [{"role": "user", "content": "What time is it in Tokyo?"}],
        "tools": tools, "temperature": 0})
    choice = reply["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]["function"]
    assert call["name"] == "get_current_datetime"
    assert call["arguments"] == '{"timezone": "Asia/Tokyo"}'
    assert choice["message"]["reasoning_content"].strip() == (
        "The user wants the time in Tokyo. I will call get_current_datetime.")
