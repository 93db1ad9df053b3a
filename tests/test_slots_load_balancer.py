"""Many machines, the existing-engine way: two real llama-server replicas of the tiny GGUF behind
a real nginx (Debian's, installed by scripts/setup.sh test) running examples/nginx-llama-server.conf
with only its ports and log path changed. The token backend sends X-Session-Id: every session
sticks to one replica (nginx's own log says which), so its prompt cache hits; a replica that goes
down moves its sessions to the other; with both down the turn ends in a clear error and the
conversation so far is kept."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import pytest

from smol_tools.agent import Agent, AgentConfig
from smol_tools.backends.llama_server_tokens import LlamaServerTokensBackend
from smol_tools.events import AgentFinished, TurnComplete
from smol_tools.llamacpp.server import LlamaServer, free_port
from tests.test_backends import GREEDY, TOOLS, _run_session, _scripted_executor, _transcript

pytestmark = pytest.mark.slow
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "nginx-llama-server.conf"


class Nginx:
    def __init__(self, folder: Path, upstreams: list[int]) -> None:
        self.port = free_port()
        self.log = folder / "affinity.log"
        text = EXAMPLE.read_text()
        for default, port in zip(("127.0.0.1:8081", "127.0.0.1:8082"), upstreams):
            assert default in text
            text = text.replace(default, f"127.0.0.1:{port}")
        text = text.replace("listen 127.0.0.1:8080", f"listen 127.0.0.1:{self.port}")
        text = text.replace("/var/log/nginx/llama-affinity.log", str(self.log))
        self.conf = folder / "nginx.conf"
        self.conf.write_text(text)
        self.folder = folder
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "Nginx":
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.process = subprocess.Popen(
            [nginx, "-p", str(self.folder), "-c", str(self.conf),
             "-g", f"daemon off; pid {self.folder}/nginx.pid; error_log {self.folder}/error.log;"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                assert self.process.poll() is None, (self.folder / "error.log").read_text()
                time.sleep(0.2)
        raise RuntimeError("nginx did not start")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)

    def replicas_by_session(self) -> dict[str, list[str]]:
        seen: dict[str, list[str]] = defaultdict(list)
        for line in self.log.read_text().splitlines():
            _, session, upstream, status, uri = line.split(" ", 4)
            if uri.startswith("/completion") and status == "200":
                seen[session].append(upstream)
        return seen


@pytest.fixture()
def cluster(tiny_gguf_f16, tmp_path):
    replicas = [LlamaServer(tiny_gguf_f16, threads=1, extra_args=["--no-prefill-assistant"]) for _ in range(2)]
    for replica in replicas:
        replica.start()
    try:
        with Nginx(tmp_path, [r.port for r in replicas]) as nginx:
            yield replicas, nginx
    finally:
        for replica in replicas:
            replica.stop()


def test_sessions_stick_and_a_replica_down_moves_them(cluster) -> None:
    replicas, nginx = cluster
    backend = LlamaServerTokensBackend(f"http://127.0.0.1:{nginx.port}", context_length=4096)
    sessions = [f"session-{n}" for n in range(6)]
    expected = None
    for session in sessions:
        messages, events = _run_session(backend, "multi_tool_sequential", session)
        transcript = _transcript(messages, events)
        expected = expected or transcript
        assert transcript == expected
        usages = [e.usage for e in events if isinstance(e, TurnComplete)]
        for previous, current in zip(usages, usages[1:]):  # the replica kept this session's cache
            assert current.cached_tokens == previous.prompt_tokens + previous.completion_tokens - 1
    by_session = nginx.replicas_by_session()
    for session in sessions:
        assert len(by_session[session]) == 3 and len(set(by_session[session])) == 1, by_session[session]

    # The replica of session-0 goes down: its next conversation goes to the other one, correctly.
    home = by_session["session-0"][0]
    dead = next(r for r in replicas if home.endswith(f":{r.port}"))
    dead.stop()
    assert _transcript(*_run_session(backend, "multi_tool_sequential", "session-0")) == expected
    after = nginx.replicas_by_session()["session-0"][3:]
    assert after and home not in after and len(set(after)) == 1


def test_every_replica_down_is_a_clear_error_and_history_is_kept(cluster) -> None:
    replicas, nginx = cluster
    backend = LlamaServerTokensBackend(f"http://127.0.0.1:{nginx.port}", context_length=4096)
    messages = [{"role": "user", "content": "What is 2 + 2?"}]
    agent = Agent(backend, TOOLS, _scripted_executor(), session_id="kept",
                  config=AgentConfig(sampling=GREEDY))
    first = list(agent.run(messages))
    assert isinstance(first[-1], AgentFinished) and first[-1].reason == "answer"
    for replica in replicas:
        replica.stop()
    messages.append({"role": "user", "content": "And the weather in Rome?"})
    kept = [dict(m) for m in messages]
    events = list(agent.run(messages))
    finished = events[-1]
    assert isinstance(finished, AgentFinished) and finished.reason == "error"
    assert "HTTP 502 Bad Gateway" in finished.message and "no replica answering" in finished.message, finished.message
    assert "<html>" not in finished.message
    assert messages == kept  # nothing lost, nothing half-written: the turn can be retried


def test_the_app_behind_the_load_balancer(cluster) -> None:
    """`python app.py` with the llama-server backend pointed at nginx: two visitors' sessions
    each stick to a replica; with every replica down a turn ends in a clear error and the
    session's earlier turns are kept. (The tiny model needs its scripted tool schemas in the
    prompt: an imported session sets them, as a bug-report import would.)"""
    import json

    from smol_tools.tiny.scripted import scripted_tools
    from tests.test_app_support import AppProcess, call, client

    replicas, nginx = cluster
    scripted = json.dumps({"format": "smol-tools-session/1", "messages": [], "tools": scripted_tools(),
                           "enable_thinking": True})
    with AppProcess("test_slots_load_balancer_app", SMOL_TOOLS_BACKEND="llama-server",
                    SMOL_TOOLS_URL=f"http://127.0.0.1:{nginx.port}", SMOL_TOOLS_N_CTX="4096") as app:
        visitors = [client(app), client(app)]
        for c in visitors:
            call(c, "import_session", scripted)
            call(c, "set_options", True, True, 5)
            turn = call(c, "send", "Compute 17 * 23, then add 100 to it.")
            assert [x["result"] for x in turn["calls"]] == ["391", "491"], turn
            assert turn["answer"] == "17 * 23 = 391, and 391 + 100 = 491."
        by_session = nginx.replicas_by_session()
        assert len(by_session) == 2
        assert all(len(upstreams) == 3 and len(set(upstreams)) == 1 for upstreams in by_session.values())
        for replica in replicas:
            replica.stop()
        failed = call(visitors[0], "send", "What is 2 + 2?")
        assert failed["finish"]["reason"] == "error" and "HTTP 502 Bad Gateway" in failed["finish"]["message"]
        history = call(visitors[0], "history")
        assert len(history) == 2 and history[0]["answer"] == "17 * 23 = 391, and 391 + 100 = 491."
