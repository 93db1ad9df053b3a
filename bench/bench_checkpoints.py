"""What the next user message costs: a session of 5 user queries, each answered after 3 tool
rounds, thinking on, in process and through llama-server (issue 17).

When a new query arrives the template drops the previous exchange's reasoning, so the prompt
re-renders that exchange from its first assistant turn on: those tokens (and the new ones) must
be evaluated again, everything before them need not be. The figure, per new query (2-5):

    prompt tokens evaluated in its first round
    ÷ tokens from the previous exchange's first assistant turn to the end of the new prompt

(the denominator is the new prompt's length minus the tokens of the conversation up to and
including the previous user message, rendered without a generation prompt). 1.0 is the least a
runtime can do; the worst query of a session is the figure. The anchors, run side by side, are
the same session with checkpoints off (in process: `checkpoints_per_session=0`; llama-server:
`--ctx-checkpoints 0`), which re-evaluate the whole prompt at every new query.

`python -m bench --only checkpoints` (not part of the default run: it starts five servers).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from smol_tools.agent import ToolOutcome
from smol_tools.chat_format import render_prompt

from .common import Figure
from .session import _drive, scripted_tools

QUERIES = ["Show me notes.txt."] * 5  # the tiny model's 3-round session: read, list, read, answer
THINKING = True
SERVER_CTX = 4096


def _scripted_executor() -> Callable[[str, dict], ToolOutcome]:
    from devkit.scripted import scripted_tool_results

    results = scripted_tool_results()

    def execute(name: str, arguments: dict) -> ToolOutcome:
        key = (name, json.dumps(arguments, sort_keys=True))
        if key not in results:
            return ToolOutcome(json.dumps({"error": f"no scripted result for {key}"}), True)
        return ToolOutcome(results[key])
    return execute


@dataclass
class SessionResult:
    prompt_tokens: list[int] = field(default_factory=list)  # first round of each query
    evaluated: list[int] = field(default_factory=list)
    required: list[int] = field(default_factory=list)  # 0 for the first query
    notes: list[str] = field(default_factory=list)
    rounds: list[int] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    calls: list[list[str]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)  # prompt seconds of each query's first round

    @property
    def ratios(self) -> list[float]:
        return [e / r for e, r in zip(self.evaluated[1:], self.required[1:])]

    def summary(self) -> dict[str, Any]:
        return {"worst_ratio": max(self.ratios), "per_query": [round(r, 3) for r in self.ratios],
                "evaluated": self.evaluated, "required": self.required, "prompt_tokens": self.prompt_tokens,
                "rounds_per_query": self.rounds, "calls": self.calls, "notes": self.notes,
                "prompt_seconds_first_rounds": [round(s, 4) for s in self.seconds]}


def run_queries(backend: Any, count_tokens: Callable[[str], int], *, session_id: str) -> SessionResult:
    """Drive the 5-query session through the agent; measure each query's first round."""
    execute, tools = _scripted_executor(), scripted_tools()
    messages: list[dict[str, Any]] = []
    result = SessionResult()
    previous_user_end = 0
    for query in QUERIES:
        messages.append({"role": "user", "content": query})
        upto_user = render_prompt(messages, tools, add_generation_prompt=False, enable_thinking=THINKING)
        run = _drive(backend, messages, execute, session_id=session_id, thinking=THINKING, rounds=8,
                     max_tokens=100)
        first = run.usages[0]
        result.prompt_tokens.append(first.prompt_tokens)
        result.evaluated.append(first.prompt_tokens_evaluated)
        result.required.append(first.prompt_tokens - previous_user_end if previous_user_end else 0)
        result.notes.append(first.reuse_note)
        result.rounds.append(len(run.usages))
        result.calls.append(run.calls)
        result.answers.append(messages[-1].get("content", ""))
        result.seconds.append(first.prompt_seconds)
        assert run.finished == "answer", f"query {len(result.answers)} ended with {run.finished}"
        previous_user_end = count_tokens(upto_user)
    return result


