"""Agent + backend wall time ÷ raw llama-cpp-python doing the same model work.

Measured: the 10-round session (bench/session.py) through `Agent` and `LlamaCppBackend`
(prompt rendering, the context check, prompt reuse, detokenizing, streaming parse, schema
validation, tool execution, events). Anchor: the same `Llama` object fed, round by round,
the very token lists the backend fed it and stopped after the same number of tokens —
`llm.generate` in a plain loop, prefix reuse included, nothing else. Both start each
repetition from an empty model state; their order alternates.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from smol_tools.backends.base import SamplingParams

from .common import Figure
from .session import run_session


def _per_round_parts(backend, session) -> dict[str, float]:
    """Milliseconds of the agent's fixed per-round steps, each timed alone (best of 20)."""
    from concurrent.futures import ThreadPoolExecutor

    import jsonschema

    from smol_tools.chat_format import render_prompt

    from .session import scripted_tools

    messages, tools = session.prompts[-1], scripted_tools()
    schema = next(t["function"]["parameters"] for t in tools if t["function"]["name"] == "read_file")

    def pool() -> None:
        with ThreadPoolExecutor(max_workers=1) as executor:
            executor.submit(lambda: None).result()
    suffix = render_prompt(messages, tools)[-120:]  # about one tool-result turn and the generation prompt
    steps = {"render_prompt": lambda: render_prompt(messages, tools),
             "input_key": lambda: json.dumps([messages, tools, True], ensure_ascii=False, default=str),
             "tokenize_suffix": lambda: backend.model.tokenize(suffix.encode(), first=False),
             "thread_pool": pool,
             "schema_check": lambda: list(jsonschema.Draft202012Validator(schema).iter_errors({"path": "notes.txt"}))}
    timings = {}
    for name, step in steps.items():
        best = float("inf")
        for _ in range(20):
            started = time.perf_counter()
            step()
            best = min(best, time.perf_counter() - started)
        timings[name] = 1e3 * best
    return timings


def run(quick: bool) -> list[Figure]:
    from devkit.tiny_gguf import ensure_tiny_gguf

    from .heavy_twin import DEFAULT_INTERMEDIATE, ensure_heavy_twin

    tiny = measure(ensure_tiny_gguf("Q8_0"), quick, "agent_overhead",
                   "Agent + backend overhead (10-round session, tiny model)")
    twin = measure(ensure_heavy_twin(), quick, "agent_overhead_heavy_twin",
                   "Agent + backend overhead (10-round session, tiny model's heavy twin)")
    if twin.details.get("generated_tokens_per_round") != tiny.details.get("generated_tokens_per_round"):
        raise AssertionError("the heavy twin must decode the tiny model's session token for token")
    per_token_ms = 1e3 * twin.best[1] / twin.details["tokens_generated"]
    twin.notes.insert(0, (
        f"The twin (bench/heavy_twin.py) is the tiny model with every MLP widened to {DEFAULT_INTERMEDIATE} "
        "units whose output weights are zero: the same session decodes to the same tokens (checked: identical "
        f"tokens per round), at {per_token_ms:.1f} ms per sampled token on one thread, prompt included (52 MB of "
        "Q8_0 weights read per token); the real 4B model costs 20-100 ms a token on CPU, so its share of agent "
        "overhead is smaller still. The agent's per-round work is the same milliseconds as on the tiny model; "
        "here it is weighed against model time of a realistic order."))
    return [tiny, twin]


