"""Run llama.cpp's own `convert_hf_to_gguf.py`, optionally declaring the BPE pre-tokenizer.

The converter identifies a tokenizer's pre-tokenizer by hashing how it splits a probe string;
a tokenizer trained here (the tiny test model) has a new hash even though it uses Qwen3.5's
exact split regex. `--declare-pre NAME` supplies the name only when the converter does not
recognise the hash; a known tokenizer (the real model) is never affected. The vendored files
are not edited: this wrapper patches the one lookup in memory, then runs the script as-is.

Usage: python -m smol_tools.pipeline.convert_entry --llama-cpp-dir DIR [--declare-pre NAME] -- ARGS
"""

from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--llama-cpp-dir", type=Path, required=True)
    parser.add_argument("--declare-pre", default=None)
    parser.add_argument("converter_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    converter_args = args.converter_args[1:] if args.converter_args[:1] == ["--"] else args.converter_args

    script = args.llama_cpp_dir / "convert_hf_to_gguf.py"
    # The caller (convert.py) puts the llama.cpp dir and its gguf-py on PYTHONPATH.
    if args.declare_pre:
        # optional: llama.cpp's converter package exists only in the extracted llama.cpp tree
        import conversion.base as base

        original = base.TextModel.get_vocab_base_pre
        declared = args.declare_pre

        def get_vocab_base_pre(self, tokenizer) -> str:
            try:
                return original(self, tokenizer)
            except NotImplementedError:
                base.logger.warning("pre-tokenizer hash unknown; using declared %r", declared)
                return declared

        base.TextModel.get_vocab_base_pre = get_vocab_base_pre
    sys.argv = [str(script), *converter_args]
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
