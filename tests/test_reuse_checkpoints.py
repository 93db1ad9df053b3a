"""A new user query costs only the new work (issue 17): the template drops the previous
exchange's reasoning, so its first assistant turn re-renders differently, and the hybrid model's
recurrent state cannot be rolled back there. The in-process backend resumes from a recurrent-state
checkpoint taken right after that turn's `<|im_start|>assistant\\n`; llama-server from its context
checkpoints. Exact evaluated-token counts for a second and third query, in process, through
llama-server and through the app's `/send`; the same answers with and without checkpoints."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from smol_tools.agent import Agent, AgentConfig, ToolOutcome
from smol_tools.events import AgentFinished, ToolResultReady, TurnComplete
from smol_tools.backends.base import SamplingParams
from smol_tools.backends.checkpoints import Checkpoint, CheckpointStore, token_digest
from smol_tools.backends.llama_cpp import LlamaCppBackend
from smol_tools.backends.prepared import divergence_reason
from smol_tools.chat_format import render_prompt
from devkit.scripted import load_scripted, scripted_tool_results
from tests.test_app_support import app_server  # noqa: F401 (fixture)

TOOLS = load_scripted()["tools"]
QUERY = "Show me notes.txt."  # the tiny model answers it after three tool rounds
THINK_OPEN = "<think>\n"  # the generation prompt's tail after `<|im_start|>assistant\n` (thinking on)


# -- the store and the reason, no model --------------------------------------------------------
def _cp(n: int, size: int = 10) -> Checkpoint:
    tokens = list(range(n))
    return Checkpoint(n, n * 3, token_digest(tokens), bytes(size))


def test_store_keeps_the_newest_per_session_and_fits_the_budget() -> None:
    store = CheckpointStore(per_session=2, budget_bytes=45)
    for n in (5, 9, 12):
        store.add("a", _cp(n))
    assert [c.n_tokens for c in store.of("a")] == [9, 12]  # the oldest went first
    store.add("b", _cp(7))
    store.add("b", _cp(8))  # 40 bytes in all: fits
    assert store.total_bytes() == 40
    store.add("c", _cp(3))  # over budget: the least recent session with two loses its older one
    assert [c.n_tokens for c in store.of("a")] == [12] and len(store.of("b")) == 2
    store.add("c", _cp(4))  # again: now b, the least recent with two
    assert [c.n_tokens for c in store.of("b")] == [8] and [c.n_tokens for c in store.of("c")] == [3, 4]
    store.add("a", _cp(4))  # a checkpoint before the newest replaces those after it
    assert [c.n_tokens for c in store.of("a")] == [4]
    store.keep_until("c", 3)  # a restore at 3: what continued past it is gone
    assert [c.n_tokens for c in store.of("c")] == [3]
    store.add("d", _cp(20, size=50))  # larger than the budget on its own: everything else goes first
    assert store.of("d") == [] and store.total_bytes() <= 45
    store.per_session = 0
    store.trim()
    assert store.total_bytes() == 0 and not store.enabled


def test_a_checkpoint_is_used_only_on_the_tokens_it_was_taken_on() -> None:
    store = CheckpointStore()
    store.add("s", _cp(6))
    assert store.for_tokens("s", list(range(10)), 9).n_tokens == 6
    assert store.for_tokens("s", list(range(10)), 5) is None  # the prompt diverges before it
    assert store.for_tokens("s", [1, 2, 3, 4, 5, 6, 7], 6) is None  # other tokens: unusable
    assert store.for_tokens("other", list(range(10)), 9) is None  # sessions are kept apart
    held = b"abcdefghijklmnopqrstu"
    assert store.for_prompt("s", b"abcdefghijklmnopqrXYZ", held).n_tokens == 6  # text_len 18
    assert store.for_prompt("s", b"abcdefXYZ", held) is None


def test_the_reason_names_the_dropped_reasoning() -> None:
    held = b"<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n<tool_call>\n{}"
    dropped = b"<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n<tool_call>\n{}<|im_end|>\n"
    assert divergence_reason(dropped, held) == "previous reasoning dropped from the prompt"
    assert divergence_reason(held[:40], held) == "the prompt repeats what the model already read"
    assert divergence_reason(b"<|im_start|>user\nother", held) == "an earlier message changed"


# -- the tiny model ---------------------------------------------------------------------------------
@dataclass
class Query:
    prompt_tokens: int
    evaluated: int
    cached: int
    note: str
    resume_at: int  # where the NEXT query can resume: this query's prompt up to `<|im_start|>assistant\n`
    answer: str
    calls: list[str]
    completion_tokens: list[int]


def _execute(name: str, arguments: dict) -> ToolOutcome:
    result = scripted_tool_results().get((name, json.dumps(arguments, sort_keys=True)))
    return ToolOutcome(result) if result is not None else ToolOutcome('{"error": "unknown"}', True)


def _ask(backend, messages: list[dict], session_id: str, query: str = QUERY) -> Query:
    messages.append({"role": "user", "content": query})
    prefix = render_prompt(messages, TOOLS, add_generation_prompt=True, enable_thinking=True)
    assert prefix.endswith("<|im_start|>assistant\n" + THINK_OPEN)
    resume_at = backend.count_tokens(prefix[: -len(THINK_OPEN)])
    agent = Agent(backend, TOOLS, _execute, session_id=session_id,
                  config=AgentConfig(max_rounds=6, sampling=SamplingParams.greedy(max_tokens=100)))
    usages, calls, finished = [], [], None
    for event in agent.run(messages):
        if isinstance(event, TurnComplete):
            usages.append(event.usage)
        elif isinstance(event, ToolResultReady):
            calls.append(event.name)
        elif isinstance(event, AgentFinished):
            finished = event
    assert finished is not None and finished.reason == "answer", finished
    first = usages[0]
    return Query(first.prompt_tokens, first.prompt_tokens_evaluated, first.cached_tokens, first.reuse_note,
                 resume_at, finished.content, calls, [u.completion_tokens for u in usages])


def _session(backend, session_id: str, n: int = 3) -> list[Query]:
    messages: list[dict] = []
    return [_ask(backend, messages, session_id) for _ in range(n)]


@pytest.fixture(scope="module")
def in_process(tiny_gguf_q8_0) -> LlamaCppBackend:
    return LlamaCppBackend(tiny_gguf_q8_0, n_ctx=4096, n_threads=1)


@pytest.fixture(scope="module")
def with_and_without(in_process) -> tuple[list[Query], list[Query]]:
    store = in_process.model.checkpoints
    on = _session(in_process, "checkpoints-on")
    in_process.forget_session("checkpoints-on")
    store.per_session, saved = 0, store.per_session
    try:
        off = _session(in_process, "checkpoints-off")
    finally:
        store.per_session = saved
        in_process.forget_session("checkpoints-off")
    return on, off


@pytest.mark.slow
def test_second_and_third_query_evaluate_only_from_the_previous_exchange(in_process, with_and_without) -> None:
    on, _ = with_and_without
    assert on[0].evaluated == on[0].prompt_tokens and on[0].note == ""
    for previous, query in zip(on, on[1:]):
        # Resumed exactly after `<|im_start|>assistant\n` of the previous query's first turn.
        assert query.cached == previous.resume_at
        assert query.evaluated == query.prompt_tokens - previous.resume_at
        assert query.note == f"previous reasoning dropped from the prompt: resumed from the checkpoint at token {previous.resume_at}"
    # The same counts as numbers: a change in the template or the tiny model shows here first.
    assert [(q.prompt_tokens, q.evaluated) for q in on] == [(396, 396), (538, 144), (680, 144)]


@pytest.mark.slow
def test_answers_are_identical_without_checkpoints(with_and_without) -> None:
    on, off = with_and_without
    assert [(q.answer, q.calls, q.completion_tokens) for q in on] == [(q.answer, q.calls, q.completion_tokens) for q in off]
    assert on[0].answer == "There is no notes.txt; todo.txt says: buy milk."
    assert [q.evaluated for q in off] == [q.prompt_tokens for q in off]  # today's cost: everything
    assert all("no checkpoint" in q.note for q in off[1:])


@pytest.mark.slow
def test_checkpoints_stay_with_their_session_when_sessions_interleave(in_process, with_and_without) -> None:
    on, _ = with_and_without
    a, b = [], []
    first_a = _ask(in_process, a, "interleave-a")
    first_b = _ask(in_process, b, "interleave-b", "What is the weather in Paris?")
    second_a = _ask(in_process, a, "interleave-a")  # A's state was parked while B ran
    assert (second_a.prompt_tokens, second_a.cached) == (on[1].prompt_tokens, first_a.resume_at)
    assert second_a.answer == on[1].answer
    second_b = _ask(in_process, b, "interleave-b")
    assert second_b.cached == first_b.resume_at
    assert second_b.evaluated == second_b.prompt_tokens - first_b.resume_at
    for session_id in ("interleave-a", "interleave-b"):
        in_process.forget_session(session_id)
    assert in_process.model.checkpoints.of("interleave-a") == []


@pytest.mark.slow
def test_a_repeated_prompt_resumes_from_the_checkpoint(in_process) -> None:
    messages = [{"role": "user", "content": QUERY}]
    for _ in range(2):  # the second time, the state already holds this prompt and more
        events = list(in_process.stream_turn(messages, TOOLS, sampling=SamplingParams.greedy(max_tokens=50),
                                             session_id="repeat"))
    usage = events[-1].usage
    resume = in_process.count_tokens(render_prompt(messages, TOOLS, add_generation_prompt=True)[: -len(THINK_OPEN)])
    assert (usage.cached_tokens, usage.prompt_tokens_evaluated) == (resume, usage.prompt_tokens - resume)
    assert usage.reuse_note.startswith("the prompt repeats what the model already read: resumed")
    in_process.forget_session("repeat")


@pytest.mark.slow
def test_llama_server_resumes_from_its_context_checkpoint(tiny_llama_server, with_and_without) -> None:
    from smol_tools.backends.llama_server_tokens import LlamaServerTokensBackend

    on, _ = with_and_without
    backend = LlamaServerTokensBackend(tiny_llama_server.base_url, context_length=4096)
    queries = _session(backend, "server-checkpoints")
    assert [(q.answer, q.calls) for q in queries] == [(q.answer, q.calls) for q in on]
    for previous, query in zip(queries, queries[1:]):
        # The server checkpoints 4 tokens before each prompt's end: before `assistant\n<think>\n`,
        # inside the part both renders share, so it re-evaluates just `assistant\n` more than we do.
        assert query.cached == previous.resume_at - 2
        assert query.evaluated == query.prompt_tokens - previous.resume_at + 2
        assert query.note == f"previous reasoning dropped from the prompt: the server resumed from token {query.cached}"


# -- through the app --------------------------------------------------------------------------------
@pytest.mark.slow
def test_the_app_send_reuses_across_queries_and_says_why(app_server, in_process) -> None:
    from tests.test_app_support import call, client

    c = client(app_server)
    turns = [call(c, "send", QUERY) for _ in range(3)]
    firsts = [t["rounds"][0]["usage"] for t in turns]
    assert all(t["answer"] == "There is no notes.txt; todo.txt says: buy milk." for t in turns)
    think = in_process.count_tokens(THINK_OPEN)
    assert firsts[0]["prompt_tokens_evaluated"] == firsts[0]["prompt_tokens"]
    for previous, first in zip(firsts, firsts[1:]):
        resume = previous["prompt_tokens"] - think  # the previous query's prompt up to `assistant\n`
        assert (first["cached_tokens"], first["prompt_tokens_evaluated"]) == (resume, first["prompt_tokens"] - resume)
        assert first["reuse_note"] == f"previous reasoning dropped from the prompt: resumed from the checkpoint at token {resume}"
    logs = [m["metadata"].get("log", "") for m in call(c, "chat_messages") if m.get("metadata")]
    assert sum("re-evaluated because previous reasoning dropped from the prompt" in log for log in logs) == 2
