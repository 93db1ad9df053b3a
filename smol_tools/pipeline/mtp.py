"""Multi-token prediction: Qwen3.5 checkpoints may carry `mtp.*` tensors, which the converter
keeps as extra `nextn` blocks and llama.cpp can use for speculative decoding
(`llama-server --spec-type draft-mtp`). We report whether a build has them and, when it does,
measure greedy decoding speed with and without them on one prompt."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..llamacpp.server import LlamaServer

PROMPT = ("<|im_start|>user\nWrite a Python function that returns the n-th Fibonacci number, "
          "with a docstring and two doctests.<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")


@dataclass(frozen=True)
class MtpSpeed:
    baseline_tps: float
    mtp_tps: float
    draft_n: int = 0  # tokens the MTP head proposed (llama-server timings.draft_n)
    draft_accepted: int = 0  # of those, accepted by the main model

    @property
    def speedup(self) -> float:
        return self.mtp_tps / self.baseline_tps if self.baseline_tps else 0.0

    @property
    def acceptance(self) -> float:
        return self.draft_accepted / self.draft_n if self.draft_n else 0.0


def gguf_mtp_layers(path: Path) -> int:
    from gguf import GGUFReader  # start-up time: gguf imports numpy

    reader = GGUFReader(path)
    arch = reader.get_field("general.architecture").contents()
    field = reader.get_field(f"{arch}.nextn_predict_layers")
    return int(field.contents()) if field is not None else 0


def _timings(path: Path, extra_args: list[str], n_predict: int,
             threads: int | None = None) -> dict[str, Any]:
    with LlamaServer(path, extra_args=extra_args, threads=threads) as server:
        # ignore_eos: both runs decode exactly n_predict tokens, so the rates compare like for
        # like even when the model would stop after a few tokens (the tiny test model does).
        reply = server.post("/completion", {"prompt": PROMPT, "n_predict": n_predict, "ignore_eos": True,
                                            "temperature": 0.0, "cache_prompt": False}, timeout=600)
    return reply["timings"]


def _tokens_per_second(path: Path, extra_args: list[str], n_predict: int,
                       threads: int | None = None) -> float:
    return float(_timings(path, extra_args, n_predict, threads)["predicted_per_second"])


def measure_mtp_speedup(path: Path, n_predict: int = 256, threads: int | None = None) -> MtpSpeed:
    """Greedy tokens/s through llama-server, plain vs. --spec-type draft-mtp, with the draft
    acceptance llama-server reports for the MTP run."""
    plain = _timings(path, [], n_predict, threads)
    mtp = _timings(path, ["--spec-type", "draft-mtp"], n_predict, threads)
    if "draft_n" not in mtp:  # the server ignored the flag: no draft ran, nothing was measured
        raise RuntimeError("llama-server reported no draft tokens with --spec-type draft-mtp")
    return MtpSpeed(float(plain["predicted_per_second"]), float(mtp["predicted_per_second"]),
                    int(mtp["draft_n"]), int(mtp.get("draft_n_accepted", 0)))
