"""Issue 15, §1 and §5: the user's work never disappears without a word, and nothing a model
writes can poison a session.

A stand-in backend replays raw outputs through our real parser, renders every prompt with our
real chat format and encodes it strictly as UTF-8 (what token counting and every HTTP wire
do), and encodes the messages as strict JSON (what the Ollama client does). The tools are the
real registry over a real workspace."""

from __future__ import annotations

import json
import os
from typing import Any, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smol_tools.agent import Agent, AgentConfig, ToolOutcome
from smol_tools.events import AgentFinished, ToolResultReady, TurnComplete, Usage
from smol_tools.app.render import render_turn
from smol_tools.app.transcript import TurnBuilder
from smol_tools.backends.server_stream import ServerTurnAssembler
from smol_tools.chat_format import render_prompt
from smol_tools.chat_session import ChatSession
from smol_tools.safe_text import bound_text, clean_text, invalid_text_in
from smol_tools.toolcalls import StreamingParser, parse_output
from smol_tools.tools import ToolSession, ToolSettings, default_registry

WEATHER = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
TOOLS = [{"type": "function", "function": {
    "name": name, "description": "a tool",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 100},
                                                    "path": {"type": "string"}}}}}
    for name in ("get_weather", "f")]


def strict_wire(messages: list[dict[str, Any]], tools: Any = None) -> None:
    """What a real backend does with the history: fails on a lone surrogate or on inf."""
    render_prompt(messages, tools, enable_thinking=True).encode("utf-8")
    json.dumps({"messages": messages, "tools": tools}, ensure_ascii=False, allow_nan=False).encode("utf-8")


class StrictModel:
    """Replays raw outputs (our parser, the generation prompt opens <think> when thinking_open),
    or ready-made TurnComplete events; checks every prompt on the way like a real runtime."""

    name = "strict"
    context_length = 32768

    def __init__(self, outputs: list[Any], *, thinking_open: bool = True) -> None:
        self.outputs = list(outputs)
        self.thinking_open = thinking_open
        self.prompts = 0

    def count_tokens(self, text: str) -> int:
        return len(text.encode("utf-8")) // 4  # a tokenizer encodes the prompt: strict UTF-8

    def stream_turn(self, messages, tools=None, **kwargs) -> Iterator[Any]:
        strict_wire(messages, tools)
        self.prompts += 1
        item = self.outputs.pop(0) if self.outputs else "</think>\n\nDone.<|im_end|>"
        if callable(item):
            yield from item()
            return
        parser = StreamingParser(thinking_open=self.thinking_open)
        for i in range(0, len(item), 7):
            yield from parser.feed(item[i:i + 7])
        yield from parser.finish()
        result = parser.result
        yield TurnComplete(result, item, "tool_calls" if result.tool_calls else "stop",
                           Usage(prompt_tokens=100, completion_tokens=10))


def run_agent(outputs: list[Any], executor=None, *, thinking_open: bool = True, **config: Any):
    model = StrictModel(outputs, thinking_open=thinking_open)
    messages: list[dict[str, Any]] = [{"role": "user", "content": "go"}]
    calls: list[tuple[str, dict]] = []

    def default(name: str, arguments: dict) -> ToolOutcome:
        calls.append((name, arguments))
        return ToolOutcome(json.dumps({"ok": name}))

    agent = Agent(model, TOOLS, executor or default, config=AgentConfig(**config))
    events = list(agent.run(messages))
    strict_wire(messages, TOOLS)  # the next turn can be sent
    return messages, events, calls


def tool_results(events: list[Any]) -> list[ToolResultReady]:
    return [e for e in events if isinstance(e, ToolResultReady)]


# ---------------------------------------------------------------------------------------------
# §1 A call inside a reasoning block that never closes


