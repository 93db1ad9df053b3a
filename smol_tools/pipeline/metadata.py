"""Check and fix GGUF metadata with the `gguf` package: the chat template, the stop-token ids,
general.* (name, base model, license, quantized_by) and the `general.sampling.*` defaults
(templates/params.json; the key names llama.cpp reads, see gguf_doctor.SAMPLING_KEYS), so
`llama-server -m FILE` samples as we intend with no flags.

Fixing rewrites the file with gguf's own `gguf_new_metadata.copy_with_new_metadata` (tensor
data copied verbatim, new key/values), to a `.partial` name renamed into place: never a
re-conversion, never a half-written file."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..chat_format import load_params
from ..gguf_doctor import expected_sampling
from .atomic import atomic_output

HF = "https://huggingface.co"


class MetadataError(RuntimeError):
    """The GGUF lacks something we cannot supply (e.g. a stop token missing from its vocab)."""


@dataclass(frozen=True)
class MetadataSpec:
    """What every GGUF we publish must say about itself."""

    name: str
    base_model: str  # Hub repo id of the model the fine-tune started from
    license: str
    quantized_by: str
    chat_template: str
    source_repo: str | None = None  # Hub repo id of the checkpoint we converted, if from the Hub

    def string_fields(self) -> dict[str, str]:
        organization, _, base_name = self.base_model.rpartition("/")
        fields = {
            "general.name": self.name,
            "general.license": self.license,
            "general.quantized_by": self.quantized_by,
            "general.base_model.0.name": base_name,
            "general.base_model.0.repo_url": f"{HF}/{self.base_model}",
            "tokenizer.chat_template": self.chat_template,
        }
        if organization:
            fields["general.base_model.0.organization"] = organization
        if self.source_repo:
            fields["general.source.repo_url"] = f"{HF}/{self.source_repo}"
        return fields


@dataclass(frozen=True)
class Mismatch:
    key: str
    expected: Any
    actual: Any

    def __str__(self) -> str:
        def short(v: Any) -> str:
            text = repr(v)
            return text if len(text) <= 60 else text[:57] + "...'"
        return f"{self.key}: {short(self.actual)} (want {short(self.expected)})"


def _token_ids(reader) -> dict[str, int]:
    """Stop-token ids looked up in the GGUF's own vocabulary, from templates/params.json."""
    tokens = list(reader.get_field("tokenizer.ggml.tokens").contents())
    special = load_params().special_tokens
    wanted = {"tokenizer.ggml.eos_token_id": special["eos"],  # <|im_end|> ends a turn
              "tokenizer.ggml.eot_token_id": special["im_end"],
              "tokenizer.ggml.padding_token_id": special["pad"]}
    ids = {}
    for key, text in wanted.items():
        if text not in tokens:
            raise MetadataError(f"{text!r} ({key}) is not in the GGUF's vocabulary")
        ids[key] = tokens.index(text)
    return ids


def expected_fields(reader, spec: MetadataSpec) -> dict[str, Any]:
    """key -> (GGUFValueType, value) pairs the file must carry."""
    from gguf import GGUFValueType  # start-up time: gguf imports numpy

    fields: dict[str, Any] = {k: (GGUFValueType.STRING, v) for k, v in spec.string_fields().items()}
    fields["general.base_model.count"] = (GGUFValueType.UINT32, 1)
    fields |= {k: (GGUFValueType.UINT32, v) for k, v in _token_ids(reader).items()}
    fields |= {k: (GGUFValueType(t), v) for k, (t, v) in expected_sampling().items()}
    return fields


def _same(actual: Any, expected: Any) -> bool:
    # Sampling values are stored as float32: 0.1 reads back as 0.10000000149..., which is ours.
    if isinstance(expected, float) and isinstance(actual, (int, float)) and not isinstance(actual, bool):
        return math.isclose(actual, expected, rel_tol=1e-6, abs_tol=1e-7)
    return actual == expected


def _actual(reader, key: str) -> Any:
    field = reader.get_field(key)
    return None if field is None else field.contents()


def check_metadata(path: Path, spec: MetadataSpec) -> list[Mismatch]:
    from gguf import GGUFReader  # start-up time: gguf imports numpy

    reader = GGUFReader(path)
    return [Mismatch(key, value, _actual(reader, key))
            for key, (_, value) in expected_fields(reader, spec).items()
            if not _same(_actual(reader, key), value)]


def fix_metadata(path: Path, spec: MetadataSpec) -> list[Mismatch]:
    """Rewrite `path` with the expected metadata if anything differs; returns what was fixed."""
    from gguf import GGUFReader, GGUFWriter, Keys  # start-up time: gguf imports numpy
    # start-up time: gguf imports numpy
    from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata

    mismatches = check_metadata(path, spec)
    if not mismatches:
        return []
    reader = GGUFReader(path)
    wanted = expected_fields(reader, spec)
    new = {m.key: MetadataDetails(*wanted[m.key]) for m in mismatches}
    with atomic_output(path) as partial:
        writer = GGUFWriter(partial, arch=_actual(reader, Keys.General.ARCHITECTURE),
                            endianess=reader.endianess)
        alignment = _actual(reader, Keys.General.ALIGNMENT)
        if alignment is not None:
            writer.data_alignment = alignment
        copy_with_new_metadata(reader, writer, new, remove_metadata=[])
    del reader
    left = check_metadata(path, spec)
    if left:
        raise MetadataError(f"metadata still wrong after rewrite: {', '.join(map(str, left))}")
    return mismatches


def read_summary(path: Path) -> dict[str, Any]:
    """The metadata a card or a reviewer cares about, as plain values."""
    from gguf import GGUFReader  # start-up time: gguf imports numpy

    reader = GGUFReader(path)
    keys = ("general.name", "general.license", "general.quantized_by", "general.base_model.0.repo_url",
            "general.file_type", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
            "tokenizer.ggml.padding_token_id", "quantize.imatrix.file", "quantize.imatrix.chunks_count")
    return {k: _actual(reader, k) for k in keys if reader.get_field(k) is not None}
