"""Build records for `--resume`: which artifacts are finished, from which inputs.

An artifact counts as done only if its final file exists (atomic rename: never half-written)
*and* a record says it was made from the same inputs (params) and has the recorded size. A
record is written right after the rename, so a kill between the two only costs a redo.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class BuildState:
    """A JSON file of records, rewritten atomically after every change."""

    def __init__(self, path: Path, *, fresh: bool = False) -> None:
        self.path = path
        self.records: dict[str, dict[str, Any]] = {}
        if path.exists() and not fresh:
            self.records = json.loads(path.read_text(encoding="utf-8"))

    def get(self, key: str) -> dict[str, Any] | None:
        return self.records.get(key)

    def put(self, key: str, record: dict[str, Any]) -> None:
        self.records[key] = record
        self._save()

    def drop(self, key: str) -> None:
        if self.records.pop(key, None) is not None:
            self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{self.path.name}.partial")
        partial.write_text(json.dumps(self.records, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(partial, self.path)

    def done(self, key: str, artifact: Path, params: dict[str, Any]) -> bool:
        """True when `artifact` was finished from exactly these inputs."""
        record = self.records.get(key)
        return (record is not None and artifact.exists() and record.get("params") == params
                and record.get("size") == artifact.stat().st_size)

    def finish(self, key: str, artifact: Path, params: dict[str, Any], **extra: Any) -> None:
        self.put(key, {"params": params, "size": artifact.stat().st_size, **extra})

    def sha256(self, artifact: Path) -> str:
        """SHA256 of a finished file, cached by size and mtime (hashing 9 GB takes a while)."""
        stat = artifact.stat()
        key = f"sha256:{artifact.name}"
        cached = self.records.get(key)
        stamp = [stat.st_size, stat.st_mtime_ns]
        if cached and cached.get("stamp") == stamp:
            return cached["sha256"]
        value = sha256_file(artifact)
        self.put(key, {"stamp": stamp, "sha256": value})
        return value
