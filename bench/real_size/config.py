"""The configuration of the real model (Qwen3.5-4B, which smol-tools-4b-32k fine-tunes) and the
scaled-down configurations the harness tests itself with.

Where the numbers come from (public material found with the search tools; Qwen/Qwen3.5-4B's own
repository is not in the stored index, so its config.json was read through copies and cards):

- huggingface.co/halen214/st01/blob/main/config.json: a text-only `Qwen3_5ForCausalLM`
  extraction of the 4B model: hidden 2560, intermediate 9216, 32 layers in the order
  8 × (3 × linear_attention, 1 × full_attention), head_dim 256, attn_output_gate,
  linear_conv_kernel_dim 4, linear key heads 16 and value heads 32 of dimension 128,
  mamba_ssm_dtype float32, max_position_embeddings 262144, mtp_num_hidden_layers present.
- A Swift test carrying the 4B `text_config` verbatim (find_string id 58388726437,
  `testUnsupportedQwen35DeltaNetConfigIsRejectedBeforeGeneration`): the same sizes plus
  num_attention_heads 16, num_key_value_heads 4, vocab_size 248320, rope_theta 10,000,000,
  partial_rotary_factor 0.25, eos_token_id 248044, tie_word_embeddings true.
- Model cards of Qwen3.5-4B derivatives (huggingface.co/kshitijthakkar/qwen3.5-moe-4.7B-d4B
  README: "GQA 16Q / 4KV, head_dim=256", vocab 248,320, 32 layers; huggingface.co/FreedomAISVR/
  Qwen3.5-4B-Instruct-MTP-NVFP4-GGUF: "MTP layers 1 (nextn)", full_attention_interval 4) and
  Qwen's Qwen3.5 cards ("Token Embedding: 248320 (Padded)").
- transformers 5.24 `Qwen3_5TextConfig()` defaults agree on everything but hidden 4096 /
  intermediate 12288 (its defaults describe a bigger sibling) and tie_word_embeddings False.

Reconciled with bench/bench_checkpoints.py::_real_4b_shape (32 layers, 24 Gated DeltaNet with 32
value heads and 16 query/key heads of 128, conv 4, full attention every 4th layer, 4 KV heads of
256): the same. What that shape did not need and this one adds: hidden 2560, intermediate 9216,
16 query heads, vocab 248320, tied embeddings, one MTP layer.

Deliberate differences from the published checkpoint, none of which changes a weight tensor the
GGUF keeps: it is the text model only (`Qwen3_5ForCausalLM`, no vision tower: a GGUF of the text
model has none either; the vision encoder is a separate mmproj file); max_position_embeddings is
32768, the context smol-tools-4b-32k is fine-tuned for (the base says 262144; only a metadata key);
token ids are the tiny tokenizer's (its 708 tokens, padded to 248,320 rows by the converter).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

SOURCES = (
    "huggingface.co/halen214/st01/blob/main/config.json (Qwen3_5ForCausalLM text extraction of the 4B)",
    "find_string id 58388726437: Swift test carrying Qwen3.5-4B's text_config (heads, vocab, tie, rope)",
    "huggingface.co/kshitijthakkar/qwen3.5-moe-4.7B-d4B README (GQA 16Q/4KV, head_dim 256, vocab 248,320)",
    "huggingface.co/FreedomAISVR/Qwen3.5-4B-Instruct-MTP-NVFP4-GGUF (MTP layers 1)",
    "transformers 5.24 Qwen3_5TextConfig defaults (layer order, linear-attention sizes)",
)


def _layer_types(n_layer: int, interval: int = 4) -> list[str]:
    return ["full_attention" if (i + 1) % interval == 0 else "linear_attention" for i in range(n_layer)]


# Qwen3.5-4B's language model, as published (see the module docstring for each number's source).
REAL: dict[str, Any] = {
    "hidden_size": 2560, "intermediate_size": 9216, "num_hidden_layers": 32,
    "num_attention_heads": 16, "num_key_value_heads": 4, "head_dim": 256,
    "linear_num_key_heads": 16, "linear_key_head_dim": 128,
    "linear_num_value_heads": 32, "linear_value_head_dim": 128, "linear_conv_kernel_dim": 4,
    "vocab_size": 248320, "tie_word_embeddings": True, "mtp_num_hidden_layers": 1,
    "rope_parameters": {"rope_type": "default", "rope_theta": 10000000.0, "partial_rotary_factor": 0.25,
                        "mrope_interleaved": True, "mrope_section": [11, 11, 10]},
    "max_position_embeddings": 32768, "rms_norm_eps": 1e-06,
}

# The harness's own test size: the same architecture and options (tied embeddings, a vocab padded
# beyond the tokenizer), every matrix a multiple of 256 wide so K-quants apply, a few MB. No MTP
# head: with one, the pipeline times speculative decoding with llama-server (~100 s here), which
# tests/test_mtp.py covers; the builder's test builds TINY with an MTP head (TINY_MTP).
TINY: dict[str, Any] = {
    **REAL, "mtp_num_hidden_layers": 0,
    "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 4,
    "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 128,
    "linear_num_key_heads": 2, "linear_key_head_dim": 64,
    "linear_num_value_heads": 4, "linear_value_head_dim": 64, "vocab_size": 1024,
    "rope_parameters": {**REAL["rope_parameters"], "mrope_section": [6, 5, 5]},
}

TINY_MTP: dict[str, Any] = {**TINY, "mtp_num_hidden_layers": 1}

SCALES = {"real": REAL, "tiny": TINY}


def full_config(scale_or_dims: str | dict[str, Any], tokenizer_config: dict[str, Any]) -> dict[str, Any]:
    """config.json of the stand-in: the dimensions plus the tiny tokenizer's special ids."""
    dims = dict(SCALES[scale_or_dims] if isinstance(scale_or_dims, str) else scale_or_dims)
    n_layer = dims["num_hidden_layers"]
    return {
        "architectures": ["Qwen3_5ForCausalLM"], "model_type": "qwen3_5_text",
        **dims,
        "layer_types": _layer_types(n_layer), "full_attention_interval": 4,
        "attention_bias": False, "attention_dropout": 0.0, "hidden_act": "silu",
        "initializer_range": 0.02, "use_cache": True, "dtype": "bfloat16",
        "bos_token_id": None, "eos_token_id": tokenizer_config["eos_token_id"],
        "pad_token_id": tokenizer_config.get("pad_token_id"),
    }


def config_key(config: dict[str, Any], builder_version: int) -> str:
    blob = json.dumps({"config": config, "builder": builder_version}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
