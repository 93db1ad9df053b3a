"""Which backend a session talks to: open it, test it, and fall back to the tiny test model
when the Hub cannot be reached, so the demo always answers (and says why)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..backends.base import Backend, BackendError
from ..model_source import DEFAULT_REPO
from .config import TINY, AppConfig, hub_spec

log = logging.getLogger(__name__)

TINY_N_CTX = 4096  # the tiny model was trained on short conversations
KIND_LABELS = {"llama-cpp-python": "in-process llama-cpp-python", "openai": "OpenAI-compatible server",
               "llama-server": "llama-server (token prompts)", "ollama": "Ollama"}


@dataclass(frozen=True)
class BackendChoice:
    kind: str = "llama-cpp-python"
    model: str = ""  # GGUF path, owner/repo[:QUANT], "tiny", or a server's model name
    url: str = ""
    api_key: str | None = None
    n_ctx: int | None = None

    @classmethod
    def from_config(cls, config: AppConfig) -> "BackendChoice":
        return cls(config.backend, config.model_spec(), config.url, config.api_key, config.n_ctx)

    def describe(self) -> str:
        where = self.model if self.kind == "llama-cpp-python" else f"{self.url or 'default URL'} · {self.model or 'default model'}"
        return f"{KIND_LABELS.get(self.kind, self.kind)} · {where}"


@dataclass
class OpenedBackend:
    """A backend ready for sessions, or the reason there is none."""

    choice: BackendChoice
    backend: Backend | None
    label: str
    notice: str = ""  # shown in the UI: a fallback, a problem
    tiny: bool = False  # the tiny test model: scripted tool schemas, greedy decoding
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.backend is not None


_LOCKS_LOCK = threading.Lock()
_LOCKS: dict[BackendChoice, threading.Lock] = {}  # one per choice: a download blocks only its own
_OPENED: dict[BackendChoice, OpenedBackend] = {}


def _lock_for(choice: BackendChoice) -> threading.Lock:
    with _LOCKS_LOCK:
        return _LOCKS.setdefault(choice, threading.Lock())


def open_tiny() -> OpenedBackend:
    """The test suite's tiny model (built and cached once per machine)."""
    from ..backends.llama_cpp import LlamaCppBackend
    from tests.fixtures.tiny_gguf import ensure_tiny_gguf  # repo checkout only: the demo's offline model

    path = ensure_tiny_gguf("Q8_0")
    # One thread: for a model this small thread synchronisation is the cost, and on a busy
    # 2-core machine two spinning threads turn a 50 ms turn into 10 s (measured).
    backend = LlamaCppBackend(path, n_ctx=TINY_N_CTX, n_threads=1)
    return OpenedBackend(BackendChoice("llama-cpp-python", TINY), backend,
                         f"in-process llama-cpp-python · tiny test model ({Path(path).name})", tiny=True)


def _open(choice: BackendChoice) -> OpenedBackend:
    from ..backends.factory import make_backend

    if choice.kind == "llama-cpp-python" and choice.model == TINY:
        return open_tiny()
    model = choice.model or (hub_spec(DEFAULT_REPO, "Q4_K_M") if choice.kind == "llama-cpp-python" else "")
    backend = make_backend(choice.kind, model=model, url=choice.url, n_ctx=choice.n_ctx,  # type: ignore[arg-type]
                           api_key=choice.api_key)
    label = choice.describe()
    if choice.kind == "llama-cpp-python":
        label = f"in-process llama-cpp-python · {Path(backend.model.path).name}"  # type: ignore[attr-defined]
    return OpenedBackend(choice, backend, label)


