"""MCP servers in the Tools panel: a visitor lists servers (one per line: a command line for
stdio, or an http(s) URL), their tools join the session's registry next to the built-ins.

Gating is the same as the dangerous built-ins, because it is the same danger: a URL makes this
server reach the network (needs SMOL_TOOLS_ALLOW_NETWORK, and on a public instance private
addresses are refused as for http_request), a command runs code on this server, unsandboxed
(needs SMOL_TOOLS_ALLOW_CODE). And the field as a whole is off on a public instance unless the
operator sets SMOL_TOOLS_ALLOW_MCP_SERVERS=1. A server's tool schemas pass the visitor schema gate
(smol_tools/mcp_tools.py); the tools it refuses are listed, with why, next to those connected.
"""

# No `from __future__ import annotations`: gr.api reads real type hints.

import json
import weakref
from typing import Any

from ..mcp_tools import McpError, McpServerSpec, McpToolbox, split_lines
from ..safe_text import bound_text
from ..tools import ALL_TOOLS, ToolError, ToolRegistry
from ..tools.netguard import vet_url
from .tools_panel import tool_choices

MAX_SERVERS = 4
OFF = "MCP servers are off on this server (the operator can allow them with SMOL_TOOLS_ALLOW_MCP_SERVERS=1)"


def panel_note(config: Any) -> str:
    if not config.allow_mcp_servers:
        return f"⚠ {OFF}."
    return ("⚠ **MCP servers: one per line**, a command (stdio, e.g. `npx -y @modelcontextprotocol/server-everything`) "
            "or an http(s) URL. A command runs **unsandboxed on this server** "
            f"({'allowed' if config.allow_code else 'off here: SMOL_TOOLS_ALLOW_CODE'}); a URL is fetched "
            f"from this server ({'allowed' if config.allow_network else 'off here: SMOL_TOOLS_ALLOW_NETWORK'}). "
            "Their tools appear below; names a built-in has get the server's name as prefix.")


def gate_problems(config: Any, specs: list[McpServerSpec], tool_settings: Any) -> list[str]:
    if not specs:
        return []
    if not config.allow_mcp_servers:
        return [OFF]
    if len(specs) > MAX_SERVERS:
        return [f"at most {MAX_SERVERS} MCP servers per session"]
    problems = []
    for spec in specs:
        shown = bound_text(spec.text, 100)
        if spec.is_http:
            if not config.allow_network:
                problems.append(f"{shown}: network access is off on this server (SMOL_TOOLS_ALLOW_NETWORK)")
            elif config.public:
                try:  # a visitor may not point this server at its own intranet
                    vet_url(spec.url, tool_settings)
                except ToolError as exc:
                    problems.append(f"{shown}: {exc.message}")
        elif not config.allow_code:
            problems.append(f"{shown}: a command runs code on this server, and code execution is off "
                            "(SMOL_TOOLS_ALLOW_CODE)")
    return problems


def close_mcp_servers(session: Any) -> None:
    box = getattr(session, "mcp_toolbox", None)
    if box is not None:
        box.close()
        session.mcp_toolbox = None


def set_mcp_servers(session: Any, text: str) -> list[str]:
    """Connect the servers in `text` (replacing the session's earlier ones); returns problems
    (nothing changed) or [] (applied: their tools are in the registry and switched on)."""
    if not isinstance(text, str):
        return ["servers must be text, one per line"]
    try:
        specs = [McpServerSpec.parse(line) for line in split_lines(text)]
    except McpError as exc:
        return [str(exc)]
    problems = gate_problems(session.config, specs, session.chat.tool_session.settings)
    if problems:
        return problems
    return attach_mcp_servers(session, specs)


