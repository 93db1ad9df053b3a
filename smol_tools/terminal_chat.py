"""A terminal agent session: any backend, the real tools, every call shown as parsed JSON."""

from __future__ import annotations

import json
import sys
from typing import Any

from .agent import AgentFinished, ContextStatus, RoundStarted, ToolCallChecked, ToolResultReady
from .backends.base import BackendError, TurnComplete
from .backends.factory import make_backend
from .chat_session import ChatSession, scripted_tool_overrides
from .model_source import TINY
from .tiny import TINY_N_CTX
from .toolcalls import ContentDelta, ReasoningDelta
from .tools import DANGEROUS_TOOLS, DEMO_WORKSPACE, ToolSession, ToolSettings, default_registry

DIM, RESET = "\x1b[2m", "\x1b[0m"


def build_session(backend_kind: str, model: str, url: str, think: bool, allow_code: bool) -> ChatSession:
    overrides: dict[str, Any] = {}
    enabled = None
    if backend_kind == "llama-cpp-python" and model.split(":")[0] == TINY:
        # The test suite's tiny model knows only its scripted tools and their schemas.
        from tests.fixtures.scripted import load_scripted

        scripted = load_scripted()["tools"]
        overrides = scripted_tool_overrides(scripted)
        enabled = [t["function"]["name"] for t in scripted]
    backend = make_backend(backend_kind, model=model, url=url,  # type: ignore[arg-type]
                           n_ctx=TINY_N_CTX if overrides else None)
    registry = default_registry()
    if enabled is None:
        enabled = [n for n in registry.names() if allow_code or n not in DANGEROUS_TOOLS]
    settings = ToolSettings(allow_code_execution=allow_code, workspace_seed=DEMO_WORKSPACE)
    session = ChatSession(backend, registry, ToolSession.create(settings=settings),
                          enabled_tools=enabled, schema_overrides=overrides)
    session.config.enable_thinking = think
    return session


def run_terminal_chat(backend_kind: str, model: str, url: str = "", think: bool = True,
                      allow_code: bool = False) -> int:
    try:
        session = build_session(backend_kind, model, url, think, allow_code)
    except (BackendError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    status = session.backend.check()
    print(f"smol-tools chat — {status.message}; tools: {', '.join(session.enabled_tools or [])}")
    print("(empty line or Ctrl-D quits)")
    while True:
        try:
            text = input("\nyou> ").strip()
        except EOFError:
            return 0
        if not text:
            return 0
        for event in session.send(text):
            _show(event)


def _show(event: Any) -> None:
    if isinstance(event, RoundStarted) and event.round > 1:
        sys.stdout.write(f"\n{DIM}— round {event.round} —{RESET}\n")
    elif isinstance(event, ReasoningDelta):
        sys.stdout.write(f"{DIM}{event.text}{RESET}")
    elif isinstance(event, ContentDelta):
        sys.stdout.write(event.text)
    elif isinstance(event, ToolCallChecked):
        verdict = "schema ok" if event.ok else "; ".join(event.problems)
        sys.stdout.write(f"\n[call {event.index + 1}] {json.dumps({'name': event.name, 'arguments': event.arguments}, ensure_ascii=False)} ({verdict})")
    elif isinstance(event, ToolResultReady):
        label = "error" if event.outcome.is_error else "result"
        sys.stdout.write(f"\n[{label} {event.index + 1}, {event.seconds:.2f}s] {event.outcome.content[:500]}")
    elif isinstance(event, ContextStatus) and event.note:
        sys.stdout.write(f"\n{DIM}[{event.note}]{RESET}")
    elif isinstance(event, TurnComplete):
        for note in event.result.notes:  # e.g. the reasoning was never closed
            sys.stdout.write(f"\n{DIM}[{note}]{RESET}")
    elif isinstance(event, AgentFinished) and event.reason != "answer":
        sys.stdout.write(f"\n[{event.reason}] {event.message}")
    sys.stdout.flush()
