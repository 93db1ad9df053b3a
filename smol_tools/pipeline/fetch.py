"""SOURCE → a local checkpoint folder: a local folder as-is, or a Hub repo downloaded with
`huggingface_hub.snapshot_download` (resumable, only the files conversion needs, revision pinned
to a commit so a resumed or repeated build reads exactly the same bytes)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

WEIGHT_PATTERNS = ("*.safetensors",)


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


def _listing(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted(folder.iterdir())
            if p.is_file() and not p.name.startswith(".")}


def resolve_revision(repo_id: str, revision: str | None, api: Any = None) -> str:
    """The commit sha that `revision` (a branch, tag or sha; default main) points to now."""
    from huggingface_hub import HfApi

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
    from huggingface_hub import snapshot_download

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