def attach_mcp_servers(session: Any, servers: list[McpServerSpec | str]) -> list[str]:
    """Connect `servers` for an AppSession without the visitor gates (the terminal chat's user is
    the operator); replaces its earlier servers. Returns problems (nothing changed) or []."""
    registry = session.chat.registry
    old_mcp = set(getattr(getattr(session, "mcp_toolbox", None), "names", lambda: [])())
    builtins = [registry.get(n) for n in registry.names() if n not in old_mcp]  # as the session has them
    builtin_names = [t.name for t in builtins]
    box = None
    if servers:
        try:
            box = McpToolbox.connect(servers, taken=builtin_names,
                                     call_timeout_s=session.chat.config.tool_timeout_s)
        except McpError as exc:
            return [str(exc)]
    close_mcp_servers(session)
    session.mcp_toolbox = box
    if box is not None:  # an evicted or closed session's servers stop with it
        weakref.finalize(session, box.close)
    new_tools = box.tools if box is not None else []
    session.chat.registry = ToolRegistry(builtins + new_tools)
    enabled = [n for n in (session.chat.enabled_tools or []) if n not in old_mcp]
    session.chat.enabled_tools = enabled + [t.name for t in new_tools]
    session.touched = True
    return list(box.skipped) if box is not None and box.skipped and not new_tools else []


def skipped_tools(session: Any) -> list[str]:
    """The connected servers' tools left out, each with why (a schema the gate refused, a bad
    name, over the per-server limit): shown next to the tools that did connect."""
    box = getattr(session, "mcp_toolbox", None)
    return list(box.skipped) if box is not None else []


def tool_labels(session: Any) -> list[tuple[str, str]]:
    """The Tools panel's checkbox choices: the built-ins' labels, then the MCP tools'."""
    builtin = tool_choices(ToolRegistry(ALL_TOOLS))
    box = getattr(session, "mcp_toolbox", None)
    extra = [(f"{name} (MCP: {box.origin.get(name, '')})", name) for name in (box.names() if box else [])]
    return builtin + extra


def build_panel(service: Any, tools_box: Any) -> None:
    """The MCP field under the tools checkboxes, and its named endpoint `set_mcp_servers`.
    Call inside the Tools accordion of the gr.Blocks."""
    import gradio as gr  # start-up time: gradio takes seconds to import

    config = service.config
    gr.Markdown(panel_note(config))
    field = gr.Textbox(label="MCP servers (one per line)", lines=2, interactive=config.allow_mcp_servers,
                       placeholder="python my_server.py\nhttp://127.0.0.1:9000/mcp")
    button = gr.Button("Connect MCP servers", interactive=config.allow_mcp_servers)
    status = gr.Markdown()

    def on_connect(text: str, request: gr.Request):
        session = service.session(request.session_hash)
        problems = set_mcp_servers(session, text or "")
        note = ("✗ **Not connected:**\n" + "\n".join(f"- {p}" for p in problems)) if problems else (
            f"✓ MCP tools: {', '.join(getattr(session.mcp_toolbox, 'names', lambda: [])()) or 'none'}"
            + "".join(f"\n- left out: {s}" for s in skipped_tools(session)))
        return note, gr.update(choices=tool_labels(session), value=session.chat.enabled_tools or [])

    # Connecting starts processes or opens connections: never wait behind the model, no API name.
    button.click(on_connect, [field], [status, tools_box], api_visibility="private", concurrency_limit=None)

    def set_mcp_servers_api(servers: str, request: gr.Request) -> str:
        """Connect MCP servers for this session (one per line: a stdio command or an http(s) URL);
        their tools join the registry and are switched on. Returns JSON {"ok", "problems", "tools"}."""
        session = service.session(request.session_hash)
        problems = set_mcp_servers(session, servers)
        box = getattr(session, "mcp_toolbox", None)
        return json.dumps({"ok": not problems, "problems": problems,
                           "tools": [{"name": n, "origin": box.origin[n]} for n in box.names()] if box else [],
                           "skipped": skipped_tools(session)},
                          ensure_ascii=False)

    set_mcp_servers_api.__name__ = "set_mcp_servers"
    gr.api(set_mcp_servers_api, api_name="set_mcp_servers", concurrency_limit=None)
