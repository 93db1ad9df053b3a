"""Coverage-guided fuzz target (atheris) for the tool-call parser.

Checks, for every input libFuzzer generates: the one-shot parser never raises, the streaming
parser fed in chunks (sizes drawn from the input) ends with the identical result, every
error names its raw block, and the result is valid Unicode and finite JSON. CI runs it briefly (tests/test_fuzz_parser.py); a long run:

    .venv/bin/python fuzz/fuzz_toolcalls.py -max_total_time=3600 fuzz/corpus
"""

from __future__ import annotations

import json
import sys

import atheris

with atheris.instrument_imports():
    from smol_tools.toolcalls import StreamingParser, parse_output

MODES = (None, True, False)


def check(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    mode = MODES[provider.ConsumeIntInRange(0, 2)]
    chunk = provider.ConsumeIntInRange(1, 64)
    text = provider.ConsumeUnicode(provider.remaining_bytes())  # lone surrogates included
    one_shot = parse_output(text, thinking_open=mode)
    parser = StreamingParser(thinking_open=mode)
    for start in range(0, len(text), chunk):
        parser.feed(text[start: start + chunk])
    parser.finish()
    if parser.result.to_dict() != one_shot.to_dict():
        raise AssertionError(f"streaming differs from one-shot for {text!r} (chunk {chunk}, mode {mode})")
    for error in one_shot.errors:
        if not error.message or not error.raw:
            raise AssertionError(f"error without message or raw block for {text!r}")
    # What the parser returns can enter a session's history: valid UTF-8, no inf/NaN.
    json.dumps(one_shot.to_dict(), ensure_ascii=False, allow_nan=False).encode("utf-8")


def main() -> None:
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
