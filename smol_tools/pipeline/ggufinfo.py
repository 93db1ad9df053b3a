"""What a GGUF holds, for the summary and the card: tensor types, bits per weight."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TensorStats:
    tensor_bytes: int
    n_params: int
    types: dict[str, int]  # ggml type name -> number of tensors

    @property
    def bits_per_weight(self) -> float:
        """As llama.cpp reports it: tensor data bits over parameter count (all tensors)."""
        return 8 * self.tensor_bytes / self.n_params if self.n_params else 0.0

    def types_text(self) -> str:
        return " ".join(f"{name}x{count}" for name, count in sorted(self.types.items(), key=lambda kv: -kv[1]))


def tensor_stats(path: Path) -> TensorStats:
    from gguf import GGUFReader  # start-up time: gguf imports numpy

    reader = GGUFReader(path)
    return TensorStats(sum(int(t.n_bytes) for t in reader.tensors),
                       sum(int(t.n_elements) for t in reader.tensors),
                       dict(Counter(t.tensor_type.name for t in reader.tensors)))
