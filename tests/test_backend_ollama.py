"""The Ollama adapter against Ollama's documented /api/chat streaming contract.

Ollama's server cannot be installed here, so these tests run the official `ollama` Python
client against a local stand-in HTTP server on 127.0.0.1 that replays responses in Ollama's
documented format (NDJSON chunks: `message.thinking`, `message.content`, whole
`message.tool_calls` with object arguments, a final `done: true` chunk carrying
`done_reason`, `prompt_eval_count`, `eval_count` and durations in nanoseconds; `/api/tags`
and `/api/show` for the connection check). It checks what the adapter sends and what it makes
of the answers; it does not prove Ollama itself renders our template (see
test_ollama_template.py for the Go template)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from smol_tools.agent import Agent, AgentConfig, ToolOutcome
from smol_tools.events import ReasoningDelta, ToolCallCompleted, ToolCallStarted, ToolResultReady, TurnComplete
from smol_tools.backends.base import BackendError, SamplingParams
from smol_tools.backends.ollama import OllamaBackend
from devkit.scripted import load_scripted

TOOLS = load_scripted()["tools"]


def chunk(message: dict[str, Any], done: bool = False, **extra: Any) -> dict[str, Any]:
    return {"model": "smol-tools", "created_at": "2026-11-24T21:00:00.000000Z",
            "message": {"role": "assistant", "content": "", **message}, "done": done, **extra}


DONE = dict(done_reason="stop", total_duration=900_000_000, load_duration=1_000_000,
            prompt_eval_count=412, prompt_eval_duration=300_000_000, eval_count=37,
            eval_duration=500_000_000)
CALL_TURN = [chunk({"thinking": "The user wants "}), chunk({"thinking": "the weather."}),
             chunk({"tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}),
             chunk({}, True, **DONE)]
ANSWER_TURN = [chunk({"content": "It is 18 °C "}), chunk({"content": "in Paris."}), chunk({}, True, **DONE)]
UNPARSED_TURN = [chunk({"content": 'Sure.\n\n<tool_call>\n{"name": "get_weather", '}),
                 chunk({"content": '"arguments": {"city": "Lima"}}\n</tool_call>'}), chunk({}, True, **DONE)]


class StandIn:
    """Replays one scripted list of chunks per /api/chat request; records the requests."""

    def __init__(self, turns: list[list[dict[str, Any]]], *, raw_lines: list[bytes] | None = None,
                 template: str = "{{ .Prompt }} <tool_call>") -> None:
        self.turns = list(turns)
        self.raw_lines = raw_lines
        self.template = template
        self.requests: list[dict[str, Any]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, payload: Any, status: int = 200) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path == "/api/tags":
                    self._json({"models": [{"name": "smol-tools:latest", "model": "smol-tools:latest",
                                            "modified_at": "2026-11-24T20:00:00Z", "size": 2900000000,
                                            "digest": "0" * 64, "details": {"format": "gguf"}}]})
                else:
                    self._json({"error": "not found"}, 404)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path == "/api/show":
                    self._json({"modelfile": "FROM smol-tools", "parameters": 'stop "<|im_end|>"',
                                "template": stand_in.template,
                                "details": {"format": "gguf", "family": "qwen35"},
                                "model_info": {"general.architecture": "qwen35"},
                                "capabilities": ["completion", "tools", "thinking"]})
                    return
                if self.path != "/api/chat":
                    self._json({"error": "not found"}, 404)
                    return
                stand_in.requests.append(body)
                if body.get("model") != "smol-tools":
                    self._json({"error": f"model \"{body.get('model')}\" not found, try pulling it first"}, 404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.end_headers()
                lines = stand_in.raw_lines or [json.dumps(c).encode() + b"\n" for c in stand_in.turns.pop(0)]
                for line in lines:
                    self.wfile.write(line)
                    self.wfile.flush()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stand_in():
    servers: list[StandIn] = []

    def make(*args: Any, **kwargs: Any) -> StandIn:
        servers.append(StandIn(*args, **kwargs))
        return servers[-1]
    yield make
    for server in servers:
        server.close()


def test_turn_events_and_request_shape(stand_in) -> None:
    server = stand_in([CALL_TURN])
    backend = OllamaBackend(server.url, "smol-tools")
    events = list(backend.stream_turn([{"role": "user", "content": "Weather in Paris?"}], TOOLS,
                                      sampling=SamplingParams.greedy(max_tokens=64)))
    assert [e.text for e in events if isinstance(e, ReasoningDelta)] == ["The user wants ", "the weather."]
    assert [e.name for e in events if isinstance(e, ToolCallStarted)] == ["get_weather"]
    completed = [e.call for e in events if isinstance(e, ToolCallCompleted)]
    assert [(c.name, c.arguments) for c in completed] == [("get_weather", {"city": "Paris"})]
    done = events[-1]
    assert isinstance(done, TurnComplete) and done.finish_reason == "tool_calls"
    assert done.result.reasoning == "The user wants the weather."
    assert done.usage.prompt_tokens == 412 and done.usage.completion_tokens == 37
    assert done.usage.generation_seconds == pytest.approx(0.5)
    sent = server.requests[0]
    assert sent["think"] is True and sent["stream"] is True
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent["options"]["temperature"] == 0.0 and sent["options"]["num_predict"] == 64
    assert sent["options"]["stop"] == ["<|im_end|>", "<|endoftext|>"]


def test_agent_round_trip_sends_history_in_ollama_shape(stand_in) -> None:
    server = stand_in([CALL_TURN, ANSWER_TURN])
    agent = Agent(OllamaBackend(server.url, "smol-tools"), TOOLS,
                  lambda name, args: ToolOutcome('{"temperature_c": 18}'), config=AgentConfig())
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    events = list(agent.run(messages))
    assert events[-1].reason == "answer" and events[-1].content == "It is 18 °C in Paris."
    assert [e.outcome.content for e in events if isinstance(e, ToolResultReady)] == ['{"temperature_c": 18}']
    history = server.requests[1]["messages"]
    assert history[1]["thinking"] == "The user wants the weather."
    assert history[1]["tool_calls"] == [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]
    assert history[2] == {"role": "tool", "content": '{"temperature_c": 18}', "tool_name": "get_weather"}


def test_call_left_in_content_is_still_parsed(stand_in) -> None:
    server = stand_in([UNPARSED_TURN])
    done = list(OllamaBackend(server.url, "smol-tools").stream_turn(
        [{"role": "user", "content": "Lima?"}], TOOLS, enable_thinking=False))[-1]
    assert done.result.content == "Sure."
    assert [(c.name, c.arguments) for c in done.result.tool_calls] == [("get_weather", {"city": "Lima"})]
    assert server.requests[0]["think"] is False


def test_check_reports_missing_model_and_template_without_tools(stand_in) -> None:
    server = stand_in([])
    assert OllamaBackend(server.url, "smol-tools").check().ok
    missing = OllamaBackend(server.url, "other").check()
    assert not missing.ok and "ollama create other -f Modelfile" in missing.message
    plain = stand_in([], template="{{ .Prompt }}")
    no_tools = OllamaBackend(plain.url, "smol-tools").check()
    assert not no_tools.ok and "no <tool_call>" in no_tools.message


def test_server_down_and_malformed_stream_are_clear_errors(stand_in) -> None:
    from smol_tools.llamacpp.server import free_port

    down = OllamaBackend(f"http://127.0.0.1:{free_port()}", "smol-tools")
    assert "cannot reach Ollama" in down.check().message
    with pytest.raises(BackendError, match="lost the connection"):
        list(down.stream_turn([{"role": "user", "content": "hi"}]))
    broken = stand_in([], raw_lines=[b'{"model": "smol-tools", "message": {"role": "assis\n'])
    with pytest.raises(BackendError, match="malformed stream"):
        list(OllamaBackend(broken.url, "smol-tools").stream_turn([{"role": "user", "content": "hi"}]))
    with pytest.raises(BackendError, match="not found"):
        list(OllamaBackend(broken.url, "nope").stream_turn([{"role": "user", "content": "hi"}]))
