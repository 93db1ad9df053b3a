"""The demo as a service: settings, the default backend, and every session. app.py's widgets
and the named API endpoints both call these methods, so the browser and gradio_client drive
the exact same logic."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from ..model_source import DEFAULT
from ..tools import ToolSettings
from ..tools.base import ToolError
from ..tools.netguard import vet_url
from .backend_choice import BackendChoice, OpenedBackend, check_connection, open_backend
from .config import TINY, AppConfig, hub_spec
from .session import AppSession, SessionStore

log = logging.getLogger(__name__)
LOCKED = "this demo's operator fixed the backend (SMOL_TOOLS_LOCK_BACKEND); run the app yourself to pick another"
# What a visitor of a public instance may name as an in-process model: the tiny model, the
# model's known homes, or a Hub repo id (with quant and revision). Never a path on this server.
_HUB_SPEC = re.compile(r"(?:tiny|default(?::[A-Za-z0-9_]+)?|[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}"
                       r"(?::[A-Za-z0-9_]{1,32})?(?:@[A-Za-z0-9_.-]{1,64})?)\Z")


@dataclass(frozen=True)
class ConnectResult:
    ok: bool
    message: str


def same_url(a: str, b: str) -> bool:
    """Equal as endpoints: case of scheme and host, a trailing slash and default ports aside."""
    def norm(url: str) -> tuple[str, str, int | None, str]:
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError:
            return ("", url, None, "")
        scheme = parts.scheme.lower()
        port = port or {"http": 80, "https": 443}.get(scheme)
        return (scheme, (parts.hostname or "").lower(), port, parts.path.rstrip("/"))
    return norm(a) == norm(b)


def startup_warnings(config: AppConfig) -> list[str]:
    """What the operator must hear at start: settings that let strangers steer the server."""
    warnings = []
    if not config.lock_backend and not config.loopback_only:
        warnings.append(
            f"the backend picker is UNLOCKED and the app listens on {config.host}: anyone who can reach "
            "it may point this server at public URLs and Hub repos (downloads, memory). Set "
            "SMOL_TOOLS_LOCK_BACKEND=1 unless you trust every visitor (SECURITY.md, 'Running the app for others').")
    if config.public and config.allow_code:
        warnings.append("SMOL_TOOLS_ALLOW_CODE is on for a public app: visitors' prompts can run sandboxed code here.")
    return warnings


class DemoService:
    def __init__(self, config: AppConfig, default: OpenedBackend) -> None:
        self.config = config
        self.default = default
        self.sessions = SessionStore(lambda key: AppSession.create(key, self.default, self.config),
                                     max_sessions=config.max_sessions,
                                     per_client_per_minute=config.new_sessions_per_minute,
                                     idle_protect_s=config.idle_protect_s)

    @classmethod
    def from_config(cls, config: AppConfig) -> "DemoService":
        """Open the configured backend now (downloading the GGUF once, with huggingface_hub's
        progress bar in the terminal), falling back to the tiny model when allowed."""
        choice = BackendChoice.from_config(config)
        log.info("opening %s", choice.describe())
        default = open_backend(choice, fallback_to_tiny=config.fallback_to_tiny)
        if default.notice:
            log.warning("%s", default.notice)
        for warning in startup_warnings(config):
            log.warning("\n%s\n!! WARNING: %s\n%s", "!" * 100, warning, "!" * 100)
        return cls(config, default)

    def session(self, key: str | None, client: str | None = None) -> AppSession:
        """The caller's session. On a public instance `client` (the caller's address) counts
        against the per-minute creation cap; locally every caller is the operator."""
        return self.sessions.get(key or "default", client=client if self.config.public else None)

    def client_of(self, request: Any) -> str | None:
        """The caller's address from a Gradio request (duck-typed: no Gradio import here). On a
        Space the proxy's X-Forwarded-For names the visitor; elsewhere that header is whatever
        the caller wrote, so the socket's peer address counts."""
        if self.config.on_space:
            headers = getattr(request, "headers", None) or {}
            forwarded = headers.get("x-forwarded-for", "") if hasattr(headers, "get") else ""
            if forwarded:
                return forwarded.split(",")[0].strip()
        client = getattr(request, "client", None)
        return getattr(client, "host", None)

    def session_for(self, request: Any) -> AppSession:
        """The session of a Gradio request (its session hash), counted against its address."""
        return self.session(getattr(request, "session_hash", None), self.client_of(request))

    def choice(self, kind: str, model: str, quant: str, url: str) -> BackendChoice:
        model = model.strip()
        url = url.strip()
        if kind == "llama-cpp-python":
            model = hub_spec(model, quant) if model else hub_spec(self.config.model_spec().partition(":")[0], quant)
        # The operator's key belongs to the operator's server: it goes to the configured URL
        # and nowhere else, whatever a visitor types.
        key = self.config.api_key if same_url(url, self.config.url) else None
        return BackendChoice(kind, model, url, key, None if model == TINY else self.config.n_ctx)

    def visitor_problem(self, kind: str, model: str, quant: str, url: str) -> str | None:
        """Why a visitor may not make this server contact `url` or open `model`, or None.

        Everywhere: http(s) only, no credentials in the URL. On a public instance (a Space or a
        non-loopback address), a visitor is a stranger: server URLs other than the configured
        one must resolve to public addresses (never this machine or its network), and an
        in-process model is `tiny`, `default` or a Hub repo id, never a path on this server."""
        url, model = url.strip(), model.strip()
        if kind != "llama-cpp-python":
            try:
                parts = urlsplit(url)
                parts.port  # noqa: B018 - raises on a bad port
            except ValueError:
                return "the server URL is not a valid URL"
            if url and parts.scheme.lower() not in ("http", "https"):
                return "the server URL must start with http:// or https://"
            if "@" in parts.netloc:
                return "server URLs with credentials (user:password@) are not accepted; the operator sets the API key"
            operators = kind == self.config.backend and same_url(url, self.config.url)
            if self.config.public and not operators:
                if not url:
                    return "give the server's public URL (this server's own ports are not offered to visitors)"
                try:
                    vet_url(url, ToolSettings(http_timeout_s=5))
                except ToolError as exc:
                    return f"this public demo contacts public servers only: {exc.message}"
        if kind == "llama-cpp-python" and self.config.public:
            configured = self.config.model_spec()
            spec = hub_spec(model, quant or self.config.quant) if model else configured
            looks_local = os.path.lexists(os.path.expanduser(spec.partition(":")[0]))
            if spec != configured and (looks_local or not _HUB_SPEC.match(spec)):
                return ("on this public demo the model is 'tiny', 'default' or a Hub repo id (owner/name); "
                        "paths are not accepted")
        return None

    def test_connection(self, kind: str, model: str, quant: str, url: str) -> ConnectResult:
        if self.config.lock_backend:
            return ConnectResult(False, LOCKED)
        problem = self.visitor_problem(kind, model, quant, url)
        if problem:
            return ConnectResult(False, problem)
        ok, message = check_connection(self.choice(kind, model, quant, url))
        return ConnectResult(ok, message)

    def connect(self, key: str | None, kind: str, model: str, quant: str, url: str,
                client: str | None = None) -> ConnectResult:
        """Switch one session to another backend (the conversation is kept)."""
        if self.config.lock_backend:
            return ConnectResult(False, LOCKED)
        problem = self.visitor_problem(kind, model, quant, url)
        if problem:
            return ConnectResult(False, problem)
        session = self.session(key, client)
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

    def status(self, key: str | None, client: str | None = None) -> dict[str, Any]:
        return self.session(key, client).info()
