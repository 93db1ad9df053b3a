"""Helpers for the public-service app tests (issue 16): raw Gradio HTTP calls (what a script or
an attacker sends, no client library in between), a server that records who sent which
Authorization header, and app processes configured like a local instance and like a Space.

(The module name starts with test_app_public so those tests own it; it holds no tests.)"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.test_app_support import AppProcess

API_KEY = "sk-operator-secret-4711"
LEAK_MARKERS = ("/tmp", "smol-tools-session", "Errno", "Traceback", "object has no attribute",
                "maximum recursion", "site-packages", API_KEY)


def raw_call(app: AppProcess, endpoint: str, *data: Any, session_hash: str | None = None,
             timeout: float = 60.0) -> tuple[str, Any]:
    """POST /gradio_api/call/<endpoint>, then read its event stream: ("complete", value) or
    ("error", message). Without `session_hash`, Gradio gives every call a fresh session."""
    body: dict[str, Any] = {"data": list(data)}
    if session_hash is not None:
        body["session_hash"] = session_hash
    request = urllib.request.Request(f"{app.url}/gradio_api/call/{endpoint}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        event_id = json.loads(response.read())["event_id"]
    with urllib.request.urlopen(f"{app.url}/gradio_api/call/{endpoint}/{event_id}", timeout=timeout) as response:
        stream = response.read().decode("utf-8", "replace")
    event, payload = "", None
    for line in stream.splitlines():
        if line.startswith("event: "):
            event = line[7:].strip()
        elif line.startswith("data: "):
            payload = line[6:]
    if event == "complete":
        value = json.loads(payload)[0]
        return event, json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value
    try:  # a gr.Error arrives as {"error": message, ...}; anything else is kept as sent
        return event, json.loads(payload)["error"]
    except (TypeError, ValueError, KeyError):
        return event, payload


def raw_queue_call(app: AppProcess, fn_index: int, data: list[Any], session_hash: str,
                   timeout: float = 60.0) -> dict[str, Any]:
    """What the browser does: join the queue by function index and read the result message."""
    body = {"data": data, "fn_index": fn_index, "session_hash": session_hash, "trigger_id": None}
    request = urllib.request.Request(f"{app.url}/gradio_api/queue/join", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        response.read()
    url = f"{app.url}/gradio_api/queue/data?session_hash={session_hash}"
    with urllib.request.urlopen(url, timeout=timeout) as response:
        for raw in response:
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data:"):
                continue
            message = json.loads(line[5:])
            if message.get("msg") == "process_completed":
                return message
    raise AssertionError("the queue closed without a result")


def fn_index_of(app: AppProcess, fn_name: str) -> int:
    with urllib.request.urlopen(f"{app.url}/config", timeout=30) as response:
        config = json.loads(response.read())
    for index, dependency in enumerate(config["dependencies"]):
        if dependency.get("api_name") == fn_name or dependency.get("id") == fn_name:
            return dependency.get("id", index)
    raise AssertionError(f"no dependency {fn_name!r} in /config")


class HeaderRecorder:
    """An OpenAI-compatible /v1/models that records the Authorization header of every request."""

    def __init__(self) -> None:
        self.seen: list[str | None] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                recorder.seen.append(self.headers.get("Authorization"))
                data = json.dumps({"object": "list", "data": [{"id": "m", "object": "model"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def public_app(name: str, **env: str) -> AppProcess:
    """An app listening on every interface (reached here through 127.0.0.1), as a Space or a
    team server runs it."""
    app = AppProcess(name, **env)
    app.env["GRADIO_SERVER_NAME"] = "0.0.0.0"
    return app


def assert_no_internals(text: str) -> None:
    for marker in LEAK_MARKERS:
        assert marker not in str(text), f"{marker!r} leaked: {str(text)[:300]}"


def get_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def upload(app: AppProcess, name: str, data: bytes) -> int:
    """POST /gradio_api/upload as the page's upload buttons do; the HTTP status."""
    boundary = "smol-tools-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
            "Content-Type: text/plain\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{app.url}/gradio_api/upload", data=body,
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
