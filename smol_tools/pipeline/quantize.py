"""Quantize a GGUF with llama.cpp's quantizer through llama-cpp-python's `llama_model_quantize`."""

from __future__ import annotations

import ctypes
import os
import time
from dataclasses import dataclass
from pathlib import Path

from .atomic import atomic_output


class QuantizationError(RuntimeError):
    """llama.cpp's quantizer returned an error code."""


@dataclass(frozen=True)
class QuantizeResult:
    path: Path
    quant: str
    seconds: float
    size_bytes: int


def quant_types() -> dict[str, int]:
    """Quant names (Q8_0, Q4_K_M, IQ4_XS, ...) -> llama.cpp file-type ids, read from the bindings."""
    import llama_cpp  # start-up time: llama_cpp loads its native library

    prefix = "LLAMA_FTYPE_MOSTLY_"
    return {name[len(prefix):].upper(): getattr(llama_cpp, name)
            for name in dir(llama_cpp) if name.startswith(prefix)}


def hub_file_name(model_name: str, quant: str) -> str:
    """Hub convention: lower-case quant suffix, e.g. smol-tools-4b-32k-q4_k_m.gguf."""
    return f"{model_name}-{quant.lower()}.gguf"


def quantize_gguf(source: Path, out_file: Path, quant: str, *, imatrix: Path | None = None,
                  threads: int | None = None) -> QuantizeResult:
    import llama_cpp  # start-up time: llama_cpp loads its native library

    types = quant_types()
    key = quant.upper()
    if key not in types:
        raise QuantizationError(f"unknown quant type {quant!r}; known: {', '.join(sorted(types))}")
    if imatrix is not None:
        # The Python bindings expose no imatrix loader; imatrix quants go through llama-quantize.
        raise QuantizationError("imatrix quantization needs the llama-quantize program")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = types[key]
    params.nthread = threads or os.cpu_count() or 1
    started = time.monotonic()
    with atomic_output(out_file) as partial:
        code = llama_cpp.llama_model_quantize(str(source).encode(), str(partial).encode(),
                                              ctypes.byref(params))
        if code != 0:
            raise QuantizationError(f"llama_model_quantize({key}) failed with code {code} on {source}")
    return QuantizeResult(out_file, key, round(time.monotonic() - started, 2), out_file.stat().st_size)
