"""read_file, write_file, list_directory: confined to the session's workspace directory.

Confinement does not rely on string checks alone. After rejecting obviously bad paths (`..`,
absolute, drive letters, backslashes, NUL), every path is opened one component at a time with
`openat(dir_fd, name, O_NOFOLLOW)`, starting from a descriptor of the workspace itself. No
symlink is followed anywhere on the way, so a link planted inside the workspace (by code
execution, or an earlier write) cannot lead out, and there is no check-then-use window: the
descriptor we read or write is the one we checked."""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..safe_text import clean_text
from .base import Tool, ToolError, ToolResult, ToolSession, json_result, shorten, to_json

_DRIVE_LETTER = re.compile(r"^[A-Za-z]:")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_MAX_COMPONENT = 200  # leaves room for the temporary name used by atomic writes
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_USAGE_SCAN_LIMIT = 20_000  # entries; bounds the time spent measuring a workspace


def split_workspace_path(raw: object) -> list[str]:
    """Validate a model-supplied relative path; return its components ([] is the workspace)."""
    if not isinstance(raw, str):
        raise ToolError("path must be a string")
    shown = shorten(clean_text(raw))
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError as exc:
        # A lone surrogate (a JSON \udc80 escape) would make a name that is not UTF-8, and
        # every later listing of it would carry the bad code point into the history.
        bad = ord(raw[exc.start])
        raise ToolError(f"path is not valid Unicode text: it contains U+{bad:04X}, a lone surrogate; "
                        f"use the character itself: {shown!r}") from None
    if "\x00" in raw:
        raise ToolError(f"path contains a NUL byte: {shown!r}")
    if "\\" in raw:
        raise ToolError(f"backslashes are not allowed in paths; use '/': {shown}")
    if _DRIVE_LETTER.match(raw):
        raise ToolError(f"absolute paths are not allowed (drive letter); use a path relative to the workspace: {shown}")
    if raw.startswith("/"):
        raise ToolError(f"absolute paths are not allowed; use a path relative to the workspace: {shown}")
    parts = [part for part in raw.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ToolError(f"path escapes the workspace: {shown}")
    for part in parts:
        if _CONTROL_CHARS.search(part):
            raise ToolError(f"path contains control characters: {shown!r}")
        if len(part.encode("utf-8", "surrogatepass")) > _MAX_COMPONENT:
            raise ToolError(f"path component longer than {_MAX_COMPONENT} bytes: {shorten(part, 60)}")
    return parts


def display_path(parts: list[str]) -> str:
    return "/".join(parts) or "."


def _describe_open_error(exc: OSError, dir_fd: int, name: str, shown: str) -> ToolError:
    """Turn an openat failure into a message the model can act on."""
    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
        try:
            if stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode):
                return ToolError(f"refusing to follow a symlink: {shown}")
        except OSError:
            pass
        if exc.errno == errno.ENOTDIR:
            return ToolError(f"not a directory: {shown}")
    if exc.errno == errno.ENOENT:
        return ToolError(f"not found: {shown}")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return ToolError(f"permission denied: {shown}")
    return ToolError(f"cannot open {shown}: {exc.strerror}")


@contextmanager
def open_directory(workspace: Path, parts: list[str], *, create: bool = False,
                   created: list[int] | None = None) -> Iterator[int]:
    """Yield a descriptor of workspace/parts..., following no symlink; optionally create dirs
    (appending the index in `parts` of each one this call made to `created`)."""
    fd = os.open(workspace, _DIR_FLAGS)
    try:
        for index, name in enumerate(parts):
            shown = display_path(parts[: index + 1])
            try:
                next_fd = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise ToolError(f"directory not found: {shown}") from None
                try:
                    os.mkdir(name, 0o755, dir_fd=fd)
                    if created is not None:
                        created.append(index)
                except FileExistsError:
                    pass  # created concurrently; the O_NOFOLLOW open below still vets it
                try:
                    next_fd = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    raise _describe_open_error(exc, fd, name, shown) from None
            except OSError as exc:
                raise _describe_open_error(exc, fd, name, shown) from None
            os.close(fd)
            fd = next_fd
        yield fd
    finally:
        os.close(fd)


def workspace_usage(workspace: Path) -> int:
    """Bytes used by regular files in the workspace (symlinks are not followed)."""
    return workspace_totals(workspace)[0]


