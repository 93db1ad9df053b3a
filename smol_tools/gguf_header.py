"""Read a GGUF file's header (key/values and tensor infos) without touching tensor data.

gguf's own `GGUFReader` parses every array element into numpy views up front: on a real
Qwen3.5 vocabulary (248k tokens, 247k merges) that takes about 17 s on this project's CI
machine, before a single question is answered. `doctor` must answer in well under a second,
so this module walks the header once with `struct` over a memory map: scalars and the token
list are decoded, other arrays are skipped (their span is kept), and every key/value record
and the tensor-info block keep their byte spans so `retemplate` can copy them verbatim.
The value types and constants are gguf's own (`gguf.GGUFValueType`, `GGML_QUANT_SIZES`).

`read_header_bytes` walks the same way over the first bytes of a file fetched from elsewhere
(`gguf_remote` reads a Hub file's header with HTTP range requests): it is told the real file size
separately, so the checks against the file's end still hold, and it says when the bytes it has
end before the header does (`GGUFHeaderIncomplete`), so the caller can fetch more."""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Only the token list is decoded in full: doctor needs the ids of the stop tokens.
DECODED_ARRAYS = frozenset({"tokenizer.ggml.tokens"})
# Numeric arrays up to this length are decoded: per-layer ones (head counts, which layers are
# recurrent, rope sections) always are; per-token ones (token types, scores: 248k) are not.
SMALL_ARRAY = 4096

_SCALAR_FORMATS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?",
                   10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9


class GGUFHeaderError(ValueError):
    """The file is not a GGUF we can read (wrong magic, unsupported version, truncated)."""


class GGUFHeaderIncomplete(GGUFHeaderError):
    """`read_header_bytes` was given fewer bytes than the header takes: fetch more and retry."""


@dataclass(frozen=True)
class SkippedArray:
    """An array the header walk did not decode (large, and nobody asked for it)."""

    item_type: int
    count: int

    def __repr__(self) -> str:
        return f"<array of {self.count} x type {self.item_type}>"


@dataclass(frozen=True)
class KVRecord:
    key: str
    value_type: int  # gguf.GGUFValueType
    value: Any
    start: int  # byte span of the whole record (key, type, value) in the file
    end: int


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]  # ggml order (ne0 first)
    ggml_type: int  # gguf.GGMLQuantizationType
    offset: int  # relative to the start of the data section

    @property
    def n_elements(self) -> int:
        n = 1
        for dim in self.shape:
            n *= dim
        return n

    @property
    def n_bytes(self) -> int:
        from gguf import GGML_QUANT_SIZES, GGMLQuantizationType  # start-up time: gguf imports numpy

        block, size = GGML_QUANT_SIZES[GGMLQuantizationType(self.ggml_type)]
        return self.n_elements // block * size


@dataclass
class GGUFHeader:
    path: Path
    version: int
    byte_order: str  # struct prefix: "<" little-endian, ">" big-endian
    records: dict[str, KVRecord]
    tensors: list[TensorInfo]
    kv_start: int  # first key/value record
    tensor_info_start: int  # == end of the last key/value record
    tensor_info_end: int
    alignment: int
    data_start: int
    file_size: int
    tokens: list[str] | None = field(default=None, repr=False)

    def get(self, key: str, default: Any = None) -> Any:
        record = self.records.get(key)
        return default if record is None else record.value

    def token_id(self, text: str) -> int | None:
        if self.tokens is None:
            return None
        try:
            return self.tokens.index(text)
        except ValueError:
            return None

    def token_text(self, token_id: int | None) -> str | None:
        if self.tokens is None or token_id is None or not 0 <= token_id < len(self.tokens):
            return None
        return self.tokens[token_id]


