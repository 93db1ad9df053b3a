"""`smol-tools retemplate`: give any GGUF of the model our format, touching metadata only.

What changes: `tokenizer.chat_template` becomes templates/smol-tools.jinja (named templates
such as `tokenizer.chat_template.tool_use`, which llama.cpp would prefer for requests with
tools, are dropped); EOS/EOT/padding ids are looked up in the file's own vocabulary; the
`general.sampling.*` keys llama.cpp reads get templates/params.json's values.

How: the header is rewritten record by record - unchanged key/values and the whole tensor-info
block are copied as raw bytes, so offsets into the data section stay valid - and the data
section is then streamed from the source in fixed-size chunks (`os.copy_file_range` where the
kernel has it, a read/write loop otherwise). Memory stays flat whatever the file size, and the
tensor bytes are the source's bytes. gguf's `copy_with_new_metadata` would instead parse the
whole vocabulary with `GGUFReader` (about 17 s on Qwen3.5's) and write each tensor from a
memory map, which pulls the whole file into the process's resident set.
The result is written under a temporary name and renamed only when complete and re-read."""

from __future__ import annotations

import os
import shutil
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from .chat_format import load_template
from .gguf_doctor import (EOS_KEY, EOT_KEY, PAD_KEY, TEMPLATE_KEY, DoctorReport, diagnose,
                          expected_sampling, expected_token_ids)
from .gguf_header import GGUFHeader, read_header
from .pipeline.atomic import atomic_output

CHUNK = 16 * 1024 * 1024
_STRING, _UINT32 = 8, 4
_FORMATS = {4: "I", 5: "i", 6: "f"}


class RetemplateError(ValueError):
    """The file cannot be retemplated (say why and what to do)."""


@dataclass
class RetemplateResult:
    source: Path
    output: Path
    changed: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # key -> (old, new)
    removed: list[str] = field(default_factory=list)
    data_bytes: int = 0
    seconds: float = 0.0
    rewritten: bool = True  # False: --in-place on a file that already had everything
    report: DoctorReport | None = None

    def describe(self) -> str:
        if not self.rewritten:
            lines = [f"{self.output}: metadata already ours, nothing rewritten"]
        else:
            lines = [f"wrote {self.output} ({self.data_bytes / 2**20:.1f} MiB of tensor data copied "
                     f"unchanged in {self.seconds:.2f} s)"]
            for key, (old, new) in self.changed.items():
                lines.append(f"  {key}: {_short(old)} -> {_short(new)}")
            lines += [f"  {key}: removed" for key in self.removed]
        return "\n".join(lines)


def _short(value: Any) -> str:
    text = "unset" if value is None else repr(value)
    return text if len(text) <= 50 else f"{text[:30]}... ({len(text)} chars)"


def new_metadata(header: GGUFHeader, template: str | None = None,
                 extra: dict[str, tuple[int, Any]] | None = None) -> dict[str, tuple[int, Any]]:
    """key -> (gguf.GGUFValueType, value) that the fixed file must carry; `extra` adds more
    (the packaging pipeline's general.* provenance)."""
    fields: dict[str, tuple[int, Any]] = {TEMPLATE_KEY: (_STRING, template or load_template())}
    for key, (text, token_id) in expected_token_ids(header).items():
        if token_id is None:
            raise RetemplateError(
                f"{header.path}: {text!r} is not in this file's vocabulary, so no metadata can make it "
                f"end generation; this is not a GGUF of the smol-tools model (Qwen ChatML vocabulary). "
                f"Use a GGUF of smol-tools-4b-32k.")
        fields[key] = (_UINT32, token_id)
    fields |= expected_sampling()
    for key, (value_type, value) in (extra or {}).items():
        if value_type not in (_STRING, *_FORMATS):
            raise ValueError(f"{key}: value type {value_type} is not one retemplate writes")
        fields[key] = (value_type, value)
    return fields


def _dropped(header: GGUFHeader) -> list[str]:
    # Foreign named templates: llama.cpp would pick `tool_use` over ours when tools are given.
    return [k for k in header.records if k.startswith(TEMPLATE_KEY + ".") or k == "tokenizer.chat_templates"]


def _pack(key: str, value_type: int, value: Any, order: str) -> bytes:
    def string(text: str) -> bytes:
        raw = text.encode("utf-8")
        return struct.pack(order + "Q", len(raw)) + raw

    if value_type == _STRING:
        body = string(value)
    else:
        body = struct.pack(order + _FORMATS[value_type], value)
    return string(key) + struct.pack(order + "I", value_type) + body


def _copy_range(src: BinaryIO, dst: BinaryIO, start: int, length: int) -> None:
    """Stream `length` bytes of `src` from `start` to the end of `dst`, in bounded memory."""
    dst.flush()
    src_fd, dst_fd = src.fileno(), dst.fileno()
    done = 0
    if hasattr(os, "copy_file_range"):
        try:  # in-kernel copy: no user-space buffer at all
            while done < length:
                n = os.copy_file_range(src_fd, dst_fd, min(CHUNK, length - done), start + done)
                if n == 0:
                    raise RetemplateError(f"{src.name} ended early while copying tensor data")
                done += n
            return
        except OSError:  # e.g. across file systems on old kernels: fall back to plain reads
            pass
    src.seek(start + done)
    buffer = bytearray(min(CHUNK, max(length, 1)))
    view = memoryview(buffer)
    while done < length:
        n = src.readinto(view[: min(CHUNK, length - done)])
        if not n:
            raise RetemplateError(f"{src.name} ended early while copying tensor data")
        dst.write(view[:n])
        done += n
    dst.flush()


