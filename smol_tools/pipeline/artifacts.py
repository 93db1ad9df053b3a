"""What the build knows about each GGUF it made: the rows of the summary, card and manifest."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class FileReport:
    name: str  # file name in the output folder
    kind: str  # BF16, F16, Q8_0, ...
    size: int | None = None
    bits_per_weight: float | None = None
    tensor_types: str = ""
    sha256: str | None = None
    verified: bool = False
    problems: list[str] = field(default_factory=list)
    fallbacks: list[str] = field(default_factory=list)  # "tensor: wanted -> used"
    imatrix: bool = False
    eval_score: str | None = None  # the card's cell when the build ran an eval (`--eval`)
    seconds: dict[str, float] = field(default_factory=dict)  # step -> seconds (this run)

    @property
    def publishable(self) -> bool:
        return self.verified and not self.problems

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