def workspace_totals(workspace: Path) -> tuple[int, int]:
    """(bytes in regular files, entries of any kind) in the workspace."""
    total = 0
    seen = 0
    for _root, dirs, files, root_fd in os.fwalk(workspace, follow_symlinks=False):
        for name in files + dirs:
            seen += 1
            if seen > _USAGE_SCAN_LIMIT:
                raise ToolError("the workspace holds too many files")
            try:
                info = os.stat(name, dir_fd=root_fd, follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                total += info.st_size
    return total, seen


def _decode_text(data: bytes, shown: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        if b"\x00" in data:
            raise ToolError(f"{shown} is a binary file; read_file returns text only") from None
        return data.decode("utf-8", errors="replace")


def read_file(arguments: dict, session: ToolSession) -> ToolResult:
    parts = split_workspace_path(arguments["path"])
    if not parts:
        raise ToolError("path names the workspace directory; use list_directory to see its files")
    shown = display_path(parts)
    limit = session.settings.max_file_bytes
    with open_directory(session.workspace, parts[:-1]) as dir_fd:
        try:
            # O_NONBLOCK: opening a FIFO planted in the workspace must not hang the tool.
            fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
        except FileNotFoundError:
            raise ToolError(f"file not found: {shown}") from None
        except OSError as exc:
            raise _describe_open_error(exc, dir_fd, parts[-1], shown) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ToolError(f"{shown} is a directory; use list_directory")
        raise ToolError(f"{shown} is not a regular file")
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(limit + 1)
    truncated = len(data) > limit
    text = _decode_text(data[:limit], shown)
    content = text
    if truncated:
        content += f"\n[truncated: {shown} is {info.st_size} bytes; showing the first {limit}]"
    return ToolResult(content=content, data={"path": shown, "text": text, "size": info.st_size, "truncated": truncated})


def write_file(arguments: dict, session: ToolSession) -> ToolResult:
    parts = split_workspace_path(arguments["path"])
    if not parts:
        raise ToolError("path names the workspace directory; give a file name")
    append = arguments.get("mode", "overwrite") == "append"
    data = arguments["content"].encode("utf-8", errors="replace")
    settings = session.settings
    if len(data) > settings.max_file_bytes:
        raise ToolError(f"content is {len(data)} bytes; the limit is {settings.max_file_bytes}")
    created: list[int] = []
    try:
        result = _write_in_place(session, parts, data, append, created)
    except BaseException:
        _remove_created(session.workspace, parts[:-1], created)  # a refused write leaves nothing
        raise
    return json_result(result)


def _remove_created(workspace: Path, parents: list[str], created: list[int]) -> None:
    """Remove the directories a failed write made, deepest first (only while empty)."""
    for index in reversed(created):
        try:
            with open_directory(workspace, parents[:index]) as fd:
                os.rmdir(parents[index], dir_fd=fd)
        except (OSError, ToolError):
            return  # no longer empty or no longer ours: leave it and everything above


def _write_in_place(session: ToolSession, parts: list[str], data: bytes, append: bool,
                    created: list[int]) -> dict:
    shown = display_path(parts)
    settings = session.settings
    with open_directory(session.workspace, parts[:-1], create=True, created=created) as dir_fd:
        name = parts[-1]
        try:
            existing = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            existing = None
        if existing is not None:
            if stat.S_ISLNK(existing.st_mode):
                raise ToolError(f"refusing to write through a symlink: {shown}")
            if stat.S_ISDIR(existing.st_mode):
                raise ToolError(f"{shown} is a directory")
            if not stat.S_ISREG(existing.st_mode):
                raise ToolError(f"{shown} is not a regular file")
        old_size = existing.st_size if existing is not None else 0
        if append and old_size + len(data) > settings.max_file_bytes:
            raise ToolError(f"{shown} would grow to {old_size + len(data)} bytes; the limit is {settings.max_file_bytes}")
        used, entries = workspace_totals(session.workspace)
        if existing is None and entries + 1 > settings.max_workspace_entries:
            raise ToolError(f"the workspace holds {entries} files and folders; the limit is {settings.max_workspace_entries}")
        projected = used + len(data) - (0 if append else old_size)
        if projected > settings.max_workspace_bytes:
            raise ToolError(f"the workspace would hold {projected} bytes; the limit is {settings.max_workspace_bytes}")
        if append:
            _append(dir_fd, name, data, shown)
        else:
            _replace_atomically(dir_fd, name, data)
    return {"path": shown, "bytes_written": len(data), "mode": "append" if append else "overwrite"}


def _append(dir_fd: int, name: str, data: bytes, shown: str) -> None:
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(name, flags, 0o644, dir_fd=dir_fd)
    except OSError as exc:
        raise _describe_open_error(exc, dir_fd, name, shown) from None
    with os.fdopen(fd, "wb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise ToolError(f"{shown} is not a regular file")
        handle.write(data)


def _replace_atomically(dir_fd: int, name: str, data: bytes) -> None:
    """Write a new file and rename it over `name`: readers never see half a file, and a
    symlink at `name` is replaced, not written through."""
    temp = f".{name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        try:
            os.unlink(temp, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        raise


def _text_name(name: str) -> str:
    """A file name as text: bytes that are not UTF-8 (made outside the tools) show as U+FFFD
    instead of entering the history as lone surrogates."""
    if name.isascii():
        return name
    return os.fsencode(name).decode("utf-8", errors="replace")


def _entry_kind(entry: os.DirEntry) -> str:
    if entry.is_symlink():
        return "symlink"
    if entry.is_dir(follow_symlinks=False):
        return "directory"
    if entry.is_file(follow_symlinks=False):
        return "file"
    return "other"


def list_directory(arguments: dict, session: ToolSession) -> ToolResult:
    parts = split_workspace_path(arguments.get("path", "."))
    shown = display_path(parts)
    cap = session.settings.max_directory_entries
    entries: list[dict] = []
    total = 0
    with open_directory(session.workspace, parts) as dir_fd:
        with os.scandir(dir_fd) as scan:
            for entry in scan:
                total += 1
                if len(entries) >= cap:
                    continue
                kind = _entry_kind(entry)
                size = entry.stat(follow_symlinks=False).st_size if kind == "file" else None
                entries.append({"name": _text_name(entry.name), "type": kind, "size": size})
    entries.sort(key=lambda item: item["name"])
    # The model sees names only (directories end in "/"), the UI gets types and sizes.
    names: list[str] = []
    budget = session.settings.max_result_chars - 100
    for item in entries:
        name = item["name"] + ("/" if item["type"] == "directory" else "")
        budget -= len(to_json(name)) + 2
        if budget < 0:
            break
        names.append(name)
    truncated = total > len(names)
    if truncated:
        names.append(f"... ({total - len(names)} more entries not shown)")
    data = {"path": shown, "entries": entries, "total": total, "truncated": truncated}
    return ToolResult(content=to_json(names), data=data)


_PATH_DESCRIPTION = "Path relative to the workspace, with '/' separators (no '..', no leading '/')."

READ_FILE = Tool(
    name="read_file",
    description="Read a UTF-8 text file from the user's workspace and return its contents.",
    parameters={
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": _PATH_DESCRIPTION, "minLength": 1, "maxLength": 512},
        },
        "required": ["path"],
        "additionalProperties": False,
    },
    run=read_file,
)

WRITE_FILE = Tool(
    name="write_file",
    description=(
        "Write a UTF-8 text file in the user's workspace, creating parent directories as needed. "
        "Overwrites the file unless mode is 'append'."
    ),
    parameters={
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": _PATH_DESCRIPTION, "minLength": 1, "maxLength": 512},
            "content": {"type": "string", "description": "The text to write.", "maxLength": 1_000_000},
            "mode": {
                "type": "string",
                "description": "'overwrite' (default) replaces the file; 'append' adds to its end.",
                "enum": ["overwrite", "append"],
            },
        },
        "required": ["path", "content"],
        "additionalProperties": False,
    },
    run=write_file,
)

LIST_DIRECTORY = Tool(
    name="list_directory",
    description="List the files and subdirectories (names ending in '/') of a directory in the user's workspace.",
    parameters={
        "type": "object",
        "properties": {
            "path": {
                "type": "string",
                "description": "Directory relative to the workspace; '.' (the default) is the workspace itself.",
                "maxLength": 512,
            },
        },
        "additionalProperties": False,
    },
    run=list_directory,
)
