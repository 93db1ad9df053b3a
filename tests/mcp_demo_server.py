"""A real MCP server for the tests, written with the `mcp` SDK's low-level server so each tool's
input schema is exactly what we write (the tiny model only recognises its scripted schemas).

    python tests/mcp_demo_server.py            # stdio (what `smol-tools chat --mcp` starts)
    python tests/mcp_demo_server.py --http PORT  # streamable HTTP on 127.0.0.1:PORT/mcp
    python tests/mcp_demo_server.py --hostile    # stdio, plus HOSTILE_TOOLS (schema-gate tests)

Tools: get_weather (the scripted schema and answers), calculate (collides with a built-in: the
client must namespace it), slow_echo (sleeps), always_fails (the tool reports an error),
plan_trip (a nested schema: an object holding an array of objects).
Self-contained on purpose: a stdio server is started with a minimal environment.
"""

from __future__ import annotations

import asyncio
import json
import sys

import mcp.types as types
from mcp.server.lowlevel import Server

WEATHER = {  # the tool results of the scripted conversations
    "Paris": {"city": "Paris", "temperature_c": 18, "condition": "cloudy"},
    "Rome": {"city": "Rome", "temperature_c": 20, "condition": "clear"},
}

TOOLS = [
    types.Tool(
        name="get_weather", description="Get the current weather for a city.",
        inputSchema={"type": "object", "properties": {
            "city": {"type": "string", "description": "City name"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}),
    types.Tool(
        name="calculate", description="Add two integers (an MCP tool whose name a built-in has).",
        inputSchema={"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                     "required": ["a", "b"]}),
    types.Tool(
        name="slow_echo", description="Wait `seconds`, then echo `text`.",
        inputSchema={"type": "object", "properties": {"text": {"type": "string"},
                                                      "seconds": {"type": "number", "minimum": 0}},
                     "required": ["text", "seconds"]}),
    types.Tool(
        name="always_fails", description="Fails with the given reason.",
        inputSchema={"type": "object", "properties": {"reason": {"type": "string"}}, "required": ["reason"]}),
    types.Tool(
        name="plan_trip", description="Count the legs and days of a trip.",
        inputSchema={"type": "object", "required": ["trip"], "properties": {"trip": {
            "type": "object", "required": ["destination", "legs"], "additionalProperties": False,
            "properties": {
                "destination": {"type": "string"},
                "legs": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["from", "to", "days"],
                    "properties": {"from": {"type": "string"}, "to": {"type": "string"},
                                   "days": {"type": "integer", "minimum": 1}}}}}}}}),
]

# With --hostile: schemas a careless or hostile server could send. `match_word` has a pattern
# (and a patternProperties key) that backtracks exponentially in Python's `re`: the client must
# keep it and check it on RE2. `peek` has a lookahead RE2 cannot run: the client must refuse it.
HOSTILE_TOOLS = [
    types.Tool(
        name="match_word", description="Echo a word made of a's.",
        inputSchema={"type": "object", "required": ["word"], "properties": {
            "word": {"type": "string", "pattern": "^(a+)+$"},
            "tags": {"type": "object", "additionalProperties": False,
                     "patternProperties": {"^(a+)+$": {"type": "integer"}}}}}),
    types.Tool(
        name="peek", description="A tool whose pattern uses a lookahead.",
        inputSchema={"type": "object", "properties": {"code": {"type": "string", "pattern": "^(?=(a+)+$)a"}}}),
]
HOSTILE = "--hostile" in sys.argv

server = Server("demo-tools")


@server.list_tools()
async def list_tools() -> list[types.Tool]:
    return TOOLS + (HOSTILE_TOOLS if HOSTILE else [])


@server.call_tool()
async def call_tool(name: str, arguments: dict) -> list[types.TextContent]:
    if name == "get_weather":
        city = arguments["city"]
        if city not in WEATHER:
            raise ValueError(f"no weather for {city}")
        text = json.dumps(WEATHER[city])
    elif name == "calculate":
        text = str(arguments["a"] + arguments["b"])
    elif name == "slow_echo":
        await asyncio.sleep(float(arguments["seconds"]))
        text = arguments["text"]
    elif name == "always_fails":
        raise RuntimeError(f"refused: {arguments['reason']}")
    elif name == "match_word":
        text = arguments["word"]
    elif name == "plan_trip":
        trip = arguments["trip"]
        text = json.dumps({"destination": trip["destination"], "legs": len(trip["legs"]),
                           "days": sum(leg["days"] for leg in trip["legs"])})
    else:
        raise ValueError(f"unknown tool {name}")
    return [types.TextContent(type="text", text=text)]


async def _stdio() -> None:
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


def _http(port: int) -> None:
    import uvicorn
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
    from starlette.applications import Starlette
    from starlette.routing import Mount

    manager = StreamableHTTPSessionManager(app=server, stateless=False)

    async def handle(scope, receive, send):
        await manager.handle_request(scope, receive, send)

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app):
        async with manager.run():
            yield

    app = Starlette(routes=[Mount("/mcp", app=handle)], lifespan=lifespan)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


class HttpDemoServer:
    """This server over streamable HTTP in a child process, for the tests: `url` ends in /mcp/."""

    def __init__(self) -> None:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/mcp/"
        self.process = None

    def __enter__(self) -> "HttpDemoServer":
        import subprocess
        import time
        import urllib.error
        import urllib.request

        self.process = subprocess.Popen([sys.executable, __file__, "--http", str(self.port)])
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=2)
            except urllib.error.HTTPError:
                return self  # it answers (404 for /)
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.__exit__()
                    raise RuntimeError("the MCP demo server did not start")
                time.sleep(0.3)

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--http":
        _http(int(sys.argv[2]))
    else:
        asyncio.run(_stdio())