# -- in process ---------------------------------------------------------------------------------
def _in_process_session(gguf, per_session: int, label: str) -> tuple[SessionResult, dict[str, Any]]:
    from smol_tools.backends.llama_cpp import LlamaCppBackend

    backend = LlamaCppBackend(gguf, n_ctx=SERVER_CTX, n_threads=1, checkpoints_per_session=per_session)
    model = backend.model
    llm = model.llm
    # Count what is really decoded for each turn's prompt: every llama_cpp eval before the turn's
    # first sample (the backend may split the prompt at a checkpoint).
    per_turn: list[int] = []
    sampling = [False]
    original_eval, original_sample = llm.eval, llm.sample

    def counting_eval(tokens):
        if not sampling[0]:
            per_turn[-1] += len(tokens)
        return original_eval(tokens)

    def counting_sample(*args, **kwargs):
        sampling[0] = True
        return original_sample(*args, **kwargs)

    class Counting:
        """Starts a count at each turn; everything else goes to the backend."""

        def __getattr__(self, name: str) -> Any:
            return getattr(backend, name)

        def stream_turn(self, *args: Any, **kwargs: Any):
            per_turn.append(0)
            sampling[0] = False
            return backend.stream_turn(*args, **kwargs)

    llm.eval, llm.sample = counting_eval, counting_sample
    session_id = f"bench-checkpoints-{label}-{time.monotonic_ns()}"
    try:
        result = run_queries(Counting(), lambda text: len(model.tokenize(text.encode(), first=True)),
                             session_id=session_id)
        stored = model.checkpoints.of(session_id)
    finally:
        del llm.eval, llm.sample  # back to the class methods
        backend.forget_session(session_id)
    firsts = [sum(result.rounds[:k]) for k in range(len(result.rounds))]
    decoded = [per_turn[i] for i in firsts]
    assert decoded == result.evaluated, f"perf counters say {result.evaluated}, eval calls {decoded}"
    memory = {"checkpoints": len(stored), "bytes_each": sorted({c.size for c in stored}),
              "bytes_total": sum(c.size for c in stored), "decoded_first_rounds": decoded}
    return result, memory


def in_process(quick: bool) -> list[Figure]:
    from devkit.tiny_gguf import ensure_tiny_gguf

    gguf = ensure_tiny_gguf("Q8_0")
    figure = Figure("checkpoints_in_process", "New user query, in process (5 queries × 3 tool rounds)",
                    "prompt tokens evaluated (first round of queries 2-5, worst)",
                    "tokens from the previous exchange's first assistant turn to the end of the prompt",
                    "<= 1.1", 1.1)
    off, _ = _in_process_session(gguf, 0, "off")
    for rep in range(1 if quick else 2):
        on, memory = _in_process_session(gguf, 4, f"on-{rep}")
        figure.samples.append(on.summary()["worst_ratio"])
    assert on.answers == off.answers and on.calls == off.calls, "checkpoints changed an answer"
    figure.details = {"checkpoints": on.summary(), "no_checkpoints": off.summary(), "memory": memory,
                      "answers_identical": True}
    timing = ""
    if not quick:  # what it saves in time where a token costs something: the heavy twin
        from .heavy_twin import ensure_heavy_twin

        twin_off, _ = _in_process_session(ensure_heavy_twin(), 0, "twin-off")
        twin_on, _ = _in_process_session(ensure_heavy_twin(), 4, "twin-on")
        assert twin_on.answers == on.answers == twin_off.answers, "the heavy twin answered differently"
        seconds = {"checkpoints": sum(twin_on.seconds[1:]), "no_checkpoints": sum(twin_off.seconds[1:])}
        figure.details["heavy_twin"] = {"checkpoints": twin_on.summary(), "no_checkpoints": twin_off.summary(),
                                        "prompt_seconds_queries_2_5": seconds}
        timing = (f" On the heavy twin (same answers, a realistic cost per token) the first rounds of queries 2-5 "
                  f"took {seconds['checkpoints']:.2f} s of prompt processing with checkpoints and "
                  f"{seconds['no_checkpoints']:.2f} s without (ratios {twin_on.summary()['per_query']}).")
    figure.notes = [
        f"Tiny Q8_0 GGUF, one thread. Per new query, evaluated ÷ required: {on.summary()['per_query']} "
        f"(evaluated {on.evaluated[1:]} of prompts {on.prompt_tokens[1:]}); without checkpoints "
        f"{off.summary()['per_query']} (the whole prompt). The backend saves the recurrent state after "
        "`<|im_start|>assistant\\n` of each query's first turn and resumes there; the few tokens it evaluates "
        "less than the required count are that header, which both renders share. Evaluated tokens are "
        "llama.cpp's perf counters, equal to the tokens passed to llama-cpp-python's `eval` "
        f"({memory['decoded_first_rounds'][1:]}). Answers and calls are identical with and without checkpoints. "
        f"Memory: {memory['checkpoints']} checkpoints kept (4 per session by default) of "
        f"{memory['bytes_each']} bytes each." + timing]
    return [figure]


