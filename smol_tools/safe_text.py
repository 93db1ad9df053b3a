"""Text that is safe to keep in a session's history: valid Unicode, and bounded where it is an
error message the model reads.

A Python `str` can hold code points no encoder accepts: lone surrogates (U+D800-U+DFFF) come
out of JSON `\\udc80` escapes and out of `os.fsdecode` for file names that are not UTF-8. One of
them in the history makes every later prompt fail to encode (token counting, the HTTP wire),
so the session is lost. Everything that enters the history goes through `clean_text`, and
values the model sent as arguments are checked with `invalid_text_in` so the call can be
refused with a message the model can act on.
"""

from __future__ import annotations

import math
import re
from typing import Any

REPLACEMENT = "\ufffd"
ERROR_TEXT_LIMIT = 600  # characters of one error text the model reads

_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD (cheap when there is none)."""
    if text.isascii():
        return text
    return _SURROGATE.sub(REPLACEMENT, text)


def clean_value(value: Any) -> Any:
    """A JSON-like value with every string (keys included) passed through `clean_text`."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [clean_value(v) for v in value]
    if isinstance(value, tuple):
        return tuple(clean_value(v) for v in value)
    if isinstance(value, dict):
        return {clean_value(k) if isinstance(k, str) else k: clean_value(v) for k, v in value.items()}
    return value


def _where(path: list[str]) -> str:
    return f'"{"/".join(path)}" ' if path else ""


def invalid_text_in(value: Any, path: list[str] | None = None) -> str | None:
    """Why `value` (a decoded JSON value) cannot enter the history, or None.

    The reason starts with the place, quoted ('"a/0" contains ...') unless it is `value` itself.
    Finds lone surrogates in strings and keys, and non-finite numbers (1e999 decodes to inf,
    which no JSON encoder may write). Iterative, so absurd nesting cannot overflow the stack."""
    stack: list[tuple[Any, list[str]]] = [(value, path or [])]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            bad = _SURROGATE.search(item) if not item.isascii() else None
            if bad:
                return (f"{_where(where)}contains U+{ord(bad.group()):04X}, a lone surrogate that is "
                        "not valid Unicode text (from a \\u escape?); write the character itself or "
                        "leave it out")
        elif isinstance(item, float):
            if not math.isfinite(item):
                return f"{_where(where)}is a number out of range (not finite); use a finite number"
        elif isinstance(item, dict):
            for key, sub in item.items():
                if isinstance(key, str) and not key.isascii() and _SURROGATE.search(key):
                    return (f"{_where(where)}has a key with a lone surrogate (not valid Unicode "
                            "text); write the character itself or leave it out")
                stack.append((sub, [*where, clean_text(str(key))]))
        elif isinstance(item, (list, tuple)):
            stack.extend((sub, [*where, str(i)]) for i, sub in enumerate(item))
    return None


def bound_text(text: str, limit: int = ERROR_TEXT_LIMIT) -> str:
    """`text` cut to about `limit` characters: its start, its size, and its end.

    Error messages put the offending value first and what was wrong last ("'aaaa…' is too
    long"), so both ends stay and the middle goes."""
    if len(text) <= limit:
        return text
    head = limit * 2 // 3
    tail = limit - head
    omitted = len(text) - head - tail
    return f"{text[:head]}… [{omitted:,} of {len(text):,} characters omitted] …{text[len(text) - tail:]}"
