"""Run untrusted code in a resource-limited child process.

Layers, each independent of the others:

* a new session and process group, and a reaper of our own (sandbox_init.py) as the first
  program of every run: it starts the code, reaps every process the code leaves behind (a
  zombie still counts against the process cap) and kills them all when the code exits or the
  time is up;
* rlimits set in the child before exec: CPU seconds, address space, file size, open files,
  number of processes, no core dumps;
* a scrubbed environment (PATH, HOME, TMPDIR, LANG only), stdin from /dev/null, cwd = the
  session workspace, output read through capped pipes;
* a seccomp filter: no AF_UNIX sockets (path-based and abstract unix sockets unreachable), no
  io_uring; on x86_64 and aarch64, with or without root;
* code never runs as root: as root, the child drops to an unprivileged uid of its own (one per
  session), and `code_sandbox_uids=None` is refused. The kernel does not enforce RLIMIT_NPROC
  for root, so this drop is what makes the process cap real; it also keeps the child out of
  other sessions' workspaces and the server's files, and lets us kill every process of that
  uid afterwards, even one that left the process group with setsid();
* as root, where namespaces can be created: new mount, PID, network, IPC and UTS namespaces.
  The code sees only its own processes (a fresh /proc), no network at all, every filesystem
  read-only except its workspace and a private, size-limited tmpfs on /tmp (also bound onto
  /var/tmp and /dev/shm), and an empty read-only /run. The tmpfs and every process of the run
  are gone when the run ends.

Without root (e.g. a Hugging Face Space) the child keeps the server's uid, network and mount
view: the rlimits, the reaper and the seccomp filter still hold, RLIMIT_NPROC counts the
server's own threads too (the cap is set above the current count), /tmp stays the shared one,
and /proc/<server pid>/environ stays readable by the child, so keep secrets out of the server's
environment there, or leave code execution off. SECURITY.md lists what is and is not isolated."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import math
import os
import random
import resource
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from ..tool_deadline import cancel_requested
from . import sandbox_init
from .base import ToolError, ToolSession

_CLONE_NEWNET = 0x40000000
_CLONE_NEWNS = 0x00020000
_CLONE_NEWUTS = 0x04000000
_CLONE_NEWIPC = 0x08000000
_CLONE_NEWPID = 0x20000000
_PRIVATE_WORLD = _CLONE_NEWNS | _CLONE_NEWPID | _CLONE_NEWIPC | _CLONE_NEWUTS
_STOP_GRACE_S = 2.0  # after SIGTERM, how long the reaper gets to kill and reap the run
_SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_MAX_OPEN_FILES = 64
_OWNERSHIP_SCAN_LIMIT = 20_000
_allocated_uids: set[int] = set()
_allocation_lock = threading.Lock()


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float
    memory_bytes: int
    max_output_bytes: int
    max_processes: int
    max_file_bytes: int
    scratch_bytes: int = 64 * 1024 * 1024  # the private /tmp (namespace mode)


@dataclass(frozen=True)
class SandboxResult:
    exit_code: int | None  # negative: killed by that signal
    stdout: str
    stderr: str
    timed_out: bool
    truncated: bool
    duration_s: float
    isolation: dict = field(default_factory=dict)

    def for_model(self) -> dict:
        result: dict = {"exit_code": self.exit_code, "stdout": self.stdout, "stderr": self.stderr}
        if self.exit_code is not None and self.exit_code < 0:
            try:
                result["signal"] = signal.Signals(-self.exit_code).name
            except ValueError:
                result["signal"] = str(-self.exit_code)
        if self.timed_out:
            result["timed_out"] = True
            result["note"] = "killed: the time limit was reached"
        elif result.get("signal") == "SIGXCPU":
            result["note"] = "killed: the CPU time limit was reached"
        elif result.get("signal") == "SIGXFSZ":
            result["note"] = "killed: the file size limit was reached"
        if self.truncated:
            result["truncated"] = True
        return result


def running_as_root() -> bool:
    return os.geteuid() == 0


@cache
def _libc_unshare():
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    return libc.unshare


def _can_unshare(flags: int) -> bool:
    """Whether a child can enter new namespaces of these kinds here (needs CAP_SYS_ADMIN)."""
    if not running_as_root():
        return False
    unshare = _libc_unshare()

    def enter() -> None:
        if unshare(flags) != 0:
            raise OSError(ctypes.get_errno(), "unshare failed")

    try:
        subprocess.run(["/bin/true"], preexec_fn=enter, check=True, timeout=10, close_fds=True)
    except (OSError, subprocess.SubprocessError):
        return False
    return True


@cache
def network_isolation_available() -> bool:
    """Whether a child can enter a new network namespace here (needs CAP_SYS_ADMIN)."""
    return _can_unshare(_CLONE_NEWNET)


@cache
def private_world_available() -> bool:
    """Whether runs can get their own mount, PID, IPC and UTS namespaces (root with CAP_SYS_ADMIN)."""
    return _can_unshare(_PRIVATE_WORLD)


@cache
def _init_source() -> str:
    return Path(sandbox_init.__file__).read_text(encoding="utf-8")


@cache
def seccomp_available() -> bool:
    """Whether the reaper can install its seccomp filter here (a known architecture, a kernel
    and container runtime that allow it): tried once with a real child."""
    if sandbox_init.seccomp_program(os.uname().machine) is None:
        return False
    config = json.dumps({"namespaces": False, "seccomp": True})
    try:
        done = subprocess.run([sys.executable, "-I", "-S", "-c", _init_source(), config, "--", "/bin/true"],
                              capture_output=True, timeout=20, close_fds=True)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def usable_by_anyone(path: str) -> bool:
    """Whether a uid with no special rights can execute `path` (every directory on the way
    must be searchable by others, the file readable and executable by others)."""
    real = Path(os.path.realpath(path))
    try:
        for directory in real.parents:
            if not os.stat(directory).st_mode & stat.S_IXOTH:
                return False
        mode = os.stat(real).st_mode
    except OSError:
        return False
    return bool(mode & stat.S_IXOTH and mode & stat.S_IROTH)


def unprivileged_python() -> str | None:
    """A Python interpreter an unprivileged uid can run: ours, else a system python3."""
    if usable_by_anyone(sys.executable):
        return sys.executable
    for directory in ("/usr/local/bin", "/usr/bin", "/bin"):
        candidate = shutil.which("python3", path=directory)
        if candidate and usable_by_anyone(candidate):
            return candidate
    return None


def session_uid(session: ToolSession) -> int | None:
    """The unprivileged uid this session's code runs as (None: keep the server's uid)."""
    uids = session.settings.code_sandbox_uids
    if not running_as_root():
        return None
    if not uids:
        # Code run as root reads /etc/shadow and the server's /proc/<pid>/environ, and no
        # process cap holds for it: refuse, whatever else is configured.
        raise ToolError(
            "refusing to run code as root: the server runs as root and ToolSettings.code_sandbox_uids "
            "is empty. Set code_sandbox_uids to a range of unused uids (the default is "
            "range(1_000_000, 1_000_000 + 2**24)) so each session's code runs as its own "
            "unprivileged user, or run the server as an unprivileged user."
        )
    with _allocation_lock:
        if session.sandbox_uid is None or session.sandbox_uid not in uids:
            rng = random.SystemRandom()
            for _ in range(100):
                candidate = rng.choice(uids)
                if candidate not in _allocated_uids and candidate != 0:
                    break
            else:
                raise ToolError("no free sandbox uid")
            _allocated_uids.add(candidate)
            session.sandbox_uid = candidate
        return session.sandbox_uid


def _process_uids() -> list[tuple[int, int, int]]:
    """(pid, real uid, threads) of every live (non-zombie) process we can see."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        uid = threads = None
        zombie = False
        try:
            with open(f"/proc/{name}/status", encoding="ascii", errors="replace") as handle:
                for line in handle:
                    if line.startswith("State:"):
                        zombie = line.split()[1] in ("Z", "X")
                    elif line.startswith("Uid:"):
                        uid = int(line.split()[1])
                    elif line.startswith("Threads:"):
                        threads = int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if uid is not None and not zombie:
            found.append((int(name), uid, threads or 1))
    return found