def test_call_in_unclosed_reasoning_runs_and_the_app_shows_the_note() -> None:
    # The generation prompt opened <think>; the model wrote its call and never closed it.
    output = "The user wants the weather in Paris.\n" + WEATHER + "<|im_end|>"
    messages, events, calls = run_agent([output, "Sunny.\n</think>\n\nIt is sunny.<|im_end|>"])
    assert calls == [("get_weather", {"city": "Paris"})]
    assert events[-1].reason == "answer" and events[-1].content == "It is sunny."
    first = next(m for m in messages if m["role"] == "assistant")
    assert first["reasoning_content"] == "The user wants the weather in Paris."
    assert first["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": {"city": "Paris"}}
    builder = TurnBuilder("go")
    for event in events:
        builder.apply(event)
    assert any("never closed" in note for note in builder.turn.notes)
    shown = "\n".join(str(m["content"]) for m in render_turn(builder.turn, 1))
    assert "reasoning was never closed" in shown


def test_call_in_reasoning_that_closes_stays_a_draft() -> None:
    output = "Maybe " + WEATHER + " no, I know it.\n</think>\n\nParis is sunny.<|im_end|>"
    _, events, calls = run_agent([output])
    assert calls == [] and events[-1].content == "Paris is sunny."


def test_truncated_call_in_unclosed_reasoning_is_an_error_the_model_reads() -> None:
    output = 'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"ci'
    messages, events, calls = run_agent([output])
    assert calls == []
    (result,) = tool_results(events)[:1]
    assert result.outcome.is_error and "not closed" in json.loads(result.outcome.content)["error"]


# ---------------------------------------------------------------------------------------------
# §1 Any code point: the session survives


# Every class of code point json.loads can produce from an escape, as JSON text.
ESCAPES = ["\\ud800", "\\udbff", "\\udc00", "\\udc80", "\\udfff", "\\ude00\\ud83d", "\\ud83d\\ud83d",
           "\\u0000", "\\u001b", "\\u000b", "\\u0085", "\\u2028", "\\ufeff", "\\ufffe", "\\uffff",
           "\\ud83d\\ude00", "\\udbff\\udfff", "\\u202e"]


def test_parser_never_returns_invalid_text_for_any_escaped_code_point() -> None:
    # All 2,048 lone surrogates plus every other class above, escaped in values, keys and names.
    escapes = [f"\\u{cp:04x}" for cp in range(0xD800, 0xE000)] + ESCAPES
    blocks = []
    for esc in escapes:
        blocks.append('<tool_call>{"name": "f", "arguments": {"path": "a%sb"}}</tool_call>' % esc)
        blocks.append('<tool_call>{"name": "f", "arguments": {"k%s": 1}}</tool_call>' % esc)
        blocks.append('<tool_call>{"name": "f%s", "arguments": {}}</tool_call>' % esc)
    result = parse_output("\n".join(blocks))
    assert len(result.tool_calls) + len(result.errors) == 3 * len(escapes)
    json.dumps(result.to_dict(), ensure_ascii=False, allow_nan=False).encode("utf-8")
    for call in result.tool_calls:
        assert invalid_text_in(call.arguments) is None and invalid_text_in(call.name) is None
    # Each lone surrogate made its call an error (3 per surrogate), with a readable reason.
    lone = [e for e in result.errors if "lone surrogate" in e.message]
    assert len(lone) >= 3 * 2048


@pytest.mark.parametrize("escape", ESCAPES)
def test_session_survives_an_escaped_code_point_in_a_call(escape: str) -> None:
    outputs = [
        "</think>\n\n" + '<tool_call>\n{"name": "get_weather", "arguments": {"city": "P%s"}}\n</tool_call>' % escape,
        "</think>\n\n" + '<tool_call>\n{"name": "get_weather", "arguments": {"ci%sty": "x"}}\n</tool_call>' % escape,
        "</think>\n\n" + '<tool_call>\n{"name": "get%s", "arguments": {}}\n</tool_call>' % escape,
        "</think>\n\nDone.<|im_end|>",
    ]
    messages, events, _ = run_agent(outputs)
    assert events[-1].reason == "answer"
    for result in tool_results(events):
        json.dumps(result.outcome.content, ensure_ascii=False).encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.integers(0xD800, 0xDFFF), st.integers(0, 0x10FFFF)),
       st.sampled_from(["value", "key", "name", "string_arguments", "raw_value", "raw_content", "raw_reasoning"]))