class _Cursor:
    def __init__(self, buf: mmap.mmap | bytes, byte_order: str, pos: int) -> None:
        self.buf, self.order, self.pos = buf, byte_order, pos

    def scalar(self, fmt: str) -> Any:
        value, = struct.unpack_from(self.order + fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        n = self.scalar("Q")
        raw = self.buf[self.pos: self.pos + n]
        if len(raw) != n:
            raise struct.error("string runs past the end of the file")
        self.pos += n
        return raw.decode("utf-8", errors="replace")

    def skip_strings(self, count: int) -> None:
        fmt, buf, pos = self.order + "Q", self.buf, self.pos
        unpack = struct.Struct(fmt).unpack_from
        for _ in range(count):  # each string is its u64 length then its bytes
            pos += 8 + unpack(buf, pos)[0]
        self.pos = pos

    def strings(self, count: int) -> list[str]:
        unpack = struct.Struct(self.order + "Q").unpack_from
        buf, pos, out = self.buf, self.pos, []
        for _ in range(count):
            n = unpack(buf, pos)[0]
            out.append(buf[pos + 8: pos + 8 + n].decode("utf-8", errors="replace"))
            pos += 8 + n
        self.pos = pos
        return out

    def value(self, value_type: int, key: str) -> Any:
        if value_type == _STRING:
            return self.string()
        if value_type in _SCALAR_FORMATS:
            return self.scalar(_SCALAR_FORMATS[value_type])
        if value_type != _ARRAY:
            raise GGUFHeaderError(f"unknown value type {value_type} for key {key!r}")
        item_type, count = self.scalar("I"), self.scalar("Q")
        if item_type == _STRING:
            if key in DECODED_ARRAYS:
                return self.strings(count)
            self.skip_strings(count)
            return SkippedArray(item_type, count)
        if item_type not in _SCALAR_FORMATS:
            raise GGUFHeaderError(f"array {key!r} holds unsupported type {item_type}")
        fmt = _SCALAR_FORMATS[item_type]
        if count <= SMALL_ARRAY or key in DECODED_ARRAYS:
            values = list(struct.unpack_from(f"{self.order}{count}{fmt}", self.buf, self.pos))
            self.pos += count * struct.calcsize(fmt)
            return values
        self.pos += count * struct.calcsize(fmt)
        return SkippedArray(item_type, count)


def _byte_order(buf: mmap.mmap | bytes, path: Path) -> tuple[str, int]:
    if buf[:4] != b"GGUF":
        raise GGUFHeaderError(f"{path} is not a GGUF file (it does not start with the GGUF magic)")
    version, = struct.unpack_from("<I", buf, 4)
    order = "<"
    if version & 0xFFFF == 0:  # a big-endian file read as little-endian
        version, = struct.unpack_from(">I", buf, 4)
        order = ">"
    if version not in (2, 3):
        raise GGUFHeaderError(f"{path}: GGUF version {version} is not supported (2 or 3 are)")
    return order, version


def read_header(path: Path) -> GGUFHeader:
    """The header of `path`: every key/value (large arrays skipped) and every tensor info."""
    path = Path(path)
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise GGUFHeaderError(f"cannot open {path}: {exc.strerror or exc}") from exc
    with handle:
        size = path.stat().st_size
        if size < 24:
            raise GGUFHeaderError(f"{path} is not a GGUF file ({size} bytes)")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            order, version = _byte_order(buf, path)
            try:
                return _walk(buf, path, order, version, size)
            except (struct.error, IndexError) as exc:
                raise GGUFHeaderError(f"{path} is truncated or corrupt: its header ends early ({exc})") from exc


def read_header_bytes(buf: bytes, path: Path, file_size: int) -> GGUFHeader:
    """The header of a `file_size`-byte GGUF of which `buf` holds the first bytes (`path` only
    names it). GGUFHeaderIncomplete when `buf` ends before the tensor infos do and the file
    goes on; GGUFHeaderError when the file itself is not a GGUF we can read."""
    path = Path(path)
    if len(buf) > file_size:
        raise ValueError(f"{len(buf)} bytes given for a {file_size}-byte file")
    partial = len(buf) < file_size
    if file_size < 24:
        raise GGUFHeaderError(f"{path} is not a GGUF file ({file_size} bytes)")
    if len(buf) < 24:
        raise GGUFHeaderIncomplete(f"{path}: {len(buf)} bytes are too few to start a GGUF header")
    order, version = _byte_order(buf, path)
    try:
        return _walk(buf, path, order, version, file_size)
    except (struct.error, IndexError) as exc:
        if partial:
            raise GGUFHeaderIncomplete(f"{path}: the header goes on past the {len(buf)} bytes read") from exc
        raise GGUFHeaderError(f"{path} is truncated or corrupt: its header ends early ({exc})") from exc


def _walk(buf: mmap.mmap | bytes, path: Path, order: str, version: int, size: int) -> GGUFHeader:
    cursor = _Cursor(buf, order, 8)
    n_tensors, n_kv = cursor.scalar("Q"), cursor.scalar("Q")
    kv_start = cursor.pos
    records: dict[str, KVRecord] = {}
    for _ in range(n_kv):
        start = cursor.pos
        key = cursor.string()
        value_type = cursor.scalar("I")
        value = cursor.value(value_type, key)
        records[key] = KVRecord(key, value_type, value, start, cursor.pos)
    tensor_info_start = cursor.pos
    tensors = []
    for _ in range(n_tensors):
        name = cursor.string()
        n_dims = cursor.scalar("I")
        shape = tuple(cursor.scalar("Q") for _ in range(n_dims))
        tensors.append(TensorInfo(name, shape, cursor.scalar("I"), cursor.scalar("Q")))
    tensor_info_end = cursor.pos
    if tensor_info_end > len(buf):  # skipped arrays move the cursor without reading
        raise struct.error("the header runs past the end of the bytes read")
    alignment_record = records.get("general.alignment")
    alignment = int(alignment_record.value) if alignment_record is not None else 32
    if alignment <= 0 or alignment & (alignment - 1):
        raise GGUFHeaderError(f"{path}: general.alignment {alignment} is not a power of two")
    data_start = -(-tensor_info_end // alignment) * alignment
    if tensors and data_start > size:
        raise GGUFHeaderError(f"{path} is truncated: its tensor data would start past the end of the file")
    tokens_record = records.get("tokenizer.ggml.tokens")
    tokens = tokens_record.value if tokens_record is not None and isinstance(tokens_record.value, list) else None
    return GGUFHeader(path, version, order, records, tensors, kv_start, tensor_info_start,
                      tensor_info_end, alignment, data_start, size, tokens)
