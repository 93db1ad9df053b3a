"""The tools panel's data: a label per tool saying why the dangerous ones are off, and the
warning text, from the registry and the operator's settings."""

from __future__ import annotations

from ..tools import DANGEROUS_TOOLS, ToolRegistry

CODE_TOOLS = frozenset({"execute_python", "shell_command"})  # the rest of DANGEROUS_TOOLS reach the network


def danger_kind(name: str) -> str | None:
    if name not in DANGEROUS_TOOLS:
        return None
    return "runs code" if name in CODE_TOOLS else "network"


def tool_choices(registry: ToolRegistry) -> list[tuple[str, str]]:
    """(label, value) pairs for a checkbox group, in registry order."""
    choices = []
    for name in registry.names():
        kind = danger_kind(name)
        choices.append((f"⚠ {name} ({kind})" if kind else name, name))
    return choices


def danger_warning(allow_code: bool, allow_network: bool) -> str:
    code = ("they run in a sandbox on this server" if allow_code else
            "this server has code execution off (SMOL_TOOLS_ALLOW_CODE), so they answer with an error")
    network = ("they fetch real URLs from this server (private addresses refused)" if allow_network else
               "this server has network access off, so they answer with an error")
    return (f"⚠ **Off by default.** `execute_python` and `shell_command` run code: {code}. "
            f"`get_webpage` and `http_request` reach the internet: {network}. "
            "Turn them on only if you trust what you ask the model to do.")
