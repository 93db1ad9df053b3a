"""Multi-token prediction: Qwen3.5 checkpoints may carry `mtp.*` tensors, which the converter
keeps as extra `nextn` blocks and llama.cpp can use for speculative decoding
(`llama-server --spec-type draft-mtp`). We report whether a build has them and, when it does,
measure greedy decoding speed with and without them on one prompt."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PROMPT = ("<|im_start|>user\nWrite a Python function that returns the n-th Fibonacci number, "
          "with a docstring and two doctests.<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")


@dataclass(frozen=True)
class MtpSpeed:
    baseline_tps: float
    mtp_tps: float

    @property
    def speedup(self) -> float:
        return self.mtp_tps / self.baseline_tps if self.baseline_tps else 0.0


def gguf_mtp_layers(path: Path) -> int:
    from gguf import GGUFReader

    reader = GGUFReader(path)
    arch = reader.get_field("general.architecture").contents()
    field = reader.get_field(f"{arch}.nextn_predict_layers")
    return int(field.contents()) if field is not None else 0


def _tokens_per_second(path: Path, extra_args: list[str], n_predict: int) -> float:
    from ..llama_server import LlamaServer

    with LlamaServer(path, extra_args=extra_args) as server:
        reply = server.post("/completion", {"prompt": PROMPT, "n_predict": n_predict,
                                            "temperature": 0.0, "cache_prompt": False}, timeout=600)
    return float(reply["timings"]["predicted_per_second"])


def measure_mtp_speedup(path: Path, n_predict: int = 256) -> MtpSpeed:
    """Greedy tokens/s through llama-server, plain vs. --spec-type draft-mtp."""
    return MtpSpeed(_tokens_per_second(path, [], n_predict),
                    _tokens_per_second(path, ["--spec-type", "draft-mtp"], n_predict))
