"""Per-user state: each browser tab or API client (one Gradio session hash) gets its own chat
history, tool workspace, outbox and calendar, and its own backend choice. Backends are shared
(one loaded model for everyone); the in-process backend keeps each session's prompt state apart
by session id, so a shared model never shows one session's conversation to another."""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..backends.base import SamplingParams
from ..chat_session import EXPORT_FORMAT, ChatSession, scripted_tool_overrides
from ..tools import DANGEROUS_TOOLS, DEMO_WORKSPACE, ToolSession, ToolSettings, default_registry
from .backend_choice import OpenedBackend
from .config import AppConfig
from .custom_tools import parse_custom_tools
from .runner import TurnRunner
from .transcript import TurnRecord, turns_from_messages

TINY_MAX_TOKENS = 512  # the tiny model rambles on unscripted prompts; keep its turns short
WORKSPACE_PREVIEW_BYTES = 2000
MAX_ROUNDS_LIMIT = 50  # a runaway loop on a shared CPU hurts everyone


class SessionBusy(RuntimeError):
    """A turn is already running in this session."""


def tiny_tools() -> list[dict[str, Any]]:
    from tests.fixtures.scripted import load_scripted  # the schemas the tiny model was trained on

    return load_scripted()["tools"]


@dataclass
class AppSession:
    key: str
    chat: ChatSession
    opened: OpenedBackend
    config: AppConfig
    turns: list[TurnRecord] = field(default_factory=list)
    runner: TurnRunner | None = None
    manual_mode: bool = False
    greedy: bool = False
    last_used: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # -- creation / backend ------------------------------------------------------------------
    @classmethod
    def create(cls, key: str, opened: OpenedBackend, config: AppConfig) -> "AppSession":
        settings = ToolSettings(allow_code_execution=config.allow_code, allow_network=config.allow_network,
                                workspace_seed=DEMO_WORKSPACE)
        chat = ChatSession(opened.backend, default_registry(),  # type: ignore[arg-type]
                           ToolSession.create(settings=settings))
        session = cls(key, chat, opened, config)
        session._apply_backend_profile()
        return session

    def default_tools(self) -> list[str]:
        """What the tools panel starts with: the tiny model's five, or every tool that neither
        runs code nor reaches the network (a person turns those on knowingly)."""
        if self.opened.tiny:
            return [t["function"]["name"] for t in tiny_tools()]
        return [n for n in self.chat.registry.names() if n not in DANGEROUS_TOOLS]

    def _apply_backend_profile(self) -> None:
        # The tiny model knows only its scripted schemas and is reproducible only greedily.
        self.chat.backend = self.opened.backend  # type: ignore[assignment]
        self.chat.schema_overrides = scripted_tool_overrides(tiny_tools()) if self.opened.tiny else {}
        self.chat.enabled_tools = self.default_tools()
        self.greedy = self.opened.tiny
        self._apply_sampling()

    def _apply_sampling(self) -> None:
        if self.greedy:
            self.chat.config.sampling = SamplingParams.greedy(
                **({"max_tokens": TINY_MAX_TOKENS} if self.opened.tiny else {}))
        else:
            self.chat.config.sampling = None

    def switch_backend(self, opened: OpenedBackend) -> None:
        """Keep the conversation, change who continues it (e.g. after a server came back)."""
        self._forget_prompt_state()
        self.opened = opened
        self._apply_backend_profile()

    @property
    def context_limit(self) -> int:
        backend = self.opened.backend
        return backend.context_length if backend is not None else 0

    # -- settings ----------------------------------------------------------------------------
    def set_options(self, *, thinking: bool | None = None, greedy: bool | None = None,
                    max_rounds: int | None = None) -> None:
        if thinking is not None:
            self.chat.config.enable_thinking = thinking
        if max_rounds is not None:
            self.chat.config.max_rounds = max(1, min(MAX_ROUNDS_LIMIT, int(max_rounds)))
        if greedy is not None:
            self.greedy = greedy
            self._apply_sampling()

    def set_tools(self, enabled: list[str], custom_json: str = "", manual: bool = False) -> list[str]:
        """Apply the tools panel; returns the problems (nothing applied) or [] (applied)."""
        known = self.chat.registry.names()
        unknown = [n for n in enabled if n not in known]
        if unknown:
            return [f"unknown tool(s): {', '.join(unknown)}"]
        custom, problems = parse_custom_tools(custom_json, known)
        if problems:
            return problems
        self.chat.enabled_tools = [n for n in known if n in enabled]  # registry order: stable prompts
        self.chat.custom_tools = custom
        self.manual_mode = manual
        # Manual mode: the person answers every call; custom tools are always answered by hand.
        self.chat.config.manual_tools = frozenset(self.chat.enabled_tools) if manual else frozenset()
        return []

    # -- turns -------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.runner is not None and not self.runner.finished.is_set()

    def start_turn(self, text: str) -> TurnRunner:
        with self.lock:
            if self.busy:
                raise SessionBusy("a reply is still being generated: wait for it or press Stop")
            if self.opened.backend is None:
                raise SessionBusy(f"no backend: {self.opened.notice or 'choose one in the Backend panel'}")
            self.last_used = time.monotonic()
            self.runner = TurnRunner(self.chat, text, on_finish=self._record).start()
            return self.runner

    def _record(self, turn: TurnRecord) -> None:
        # Called by the worker, so the history is complete even if the browser left mid-turn.
        with self.lock:
            self.turns.append(turn)
            self.last_used = time.monotonic()

    def run_turn(self, text: str) -> TurnRecord:
        return self.start_turn(text).wait()

    def stop(self) -> bool:
        runner = self.runner
        if runner is None or runner.finished.is_set():
            return False
        runner.stop()
        return True

    # -- reset / export / import ---------------------------------------------------------------
    def new_session(self) -> None:
        """Clear the history and start a fresh workspace, outbox and calendar."""
        self.stop()
        if self.runner is not None:
            self.runner.wait()
        self._forget_prompt_state()
        self.chat.reset()
        old = self.chat.tool_session
        self.chat.tool_session = ToolSession.create(settings=old.settings)
        old.cleanup()
        self.turns = []

    def _forget_prompt_state(self) -> None:
        forget = getattr(self.chat.backend, "forget_session", None)
        if callable(forget):
            forget(self.chat.session_id)

    def export_json(self) -> str:
        return self.chat.export_json()

    def import_json(self, text: str) -> None:
        """Load an export: history and tools; the workspace stays as it is."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
        if not isinstance(data, Mapping) or data.get("format") != EXPORT_FORMAT:
            raise ValueError(f"not a smol-tools session export (expected \"format\": \"{EXPORT_FORMAT}\")")
        tools = data.get("tools", [])
        if not isinstance(tools, list) or not all(
                isinstance(t, Mapping) and isinstance(t.get("function"), Mapping) for t in tools):
            raise ValueError("\"tools\" must be a list of OpenAI tool objects")
        if self.busy:
            raise SessionBusy("a reply is still being generated: stop it before importing")
        self._forget_prompt_state()
        self.chat.load(data)
        self.turns = turns_from_messages(self.chat.messages, self.chat.tool_schemas())

    # -- workspace ---------------------------------------------------------------------------
    def workspace_view(self) -> dict[str, Any]:
        tools = self.chat.tool_session
        files: dict[str, Any] = {}
        root = tools.workspace
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()[:WORKSPACE_PREVIEW_BYTES]
                files[str(path.relative_to(root))] = data.decode("utf-8", errors="replace")
        with tools.lock:
            outbox, calendar = list(tools.outbox), list(tools.calendar)
        return {"files": files, "outbox": outbox, "calendar": calendar}

    def put_file(self, name: str, text: str) -> str:
        """Add a text file to the workspace (what the file tools then see)."""
        root = self.chat.tool_session.workspace
        target = (root / name).resolve()
        if not name or target == root or root not in target.parents:
            raise ValueError(f"{name!r} is not a path inside the workspace")
        data = text.encode("utf-8")
        if len(data) > self.chat.tool_session.settings.max_file_bytes:
            raise ValueError(f"{name} is larger than the workspace's file limit")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return str(target.relative_to(root))

    def info(self) -> dict[str, Any]:
        return {"session": self.key, "backend": self.opened.label, "backend_ok": self.opened.ok,
                "notice": self.opened.notice, "tiny_model": self.opened.tiny,
                "file_check": self.opened.details.get("file_check"),
                "context_limit": self.context_limit, "tools": [t["function"]["name"] for t in self.chat.tool_schemas()],
                "custom_tools": [t["function"]["name"] for t in self.chat.custom_tools],
                "manual_mode": self.manual_mode, "thinking": self.chat.config.enable_thinking,
                "greedy": self.greedy, "max_rounds": self.chat.config.max_rounds,
                "turns": len(self.turns), "busy": self.busy,
                "waiting_for": self.waiting_for()}

    def waiting_for(self) -> dict[str, Any] | None:
        """The call a manual result is expected for, if any."""
        request = self.runner.pending_manual if self.runner is not None else None
        return None if request is None else {"name": request.name, "arguments": request.arguments}

    def submit_manual(self, result: str) -> bool:
        return self.runner is not None and self.runner.submit_manual(result) is not None

    def close(self) -> None:
        self.stop()
        self._forget_prompt_state()
        self.chat.tool_session.cleanup()


class SessionStore:
    """Sessions by Gradio session hash, least recently used dropped beyond `max_sessions`."""

    def __init__(self, factory: Callable[[str], AppSession], max_sessions: int = 64) -> None:
        self._factory = factory
        self._max = max_sessions
        self._sessions: OrderedDict[str, AppSession] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> AppSession:
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                session = self._sessions[key] = self._factory(key)
            self._sessions.move_to_end(key)
            session.last_used = time.monotonic()
            evicted = self._evict()
        for old in evicted:
            old.close()
        return session

    def _evict(self) -> list[AppSession]:
        evicted = []
        for key in list(self._sessions):
            if len(self._sessions) <= self._max:
                break
            if not self._sessions[key].busy:  # never pull a session out from under a running turn
                evicted.append(self._sessions.pop(key))
        return evicted

    def drop(self, key: str) -> None:
        with self._lock:
            session = self._sessions.pop(key, None)
        if session is not None:
            session.close()

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, key: str) -> bool:
        return key in self._sessions
