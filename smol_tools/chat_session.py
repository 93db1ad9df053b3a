"""One user's session: history, tools, workspace, and the agent that continues it.

The terminal chat and the Gradio app both drive this; it owns no UI and no transport."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

from .agent import Agent, AgentConfig, ManualHandler, ToolOutcome
from .events import AgentEvent
from .backends.base import Backend, CancelToken
from .safe_text import clean_text, clean_value
from .tool_schema import backend_view, tool_view
from .tools import ToolRegistry, ToolSession, default_registry

EXPORT_FORMAT = "smol-tools-session/1"


@dataclass
class ChatSession:
    backend: Backend
    registry: ToolRegistry = field(default_factory=default_registry)
    tool_session: ToolSession = field(default_factory=ToolSession.create)
    enabled_tools: list[str] | None = None  # None: every registry tool
    custom_tools: list[dict[str, Any]] = field(default_factory=list)  # schemas answered manually
    schema_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> OpenAI tool
    config: AgentConfig = field(default_factory=AgentConfig)
    system_prompt: str | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def tool_schemas(self) -> list[dict[str, Any]]:
        """The schemas the prompt shows, in the most faithful form the backend's runtime can
        carry (tool_schema.tool_view: as declared for Jinja runtimes, Ollama's view for Ollama;
        the tools still enforce their full schemas when they run). In `enabled_tools` order when
        given: the order is part of the prompt, so an imported session (or the tiny model's
        scripted tool list) renders exactly as it did."""
        by_name = {s["function"]["name"]: s for s in self.registry.schemas(self.enabled_tools)}
        order = list(dict.fromkeys(self.enabled_tools)) if self.enabled_tools is not None else list(by_name)
        schemas = [self.schema_overrides.get(name, by_name[name]) for name in order]
        return tool_view(schemas + list(self.custom_tools), backend_view(self.backend))

    def _execute(self, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        result = self.registry.execute(name, arguments, self.tool_session)
        return ToolOutcome(result.content, result.is_error, result.data)

    def _implemented(self, name: str) -> bool:
        return self.registry.get(name) is not None and not any(
            t["function"]["name"] == name for t in self.custom_tools)

    def send(self, text: str, *, cancel: CancelToken | None = None,
             manual: ManualHandler | None = None) -> Iterator[AgentEvent]:
        """Add the user's message and run the agent until it answers (or stops)."""
        if not self.messages and self.system_prompt:
            self.messages.append({"role": "system", "content": clean_text(self.system_prompt)})
        # Valid Unicode only: one lone surrogate in the history breaks every later prompt.
        self.messages.append({"role": "user", "content": clean_text(text)})
        agent = Agent(self.backend, self.tool_schemas(), self._execute, config=self.config,
                      manual=manual, session_id=self.session_id, implemented=self._implemented)
        yield from agent.run(self.messages, cancel)

    def export(self) -> dict[str, Any]:
        """The whole session as OpenAI messages + tools: re-importable, for bug reports."""
        return {"format": EXPORT_FORMAT, "messages": self.messages, "tools": self.tool_schemas(),
                "enable_thinking": self.config.enable_thinking}

    def export_json(self) -> str:
        return json.dumps(self.export(), ensure_ascii=False, indent=2)

    def load(self, data: Mapping[str, Any]) -> None:
        if data.get("format") != EXPORT_FORMAT or not isinstance(data.get("messages"), list):
            raise ValueError(f"not a {EXPORT_FORMAT} export")
        self.messages = [clean_value(dict(m)) for m in data["messages"]]
        known = set(self.registry.names())
        tools = data.get("tools", [])
        self.custom_tools = [t for t in tools if t["function"]["name"] not in known]
        if "tools" in data:
            # Reproduce the prompt the export was made with: the same registry tools on, with
            # the schemas the model saw (they can differ from the registry's, e.g. the tiny
            # model's scripted ones).
            builtin = [dict(t) for t in tools if t["function"]["name"] in known]
            self.enabled_tools = [t["function"]["name"] for t in builtin]
            defaults = {s["function"]["name"]: s
                        for s in tool_view(self.registry.schemas(self.enabled_tools), backend_view(self.backend))}
            self.schema_overrides = {t["function"]["name"]: t for t in builtin
                                     if t != defaults[t["function"]["name"]]}
        if "enable_thinking" in data:
            self.config.enable_thinking = bool(data["enable_thinking"])

    def reset(self) -> None:
        self.messages = []
        self.session_id = uuid.uuid4().hex


def scripted_tool_overrides(tools: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Use these schemas in the prompt for tools of the same name (the tiny model knows only the
    schemas it was trained with)."""
    return {t["function"]["name"]: dict(t) for t in tools}
