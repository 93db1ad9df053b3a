"""Backends on the tiny model: the in-process adapter and a real llama-server (through its
OpenAI API, and fed token prompts on /completion) give the same turns, the same tool rounds and
the same answers; prompt reuse; shared-model safety."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from smol_tools.agent import Agent, AgentConfig, ToolOutcome
from smol_tools.events import (AgentFinished, ContentDelta, ToolCallCompleted, ToolCallStarted, ToolResultReady,
                               TurnComplete)
from smol_tools.backends.base import BackendError, CancelToken, SamplingParams
from smol_tools.backends.llama_cpp import LlamaCppBackend
from smol_tools.backends.llama_server_tokens import LlamaServerTokensBackend
from smol_tools.backends.openai_compat import OpenAICompatBackend
from smol_tools.toolcalls import parse_output
from devkit.scripted import conversation, load_scripted, scripted_tool_results, scripted_turns

TOOLS = load_scripted()["tools"]
TURNS = scripted_turns()
GREEDY = SamplingParams.greedy(max_tokens=200)
MULTI_ROUND = ["single_tool", "multi_tool_parallel", "multi_tool_sequential", "reasoning_then_call",
               "error_recovery", "thinking_off_call"]


@pytest.fixture(scope="module")
def in_process(tiny_gguf_q8_0) -> LlamaCppBackend:
    return LlamaCppBackend(tiny_gguf_q8_0, n_ctx=4096)


@pytest.fixture(scope="module")
def server_backend(tiny_llama_server) -> OpenAICompatBackend:
    return OpenAICompatBackend(tiny_llama_server.base_url, context_length=4096)


@pytest.fixture(scope="module")
def token_backend(tiny_llama_server) -> LlamaServerTokensBackend:
    return LlamaServerTokensBackend(tiny_llama_server.base_url, context_length=4096)


def _turn(backend, turn, session_id="turns"):
    events = list(backend.stream_turn(turn.history, TOOLS, sampling=GREEDY,
                                      enable_thinking=turn.thinking, session_id=session_id))
    assert isinstance(events[-1], TurnComplete)
    return events


def _summary(result):
    return (result.reasoning or "", result.content,
            [(c.name, c.arguments) for c in result.tool_calls], [e.message for e in result.errors])


@pytest.mark.parametrize("turn", TURNS, ids=lambda t: t.name)
def test_in_process_reproduces_each_scripted_turn(in_process, turn) -> None:
    events = _turn(in_process, turn, session_id=f"turn-{turn.name}")
    complete = events[-1]
    assert complete.raw + "<|im_end|>" == turn.raw
    assert _summary(complete.result) == _summary(parse_output(turn.raw, thinking_open=turn.thinking))
    assert complete.finish_reason == ("tool_calls" if complete.result.tool_calls else "stop")
    started = [e for e in events if isinstance(e, ToolCallStarted)]
    completed = [e for e in events if isinstance(e, ToolCallCompleted)]
    assert len(started) == len(completed) == len(complete.result.tool_calls)
    assert "".join(e.text for e in events if isinstance(e, ContentDelta)).strip() == complete.result.content


@pytest.mark.parametrize("turn", TURNS, ids=lambda t: t.name)
def test_llama_server_gives_the_same_turn(in_process, server_backend, turn) -> None:
    ours = _turn(in_process, turn, session_id=f"turn-{turn.name}")[-1]
    theirs = _turn(server_backend, turn)[-1]
    assert _summary(theirs.result) == _summary(ours.result)
    assert theirs.finish_reason == ours.finish_reason


def _scripted_executor():
    results = scripted_tool_results()

    def execute(name: str, arguments: dict) -> ToolOutcome:
        key = (name, json.dumps(arguments, sort_keys=True))
        if key not in results:
            return ToolOutcome(json.dumps({"error": f"no scripted result for {key}"}), True)
        return ToolOutcome(results[key])
    return execute


def _run_session(backend, conversation_id: str, session_id: str):
    script = conversation(conversation_id)
    first_answer = next(i for i, m in enumerate(script["messages"]) if m["role"] == "assistant")
    messages = [dict(m) for m in script["messages"][:first_answer]]  # system + the user's question
    agent = Agent(backend, TOOLS, _scripted_executor(), session_id=session_id,
                  config=AgentConfig(enable_thinking=script["thinking"], sampling=GREEDY))
    events = list(agent.run(messages))
    return messages, events


def _transcript(messages, events):
    calls = [(e.round, e.name, e.arguments, e.outcome.content) for e in events if isinstance(e, ToolResultReady)]
    finished = events[-1]
    assert isinstance(finished, AgentFinished)
    return calls, finished.reason, finished.content


def _cli_session(conversation_id: str):
    """The conversation through the public command line, in process on the shipped tiny model:
    `smol-tools chat --model tiny --once QUESTION --json` prints the turn as the app's /send does."""
    script = conversation(conversation_id)
    question = next(m["content"] for m in script["messages"] if m["role"] == "user")
    system = next((m["content"] for m in script["messages"] if m["role"] == "system"), None)
    args = ["chat", "--model", "tiny", "--once", question, "--json"]
    args += (["--system", system] if system else []) + ([] if script["thinking"] else ["--no-think"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMOL_TOOLS_")} | {"HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "smol_tools", *args], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    turn = json.loads(done.stdout)
    assert turn["user"] == question and turn["turn"] == 1
    calls = [(c["round"], c["name"], c["arguments"], c["result"]) for c in turn["calls"]]
    return calls, turn["finish"]["reason"], turn["answer"]


@pytest.mark.parametrize("conversation_id", MULTI_ROUND)
def test_agent_session_identical_in_process_and_llama_server(server_backend, conversation_id) -> None:
    script = conversation(conversation_id)
    expected_final = [m for m in script["messages"] if m["role"] == "assistant"][-1]["message"]["content"]
    ours = _cli_session(conversation_id)
    theirs = _transcript(*_run_session(server_backend, conversation_id, "server"))
    assert ours == theirs
    assert ours[1] == "answer" and ours[2] == expected_final
    assert ours[0], "the scripted session calls tools"


@pytest.mark.parametrize("turn", TURNS, ids=lambda t: t.name)
def test_llama_server_token_prompts_give_the_same_turn(token_backend, turn) -> None:
    """Our renderer's prompt as token ids on /completion, our parser on the raw text: the
    scripted turn comes back byte for byte."""
    complete = _turn(token_backend, turn, session_id=f"tokens-{turn.name}")[-1]
    assert complete.raw + "<|im_end|>" == turn.raw
    assert _summary(complete.result) == _summary(parse_output(turn.raw, thinking_open=turn.thinking))
    assert complete.finish_reason == ("tool_calls" if complete.result.tool_calls else "stop")


@pytest.mark.parametrize("conversation_id", MULTI_ROUND)
def test_agent_session_identical_through_llama_server_token_prompts(in_process, token_backend,
                                                                    conversation_id) -> None:
    ours = _transcript(*_run_session(in_process, conversation_id, f"agent-{conversation_id}"))
    assert _transcript(*_run_session(token_backend, conversation_id, f"tokens-{conversation_id}")) == ours


def test_llama_server_token_prompts_evaluate_only_new_tokens(token_backend) -> None:
    """The slot holds the previous prompt and every generated token but the stop token; the next
    prompt is those very ids plus the new suffix's, so the server evaluates only the suffix: the
    empty think block that costs the OpenAI path a checkpoint restore each round does not merge."""
    _, events = _run_session(token_backend, "error_recovery", "tokens-reuse")
    usages = [e.usage for e in events if isinstance(e, TurnComplete)]
    assert len(usages) == 4
    for previous, current in zip(usages, usages[1:]):
        held = previous.prompt_tokens + previous.completion_tokens - 1  # predicted_n counts the stop token
        assert current.prompt_tokens_evaluated == current.prompt_tokens - held
        assert current.cached_tokens == held


def test_llama_server_token_prompts_refuse_a_down_server() -> None:
    backend = LlamaServerTokensBackend("http://127.0.0.1:9", context_length=4096, timeout_s=2)
    assert not backend.check().ok
    with pytest.raises(BackendError, match="cannot reach"):
        list(backend.stream_turn([{"role": "user", "content": "hi"}], TOOLS, sampling=GREEDY))


def test_in_process_prompt_reuse_evaluates_only_new_tokens(tiny_gguf_q8_0) -> None:
    backend = LlamaCppBackend(tiny_gguf_q8_0, n_ctx=4096)
    messages, events = _run_session(backend, "error_recovery", "reuse")
    usages = [e.usage for e in events if isinstance(e, TurnComplete)]
    assert len(usages) == 4
    # Round 1 starts from an empty state: the whole prompt is evaluated, and counted exactly.
    assert usages[0].prompt_tokens_evaluated == usages[0].prompt_tokens
    assert usages[0].cached_tokens == 0
    for previous, current in zip(usages, usages[1:]):
        # Everything the previous round left in the state (its prompt and every generated token
        # but the stop token) is reused...
        kept = previous.prompt_tokens + previous.completion_tokens
        assert current.cached_tokens == kept
        # ...so exactly the new suffix (the tool result turn and the generation prompt) is evaluated.
        assert current.prompt_tokens_evaluated == current.prompt_tokens - kept
        assert current.prompt_tokens_evaluated < 0.25 * current.prompt_tokens


@pytest.mark.parametrize("kind", ["in-process", "llama-server tokens"])
def test_context_check_and_turn_share_one_rendering(kind, tiny_gguf_q8_0, token_backend, monkeypatch) -> None:
    """The agent's context check asks the backend for the exact prompt size; the turn then feeds
    those very tokens: one render and one suffix tokenization per round, not two."""
    from smol_tools.backends import prepared as module

    backend = LlamaCppBackend(tiny_gguf_q8_0, n_ctx=4096) if kind == "in-process" else token_backend
    renders: list[int] = []
    real_render = module.render_prompt

    def counting_render(*args, **kwargs):
        renders.append(1)
        return real_render(*args, **kwargs)
    monkeypatch.setattr(module, "render_prompt", counting_render)
    checked: list[int] = []
    real_count = backend.count_prompt_tokens

    def recording_count(*args, **kwargs) -> int:
        checked.append(real_count(*args, **kwargs))
        return checked[-1]
    monkeypatch.setattr(backend, "count_prompt_tokens", recording_count)
    _, events = _run_session(backend, "error_recovery", f"one-render-{kind}")
    completes = [e for e in events if isinstance(e, TurnComplete)]
    assert len(renders) == len(completes) == 4
    # The size the check reported is the size the turn fed.
    assert checked == [c.usage.prompt_tokens for c in completes]


def test_sessions_share_one_model_without_cross_talk(tiny_gguf_q8_0) -> None:
    backend = LlamaCppBackend(tiny_gguf_q8_0, n_ctx=4096)
    expected = {cid: _transcript(*_run_session(backend, cid, f"solo-{cid}")) for cid in MULTI_ROUND[:4]}
    got: dict[str, object] = {}

    def worker(cid: str) -> None:
        got[cid] = _transcript(*_run_session(backend, cid, f"concurrent-{cid}"))
    threads = [threading.Thread(target=worker, args=(cid,)) for cid in MULTI_ROUND[:4] * 1]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert got == expected


def test_cancel_stops_generation(in_process) -> None:
    cancel = CancelToken()
    cancel.cancel()
    turn = TURNS[0]
    complete = list(in_process.stream_turn(turn.history, TOOLS, sampling=GREEDY, cancel=cancel,
                                           session_id="cancel"))[-1]
    assert complete.finish_reason == "cancelled"
    assert complete.usage.completion_tokens == 0


def test_backend_down_is_a_clear_error_and_history_is_kept() -> None:
    from smol_tools.llamacpp.server import free_port

    backend = OpenAICompatBackend(f"http://127.0.0.1:{free_port()}", timeout_s=5)
    assert not backend.check().ok
    assert "cannot reach" in backend.check().message
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    events = list(Agent(backend, TOOLS, _scripted_executor()).run(messages))
    assert isinstance(events[-1], AgentFinished) and events[-1].reason == "error"
    assert "lost the connection" in events[-1].message
    assert messages == [{"role": "user", "content": "What is the weather in Paris?"}]


def test_in_process_check_and_missing_file(in_process, tmp_path) -> None:
    assert in_process.check().ok
    with pytest.raises(BackendError, match="no GGUF file"):
        LlamaCppBackend(tmp_path / "missing.gguf")
