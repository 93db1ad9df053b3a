"""The app's settings, read from environment variables (a Space sets them in its settings page;
locally they are ordinary shell variables). Nothing here imports Gradio or loads a model."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from ..backends.factory import BACKEND_KINDS
from ..model_source import DEFAULT, DEFAULT_QUANT, TINY

# The quants the packaging pipeline publishes (smol_tools/pipeline/data/config.toml [build] quants).
QUANTS = ("Q4_K_M", "IQ4_XS", "Q5_K_M", "Q6_K", "Q8_0")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(ValueError):
    """An environment variable has a value the app cannot use; the message names it."""


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{name}={value!r}: use 1/0, true/false, yes/no or on/off")


def _int(env: Mapping[str, str], name: str, default: int | None, minimum: int = 1) -> int | None:
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not an integer") from None
    if number < minimum:
        raise ConfigError(f"{name}={number} must be at least {minimum}")
    return number


def _loopback(host: str) -> bool:
    """A bind address only this machine can reach (a host name merely starting with "localhost" is not)."""
    return host.strip("[]").lower() in {"127.0.0.1", "localhost", "::1"} or host.startswith("127.")


@dataclass(frozen=True)
class AppConfig:
    backend: str = "llama-cpp-python"
    model: str = ""  # GGUF path, owner/repo[:QUANT], "tiny", or a server's model name
    quant: str = DEFAULT_QUANT
    url: str = ""
    api_key: str | None = None
    n_ctx: int | None = None  # None: the format's 32768 (the tiny model uses 4096)
    allow_code: bool = False
    allow_network: bool = True
    fallback_to_tiny: bool = True
    lock_backend: bool = False
    concurrency: int = 2
    max_sessions: int = 64
    host: str = "127.0.0.1"
    port: int = 7860
    on_space: bool = False  # SPACE_ID is set: Hugging Face runs this for anonymous visitors
    max_rounds: int = 50  # the ceiling of the per-session "max tool rounds" switch
    max_message_chars: int = 16_000  # one user message (or manual result); refused above, never stored
    max_import_bytes: int = 2_000_000  # one session export brought in by /import_session
    new_sessions_per_minute: int = 20  # per client address: a flood of fresh session ids is refused
    idle_protect_s: int = 600  # a session used this recently is never evicted for another one
    mcp_server: bool = True  # serve the app's MCP tools at /gradio_api/mcp/ (smol_tools/app/mcp_api.py)
    # Visitors may add MCP servers in the Tools panel (a URL is network reach, a command runs
    # code on this server): on by default only where the visitor is the operator.
    allow_mcp_servers: bool = False

    @property
    def loopback_only(self) -> bool:
        """Only this machine can reach the app, so its visitor is the operator."""
        return _loopback(self.host)

    @property
    def public(self) -> bool:
        """Visitors are not the operator: a Space, or a server reachable from other machines."""
        return self.on_space or not self.loopback_only

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "AppConfig":
        env = os.environ if env is None else env
        backend = env.get("SMOL_TOOLS_BACKEND", "llama-cpp-python").strip() or "llama-cpp-python"
        if backend not in BACKEND_KINDS:
            raise ConfigError(f"SMOL_TOOLS_BACKEND={backend!r}: choose one of {', '.join(BACKEND_KINDS)}")
        quant = env.get("SMOL_TOOLS_QUANT", DEFAULT_QUANT).strip().upper() or DEFAULT_QUANT
        host = env.get("GRADIO_SERVER_NAME", "").strip() or "127.0.0.1"
        return cls(
            backend=backend,
            model=env.get("SMOL_TOOLS_MODEL", "").strip(),
            quant=quant,
            url=env.get("SMOL_TOOLS_URL", "").strip(),
            api_key=env.get("SMOL_TOOLS_API_KEY") or None,
            n_ctx=_int(env, "SMOL_TOOLS_N_CTX", None, minimum=512),
            allow_code=_flag(env, "SMOL_TOOLS_ALLOW_CODE", False),
            # A Space serves strangers: tools that reach the network are off until the owner turns
            # them on (and then they still refuse private addresses).
            allow_network=_flag(env, "SMOL_TOOLS_ALLOW_NETWORK", "SPACE_ID" not in env),
            fallback_to_tiny=_flag(env, "SMOL_TOOLS_FALLBACK_TINY", True),
            # On a public Space, letting visitors point the server at any URL or Hub repo is an
            # open proxy and a memory hazard: locked unless the owner says otherwise.
            lock_backend=_flag(env, "SMOL_TOOLS_LOCK_BACKEND", "SPACE_ID" in env),
            concurrency=_int(env, "SMOL_TOOLS_CONCURRENCY", 2) or 2,
            max_sessions=_int(env, "SMOL_TOOLS_MAX_SESSIONS", 64) or 64,
            # Gradio's own variables, so a Space (which sets GRADIO_SERVER_NAME=0.0.0.0) just works.
            host=host,
            port=_int(env, "GRADIO_SERVER_PORT", 7860) or 7860,
            on_space="SPACE_ID" in env,
            max_rounds=min(50, _int(env, "SMOL_TOOLS_MAX_ROUNDS", 50) or 50),
            max_message_chars=_int(env, "SMOL_TOOLS_MAX_MESSAGE_CHARS", 16_000, minimum=100) or 16_000,
            max_import_bytes=_int(env, "SMOL_TOOLS_MAX_IMPORT_BYTES", 2_000_000, minimum=1000) or 2_000_000,
            new_sessions_per_minute=_int(env, "SMOL_TOOLS_NEW_SESSIONS_PER_MINUTE", 20) or 20,
            idle_protect_s=_int(env, "SMOL_TOOLS_IDLE_PROTECT_S", 600, minimum=0) or 0,
            mcp_server=_flag(env, "SMOL_TOOLS_MCP_SERVER", True),
            allow_mcp_servers=_flag(env, "SMOL_TOOLS_ALLOW_MCP_SERVERS", "SPACE_ID" not in env and _loopback(host)),
        )

    def model_spec(self) -> str:
        """What to load in process: the model's known homes (model_source.DEFAULT_HOMES) with the
        chosen quant unless told otherwise."""
        if self.backend != "llama-cpp-python":
            return self.model
        return hub_spec(self.model or DEFAULT, self.quant)


def hub_spec(model: str, quant: str) -> str:
    """`owner/repo` or `default` + quant -> `...:QUANT`; paths, "tiny" and explicit quants unchanged."""
    if model.lower() == DEFAULT:
        return f"{DEFAULT}:{quant}"
    if model == TINY or model.endswith(".gguf") or ":" in model or model.count("/") != 1:
        return model
    if os.path.exists(os.path.expanduser(model)):
        return model
    return f"{model}:{quant}"
