"""The demo as a service: settings, the default backend, and every session. app.py's widgets
and the named API endpoints both call these methods, so the browser and gradio_client drive
the exact same logic."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from ..model_source import DEFAULT
from .backend_choice import BackendChoice, OpenedBackend, check_connection, open_backend
from .config import TINY, AppConfig, hub_spec
from .session import AppSession, SessionStore

log = logging.getLogger(__name__)
LOCKED = "this demo's operator fixed the backend (SMOL_TOOLS_LOCK_BACKEND); run the app yourself to pick another"


@dataclass(frozen=True)
class ConnectResult:
    ok: bool
    message: str


class DemoService:
    def __init__(self, config: AppConfig, default: OpenedBackend) -> None:
        self.config = config
        self.default = default
        self.sessions = SessionStore(lambda key: AppSession.create(key, self.default, self.config),
                                     max_sessions=config.max_sessions)

    @classmethod
    def from_config(cls, config: AppConfig) -> "DemoService":
        """Open the configured backend now (downloading the GGUF once, with huggingface_hub's
        progress bar in the terminal), falling back to the tiny model when allowed."""
        choice = BackendChoice.from_config(config)
        log.info("opening %s", choice.describe())
        default = open_backend(choice, fallback_to_tiny=config.fallback_to_tiny)
        if default.notice:
            log.warning("%s", default.notice)
        return cls(config, default)

    def session(self, key: str | None) -> AppSession:
        return self.sessions.get(key or "default")

    def choice(self, kind: str, model: str, quant: str, url: str) -> BackendChoice:
        model = model.strip()
        if kind == "llama-cpp-python":
            model = hub_spec(model, quant) if model else hub_spec(self.config.model_spec().partition(":")[0], quant)
        return BackendChoice(kind, model, url.strip(), self.config.api_key,
                             None if model == TINY else self.config.n_ctx)

    def test_connection(self, kind: str, model: str, quant: str, url: str) -> ConnectResult:
        if self.config.lock_backend:
            return ConnectResult(False, LOCKED)
        ok, message = check_connection(self.choice(kind, model, quant, url))
        return ConnectResult(ok, message)

    def connect(self, key: str | None, kind: str, model: str, quant: str, url: str) -> ConnectResult:
        """Switch one session to another backend (the conversation is kept)."""
        if self.config.lock_backend:
            return ConnectResult(False, LOCKED)
        session = self.session(key)
        if session.busy:
            return ConnectResult(False, "a reply is being generated: stop it first")
        choice = self._pinned(session, self.choice(kind, model, quant, url))
        opened = open_backend(choice)
        if not opened.ok:
            return ConnectResult(False, opened.notice)
        if kind != "llama-cpp-python":  # a server: say now whether it answers
            ok, message = check_connection(choice)
            if not ok:
                return ConnectResult(False, message)
        session.switch_backend(opened)
        return ConnectResult(True, f"connected: {opened.label}")

    @staticmethod
    def _pinned(session: AppSession, choice: BackendChoice) -> BackendChoice:
        """Another quant of the repo this session already loaded comes from the same commit,
        so a session never mixes files of two revisions (a push between loads)."""
        details = session.opened.details if session.opened else {}
        repo, revision = details.get("repo"), details.get("revision")
        if choice.kind != "llama-cpp-python" or not (repo and revision):
            return choice
        asked, _, quant = choice.model.partition(":")
        same = asked.lower() == repo.lower() or (asked.lower() == DEFAULT and session.opened.choice.model.lower()
                                                 .startswith(DEFAULT))
        if not same or "@" in quant:
            return choice
        return replace(choice, model=f"{repo}:{quant or 'Q4_K_M'}@{revision}")

    def status(self, key: str | None) -> dict[str, Any]:
        return self.session(key).info()
