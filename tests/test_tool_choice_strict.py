"""tool_choice, parallel_tool_calls and strict calls (issue 19 §1-2).

On the tiny model, in process (llama-cpp-python's sampler API) and through a real llama-server
fed token prompts (/completion's grammar, grammar_lazy, grammar_triggers, logit_bias):
"none" never yields a call, "required" and a named function always yield a call of an allowed
tool, parallel_tool_calls=false yields one call, and strict calls stay valid when the output is
pushed toward invalid JSON, an unknown tool or a schema violation, while the same pushes break
the call with strict off. The agent's own enforcement (for runtimes that cannot force a call,
Ollama) runs on a scripted backend.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Iterator

import jsonschema
import pytest

from smol_tools.agent import Agent, AgentConfig, ToolOutcome
from smol_tools.events import AgentFinished, ToolResultReady, TurnComplete, Usage
from smol_tools.backends.base import BackendError, SamplingParams
from smol_tools.backends.llama_cpp import LlamaCppBackend
from smol_tools.backends.llama_server_tokens import LlamaServerTokensBackend
from smol_tools.backends.ollama import OllamaBackend
from smol_tools.backends.openai_compat import openai_tool_fields
from smol_tools.tool_choice import ToolChoice, enforce_choice
from smol_tools.tool_grammar import GrammarError, tool_call_grammar
from smol_tools.toolcalls import parse_output
from devkit.scripted import load_scripted, scripted_turns

TOOLS = load_scripted()["tools"]
TURNS = {t.name: t for t in scripted_turns()}
NAMES = [t["function"]["name"] for t in TOOLS]
WITHOUT_WEATHER = [t for t in TOOLS if t["function"]["name"] != "get_weather"]


# -- the policy, without a model ---------------------------------------------------------------
def test_tool_choice_reads_every_openai_form_and_refuses_others() -> None:
    assert ToolChoice.parse(None) == ToolChoice("auto")
    assert ToolChoice.parse("required").forces_call
    named = ToolChoice.parse({"type": "function", "function": {"name": "calculate"}})
    assert (named.mode, named.name, named.allowed(NAMES)) == ("function", "calculate", ["calculate"])
    assert named.wire() == {"type": "function", "function": {"name": "calculate"}}
    for bad in ("sometimes", {"type": "function"}, {"type": "code", "function": {"name": "x"}}, 3):
        with pytest.raises(ValueError, match="tool_choice"):
            ToolChoice.parse(bad)
    with pytest.raises(ValueError, match="not among the tools"):
        ToolChoice("function", "nope").check(NAMES)
    with pytest.raises(ValueError, match="at least one tool"):
        ToolChoice("required").check([])


def test_enforcement_drops_what_the_policy_forbids_with_a_note() -> None:
    two = parse_output('<tool_call>\n{"name": "calculate", "arguments": {"expression": "1"}}\n</tool_call>\n'
                       '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Lima"}}\n</tool_call>')
    none = enforce_choice(two, ToolChoice("none"), True, TOOLS)
    assert not none.tool_calls and "not run" in none.notes[-1]
    named = enforce_choice(two, ToolChoice("function", "get_weather"), True, TOOLS)
    assert [c.name for c in named.tool_calls] == ["get_weather"] and "calculate" in named.notes[-1]
    single = enforce_choice(two, ToolChoice("auto"), False, TOOLS)
    assert [c.name for c in single.tool_calls] == ["calculate"] and "parallel_tool_calls" in single.notes[-1]
    assert enforce_choice(two, ToolChoice("auto"), True, TOOLS).tool_calls == two.tool_calls


def test_grammar_names_only_allowed_tools_and_refuses_what_it_cannot_express() -> None:
    grammar = tool_call_grammar(TOOLS, choice=ToolChoice("function", "calculate"), reasoning_open=True)
    assert grammar.tools == ("calculate",) and not grammar.lazy
    assert '\\"calculate\\"' in grammar.gbnf and "get_weather" not in grammar.gbnf
    assert grammar.gbnf.startswith("root ::= ( !</think> )* </think>")
    assert tool_call_grammar(TOOLS).lazy
    with pytest.raises(GrammarError, match="odd"):
        tool_call_grammar([{"type": "function", "function": {"name": "odd", "parameters": {
            "type": "object", "properties": {"x": {"type": "complex-number"}}}}}])


def test_openai_request_fields() -> None:
    named = openai_tool_fields(TOOLS, SamplingParams.greedy(tool_choice={"type": "function",
                                                                         "function": {"name": "calculate"}}))
    # llama-server reads tool_choice as a string only: one tool + "required" forces it everywhere.
    assert named["tool_choice"] == "required" and [t["function"]["name"] for t in named["tools"]] == ["calculate"]
    strict = openai_tool_fields(TOOLS, SamplingParams.greedy(strict=True, parallel_tool_calls=False))
    assert all(t["function"]["strict"] for t in strict["tools"]) and strict["parallel_tool_calls"] is False
    assert "strict" not in TOOLS[0]["function"]  # the caller's schemas are not changed
    with pytest.raises(BackendError, match="not among the tools"):
        openai_tool_fields(TOOLS, SamplingParams.greedy(tool_choice={"name": "nope"}))


def test_ollama_gets_no_tools_for_none_and_only_the_named_one() -> None:
    sent = OllamaBackend._tools_sent
    assert sent(TOOLS, SamplingParams.greedy(tool_choice="none")) is None
    assert [t["function"]["name"] for t in sent(TOOLS, SamplingParams.greedy(tool_choice={"name": "read_file"}))] \
        == ["read_file"]
    assert len(sent(TOOLS, SamplingParams.greedy(tool_choice="required"))) == len(TOOLS)


class _IgnoringBackend:
    """A runtime that cannot force anything (Ollama's position): plays its outputs in order."""

    name = "scripted"
    context_length = 32768

    def __init__(self, outputs: list[str]) -> None:
        self.outputs = list(outputs)
        self.requests: list[list[dict[str, Any]]] = []

    def count_tokens(self, text: str) -> int:
        return len(text) // 4

    def stream_turn(self, messages, tools=None, **kwargs) -> Iterator[Any]:
        self.requests.append(list(messages))
        text = self.outputs.pop(0)
        yield TurnComplete(parse_output(text), text, "stop", Usage())


CALL = '<tool_call>\n{"name": "calculate", "arguments": {"expression": "2"}}\n</tool_call>'


def _agent_run(outputs: list[str], **config: Any):
    backend = _IgnoringBackend(outputs)
    agent = Agent(backend, TOOLS, lambda name, args: ToolOutcome("4"), config=AgentConfig(**config))
    events = list(agent.run([{"role": "user", "content": "2+2?"}]))
    return backend, events


def test_agent_retries_a_turn_that_skipped_a_required_call_then_goes_back_to_auto() -> None:
    backend, events = _agent_run(["It is 4.", CALL, "4."], tool_choice="required")
    ran = [e for e in events if isinstance(e, ToolResultReady)]
    assert [r.name for r in ran] == ["calculate"]
    assert "tool call now" in backend.requests[1][-1]["content"]  # the reminder went to the retry only
    assert all(m["content"] != backend.requests[1][-1]["content"] for m in backend.requests[2])
    assert isinstance(events[-1], AgentFinished) and events[-1].reason == "answer"  # round 2 was "auto"


def test_agent_gives_up_clearly_when_a_required_call_never_comes() -> None:
    _, events = _agent_run(["no", "no", "no"], tool_choice="required", tool_choice_retries=2)
    assert events[-1].reason == "error" and "answered without one 3 time(s)" in events[-1].message


def test_agent_runs_no_call_under_none_and_one_without_parallel_calls() -> None:
    _, events = _agent_run([CALL], tool_choice="none")
    assert not [e for e in events if isinstance(e, ToolResultReady)] and events[-1].reason == "answer"
    _, events = _agent_run([CALL + "\n" + CALL.replace('"2"', '"3"'), "ok"], parallel_tool_calls=False)
    assert [r.arguments for r in events if isinstance(r, ToolResultReady)] == [{"expression": "2"}]


# -- the tiny model: in process and a real llama-server ------------------------------------------
@pytest.fixture(scope="module")
def in_process(tiny_gguf_q8_0) -> LlamaCppBackend:
    return LlamaCppBackend(tiny_gguf_q8_0, n_ctx=4096)


@pytest.fixture(scope="module")
def token_backend(tiny_llama_server) -> LlamaServerTokensBackend:
    return LlamaServerTokensBackend(tiny_llama_server.base_url, context_length=4096)


@pytest.fixture(params=["in_process", "llama_server"])
def backend(request):
    return request.getfixturevalue("in_process" if request.param == "in_process" else "token_backend")


def _turn(backend, name: str, tools=TOOLS, **policy: Any):
    turn = TURNS[name]
    events = list(backend.stream_turn(turn.history, tools, sampling=SamplingParams.greedy(max_tokens=120, **policy),
                                      enable_thinking=turn.thinking, session_id=f"{name}-{sorted(policy.items())!r}"))
    assert isinstance(events[-1], TurnComplete)
    return events[-1]


def _valid_calls(result, tools) -> list[tuple[str, dict]]:
    """The turn's calls, each checked: a declared tool, arguments that fit its schema."""
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
    assert not result.errors, [e.message for e in result.errors]
    for call in result.tool_calls:
        assert call.name in schemas, call.name
        jsonschema.validate(call.arguments, schemas[call.name])
    return [(c.name, c.arguments) for c in result.tool_calls]


@pytest.mark.parametrize("name", ["single_tool#0", "reasoning_then_call#0", "thinking_off_call#0",
                                  "no_tool_needed#0", "multi_tool_parallel#0"])
def test_strict_leaves_text_reasoning_and_valid_calls_as_the_model_writes_them(backend, name) -> None:
    assert _turn(backend, name, strict=True).raw + "<|im_end|>" == TURNS[name].raw


def test_none_never_yields_a_call(backend) -> None:
    for name in ("single_tool#0", "multi_tool_parallel#0", "thinking_off_call#0"):
        result = _turn(backend, name, tool_choice="none").result
        assert not result.tool_calls and not result.errors and "<tool_call>" not in (result.content or "")


def test_required_and_named_always_call_an_allowed_tool(backend) -> None:
    assert _valid_calls(_turn(backend, "no_tool_needed#0").result, TOOLS) == []  # what it does unforced
    assert _valid_calls(_turn(backend, "no_tool_needed#0", tool_choice="required").result, TOOLS)
    for name in ("no_tool_needed#0", "single_tool#0"):
        named = _turn(backend, name, tool_choice={"type": "function", "function": {"name": "calculate"}})
        calls = _valid_calls(named.result, TOOLS)
        assert calls and {n for n, _ in calls} == {"calculate"}


def test_parallel_off_yields_one_call(backend) -> None:
    assert len(_turn(backend, "multi_tool_parallel#0").result.tool_calls) == 2
    for strict in (False, True):
        complete = _turn(backend, "multi_tool_parallel#0", parallel_tool_calls=False, strict=strict)
        assert _valid_calls(complete.result, TOOLS) == [("get_weather", {"city": "Tokyo"})]
        assert complete.finish_reason == "tool_calls"


def test_strict_turns_a_call_of_an_unknown_tool_into_a_declared_one(backend) -> None:
    for name in ("single_tool#0", "thinking_off_call#0"):  # reasoning open (pattern trigger) and closed
        loose = _turn(backend, name, tools=WITHOUT_WEATHER).result
        assert [c.name for c in loose.tool_calls] == ["get_weather"]  # not declared
        assert _valid_calls(_turn(backend, name, tools=WITHOUT_WEATHER, strict=True).result, WITHOUT_WEATHER)


def test_strict_keeps_arguments_inside_the_schema(backend) -> None:
    tools = copy.deepcopy(TOOLS)
    tools[0]["function"]["parameters"]["properties"]["city"]["enum"] = ["Lima", "Tokyo"]
    loose = _turn(backend, "single_tool#0", tools=tools).result
    with pytest.raises(jsonschema.ValidationError):
        _valid_calls(loose, tools)
    assert _valid_calls(_turn(backend, "single_tool#0", tools=tools, strict=True).result, tools)


def test_strict_survives_a_sampler_pushing_invalid_json(tiny_gguf_q8_0, in_process) -> None:
    """A sabotaged sampler: right after `<tool_call>`, a single quote gets +50 for four tokens."""
    llm = in_process.model.llm
    call_open = llm.tokenize(b"<tool_call>", add_bos=False, special=True)[0]
    quote = llm.tokenize(b"'", add_bos=False, special=True)
    assert len(quote) == 1

    def sabotage(logits, sampled) -> None:
        if call_open in sampled and len(sampled) - sampled.index(call_open) <= 4:
            logits[quote[0]] += 50.0

    sabotaged = LlamaCppBackend(tiny_gguf_q8_0, n_ctx=4096, logits_processors=[sabotage])
    for name in ("single_tool#0", "multi_tool_parallel#0"):
        loose = _turn(sabotaged, name).result
        assert loose.errors and "'" in loose.errors[0].raw  # the push breaks the call
        expected = [(c.name, c.arguments) for c in parse_output(TURNS[name].raw).tool_calls]
        assert _valid_calls(_turn(sabotaged, name, strict=True).result, TOOLS) == expected


def test_a_named_tool_that_is_not_declared_is_a_clear_error(backend) -> None:
    with pytest.raises(BackendError, match="not among the tools"):
        _turn(backend, "single_tool#0", tool_choice={"name": "launch_rockets"})
    assert json.dumps(TOOLS)  # the fixture's schemas are untouched


def test_every_demo_tool_schema_becomes_a_grammar_llama_cpp_accepts(in_process) -> None:
    """The app's 15 tools, full and portable: patterns anchored, long bounds left to validation,
    untyped values accepted as any JSON value; llama.cpp parses the result."""
    import llama_cpp

    from smol_tools.tool_schema import portable_tools
    from smol_tools.tools import default_registry

    full = default_registry().schemas(None)
    untyped = {"type": "function", "function": {"name": "note", "parameters": {
        "type": "object", "properties": {"value": {"description": "anything"}}, "required": ["value"]}}}
    vocab = in_process.model.llm._model.vocab
    for tools in (full, portable_tools(full), [untyped]):
        for choice, reasoning_open in ((ToolChoice("auto"), False), (ToolChoice("required"), True)):
            grammar = tool_call_grammar(tools, choice=choice, reasoning_open=reasoning_open)
            assert len(grammar.gbnf) < 50_000
            sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar.gbnf.encode(), b"root")
            assert sampler, grammar.gbnf[:500]
            llama_cpp.llama_sampler_free(sampler)


