"""Where a GGUF comes from: a local file, or a Hugging Face repo + quant (downloaded with
huggingface_hub: resumable, cached, with its progress bar)."""

from __future__ import annotations

import re
from pathlib import Path

DEFAULT_REPO = "enfuse/smol-tools-4b-32k-GGUF"  # where `smol-tools package --publish` uploads the quants
DEFAULT_QUANT = "Q4_K_M"
_REPO_SPEC = re.compile(r"^(?P<repo>[\w.-]+/[\w.-]+)(?::(?P<quant>[\w]+))?$")


class ModelSourceError(ValueError):
    """The model reference is neither a file nor a reachable Hub repo + quant."""


def pick_quant_file(files: list[str], quant: str) -> str:
    """The repo's GGUF for `quant` (Hub naming: <name>-<quant lower>.gguf)."""
    suffix = f"-{quant.lower()}.gguf"
    matches = sorted(f for f in files if f.lower().endswith(suffix))
    if not matches:
        ggufs = sorted(f for f in files if f.endswith(".gguf"))
        raise ModelSourceError(f"no {quant} GGUF in the repo; it has: {', '.join(ggufs) or 'no GGUF files'}")
    return matches[0]


def resolve_gguf(spec: str) -> Path:
    """`path/to/file.gguf`, or `owner/repo[:QUANT]` (default quant Q4_K_M)."""
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    if spec.endswith(".gguf"):
        raise ModelSourceError(f"no GGUF file at {path}")
    match = _REPO_SPEC.match(spec)
    if not match:
        raise ModelSourceError(f"{spec!r} is neither a GGUF file nor a Hub repo like owner/name:Q4_K_M")
    from huggingface_hub import hf_hub_download, list_repo_files
    from huggingface_hub.errors import LocalEntryNotFoundError

    repo, quant = match["repo"], (match["quant"] or DEFAULT_QUANT)
    # A file downloaded before needs no network: try the Hub naming convention in the cache.
    conventional = f"{repo.split('/')[1].removesuffix('-GGUF')}-{quant.lower()}.gguf"
    try:
        return Path(hf_hub_download(repo, conventional, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        pass
    try:
        filename = pick_quant_file(list_repo_files(repo), quant)
        return Path(hf_hub_download(repo, filename))
    except Exception as exc:  # the Hub client's transport raises its own types (httpx2, ...)
        raise ModelSourceError(f"could not download {quant} from {repo}: {exc}") from exc
