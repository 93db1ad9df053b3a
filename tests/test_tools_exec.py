"""execute_python and shell_command: off by default, and the sandbox when the operator turns
them on (time, memory, processes, file size, output, environment, network, other sessions).

Each test runs a short child process (well under a second, except the deliberate timeouts)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from smol_tools.tools import ToolRegistry, ToolResult, ToolSession, ToolSettings, default_registry
from smol_tools.tools import sandbox
from smol_tools.tools.sandbox import _process_uids, network_isolation_available, private_world_available
from smol_tools.tools.sandbox import running_as_root, seccomp_available

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
        # Another uid's 0700 workspace; with a private world, /tmp does not even hold it.
        refused = "PermissionError" in payload["stderr"] or (
            private_world_available() and "FileNotFoundError" in payload["stderr"])
        assert refused and "second's data" not in payload["stdout"], payload
        assert first.sandbox_uid != second.sandbox_uid
    finally:
        second.cleanup()



# --- issue 15 §4: scratch space, unix sockets, zombies, root -------------------------------------

PRIVATE_WORLD = DEDICATED_UID and private_world_available()
needs_private_world = pytest.mark.skipif(not PRIVATE_WORLD, reason="needs root with CAP_SYS_ADMIN for mount/PID namespaces")


def _host_world_writable_dirs() -> list[str]:
    """Directories any uid may write on this machine (where sandboxed code could leave files)."""
    found = {"/tmp", "/var/tmp", "/dev/shm"}
    for top in ("/", "/var", "/run", "/dev", "/usr", "/opt", "/srv", "/home", "/etc", "/var/lib", "/var/cache"):
        try:
            entries = list(os.scandir(top))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False) and entry.stat().st_mode & 0o002:
                    found.add(entry.path)
            except OSError:
                pass
    return sorted(d for d in found if os.path.isdir(d) and not d.startswith(("/proc", "/sys")))


@needs_private_world
def test_nothing_outside_the_workspace_is_writable_and_scratch_is_private(registry, tmp_path):
    session = make_session(tmp_path, code_scratch_mb=8)
    marker = f"smol-probe-{os.getpid()}-{time.monotonic_ns()}"
    targets = _host_world_writable_dirs() + ["/", "/etc", "/usr", "/var", "/root", str(session.workspace.parent)]
    script = "; ".join(f"(echo x > {d}/{marker} && echo wrote {d}) 2>/dev/null" for d in targets)
    _, payload = shell(registry, session, script + f"; echo in-workspace > {marker}; ls /tmp /var/tmp /dev/shm")
    # Only the private scratch (/tmp, /var/tmp, /dev/shm: one tmpfs) took the writes...
    wrote = {line.split(" ", 1)[1] for line in payload["stdout"].splitlines() if line.startswith("wrote ")}
    assert wrote <= {"/tmp", "/var/tmp", "/dev/shm"}, wrote
    # ...and none of them reached the machine's directories.
    for directory in targets:
        assert not os.path.exists(os.path.join(directory, marker)), f"{directory} got a file from sandboxed code"
    assert (session.workspace / marker).read_text() == "in-workspace\n"
    # The scratch area is per run: the next run (or another session) starts with it empty.
    _, payload = shell(registry, session, f"ls -a /tmp /var/tmp /dev/shm | grep -c {marker} || true")
    assert payload["stdout"].strip() == "0"


@needs_private_world
def test_scratch_is_size_limited(registry, tmp_path):
    """64 MB into RAM-backed /dev/shm used to succeed (not bounded by the address-space limit)."""
    session = make_session(tmp_path, code_scratch_mb=8, code_max_file_mb=64)
    code = "data = b'x' * (1 << 20)\nwith open('/dev/shm/fill', 'wb') as f:\n    for i in range(64):\n        f.write(data)\n        f.flush()\nprint('wrote 64 MB')"
    result, payload = python(registry, session, code)
    assert result.is_error and "No space left on device" in payload["stderr"], payload
    assert "wrote 64 MB" not in payload["stdout"]
    _, payload = shell(registry, session, "df -k /tmp | tail -1")
    assert int(payload["stdout"].split()[1]) <= 8 * 1024


@needs_private_world
def test_code_sees_only_its_own_processes(registry, session):
    _, payload = shell(registry, session, f"ls /proc | grep -c '^[0-9]'; test -e /proc/{os.getpid()}/environ && echo visible || echo hidden")
    count, visibility = payload["stdout"].split()
    assert int(count) < 10 and visibility == "hidden"


def _unix_listener(directory: Path) -> tuple[socket.socket, str]:
    """A socket another process opened under a world-searchable directory, writable by all."""
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    directory.chmod(0o755)
    path = str(directory / "service.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o777)
    listener.listen(4)
    listener.settimeout(0.5)
    return listener, path


@pytest.mark.skipif(not seccomp_available(), reason="seccomp filter unavailable on this architecture/kernel")
def test_unix_sockets_are_unreachable(registry, session):
    import tempfile

    directory = Path(tempfile.mkdtemp(prefix="smol-sock-", dir="/tmp"))
    directory.chmod(0o755)
    listener, path = _unix_listener(directory / "run")
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    abstract.bind(f"\0smol-tools-test-{os.getpid()}")
    abstract.listen(4)
    abstract.settimeout(0.5)
    code = (
        "import socket\n"
        f"for address in ({path!r}, {chr(0) + f'smol-tools-test-{os.getpid()}'!r}):\n"
        "    try:\n"
        "        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
        "        s.connect(address)\n"
        "        print('connected')\n"
        "    except OSError as error:\n"
        "        print('blocked', error.errno)\n"
    )
    try:
        _, payload = python(registry, session, code)
        connections = []
        for server in (listener, abstract):
            try:
                connections.append(server.accept())
            except (TimeoutError, OSError):
                pass
    finally:
        listener.close()
        abstract.close()
        shutil.rmtree(directory, ignore_errors=True)
    assert "connected" not in payload["stdout"] and not connections, payload
    assert payload["stdout"].split() == ["blocked", "13", "blocked", "13"]  # EACCES from the filter
    # socketpair (no address, reaches nothing) keeps working: multiprocessing pipes rely on it.
    _, payload = python(registry, session, "import socket\na, b = socket.socketpair()\na.send(b'ok')\nprint(b.recv(2).decode())")
    assert payload["stdout"] == "ok\n"


def _zombies_of(uid: int) -> int:
    count = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                status = Path(f"/proc/{name}/status").read_text()
            except OSError:
                continue
            if "\nState:\tZ" in status and f"\nUid:\t{uid}\t" in status:
                count += 1
    return count


@pytest.mark.parametrize("world", ["private", "plain"])
def test_one_run_at_the_process_cap_cannot_deny_the_next(registry, tmp_path, monkeypatch, world):
    """Runs that fill the process cap leave no zombies: each next run forks as many again."""
    if world == "private" and not PRIVATE_WORLD:
        pytest.skip("needs root with CAP_SYS_ADMIN for mount/PID namespaces")
    if world == "plain":
        monkeypatch.setattr(sandbox, "private_world_available", lambda: False)
    session = make_session(tmp_path, code_max_processes=8)
    for attempt in range(3):
        _, payload = python(registry, session, FORK_PROBE)
        lines = payload["stdout"].splitlines()
        assert lines and lines[0].startswith("refused"), (attempt, payload)
        assert int(lines[1].split()[1]) >= 5, f"run {attempt} could fork only {lines[1]}"
    uid = session.sandbox_uid if session.sandbox_uid is not None else os.getuid()
    if session.sandbox_uid is not None:
        assert _zombies_of(uid) == 0


def test_background_children_are_reaped_in_the_plain_world(registry, tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "private_world_available", lambda: False)
    session = make_session(tmp_path, code_timeout_s=3)
    started = time.monotonic()
    result, payload = shell(registry, session, "(setsid sleep 60 &) ; sleep 60 & echo started")
    assert payload["stdout"] == "started\n" and time.monotonic() - started < 3
    assert result.data["sandbox"]["private_filesystem"] is False
    assert result.data["sandbox"]["unix_sockets_blocked"] is seccomp_available()


@pytest.mark.skipif(not running_as_root(), reason="the refusal is for a server running as root")
@pytest.mark.parametrize("uids", [None, range(0)])
def test_code_never_runs_as_root(registry, tmp_path, uids):
    session = make_session(tmp_path, code_sandbox_uids=uids)
    for name, arguments in (("execute_python", {"code": "open('ran', 'w')"}), ("shell_command", {"command": "touch ran"})):
        result = registry.execute(name, arguments, session)
        message = json.loads(result.content)["error"]
        assert result.is_error and "refusing to run code as root" in message and "code_sandbox_uids" in message
    assert not (session.workspace / "ran").exists()


def test_no_interpreter_message_names_a_safe_setting(registry, tmp_path, monkeypatch):
    if not running_as_root():
        pytest.skip("the interpreter search runs only for a dedicated sandbox uid (root)")
    import smol_tools.tools.code as code_tool

    monkeypatch.setattr(code_tool, "unprivileged_python", lambda: None)
    session = make_session(tmp_path)
    message = json.loads(registry.execute("execute_python", {"code": "print(1)"}, session).content)["error"]
    assert "code_python" in message and "code_sandbox_uids=None" not in message


def test_an_abandoned_call_kills_its_process(registry, tmp_path):
    """The agent's tool deadline (tool_deadline.call_with_deadline) ends the sandboxed process
    too, not just the wait: the session's next run starts at once."""
    from smol_tools.tool_deadline import ToolDeadlineExceeded, call_with_deadline

    session = make_session(tmp_path, code_timeout_s=20)
    started = time.monotonic()
    with pytest.raises(ToolDeadlineExceeded):
        call_with_deadline(lambda: python(registry, session, "import time\ntime.sleep(3)\nopen('late', 'w')"), 0.5)
    assert time.monotonic() - started < 1.5
    _, payload = python(registry, session, "print('next')")  # waits for the sandbox lock
    assert payload["stdout"] == "next\n" and time.monotonic() - started < 3.5
    time.sleep(3)
    assert not (session.workspace / "late").exists()
