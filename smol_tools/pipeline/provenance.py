"""Whose files a build makes: the model's name, the repo it publishes to, the checkpoint its card
names as `base_model` and the context length its recipes use all come from the SOURCE, not from
smol_tools/pipeline/data/config.toml (which describes one member of the family, smol-tools-4b-32k).

- Name: `--model-name`, else the config's name when SOURCE is the config's source, else the
  Hub repo's name (`enfuse/smol-tools-4b-16k` -> `smol-tools-4b-16k`), else (a local folder)
  the name of `--base-model`, else the folder's name.
- Repo: `--repo-id`, else the config's repo for the config's model, else `<config owner>/<name>-GGUF`.
- base_model: the Hub repo that was downloaded (its revision goes into the card and manifest),
  or `--base-model` for a local folder. A local folder without `--base-model` has none: the
  card says so, and `--publish` is refused rather than publishing a guess.
- Context length: the checkpoint's config.json (`max_position_embeddings`, or in `text_config`
  for a multimodal config), else the GGUF header's `<arch>.context_length`.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..gguf_header import GGUFHeaderError, read_header
from .settings import PackagingConfig

BASE_MODEL_FLAG = "--base-model"


class ProvenanceError(ValueError):
    """The build cannot say truthfully which model it packages."""


def is_local(source: str) -> bool:
    return Path(source).expanduser().is_dir()


def check_base_model(value: str | None) -> None:
    if value is None:
        return
    from huggingface_hub.utils import HFValidationError, validate_repo_id  # start-up time: huggingface_hub

    try:
        validate_repo_id(value)
    except HFValidationError:
        raise ProvenanceError(f"{BASE_MODEL_FLAG} {value!r} is not a Hub repo id: give the checkpoint's "
                              "repo as owner/name, e.g. enfuse/smol-tools-4b-16k.") from None
    if "/" not in value:
        raise ProvenanceError(f"{BASE_MODEL_FLAG} {value!r} needs its owner: owner/name, e.g. "
                              "enfuse/smol-tools-4b-16k.")


def default_model_name(source: str, config: PackagingConfig, base_model: str | None = None) -> str:
    if source == config.source:
        return config.name
    if not is_local(source):  # owner/name[@revision]; a GGUF repo's name without its suffix
        name = source.split("@")[0].rstrip("/").split("/")[-1]
        return name[:-5] if name.lower().endswith("-gguf") else name
    if base_model:
        return base_model.split("/")[-1]
    return Path(source).expanduser().resolve().name


def default_repo_id(name: str, config: PackagingConfig) -> str:
    if name == config.name:
        return config.repo_id
    owner = config.repo_id.split("/")[0]
    return f"{owner}/{name}-GGUF"


def card_base_model(kind: str, repo_id: str | None, base_model: str | None) -> str | None:
    """The checkpoint the card names: what the user stated, else the Hub repo downloaded."""
    if base_model:
        return base_model
    return repo_id if kind == "hub" else None


def check_publishable(source: str, base_model: str | None, *, publish: bool) -> None:
    """Refuse to publish a card whose base_model would be a guess (before any work)."""
    if publish and base_model is None and is_local(source):
        raise ProvenanceError(
            f"--publish with a local SOURCE ({source}) needs {BASE_MODEL_FLAG} OWNER/NAME, the Hub repo "
            "of the checkpoint in that folder: the model card's base_model and links name it, and "
            "nothing in a folder says for sure which model it is. Add it (e.g. "
            f"{BASE_MODEL_FLAG} enfuse/smol-tools-4b-16k), or package the Hub repo itself.")


def checkpoint_context_length(folder: Path) -> int | None:
    """max_position_embeddings from the checkpoint's config.json (None: no config or no value)."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for section in (config, config.get("text_config") if isinstance(config, dict) else None):
        if isinstance(section, dict) and isinstance(section.get("max_position_embeddings"), int):
            return int(section["max_position_embeddings"])
    return None


def gguf_context_length(path: Path) -> int | None:
    """`<arch>.context_length` from a GGUF header (the converter copies it from config.json)."""
    try:
        header = read_header(path)
    except (OSError, GGUFHeaderError):
        return None
    value = header.get(f"{header.get('general.architecture')}.context_length")
    return int(value) if isinstance(value, int) else None


def memory_contexts(configured: tuple[int, ...], context_length: int) -> list[int]:
    """The memory table's columns: the configured ones the model can use, up to its own length."""
    return sorted({c for c in configured if c < context_length} | {context_length})
