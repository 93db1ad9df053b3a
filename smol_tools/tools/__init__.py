"""The demo tools: OpenAI-format schemas plus sandboxed (or clearly simulated) implementations.

    registry = default_registry()
    session = ToolSession.create()                 # fresh private workspace directory
    tools = registry.schemas()                     # for the prompt
    result = registry.execute(name, arguments, session)   # never raises
    result.content                                 # goes back to the model
"""

from __future__ import annotations

from pathlib import Path

from .base import ToolError, ToolResult, ToolSession, ToolSettings, Tool
from .calculator import CALCULATE
from .clock import GET_CURRENT_DATETIME
from .code import EXECUTE_PYTHON, SHELL_COMMAND
from .database import DATABASE_QUERY
from .files import LIST_DIRECTORY, READ_FILE, WRITE_FILE
from .organizer import CREATE_CALENDAR_EVENT, SEND_EMAIL
from .registry import ToolRegistry
from .simulated import GET_WEATHER, TRANSLATE, WEB_SEARCH
from .web import GET_WEBPAGE, HTTP_REQUEST

ALL_TOOLS: tuple[Tool, ...] = (
    WEB_SEARCH,
    GET_WEBPAGE,
    EXECUTE_PYTHON,
    READ_FILE,
    WRITE_FILE,
    LIST_DIRECTORY,
    SEND_EMAIL,
    GET_CURRENT_DATETIME,
    CALCULATE,
    TRANSLATE,
    GET_WEATHER,
    CREATE_CALENDAR_EVENT,
    DATABASE_QUERY,
    HTTP_REQUEST,
    SHELL_COMMAND,
)

# Code, shell and network tools: the UI offers them switched off by default.
DANGEROUS_TOOLS: frozenset[str] = frozenset(tool.name for tool in ALL_TOOLS if tool.dangerous)

# A workspace seed matching the scripted demo conversations (todo.txt: "buy milk"); pass it as
# ToolSettings(workspace_seed=DEMO_WORKSPACE) to start each session with it.
DEMO_WORKSPACE: Path = Path(__file__).resolve().parent / "data" / "demo_workspace"


def default_registry() -> ToolRegistry:
    """The 15 demo tools."""
    return ToolRegistry(ALL_TOOLS)


__all__ = [
    "ALL_TOOLS",
    "DANGEROUS_TOOLS",
    "DEMO_WORKSPACE",
    "Tool",
    "ToolError",
    "ToolRegistry",
    "ToolResult",
    "ToolSession",
    "ToolSettings",
    "default_registry",
]
