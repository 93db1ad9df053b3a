"""The first program of every sandboxed run: builds the run's private world, starts the code in
it, reaps every process the code leaves behind, and reports the code's exit status.

Run as `python -I -S sandbox_init.py CONFIG_JSON -- ARGV...` (or its source through -c, when the
sandbox uid cannot read this file) by sandbox.py; standard library only (it must run before,
and independently of, the server's packages). Two modes:

* namespaces (the server is root and may create namespaces): sandbox.py's preexec has already
  put this process in new mount, network, IPC and UTS namespaces and asked for a new PID
  namespace for its children. This process (root) forks the namespace's init (PID 1), which
  mounts a fresh /proc (only the run's own processes are visible), remounts every filesystem
  read-only, mounts a size-limited tmpfs on /tmp (bound onto /var/tmp and /dev/shm too),
  covers /run with an empty read-only tmpfs (no sockets), binds the workspace back read-write,
  drops to the session's uid, installs the seccomp filter and starts the code. When the code
  exits, init exits, and the kernel kills and reaps everything left in the namespace; every
  mount (the scratch tmpfs with it) goes away with the last process of the mount namespace.
* plain (no namespaces, e.g. a non-root server): this process is a child subreaper
  (PR_SET_CHILD_SUBREAPER) with the seccomp filter: processes the code orphans are re-parented
  here, and are killed and reaped when the code exits.

Either way, SIGTERM (sent by sandbox.py at the time limit) kills the run and this process ends
as if killed by SIGKILL; zombies never outlive a run, so one run that hits the process cap
cannot deny the next one (a zombie still counts against RLIMIT_NPROC).

The seccomp filter makes socket(AF_UNIX, ...) fail with EACCES: sockets bound to a path (under
/tmp, /run, anywhere) or in the abstract namespace cannot be reached by the code, whatever its
mount view. socketpair() stays allowed (no address: it reaches nothing). io_uring is refused
too, because it can create sockets without the socket() system call."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import signal
import struct
import sys

# Mount flags (linux/mount.h).
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
_KEPT_FLAGS = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME  # == ST_* values

PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
PR_SET_CHILD_SUBREAPER = 36
# Per architecture: (AUDIT_ARCH_*, __NR_socket, __NR_io_uring_setup, whether x32 numbers exist).
SECCOMP_ARCHES = {"x86_64": (0xC000003E, 41, 425, True), "aarch64": (0xC00000B7, 198, 425, False)}
_X32_BIT = 0x40000000
_AF_UNIX = 1


class SetupError(Exception):
    pass


_libc = None


def _lib():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)
        _libc.prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong)
    return _libc


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    encode = lambda value: value.encode() if value is not None else None  # noqa: E731
    if _lib().mount(encode(source), encode(target), encode(fstype), flags, encode(data)) != 0:
        code = ctypes.get_errno()
        raise SetupError(f"mount {fstype or 'bind'} on {target}: {os.strerror(code)}")


# -- seccomp ---------------------------------------------------------------------------------


def seccomp_program(machine: str) -> bytes | None:
    """The BPF program (struct sock_filter[]) for `machine`, or None if we have no numbers for it."""
    if machine not in SECCOMP_ARCHES:
        return None
    arch, nr_socket, nr_io_uring_setup, has_x32 = SECCOMP_ARCHES[machine]
    allow, deny = 0x7FFF0000, 0x00050000 | errno.EACCES
    deny_other_abi = 0x00050000 | errno.ENOSYS

    def stmt(code: int, k: int) -> tuple:
        return (code, 0, 0, k)

    def jeq(k: int, jt: int, jf: int) -> tuple:
        return (0x15, jt, jf, k)

    ld, ret = 0x20, 0x06
    program = [
        stmt(ld, 4),  # seccomp_data.arch
        jeq(arch, 1, 0),
        stmt(ret, deny_other_abi),  # another ABI (i386 through int 0x80): nothing
        stmt(ld, 0),  # seccomp_data.nr
    ]
    if has_x32:
        program += [(0x35, 0, 1, _X32_BIT), stmt(ret, deny_other_abi)]  # JGE: the x32 ABI: nothing
    program += [
        jeq(nr_io_uring_setup, 0, 1),
        stmt(ret, deny),
        jeq(nr_socket, 0, 3),
        stmt(ld, 16),  # args[0], low 32 bits (little-endian): the address family
        jeq(_AF_UNIX, 0, 1),
        stmt(ret, deny),
        stmt(ret, allow),
    ]
    return b"".join(struct.pack("HBBI", *instruction) for instruction in program)


def install_seccomp() -> bool:
    program = seccomp_program(os.uname().machine)
    if program is None:
        return False
    libc = _lib()
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = struct.pack("HxxxxxxQ", len(program) // 8, ctypes.addressof(buffer))
    fprog_buffer = ctypes.create_string_buffer(fprog, len(fprog))
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, None, 0, 0) != 0:
        raise SetupError(f"prctl(NO_NEW_PRIVS): {os.strerror(ctypes.get_errno())}")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog_buffer), 0, 0) != 0:
        raise SetupError(f"seccomp filter: {os.strerror(ctypes.get_errno())}")
    return True


# -- the private filesystem view (namespace mode, as root) ------------------------------------


def _mount_points() -> list[str]:
    points = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as handle:
        for line in handle:
            field = line.split(" ")[4]
            # mountinfo escapes space, tab, newline and backslash as octal
            points.append(field.encode("latin-1", "surrogateescape").decode("unicode_escape"))
    return points


def _remount_everything_read_only() -> None:
    for point in _mount_points():
        if point == "/proc" or point.startswith("/proc/"):
            continue  # our own fresh /proc: what is writable there is the kernel's business
        try:
            flags = os.statvfs(point).f_flag & _KEPT_FLAGS
        except OSError:
            continue  # hidden under another mount: that one is in the list too
        _mount(None, point, None, MS_BIND | MS_REMOUNT | MS_RDONLY | flags)


def build_private_view(config: dict) -> None:
    """In the new mount namespace, as root, as PID 1 of the new PID namespace."""
    workspace = config["workspace"]
    workspace_fd = os.open(workspace, os.O_PATH | os.O_DIRECTORY)
    shm = os.path.realpath("/dev/shm") if os.path.isdir("/dev/shm") else None
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _remount_everything_read_only()
    if os.path.isdir("/run"):  # unix sockets live here; the seccomp filter is the other lock
        _mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k,nr_inodes=64,mode=0755")
    scratch = f"size={int(config['scratch_bytes'])},nr_inodes={int(config['scratch_inodes'])},mode=1777"
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, scratch)
    for target in ("/var/tmp", shm):
        if target and target != "/tmp":
            if target.startswith("/run/"):
                os.makedirs(target, exist_ok=True)
            if os.path.isdir(target):
                _mount("/tmp", target, None, MS_BIND)
    if os.path.isdir("/run"):
        _mount(None, "/run", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k,nr_inodes=64,mode=0755")
    # The workspace, back read-write. When it lives under /tmp the new tmpfs hid it: its path
    # is made again there (root-owned parents, 0755) to bind it onto.
    os.makedirs(workspace, mode=0o755, exist_ok=True)
    _mount(f"/proc/self/fd/{workspace_fd}", workspace, None, MS_BIND)
    _mount(None, workspace, None, MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV)
    os.close(workspace_fd)
    os.chdir(workspace)


def drop_privileges(uid: int) -> None:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


# -- running and reaping ----------------------------------------------------------------------


class _Stop(Exception):
    pass


def _on_sigterm(signum, frame) -> None:
    raise _Stop


def _start(argv: list[str]) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            for number in (signal.SIGTERM, signal.SIGINT, signal.SIGPIPE, signal.SIGXFSZ):
                signal.signal(number, signal.SIG_DFL)
            os.execvp(argv[0], argv)
        except BaseException as exc:  # noqa: BLE001 - report, never return into the reaper
            os.write(2, f"sandbox: cannot run {argv[0]}: {exc}\n".encode(errors="replace"))
        finally:
            os._exit(127)
    return pid


def _children(pid: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as handle:
                    stat = handle.read()
            except OSError:
                continue
            fields = stat[stat.rfind(b")") + 2 :].split()
            if len(fields) > 1 and int(fields[1]) == pid:
                found.append(int(name))
    return found


def _kill_descendants() -> None:
    """Kill every child, reap it; its orphans come to us (subreaper); repeat until none."""
    me = os.getpid()
    while True:
        for child in _children(me):
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            while True:
                pid, _ = os.waitpid(-1, 0)
        except ChildProcessError:
            return


def reap_until(main_pid: int) -> int:
    """Reap every child until `main_pid` exits; return its wait status."""
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == main_pid:
            return status


def _mirror(status: int) -> None:
    """End this process the way the code ended (exit code or signal)."""
    code = os.waitstatus_to_exitcode(status)
    sys.stdout.flush()
    if code >= 0:
        os._exit(code)
    if -code not in (signal.SIGKILL, signal.SIGSTOP):
        signal.signal(-code, signal.SIG_DFL)
    os.kill(os.getpid(), -code)
    os._exit(128 - code)


def _fail(message: str) -> None:
    os.write(2, f"sandbox setup failed: {message}\n".encode(errors="replace"))
    os._exit(126)


def _namespace_init(config: dict, argv: list[str], report_fd: int) -> None:
    """PID 1 of the run's PID namespace: never returns."""
    try:
        build_private_view(config)
        drop_privileges(config["uid"])
        install_seccomp()
    except (SetupError, OSError) as exc:
        _fail(str(exc))
    status = reap_until(_start(argv))
    os.write(report_fd, str(status).encode())
    os._exit(0)  # the kernel now kills and reaps whatever is left in the namespace