def test_session_survives_any_code_point(code_point: int, where: str) -> None:
    """Any code point json.loads can produce (every one, lone surrogates included), escaped or
    raw, anywhere in the output: the round ends cleanly and the next prompt encodes."""
    char = chr(code_point)
    escaped = json.dumps(char)[1:-1]  # \uXXXX (or \" ...) as a model writes it
    body = {
        "value": '{"name": "get_weather", "arguments": {"city": "a%sb"}}' % escaped,
        "key": '{"name": "get_weather", "arguments": {"c%s": "x"}}' % escaped,
        "name": '{"name": "get%s", "arguments": {}}' % escaped,
        "string_arguments": '{"name": "get_weather", "arguments": "{\\"city\\": \\"%s\\"}"}'
                            % escaped.replace("\\", "\\\\"),
        "raw_value": '{"name": "get_weather", "arguments": {"city": "a%sb"}}' % char,
    }.get(where, '{"name": "get_weather", "arguments": {"city": "x"}}')
    reasoning = f"r{char}r" if where == "raw_reasoning" else "r"
    content = f"c{char}c" if where == "raw_content" else "c"
    output = f"{reasoning}</think>\n\n{content}\n<tool_call>\n{body}\n</tool_call>"
    messages, events, calls = run_agent([output, "</think>\n\nDone.<|im_end|>"])
    assert isinstance(events[-1], AgentFinished) and events[-1].reason == "answer"
    for name, arguments in calls:
        assert invalid_text_in(name) is None and invalid_text_in(arguments) is None


def test_session_survives_raw_surrogates_in_text_results_and_file_names(tmp_path) -> None:
    """Raw lone surrogates in model text, a tool result, a manual result, the user's message,
    and a workspace file whose name is not UTF-8: the next turns still go out."""
    session_tools = ToolSession.create(root=tmp_path)
    os.close(os.open(os.path.join(os.fsencode(session_tools.workspace), b"bad\xff.txt"),
                     os.O_CREAT | os.O_WRONLY, 0o644))
    outputs = [
        "think \udc80</think>\n\nText \ud800 " + '<tool_call>\n{"name": "list_directory", "arguments": {}}\n</tool_call>',
        "</think>\n\n" + '<tool_call>\n{"name": "write_file", "arguments": {"path": "x\\udc80.txt", "content": "hi"}}\n</tool_call>',
        "</think>\n\n" + '<tool_call>\n{"name": "custom", "arguments": {}}\n</tool_call>',
        "</think>\n\nAll done \udfff.<|im_end|>",
    ]
    model = StrictModel(outputs)
    chat = ChatSession(model, tool_session=session_tools, enabled_tools=["list_directory", "write_file"],
                       custom_tools=[{"type": "function", "function": {
                           "name": "custom", "description": "typed by a person",
                           "parameters": {"type": "object", "properties": {}}}}])
    events = list(chat.send("hello \udc80", manual=lambda name, args: "typed \ud83d result"))
    assert isinstance(events[-1], AgentFinished) and events[-1].reason == "answer"
    results = tool_results(events)
    listing = json.loads(results[0].outcome.content)
    assert "bad\ufffd.txt" in listing
    refused = json.loads(results[1].outcome.content)["error"]
    assert "U+DC80" in refused and "lone surrogate" in refused
    assert sorted(os.listdir(session_tools.workspace)) == [b"bad\xff.txt".decode("utf-8", "surrogateescape")]
    assert results[2].outcome.content == "typed \ufffd result"
    raws = [e.raw for e in events if isinstance(e, TurnComplete)]
    assert raws[0].startswith("think \ufffd</think>")  # the exact text the app exports, as text
    strict_wire(chat.messages, chat.tool_schemas())
    # And the session goes on: one more turn, one more prompt, no UnicodeEncodeError.
    model.outputs = ["</think>\n\nStill here.<|im_end|>"]
    assert list(chat.send("again"))[-1].content == "Still here."
    session_tools.cleanup()


