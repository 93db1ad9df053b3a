"""`smol-tools chat` as a person uses it: a real process on a pseudo-terminal (pexpect), the
tiny model in process or a real llama-server. Line editing and history through readline, slash
commands, Ctrl-C during a reply, Ctrl-C / Ctrl-D at the prompt, and a backend that is down."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import pexpect
import pytest

ROOT = Path(__file__).resolve().parent.parent
PROMPT = ">>> "
UP = "\x1b[A"


def _ctrl_c_live() -> None:
    """In the child before exec: SIGINT at its default and not blocked, as in a user's terminal.
    An ignored or blocked SIGINT survives exec, and in the full suite the pytest process has been
    seen passing one on (the Ctrl-C tests then timed out with no reaction at all)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def spawn(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> pexpect.spawn:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SMOL_TOOLS_")}
    environ.update({"HF_HUB_OFFLINE": "1", "HOME": str(tmp_path), "TERM": "dumb",
                    "SMOL_TOOLS_HISTORY": str(tmp_path / "history")}, **(env or {}))
    child = pexpect.spawn(sys.executable, ["-m", "smol_tools", "chat", *args], cwd=str(ROOT), env=environ,
                          encoding="utf-8", timeout=120, dimensions=(40, 200), preexec_fn=_ctrl_c_live)
    return child


def finish(child: pexpect.spawn) -> tuple[int, str]:
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, child.before


def test_repl_commands_history_and_a_tool_turn(tmp_path: Path) -> None:
    child = spawn(tmp_path, "--model", "tiny")
    child.expect("tiny test model")
    child.expect_exact(PROMPT)
    child.sendline("")  # an empty line is ignored: the prompt comes back, the session stays
    child.expect_exact(PROMPT)
    child.send("/he\t")  # Tab completes the slash commands
    child.sendline("")
    child.expect_exact("/save FILE")
    child.expect_exact(PROMPT)
    child.sendline("/tools")
    child.expect("get_weather: ")
    child.expect_exact(PROMPT)
    child.sendline("What is the weather in Paris?")
    child.expect_exact('[call 1] {"name": "get_weather", "arguments": {"city": "Paris"}} (schema ok)')
    child.expect("result 1, ")  # "[result 1, …]", or "[scripted result 1, …]" where the tiny tools answer as trained
    child.expect_exact(PROMPT)
    child.sendline("/set temperature 0.5")
    child.expect_exact("temperature = 0.5")
    child.sendline("/set colour blue")
    child.expect_exact("unknown setting 'colour'")
    child.sendline("/set max_rounds 3")
    child.expect_exact("max_rounds = 3")
    child.sendline("/think off")
    child.expect_exact("thinking off")
    child.sendline("/think maybe")
    child.expect_exact("usage: /think on|off")
    saved = tmp_path / "session.json"
    child.sendline(f"/save {saved}")
    child.expect_exact("saved to")
    child.expect_exact(PROMPT)
    child.sendline("/clear")
    child.expect_exact("cleared")
    child.sendline(f"/load {tmp_path / 'absent.json'}")
    child.expect_exact("error: cannot read")
    child.sendline(f"/load {saved}")
    child.expect_exact("1 turn(s)")
    child.expect_exact(PROMPT)
    child.send(UP)  # readline: the previous line comes back for editing
    child.sendline("")
    child.expect_exact("1 turn(s)")
    child.expect_exact(PROMPT)
    child.sendline("/nonsense")
    child.expect_exact("unknown command /nonsense")
    child.expect_exact(PROMPT)
    child.sendeof()  # Ctrl-D at the prompt leaves cleanly
    status, rest = finish(child)
    assert status == 0 and "Traceback" not in rest

    export = json.loads(saved.read_text(encoding="utf-8"))  # the app's session export format
    assert export["format"] == "smol-tools-session/1" and export["enable_thinking"] is False
    assert export["messages"][0] == {"role": "user", "content": "What is the weather in Paris?"}
    assert any(m.get("tool_calls") for m in export["messages"] if m["role"] == "assistant")
    assert "get_weather" in [t["function"]["name"] for t in export["tools"]]
    history = (tmp_path / "history").read_text(encoding="utf-8").splitlines()
    assert "What is the weather in Paris?" in history and "/tools" in history  # kept for next time


def test_ctrl_c_at_the_prompt_leaves_without_a_traceback(tmp_path: Path) -> None:
    child = spawn(tmp_path, "--model", "tiny")
    child.expect_exact(PROMPT)
    child.sendintr()
    status, rest = finish(child)
    assert status == 0 and "Traceback" not in rest and "KeyboardInterrupt" not in rest


class SlowLink:
    """A TCP relay to a real llama-server that passes its streamed chat replies on a few bytes
    at a time, so a reply takes long enough to be interrupted. Other answers (/v1/models,
    /tokenize, /props) pass at full speed, request by request on a kept-alive connection: the
    test measures Ctrl-C, not the link."""

    def __init__(self, upstream: tuple[str, int], bytes_per_step: int = 32, step_s: float = 0.03) -> None:
        self.upstream, self.step, self.delay = upstream, bytes_per_step, step_s
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.hung_up_on_a_reply = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            state = {"chat": False}  # is the request in flight on this connection a chat completion?
            threading.Thread(target=self._requests, args=(client, server, state), daemon=True).start()
            threading.Thread(target=self._replies, args=(server, client, state), daemon=True).start()

    def _requests(self, client: socket.socket, server: socket.socket, state: dict) -> None:
        try:
            while data := client.recv(65536):
                if data.startswith((b"GET ", b"POST ")):
                    state["chat"] = b"/chat/completions" in data.split(b"\r\n", 1)[0]
                server.sendall(data)
            if state["chat"]:
                self.hung_up_on_a_reply.set()
        except OSError:
            pass
        finally:
            self._close(client, server)

    def _replies(self, server: socket.socket, client: socket.socket, state: dict) -> None:
        try:
            while data := server.recv(self.step if state["chat"] else 65536):
                client.sendall(data)
                if state["chat"]:
                    time.sleep(self.delay)
        except OSError:
            pass
        finally:
            self._close(client, server)

    @staticmethod
    def _close(*socks: socket.socket) -> None:
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self) -> None:
        self.listener.close()