def write_retemplated(header: GGUFHeader, out: Path, fields: dict[str, tuple[int, Any]],
                      drop: list[str]) -> int:
    """Write `header.path` to `out` with `fields` set and `drop` removed; returns data bytes."""
    order = header.byte_order
    pending = dict(fields)
    records: list[bytes] = []
    with open(header.path, "rb") as src:
        for key, record in header.records.items():
            if key in drop:
                continue
            if key in pending:
                records.append(_pack(key, *pending.pop(key), order))
            else:
                src.seek(record.start)
                records.append(src.read(record.end - record.start))
        records += [_pack(key, vtype, value, order) for key, (vtype, value) in pending.items()]
        src.seek(header.tensor_info_start)
        tensor_info = src.read(header.tensor_info_end - header.tensor_info_start)
        with open(out, "wb") as dst:
            dst.write(b"GGUF" + struct.pack(order + "IQQ", header.version, len(header.tensors), len(records)))
            for record in records:
                dst.write(record)
            dst.write(tensor_info)
            # Same alignment as the source (general.alignment is copied), so every tensor's
            # offset, relative to the data section, stays what the copied tensor infos say.
            dst.write(b"\0" * (-dst.tell() % header.alignment))
            data_bytes = header.file_size - header.data_start
            _copy_range(src, dst, header.data_start, data_bytes)
    return data_bytes


def _check_written(header: GGUFHeader, written: Path, fields: dict[str, tuple[int, Any]]) -> None:
    new = read_header(written)
    if [(t.name, t.shape, t.ggml_type, t.offset) for t in new.tensors] != \
            [(t.name, t.shape, t.ggml_type, t.offset) for t in header.tensors]:
        raise RetemplateError(f"{written}: tensor infos changed while rewriting (bug)")
    if new.file_size - new.data_start != header.file_size - header.data_start:
        raise RetemplateError(f"{written}: tensor data size changed while rewriting (bug)")
    for key, (_, value) in fields.items():
        got = new.get(key)
        same = abs(got - value) < 1e-6 if isinstance(value, float) and isinstance(got, float) else got == value
        if not same:
            raise RetemplateError(f"{written}: {key} reads back as {got!r}, not {value!r} (bug)")


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    return b.exists() and os.path.samefile(a, b)


def retemplate(source: Path, output: Path | None = None, *, in_place: bool = False,
               template: str | None = None, extra: dict[str, tuple[int, Any]] | None = None,
               run_doctor: bool = True) -> RetemplateResult:
    """Rewrite `source`'s metadata into `output` (or into `source` itself with `in_place`)."""
    source = Path(source)
    if output is None and not in_place:
        raise RetemplateError("give an output path, or --in-place to rewrite the input itself")
    output = source if output is None else Path(output)
    if not in_place and _same_file(source, output):
        raise RetemplateError(
            f"the output {output} is the input file; pass --in-place to rewrite it "
            f"(the new file replaces it only once complete), or name another output")
    if in_place and not _same_file(source, output):
        raise RetemplateError("--in-place rewrites the input: give no output path, or the input's own")
    if not source.is_file():
        raise RetemplateError(f"no GGUF file at {source}")
    header = read_header(source)
    split = header.get("split.count", 1)
    if isinstance(split, int) and split > 1:
        raise RetemplateError(
            f"{source} is shard {int(header.get('split.no', 0)) + 1} of {split}; merge the shards first "
            f"(llama-gguf-split --merge FIRST-SHARD.gguf MERGED.gguf) and retemplate the merged file")
    fields, drop = new_metadata(header, template, extra), _dropped(header)
    changed = {k: (header.get(k), v) for k, (_, v) in fields.items() if not _equal(header.get(k), v)}
    result = RetemplateResult(source, output, changed, drop)
    if in_place and not changed and not drop:
        result.rewritten = False
    else:
        _ensure_space(source, output)
        started = time.perf_counter()
        with atomic_output(output) as partial:
            result.data_bytes = write_retemplated(header, partial, fields, drop)
            _check_written(header, partial, fields)
        result.seconds = time.perf_counter() - started
    if run_doctor:
        result.report = diagnose(output)
    return result


def _equal(old: Any, new: Any) -> bool:
    if isinstance(new, float) and isinstance(old, (int, float)) and not isinstance(old, bool):
        return abs(old - new) < 1e-6
    return old == new


def _ensure_space(source: Path, output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    need = source.stat().st_size
    free = shutil.disk_usage(output.parent).free
    if free < need:
        raise RetemplateError(
            f"not enough disk space for {output}: {need / 2**30:.2f} GiB needed, {free / 2**30:.2f} GiB "
            f"free in {output.parent}; free some space or write the output elsewhere")