# -- checkpoint memory ----------------------------------------------------------------------------
def _real_4b_shape():
    """Qwen3.5-4B's recurrent layers (its model card: 32 layers, 24 of them Gated DeltaNet with
    32 value heads and 16 query/key heads of dimension 128, convolution kernel 4)."""
    from smol_tools.pipeline.memory import ModelShape

    linear = tuple(i for i in range(32) if (i + 1) % 4)
    return ModelShape(arch="qwen35", n_layer=32, full_layers=tuple(i for i in range(32) if not (i + 1) % 4),
                      recurrent_layers=linear, n_head_kv=(4,) * 32, key_length=256, value_length=256,
                      conv_kernel=4, state_size=128, group_count=16, inner_size=32 * 128,
                      weights_bytes=0, n_params=0)


def checkpoint_memory(quick: bool) -> list[Figure]:
    """Measured checkpoint size ÷ the recurrent-state formula, tiny model and heavy twin; 4B computed."""
    from smol_tools.backends.checkpoints import save_partial_state
    from smol_tools.backends.llama_cpp import LlamaCppBackend
    from smol_tools.pipeline.memory import read_shape, recurrent_state_bytes
    from devkit.tiny_gguf import ensure_tiny_gguf

    from .heavy_twin import ensure_heavy_twin

    figure = Figure("checkpoints_memory", "Checkpoint size, measured ÷ computed recurrent state",
                    "bytes of one checkpoint (llama.cpp partial sequence state)",
                    "recurrent state from the GGUF's shape (pipeline/memory.py)", "", None)
    rows = {}
    for label, gguf in (("tiny Q8_0", ensure_tiny_gguf("Q8_0")), ("heavy twin Q8_0", ensure_heavy_twin())):
        backend = LlamaCppBackend(gguf, n_ctx=SERVER_CTX, n_threads=1)
        llm = backend.model.llm
        with backend.model.lock:
            backend.model.owner = None  # the state below belongs to no session
            llm.reset()
            llm.eval(backend.model.tokenize(b"<|im_start|>user\nhello<|im_end|>\n", first=True))
            measured = len(save_partial_state(llm))
            llm.reset()
        computed = recurrent_state_bytes(read_shape(gguf))
        rows[label] = {"measured_bytes": measured, "computed_bytes": computed}
        figure.samples.append(measured / computed)
    real = recurrent_state_bytes(_real_4b_shape())
    rows["Qwen3.5-4B (computed)"] = {"computed_bytes": real, "mib": round(real / 2**20, 2)}
    figure.details = rows
    tiny, twin = rows["tiny Q8_0"], rows["heavy twin Q8_0"]
    figure.notes = [
        f"One checkpoint: tiny {tiny['measured_bytes']:,} B, heavy twin {twin['measured_bytes']:,} B (the twin "
        "widens only the MLPs, so its recurrent state is the tiny one's); each is the recurrent state of the "
        f"3 linear-attention layers plus {tiny['measured_bytes'] - tiny['computed_bytes']} B of llama.cpp's "
        "header. The size does not grow with the position or the context length. At the real size (24 "
        f"Gated DeltaNet layers, 32 value heads of 128 × 128, f32): {real / 2**20:.1f} MiB per checkpoint, so the "
        "in-process defaults (4 per session, 512 MiB for all sessions) hold at most ten at 4B; llama-server's "
        f"default `--ctx-checkpoints 32` is up to {32 * real / 2**30:.1f} GiB per slot."]
    return [figure]


# -- llama-server ---------------------------------------------------------------------------------
_CREATED = re.compile(r"created context checkpoint (\d+) of (\d+) .*?size = ([\d.]+) MiB")


