"""llama-server on a GGUF someone else built, whose embedded template is not ours (Qwen3.5's
stock template, the one llama.cpp vendors): real llama-server processes on 127.0.0.1.

- As the file is, `--jinja` renders the stock prompt: the tiny model (trained on our format)
  does not answer a scripted turn with its call parsed into `tool_calls`, and both backends'
  connection test says what is wrong and how to fix it.
- With `--jinja --chat-template-file templates/smol-tools.jinja` the same file works: parsed
  `tool_calls` come back and the connection test passes."""

from __future__ import annotations

import json

import httpx
import pytest

from smol_tools.backends.llama_server_tokens import LlamaServerTokensBackend
from smol_tools.backends.openai_compat import OpenAICompatBackend
from smol_tools.chat_format import JINJA_TEMPLATE_PATH
from smol_tools.llamacpp.server import LlamaServer
from tests.fixtures.foreign_gguf import ensure_foreign_gguf
from devkit.scripted import load_scripted, scripted_turns

pytestmark = pytest.mark.slow

CALL_TURN = next(t for t in scripted_turns() if t.message.get("tool_calls") and t.turn_index == 0)


def _chat(server: LlamaServer) -> dict:
    body = {"messages": CALL_TURN.history, "tools": load_scripted()["tools"], "temperature": 0,
            "max_tokens": 200, "chat_template_kwargs": {"enable_thinking": CALL_TURN.thinking}}
    response = httpx.post(f"{server.base_url}/v1/chat/completions", json=body, timeout=120)
    response.raise_for_status()
    return response.json()["choices"][0]["message"]


def _arguments(value):
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _calls(message: dict) -> list:
    return [(c["function"]["name"], _arguments(c["function"]["arguments"])) for c in message.get("tool_calls") or []]


def _expected_calls() -> list:
    return [(c["function"]["name"], _arguments(c["function"]["arguments"])) for c in CALL_TURN.message["tool_calls"]]


@pytest.fixture(scope="module")
def stock_gguf(tiny_model):
    return ensure_foreign_gguf("qwen35-stock")


def test_stock_template_as_published_gets_no_calls_and_the_check_says_why(stock_gguf) -> None:
    with LlamaServer(stock_gguf) as server:
        message = _chat(server)
        # The stock template prompts for (and parses) the XML form this model was never trained
        # on: the scripted call does not come back. (llama.cpp's grammar for that form may still
        # force something call-shaped out of the model; it is not the call the model meant.)
        assert _calls(message) != _expected_calls(), message
        status = OpenAICompatBackend(server.base_url).check()
        assert not status.ok and status.details["template_matches"] is False
        assert "--chat-template-file templates/smol-tools.jinja" in status.message
        assert "smol-tools retemplate" in status.message and "first difference at char" in status.message
        tokens = LlamaServerTokensBackend(server.base_url).check()
        assert tokens.ok and tokens.details["template_matches"] is False  # it sends our prompt as tokens
        assert "OpenAI-API clients of this server are" in tokens.message


def test_chat_template_file_fixes_the_same_file(stock_gguf) -> None:
    with LlamaServer(stock_gguf, extra_args=["--chat-template-file", str(JINJA_TEMPLATE_PATH)]) as server:
        assert _calls(_chat(server)) == _expected_calls()
        status = OpenAICompatBackend(server.base_url).check()
        assert status.ok and status.details["template_matches"] is True, status.message


def test_a_server_without_apply_template_is_not_judged(tmp_path) -> None:
    # vLLM, LM Studio: no /apply-template. The probe says "cannot tell", never "wrong".
    from smol_tools.backends.server_template import probe_server_template

    transport = httpx.MockTransport(lambda request: httpx.Response(404, json={"error": "not found"}))
    with httpx.Client(base_url="http://127.0.0.1:1", transport=transport) as client:
        assert probe_server_template(client).matches is None
