"""A twin of the tiny model that computes like a bigger one and answers exactly like the tiny one.

The overhead benchmark divides the agent's wall time by raw llama-cpp-python's on the same
tokens. On the 3M-parameter tiny model a token costs ~0.3 ms, so the agent's fixed
per-round Python work (render, tokenize the suffix, parse, validate, run the tool) weighs as if
the model were free. The real 4B model costs 20-100 ms a token on CPU. This twin gives the same
session a realistic per-token cost without changing one output token:

every MLP is widened from 512 to `intermediate` units; the new units' `gate_proj`/`up_proj`
rows are random and their `down_proj` columns are zero, so they add exactly 0.0 to the residual
stream (Q8_0 stores a zero block as scale 0). The original weights are untouched, so the twin
decodes the tiny model's scripted tool sessions token for token; the benchmark checks it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from devkit.tiny_model import CACHE_ROOT, ensure_tiny_model

DEFAULT_INTERMEDIATE = 16384  # ~50M MLP weights: a few ms a token on one core


def ensure_heavy_twin(intermediate: int = DEFAULT_INTERMEDIATE, quant: str = "Q8_0") -> Path:
    """Build (once, cached beside the tiny GGUFs) and return the twin's GGUF."""
    from smol_tools.pipeline.convert import convert_to_gguf
    from smol_tools.pipeline.quantize import quantize_gguf

    tiny = ensure_tiny_model().path
    folder = CACHE_ROOT / "bench" / f"heavy-twin-{tiny.name}-i{intermediate}"
    target = folder / f"heavy-twin-{quant.lower()}.gguf"
    if target.exists():
        return target
    checkpoint = folder / "checkpoint"
    f16 = folder / "heavy-twin-f16.gguf"  # converter and quantizer write atomically: existing = complete
    if not f16.exists():
        shutil.rmtree(checkpoint, ignore_errors=True)  # whatever an interrupted build left
        checkpoint.mkdir(parents=True)
        _write_widened_checkpoint(tiny, checkpoint, intermediate)
        convert_to_gguf(checkpoint, f16, outtype="f16", declare_pre="qwen35")  # as the tiny GGUFs are
    quantize_gguf(f16, target, quant)
    shutil.rmtree(checkpoint, ignore_errors=True)
    return target


def _write_widened_checkpoint(tiny: Path, out: Path, intermediate: int) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    config = json.loads((tiny / "config.json").read_text())
    old = config["intermediate_size"]
    if intermediate <= old:
        raise ValueError(f"intermediate {intermediate} must exceed the tiny model's {old}")
    generator = torch.Generator().manual_seed(0)
    tensors = load_file(str(tiny / "model.safetensors"))
    for name in list(tensors):
        weight = tensors[name]
        if name.endswith(("mlp.gate_proj.weight", "mlp.up_proj.weight")):
            extra = torch.randn((intermediate - old, weight.shape[1]), generator=generator, dtype=weight.dtype)
            tensors[name] = torch.cat([weight, 0.02 * extra]).contiguous()
        elif name.endswith("mlp.down_proj.weight"):
            zeros = torch.zeros((weight.shape[0], intermediate - old), dtype=weight.dtype)
            tensors[name] = torch.cat([weight, zeros], dim=1).contiguous()
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    config["intermediate_size"] = intermediate
    (out / "config.json").write_text(json.dumps(config, indent=2))
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json"):
        if (tiny / name).exists():
            shutil.copy2(tiny / name, out / name)
