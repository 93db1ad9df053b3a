"""The 20-round agent session, forced: `python -m bench.real_size.session_child GGUF --ctx N`.

Each round's prompt is rendered by our template (smol_tools.chat_format) from the conversation
so far, and the scripted assistant turn is then forced: its tokens are evaluated as if the model
had sampled them (random weights cannot choose tools). The model is our in-process backend's
(LlamaCppBackend's shared llama.cpp model), and like the backend it evaluates only the tokens its
state does not hold yet: when a round's prompt extends the previous round's prompt and output
byte for byte, that is the new tool result and the assistant header; when it does not, the
recurrent state cannot be rolled back and everything is evaluated again (counted as
`full_reevaluations`). Per round: prompt tokens, tokens evaluated, seconds (prompt + forced
output). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from .measure import rss_parts_mib
from .prompts import QUESTION, TOOLS, session_turns


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("gguf", type=Path)
    parser.add_argument("--ctx", type=int, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--fill", type=float, default=0.95, help="share of the context the session reaches")
    args = parser.parse_args(argv)

    from smol_tools.backends.llama_cpp import LlamaCppBackend
    from smol_tools.chat_format import render_prompt

    backend = LlamaCppBackend(args.gguf, n_ctx=args.ctx, n_threads=args.threads, checkpoints_per_session=0)
    llm = backend.model.llm
    backend.model.owner = None

    def tokens_of(text: str) -> list[int]:
        return backend.model.tokenize(text.encode(), first=True)

    # Size the tool results so the last round's prompt reaches `fill` of the context.
    head = [{"role": "user", "content": QUESTION}]
    base = len(tokens_of(render_prompt(head, TOOLS)))
    def round_tokens(words: int) -> int:  # a round's tokens: a fixed part plus the tool result
        return len(tokens_of(render_prompt(head + list(session_turns(1, words)[0]), TOOLS))) - base

    small, large = round_tokens(50), round_tokens(150)
    per_word = (large - small) / 100
    budget = (args.fill * args.ctx - base) / args.rounds
    words = max(10, int(50 + (budget - small) / max(per_word, 1e-6)))
    turns = session_turns(args.rounds, words)

    messages = list(head)
    rounds, resets = [], 0
    for k, (assistant, tool) in enumerate(turns, start=1):
        prompt = render_prompt(messages, TOOLS)
        full = render_prompt(messages + [assistant], TOOLS, add_generation_prompt=False)
        if not full.startswith(prompt):
            raise RuntimeError(f"round {k}: the template does not render the assistant turn after its prompt")
        prompt_tokens = tokens_of(prompt)
        all_tokens = tokens_of(full)
        held = list(llm._input_ids[: llm.n_tokens])
        if all_tokens[: len(held)] != held:  # the state cannot be rolled back: start over
            llm.reset()
            resets += 1
            held = []
        started = time.perf_counter()
        llm.eval(all_tokens[len(held):len(prompt_tokens)])
        prompt_done = time.perf_counter()
        llm.eval(all_tokens[len(prompt_tokens):])  # the scripted assistant turn, forced
        done = time.perf_counter()
        rounds.append({"round": k, "prompt_tokens": len(prompt_tokens),
                       "prompt_tokens_evaluated": len(prompt_tokens) - len(held),
                       "forced_tokens": len(all_tokens) - len(prompt_tokens),
                       "prompt_seconds": round(prompt_done - started, 4),
                       "seconds": round(done - started, 4)})
        messages += [assistant, tool]
    first, last = rounds[0], rounds[-1]
    print(json.dumps({"ctx": args.ctx, "threads": args.threads, "tool_result_words": words,
                      "rounds": rounds, "full_reevaluations": resets,
                      "last_prompt_tokens": last["prompt_tokens"],
                      "tokens_held_at_end": llm.n_tokens,
                      # the context is (nearly) full here: the RSS a full context costs in process
                      "rss_at_end": rss_parts_mib(),
                      "round_last_over_first_seconds": round(last["seconds"] / first["seconds"], 3),
                      # round 1 has no tool result yet; round 2 is the first with the same new work
                      # as the last one (a tool result + a forced turn), only at a shorter context
                      "round_last_over_second_seconds": round(last["seconds"] / rounds[1]["seconds"], 3)
                      if len(rounds) > 1 else None}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
