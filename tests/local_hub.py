"""The Hub stand-in (tests/hub_standin.py) holding one model repo read from a local folder, as far
as `snapshot_download` and remote GGUF reads use it: revision lookup (`model_info`), the tree
listing, and HEAD/GET on `/resolve/` (with Range). Point `HF_ENDPOINT` at it and the real
huggingface_hub client runs unchanged in any process, so a build can be killed in the middle of
a real download.

Unlike tests.test_package_units.FakeHub (which replaces the client functions in-process), this
exercises huggingface_hub's own temporary-file handling, which is what a killed download leaves.
(A helper module, not a test module: its name does not start with test_.)"""

from __future__ import annotations

from pathlib import Path

from tests.hub_standin import HubStandIn, StandInRepo


class LocalHub(HubStandIn):
    """One model repo whose every commit holds the files of `folder`.

    `main` is the commit the `main` branch points to; `push_after_lookup` moves it after the
    first lookup (someone pushed while the build ran). `stall(name, after)`, `release()`,
    `gets(name)` and `requests` are the stand-in's."""

    def __init__(self, folder: Path, repo_id: str, main: str, push_after_lookup: str | None = None) -> None:
        files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
        super().__init__({repo_id: StandInRepo(files, sha=main, any_revision=True,
                                               push_after_lookup=push_after_lookup)})
        self.repo_id = repo_id

    @property
    def files(self) -> dict[str, bytes]:
        return self.repos[self.repo_id].files

    @property
    def main(self) -> str:
        return self.repos[self.repo_id].sha
