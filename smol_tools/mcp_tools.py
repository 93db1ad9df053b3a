"""Tools served by Model Context Protocol servers, as ordinary tools of the agent.

    with McpToolbox.connect(["python my_server.py", "http://127.0.0.1:9000/mcp"], taken=names) as box:
        registry = ToolRegistry(ALL_TOOLS + box.tools)

A server is a stdio command line ("COMMAND ARGS", started as a child process) or an http(s)
URL (streamable HTTP; a URL ending in /sse uses the older SSE transport). Each server's tools
become `Tool`s, so a call goes through the same path as a built-in tool: the agent's schema
check and deadline, the registry's validation, result cap and error results.

The `mcp` SDK is asynchronous; each connection keeps its session open on one private event
loop thread, and the tools call into it synchronously (the agent runs tools on threads).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shlex
import threading
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Iterable, Sequence

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from .safe_text import bound_text, clean_text
from .schema_regex import schema_shape_problems
from .tools import ToolRegistry
from .tools.base import Tool, ToolError, ToolResult, ToolSession

log = logging.getLogger(__name__)

# OpenAI-style function names; the prompt and every runtime accept these.
_NAME_OK = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_DESCRIPTION_CHARS = 1_000  # a server's description goes into every prompt: keep it bounded
MAX_TOOLS_PER_SERVER = 64
CONNECT_TIMEOUT_S = 30.0
INSTALL_HINT = "pip install 'smol-tools[mcp]'"  # pyproject.toml's extra (the mcp SDK)


class McpError(RuntimeError):
    """An MCP server could not be reached, started or listed; the message says which and why."""


@dataclass(frozen=True)
class McpServerSpec:
    """Where a server is: `url` (HTTP) or `command` (stdio argv)."""

    text: str
    url: str | None = None
    command: tuple[str, ...] = ()

    @property
    def is_http(self) -> bool:
        return self.url is not None

    @classmethod
    def parse(cls, text: str) -> "McpServerSpec":
        text = clean_text(text or "").strip()
        if not text:
            raise McpError("empty MCP server: give a command line (stdio) or an http(s) URL")
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text):
            if not text.lower().startswith(("http://", "https://")):
                raise McpError(f"MCP server URL {bound_text(text, 120)!r}: only http:// and https:// are served")
            return cls(text=text, url=text)
        try:
            argv = tuple(shlex.split(text))
        except ValueError as exc:
            raise McpError(f"MCP server command {bound_text(text, 120)!r}: {exc}") from None
        return cls(text=text, command=argv)


def parse_servers(texts: Iterable[str]) -> list[McpServerSpec]:
    """One spec per non-empty entry; a bad one raises McpError naming it."""
    return [McpServerSpec.parse(t) for t in texts if t and t.strip()]


def split_lines(text: str) -> list[str]:
    """The app's field: one server per line; blank lines and lines starting with # ignored."""
    return [line.strip() for line in (text or "").splitlines() if line.strip() and not line.strip().startswith("#")]


def _safe_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "mcp"
    return name[:64]


