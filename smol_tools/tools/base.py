"""The shared vocabulary of the demo tools: settings, session, result, tool, and error helpers.

Every tool is a plain function `run(arguments, session) -> ToolResult`. A tool signals a
failure the model can read and recover from by raising `ToolError`; the registry turns it into
an error result (`{"error": "..."}`), so tool code stays linear."""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

# Operator hooks. A provider replaces the offline simulation of its tool with a real service.
SearchProvider = Callable[[str, int], list[dict]]  # (query, num_results) -> [{title, url, snippet}]
WeatherProvider = Callable[[str, str], dict]  # (city, unit) -> weather dict
TranslateProvider = Callable[[str, str, "str | None"], str]  # (text, target, source) -> text
Resolver = Callable[[str, int], list[str]]  # (host, port) -> IP address strings
Clock = Callable[[], datetime]  # -> an aware datetime (naive values are taken as UTC)

# Unprivileged uids handed to sandboxed code when the server runs as root (one per session).
DEFAULT_SANDBOX_UIDS = range(1_000_000, 1_000_000 + (1 << 24))


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class ToolSettings:
    """Operator-controlled limits and switches. Nothing here is ever taken from the model."""

    # Code execution (execute_python, shell_command): off unless the operator turns it on.
    allow_code_execution: bool = False
    code_timeout_s: float = 10
    code_memory_mb: int = 256
    code_max_output_bytes: int = 32_000  # per stream (stdout, stderr)
    code_max_processes: int = 32  # RLIMIT_NPROC headroom above what the uid already runs
    code_max_file_mb: int = 16  # RLIMIT_FSIZE: the largest file the code may write
    code_scratch_mb: int = 64  # the run's private /tmp (a tmpfs, in RAM), where namespaces are available
    code_python: str | None = None  # interpreter for execute_python (None: pick one, see sandbox)
    # As root, sandboxed code runs under a fresh unprivileged uid from this range (one per
    # session), which makes RLIMIT_NPROC effective and keeps sessions out of each other's
    # workspaces. None (or empty) is refused while the server runs as root: code never runs as root.
    code_sandbox_uids: range | None = DEFAULT_SANDBOX_UIDS
    code_isolate_network: bool = True  # give sandboxed code an empty network namespace if possible

    # Network (get_webpage, http_request).
    allow_network: bool = True
    # "host:port" or "host" entries that may be reached although they resolve to a private or
    # loopback address (for tests and intranet demos). Cloud metadata addresses stay refused.
    allowed_private_hosts: frozenset[str] = frozenset()
    http_timeout_s: float = 10
    max_redirects: int = 5
    max_response_bytes: int = 1_000_000
    max_request_body_bytes: int = 100_000
    resolver: Resolver | None = None  # None: the system resolver (netguard.resolve_host)

    # Workspace files.
    max_file_bytes: int = 1_000_000
    max_workspace_bytes: int = 20_000_000
    max_directory_entries: int = 500
    max_workspace_entries: int = 500  # files and folders in the whole workspace (every write path)
    workspace_seed: Path | None = None  # a directory copied into every new workspace

    # database_query.
    database_path: Path | None = None  # None: the shipped demo database, built on first use
    cache_dir: Path | None = None  # where the demo database is built (None: ~/.cache/smol-tools)
    db_max_rows: int = 200
    db_timeout_s: float = 2.0

    # What goes back to the model: long results cost context (the model has 32K tokens).
    max_result_chars: int = 12_000
    max_outbox_items: int = 200  # per session, for both the outbox and the calendar

    # Simulated tools: set a provider to use a real service instead.
    search_provider: SearchProvider | None = None
    weather_provider: WeatherProvider | None = None
    translate_provider: TranslateProvider | None = None
    clock: Clock = utc_now


@dataclass
class ToolSession:
    """One user's state: a private workspace directory and what the tools recorded."""

    workspace: Path
    outbox: list[dict] = field(default_factory=list)
    calendar: list[dict] = field(default_factory=list)
    settings: ToolSettings = field(default_factory=ToolSettings)
    sandbox_uid: int | None = None  # chosen on the first sandboxed run (see sandbox.py)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    # One sandboxed run at a time per session: a run kills every process of the session's uid.
    sandbox_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def create(cls, root: Path | None = None, settings: ToolSettings | None = None) -> ToolSession:
        """A session with a fresh, empty (or seeded) workspace under `root` (default: the temp dir)."""
        settings = settings or ToolSettings()
        if root is not None:
            Path(root).mkdir(parents=True, exist_ok=True)
        # mkdtemp: unpredictable name, mode 0700, never an existing (attacker-made) directory.
        workspace = Path(tempfile.mkdtemp(prefix="smol-tools-session-", dir=root)).resolve()
        if settings.workspace_seed is not None:
            shutil.copytree(settings.workspace_seed, workspace, dirs_exist_ok=True, symlinks=False)
            workspace.chmod(0o700)  # copytree copied the seed directory's mode onto it
        return cls(workspace=workspace, settings=settings)

    def cleanup(self) -> None:
        """Delete the workspace (rmtree does not follow symlinks)."""
        shutil.rmtree(self.workspace, ignore_errors=True)


@dataclass(frozen=True)
class ToolResult:
    content: str  # what goes back to the model (JSON text for structured results)
    is_error: bool = False
    data: Any = None  # the structured form, for the UI


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict
    run: Callable[[dict, ToolSession], ToolResult]
    dangerous: bool = False  # reaches the network or runs code: the UI offers it off by default
    simulated: bool = False  # answers from an offline simulation unless a provider is configured

    def schema(self) -> dict:
        """The OpenAI tool dict, keys in canonical order (type, function: name, description, parameters)."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": copy.deepcopy(self.parameters),
            },
        }


class ToolError(Exception):
    """A failure the model should read and can recover from (bad path, refused URL, ...)."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


def to_json(value: Any) -> str:
    # ensure_ascii=False keeps non-English text readable (and cheaper in tokens) for the model.
    return json.dumps(value, ensure_ascii=False)


def json_result(data: Any, *, is_error: bool = False) -> ToolResult:
    return ToolResult(content=to_json(data), is_error=is_error, data=data)


def error_result(message: str, **details: Any) -> ToolResult:
    payload = {"error": message, **details}
    return ToolResult(content=to_json(payload), is_error=True, data=payload)


def shorten(text: str, limit: int = 200) -> str:
    """Echo untrusted input in messages without letting it flood them."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