def main(arguments: list[str]) -> None:
    config = json.loads(arguments[0])
    argv = arguments[2:]  # after "--"
    signal.signal(signal.SIGTERM, _on_sigterm)
    if config["namespaces"]:
        try:
            _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we mount leaks back out
        except SetupError as exc:
            _fail(str(exc))
        read_end, write_end = os.pipe()
        init = os.fork()
        if init == 0:
            os.close(read_end)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            _namespace_init(config, argv, write_end)
        os.close(write_end)
        try:
            _, init_status = os.waitpid(init, 0)
        except _Stop:
            os.kill(init, signal.SIGKILL)  # PID 1 gone: the kernel kills the whole namespace
            os.waitpid(init, 0)
            _mirror(signal.SIGKILL)  # a raw wait status of "killed by SIGKILL" is the number 9
        reported = os.read(read_end, 64)
        _mirror(int(reported) if reported else init_status)
    try:
        _lib().prctl(PR_SET_CHILD_SUBREAPER, 1, None, 0, 0)
        if config["seccomp"]:
            install_seccomp()
    except (SetupError, OSError) as exc:
        _fail(str(exc))
    main_pid = _start(argv)
    try:
        status = reap_until(main_pid)
    except _Stop:
        _kill_descendants()
        _mirror(signal.SIGKILL)
    _kill_descendants()  # background processes do not outlive the run
    _mirror(status)


if __name__ == "__main__":
    main(sys.argv[1:])
