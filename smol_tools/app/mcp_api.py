"""The app as an MCP server: a small, deliberate set of tools for MCP clients (Claude Desktop,
Cursor, the `mcp` SDK, another agent), served by Gradio's MCP support at /gradio_api/mcp/.

Gradio would publish every named endpoint as an MCP tool; the browser-facing ones (stop,
import_session, put_file, ...) make no sense to an MCP client, so `restrict_mcp_tools` keeps
only the functions registered here. Each returns JSON text (the structures, as JSON): the
transcript an MCP client reads is the same one the API's `send` returns.

Sessions: an MCP call carries no browser session, so `run_agent_turn` takes a `conversation`
id. Empty starts a new conversation; the result names its id, and passing it back continues it.
"""

# No `from __future__ import annotations`: Gradio reads real type hints for the tool schemas.
import json
import uuid
from typing import Any

import gradio as gr

from ..toolcalls import parse_output
from ..tools import DANGEROUS_TOOLS, default_registry
from .service import DemoService
from .session import SessionBusy

MCP_TOOL_NAMES = ("run_agent_turn", "list_agent_tools", "parse_model_output")
_CONVERSATION_PREFIX = "mcp-"
MAX_PARSE_CHARS = 200_000


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


class McpApi:
    def __init__(self, service: DemoService) -> None:
        self.service = service

    def _key(self, conversation: str) -> str:
        conversation = (conversation or "").strip()
        if not conversation:
            return _CONVERSATION_PREFIX + uuid.uuid4().hex
        if len(conversation) > 80 or not conversation.replace("-", "").isalnum():
            raise gr.Error("conversation must be an id returned by run_agent_turn (letters, digits, '-')")
        # Visitors' browser sessions are keyed by Gradio's session hash; MCP conversations live
        # in their own prefix so an MCP client can never continue a browser visitor's session.
        return conversation if conversation.startswith(_CONVERSATION_PREFIX) else _CONVERSATION_PREFIX + conversation

    def run_agent_turn(self, message: str, conversation: str = "", request: gr.Request = None) -> str:
        """Send one user message to the smol-tools agent and run it until it answers: the model
        calls the demo tools (weather, calculator, files in a private workspace, ...), every call
        is parsed, checked against its schema and executed, and the results go back to the model.

        Returns JSON: {"conversation": id to pass back to continue, "turn": number of this turn,
        "answer": the final text, "calls": [{"round", "name", "arguments", "schema_ok", "result",
        "is_error", "seconds", ...}], "rounds": per model round (reasoning, raw text, usage),
        "finish": {"reason": "answer"|"round_limit"|"error"|..., "message"}, "backend": label}.

        Args:
            message: the user's message, e.g. "What is the weather in Paris?"
            conversation: the id a previous call returned, to continue that conversation; empty for a new one
        """
        if not message or not message.strip():
            raise gr.Error("the message is empty")
        key = self._key(conversation)
        client = getattr(getattr(request, "client", None), "host", None) if request is not None else None
        session = self.service.session(key, client=client)
        try:
            turn = session.run_turn(message)
        except SessionBusy as exc:
            raise gr.Error(str(exc)) from None
        except ValueError as exc:  # a message over the size limit, or invalid text
            raise gr.Error(str(exc)) from None
        return _json({"conversation": key, "turn": len(session.turns), "backend": session.opened.label,
                      **turn.to_dict()})

    def list_agent_tools(self, conversation: str = "") -> str:
        """List the tools the smol-tools agent can call in a conversation (a new one when empty):
        their names, descriptions and JSON Schemas as the model sees them, and which are on.

        Returns JSON: {"tools": [{"name", "description", "parameters", "enabled"}], "backend": label}.

        Args:
            conversation: a conversation id from run_agent_turn; empty for the tools a new conversation gets
        """
        if conversation.strip():
            session = self.service.session(self._key(conversation))
            enabled = set(session.chat.enabled_tools or [])
            registry = session.chat.registry
            label = session.opened.label
        else:
            registry = default_registry()
            enabled = {n for n in registry.names() if n not in DANGEROUS_TOOLS}
            label = self.service.default.label
        tools = [{"name": s["function"]["name"], "description": s["function"]["description"],
                  "parameters": s["function"]["parameters"], "enabled": s["function"]["name"] in enabled}
                 for s in registry.schemas()]
        return _json({"tools": tools, "backend": label})

    def parse_model_output(self, text: str, thinking_open: bool = False) -> str:
        """Parse raw text a tool-calling model wrote (ChatML with <think> reasoning and
        <tool_call> blocks, JSON or XML form) into reasoning, answer content and tool calls,
        exactly as smol-tools reads it. Malformed calls come back as errors, never dropped.

        Returns JSON: {"reasoning", "content", "tool_calls": [{"name", "arguments"}], "errors": [{"raw", "message"}], "notes"}.

        Args:
            text: the model's raw output, e.g. '<tool_call>\\n{"name": "get_weather", "arguments": {"city": "Paris"}}\\n</tool_call>'
            thinking_open: true when the prompt opened a <think> block, so the text starts inside reasoning
        """
        if len(text) > MAX_PARSE_CHARS:
            raise gr.Error(f"the text is {len(text):,} characters; the limit is {MAX_PARSE_CHARS:,}")
        return _json(parse_output(text, thinking_open=bool(thinking_open)).to_dict())


def register_mcp_api(service: DemoService, *, concurrency_id: str, concurrency_limit: int | None) -> McpApi:
    """Publish the MCP tools as named endpoints in the current gr.Blocks context (the turn joins
    the model's concurrency group)."""
    api = McpApi(service)
    gr.api(api.run_agent_turn, api_name="run_agent_turn", concurrency_id=concurrency_id,
           concurrency_limit=concurrency_limit)
    gr.api(api.list_agent_tools, api_name="list_agent_tools", concurrency_limit=None)
    gr.api(api.parse_model_output, api_name="parse_model_output", concurrency_limit=None)
    return api


def restrict_mcp_tools(demo: gr.Blocks, names: tuple[str, ...] = MCP_TOOL_NAMES) -> list[str]:
    """After launch(mcp_server=True): serve only `names` as MCP tools (listed and callable).
    Returns the MCP tool names served (Gradio prefixes them with the Space's name on a Space)."""
    server = getattr(demo, "mcp_server_obj", None)
    if server is None:
        return []
    wanted = {"/" + n for n in names} | set(names)
    server.tool_to_endpoint = {tool: endpoint for tool, endpoint in server.tool_to_endpoint.items()
                               if endpoint in wanted}
    return list(server.tool_to_endpoint)