def _tasks_of(uid: int) -> int:
    # RLIMIT_NPROC counts every task (thread) of the real uid, not just the child's.
    return sum(threads for _pid, owner, threads in _process_uids() if owner == uid)


def _kill_uid(uid: int, patience_s: float = 2.0) -> None:
    """SIGKILL every process of a sandbox uid and wait until none is left (a forking process
    may add one between rounds; RLIMIT_NPROC bounds how many)."""
    deadline = time.monotonic() + patience_s
    while True:
        victims = [pid for pid, owner, _threads in _process_uids() if owner == uid]
        if not victims or time.monotonic() > deadline:
            return
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.01)


def _hand_workspace_to(workspace: Path, uid: int) -> None:
    """Give the sandbox uid what the server wrote into the workspace (write_file, seeds).

    Only directories and single-link regular files the server owns change hands: a hard link
    planted by sandboxed code could point at a file outside (where fs.protected_hardlinks is
    off), and chowning it would hand that file over. Nothing of the uid runs meanwhile (it was
    just killed), so nothing can swap an entry between the check and the chown."""
    os.chown(workspace, uid, uid)
    os.chmod(workspace, stat.S_IRWXU)
    server_uid = os.geteuid()
    seen = 0
    for _root, dirs, files, root_fd in os.fwalk(workspace, follow_symlinks=False):
        for name in dirs + files:
            seen += 1
            if seen > _OWNERSHIP_SCAN_LIMIT:
                return
            try:
                info = os.stat(name, dir_fd=root_fd, follow_symlinks=False)
                ours = info.st_uid == server_uid
                if ours and (stat.S_ISDIR(info.st_mode) or (stat.S_ISREG(info.st_mode) and info.st_nlink == 1)):
                    os.chown(name, uid, uid, dir_fd=root_fd, follow_symlinks=False)
            except OSError:
                pass


