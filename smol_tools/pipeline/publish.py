"""Publish the verified build to the Hugging Face Hub with `huggingface_hub` — or, by default,
only print what would be uploaded.

The plan names every file explicitly; `upload_folder` gets exactly those names as
`allow_patterns`, so nothing else in the output folder (the download, logs, a failed quant)
can be uploaded. `delete_patterns` removes GGUFs and Modelfiles of an earlier upload that
this build did not verify, so the repo holds exactly one verified set."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .progress import human_size

HUB = "https://huggingface.co"
STALE_PATTERNS = ("*.gguf", "Modelfile.*")


@dataclass(frozen=True)
class UploadPlan:
    repo_id: str
    folder: Path
    files: tuple[str, ...]  # names relative to `folder`

    def sizes(self) -> list[tuple[str, int]]:
        return [(name, (self.folder / name).stat().st_size) for name in self.files]

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self.sizes())

    def describe(self) -> str:
        lines = [f"upload plan: {len(self.files)} files, {human_size(self.total_bytes)} -> "
                 f"{HUB}/{self.repo_id} (replacing any other {', '.join(STALE_PATTERNS)} there)"]
        lines += [f"  {name:<48} {human_size(size):>11}" for name, size in self.sizes()]
        return "\n".join(lines)


def build_plan(folder: Path, repo_id: str, files: list[str]) -> UploadPlan:
    missing = [name for name in files if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"upload plan names files that do not exist: {missing}")
    return UploadPlan(repo_id, folder, tuple(files))


def publish(plan: UploadPlan, *, api: Any = None, private: bool = False,
            commit_message: str | None = None) -> str:
    """Create the repo if needed and upload the planned files in one commit; returns its URL."""
    if api is None:
        from huggingface_hub import HfApi  # start-up time: huggingface_hub

        api = HfApi()
    api.create_repo(plan.repo_id, repo_type="model", private=private, exist_ok=True)
    info = api.upload_folder(
        repo_id=plan.repo_id, repo_type="model", folder_path=plan.folder,
        allow_patterns=list(plan.files), delete_patterns=list(STALE_PATTERNS),
        commit_message=commit_message or f"Upload {len(plan.files)} verified files")
    return getattr(info, "commit_url", None) or f"{HUB}/{plan.repo_id}"
