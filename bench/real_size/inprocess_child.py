"""One fresh process, one GGUF, one context length: load time, resident memory, and our in-process
backend's prompt and decode rates; prints one JSON object.

`python -m bench.real_size.inprocess_child GGUF --ctx N --threads T [--fill]`

A fresh process per measurement, so one file's pages and buffers never count in another's RSS.
RSS (VmRSS) is read after the load, after one turn (llama.cpp maps the weights: they become
resident as they are first read) and, with --fill, after a prompt that fills the context.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from .measure import rss_parts_mib
from .prompts import filler_messages


def _record_rss(result: dict, when: str) -> None:
    """The RSS `when`, with its anonymous and file-backed parts (measure.rss_parts_mib), from one read."""
    parts = rss_parts_mib()
    result[f"rss_{when}_mib"] = parts["rss_mib"]
    result[f"rss_anon_{when}_mib"], result[f"rss_file_{when}_mib"] = parts["anon_mib"], parts["file_mib"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("gguf", type=Path)
    parser.add_argument("--ctx", type=int, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--prompt-tokens", type=int, default=512)
    parser.add_argument("--gen", type=int, default=128)
    parser.add_argument("--fill", action="store_true", help="then evaluate a prompt that fills the context")
    parser.add_argument("--sampling", choices=("greedy", "default"), default="greedy",
                        help="greedy (the rate figures) or the shipped defaults (what the app samples with)")
    args = parser.parse_args(argv)

    from smol_tools.backends.base import SamplingParams
    from smol_tools.events import TurnComplete
    from smol_tools.backends.llama_cpp import LlamaCppBackend

    result: dict = {"rss_before_load_mib": rss_parts_mib()["rss_mib"]}
    started = time.perf_counter()
    backend = LlamaCppBackend(args.gguf, n_ctx=args.ctx, n_threads=args.threads,
                              checkpoints_per_session=0)  # the rates of one turn, no state copies
    result["load_s"] = round(time.perf_counter() - started, 3)
    _record_rss(result, "after_load")
    messages = filler_messages(backend.count_prompt_tokens, args.prompt_tokens)
    complete = None
    sampling = (SamplingParams.greedy if args.sampling == "greedy" else SamplingParams.defaults)(max_tokens=args.gen)
    for event in backend.stream_turn(messages, None, sampling=sampling,
                                     enable_thinking=False, session_id="rate"):
        if isinstance(event, TurnComplete):
            complete = event
    usage = complete.usage
    result.update({
        "prompt_tokens": usage.prompt_tokens, "prompt_tokens_evaluated": usage.prompt_tokens_evaluated,
        "prompt_seconds": round(usage.prompt_seconds, 4),
        "pp_tokens_per_s": round(usage.prompt_tokens_evaluated / usage.prompt_seconds, 3) if usage.prompt_seconds else None,
        "completion_tokens": usage.completion_tokens, "generation_seconds": round(usage.generation_seconds, 4),
        "tg_tokens_per_s": round(usage.tokens_per_second, 3), "finish": complete.finish_reason})
    _record_rss(result, "after_turn")
    if args.fill:
        llm = backend.model.llm
        llm.reset()
        backend.model.owner = None
        n = args.ctx - 8
        # Token ids of the tiny tokenizer's plain text, repeated: content does not change the cost.
        base = backend.model.tokenize(b"The quick brown fox jumps over the lazy dog. ", first=False)
        tokens = (base * (n // len(base) + 1))[:n]
        started = time.perf_counter()
        llm.eval(tokens)
        elapsed = time.perf_counter() - started
        result.update({"fill_tokens": n, "fill_seconds": round(elapsed, 2), "fill_tokens_per_s": round(n / elapsed, 3)})
        _record_rss(result, "after_fill")
    result["threads"], result["sampling"] = args.threads, args.sampling
    result["pid"] = os.getpid()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
