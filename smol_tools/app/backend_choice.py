"""Which backend a session talks to: open it, test it, and fall back to the tiny test model
when the Hub cannot be reached, so the demo always answers (and says why)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..backends.base import Backend, BackendError
from ..backends.factory import make_backend
from ..gguf_doctor import diagnose, panel_markdown
from ..model_source import DEFAULT, ModelSourceError, ResolvedModel, resolve_gguf, resolve_model
from ..tiny import TINY_N_CTX
from .config import TINY, AppConfig, hub_spec

log = logging.getLogger(__name__)

KIND_LABELS = {"llama-cpp-python": "in-process llama-cpp-python", "openai": "OpenAI-compatible server",
               "llama-server": "llama-server (token prompts)", "ollama": "Ollama",
               "llama-server-managed": "llama-server, managed (parallel slots)"}


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
    """The tiny offline model shipped inside the package."""
    from ..backends.llama_cpp import LlamaCppBackend  # start-up time: backends.llama_cpp pulls in numpy

    path = resolve_gguf(TINY)
    # One thread: for a model this small thread synchronisation is the cost, and on a busy
    # 2-core machine two spinning threads turn a 50 ms turn into 10 s (measured).
    backend = LlamaCppBackend(path, n_ctx=TINY_N_CTX, n_threads=1)
    return OpenedBackend(BackendChoice("llama-cpp-python", TINY), backend,
                         f"in-process llama-cpp-python · tiny test model ({Path(path).name})", tiny=True)


def _open(choice: BackendChoice) -> OpenedBackend:
    if choice.kind == "llama-cpp-python" and choice.model == TINY:
        return open_tiny()
    if choice.kind == "llama-cpp-python":
        from ..backends.llama_cpp import LlamaCppBackend  # start-up time: backends.llama_cpp pulls in numpy

        resolved = resolve_model(choice.model or hub_spec(DEFAULT, "Q4_K_M"))
        backend = LlamaCppBackend(resolved.path, n_ctx=choice.n_ctx)
        return OpenedBackend(choice, backend, f"in-process llama-cpp-python · {resolved.describe()}",
                             details=_provenance(resolved) | {"file_check": _file_check(resolved.path, choice.model)})
    backend = make_backend(choice.kind, model=choice.model, url=choice.url, n_ctx=choice.n_ctx,  # type: ignore[arg-type]
                           api_key=choice.api_key)
    # A managed server of the tiny model is the tiny model: scripted schemas, greedy decoding.
    return OpenedBackend(choice, backend, choice.describe(),
                         tiny=choice.kind == "llama-server-managed" and choice.model == TINY)


def _file_check(path: Path, spec: str) -> str:
    """`smol-tools doctor` on the loaded file (header only), for the Backend panel."""
    try:
        target = spec if spec and not Path(spec).expanduser().is_file() else None  # a Hub spec: name it
        return panel_markdown(diagnose(path, fix_target=target))
    except Exception as exc:  # noqa: BLE001 - a report we cannot make must not stop the model loading
        return f"**Loaded file:** `{Path(path).name}` (could not check its metadata: {_short(exc)})"


def _provenance(resolved: ResolvedModel) -> dict[str, Any]:
    """Where the loaded file came from; the revision pins every later load of this session."""
    return {"model_file": str(resolved.path), "repo": resolved.repo, "revision": resolved.revision,
            "repo_files": list(resolved.files), "from_cache": resolved.from_cache,
            "skipped_homes": list(resolved.notes)}


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
            # Only an unreachable Hub (offline, down, nothing cached) is answered with the tiny
            # model: a wrong name, a missing quant or a login needed are the user's to fix.
            unreachable = isinstance(exc, ModelSourceError) and exc.kind == "unreachable"
            if not (fallback_to_tiny and unreachable):
                return OpenedBackend(choice, None, choice.describe(), reason)
            return _fallback(choice, reason)
        # Only successes are kept: a later Connect retries a Hub that was unreachable.
        _OPENED[choice] = opened
        return opened


_KIND_HEADLINES = {"unreachable": "Offline: the Hugging Face Hub cannot be reached",
                   "not_found": "Model not found", "no_quant": "Quant not found",
                   "auth": "Login needed", "missing_file": "No such file", "bad_spec": "Not a model reference"}


def _why(choice: BackendChoice, exc: Exception) -> str:
    if isinstance(exc, ModelSourceError):
        return f"{_KIND_HEADLINES.get(exc.kind, 'Model unavailable')}. {_short(exc, 600)}"
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

    try:
        backend = make_backend(choice.kind, model=choice.model, url=choice.url,  # type: ignore[arg-type]
                               n_ctx=choice.n_ctx, api_key=choice.api_key)
        status = backend.check()
    except (BackendError, ValueError, OSError) as exc:
        return False, str(exc)
    return status.ok, status.message


def _check_in_process(spec: str) -> tuple[bool, str]:
    if spec == TINY:
        return True, "the tiny offline test model (shipped with smol-tools)"
    path = Path(spec).expanduser()
    if path.is_file():
        with path.open("rb") as handle:
            magic = handle.read(4)
        if magic != b"GGUF":
            return False, f"{path} is not a GGUF file (it does not start with 'GGUF')"
        return True, f"local GGUF {path.name} ({path.stat().st_size / 2**30:.2f} GiB)"

    try:
        found = resolve_model(spec, download=False)
    except ModelSourceError as exc:
        return False, _why(BackendChoice("llama-cpp-python", spec), exc)
    if found.from_cache or found.repo is None:
        return True, f"{found.describe()} (already downloaded)"
    return True, (f"{found.repo}@{(found.revision or '')[:10]} has {found.files[0]}"
                  f"{f' (+{len(found.files) - 1} more parts)' if len(found.files) > 1 else ''}; "
                  "connecting downloads it once (then it is cached)")