def _make_preexec(limits: SandboxLimits, nproc: int, uid: int | None, unshare_flags: int):
    """The child between fork and exec: namespaces, rlimits and, without a private world, the
    uid drop (with one, the reaper drops after building the world, which needs root)."""
    cpu = math.ceil(limits.timeout_s) + 1  # a backstop: the wall-clock timeout normally fires first
    unshare = _libc_unshare() if unshare_flags else None
    drop_here = uid is not None and not unshare_flags & _CLONE_NEWNS

    def preexec() -> None:  # runs in the child between fork and exec: keep it minimal
        if unshare is not None and unshare(unshare_flags) != 0:
            raise OSError(ctypes.get_errno(), "unshare failed")
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.max_file_bytes, limits.max_file_bytes))
        resource.setrlimit(resource.RLIMIT_NOFILE, (_MAX_OPEN_FILES, _MAX_OPEN_FILES))
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        if drop_here:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)

    return preexec


def _drain(stream, cap: int, sink: list[bytes], overflow: list[bool]) -> None:
    """Keep the first `cap` bytes, discard the rest (so the child never blocks on a full pipe)."""
    kept = 0
    while True:
        chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
        if not chunk:
            return
        if kept < cap:
            sink.append(chunk[: cap - kept])
        kept += len(chunk)
        if kept > cap:
            overflow[0] = True


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def sandbox_environment(workspace: Path, private_tmp: bool = False) -> dict[str, str]:
    """The whole environment of the child: nothing is inherited from the server."""
    tmp = "/tmp" if private_tmp else str(workspace)
    return {"PATH": _SAFE_PATH, "HOME": str(workspace), "TMPDIR": tmp, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


def run_sandboxed(argv: list[str], session: ToolSession, limits: SandboxLimits) -> SandboxResult:
    with session.sandbox_lock:
        return _run_sandboxed(argv, session, limits)


def _launcher(uid: int | None, private_world: bool) -> str:
    """The interpreter that runs the reaper: ours while it starts as root, else one the
    sandbox uid can execute."""
    if uid is None or private_world:
        return sys.executable
    python = unprivileged_python()
    if python is None:
        raise ToolError("no Python interpreter is usable by the unprivileged sandbox user (the sandbox's "
                        "reaper needs one); install python3 under /usr/bin or make this one world-executable")
    return python


def _init_program(uid: int | None, private_world: bool) -> list[str]:
    """The reaper as a file path when whoever starts it can read it (root does; the server's
    own uid does), else its source through -c."""
    path = sandbox_init.__file__
    if uid is None or private_world or (usable_by_anyone(sys.executable) and _readable_by_anyone(path)):
        return [path]
    return ["-c", _init_source()]


def _readable_by_anyone(path: str) -> bool:
    real = Path(os.path.realpath(path))
    try:
        return all(os.stat(d).st_mode & stat.S_IXOTH for d in real.parents) and bool(os.stat(real).st_mode & stat.S_IROTH)
    except OSError:
        return False


def _stop(process: subprocess.Popen) -> None:
    """Time is up: the reaper kills and reaps the whole run; SIGKILL the group if it cannot."""
    try:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=_STOP_GRACE_S)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    _kill_group(process.pid)


