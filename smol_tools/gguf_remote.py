"""The header of a GGUF on the Hub, read without downloading the file (for `smol-tools doctor`).

`doctor owner/repo:QUANT` needs only the header (key/values and tensor infos), which is a few
MB even with a 248k-token vocabulary, while the file is GBs. So the repo is listed and the file
picked by the resolver (`model_source`, pinned to the commit it listed), and then only the first
bytes of the file are fetched with HTTP range requests through huggingface_hub (its URL, auth
headers and retrying session, as its own `HfFileSystem` reads ranges). The range grows (each
request fetches only the bytes not yet held) until the header walker has every tensor info.
The real file size comes from the answer's `Content-Range`, so the walker's checks against the
end of the file still hold.

A split GGUF: the header of part 1 only, which holds every key/value the doctor judges; its
tensor count and MTP tensor names are then those of part 1 (as when part 1 is downloaded).
A file already in the local Hub cache, a local path, `tiny`, offline mode or `download=True`:
the file on disk, as before."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .gguf_header import GGUFHeader, GGUFHeaderError, GGUFHeaderIncomplete, read_header, read_header_bytes
from .model_source import (ModelSourceError, ResolvedModel, _cache_dir, _endpoint, _hub_error, _short, resolve_hub,
                           resolve_model)

FIRST_RANGE = 1 << 20  # a Qwen-size vocabulary's header is about 10 MB: three requests (1, 4, 16 MB)
GROWTH = 4
MAX_HEADER = 256 << 20  # no real header comes near this; past it, say so instead of fetching on


@dataclass(frozen=True)
class HeaderSource:
    """A header and where it came from."""

    header: GGUFHeader
    path: Path  # what the report names: the file on disk, or owner/repo@commit/file on the Hub
    fix_target: str  # what the fix line names: a local file as a path, anything else as typed
    resolved: ResolvedModel
    fetched: int = 0  # bytes fetched with range requests (0: read from disk)
    requests: int = 0

    @property
    def remote(self) -> bool:
        return self.requests > 0

    def describe_fetch(self) -> str:
        """One line on what was read, for a remote header."""
        size = self.header.file_size
        return (f"read the header only: {_mb(self.fetched)} of {_mb(size)} in {self.requests} range "
                f"request(s) from {self.resolved.repo}@{(self.resolved.revision or '')[:10]} "
                "(--download fetches the whole file)")


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 10_000 else f"{n} bytes"


def header_for(spec: str, *, download: bool = False, first_range: int | None = None) -> HeaderSource:
    """The header `doctor` judges for what the user typed (see the module docstring)."""
    resolved = resolve_model(spec, download=False)
    local = Path(spec).expanduser().is_file()
    target = str(resolved.path) if local else spec
    if resolved.downloaded:  # a local path, tiny, or a copy from the cache (offline)
        return HeaderSource(read_header(resolved.path), resolved.path, target, resolved)
    assert resolved.repo is not None and resolved.revision is not None
    cached = _in_cache(resolved)
    if cached is not None:
        return HeaderSource(read_header(cached), cached, target, resolved)
    if download:
        fetched = resolve_hub(resolved.repo, resolved.quant or "", resolved.revision)  # the same commit
        return HeaderSource(read_header(fetched.path), fetched.path, target, fetched)
    name = resolved.files[0]
    label = Path(f"{resolved.repo}@{resolved.revision}") / name
    header, fetched_bytes, requests = read_remote_header(resolved.repo, name, resolved.revision, label,
                                                         first_range=first_range or FIRST_RANGE)
    return HeaderSource(header, label, target, resolved, fetched_bytes, requests)


def _in_cache(resolved: ResolvedModel) -> Path | None:
    """Part 1 of the resolved file, when the local Hub cache already has it at that commit."""
    from huggingface_hub import try_to_load_from_cache  # start-up time: huggingface_hub

    found = try_to_load_from_cache(resolved.repo or "", resolved.files[0], cache_dir=_cache_dir(),
                                   revision=resolved.revision)
    return Path(found) if isinstance(found, str) and Path(found).is_file() else None


def read_remote_header(repo: str, filename: str, revision: str, label: Path, *,
                       first_range: int | None = None, limit: int = MAX_HEADER) -> tuple[GGUFHeader, int, int]:
    """(header, bytes fetched, requests) for `filename` in `repo` at `revision`, fetching the
    first `first_range` bytes (default FIRST_RANGE), then GROWTH times as many each time, until
    the header is whole."""
    from huggingface_hub import hf_hub_url  # start-up time: huggingface_hub

    url = hf_hub_url(repo, filename, revision=revision, endpoint=_endpoint())
    held, size, requests, want = b"", None, 0, max(24, first_range or FIRST_RANGE)
    while True:
        chunk, total = _fetch(repo, url, len(held), want - 1)
        requests += 1
        if not chunk:
            raise GGUFHeaderError(f"{label}: the Hub sent no bytes from offset {len(held)}")
        held += chunk
        size = total if total is not None else len(held)  # a 200 answer: the whole file came
        try:
            return read_header_bytes(held, label, size), len(held), requests
        except GGUFHeaderIncomplete:
            if len(held) >= size:
                raise GGUFHeaderError(f"{label} is truncated: its header ends early") from None
            if len(held) >= limit:
                raise GGUFHeaderError(
                    f"{label}: the header is larger than {limit >> 20} MB, which no GGUF we know has; "
                    "run doctor with --download to read it from the whole file") from None
            want = min(GROWTH * want, size, limit)


def _fetch(repo: str, url: str, start: int, end: int) -> tuple[bytes, int | None]:
    """Bytes `start`..`end` (inclusive) of `url`, and the file's size from Content-Range."""
    # start-up time: huggingface_hub
    from huggingface_hub.utils import build_hf_headers, hf_raise_for_status, http_backoff

    try:
        response = http_backoff("GET", url, headers={"range": f"bytes={start}-{end}", **build_hf_headers()})
        hf_raise_for_status(response)
    except Exception as exc:  # the client's transport raises its own types (httpx, ...)
        known = _hub_error(repo, exc)
        if known is not None:
            raise known from exc
        raise ModelSourceError(f"reading the header of {url} failed ({_short(exc)}); run again, or "
                               "use --download", "unreachable") from exc
    if response.status_code != 206:
        # The server ignored the range and sent the whole file: use it (the Hub always honours ranges).
        return response.content[start:], None
    total = response.headers.get("Content-Range", "").rpartition("/")[2]
    if not total.isdigit():  # "bytes a-b/*": a size we must know for the walker's end-of-file checks
        raise GGUFHeaderError(f"{url}: the range answer does not say the file's size")
    return response.content, int(total)