def test_write_file_refuses_a_path_that_is_not_valid_unicode(tmp_path) -> None:
    session = ToolSession.create(root=tmp_path)
    result = default_registry().execute("write_file", {"path": "d\udc80/x.txt", "content": "x"}, session)
    assert result.is_error and "lone surrogate" in json.loads(result.content)["error"]
    assert list(session.workspace.iterdir()) == []
    json.dumps(json.loads(result.content), ensure_ascii=False).encode("utf-8")


# ---------------------------------------------------------------------------------------------
# §1 Non-finite numbers


@pytest.mark.parametrize("arguments", ['{"city": 1e999}', '"{\\"city\\": -1e999}"', '{"n": [1, {"x": 1E400}]}'])
def test_out_of_range_number_is_an_error_not_infinity(arguments: str) -> None:
    output = "</think>\n\n" + '<tool_call>\n{"name": "f", "arguments": %s}\n</tool_call>' % arguments
    messages, events, calls = run_agent([output])
    assert calls == []
    assert "out of range" in json.loads(tool_results(events)[0].outcome.content)["error"]


def test_out_of_range_number_from_a_server_parsed_call_is_an_error() -> None:
    # A server that parses calls itself (llama-server --jinja, Ollama) hands over argument text;
    # our assembler decodes it, and 1e999 would become inf on the next request's wire.
    def server_turn() -> Iterator[Any]:
        assembler = ServerTurnAssembler()
        yield from assembler.call_fragment(0, name="get_weather", arguments='{"city": 1e999}')
        yield from assembler.finish("tool_calls", Usage())

    messages, events, calls = run_agent([server_turn])
    assert calls == []
    assert "out of range" in json.loads(tool_results(events)[0].outcome.content)["error"]


def test_xml_parameter_out_of_range_is_an_error() -> None:
    output = "</think>\n\n<tool_call>\n<function=f>\n<parameter=city>\n1e999\n</parameter>\n</function>\n</tool_call>"
    _, events, calls = run_agent([output])
    assert calls == [] and "out of range" in tool_results(events)[0].outcome.content


# ---------------------------------------------------------------------------------------------
# §1 Every error text the model reads is bounded


def test_schema_error_on_a_2mb_argument_is_bounded(tmp_path) -> None:
    content = "x" * 2_000_000
    output = "</think>\n\n" + ('<tool_call>\n{"name": "write_file", "arguments": {"path": "a.txt", "content": "%s"}}'
                               "\n</tool_call>") % content
    model = StrictModel([output])
    chat = ChatSession(model, tool_session=ToolSession.create(root=tmp_path), enabled_tools=["write_file"])
    events = list(chat.send("write it"))
    (result,) = tool_results(events)
    message = json.loads(result.outcome.content)["error"]
    assert len(result.outcome.content) <= 2100
    assert message.count("x") < 1000  # the start of the value, not all of it
    assert "2,000,002 characters" in message or "of 2,000" in message  # its size
    assert "is too long" in message  # what was wrong
    assert "content" in message  # where
    chat.tool_session.cleanup()