def measure(gguf, quick: bool, figure_id: str, title: str) -> Figure:
    from smol_tools.backends.llama_cpp import LlamaCppBackend

    # One thread: on a shared machine two llama.cpp threads stall each other at every barrier
    # when either is descheduled, which buries a ratio in seconds-long outliers.
    backend = LlamaCppBackend(gguf, n_ctx=4096, n_threads=1)
    model = backend.model
    llm = model.llm
    sampling = SamplingParams.greedy(max_tokens=100)
    # Record the token lists the backend hands to llama-cpp-python, round by round.
    recorded: list[tuple[list[int], int]] = []
    original = model.prompt_tokens

    def recording(session_id: str, prompt: bytes) -> list[int]:
        tokens = original(session_id, prompt)
        recorded.append((list(tokens), 0))
        return tokens
    model.prompt_tokens = recording
    try:
        llm.reset()
        probe = f"bench-overhead-probe-{time.monotonic_ns()}"
        first = run_session(backend, session_id=probe)
        backend.forget_session(probe)
    finally:
        del model.prompt_tokens
    rounds = [(tokens, usage.completion_tokens + (1 if finish != "length" else 0))
              for (tokens, _), usage, finish in zip(recorded, first.usages, first.finish_reasons)]

    def agent_once() -> tuple[float, float]:
        llm.reset()
        session_id = f"bench-overhead-{time.monotonic_ns()}"
        started, cpu = time.perf_counter(), time.process_time()
        run_session(backend, session_id=session_id, record=False)
        seconds = time.perf_counter() - started, time.process_time() - cpu
        backend.forget_session(session_id)
        return seconds

    def raw_once() -> tuple[float, float]:
        llm.reset()
        started, cpu = time.perf_counter(), time.process_time()
        for tokens, sampled in rounds:
            count = 0
            for _ in llm.generate(tokens, temp=sampling.temperature, top_k=sampling.top_k, top_p=sampling.top_p,
                                  min_p=sampling.min_p, repeat_penalty=sampling.repeat_penalty,
                                  presence_penalty=sampling.presence_penalty, reset=True):
                count += 1
                if count >= sampled:
                    break
        seconds = time.perf_counter() - started, time.process_time() - cpu
        model.owner = None  # the raw loop took the model's state; no session owns it now
        return seconds

    agent_once(), raw_once()  # warm-up
    figure = Figure(figure_id, title,
                    "Agent + LlamaCppBackend wall time", "raw llama-cpp-python generating the same tokens",
                    "<= 1.05", 1.05)
    agent_times, raw_times, agent_cpu, raw_cpu = [], [], [], []
    best_of = 2 if quick else 3  # each side's best of a few runs per repetition: other load only adds
    for i in range(3 if quick else 15):
        if i % 2:
            raw = min(raw_once() for _ in range(best_of))
            agent = min(agent_once() for _ in range(best_of))
        else:
            agent = min(agent_once() for _ in range(best_of))
            raw = min(raw_once() for _ in range(best_of))
        agent_times.append(agent[0])
        raw_times.append(raw[0])
        agent_cpu.append(agent[1])
        raw_cpu.append(raw[1])
        figure.samples.append(agent[0] / raw[0])
    figure.best = (min(agent_times), min(raw_times))
    generated = sum(sampled for _, sampled in rounds)
    parts = _per_round_parts(backend, first)
    extra_ms = 1e3 * (min(agent_times) - min(raw_times))
    cpu_ratio = min(agent_cpu) / min(raw_cpu)
    figure.details = {"agent_seconds": agent_times, "raw_seconds": raw_times, "agent_cpu_seconds": agent_cpu,
                      "raw_cpu_seconds": raw_cpu, "cpu_ratio_best": cpu_ratio, "rounds": len(rounds),
                      "tokens_generated": generated, "prompt_tokens_last_round": len(rounds[-1][0]),
                      "generated_tokens_per_round": [sampled for _, sampled in rounds],
                      "overhead_ms_per_round": extra_ms / len(rounds), "parts_ms": parts,
                      "overhead_us_per_generated_token": 1e3 * extra_ms / generated}
    figure.notes = [
        f"{Path(gguf).name} on one thread, {len(rounds)} rounds, {generated} tokens sampled; each sample is the "
        f"ratio of the two sides' best of {best_of} runs. Best times: agent "
        f"{1e3 * min(agent_times):.0f} ms, raw {1e3 * min(raw_times):.0f} ms, i.e. {extra_ms / len(rounds):.1f} ms "
        f"per round ({1e3 * extra_ms / generated:.0f} µs per generated token); CPU time, which other load on a shared "
        f"machine disturbs less, gives {cpu_ratio:.3f}. Repetitions scatter widely on a shared machine, hence "
        "fastest ÷ fastest. The agent's fixed per-round parts, timed alone on the last round: rendering the prompt "
        f"{parts['render_prompt']:.2f} ms (once a round: the context check and the turn share it), the key that "
        f"recognises the same inputs {parts['input_key']:.2f} ms, tokenizing a tool-result turn "
        f"{parts['tokenize_suffix']:.2f} ms, a thread started and joined per tool call (its timeout) "
        f"{parts['thread_pool']:.2f} ms, schema validation {parts['schema_check']:.2f} ms; the render grows with "
        "the context."]
    if "heavy" not in figure_id:
        figure.notes.append(
            "The tiny model (4 layers, hidden 256) is the worst case: its forward pass costs a fraction of a "
            "millisecond per token, so this fixed per-round work is a large share; the heavy-twin figure weighs "
            "the same session against model time of a realistic order.")
    return figure
