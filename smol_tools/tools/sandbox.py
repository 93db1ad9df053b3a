"""Run untrusted code in a resource-limited child process.

Layers, each independent of the others:

* a new session and process group (killed as a whole on timeout and after every run);
* rlimits set in the child before exec: CPU seconds, address space, file size, open files,
  number of processes, no core dumps;
* a scrubbed environment (PATH, HOME, TMPDIR, LANG only), stdin from /dev/null, cwd = the
  session workspace, output read through capped pipes;
* when the server runs as root: the child first enters a new, empty network namespace (no
  interfaces but a down loopback: no network at all) and then drops to an unprivileged uid of
  its own (one per session). The kernel does not enforce RLIMIT_NPROC for root, so this drop
  is what makes the process cap real; it also keeps the child out of other sessions'
  workspaces and the server's files, and lets us kill every process of that uid afterwards,
  even one that left the process group with setsid().

Without root (e.g. a Hugging Face Space) the child keeps the server's uid and network: the
rlimits still hold, RLIMIT_NPROC counts the server's own threads too (the cap is set above
the current count), and /proc/<server pid>/environ stays readable by the child, so keep
secrets out of the server's environment there, or leave code execution off."""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import random
import resource
import signal
import stat
import subprocess
import threading
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from .base import ToolError, ToolSession

_CLONE_NEWNET = 0x40000000
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


@cache
def network_isolation_available() -> bool:
    """Whether a child can enter a new network namespace here (needs CAP_SYS_ADMIN)."""
    if not running_as_root():
        return False
    unshare = _libc_unshare()

    def enter() -> None:
        if unshare(_CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET) failed")

    try:
        subprocess.run(["/bin/true"], preexec_fn=enter, check=True, timeout=10, close_fds=True)
    except (OSError, subprocess.SubprocessError):
        return False
    return True


def session_uid(session: ToolSession) -> int | None:
    """The unprivileged uid this session's code runs as (None: keep the server's uid)."""
    uids = session.settings.code_sandbox_uids
    if uids is None or not running_as_root():
        return None
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


def _make_preexec(limits: SandboxLimits, nproc: int, uid: int | None, isolate_network: bool):
    cpu = math.ceil(limits.timeout_s) + 1  # a backstop: the wall-clock timeout normally fires first
    unshare = _libc_unshare() if isolate_network else None

    def preexec() -> None:  # runs in the child between fork and exec: keep it minimal
        if unshare is not None and unshare(_CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET) failed")
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.max_file_bytes, limits.max_file_bytes))
        resource.setrlimit(resource.RLIMIT_NOFILE, (_MAX_OPEN_FILES, _MAX_OPEN_FILES))
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        if uid is not None:
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


def sandbox_environment(workspace: Path) -> dict[str, str]:
    """The whole environment of the child: nothing is inherited from the server."""
    return {"PATH": _SAFE_PATH, "HOME": str(workspace), "TMPDIR": str(workspace), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


def run_sandboxed(argv: list[str], session: ToolSession, limits: SandboxLimits) -> SandboxResult:
    with session.sandbox_lock:
        return _run_sandboxed(argv, session, limits)


def _run_sandboxed(argv: list[str], session: ToolSession, limits: SandboxLimits) -> SandboxResult:
    workspace = session.workspace
    uid = session_uid(session)
    isolate = session.settings.code_isolate_network and network_isolation_available()
    if uid is not None:
        _kill_uid(uid)  # leftovers of an earlier run must not race the ownership change
        _hand_workspace_to(workspace, uid)
    nproc = _tasks_of(uid if uid is not None else os.getuid()) + limits.max_processes
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            argv,
            cwd=workspace,  # entered before the uid drop, so parent directories need no access
            env=sandbox_environment(workspace),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            close_fds=True,
            preexec_fn=_make_preexec(limits, nproc, uid, isolate),
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
    timed_out = False
    try:
        process.wait(timeout=limits.timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
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
    return SandboxResult(
        exit_code=process.returncode,
        stdout=b"".join(outputs["stdout"]).decode("utf-8", errors="replace"),
        stderr=b"".join(outputs["stderr"]).decode("utf-8", errors="replace"),
        timed_out=timed_out,
        truncated=overflow[0],
        duration_s=round(duration, 3),
        isolation={
            "uid": uid if uid is not None else os.getuid(),
            "dedicated_uid": uid is not None,
            "network_isolated": isolate,
        },
    )
