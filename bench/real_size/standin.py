"""A random-weight stand-in of the real model: a `Qwen3_5ForCausalLM` checkpoint with Qwen3.5-4B's
configuration (bench/real_size/config.py), sharded BF16 safetensors, written tensor by tensor.

Memory: the model is never instantiated with storage. Its tensor names and shapes come from
transformers' `Qwen3_5ForCausalLM` built on the meta device (no memory), plus the MTP head the real
checkpoint carries (`mtp.*`, which transformers' text model does not define: names and shapes as
devkit/mtp_checkpoint.py and llama.cpp's converter know them). Each tensor is then generated in
row blocks of at most 64 MiB and written straight into its shard: the safetensors format is an
8-byte header length, a JSON header with every tensor's dtype, shape and byte range, then the raw
bytes; with the header computed up front from the shapes, no shard is ever held in memory (the
`safetensors` library's `save_file` would take a dict of whole tensors and copy each to bytes).
Peak RSS is one 64 MiB block plus the Python process.

Values follow the model's own initialisation (transformers' `_init_weights`): matrices N(0, 0.02),
the 1-centred RMSNorm weights 0, the gated norm 1, `dt_bias` 1, `A_log` = log U(0.01, 16); each
tensor is seeded by its name, so every file is reproducible whatever the shard layout.

Tokenizer: the tiny model's (tests/fixtures builds it), 708 tokens; config.json says 248,320 and
llama.cpp's converter pads the vocabulary with unused tokens up to it. Speed and memory depend on
the embedding's row count, not on what the tokens mean.

Cached under ~/.cache/smol-tools/real-size/<config hash>/ and built in a staging folder renamed
into place, with a `complete` marker written last: an interrupted build is never mistaken for one.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from smol_tools.llamacpp.source import CACHE_ROOT

from .config import SCALES, config_key, full_config

BUILDER_VERSION = 1
SHARD_BYTES = 2 * 2**30  # ~2 GiB shards: five for the real size, as Hub checkpoints are split
BLOCK_BYTES = 64 * 2**20  # generation block: bounds the builder's memory whatever the tensor
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")
MARKER = "complete"


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    init: str  # "normal", "zeros", "ones", "a_log"

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * 2  # bf16


def tensor_specs(config: dict[str, Any]) -> list[TensorSpec]:
    """Every tensor of the checkpoint, in the order transformers lists them, MTP head last."""
    import torch
    from transformers.models.qwen3_5 import Qwen3_5ForCausalLM, Qwen3_5TextConfig
    from transformers.models.qwen3_5.modeling_qwen3_5 import Qwen3_5RMSNorm, Qwen3_5RMSNormGated

    fields = {k: v for k, v in config.items() if k not in ("architectures", "model_type", "dtype")}
    with torch.device("meta"):
        model = Qwen3_5ForCausalLM(Qwen3_5TextConfig(**fields))
    inits: dict[str, str] = {}
    for module_name, module in model.named_modules():
        for param_name, _ in module.named_parameters(recurse=False):
            full = f"{module_name}.{param_name}" if module_name else param_name
            if isinstance(module, Qwen3_5RMSNorm):
                inits[full] = "zeros"
            elif isinstance(module, Qwen3_5RMSNormGated) or param_name == "dt_bias":
                inits[full] = "ones"
            elif param_name == "A_log":
                inits[full] = "a_log"
            else:
                inits[full] = "normal"
    specs = []
    for name, tensor in model.state_dict().items():
        if config["tie_word_embeddings"] and name == "lm_head.weight":
            continue  # tied: the published checkpoint has no separate output matrix
        specs.append(TensorSpec(name, tuple(tensor.shape), inits.get(name, "normal")))
    if config.get("mtp_num_hidden_layers"):
        from devkit.mtp_checkpoint import mtp_tensor_shapes

        for name, shape in mtp_tensor_shapes(config).items():
            specs.append(TensorSpec(name, tuple(shape), "zeros" if len(shape) == 1 else "normal"))
    return specs


def plan_shards(specs: list[TensorSpec], shard_bytes: int = SHARD_BYTES) -> list[list[TensorSpec]]:
    shards: list[list[TensorSpec]] = [[]]
    size = 0
    for spec in specs:
        if shards[-1] and size + spec.nbytes > shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(spec)
        size += spec.nbytes
    return shards


def _seed(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little") & (2**63 - 1)


def _blocks(spec: TensorSpec) -> Iterator[Any]:
    """The tensor's values as contiguous bf16 row blocks of at most BLOCK_BYTES."""
    import torch

    generator = torch.Generator().manual_seed(_seed(spec.name))
    rows = spec.shape[0]
    row_elems = math.prod(spec.shape[1:]) if len(spec.shape) > 1 else 1
    step = max(1, BLOCK_BYTES // (row_elems * 4))  # float32 while generating
    for start in range(0, rows, step):
        count = min(step, rows - start)
        shape = (count, *spec.shape[1:])
        if spec.init == "zeros":
            block = torch.zeros(shape)
        elif spec.init == "ones":
            block = torch.ones(shape)
        elif spec.init == "a_log":
            block = torch.empty(shape).uniform_(0.01, 16, generator=generator).log_()
        else:
            block = torch.empty(shape).normal_(0.0, 0.02, generator=generator)
        yield block.to(torch.bfloat16).contiguous()


def write_shard(path: Path, specs: list[TensorSpec]) -> int:
    """Write one safetensors file block by block; returns its size in bytes."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for spec in specs:
        header[spec.name] = {"dtype": "BF16", "shape": list(spec.shape), "data_offsets": [offset, offset + spec.nbytes]}
        offset += spec.nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # the format aligns the data start to 8 bytes
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(blob)))
        out.write(blob)
        for spec in specs:
            written = 0
            for block in _blocks(spec):
                data = block.view(-1).view(dtype=__import__("torch").uint8).numpy()  # no copy
                out.write(memoryview(data))
                written += data.nbytes
            if written != spec.nbytes:
                raise AssertionError(f"{spec.name}: wrote {written} bytes, expected {spec.nbytes}")
        out.flush()
        os.fsync(out.fileno())
    return 8 + len(blob) + offset


@dataclass(frozen=True)
class StandIn:
    path: Path
    config: dict[str, Any]
    n_params: int
    size_bytes: int
    build: dict[str, Any]  # how long the build took and what it used (from the marker file)


def standin_folder(config: dict[str, Any]) -> Path:
    return CACHE_ROOT / "real-size" / config_key(config, BUILDER_VERSION)


def _tiny_tokenizer() -> tuple[Path, dict[str, Any]]:
    from devkit.tiny_model import ensure_tiny_model

    tiny = ensure_tiny_model().path
    return tiny, json.loads((tiny / "config.json").read_text())


def ensure_standin(scale: str | dict[str, Any] = "real", log: Callable[[str], None] = print,
                   shard_bytes: int = SHARD_BYTES) -> StandIn:
    """The cached stand-in for `scale` ("real", "tiny" or explicit dimensions), built on first use."""
    tiny, tiny_config = _tiny_tokenizer()
    config = full_config(scale, tiny_config)
    folder = standin_folder(config)
    marker = folder / MARKER
    if not marker.exists():
        _build(folder, config, tiny, log, shard_bytes)
    build = json.loads(marker.read_text())
    return StandIn(folder, config, build["n_params"], build["size_bytes"], build)


def _build(folder: Path, config: dict[str, Any], tiny: Path, log: Callable[[str], None], shard_bytes: int) -> None:
    import resource

    started, cpu0 = time.monotonic(), time.process_time()
    specs = tensor_specs(config)
    shards = plan_shards(specs, shard_bytes)
    n_params = sum(math.prod(s.shape) for s in specs)
    log(f"building a {n_params / 1e9:.2f} B-parameter stand-in in {len(shards)} shard(s) under {folder}")
    staging = folder.with_name(folder.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)  # what an interrupted build left
    staging.mkdir(parents=True)
    weight_map: dict[str, str] = {}
    total = 0
    for index, shard in enumerate(shards, start=1):
        name = f"model-{index:05d}-of-{len(shards):05d}.safetensors"
        total += write_shard(staging / name, shard)
        weight_map.update({spec.name: name for spec in shard})
        log(f"  {name}: {len(shard)} tensors, {time.monotonic() - started:.0f} s")
    (staging / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": sum(s.nbytes for s in specs)}, "weight_map": weight_map}, indent=1))
    (staging / "config.json").write_text(json.dumps(config, indent=2))
    for name in TOKENIZER_FILES:
        if (tiny / name).exists():
            shutil.copy2(tiny / name, staging / name)
    (staging / "generation_config.json").write_text(json.dumps({"eos_token_id": config["eos_token_id"]}))
    if folder.exists():
        shutil.rmtree(folder)
    staging.rename(folder)
    build = {"n_params": n_params, "size_bytes": total, "shards": len(shards), "tensors": len(specs),
             "build_seconds": round(time.monotonic() - started, 2),
             "build_cpu_seconds": round(time.process_time() - cpu0, 2),
             "build_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
             "load_average_at_end": list(os.getloadavg()), "niceness": os.nice(0),
             "builder_version": BUILDER_VERSION}
    partial = folder / (MARKER + ".partial")
    partial.write_text(json.dumps(build, indent=1))
    partial.rename(folder / MARKER)  # last: the folder is complete only once this exists


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.real_size.standin", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="real")
    args = parser.parse_args(argv)
    standin = ensure_standin(args.scale)
    print(json.dumps({"path": str(standin.path), **standin.build}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