def test_ctrl_c_stops_the_reply_and_returns_to_the_prompt(tmp_path: Path, tiny_llama_server) -> None:
    host, port = tiny_llama_server.base_url.removeprefix("http://").split(":")
    link = SlowLink((host, int(port)))
    try:
        child = spawn(tmp_path, "--backend", "openai", "--url", f"http://127.0.0.1:{link.port}")
        child.expect_exact(PROMPT)
        # Not a scripted question: the tiny model rambles for hundreds of tokens (minutes here).
        child.sendline("Tell me a very long story about the sea.")
        child.expect_exact("the sea.")  # the terminal's echo of the line
        child.expect(r"\S", timeout=90)  # the reply has started arriving
        started = time.monotonic()
        child.sendintr()
        child.expect_exact("[stopping…]")
        child.expect_exact(PROMPT, timeout=30)
        assert time.monotonic() - started < 10  # well before the reply could have ended on this link
        assert link.hung_up_on_a_reply.wait(10), "the chat hung up on the streaming reply"
        child.sendline("/bye")
        status, rest = finish(child)
        assert status == 0 and "Traceback" not in rest
    finally:
        link.close()


@pytest.mark.parametrize("args,env,words", [
    (["--backend", "openai", "--url", "http://127.0.0.1:9"], {}, ["cannot reach", "--model tiny"]),
    ([], {}, ["unreachable", "--model tiny", "--model ./model.gguf"]),  # offline, default model
])
def test_a_backend_that_cannot_be_reached_is_an_error_before_any_prompt(tmp_path: Path, args, env, words) -> None:
    child = spawn(tmp_path, *args, env=env)
    status, output = finish(child)
    assert status == 1
    assert PROMPT not in output and "Traceback" not in output
    for word in words:
        assert word in output