def _server_log_figures(log: str) -> dict[str, Any]:
    created = _CREATED.findall(log)
    return {"checkpoints_created": len(created), "most_held": max((int(n) for n, _, _ in created), default=0),
            "mib_each": sorted({float(s) for _, _, s in created}),
            "restored": log.count("restored context checkpoint"),
            "full_reprocessing": log.count("forcing full prompt re-processing"),
            "erased_too_close": log.count("erasing context checkpoint too close")}


def _server_session(gguf, extra: list[str], kind: str) -> tuple[SessionResult, dict[str, Any]]:
    from smol_tools.backends.llama_server_tokens import LlamaServerTokensBackend
    from smol_tools.backends.openai_compat import OpenAICompatBackend
    from smol_tools.llamacpp.server import LlamaServer

    # -lv 4 logs checkpoint creation and restores (trace level), counted from the log.
    with LlamaServer(gguf, extra_args=[*extra, "--no-prefill-assistant", "-lv", "4"], ctx_size=SERVER_CTX) as server:
        if kind == "tokens":
            backend: Any = LlamaServerTokensBackend(server.base_url, context_length=SERVER_CTX)
        else:
            backend = OpenAICompatBackend(server.base_url, context_length=SERVER_CTX)

        def count(text: str) -> int:
            return len(server.post("/tokenize", {"content": text, "add_special": True, "parse_special": True})["tokens"])
        result = run_queries(backend, count, session_id=f"server-{kind}")
        log = _server_log_figures(server.log_tail(2_000_000))
    return result, log


def llama_server(quick: bool) -> list[Figure]:
    from smol_tools.llamacpp.server import CHECKPOINT_ARGS
    from devkit.tiny_gguf import ensure_tiny_gguf

    gguf = ensure_tiny_gguf("Q8_0")
    # The managed server's arguments first (the figure); then llama-server's own defaults, the two
    # eviction policies with a list short enough to fill in this session, no checkpoints (the
    # anchor: today's cost), and the OpenAI endpoint (the server renders the prompt itself).
    variants = {"managed (" + " ".join(CHECKPOINT_ARGS) + ")": ("tokens", []),
                "llama-server defaults (--checkpoint-min-step 8192)": ("tokens", ["--checkpoint-min-step", "8192"]),
                "--ctx-checkpoints 12 --checkpoint-min-step 8192": ("tokens", ["--ctx-checkpoints", "12",
                                                                                 "--checkpoint-min-step", "8192"]),
                "--ctx-checkpoints 12 --checkpoint-min-step 0": ("tokens", ["--ctx-checkpoints", "12"]),
                "--ctx-checkpoints 0": ("tokens", ["--ctx-checkpoints", "0"]),
                "OpenAI endpoint (/v1/chat/completions), managed": ("openai", [])}
    if quick:
        variants = dict(list(variants.items())[:1])
    results = {label: _server_session(gguf, extra, kind) for label, (kind, extra) in variants.items()}
    managed = next(iter(results))
    figure = Figure("checkpoints_llama_server", "New user query, llama-server fed token prompts (5 queries × 3 rounds)",
                    "prompt tokens evaluated (timings.prompt_n, first round of queries 2-5, worst)",
                    "tokens from the previous exchange's first assistant turn to the end of the prompt",
                    "<= 1.1", 1.1, samples=[results[managed][0].summary()["worst_ratio"]])
    figure.details = {label: {**r.summary(), "log": log} for label, (r, log) in results.items()}
    answers = {label: r.answers for label, (r, _) in results.items()}
    figure.details["answers_identical"] = len({json.dumps(a) for a in answers.values()}) == 1
    lines = [f"{label}: worst {r.summary()['worst_ratio']:.2f}, per query {r.summary()['per_query']} "
             f"(checkpoints restored {log['restored']}, full re-processing {log['full_reprocessing']}, "
             f"created {log['checkpoints_created']}, at most {log['most_held']} held, {log['mib_each']} MiB each)"
             for label, (r, log) in results.items()]
    figure.notes = ["Tiny Q8_0 GGUF, `llama-server --jinja`. " + "; ".join(lines) + "."]
    return [figure]


def run(quick: bool) -> list[Figure]:
    return [*in_process(quick), *checkpoint_memory(quick), *llama_server(quick)]
