"""Per-user state: each browser tab or API client (one Gradio session hash) gets its own chat
history, tool workspace, outbox and calendar, and its own backend choice. Backends are shared
(one loaded model for everyone); the in-process backend keeps each session's prompt state apart
by session id, so a shared model never shows one session's conversation to another."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from ..backends.base import SamplingParams
from ..chat_session import EXPORT_FORMAT, ChatSession, scripted_tool_overrides
from ..safe_text import clean_text, clean_value, invalid_text_in
from ..schema_regex import patterns_in, schema_shape_problems
from ..tiny.scripted import scripted_tools
from ..tool_choice import ToolChoice, tool_names
from ..tools import DANGEROUS_TOOLS, DEMO_WORKSPACE, ToolSession, ToolSettings, default_registry
from ..tools.files import workspace_totals
from ..tools.scripted import with_scripted_provider
from .backend_choice import OpenedBackend
from .config import AppConfig
from .custom_tools import MAX_CUSTOM_TOOLS_CHARS, parse_custom_tools
from .tools_panel import CODE_TOOLS
from .runner import TurnRunner
from .transcript import TurnRecord, turns_from_messages

TINY_MAX_TOKENS = 512  # the tiny model rambles on unscripted prompts; keep its turns short
WORKSPACE_PREVIEW_BYTES = 2000
MAX_ROUNDS_LIMIT = 50  # a runaway loop on a shared CPU hurts everyone


class SessionBusy(RuntimeError):
    """A turn is already running in this session."""


class SessionRefused(RuntimeError):
    """No new session for this caller now: too many created from its address, or the server is
    full of sessions in use. The message says which and what to do."""


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def tiny_tools() -> list[dict[str, Any]]:
    return scripted_tools()


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
    touched: bool = False  # the visitor changed something (a turn, a file, a setting, an import)
    export_dir: Path | None = None  # private folder of this session's export file (removed on close)
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
        # ...and continues its scripts only from the scripted tool results (tools/scripted.py).
        self.chat.registry = with_scripted_provider(self.chat.registry, self.opened.tiny)
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
                    max_rounds: int | None = None, tool_choice: Any = None,
                    parallel_tool_calls: bool | None = None, strict: bool | None = None) -> None:
        """Check every value, then apply them all: a bad value raises ValueError and changes nothing.
        Switches take real booleans only (the string "no" is not false, so it is refused).
        tool_choice: "auto", "none", "required", or a function as OpenAI's object (or its JSON text)."""
        choice = None
        if tool_choice is not None:  # parsed and checked against this session's tools before any change

            if isinstance(tool_choice, str) and tool_choice.lstrip().startswith("{"):
                try:
                    tool_choice = json.loads(tool_choice)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"tool_choice is not valid JSON: {exc}") from exc
            choice = ToolChoice.parse(tool_choice)
            if choice.mode == "function":
                choice.check(tool_names(self.chat.tool_schemas()))
        for name, value in (("thinking", thinking), ("greedy", greedy),
                            ("parallel_tool_calls", parallel_tool_calls), ("strict", strict)):
            if value is not None and not isinstance(value, bool):
                raise ValueError(f"{name} must be true or false, not {_shown(value)}")
        rounds = None
        if max_rounds is not None:
            integral = isinstance(max_rounds, (int, float)) and not isinstance(max_rounds, bool) \
                and float(max_rounds).is_integer()
            if not integral:
                raise ValueError(f"max_rounds must be a whole number, not {_shown(max_rounds)}")
            rounds = int(max_rounds)
            ceiling = min(MAX_ROUNDS_LIMIT, self.config.max_rounds)
            if not 1 <= rounds <= ceiling:
                raise ValueError(f"max_rounds must be between 1 and {ceiling} on this server, not {rounds}")
        if thinking is not None:
            self.chat.config.enable_thinking = thinking
        if choice is not None:
            self.chat.config.tool_choice = choice.wire()
        if parallel_tool_calls is not None:
            self.chat.config.parallel_tool_calls = parallel_tool_calls
        if strict is not None:
            self.chat.config.strict = strict
        if rounds is not None:
            self.chat.config.max_rounds = rounds
        if greedy is not None:
            self.greedy = greedy
            self._apply_sampling()
        self.touched = True

    def operator_off(self) -> dict[str, str]:
        """Tools the operator switched off on this server, and why (visitors cannot turn them on)."""
        off = {}
        for name in DANGEROUS_TOOLS:
            if name in CODE_TOOLS and not self.config.allow_code:
                off[name] = "code execution is off on this server (SMOL_TOOLS_ALLOW_CODE)"
            elif name not in CODE_TOOLS and not self.config.allow_network:
                off[name] = "network tools are off on this server (SMOL_TOOLS_ALLOW_NETWORK)"
        return off

    def set_tools(self, enabled: list[str], custom_json: str = "", manual: bool = False) -> list[str]:
        """Apply the tools panel; returns the problems (nothing applied) or [] (applied)."""
        if not isinstance(enabled, list) or not all(isinstance(n, str) for n in enabled):
            return ["enabled must be a list of tool names"]
        if not isinstance(custom_json, str) or not isinstance(manual, bool):
            return ["custom tools must be JSON text and manual must be true or false"]
        if len(custom_json) > MAX_CUSTOM_TOOLS_CHARS:
            return [f"the custom tools are {len(custom_json):,} characters; the limit is {MAX_CUSTOM_TOOLS_CHARS:,}"]
        known = self.chat.registry.names()
        unknown = [n for n in enabled if n not in known]
        if unknown:
            return [f"unknown tool(s): {', '.join(clean_text(n)[:64] for n in unknown[:10])}"]
        off = self.operator_off()
        refused = [f"{n}: {off[n]}" for n in enabled if n in off]
        if refused:
            return refused
        custom, problems = parse_custom_tools(custom_json, known)
        if problems:
            return problems
        custom = clean_value(custom)  # "\udc00" escapes decode to lone surrogates: never into a prompt
        self.chat.enabled_tools = [n for n in known if n in enabled]  # registry order: stable prompts
        self.chat.custom_tools = custom
        self.manual_mode = manual
        # Manual mode: the person answers every call; custom tools are always answered by hand.
        self.chat.config.manual_tools = frozenset(self.chat.enabled_tools) if manual else frozenset()
        self.touched = True
        return []

    # -- turns -------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.runner is not None and not self.runner.finished.is_set()

    def start_turn(self, text: str) -> TurnRunner:
        """Start a turn on `text`. A message over the server's limit is refused before it
        reaches the history (where it would overflow every later prompt)."""
        if not isinstance(text, str):
            raise ValueError("the message must be text")
        limit = self.config.max_message_chars
        if len(text) > limit:
            raise ValueError(f"the message is {len(text):,} characters; this server accepts up to {limit:,}")
        text = clean_text(text)  # a lone surrogate from a raw client would poison every later prompt
        with self.lock:
            if self.busy:
                raise SessionBusy("a reply is still being generated: wait for it or press Stop")
            if self.opened.backend is None:
                raise SessionBusy(f"no backend: {self.opened.notice or 'choose one in the Backend panel'}")
            self.last_used = time.monotonic()
            self.touched = True
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
        self._remove_exports()

    def _forget_prompt_state(self) -> None:
        forget = getattr(self.chat.backend, "forget_session", None)
        if callable(forget):
            forget(self.chat.session_id)

    def export_json(self) -> str:
        return self.chat.export_json()

    def export_file(self) -> tuple[str, Path]:
        """The export as text and as a file for the download button: in this session's own
        folder (0700, file 0600), one file at a time, removed with the session."""
        text = self.export_json()
        if self.export_dir is None or not self.export_dir.is_dir():
            self.export_dir = Path(tempfile.mkdtemp(prefix="smol-tools-export-"))  # mode 0700
        for old in self.export_dir.iterdir():
            old.unlink(missing_ok=True)
        path = self.export_dir / f"smol-tools-session-{time.strftime('%Y%m%d-%H%M%S')}.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        return text, path

    def _remove_exports(self) -> None:
        if self.export_dir is not None:
            shutil.rmtree(self.export_dir, ignore_errors=True)
            self.export_dir = None

    def import_json(self, text: str) -> None:
        """Load an export: history and tools; the workspace stays as it is. Everything is
        checked on a copy first: a refused import changes nothing (history and view alike)."""
        if not isinstance(text, str):
            raise ValueError("the import must be JSON text")
        if len(text.encode("utf-8", "surrogatepass")) > self.config.max_import_bytes:
            raise ValueError(f"the export is larger than this server accepts ({self.config.max_import_bytes:,} bytes)")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
        except RecursionError:
            raise ValueError("the JSON nests too deeply") from None
        if not isinstance(data, Mapping) or data.get("format") != EXPORT_FORMAT:
            raise ValueError(f"not a smol-tools session export (expected \"format\": \"{EXPORT_FORMAT}\")")
        if invalid_text_in(data) is not None:  # broken Unicode (lone surrogates) becomes U+FFFD
            data = clean_value(data)
        messages = data.get("messages")
        if not isinstance(messages, list) or not all(isinstance(m, Mapping) for m in messages):
            raise ValueError("\"messages\" must be a list of message objects")
        for i, message in enumerate(messages):
            if message.get("role") not in ("system", "user", "assistant", "tool"):
                raise ValueError(f"messages[{i}]: \"role\" must be system, user, assistant or tool")
            calls = message.get("tool_calls")
            if calls is not None and not (isinstance(calls, list) and all(
                    isinstance(c, Mapping) and isinstance(c.get("function", {}), Mapping) for c in calls)):
                raise ValueError(f"messages[{i}]: \"tool_calls\" must be a list of call objects")
        if "enable_thinking" in data and not isinstance(data["enable_thinking"], bool):
            raise ValueError("\"enable_thinking\" must be true or false")
        tools = data.get("tools", [])
        if not isinstance(tools, list) or not all(
                isinstance(t, Mapping) and isinstance(t.get("function"), Mapping)
                and isinstance(t["function"].get("name"), str) for t in tools):
            raise ValueError("\"tools\" must be a list of OpenAI tool objects")
        off = self.operator_off()
        refused = [f"{t['function']['name']}: {off[t['function']['name']]}" for t in tools if t["function"]["name"] in off]
        if refused:
            raise ValueError("the export turns on tools this server keeps off: " + "; ".join(refused))
        known = self.chat.registry.names()
        custom = [t for t in tools if t["function"]["name"] not in known]
        _, problems = parse_custom_tools(json.dumps(custom), known) if custom else ([], [])
        trusted = patterns_in(self.chat.registry.schemas())  # the built-ins' own patterns come back in exports
        for tool in tools:  # the schemas of built-ins too: the model sees them, the agent checks calls with them
            problems += schema_shape_problems(tool["function"].get("parameters", {}),
                                              f"{tool['function']['name']}/parameters", trusted)
        if problems:
            raise ValueError("the export's tools cannot be used here: " + "; ".join(problems[:5]))
        if self.busy:
            raise SessionBusy("a reply is still being generated: stop it before importing")
        trial = ChatSession(self.chat.backend, self.chat.registry, self.chat.tool_session)  # type: ignore[arg-type]
        trial.schema_overrides = dict(self.chat.schema_overrides)
        try:
            trial.load(data)
            turns = turns_from_messages(trial.messages, trial.tool_schemas())
            json.dumps(trial.export(), ensure_ascii=False).encode("utf-8")  # exports and renders after
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
            raise ValueError("the export's messages or tools do not have the shape of an OpenAI chat") from None
        self._forget_prompt_state()
        self.chat.load(data)
        self.turns = turns
        self.touched = True

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
        """Add a text file to the workspace (what the file tools then see). It goes through the
        write_file tool, so every quota a model's write meets applies here too: file size,
        workspace bytes and entries, no writes through symlinks or onto folders."""
        if not isinstance(name, str) or not isinstance(text, str):
            raise ValueError("the path and the text must be strings")
        result = self.chat.registry.execute("write_file", {"path": clean_text(name), "content": clean_text(text)},
                                            self.chat.tool_session)
        if result.is_error:
            message = json.loads(result.content).get("error", "refused")
            raise ValueError(f"not written: {message}")
        self.touched = True
        return json.loads(result.content)["path"]

    def cost(self) -> int:
        """What keeping this session holds, in bytes: its history and its workspace files."""
        history = sum(len(str(m.get("content") or "")) + len(str(m.get("reasoning_content") or ""))
                      for m in self.chat.messages)
        try:
            used, _ = workspace_totals(self.chat.tool_session.workspace)
        except Exception:  # noqa: BLE001 - a workspace too large to measure is expensive
            used = self.chat.tool_session.settings.max_workspace_bytes
        return history + used

    def info(self) -> dict[str, Any]:
        return {"session": self.key, "backend": self.opened.label, "backend_ok": self.opened.ok,
                "notice": self.opened.notice, "tiny_model": self.opened.tiny,
                "file_check": self.opened.details.get("file_check"),
                "context_limit": self.context_limit, "tools": [t["function"]["name"] for t in self.chat.tool_schemas()],
                "custom_tools": [t["function"]["name"] for t in self.chat.custom_tools],
                "manual_mode": self.manual_mode, "thinking": self.chat.config.enable_thinking,
                "greedy": self.greedy, "max_rounds": self.chat.config.max_rounds,
                "tool_choice": self.chat.config.tool_choice,
                "parallel_tool_calls": self.chat.config.parallel_tool_calls, "strict": self.chat.config.strict,
                "turns": len(self.turns), "busy": self.busy,
                "waiting_for": self.waiting_for()}

    def waiting_for(self) -> dict[str, Any] | None:
        """The call a manual result is expected for, if any."""
        request = self.runner.pending_manual if self.runner is not None else None
        return None if request is None else {"name": request.name, "arguments": request.arguments}

    def submit_manual(self, result: str) -> bool:
        if not isinstance(result, str):
            raise ValueError("the result must be text")
        if len(result) > self.config.max_message_chars:
            raise ValueError(f"the result is {len(result):,} characters; this server accepts up to "
                             f"{self.config.max_message_chars:,}")
        return self.runner is not None and self.runner.submit_manual(clean_text(result)) is not None

    def close(self) -> None:
        self.stop()
        self._forget_prompt_state()
        self.chat.tool_session.cleanup()
        self._remove_exports()


