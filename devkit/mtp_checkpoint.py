"""A copy of the tiny model's checkpoint with a Qwen3.5 multi-token-prediction (MTP) head added.

Names and shapes follow what llama.cpp's converter expects (conversion/qwen.py, _QwenMtpMixin)
and what Qwen3.5 checkpoints on the Hub carry: one `mtp.layers.0.*` block shaped like a
full-attention decoder layer, plus `mtp.fc` (2*hidden -> hidden), `mtp.pre_fc_norm_embedding`,
`mtp.pre_fc_norm_hidden` and `mtp.norm`, with `mtp_num_hidden_layers: 1` in config.json.

The head's weights are random (seeded), not trained: this proves the packaging path runs on a
checkpoint with MTP tensors (convert keeps them, quantize carries them, llama-server
`--spec-type draft-mtp` loads and drafts with them). It proves no speed-up: a random draft head
is expected to be rejected almost always. The main model's tensors are copied unchanged, so its
greedy outputs (the scripted turns) must not change.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

# Bump when the added tensors change: the cached copy is keyed by it and the tiny model's hash.
MTP_HELPER_VERSION = 1
SEED = 1234


def mtp_tensor_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """HF names and (torch) shapes of a dense Qwen3.5 MTP head with one layer."""
    hidden, ff = config["hidden_size"], config["intermediate_size"]
    head_dim = config.get("head_dim") or hidden // config["num_attention_heads"]
    q_out = config["num_attention_heads"] * head_dim * 2  # Qwen3.5 q_proj carries the output gate
    kv_out = config["num_key_value_heads"] * head_dim
    layer = "mtp.layers.0."
    return {
        "mtp.fc.weight": (hidden, 2 * hidden),
        "mtp.pre_fc_norm_embedding.weight": (hidden,),
        "mtp.pre_fc_norm_hidden.weight": (hidden,),
        "mtp.norm.weight": (hidden,),
        layer + "input_layernorm.weight": (hidden,),
        layer + "post_attention_layernorm.weight": (hidden,),
        layer + "self_attn.q_proj.weight": (q_out, hidden),
        layer + "self_attn.k_proj.weight": (kv_out, hidden),
        layer + "self_attn.v_proj.weight": (kv_out, hidden),
        layer + "self_attn.o_proj.weight": (hidden, q_out // 2),
        layer + "self_attn.q_norm.weight": (head_dim,),
        layer + "self_attn.k_norm.weight": (head_dim,),
        layer + "mlp.gate_proj.weight": (ff, hidden),
        layer + "mlp.up_proj.weight": (ff, hidden),
        layer + "mlp.down_proj.weight": (hidden, ff),
    }


def build_mtp_checkpoint(source: Path, target: Path) -> Path:
    """Write `source` + a seeded random MTP head to `target` (a finished copy is reused)."""
    import torch
    from safetensors.torch import load_file, save_file

    if (target / "model.safetensors").exists():
        return target
    # Built under a staging name and renamed: a killed build never leaves a half checkpoint.
    staging = target.with_name(target.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for item in source.iterdir():
        if item.is_file() and item.name not in ("model.safetensors", "config.json"):
            shutil.copy2(item, staging / item.name)
    config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    # What Qwen3.5 configs carry; the converter sizes the appended nextn blocks from it.
    config["mtp_num_hidden_layers"] = 1
    config["mtp_use_dedicated_embeddings"] = False
    (staging / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")

    tensors = load_file(source / "model.safetensors")
    generator = torch.Generator().manual_seed(SEED)
    std = config.get("initializer_range", 0.02)
    for name, shape in mtp_tensor_shapes(config).items():
        if len(shape) == 1:
            # Qwen3.5 norms scale by (1 + w) (the converter adds the 1): zeros are unit norms.
            tensors[name] = torch.zeros(shape, dtype=torch.float32)
        else:
            tensors[name] = torch.randn(shape, generator=generator, dtype=torch.float32) * std
    save_file(tensors, staging / "model.safetensors", metadata={"format": "pt"})
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def ensure_mtp_checkpoint(tiny_model_path: Path) -> Path:
    """The MTP copy of the tiny model, cached per tiny-model hash and helper version."""
    from devkit.tiny_model import CACHE_ROOT

    target = CACHE_ROOT / "tiny-model-mtp" / f"{tiny_model_path.name}-v{MTP_HELPER_VERSION}"
    return build_mtp_checkpoint(tiny_model_path, target)
