"""A turn llama-server generates but cannot parse is kept (issue 19 §6): real llama-server.

What it refuses: llama-server's lazy tool-call grammar keeps sampled calls valid, and its
parser is lenient with a turn cut by max_tokens, so greedy runs of the tiny model never hit
the refusal (every scripted turn, with reasoning flipped, with the call's closing tokens or
end-of-turn banned: all 200). An assistant prefill does: the server continues the final
assistant message and parses prefill + output with the template's parser, which fails on a
call to a tool the request does not declare (common/chat.cpp `common_chat_peg_parse`:
"The model produced output that does not match the expected peg-native format"), with HTTP
500 to a plain request and an `error` event to a streamed one, and no text either way."""

from __future__ import annotations

import httpx
import pytest

from smol_tools.backends.base import BackendError, SamplingParams
from smol_tools.events import TurnComplete
from smol_tools.backends.openai_compat import OpenAICompatBackend
from smol_tools.llamacpp.server import LlamaServer
from devkit.scripted import load_scripted, scripted_turns

pytestmark = pytest.mark.slow

CALL_TURN = next(t for t in scripted_turns() if t.message.get("tool_calls") and t.turn_index == 0)
UNDECLARED = '<tool_call>\n{"name": "not_a_declared_tool", "arguments": {"x": 1}}\n</tool_call>'
MESSAGES = CALL_TURN.history + [{"role": "assistant", "content": UNDECLARED}]


@pytest.fixture(scope="module")
def server(tiny_gguf_f16):
    with LlamaServer(tiny_gguf_f16, ctx_size=2048) as running:
        yield running


def _body(stream: bool) -> dict:
    return {"messages": MESSAGES, "tools": load_scripted()["tools"], "temperature": 0, "max_tokens": 20,
            "stream": stream, "chat_template_kwargs": {"enable_thinking": CALL_TURN.thinking}}


def test_the_server_refuses_this_output(server: LlamaServer) -> None:
    plain = httpx.post(f"{server.base_url}/v1/chat/completions", json=_body(False), timeout=120)
    assert plain.status_code == 500
    assert "does not match the expected" in plain.json()["error"]["message"]
    streamed = httpx.post(f"{server.base_url}/v1/chat/completions", json=_body(True), timeout=120)
    events = [line for line in streamed.text.splitlines() if line.startswith("data: ")]
    assert '"error"' in events[-1] and "does not match the expected" in events[-1]
    assert not any('"content":"' in e or '"tool_calls"' in e for e in events)  # no text at all


def test_openai_backend_keeps_the_turn_and_says_the_server_could_not_parse_it(server: LlamaServer) -> None:
    backend = OpenAICompatBackend(server.base_url)
    events = list(backend.stream_turn(MESSAGES, load_scripted()["tools"],
                                      sampling=SamplingParams.greedy(max_tokens=20),
                                      enable_thinking=CALL_TURN.thinking))
    done = events[-1]
    assert isinstance(done, TurnComplete)
    # Our parser reads the call the server refused (the agent then reports the unknown tool).
    assert [(c.name, c.arguments) for c in done.result.tool_calls] == [("not_a_declared_tool", {"x": 1})]
    assert done.raw is not None and done.raw.startswith(UNDECLARED)
    assert done.finish_reason == "tool_calls"
    assert any("llama-server could not parse this output" in note and "does not match the expected" in note
               for note in done.result.notes), done.result.notes
    assert done.usage.completion_tokens > 0


def test_other_server_errors_still_fail_clearly(server: LlamaServer) -> None:
    # Two trailing assistant messages: a bad request (400), not an output to recover.
    bad = MESSAGES + [{"role": "assistant", "content": "again"}]
    backend = OpenAICompatBackend(server.base_url)
    with pytest.raises(BackendError, match="HTTP 400"):
        list(backend.stream_turn(bad, load_scripted()["tools"], sampling=SamplingParams.greedy(max_tokens=5)))