def _wait(process: subprocess.Popen, timeout_s: float) -> tuple[bool, bool]:
    """(timed out, cancelled): wait for the run, watching the caller's cancel flag (the agent
    sets it when the tool call's own deadline passes)."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return True, False
        try:
            process.wait(timeout=min(left, 0.05))
            return False, False
        except subprocess.TimeoutExpired:
            if cancel_requested():
                return False, True


def _run_sandboxed(argv: list[str], session: ToolSession, limits: SandboxLimits) -> SandboxResult:
    workspace = session.workspace
    uid = session_uid(session)
    isolate_network = session.settings.code_isolate_network and network_isolation_available()
    private_world = uid is not None and private_world_available()
    seccomp = seccomp_available()
    flags = (_PRIVATE_WORLD if private_world else 0) | (_CLONE_NEWNET if isolate_network else 0)
    if uid is not None:
        _kill_uid(uid)  # leftovers of an earlier run must not race the ownership change
        _hand_workspace_to(workspace, uid)
    # +1: in a private world the namespace's init (the reaper, after its drop) is one of the uid's.
    nproc = _tasks_of(uid if uid is not None else os.getuid()) + limits.max_processes + 1
    config = {
        "namespaces": private_world,
        "seccomp": seccomp,
        "uid": uid,
        "workspace": str(workspace),
        "scratch_bytes": limits.scratch_bytes,
        "scratch_inodes": 4096,
    }
    command = [_launcher(uid, private_world), "-I", "-S", *_init_program(uid, private_world), json.dumps(config), "--", *argv]
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            command,
            cwd=workspace,  # entered before the uid drop, so parent directories need no access
            env=sandbox_environment(workspace, private_tmp=private_world),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            close_fds=True,
            preexec_fn=_make_preexec(limits, nproc, uid, flags),
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ToolError(f"could not start the sandboxed process: {exc}") from None
    outputs: dict[str, list[bytes]] = {"stdout": [], "stderr": []}
    overflow = [False]
    readers = [
        threading.Thread(target=_drain, args=(process.stdout, limits.max_output_bytes, outputs["stdout"], overflow), daemon=True),
        threading.Thread(target=_drain, args=(process.stderr, limits.max_output_bytes, outputs["stderr"], overflow), daemon=True),
    ]
    for reader in readers:
        reader.start()
    timed_out = cancelled = False
    try:
        timed_out, cancelled = _wait(process, limits.timeout_s)
    finally:
        if process.poll() is None:
            _stop(process)
        # Always: background children of a finished run are not allowed to linger either.
        _kill_group(process.pid)
        if uid is not None:
            _kill_uid(uid)
        process.wait()
    for reader, stream in zip(readers, (process.stdout, process.stderr)):
        reader.join(timeout=2)
        if not reader.is_alive():  # closing under a blocked reader would block us too
            stream.close()
    duration = time.monotonic() - started
    stderr = b"".join(outputs["stderr"]).decode("utf-8", errors="replace")
    if process.returncode == 126 and stderr.startswith("sandbox setup failed:"):
        raise ToolError(f"the sandbox could not be set up, nothing was run: {stderr.strip()[:300]}")
    return SandboxResult(
        exit_code=process.returncode,
        stdout=b"".join(outputs["stdout"]).decode("utf-8", errors="replace"),
        stderr=stderr,
        timed_out=timed_out or cancelled,
        truncated=overflow[0],
        duration_s=round(duration, 3),
        isolation={
            "uid": uid if uid is not None else os.getuid(),
            "dedicated_uid": uid is not None,
            "network_isolated": isolate_network,
            "private_filesystem": private_world,  # read-only world, private /tmp, own /proc
            "unix_sockets_blocked": seccomp,
            **({"cancelled": True} if cancelled else {}),
        },
    )
