"""A killed command stops what it started: `smol-tools chat` on the managed backend runs a real
llama-server as its child; SIGTERM (`kill`, systemd, `docker stop`) or SIGHUP (the terminal was
closed) must end the chat with status 128 + N *and* take that llama-server with it. Before
smol_tools/termination.py, both signals killed the chat outright (no atexit), leaving the server
running with the model in memory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_app_support import wait_for
from tests.test_slots import _alive, _children

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_killed_chat_stops_the_llama_server_it_started(signum: int, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMOL_TOOLS_")}
    env |= {"HF_HUB_OFFLINE": "1", "SMOL_TOOLS_SERVER_SLOTS": "1", "SMOL_TOOLS_SERVER_THREADS": "1"}
    out = (tmp_path / "out.txt").open("w")
    chat = subprocess.Popen([sys.executable, "-m", "smol_tools", "chat", "--backend", "llama-server-managed",
                             "--model", "tiny"], stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT,
                            cwd=ROOT, env=env, text=True)
    servers: list[int] = []
    try:
        chat.stdin.write("Compute 17 * 23, then add 100 to it.\n")  # the server starts on first use
        chat.stdin.flush()
        servers += wait_for(lambda: [p for p in _children(chat.pid)
                                     if "llama-server" in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")],
                            120, "the managed llama-server to start")
        # The turn finishes (the answer is printed): the chat now waits in input(), stdin still open.
        wait_for(lambda: "491" in (tmp_path / "out.txt").read_text(errors="replace"), 120, "the answer")
        chat.send_signal(signum)
        assert chat.wait(timeout=30) == 128 + signum
        wait_for(lambda: not any(_alive(pid) for pid in servers), 15, "the llama-server to stop")
    finally:
        if chat.poll() is None:
            chat.kill()
            chat.wait()
        for pid in servers:  # never leave a failed run's server behind
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        out.close()