def test_other_error_texts_are_bounded_too() -> None:
    huge = "n" * 1_000_000
    outputs = [
        "</think>\n\n" + '<tool_call>\n{"name": "%s", "arguments": {}}\n</tool_call>' % huge,  # unknown tool
        "</think>\n\n<tool_call>\n<function=f>\n<parameter=%s>\nv\n</function>\n</tool_call>" % huge,  # malformed
        "</think>\n\n" + '<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call>',  # tool raises
        "</think>\n\n" + '<tool_call>\n{"name": "get_weather", "arguments": {}}\n</tool_call>',  # error result
    ]

    def executor(name: str, arguments: dict) -> ToolOutcome:
        if name == "f":
            raise RuntimeError("boom " + "b" * 500_000)
        return ToolOutcome(json.dumps({"error": "e" * 500_000, "detail": "d" * 500_000}), True)

    results = [tool_results(run_agent([output], executor)[1])[0] for output in outputs]
    for result in results:
        assert result.outcome.is_error and len(result.outcome.content) <= 2100, len(result.outcome.content)
        assert "characters omitted" in result.outcome.content


def test_bound_text_keeps_start_size_and_end() -> None:
    text = "'" + "a" * 10_000 + "' is too long"
    bounded = bound_text(text, 300)
    assert len(bounded) < 360 and bounded.startswith("'aaa") and bounded.endswith("is too long")
    assert f"of {len(text):,} characters" in bounded
    assert bound_text("short") == "short"
    assert clean_text("a\udc80") == "a\ufffd"


# ---------------------------------------------------------------------------------------------
# §1 A cap on calls per round


def test_calls_per_round_are_capped_and_the_rest_get_one_error() -> None:
    flood = "</think>\n\n" + "\n".join(
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "c%d"}}\n</tool_call>' % i for i in range(2000))
    messages, events, calls = run_agent([flood])
    assert AgentConfig().max_calls_per_round == 16
    assert sorted(args["city"] for _, args in calls) == sorted(f"c{i}" for i in range(16))
    assistant = next(m for m in messages if m["role"] == "assistant")
    assert len(assistant["tool_calls"]) == 16
    tool_messages = [m for m in messages if m["role"] == "tool"]
    assert len(tool_messages) == 17  # 16 results + one error for the rest
    error = json.loads(tool_messages[-1]["content"])["error"]
    assert "1984 more call(s)" in error and "at most 16" in error
    turn = next(e for e in events if isinstance(e, TurnComplete))
    assert any("1984 of 2000" in note for note in turn.result.notes)


def test_the_cap_is_configurable_and_counts_malformed_blocks() -> None:
    output = "</think>\n\n" + WEATHER + "\n<tool_call>{bad}</tool_call>\n" + WEATHER + "\n" + WEATHER
    messages, events, calls = run_agent([output], max_calls_per_round=2)
    assert len(calls) == 2
    assert [m["name"] for m in messages if m["role"] == "tool"] == ["get_weather", "get_weather", "(not run)"]


# ---------------------------------------------------------------------------------------------
# §5 Duplicate keys are reported, not silently resolved


@pytest.mark.parametrize("body", [
    '{"name": "write_file", "arguments": {"path": "a.txt", "path": "../b.txt"}}',
    '{"name": "f", "arguments": {"path": "a"}, "parameters": {"path": "b"}}',
    '{"name": "f", "arguments": {"path": "a"}, "arguments": {"path": "b"}}',
])
def test_duplicate_keys_are_an_error_the_model_reads(body: str) -> None:
    _, events, calls = run_agent(["</think>\n\n<tool_call>\n" + body + "\n</tool_call>"])
    assert calls == []
    message = json.loads(tool_results(events)[0].outcome.content)["error"]
    assert "more than one" in message or "both" in message


# ---------------------------------------------------------------------------------------------
# §5 Single-line fields and a refused write


SESSION_ARGS = {"to": ["ana@example.com"], "subject": "Lunch", "body": "At noon?\nBring the notes."}
BAD_LINE_ENDINGS = ["\n", "\r", "\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x00", "\x1b", "\u202e"]