def open_backend(choice: BackendChoice, *, fallback_to_tiny: bool = False) -> OpenedBackend:
    """Open (once per choice per process) the backend a session asked for.

    In-process GGUFs are loaded here (downloading from the Hub when needed: huggingface_hub
    shows its progress bar, which the UI mirrors). Servers are only constructed: whether they
    answer is `check_connection`'s job, and a down server must not block the app's start."""
    with _lock_for(choice):
        if choice in _OPENED:
            return _OPENED[choice]
        try:
            opened = _open(choice)
        except Exception as exc:  # ModelSourceError, BackendError, the Hub client's httpx errors…
            log.warning("could not open %s: %s", choice.describe(), exc)
            reason = _why(choice, exc)
            if not fallback_to_tiny:
                return OpenedBackend(choice, None, choice.describe(), reason)
            return _fallback(choice, reason)
        # Only successes are kept: a later Connect retries a Hub that was unreachable.
        _OPENED[choice] = opened
        return opened


def _why(choice: BackendChoice, exc: Exception) -> str:
    model = choice.model
    from_hub = choice.kind == "llama-cpp-python" and not Path(model).expanduser().exists() \
        and not model.endswith(".gguf")
    if from_hub and not isinstance(exc, BackendError):
        return f"The Hugging Face Hub could not give {model} ({_short(exc, 160)})."
    return f"Could not open {choice.describe()}: {_short(exc)}."


def _fallback(choice: BackendChoice, reason: str) -> OpenedBackend:
    tiny_choice = BackendChoice("llama-cpp-python", TINY)
    try:
        with _lock_for(tiny_choice):
            tiny = _OPENED.get(tiny_choice) or open_tiny()
            _OPENED[tiny_choice] = tiny
    except Exception as exc:  # torch/transformers missing, no repo checkout: say so, keep serving
        log.exception("the tiny fallback model could not be built")
        return OpenedBackend(choice, None, choice.describe(),
                             f"{reason} The tiny offline model could not be built either "
                             f"({type(exc).__name__}: {exc}). Pick a server backend below.")
    notice = (f"{reason} Running the tiny offline test model instead: it only knows the scripted "
              "examples (weather, calculator, time, files), so other questions get odd answers.")
    return replace(tiny, choice=choice, details={"fallback_from": choice.model}, notice=notice)


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_connection(choice: BackendChoice) -> tuple[bool, str]:
    """Say clearly whether `choice` can work, without loading a model for a server check."""
    if choice.kind == "llama-cpp-python":
        return _check_in_process(choice.model)
    from ..backends.factory import make_backend

    try:
        backend = make_backend(choice.kind, model=choice.model, url=choice.url,  # type: ignore[arg-type]
                               n_ctx=choice.n_ctx, api_key=choice.api_key)
        status = backend.check()
    except (BackendError, ValueError, OSError) as exc:
        return False, str(exc)
    return status.ok, status.message


def _check_in_process(spec: str) -> tuple[bool, str]:
    if spec == TINY:
        return True, "the tiny offline test model (built once per machine)"
    path = Path(spec).expanduser()
    if path.is_file():
        with path.open("rb") as handle:
            magic = handle.read(4)
        if magic != b"GGUF":
            return False, f"{path} is not a GGUF file (it does not start with 'GGUF')"
        return True, f"local GGUF {path.name} ({path.stat().st_size / 2**30:.2f} GiB)"
    if spec.endswith(".gguf"):
        return False, f"no GGUF file at {path}"
    from ..model_source import DEFAULT_QUANT, ModelSourceError, pick_quant_file

    repo, _, quant = spec.partition(":")
    if repo.count("/") != 1:
        return False, f"{spec!r} is neither a GGUF path nor a Hub repo like owner/name:Q4_K_M"
    quant = quant or DEFAULT_QUANT
    try:
        from huggingface_hub import list_repo_files

        filename = pick_quant_file(list_repo_files(repo), quant)
    except ModelSourceError as exc:
        return False, str(exc)
    except Exception as exc:  # offline, 404, auth: huggingface_hub's own errors
        return False, f"cannot reach {repo} on the Hugging Face Hub: {_short(exc)}"
    return True, f"{repo} has {filename}; connecting downloads it once (then it is cached)"
