"""Helpers for the app tests: launch `python app.py` on a free port, and a scripted
OpenAI-compatible server that streams real SSE and can die in the middle of a stream.

(The module name starts with test_app so the app tests own it; it holds no tests itself.)"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def wait_for(probe: Callable[[], Any], timeout: float = 30.0, what: str = "a condition") -> Any:
    """Poll `probe` until it returns something true (returned), or fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the deliberate mid-stream drop makes the handler's last flush fail: expected


class AppProcess:
    """`python app.py` as a user runs it, on 127.0.0.1:<free port>, offline (HF_HUB_OFFLINE=1:
    the Hub is unreachable, so the app must fall back to the tiny model and say so).
    `python` and `environ` (instead of this process's environment) run it as someone else would:
    the Space rehearsal's own venv with a Space's variables."""

    def __init__(self, name: str = "app", *, python: str | Path = sys.executable,
                 environ: dict[str, str] | None = None, start_timeout: float = 180.0, **env: str) -> None:
        self.port = free_port()
        base = dict(os.environ if environ is None else environ)
        if environ is None:
            base.pop("GRADIO_SERVER_NAME", None)  # this shell's choice must not expose a test app
        self.env = {**base, "HF_HUB_OFFLINE": "1", "GRADIO_SERVER_PORT": str(self.port),
                    "GRADIO_ANALYTICS_ENABLED": "False", "SMOL_TOOLS_LOG": "WARNING", **env}
        self.python = str(python)
        self.start_timeout = start_timeout
        self.log_path = ARTIFACTS / f"{name}.log"
        self.process: subprocess.Popen | None = None
        self.boot_s = 0.0  # from the launch to the first answer of /gradio_api/info

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float | None = None) -> "AppProcess":
        timeout = self.start_timeout if timeout is None else timeout
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen([self.python, "app.py"], cwd=ROOT, env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT)
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"app.py exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/gradio_api/info", timeout=2) as response:
                    if response.status == 200:
                        self.boot_s = time.monotonic() - started
                        return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"app.py did not answer within {timeout:.0f}s:\n{self.log_tail()}")

    def page(self) -> str:
        with urllib.request.urlopen(f"{self.url}/", timeout=30) as response:
            assert response.status == 200
            return response.read().decode("utf-8", "replace")

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> "AppProcess":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


@pytest.fixture(scope="module")
def app_server(request, tiny_gguf_q8_0):
    """One app process per test module (the tiny GGUF is built before it starts); its log is
    tests/artifacts/<module>.log."""
    with AppProcess(request.module.__name__.rpartition(".")[2]) as app:
        yield app


def client(app: AppProcess):
    from gradio_client import Client

    return Client(app.url, verbose=False, download_files=False)


def call(c, endpoint: str, *args: Any) -> Any:
    """Call a named endpoint; every structured endpoint returns JSON text."""
    result = c.predict(*args, api_name=f"/{endpoint}")
    return json.loads(result) if isinstance(result, str) and result[:1] in "[{" else result


# -- a scripted OpenAI-compatible server ----------------------------------------------------------

EMAIL = re.compile(r"[Ee]mail (\S+@\S+?)\.?$")
WEATHER = re.compile(r"weather in (\w+)")


class FakeOpenAI:
    """An OpenAI-compatible chat server with a fixed script, streaming real SSE over chunked
    HTTP/1.1. "Email <addr>" -> a send_email call; "weather in <city>" -> get_weather; after a
    tool result -> a short answer naming the tool; anything else -> "Hello!".

    `crash_mid_stream(n, when)` makes the next chat request that `when(body)` accepts send n
    chunks, then drop the connection and stop listening: a server that crashed mid-stream.
    `start()` brings it back on the same port. Every request body is kept in `requests`."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.requests: list[dict[str, Any]] = []
        self._crash: tuple[int, Callable[[dict[str, Any]], bool]] | None = None
        self.chunk_delay_s = 0.0
        self.chat_template: str | None = None  # what GET /props reports (llama-server does)
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FakeOpenAI":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/v1/models":
                    self._json(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
                elif self.path.rstrip("/") == "/props" and fake.chat_template is not None:
                    self._json(200, {"chat_template": fake.chat_template})
                else:
                    self._json(404, {"error": "not found"})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._json(404, {"error": "not found"})
                    return
                fake.requests.append(body)
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                die_after = fake._take_crash(body)
                for n, chunk in enumerate(fake.reply(body)):
                    if die_after is not None and n >= die_after:
                        self.wfile.flush()
                        self.connection.shutdown(socket.SHUT_RDWR)  # mid-body: no final chunk
                        self.close_connection = True
                        threading.Thread(target=fake.stop, daemon=True).start()
                        return
                    data = f"data: {json.dumps(chunk)}\n\n".encode()
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                    self.wfile.flush()
                    time.sleep(fake.chunk_delay_s)
                done = b"data: [DONE]\n\n"
                self.wfile.write(f"{len(done):x}\r\n".encode() + done + b"\r\n0\r\n\r\n")
                self.wfile.flush()

            def _json(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = _QuietServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def crash_mid_stream(self, after_chunks: int,
                         when: Callable[[dict[str, Any]], bool] = lambda body: True) -> None:
        self._crash = (after_chunks, when)

    def _take_crash(self, body: dict[str, Any]) -> int | None:
        if self._crash is not None and self._crash[1](body):
            after, self._crash = self._crash[0], None
            return after
        return None

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    # -- the script ----------------------------------------------------------------------------
    def reply(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        messages = body["messages"]
        last = messages[-1]
        if last["role"] == "tool":
            return self._text(f"Done with {last.get('name', 'the tool')}: {last['content'][:60]}")
        text = last.get("content") or ""
        if match := EMAIL.search(text):
            return self._call("send_email", {"to": [match[1]], "subject": "Hello",
                                             "body": f"A note for {match[1]}."})
        if match := WEATHER.search(text):
            return self._call("get_weather", {"city": match[1]})
        return self._text("Hello! I am a scripted fake server.")

    @staticmethod
    def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": "fake",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    def _usage(self) -> dict[str, Any]:
        return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": "fake",
                "choices": [], "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}}

    def _text(self, text: str) -> list[dict[str, Any]]:
        words = re.findall(r"\S+\s*", text)
        return ([self._chunk({"role": "assistant", "content": ""})]
                + [self._chunk({"content": w}) for w in words]
                + [self._chunk({}, "stop"), self._usage()])

    def _call(self, name: str, arguments: dict[str, Any]) -> list[dict[str, Any]]:
        args = json.dumps(arguments)
        half = len(args) // 2
        start = {"tool_calls": [{"index": 0, "id": "call_0", "type": "function",
                                 "function": {"name": name, "arguments": args[:half]}}]}
        rest = {"tool_calls": [{"index": 0, "function": {"arguments": args[half:]}}]}
        return ([self._chunk({"role": "assistant", "content": ""}), self._chunk(start), self._chunk(rest),
                 self._chunk({}, "tool_calls"), self._usage()])


@pytest.fixture
def fake_openai():
    server = FakeOpenAI().start()
    yield server
    server.stop()
