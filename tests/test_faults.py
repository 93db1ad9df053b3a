"""Runtime faults through the OpenAI-compatible adapter and the agent: a connection reset
mid-stream, a server that stalls, a server that sends malformed JSON. Each gives a clear
error, the session history up to that point is kept, and the next turn works.

The faulty peer is a small local HTTP server on 127.0.0.1 speaking the OpenAI streaming
format (server-sent events) and misbehaving on purpose; real llama-server runs are in
test_backends.py."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from smol_tools.agent import Agent, AgentConfig, ToolOutcome
from smol_tools.backends.openai_compat import OpenAICompatBackend
from devkit.scripted import load_scripted

TOOLS = load_scripted()["tools"]


def sse(delta: dict[str, Any], finish: str | None = None) -> bytes:
    chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m",
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(chunk)}\n\n".encode()


GOOD = [sse({"role": "assistant", "content": "All "}), sse({"content": "good."}), sse({}, "stop"),
        b"data: [DONE]\n\n"]


class FaultyServer:
    def __init__(self) -> None:
        self.mode = "good"
        faulty = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                if self.path != "/v1/chat/completions":  # e.g. /tokenize: not offered
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                mode = faulty.mode
                if mode == "bad_json":
                    chunks = [sse({"role": "assistant", "content": "Hal"}), b"data: {\"choices\": [{\"delta\": \n\n"]
                elif mode in ("reset", "stall"):
                    chunks = [sse({"role": "assistant", "content": "Half an ans"})]
                else:
                    chunks = GOOD
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for data in chunks:
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                    self.wfile.flush()
                if mode == "reset":
                    # Abort the TCP connection mid-stream (RST), like a crashed server.
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    self.rfile.close()  # the file objects hold the socket open; drop them first
                    self.wfile.close()
                    self.connection.close()
                    self.close_connection = True
                    return
                if mode == "stall":
                    time.sleep(5)
                    return
                self.wfile.write(b"0\r\n\r\n")

        class QuietServer(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # the resets are deliberate; keep the test log clean

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def faulty() -> FaultyServer:
    server = FaultyServer()
    yield server
    server.server.shutdown()


@pytest.mark.parametrize("mode, expected", [
    ("reset", "lost the connection"),
    ("stall", "did not answer within 1s"),
    ("bad_json", "malformed stream"),
])
def test_fault_is_a_clear_error_and_the_next_turn_works(faulty, mode: str, expected: str) -> None:
    backend = OpenAICompatBackend(faulty.url, timeout_s=1)
    messages = [{"role": "user", "content": "first question"}, {"role": "assistant", "content": "first answer"},
                {"role": "user", "content": "second question"}]
    before = [dict(m) for m in messages]
    faulty.mode = mode
    agent = Agent(backend, TOOLS, lambda n, a: ToolOutcome("unused"), config=AgentConfig())
    finished = list(agent.run(messages))[-1]
    assert finished.reason == "error"
    assert expected in finished.message
    assert messages == before  # history kept, nothing half-written added
    faulty.mode = "good"
    finished = list(agent.run(messages))[-1]
    assert finished.reason == "answer" and finished.content == "All good."
    assert messages[-1] == {"role": "assistant", "content": "All good.", "reasoning_content": ""}