@pytest.mark.parametrize("bad", BAD_LINE_ENDINGS, ids=[f"U+{ord(c):04X}" for c in BAD_LINE_ENDINGS])
def test_single_line_fields_refuse_every_line_break_and_control(bad: str, tmp_path) -> None:
    registry = default_registry()
    session = ToolSession.create(root=tmp_path)
    attempts = [
        ("send_email", {**SESSION_ARGS, "subject": "Lunch" + bad}),
        ("send_email", {**SESSION_ARGS, "subject": "Lu" + bad + "nch"}),
        ("send_email", {**SESSION_ARGS, "to": ["ana@example.com" + bad]}),
        ("send_email", {**SESSION_ARGS, "cc": [bad + "ana@example.com"]}),
        ("create_calendar_event", {"title": "Standup" + bad, "start": "2026-03-14T09:00"}),
        ("create_calendar_event", {"title": "Standup", "start": "2026-03-14T09:00",
                                   "attendees": ["bo@example.org" + bad]}),
    ]
    for tool, arguments in attempts:
        result = registry.execute(tool, arguments, session)
        assert result.is_error, (tool, arguments)
    assert session.outbox == [] and session.calendar == []
    session.cleanup()


def test_single_line_fields_accept_ordinary_text(tmp_path) -> None:
    registry = default_registry()
    session = ToolSession.create(root=tmp_path)
    ok = registry.execute("send_email", {**SESSION_ARGS, "subject": "Café à midi — 日本 👩\u200d💻 (v2.0)!",
                                         "to": ["first.last+tag@mail.example.co.uk"]}, session)
    assert not ok.is_error, ok.content
    ok = registry.execute("create_calendar_event", {"title": "Réunion 10:00 — Q&A", "start": "2026-03-14T09:00"},
                          session)
    assert not ok.is_error, ok.content
    session.cleanup()


def test_write_refused_for_quota_leaves_no_directories(tmp_path) -> None:
    session = ToolSession.create(root=tmp_path, settings=ToolSettings(max_workspace_bytes=100))
    registry = default_registry()
    (session.workspace / "kept").mkdir()
    result = registry.execute("write_file", {"path": "kept/new/deeper/file.txt", "content": "x" * 200}, session)
    assert result.is_error and "limit" in json.loads(result.content)["error"]
    assert [p.name for p in session.workspace.rglob("*")] == ["kept"]  # its own dirs gone, not others'
    ok = registry.execute("write_file", {"path": "kept/new/file.txt", "content": "small"}, session)
    assert not ok.is_error and (session.workspace / "kept/new/file.txt").read_text() == "small"
    session.cleanup()


def _server_turn(reasoning: str, content: str = "") -> TurnComplete:
    assembler = ServerTurnAssembler()
    events = [*assembler.reasoning(reasoning), *assembler.content(content),
              *assembler.finish("stop", Usage())]
    return events[-1]


def test_server_that_kept_the_call_in_its_reasoning_field_loses_nothing() -> None:
    # llama-server (--reasoning-format) and Ollama put an unclosed think block, call and all,
    # into the reasoning field and send no content.
    turn = _server_turn("The user wants the weather.\n" + WEATHER)
    assert [(c.name, c.arguments) for c in turn.result.tool_calls] == [("get_weather", {"city": "Paris"})]
    assert turn.result.reasoning == "The user wants the weather."
    assert turn.result.notes and turn.finish_reason == "tool_calls"
    # With an answer after the reasoning the block was closed: the call was a draft.
    turn = _server_turn("Maybe " + WEATHER, "It is sunny.")
    assert turn.result.tool_calls == [] and turn.result.content == "It is sunny."


def test_terminal_chat_prints_the_parser_note(capsys) -> None:
    from smol_tools.terminal_chat import _show

    _show(TurnComplete(parse_output("<think>plan\n" + WEATHER), None, "tool_calls", Usage()))
    assert "reasoning was never closed" in capsys.readouterr().out