class McpConnection:
    """One open client session to one server, on its own event loop thread."""

    def __init__(self, spec: McpServerSpec, *, call_timeout_s: float = 60.0,
                 connect_timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        self.spec = spec
        self.call_timeout_s = call_timeout_s
        self.server_name = ""
        self.tools: list[Any] = []  # mcp.types.Tool
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._closing: asyncio.Event | None = None
        self._session: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"mcp:{bound_text(spec.text, 40)}", daemon=True)
        self._thread.start()
        if not self._ready.wait(connect_timeout_s):
            self.close()
            raise McpError(f"MCP server {bound_text(spec.text, 120)!r} did not answer within {connect_timeout_s:g}s")
        if self._error is not None:
            raise McpError(f"MCP server {bound_text(spec.text, 120)!r}: {_describe(self._error)}") from None

    # -- the loop thread ---------------------------------------------------------------------
    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported to the caller, never lost
            if not self._ready.is_set():
                self._error = exc
        finally:
            self._ready.set()
            self._loop.close()

    async def _main(self) -> None:
        from mcp import ClientSession  # start-up time: the mcp SDK takes seconds to import

        self._closing = asyncio.Event()
        async with AsyncExitStack() as stack:
            read, write = await stack.enter_async_context(self._transport())
            session = await stack.enter_async_context(ClientSession(read, write))
            init = await session.initialize()
            self.server_name = getattr(init.serverInfo, "name", "") or ""
            listed = await session.list_tools()
            self.tools = list(listed.tools)
            self._session = session
            self._ready.set()
            await self._closing.wait()

    def _transport(self):
        spec = self.spec
        if spec.url is not None:
            if spec.url.rstrip("/").endswith("/sse"):
                from mcp.client.sse import sse_client  # start-up time: the mcp SDK takes seconds to import

                return _pair(sse_client(spec.url))
            # start-up time: the mcp SDK takes seconds to import
            from mcp.client.streamable_http import streamable_http_client

            return _pair(streamable_http_client(spec.url))
        from mcp import StdioServerParameters  # start-up time: the mcp SDK takes seconds to import
        from mcp.client.stdio import stdio_client  # start-up time: the mcp SDK takes seconds to import

        if not spec.command:
            raise McpError("empty MCP server command")
        return stdio_client(StdioServerParameters(command=spec.command[0], args=list(spec.command[1:])))

    # -- calls from any thread --------------------------------------------------------------
    def call(self, name: str, arguments: dict[str, Any]) -> Any:
        """The server's CallToolResult; raises ToolError on transport failure or timeout."""
        if self._session is None or not self._thread.is_alive():
            raise ToolError(f"the MCP server {bound_text(self.spec.text, 80)!r} is not connected")
        timeout = self.call_timeout_s
        future = asyncio.run_coroutine_threadsafe(
            self._session.call_tool(name, arguments, read_timeout_seconds=timedelta(seconds=timeout)), self._loop)
        try:
            return future.result(timeout + 5)
        except FutureTimeout:
            future.cancel()
            raise ToolError(f"{name}: the MCP server did not answer within {timeout:g}s") from None
        except asyncio.CancelledError:  # the connection closed under the call
            raise ToolError(f"{name}: the MCP connection closed during the call") from None
        except Exception as exc:  # noqa: BLE001 - a transport error is a result for the model
            if "timed out" in str(exc).lower():  # the SDK's own read timeout (an McpError)
                raise ToolError(f"{name}: the MCP server did not answer within {timeout:g}s") from None
            raise ToolError(f"{name}: MCP call failed: {_describe(exc)}") from None

    def close(self) -> None:
        if self._closing is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._closing.set)
        self._thread.join(10)


def _pair(context):
    """streamable_http_client yields (read, write, get_session_id); stdio and SSE yield (read, write)."""
    @asynccontextmanager
    async def wrapped():
        async with context as streams:
            yield streams[0], streams[1]

    return wrapped()


def _describe(exc: BaseException) -> str:
    # anyio task groups wrap the real failure in ExceptionGroups: show the innermost one.
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc) or type(exc).__name__
    return bound_text(f"{type(exc).__name__}: {text}" if str(exc) else text, 300)


def result_to_tool_result(result: Any) -> ToolResult:
    """An MCP CallToolResult as what the model reads: the text parts (a lone JSON text stays as
    is), structured content as JSON when there is no text, other parts named, not inlined."""
    parts: list[str] = []
    for item in getattr(result, "content", None) or []:
        kind = getattr(item, "type", "")
        if kind == "text":
            parts.append(item.text)
        elif kind in ("image", "audio"):
            parts.append(f"[{kind} {getattr(item, 'mimeType', '')}: {len(getattr(item, 'data', '') or '')} "
                         "base64 characters, not shown]")
        elif kind == "resource":
            resource = item.resource
            text = getattr(resource, "text", None)
            parts.append(text if text is not None else f"[resource {resource.uri}]")
        elif kind == "resource_link":
            parts.append(f"[resource {item.uri}]")
    structured = getattr(result, "structuredContent", None)
    text = clean_text("\n".join(parts)) if parts else (
        json.dumps(structured, ensure_ascii=False) if structured is not None else "")
    if getattr(result, "isError", False):
        raise ToolError(bound_text(text or "the MCP tool reported an error without a message", 2_000))
    return ToolResult(content=text, data=structured if structured is not None else text)


