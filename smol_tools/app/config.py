"""The app's settings, read from environment variables (a Space sets them in its settings page;
locally they are ordinary shell variables). Nothing here imports Gradio or loads a model."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from ..backends.factory import BACKEND_KINDS
from ..model_source import DEFAULT, DEFAULT_QUANT, TINY

# The quants the packaging pipeline publishes (packaging/config.toml [build] quants).
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

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "AppConfig":
        env = os.environ if env is None else env
        backend = env.get("SMOL_TOOLS_BACKEND", "llama-cpp-python").strip() or "llama-cpp-python"
        if backend not in BACKEND_KINDS:
            raise ConfigError(f"SMOL_TOOLS_BACKEND={backend!r}: choose one of {', '.join(BACKEND_KINDS)}")
        quant = env.get("SMOL_TOOLS_QUANT", DEFAULT_QUANT).strip().upper() or DEFAULT_QUANT
        return cls(
            backend=backend,
            model=env.get("SMOL_TOOLS_MODEL", "").strip(),
            quant=quant,
            url=env.get("SMOL_TOOLS_URL", "").strip(),
            api_key=env.get("SMOL_TOOLS_API_KEY") or None,
            n_ctx=_int(env, "SMOL_TOOLS_N_CTX", None, minimum=512),
            allow_code=_flag(env, "SMOL_TOOLS_ALLOW_CODE", False),
            allow_network=_flag(env, "SMOL_TOOLS_ALLOW_NETWORK", True),
            fallback_to_tiny=_flag(env, "SMOL_TOOLS_FALLBACK_TINY", True),
            # On a public Space, letting visitors point the server at any URL or Hub repo is an
            # open proxy and a memory hazard: locked unless the owner says otherwise.
            lock_backend=_flag(env, "SMOL_TOOLS_LOCK_BACKEND", "SPACE_ID" in env),
            concurrency=_int(env, "SMOL_TOOLS_CONCURRENCY", 2) or 2,
            max_sessions=_int(env, "SMOL_TOOLS_MAX_SESSIONS", 64) or 64,
            # Gradio's own variables, so a Space (which sets GRADIO_SERVER_NAME=0.0.0.0) just works.
            host=env.get("GRADIO_SERVER_NAME", "").strip() or "127.0.0.1",
            port=_int(env, "GRADIO_SERVER_PORT", 7860) or 7860,
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
