"""execute_python and shell_command: off by default, and the sandbox when the operator turns
them on (time, memory, processes, file size, output, environment, network, other sessions).

Each test runs a short child process (well under a second, except the deliberate timeouts)."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from smol_tools.tools import ToolRegistry, ToolResult, ToolSession, ToolSettings, default_registry
from smol_tools.tools.sandbox import _process_uids, network_isolation_available, running_as_root

DEDICATED_UID = running_as_root()  # as root, each session's code runs under its own uid


@pytest.fixture(scope="module")
def registry() -> ToolRegistry:
    return default_registry()


def make_session(tmp_path: Path, **settings) -> ToolSession:
    options = {"allow_code_execution": True, "code_timeout_s": 5, **settings}
    return ToolSession.create(root=tmp_path, settings=ToolSettings(**options))


@pytest.fixture
def session(tmp_path) -> ToolSession:
    return make_session(tmp_path)


def python(registry: ToolRegistry, session: ToolSession, code: str) -> tuple[ToolResult, dict]:
    result = registry.execute("execute_python", {"code": code}, session)
    return result, json.loads(result.content)


def shell(registry: ToolRegistry, session: ToolSession, command: str) -> tuple[ToolResult, dict]:
    result = registry.execute("shell_command", {"command": command}, session)
    return result, json.loads(result.content)


def test_code_execution_is_off_by_default(registry, tmp_path):
    session = ToolSession.create(root=tmp_path)
    for name, arguments in (("execute_python", {"code": "open('ran', 'w')"}), ("shell_command", {"command": "touch ran"})):
        result = registry.execute(name, arguments, session)
        payload = json.loads(result.content)
        assert result.is_error and payload["disabled"] is True
        assert payload["error"] == f"{name} is disabled on this server. The server operator can enable it with ToolSettings(allow_code_execution=True)."
    assert not (session.workspace / "ran").exists()


def test_python_runs_in_the_workspace(registry, session):
    (session.workspace / "input.txt").write_text("21")
    result, payload = python(registry, session, "import os\nn = int(open('input.txt').read())\nprint(n * 2)\nopen('out.txt', 'w').write(os.getcwd())")
    assert not result.is_error and payload == {"exit_code": 0, "stdout": "42\n", "stderr": ""}
    assert (session.workspace / "out.txt").read_text() == str(session.workspace)
    # The file tools (running as the server) still read and write what the sandbox produced.
    assert registry.execute("read_file", {"path": "out.txt"}, session).content == str(session.workspace)
    assert not registry.execute("write_file", {"path": "out.txt", "content": "again"}, session).is_error
    assert python(registry, session, "print(open('out.txt').read())")[1]["stdout"] == "again\n"


def test_python_is_isolated_mode(registry, session):
    _, payload = python(registry, session, "import sys\nprint(sys.flags.isolated, sys.flags.ignore_environment)")
    assert payload["stdout"] == "1 1\n"


def test_errors_come_back_readable(registry, session):
    result, payload = python(registry, session, "raise ValueError('bad input')")
    assert result.is_error and payload["exit_code"] == 1 and "ValueError: bad input" in payload["stderr"]


def test_shell_command(registry, session):
    result, payload = shell(registry, session, "echo hello; echo oops >&2; exit 3")
    assert payload == {"exit_code": 3, "stdout": "hello\n", "stderr": "oops\n"} and result.is_error
    _, payload = shell(registry, session, "pwd")
    assert payload["stdout"].strip() == str(session.workspace)


def test_environment_is_scrubbed(registry, session, monkeypatch):
    monkeypatch.setenv("SMOL_TOOLS_TEST_SECRET", "hunter2-secret-value")
    monkeypatch.setenv("HF_TOKEN", "hf_not_for_the_model")
    _, payload = python(registry, session, "import os\nprint(os.environ.get('SMOL_TOOLS_TEST_SECRET'))\nprint(sorted(os.environ))")
    assert payload["stdout"].splitlines()[0] == "None"
    assert "HF_TOKEN" not in payload["stdout"]
    _, payload = shell(registry, session, 'echo "${SMOL_TOOLS_TEST_SECRET:-unset}"; env')
    assert payload["stdout"].startswith("unset\n")
    assert "hunter2" not in payload["stdout"] and "hf_not_for_the_model" not in payload["stdout"]


@pytest.mark.skipif(not DEDICATED_UID, reason="without root the child shares the server's uid")
def test_server_environment_is_not_readable_through_proc(registry, session, monkeypatch):
    monkeypatch.setenv("SMOL_TOOLS_TEST_SECRET", "hunter2-secret-value")
    _, payload = shell(registry, session, f"cat /proc/{os.getpid()}/environ; cat /proc/$PPID/environ; id -u")
    assert "hunter2" not in payload["stdout"] and "Permission denied" in payload["stderr"]
    assert payload["stdout"].strip() != "0"


def test_infinite_loop_is_killed(registry, tmp_path):
    session = make_session(tmp_path, code_timeout_s=1)
    started = time.monotonic()
    result, payload = python(registry, session, "while True:\n    pass")
    assert time.monotonic() - started < 4
    assert result.is_error and payload["timed_out"] is True and payload["signal"] in ("SIGKILL", "SIGXCPU")


def test_background_children_do_not_outlive_the_run(registry, tmp_path):
    session = make_session(tmp_path, code_timeout_s=3)
    started = time.monotonic()
    _, payload = shell(registry, session, "sleep 60 & echo started")
    assert payload["stdout"] == "started\n" and time.monotonic() - started < 3


@pytest.mark.skipif(not DEDICATED_UID, reason="needs the dedicated sandbox uid to find escaped processes")
def test_processes_that_leave_the_group_are_killed_too(registry, session):
    _, payload = python(
        registry, session, "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\nprint(os.getuid())"
    )
    uid = int(payload["stdout"])
    assert uid == session.sandbox_uid
    assert not [pid for pid, owner, _ in _process_uids() if owner == uid]


def test_memory_limit(registry, tmp_path):
    session = make_session(tmp_path, code_memory_mb=256)
    started = time.monotonic()
    result, payload = python(registry, session, "block = bytearray(2 * 1024 ** 3)\nprint('allocated')")
    assert time.monotonic() - started < 5
    assert result.is_error and payload["exit_code"] == 1 and "MemoryError" in payload["stderr"]
    assert "allocated" not in payload["stdout"] and "timed_out" not in payload


FORK_PROBE = """
import os, time
children = 0
for _ in range(200):
    try:
        pid = os.fork()
    except OSError as error:
        print('refused:', error.strerror)
        break
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    children += 1
print('children', children)
"""


def test_fork_bomb_is_contained(registry, tmp_path):
    session = make_session(tmp_path, code_max_processes=8)
    started = time.monotonic()
    _, payload = python(registry, session, FORK_PROBE)
    lines = payload["stdout"].splitlines()
    assert lines[0].startswith("refused: Resource temporarily unavailable"), payload
    assert int(lines[1].split()[1]) <= 8
    assert time.monotonic() - started < 4  # the sleeping children were killed, not waited for


def test_parallel_calls_in_one_session_take_turns(registry, session):
    """A run kills every leftover process of its session, so runs of one session are serialized."""
    outputs: list[dict] = []
    calls = [threading.Thread(target=lambda i=i: outputs.append(python(registry, session, f"import time\ntime.sleep(0.2)\nprint({i})")[1])) for i in range(3)]
    for call in calls:
        call.start()
    for call in calls:
        call.join()
    assert sorted(payload["stdout"] for payload in outputs) == ["0\n", "1\n", "2\n"]
    assert all(payload["exit_code"] == 0 for payload in outputs)


def test_file_size_limit(registry, tmp_path):
    session = make_session(tmp_path, code_max_file_mb=1)
    result, payload = python(registry, session, "open('big.bin', 'wb').write(b'x' * (3 * 1024 * 1024))")
    assert result.is_error and "File too large" in payload["stderr"]
    assert (session.workspace / "big.bin").stat().st_size <= 1024 * 1024


def test_output_is_capped(registry, tmp_path):
    session = make_session(tmp_path, code_max_output_bytes=1000)
    _, payload = python(registry, session, "import sys\nsys.stdout.write('x' * 5_000_000)\nprint('done', file=sys.stderr)")
    assert payload["truncated"] is True and payload["stdout"] == "x" * 1000 and payload["stderr"] == "done\n"


@pytest.mark.skipif(not network_isolation_available(), reason="needs CAP_SYS_ADMIN for a network namespace")
def test_sandboxed_code_has_no_network(registry, session):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    accepted: list[object] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    code = f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n    print('connected')\nexcept OSError as e:\n    print('blocked', e.errno)"
    _, payload = python(registry, session, code)
    listener.close()
    assert payload["stdout"].startswith("blocked") and not accepted
    _, payload = shell(registry, session, "cat /proc/net/dev | tail -n +3 | cut -d: -f1")
    assert payload["stdout"].split() == ["lo"]


@pytest.mark.skipif(not DEDICATED_UID, reason="without root all sessions share the server's uid")
def test_sessions_cannot_reach_each_other(registry, tmp_path):
    first = make_session(tmp_path / "a")
    second = ToolSession.create(root=Path("/tmp"), settings=first.settings)  # a world-searchable parent
    try:
        (second.workspace / "private.txt").write_text("second's data")
        python(registry, second, "print('claim the workspace')")
        assert first.sandbox_uid is None and second.sandbox_uid is not None
        _, payload = python(registry, first, f"print(open({str(second.workspace / 'private.txt')!r}).read())")
        assert "PermissionError" in payload["stderr"] and "second's data" not in payload["stdout"]
        assert first.sandbox_uid != second.sandbox_uid
    finally:
        second.cleanup()