# -- llama-server's OpenAI endpoint (--jinja): what it does with the fields we send ---------------
@pytest.fixture(scope="module")
def openai_backend(tiny_llama_server):
    from smol_tools.backends.openai_compat import OpenAICompatBackend

    return OpenAICompatBackend(tiny_llama_server.base_url, context_length=4096)


def test_llama_server_openai_endpoint_honours_tool_choice(openai_backend) -> None:
    assert _turn(openai_backend, "single_tool#0").result.tool_calls
    for name in ("single_tool#0", "thinking_off_call#0"):  # <tool_call> banned through logit_bias
        result = _turn(openai_backend, name, tool_choice="none").result
        assert not result.tool_calls and not result.errors
    assert _valid_calls(_turn(openai_backend, "no_tool_needed#0", tool_choice="required").result, TOOLS)
    named = _turn(openai_backend, "no_tool_needed#0", tool_choice={"type": "function", "function": {"name": "calculate"}})
    assert {n for n, _ in _valid_calls(named.result, TOOLS)} == {"calculate"}


def test_llama_server_openai_endpoint_constrains_calls_and_ignores_parallel_off(openai_backend) -> None:
    """llama-server --jinja builds its own lazy grammar from the declared tools whether or not
    strict is sent; it returns every parallel call even with parallel_tool_calls=false, so the
    agent's enforcement runs the first only (docs/strict-calls.md)."""
    for strict in (False, True):
        assert _valid_calls(_turn(openai_backend, "single_tool#0", tools=WITHOUT_WEATHER, strict=strict).result,
                            WITHOUT_WEATHER)
    both = _turn(openai_backend, "multi_tool_parallel#0", parallel_tool_calls=False).result
    assert len(both.tool_calls) == 2
    assert len(enforce_choice(both, ToolChoice("auto"), False, TOOLS).tool_calls) == 1
