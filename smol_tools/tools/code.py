"""execute_python and shell_command: off by default; when on, run through sandbox.run_sandboxed."""

from __future__ import annotations

import sys

from .base import Tool, ToolError, ToolResult, ToolSession, error_result, json_result
from .sandbox import SandboxLimits, run_sandboxed, session_uid, unprivileged_python

_ENABLE_HINT = "The server operator can enable it with ToolSettings(allow_code_execution=True)."


def _disabled(tool_name: str) -> ToolResult:
    return error_result(f"{tool_name} is disabled on this server. {_ENABLE_HINT}", disabled=True)


def _limits(session: ToolSession) -> SandboxLimits:
    settings = session.settings
    return SandboxLimits(
        timeout_s=settings.code_timeout_s,
        memory_bytes=settings.code_memory_mb * 1024 * 1024,
        max_output_bytes=settings.code_max_output_bytes,
        max_processes=settings.code_max_processes,
        max_file_bytes=settings.code_max_file_mb * 1024 * 1024,
        scratch_bytes=settings.code_scratch_mb * 1024 * 1024,
    )


def sandbox_python(session: ToolSession) -> str:
    """The interpreter for execute_python: the operator's choice, else ours if the sandbox uid
    can run it, else a system python3 (ours may live under a private home directory)."""
    if session.settings.code_python:
        return session.settings.code_python
    if session_uid(session) is None:
        return sys.executable
    python = unprivileged_python()
    if python is None:
        raise ToolError(
            "no Python interpreter is usable by the unprivileged sandbox user; the operator can set "
            "ToolSettings.code_python to an interpreter every user may execute (e.g. /usr/bin/python3), "
            "or make this one world-readable and world-executable"
        )
    return python


def _run(argv: list[str], session: ToolSession) -> ToolResult:
    outcome = run_sandboxed(argv, session, _limits(session))
    payload = outcome.for_model()
    data = {**payload, "duration_s": outcome.duration_s, "sandbox": outcome.isolation}
    failed = outcome.timed_out or outcome.exit_code != 0
    return ToolResult(content=json_result(payload).content, is_error=failed, data=data)


def execute_python(arguments: dict, session: ToolSession) -> ToolResult:
    if not session.settings.allow_code_execution:
        return _disabled("execute_python")
    # -I: isolated mode (no PYTHON* variables, no user site-packages, no script dir on sys.path).
    return _run([sandbox_python(session), "-I", "-c", arguments["code"]], session)


def shell_command(arguments: dict, session: ToolSession) -> ToolResult:
    if not session.settings.allow_code_execution:
        return _disabled("shell_command")
    return _run(["/bin/sh", "-c", arguments["command"]], session)


_SANDBOX_NOTE = (
    "Runs in a sandbox in the user's workspace directory with time, memory and process limits; "
    "do not expect network access. Print results to see them."
)

EXECUTE_PYTHON = Tool(
    name="execute_python",
    description=f"Execute a Python 3 program and return its exit code, stdout and stderr. {_SANDBOX_NOTE}",
    parameters={
        "type": "object",
        "properties": {
            "code": {"type": "string", "description": "The complete Python program to run.", "minLength": 1, "maxLength": 20000},
        },
        "required": ["code"],
        "additionalProperties": False,
    },
    run=execute_python,
    dangerous=True,
)

SHELL_COMMAND = Tool(
    name="shell_command",
    description=f"Run a POSIX shell command (/bin/sh -c) and return its exit code, stdout and stderr. {_SANDBOX_NOTE}",
    parameters={
        "type": "object",
        "properties": {
            "command": {"type": "string", "description": "The shell command line to run.", "minLength": 1, "maxLength": 4000},
        },
        "required": ["command"],
        "additionalProperties": False,
    },
    run=shell_command,
    dangerous=True,
)
