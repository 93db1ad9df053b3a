"""Where a model is: one resolver for every entry point (the app, `chat`, `eval`, `doctor`).

What a user types:
- `tiny` (or `tiny:Q8_0`): the tiny offline model;
- a path to a `.gguf` file;
- `owner/repo[:QUANT][@REVISION]`: the GGUF whose file name carries QUANT, found by listing the
  repo with huggingface_hub in whatever layout its author chose (`-q4_k_m.gguf`, `.Q4_K_M.gguf`,
  split `-Q4_K_M-00001-of-00002.gguf`, in a subfolder; case-insensitive, as Ollama and the Hub
  match quant tags), never by guessing a file name;
- nothing, `default` or `default:QUANT`: the known homes of the model, in order (our GGUF repo
  once it is published, then the model repo whose card publishes GGUFs today); the first that
  has the quant wins.

A resolved Hub file is pinned to the commit it was listed at (`ResolvedModel.revision`), so the
parts of a split file, and any later quant a session switches to, never mix revisions.
Errors are `ModelSourceError`s whose `kind` says what happened and whose message says what to do;
only `unreachable` (offline, Hub down, no cached copy) is a reason to fall back to the tiny model.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .tiny import tiny_gguf

OUR_GGUF_REPO = "enfuse/smol-tools-4b-32k-GGUF"  # where `smol-tools package --publish` uploads
PUBLISHED_HOME = "enfuse/smol-tools-4b-32k"  # the model repo; its card publishes GGUFs inside it
DEFAULT_HOMES: tuple[str, ...] = (OUR_GGUF_REPO, PUBLISHED_HOME)
DEFAULT_QUANT = "Q4_K_M"
DEFAULT_REPO = OUR_GGUF_REPO  # kept for callers that name "our" repo (packaging config)
TINY = "tiny"
DEFAULT = "default"

ErrorKind = Literal["bad_spec", "missing_file", "not_found", "no_quant", "auth", "unreachable"]

_REPO_SPEC = re.compile(r"^(?P<repo>[\w.-]+/[\w.-]+)(?::(?P<quant>[\w.-]+))?(?:@(?P<revision>[\w.-]+))?$")
_DEFAULT_SPEC = re.compile(r"^(?:default)?(?::(?P<quant>[\w.-]+))?$", re.IGNORECASE)
_SPLIT = re.compile(r"-(?P<part>\d{5})-of-(?P<total>\d{5})$")
# Quant tags as llama.cpp's quantizer and the Hub name them, optionally behind Unsloth's "UD-".
_QUANT_TAG = re.compile(r"(?:^|[-._])(?P<tag>(?:ud-)?(?:i?q\d(?:_[a-z0-9]+)*|bf16|f16|f32|mxfp4(?:_moe)?|tq\d_\d))$")


class ModelSourceError(ValueError):
    """The model reference cannot be turned into a file; `kind` says why, the message what to do."""

    def __init__(self, message: str, kind: ErrorKind = "bad_spec") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class ResolvedModel:
    """A GGUF on disk and where it came from."""

    path: Path  # the file to load (the first part of a split GGUF)
    spec: str  # what was asked for
    repo: str | None = None
    revision: str | None = None  # the commit the files were listed and downloaded at
    files: tuple[str, ...] = ()  # repo paths of the downloaded file(s)
    quant: str | None = None
    from_cache: bool = False  # offline: found in the local Hub cache
    downloaded: bool = True  # False: only listed (resolve_model(..., download=False))
    notes: tuple[str, ...] = field(default_factory=tuple)  # homes skipped on the way, and why

    @property
    def tiny(self) -> bool:
        return self.repo is None and self.spec.split(":")[0] == TINY

    def pinned(self, quant: str | None = None) -> str:
        """The spec that reloads exactly this revision (with another quant, if given)."""
        if self.repo is None:
            return str(self.path)
        return f"{self.repo}:{quant or self.quant}@{self.revision}" if self.revision else f"{self.repo}:{quant or self.quant}"

    def describe(self) -> str:
        if self.repo is None:
            return str(self.path)
        where = f"{self.repo}@{self.revision[:10]}" if self.revision else self.repo
        return f"{Path(self.files[0]).name if self.files else self.path.name} from {where}" + \
            (" (local cache, offline)" if self.from_cache else "")


# ---- file names ---------------------------------------------------------------------------------

def _stem(name: str) -> str:
    """File name without folder, `.gguf` and split suffix, lower case."""
    base = Path(name).name
    base = base[: -len(".gguf")] if base.lower().endswith(".gguf") else base
    return _SPLIT.sub("", base).lower()


def _is_model_gguf(name: str) -> bool:
    # Vision projectors and imatrix data ship beside models and carry quant-like names too.
    base = Path(name).name.lower()
    return base.endswith(".gguf") and not base.startswith(("mmproj", "imatrix"))


def quant_of(name: str) -> str | None:
    """The quant tag in a GGUF file name (upper case), or None."""
    match = _QUANT_TAG.search(_stem(name))
    return match["tag"].upper() if match else None


def quants_in(files: list[str]) -> list[str]:
    return sorted({q for f in files if _is_model_gguf(f) and (q := quant_of(f))})


def pick_quant_files(files: list[str], quant: str) -> list[str]:
    """The repo file(s) holding `quant`: one file, or every part of a split GGUF (part 1 first)."""
    wanted = quant.lower()
    matches = sorted(f for f in files if _is_model_gguf(f) and
                     (_stem(f) == wanted or re.search(rf"[-._]{re.escape(wanted)}$", _stem(f))))
    if not matches:
        present = quants_in(files)
        raise ModelSourceError(
            f"no {quant.upper()} GGUF in the repo; quants there: {', '.join(present) or 'none (no GGUF files)'}",
            "no_quant")
    # Prefer a single file; else the split set whose first part sorts first.
    singles = [f for f in matches if not _SPLIT.search(Path(f).name[:-5])]
    if singles:
        return [min(singles, key=lambda f: (f.count("/"), f))]
    first = next(f for f in matches if _SPLIT.search(Path(f).name[:-5])["part"] == "00001")
    total = int(_SPLIT.search(Path(first).name[:-5])["total"])
    prefix = first[: -len("-00001-of-00000.gguf")]
    parts = [f"{prefix}-{i:05d}-of-{total:05d}{first[-5:]}" for i in range(1, total + 1)]
    missing = [p for p in parts if p not in files]
    if missing:
        raise ModelSourceError(f"split GGUF {first} is incomplete in the repo: missing {', '.join(missing)}",
                               "no_quant")
    return parts


def pick_quant_file(files: list[str], quant: str) -> str:
    """The file to load for `quant` (part 1 of a split GGUF)."""
    return pick_quant_files(files, quant)[0]


# ---- the Hub --------------------------------------------------------------------------------------

def _endpoint() -> str | None:
    # huggingface_hub reads HF_ENDPOINT once at import; read it per call so a process (or test)
    # that sets it later is obeyed.
    return os.environ.get("HF_ENDPOINT") or None


def _cache_dir() -> str:
    explicit = os.environ.get("HF_HUB_CACHE")
    if explicit:
        return explicit
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return os.path.join(os.path.expanduser(home), "hub")


def _offline() -> bool:
    from huggingface_hub import constants  # start-up time: huggingface_hub

    flag = (os.environ.get("HF_HUB_OFFLINE") or "").strip().upper()
    return constants.is_offline_mode() or flag in {"1", "ON", "YES", "TRUE"}


def _cached(repo: str, quant: str, revision: str | None) -> ResolvedModel | None:
    """A complete copy of `repo`'s `quant` in the local Hub cache (offline use), or None."""
    from huggingface_hub import scan_cache_dir  # start-up time: huggingface_hub

    try:
        info = scan_cache_dir(_cache_dir())
    except Exception:  # no cache folder yet, or one we cannot read: nothing cached
        return None
    for cached_repo in info.repos:
        if cached_repo.repo_type != "model" or cached_repo.repo_id.lower() != repo.lower():
            continue
        revisions = sorted(cached_repo.revisions, key=lambda r: ("main" in r.refs, r.last_modified), reverse=True)
        for rev in revisions:
            if revision and not rev.commit_hash.startswith(revision) and revision not in rev.refs:
                continue
            names = [f.file_path.relative_to(rev.snapshot_path).as_posix() for f in rev.files]
            try:
                parts = pick_quant_files(names, quant)
            except ModelSourceError:
                continue
            return ResolvedModel(rev.snapshot_path / parts[0], f"{repo}:{quant}", cached_repo.repo_id,
                                 rev.commit_hash, tuple(parts), quant.upper(), from_cache=True)
    return None