@dataclass
class McpToolbox:
    """Open connections and the Tools made from their tools; `skipped` says what was left out."""

    connections: list[McpConnection] = field(default_factory=list)
    tools: list[Tool] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    origin: dict[str, str] = field(default_factory=dict)  # our tool name -> "server: original name"

    @classmethod
    def connect(cls, servers: Sequence[str | McpServerSpec], *, taken: Iterable[str] = (),
                call_timeout_s: float = 60.0) -> "McpToolbox":
        specs = [s if isinstance(s, McpServerSpec) else McpServerSpec.parse(s) for s in servers]
        if specs:
            try:
                import mcp  # noqa: F401 - the wheel's optional extra `mcp` (pyproject.toml)
            except ImportError:
                raise McpError(f"MCP servers need the mcp package: {INSTALL_HINT}") from None
        box = cls()
        try:
            for spec in specs:
                box.connections.append(McpConnection(spec, call_timeout_s=call_timeout_s))
        except BaseException:
            box.close()
            raise
        box._build(set(taken))
        return box

    def _build(self, taken: set[str]) -> None:
        for index, connection in enumerate(self.connections):
            prefix = _safe_name(connection.server_name or f"mcp{index + 1}")
            for mcp_tool in connection.tools[:MAX_TOOLS_PER_SERVER]:
                tool, problem = _make_tool(connection, mcp_tool, prefix, taken)
                if tool is None:
                    self.skipped.append(problem)
                    continue
                taken.add(tool.name)
                self.tools.append(tool)
                self.origin[tool.name] = f"{connection.server_name or connection.spec.text}: {mcp_tool.name}"
            if len(connection.tools) > MAX_TOOLS_PER_SERVER:
                self.skipped.append(f"{prefix}: {len(connection.tools) - MAX_TOOLS_PER_SERVER} tools over "
                                    f"the {MAX_TOOLS_PER_SERVER}-tool limit per server")

    def names(self) -> list[str]:
        return [t.name for t in self.tools]

    def close(self) -> None:
        for connection in self.connections:
            connection.close()
        self.connections = []

    def __enter__(self) -> "McpToolbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _make_tool(connection: McpConnection, mcp_tool: Any, prefix: str, taken: set[str]) -> tuple[Tool | None, str]:
    original = str(mcp_tool.name)
    name = _safe_name(original) if not _NAME_OK.match(original) else original
    if name in taken:  # collision with a built-in or an earlier server: namespace it
        name = _safe_name(f"{prefix}__{name}")
        base, n = name, 2
        while name in taken:
            name = _safe_name(f"{base[:60]}_{n}")
            n += 1
    schema = dict(mcp_tool.inputSchema or {"type": "object", "properties": {}})
    schema.setdefault("type", "object")
    if schema.get("type") != "object":
        return None, f"{prefix}: {original}: the input schema is not an object schema"
    # An MCP server is outside code, like a visitor: its schema passes the visitor gate first
    # (depth, then patterns RE2 can run; check_schema recurses, so depth comes before it).
    # A tool with a pattern RE2 cannot run is refused, not kept with that pattern dropped or
    # on Python's `re`: dropping it would silently loosen the server's contract, and `re`
    # could backtrack for seconds holding the GIL (every session stalls). The patterns that
    # pass run on RE2 wherever a call is validated (the agent, the registry).
    shape = schema_shape_problems(schema, where="input schema")
    if shape:
        return None, f"{prefix}: {original}: refused: {bound_text('; '.join(shape), 300)}"
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return None, f"{prefix}: {original}: invalid input schema: {bound_text(exc.message, 200)}"
    description = clean_text(mcp_tool.description or getattr(mcp_tool, "title", None) or original)
    description = bound_text(description, MAX_DESCRIPTION_CHARS)

    def run(arguments: dict, session: ToolSession) -> ToolResult:
        return result_to_tool_result(connection.call(original, arguments))

    # An MCP server is gated when it is connected (network reach / code execution); its tools
    # themselves are ordinary from the panel's point of view.
    return Tool(name=name, description=description, parameters=schema, run=run), ""


def attach_to_chat(chat: Any, servers: Sequence[str | McpServerSpec], *,
                   call_timeout_s: float | None = None) -> McpToolbox:
    """Connect `servers` and add their tools to a ChatSession's registry (and to its enabled
    tools when it lists them). Names a built-in already has are namespaced. The caller closes
    the returned toolbox when the session ends."""
    timeout = call_timeout_s if call_timeout_s is not None else chat.config.tool_timeout_s
    box = McpToolbox.connect(servers, taken=chat.registry.names(), call_timeout_s=timeout)
    builtins = [chat.registry.get(name) for name in chat.registry.names()]
    chat.registry = ToolRegistry(builtins + box.tools)
    if chat.enabled_tools is not None:
        chat.enabled_tools = list(chat.enabled_tools) + box.names()
    return box
