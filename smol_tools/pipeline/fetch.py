"""SOURCE → a local checkpoint folder: a local folder as-is, or a Hub repo downloaded with
`huggingface_hub.snapshot_download` (resumable, only the files conversion needs, revision pinned
to a commit so a resumed or repeated build reads exactly the same bytes)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

WEIGHT_PATTERNS = ("*.safetensors",)
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "tokenizer.model")
SHARD_INDEX = "model.safetensors.index.json"


class SourceError(ValueError):
    """SOURCE is neither a checkpoint folder conversion can read nor a Hub repo id."""


@dataclass(frozen=True)
class SourceInfo:
    path: Path  # the checkpoint folder conversion reads
    kind: str  # "local" or "hub"
    repo_id: str | None = None
    revision: str | None = None  # the commit sha a Hub download was pinned to
    files: dict[str, int] = field(default_factory=dict)  # file name -> size in bytes

    @property
    def fingerprint(self) -> str:
        """Identifies the inputs, for resume records (a Hub commit is immutable)."""
        if self.kind == "hub":
            return f"hub:{self.repo_id}@{self.revision}"
        digest = hashlib.sha256()
        for name in sorted(self.files):
            item = self.path / name
            digest.update(f"{name}:{self.files[name]}".encode())
            if item.suffix != ".safetensors":  # small files: hash content; weights: size+mtime
                digest.update(item.read_bytes())
            else:
                digest.update(str(item.stat().st_mtime_ns).encode())
        return f"local:{digest.hexdigest()[:16]}"

    def manifest(self) -> dict[str, Any]:
        record: dict[str, Any] = {"kind": self.kind, "files": self.files}
        if self.kind == "hub":
            record |= {"repo_id": self.repo_id, "revision": self.revision,
                       "url": f"https://huggingface.co/{self.repo_id}/tree/{self.revision}"}
        else:
            record["path"] = str(self.path)
        return record


def is_local_source(source: str) -> bool:
    return Path(source).expanduser().is_dir()


def checkpoint_problem(folder: Path, *, need_weights: bool = True) -> str | None:
    """Why `folder` is not a checkpoint llama.cpp's converter can read, as one sentence naming
    what is missing; None when it looks complete. Only names and small JSON files are read."""
    missing: list[str] = []
    config = folder / "config.json"
    if not config.is_file():
        missing.append("config.json")
    else:
        try:
            if not isinstance(json.loads(config.read_text(encoding="utf-8")), dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            return f"{config} cannot be read ({exc}); restore it from the model's repo"
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        missing.append("tokenizer (tokenizer.json)")
    index = folder / SHARD_INDEX
    if need_weights and index.is_file():
        try:
            shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            return f"{index} cannot be read ({exc}); restore it from the model's repo"
        absent = sorted(name for name in shards if not (folder / name).is_file())
        if absent:
            return (f"{folder} lacks {len(absent)} of the {len(shards)} weight shards {index.name} names "
                    f"({', '.join(absent[:3])}{', ...' if len(absent) > 3 else ''}); download them too")
    elif need_weights and not any(folder.glob("*.safetensors")):
        missing.append("weights (*.safetensors)")
    if not missing:
        return None
    found = sorted(p.name for p in folder.iterdir() if p.is_file())[:6] if folder.is_dir() else []
    hint = ""
    if any(name.endswith(".gguf") for name in found):
        hint = " It holds GGUF files: those are already converted, so there is nothing to package."
    elif any(name.endswith((".bin", ".pt", ".pth")) for name in found) and "config.json" not in missing:
        hint = (" Its weights are PyTorch pickles: save them as safetensors first (transformers: "
                "save_pretrained(folder, safe_serialization=True)).")
    return (f"{folder} is not a Hugging Face checkpoint: it has no {', no '.join(missing)}"
            f" (found: {', '.join(found) or 'nothing'}). SOURCE must be a checkpoint folder as "
            f"published on the Hub, or a Hub repo id (owner/name).{hint}")


def check_source(source: str) -> None:
    """Refuse a SOURCE that can never be packaged, before any step runs or writes anything."""
    path = Path(source).expanduser()
    if path.is_dir():
        problem = checkpoint_problem(path)
        if problem:
            raise SourceError(problem)
        return
    if path.exists():
        raise SourceError(f"{source} is a file, not a checkpoint: SOURCE must be a checkpoint folder "
                          "(config.json, tokenizer, *.safetensors) or a Hub repo id (owner/name).")
    from huggingface_hub.utils import HFValidationError, validate_repo_id  # start-up time: huggingface_hub

    try:
        validate_repo_id(source)
    except HFValidationError:
        raise SourceError(f"{source!r} is neither a folder here nor a Hub repo id (owner/name): "
                          "check the path.") from None


def _listing(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted(folder.iterdir())
            if p.is_file() and not p.name.startswith(".")}


def resolve_revision(repo_id: str, revision: str | None, api: Any = None) -> str:
    """The commit sha that `revision` (a branch, tag or sha; default main) points to now."""
    from huggingface_hub import HfApi  # start-up time: huggingface_hub

    info = (api or HfApi()).model_info(repo_id, revision=revision or "main")
    return info.sha


def fetch_source(source: str, dest: Path, *, revision: str | None = None,
                 pinned: str | None = None, allow_patterns: Sequence[str] = (),
                 with_weights: bool = True, api: Any = None) -> SourceInfo:
    """Return the checkpoint for SOURCE, downloading a Hub repo into `dest` if needed.

    `pinned` (the commit recorded by an earlier run) wins over `revision`, so `--resume` never
    silently moves to a newer commit. `with_weights=False` fetches only the small files (the
    weights are not needed once conversion is done)."""
    if is_local_source(source):
        path = Path(source).expanduser().resolve()
        return SourceInfo(path, "local", files=_listing(path))
    from huggingface_hub import snapshot_download  # start-up time: huggingface_hub

    sha = pinned or resolve_revision(source, revision, api)
    patterns = [p for p in allow_patterns if with_weights or p not in WEIGHT_PATTERNS]
    drop_orphaned_downloads(dest)
    folder = snapshot_download(source, revision=sha, local_dir=dest,
                               allow_patterns=patterns or None)
    path = Path(folder)
    return SourceInfo(path, "hub", repo_id=source, revision=sha, files=_listing(path))


def drop_orphaned_downloads(dest: Path) -> int:
    """Delete partial downloads a killed run left in `dest`; returns bytes freed.

    huggingface_hub downloads each file to a process-unique `<hash>.<etag>.<id>.incomplete`
    under `.cache/huggingface/download/` and renames it when complete; it deletes the partial
    file on an error, but a killed process cannot, and no later download reuses it (the name is
    unique to that process). Unremoved, each kill would leave up to a whole weight file behind.
    One build owns `dest` (as it owns build/state.json), so no live download is touched."""
    freed = 0
    for stale in (dest / ".cache" / "huggingface" / "download").rglob("*.incomplete"):
        freed += stale.stat().st_size
        stale.unlink()
    return freed


def drop_weights(info: SourceInfo) -> int:
    """Delete a downloaded checkpoint's weights (conversion is done); returns bytes freed.
    Never touches a local SOURCE folder: those are the user's files."""
    if info.kind != "hub":
        return 0
    freed = 0
    hub_cache = info.path / ".cache" / "huggingface" / "download"
    for pattern in WEIGHT_PATTERNS:
        for item in info.path.glob(pattern):
            freed += item.stat().st_size
            item.unlink()
            # huggingface_hub's record of the local copy; without the file it must go too.
            for stale in hub_cache.glob(f"{item.name}.*"):
                stale.unlink()
    return freed
