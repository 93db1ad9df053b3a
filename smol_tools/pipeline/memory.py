"""Memory needed to run a GGUF, computed from its metadata the way llama.cpp allocates it:

  weights            sum of the tensor data in the file
  KV cache           full-attention layers only: n_ctx x n_head_kv x (key_len + value_len) x 2 B (f16)
  recurrent state    linear-attention layers only, independent of context (per sequence):
                     conv (d_conv - 1) x (d_inner + 2 x n_group x d_state) + ssm d_state x d_inner, f32
  compute buffer     llama.cpp's scratch for one 512-token batch: the batch's logits over the
                     vocabulary (f32), the attention mask over the context (f16), activations
                     (approximated as n_embd + n_ff floats per token)

(llama_hparams::n_embd_r / n_embd_s in llama.cpp). `check_against_llama_cpp` loads the file
with llama-cpp-python and compares weights, KV cache and recurrent state with the buffer sizes
llama.cpp logs, to the rounding of its log. The compute buffer is an approximation of what
llama.cpp's graph allocator reserves (with flash attention, as our runtimes use it): for the 4B
stand-in, 512 / 524 / 540 MiB at 4K / 16K / 32K against llama.cpp's 504 / 500 / 527; it is
what the first full batch touches, and a filled context's resident memory includes it (issue 21:
without it the table read 0.70 of the measured RSS at 32K).

`python -m smol_tools.pipeline.memory FILE CTX...` prints llama.cpp's own log for each CTX.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .children import die_with_parent

MIB = 1024 * 1024
KV_BYTES = 2  # llama.cpp's default cache type is f16 for K and V
STATE_BYTES = 4  # recurrent states are f32
N_UBATCH = 512  # llama.cpp's default micro-batch: our runtimes keep it


@dataclass(frozen=True)
class ModelShape:
    arch: str
    n_layer: int
    full_layers: tuple[int, ...]
    recurrent_layers: tuple[int, ...]
    n_head_kv: tuple[int, ...]  # per layer
    key_length: int
    value_length: int
    conv_kernel: int
    state_size: int
    group_count: int
    inner_size: int
    weights_bytes: int  # excluding MTP layers
    n_params: int
    mtp_layers: tuple[int, ...] = ()  # Qwen3.5 multi-token prediction: appended blocks
    mtp_bytes: int = 0  # loaded only for speculative decoding (--spec-type draft-mtp)
    n_vocab: int = 0  # rows of token_embd (0: unknown, no logits term)
    n_embd: int = 0
    n_ff: int = 0


def read_shape(path: Path) -> ModelShape:
    """The shape the memory figures need, from the GGUF header alone (gguf_header: gguf's
    GGUFReader parses the whole 248k-token vocabulary first, ~10 s per file at real size)."""
    from ..gguf_header import read_header  # start-up time: only the memory figures read headers

    header = read_header(path)
    arch = header.get("general.architecture")
    get = lambda name, default=None: header.get(f"{arch}.{name}", default)  # noqa: E731
    n_layer = int(get("block_count"))
    recurrent = get("attention.recurrent_layers")
    if recurrent is None:  # older files: every `interval`-th layer is full attention
        interval = int(get("full_attention_interval", 1) or 1)
        recurrent = [(i + 1) % interval != 0 for i in range(n_layer)]
    heads = get("attention.head_count_kv", get("attention.head_count"))
    heads = list(heads) if isinstance(heads, list) else [heads] * n_layer
    # The converter appends MTP blocks after the main ones (block_count includes them).
    n_mtp = int(get("nextn_predict_layers", 0) or 0)
    main = range(n_layer - n_mtp)
    mtp_prefixes = tuple(f"blk.{i}." for i in range(n_layer - n_mtp, n_layer))
    mtp_bytes = sum(t.n_bytes for t in header.tensors if mtp_prefixes and t.name.startswith(mtp_prefixes))
    embedding = next((t for t in header.tensors if t.name == "token_embd.weight"), None)
    n_ff = get("feed_forward_length", 0) or 0
    return ModelShape(
        arch=arch, n_layer=n_layer,
        full_layers=tuple(i for i in main if not recurrent[i]),
        recurrent_layers=tuple(i for i in main if recurrent[i]),
        n_head_kv=tuple(int(h) for h in heads),
        key_length=int(get("attention.key_length")), value_length=int(get("attention.value_length")),
        conv_kernel=int(get("ssm.conv_kernel", 0)), state_size=int(get("ssm.state_size", 0)),
        group_count=int(get("ssm.group_count", 0)), inner_size=int(get("ssm.inner_size", 0)),
        weights_bytes=sum(t.n_bytes for t in header.tensors) - mtp_bytes,
        n_params=sum(t.n_elements for t in header.tensors),
        mtp_layers=tuple(range(n_layer - n_mtp, n_layer)), mtp_bytes=mtp_bytes,
        n_vocab=int(embedding.shape[1]) if embedding and len(embedding.shape) > 1 else 0,
        n_embd=int(get("embedding_length", 0) or 0),
        n_ff=int(max(n_ff) if isinstance(n_ff, list) else n_ff),  # per-layer lists: the widest
    )


def kv_cache_bytes(shape: ModelShape, n_ctx: int) -> int:
    return sum(n_ctx * shape.n_head_kv[i] * (shape.key_length + shape.value_length) * KV_BYTES
               for i in shape.full_layers)


def recurrent_state_bytes(shape: ModelShape, n_seq: int = 1) -> int:
    conv = max(shape.conv_kernel - 1, 0) * (shape.inner_size + 2 * shape.group_count * shape.state_size)
    ssm = shape.state_size * shape.inner_size
    return len(shape.recurrent_layers) * (conv + ssm) * STATE_BYTES * n_seq


def compute_buffer_bytes(shape: ModelShape, n_ctx: int, n_ubatch: int = N_UBATCH) -> int:
    """llama.cpp's scratch for one batch, approximately: logits (f32) + attention mask (f16) +
    activations (see the module docstring for how close it comes)."""
    return n_ubatch * (shape.n_vocab * 4 + n_ctx * 2 + (shape.n_embd + shape.n_ff) * 4)


@dataclass(frozen=True)
class MemoryEstimate:
    n_ctx: int
    weights: int
    kv_cache: int
    recurrent: int
    compute: int = 0

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.recurrent + self.compute


def estimate(shape: ModelShape, n_ctx: int) -> MemoryEstimate:
    return MemoryEstimate(n_ctx, shape.weights_bytes, kv_cache_bytes(shape, n_ctx),
                          recurrent_state_bytes(shape), compute_buffer_bytes(shape, n_ctx))


def _gib(n: int) -> str:
    return f"{n / 1024**3:.2f} GiB" if n >= 1024**3 / 10 else f"{n / MIB:.1f} MiB"


def memory_table_markdown(rows: Sequence[tuple[str, ModelShape]], contexts: Sequence[int]) -> str:
    """One row per file: weights, then total RAM/VRAM at each context length."""
    if not rows:
        return ""
    shape0 = rows[0][1]
    head = ["File", "Weights"] + [f"Total @ {c // 1024}K ctx" for c in contexts]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, shape in rows:
        cells = [f"`{name}`", _gib(shape.weights_bytes)] + [_gib(estimate(shape, c).total) for c in contexts]
        lines.append("| " + " | ".join(cells) + " |")
    kv = ", ".join(f"{_gib(kv_cache_bytes(shape0, c))} @ {c // 1024}K" for c in contexts)
    compute = ", ".join(f"{_gib(compute_buffer_bytes(shape0, c))} @ {c // 1024}K" for c in contexts)
    lines += ["", f"Total = weights + KV cache of the {len(shape0.full_layers)} full-attention layers "
              f"(f16: {kv}) + recurrent state of the {len(shape0.recurrent_layers)} linear-attention "
              f"layers ({_gib(recurrent_state_bytes(shape0))}, the same at any context) + llama.cpp's "
              f"compute buffer for a {N_UBATCH}-token batch (approximated: {compute}; mostly the batch's "
              f"logits over the {shape0.n_vocab:,}-token vocabulary), for one sequence. The runtime's own "
              "process (Python, libraries) comes on top; `-ctk q8_0 -ctv q8_0` roughly halves the KV cache."]
    if shape0.mtp_bytes:
        lines.append(f"The {len(shape0.mtp_layers)} MTP layer(s) add {_gib(shape0.mtp_bytes)} of weights "
                     "(and their own KV cache) only when speculative decoding uses them.")
    return "\n".join(lines)


# ---- the check against llama.cpp -------------------------------------------------------------

_REPORT_PATTERNS = {
    "weights": re.compile(r"load_tensors:\s+\S+ model buffer size =\s+([\d.]+) MiB"),
    "kv_cache": re.compile(r"llama_kv_cache: size =\s+([\d.]+) MiB"),
    "recurrent": re.compile(r"llama_memory_recurrent: size =\s+([\d.]+) MiB"),
    "compute": re.compile(r"sched_reserve:\s+\S+ compute buffer size =\s+([\d.]+) MiB"),
}
# The compute buffer is approximated: close means within this many MiB or 10 %, whichever is more.
COMPUTE_SLACK_MIB = 4.0
_MARK = "=== smol-tools memory report n_ctx="


def parse_llama_log(log: str) -> dict[str, float]:
    """MiB that llama.cpp says it allocated (model buffers summed: CPU + CPU_REPACK ...), and per
    figure how many rounded numbers were summed (`<key>_figures`): each is off by up to 0.005 MiB."""
    found = {key: [float(v) for v in pattern.findall(log)] for key, pattern in _REPORT_PATTERNS.items()}
    return {**{key: round(sum(values), 2) for key, values in found.items()},
            **{f"{key}_figures": len(values) for key, values in found.items()}}


def llama_cpp_reports(path: Path, contexts: Sequence[int], timeout: float = 600) -> dict[int, dict[str, float]]:
    """Load `path` once per context in a child process and parse llama.cpp's log."""
    cmd = [sys.executable, "-m", "smol_tools.pipeline.memory", str(path), *map(str, contexts)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                            preexec_fn=die_with_parent)  # dies with a killed pipeline
    if result.returncode != 0:
        raise RuntimeError(f"loading {path.name} for the memory check failed:\n{result.stderr[-2000:]}")
    sections = result.stderr.split(_MARK)[1:]
    return {int(s.split("\n", 1)[0]): parse_llama_log(s) for s in sections}