def _unreachable(repo: str, quant: str, exc: BaseException | None) -> ModelSourceError:
    why = "offline mode is on (HF_HUB_OFFLINE)" if exc is None or type(exc).__name__ == "OfflineModeIsEnabled" \
        else f"the Hub could not be reached ({_short(exc)})"
    return ModelSourceError(
        f"cannot get {repo}:{quant}: {why}, and no copy is in the local cache ({_cache_dir()}). "
        "Connect once to download it, or use a local .gguf path or 'tiny'.", "unreachable")


def _short(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _hub_error(repo: str, exc: Exception) -> ModelSourceError | None:
    """huggingface_hub's HTTP errors as ours; None when it is not an answer from the Hub."""
    from huggingface_hub.errors import (GatedRepoError, HfHubHTTPError, RepositoryNotFoundError,
                                        RevisionNotFoundError)  # start-up time: huggingface_hub

    if isinstance(exc, GatedRepoError):
        return ModelSourceError(
            f"{repo} is gated: accept its conditions at https://huggingface.co/{repo} and log in "
            "(`hf auth login`, or set HF_TOKEN)", "auth")
    if isinstance(exc, RepositoryNotFoundError):
        return ModelSourceError(
            f"repository {repo} not found on the Hugging Face Hub (if it is private, log in with "
            "`hf auth login` or set HF_TOKEN; otherwise check the name)", "not_found")
    if isinstance(exc, RevisionNotFoundError):
        return ModelSourceError(f"{repo} has no such revision; drop the @REVISION or pick one that exists",
                                "not_found")
    if isinstance(exc, HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", 0) or 0
        if status in (401, 403):
            return ModelSourceError(f"the Hub refused access to {repo} ({status}): log in with "
                                    "`hf auth login` or set HF_TOKEN", "auth")
        if status and status < 500:
            return ModelSourceError(f"the Hub refused {repo}: {_short(exc)}", "not_found")
    return None  # 5xx, connection refused, timeout, offline mode: unreachable


def resolve_hub(repo: str, quant: str = DEFAULT_QUANT, revision: str | None = None, *,
                download: bool = True) -> ResolvedModel:
    """List `repo` at `revision` (default: its main branch, then pinned to that commit), pick
    the `quant` file(s) and download them (resumable, cached). Offline: the local cache.
    `download=False` only lists (a connection test): `path` is then the repo path of part 1."""
    from huggingface_hub import HfApi, hf_hub_download  # start-up time: huggingface_hub

    spec = f"{repo}:{quant}"
    if _offline():
        cached = _cached(repo, quant, revision)
        if cached is None:
            raise _unreachable(repo, quant, None)
        return cached
    try:
        info = HfApi(endpoint=_endpoint()).model_info(repo, revision=revision)
    except Exception as exc:  # the client's transport raises its own types (httpx, ...)
        known = _hub_error(repo, exc)
        if known is not None:
            raise known from exc
        cached = _cached(repo, quant, revision)
        if cached is None:
            raise _unreachable(repo, quant, exc) from exc
        return cached
    names = [s.rfilename for s in (info.siblings or [])]
    parts = pick_quant_files(names, quant)
    if not download:
        return ResolvedModel(Path(parts[0]), spec, repo, info.sha, tuple(parts), quant.upper(), downloaded=False)
    paths = []
    for name in parts:
        try:
            paths.append(Path(hf_hub_download(repo, name, revision=info.sha, endpoint=_endpoint(),
                                              cache_dir=_cache_dir())))
        except Exception as exc:
            known = _hub_error(repo, exc)
            if known is not None:
                raise known from exc
            raise ModelSourceError(
                f"downloading {name} from {repo} failed ({_short(exc)}); run again to resume "
                "(the partial download is kept and never used as a finished file)", "unreachable") from exc
    return ResolvedModel(paths[0], spec, repo, info.sha, tuple(parts), quant.upper())


def resolve_default(quant: str = DEFAULT_QUANT, homes: tuple[str, ...] = DEFAULT_HOMES, *,
                    download: bool = True) -> ResolvedModel:
    """The first home that has `quant`, in order; offline, the first one cached."""
    failures: list[tuple[str, ModelSourceError]] = []
    for home in homes:
        try:
            found = resolve_hub(home, quant, download=download)
        except ModelSourceError as exc:
            failures.append((home, exc))
            continue
        notes = tuple(f"{h}: {e}" for h, e in failures)
        return ResolvedModel(found.path, f"{DEFAULT}:{quant}", found.repo, found.revision, found.files,
                             found.quant, found.from_cache, found.downloaded, notes)
    kinds = {exc.kind for _, exc in failures}
    listing = "\n".join(f"  - {home}: {exc}" for home, exc in failures)
    if "unreachable" in kinds:
        # Offline (or the Hub down) with nothing cached: the one case the app answers with tiny.
        raise ModelSourceError(
            f"cannot get the model ({quant}): the Hugging Face Hub is unreachable or offline mode is on, "
            f"and no home of the model is in the local cache. Connect once to download it, or use a local "
            f".gguf path or 'tiny'.\n{listing}", "unreachable")
    kind: ErrorKind = "auth" if "auth" in kinds else "no_quant" if "no_quant" in kinds else "not_found"
    raise ModelSourceError(f"no home of the model has {quant}:\n{listing}", kind)


# ---- the front door -----------------------------------------------------------------------------

def resolve_model(spec: str | None = None, quant: str | None = None, *, download: bool = True) -> ResolvedModel:
    """What the user typed -> a GGUF on disk (see the module docstring for the forms)."""
    text = (spec or "").strip()
    if text.split(":")[0].lower() == TINY:
        try:
            path = tiny_gguf(text.partition(":")[2] or None)
        except RuntimeError as exc:  # TinyModelUnavailable: a quant that does not ship
            raise ModelSourceError(str(exc), "missing_file") from exc
        return ResolvedModel(path, text or TINY, quant=path.stem.rsplit("-", 1)[-1].upper())
    default = _DEFAULT_SPEC.match(text)
    if default:
        return resolve_default((default["quant"] or quant or DEFAULT_QUANT).upper(), download=download)
    path = Path(text).expanduser()
    if path.is_file():
        return ResolvedModel(path, text, quant=quant_of(path.name))
    if path.is_dir():
        raise ModelSourceError(f"{path} is a folder: give the .gguf file inside it", "missing_file")
    looks_local = text.lower().endswith(".gguf") or text.startswith((".", "/", "~")) or os.sep + os.sep in text
    if looks_local:
        raise ModelSourceError(f"no GGUF file at {path}", "missing_file")
    match = _REPO_SPEC.match(text)
    if not match:
        raise ModelSourceError(
            f"{text!r} is neither a GGUF file nor a Hub repo like owner/name:Q4_K_M (or 'tiny')", "bad_spec")
    return resolve_hub(match["repo"], (match["quant"] or quant or DEFAULT_QUANT).upper(), match["revision"],
                       download=download)


def resolve_gguf(spec: str) -> Path:
    """The file for `spec` (see resolve_model)."""
    return resolve_model(spec).path