class SessionStore:
    """Sessions by Gradio session hash, with limits that keep one visitor from pushing others out.

    Beyond `max_sessions`, an idle session is evicted to make room: never one that is running a
    turn, never one used within `idle_protect_s` (a visitor who stepped away for a coffee keeps
    everything), and an untouched one (nothing to lose) before any other. Among the rest, the
    one idle longest relative to what it holds goes first (idle seconds x (1 + MiB held)). When
    nothing may be evicted, the new session is refused, not an old one dropped. `per_client_per_minute`
    caps how many sessions one client address may create per minute (None: no cap)."""

    UNTOUCHED_GRACE_S = 30.0  # a page that just loaded has not had time to do anything yet

    def __init__(self, factory: Callable[[str], AppSession], max_sessions: int = 64,
                 per_client_per_minute: int | None = None, idle_protect_s: float = 0.0) -> None:
        self._factory = factory
        self._max = max_sessions
        self._per_minute = per_client_per_minute
        self._protect_s = idle_protect_s
        self._sessions: OrderedDict[str, AppSession] = OrderedDict()
        self._created: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, client: str | None = None) -> AppSession:
        with self._lock:
            session = self._sessions.get(key)
            evicted: list[AppSession] = []
            if session is None:
                self._admit(client)
                evicted = self._make_room()
                session = self._sessions[key] = self._factory(key)
            self._sessions.move_to_end(key)
            session.last_used = time.monotonic()
        for old in evicted:
            old.close()
        return session

    def _admit(self, client: str | None) -> None:
        if self._per_minute is None or client is None:
            return
        now = time.monotonic()
        recent = self._created.setdefault(client, deque())
        while recent and now - recent[0] > 60:
            recent.popleft()
        if len(recent) >= self._per_minute:
            raise SessionRefused(f"too many new sessions from your address ({self._per_minute} a minute); "
                                 "wait a minute, or keep using the session you have")
        recent.append(now)
        if len(self._created) > 10_000:  # forget quiet clients so the table stays small
            for quiet in [c for c, times in self._created.items() if not times or now - times[-1] > 60]:
                del self._created[quiet]

    def _make_room(self) -> list[AppSession]:
        evicted = []
        now = time.monotonic()
        while len(self._sessions) >= self._max:
            candidates = []
            for key, session in self._sessions.items():
                idle = now - session.last_used
                if session.busy:
                    continue  # never pull a session out from under a running turn
                if session.touched and idle < self._protect_s:
                    continue
                if not session.touched and idle < min(self.UNTOUCHED_GRACE_S, self._protect_s):
                    continue
                score = float("inf") if not session.touched else idle * (1 + session.cost() / 2**20)
                candidates.append((score, key))
            if not candidates:
                raise SessionRefused("this server is full: every session is in use or was used in the last "
                                     f"{self._protect_s / 60:.0f} minutes; try again later")
            evicted.append(self._sessions.pop(max(candidates)[1]))
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