@dataclass(frozen=True)
class MemoryCheck:
    n_ctx: int
    ours_mib: dict[str, float]  # the exact figures: weights, KV cache, recurrent state
    llama_cpp_mib: dict[str, float]
    compute_ours_mib: float = 0.0  # the approximated one, compared loosely (compute_close)

    @property
    def ok(self) -> bool:
        # llama.cpp prints MiB with two decimals: agree to within its rounding, once per number
        # summed (a K-quant file has a CPU and a CPU_REPACK weights buffer: up to 0.01 MiB off).
        return all(abs(self.ours_mib[k] - self.llama_cpp_mib[k])
                   <= 0.0051 * max(1, int(self.llama_cpp_mib.get(f"{k}_figures", 1))) for k in self.ours_mib)

    @property
    def compute_close(self) -> bool:
        theirs = self.llama_cpp_mib.get("compute", 0.0)
        return abs(self.compute_ours_mib - theirs) <= max(COMPUTE_SLACK_MIB, 0.1 * theirs)


def check_against_llama_cpp(path: Path, contexts: Sequence[int]) -> list[MemoryCheck]:
    shape = read_shape(path)
    reported = llama_cpp_reports(path, contexts)
    checks = []
    for n_ctx in contexts:
        est = estimate(shape, n_ctx)
        ours = {"weights": est.weights / MIB, "kv_cache": est.kv_cache / MIB, "recurrent": est.recurrent / MIB}
        checks.append(MemoryCheck(n_ctx, ours, reported.get(n_ctx, {}), est.compute / MIB))
    return checks


def _report_main(argv: list[str]) -> None:
    from llama_cpp import Llama  # start-up time: llama_cpp loads its native library

    path = argv[0]
    for n_ctx in map(int, argv[1:]):
        print(f"{_MARK}{n_ctx}", file=sys.stderr, flush=True)
        # No mmap: llama.cpp then reports every weight buffer it allocates (incl. repacked ones).
        # Flash attention and the 512-token batch, as our runtimes run (its compute buffer).
        llm = Llama(model_path=path, n_ctx=n_ctx, n_threads=1, n_batch=N_UBATCH, use_mmap=False,
                    flash_attn=True, verbose=True)
        llm.close()


if __name__ == "__main__":
    _report_main(sys.argv[1:])
