"""`smol-tools chat --mcp`: a real MCP server's tools join the terminal chat's tools (namespaced
on collision, repeatable flag); a server that cannot start is one clear error, exit 1."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.mcp_demo_server import HttpDemoServer

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
STDIO = f"{shlex.quote(sys.executable)} {shlex.quote(str(ROOT / 'tests' / 'mcp_demo_server.py'))}"


def _chat(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "smol_tools", "chat", "--model", "tiny", *args], cwd=ROOT,
                          env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=240)


def test_chat_lists_the_tools_of_two_mcp_servers(tiny_gguf_q8_0) -> None:
    with HttpDemoServer() as http:
        done = _chat("--mcp", STDIO, "--mcp", http.url)
    assert done.returncode == 0, done.stderr
    tools_line = next(line for line in done.stdout.splitlines() if line.startswith("tools:"))
    names = tools_line.removeprefix("tools:").strip().split(", ")
    assert sorted(names[:5]) == ["calculate", "get_current_datetime", "get_weather", "list_directory", "read_file"]
    assert names[5:10] == ["demo-tools__get_weather", "demo-tools__calculate", "slow_echo", "always_fails",
                           "plan_trip"]
    # Both servers are called demo-tools: every name of the second one collides and is namespaced,
    # with a number where the prefixed name is taken too.
    assert names[10:] == ["demo-tools__get_weather_2", "demo-tools__calculate_2", "demo-tools__slow_echo",
                          "demo-tools__always_fails", "demo-tools__plan_trip"]


def test_a_server_that_cannot_start_is_one_clear_error(tiny_gguf_q8_0) -> None:
    done = _chat("--mcp", "no-such-mcp-server --stdio", "--once", "hi")
    assert done.returncode == 1
    assert "no-such-mcp-server" in done.stderr and "Traceback" not in done.stderr
