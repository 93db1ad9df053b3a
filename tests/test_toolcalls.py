"""Example-based tests of smol_tools.toolcalls: the cases in parser_cases.json, run one-shot
and streaming under several chunkings, plus event, error-handling and timing checks."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from smol_tools.toolcalls import CallError, ParseResult, StreamingParser, ToolCall, parse_output
from smol_tools.events import ContentDelta, ReasoningDelta, ToolCallCompleted, ToolCallFailed, ToolCallStarted

CASES_PATH = Path(__file__).with_name("parser_cases.json")
CASES = json.loads(CASES_PATH.read_text(encoding="utf-8"))
TAGS = ("<think>", "</think>", "<tool_call>", "</tool_call>", "<|im_end|>", "<|endoftext|>")
CHUNKINGS = ["char", 2, 3, 5, 8, 13, "random0", "random1", "random2"]


def chunks_of(text: str, chunking: int | str) -> list[str]:
    if chunking == "char":
        return list(text)
    if isinstance(chunking, int):
        return [text[i : i + chunking] for i in range(0, len(text), chunking)]
    rng = random.Random(int(chunking.removeprefix("random")))
    count = min(max(len(text) - 1, 0), rng.randint(0, 12))
    cuts = sorted(rng.sample(range(1, len(text)), count)) if count else []
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:])]


def stream(text: str, chunks: list[str], **kwargs) -> tuple[ParseResult, list]:
    parser = StreamingParser(**kwargs)
    events: list = []
    for chunk in chunks:
        events += parser.feed(chunk)
    events += parser.finish()
    return parser.result, events


def check_events(events: list, result: ParseResult) -> None:
    """Event-stream invariants that any UI relies on."""
    content = "".join(e.text for e in events if isinstance(e, ContentDelta))
    reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    # Deltas add up exactly (the sink drops outer whitespace, so not even a strip is needed).
    assert content == result.content
    assert reasoning == (result.reasoning or "")
    assert all(e.text for e in events if isinstance(e, (ContentDelta, ReasoningDelta)))
    # No tag in the final content is ever split across two content deltas.
    boundaries, at = set(), 0
    for e in events:
        if isinstance(e, ContentDelta):
            at += len(e.text)
            boundaries.add(at)
    for tag in TAGS:
        start = content.find(tag)
        while start != -1:
            assert not any(start < b < start + len(tag) for b in boundaries), (tag, content)
            start = content.find(tag, start + 1)
    # Calls: started (at most once) before completed; one final event per block, in order.
    started: dict[int, str] = {}
    finals: list[int] = []
    calls, errors = [], []
    for e in events:
        if isinstance(e, ToolCallStarted):
            assert e.index not in started and e.index not in finals
            started[e.index] = e.name
        elif isinstance(e, ToolCallCompleted):
            assert e.index in started, "completed before started"
            assert started[e.index] == e.call.name
            finals.append(e.index)
            calls.append(e.call)
        elif isinstance(e, ToolCallFailed):
            finals.append(e.index)
            errors.append(e.error)
    assert finals == list(range(len(finals)))
    assert calls == result.tool_calls
    assert errors == result.errors


def check_expected(case: dict, result: ParseResult) -> None:
    expected = case["expected"]
    got = result.to_dict()
    assert got["reasoning"] == expected["reasoning"]
    assert got["content"] == expected["content"]
    assert got["tool_calls"] == expected["tool_calls"]
    assert len(got["errors"]) == len(expected["errors"]), got["errors"]
    for want, error in zip(expected["errors"], got["errors"]):
        assert want["message_contains"] in error["message"]
    notes = expected.get("notes", [])
    assert len(got["notes"]) == len(notes), got["notes"]
    for want, note in zip(notes, got["notes"]):
        assert want["message_contains"] in note
    for item in [*result.tool_calls, *result.errors]:
        assert item.raw.startswith("<tool_call>") and item.raw in case["input"]


def kwargs_of(case: dict) -> dict:
    return {"thinking_open": case.get("thinking_open"), "tool_schemas": case.get("schemas")}


# ---------------------------------------------------------------------------------------------
# The data-driven cases


def test_case_file_is_broad_enough() -> None:
    assert len(CASES) >= 45
    assert len({c["id"] for c in CASES}) == len(CASES)
    assert {c.get("thinking_open") for c in CASES} == {None, True, False}


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case_one_shot(case: dict) -> None:
    check_expected(case, parse_output(case["input"], **kwargs_of(case)))


@pytest.mark.parametrize("chunking", CHUNKINGS, ids=str)
@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case_streaming(case: dict, chunking: int | str) -> None:
    one_shot = parse_output(case["input"], **kwargs_of(case))
    result, events = stream(case["input"], chunks_of(case["input"], chunking), **kwargs_of(case))
    assert result == one_shot
    check_expected(case, result)
    check_events(events, result)


# ---------------------------------------------------------------------------------------------
# API shape


def test_to_dict_shape_and_json_round_trip() -> None:
    call = '<tool_call>{"name": "f", "arguments": {"a": [1]}}</tool_call>'
    text = "<think>r</think>c" + call + "<tool_call>{x}</tool_call>"
    result = parse_output(text)
    as_dict = result.to_dict()
    assert as_dict == {
        "reasoning": "r",
        "content": "c",
        "tool_calls": [{"name": "f", "arguments": {"a": [1]}}],
        "errors": [{"raw": "<tool_call>{x}</tool_call>", "message": as_dict["errors"][0]["message"]}],
        "notes": [],
    }
    assert json.loads(json.dumps(as_dict)) == as_dict
    assert result.tool_calls[0] == ToolCall("f", {"a": [1]}, call, "json")
    assert isinstance(result.errors[0], CallError)
    assert "tool call 2 is not valid JSON" in result.errors[0].message


def test_xml_call_form_and_raw() -> None:
    text = "<tool_call>\n<function=f>\n<parameter=a>\n1\n</parameter>\n</function>\n</tool_call>"
    (call,) = parse_output(text).tool_calls
    assert call.form == "xml" and call.raw == text and call.arguments == {"a": 1}


def test_result_before_finish_and_feed_after_finish_raise() -> None:
    parser = StreamingParser()
    parser.feed("hello")
    with pytest.raises(RuntimeError):
        parser.result
    parser.finish()
    assert parser.result.content == "hello"
    with pytest.raises(RuntimeError):
        parser.feed("more")
    with pytest.raises(RuntimeError):
        parser.finish()


def test_schema_is_per_tool() -> None:
    text = "<tool_call><function=g><parameter=zip>\n123\n</parameter></function></tool_call>"
    schemas = {"f": {"type": "object", "properties": {"zip": {"type": "string"}}}}
    assert parse_output(text, tool_schemas=schemas).tool_calls[0].arguments == {"zip": 123}
    schemas["g"] = schemas["f"]
    assert parse_output(text, tool_schemas=schemas).tool_calls[0].arguments == {"zip": "123"}


@pytest.mark.parametrize(
    "schemas",
    [
        {"f": None},
        {"f": {"properties": None}},
        {"f": {"properties": {"a": True}}},
        {"f": {"properties": {"a": {"type": 5}}}},
    ],
)
def test_malformed_schemas_fall_back_to_generic_decoding(schemas: dict) -> None:
    text = "<tool_call><function=f><parameter=a>7</parameter></function></tool_call>"
    assert parse_output(text, tool_schemas=schemas).tool_calls[0].arguments == {"a": 7}


# ---------------------------------------------------------------------------------------------
# Streaming behaviour


def feed_all(parser: StreamingParser, chunks: list[str]) -> list:
    events: list = []
    for chunk in chunks:
        events += parser.feed(chunk)
    return events


@pytest.mark.parametrize("tag", TAGS)
def test_no_tag_prefix_leaks_into_content(tag: str) -> None:
    for k in range(1, len(tag)):
        parser = StreamingParser(thinking_open=False)
        events = feed_all(parser, ["Hello ", tag[:k]])
        assert [e.text for e in events if isinstance(e, ContentDelta)] == ["Hello"], (tag, k)


def test_tool_call_prefix_is_held_then_dropped() -> None:
    parser = StreamingParser(thinking_open=False)
    events = feed_all(parser, ["Hello <tool", "_call>", '{"name": "f"}', "</tool_call> bye"])
    events += parser.finish()
    assert "".join(e.text for e in events if isinstance(e, ContentDelta)) == "Hello  bye"
    assert [type(e).__name__ for e in events if not isinstance(e, ContentDelta)] == [
        "ToolCallStarted",
        "ToolCallCompleted",
    ]


def test_partial_tag_at_end_of_output_is_content() -> None:
    parser = StreamingParser(thinking_open=False)
    events = feed_all(parser, ["x <tool_ca"]) + parser.finish()
    assert "".join(e.text for e in events if isinstance(e, ContentDelta)) == "x <tool_ca"


def test_content_is_streamed_once_mode_is_decided() -> None:
    # auto: content must wait until <think>, </think>, <tool_call> or the end decides
    parser = StreamingParser()
    assert feed_all(parser, ["Hello ", "world"]) == []
    assert parser.finish() == [ContentDelta("Hello world")]
    parser = StreamingParser()
    assert feed_all(parser, ["Hello ", "world <tool_call>"]) == [ContentDelta("Hello world")]
    # auto: text before </think> turns out to be reasoning
    parser = StreamingParser()
    assert feed_all(parser, ["Plan", " it</think>", "Go"]) == [ReasoningDelta("Plan it"), ContentDelta("Go")]
    # decided modes stream at once
    parser = StreamingParser(thinking_open=True)
    assert feed_all(parser, ["Plan", " it"]) == [ReasoningDelta("Plan"), ReasoningDelta(" it")]
    parser = StreamingParser(thinking_open=False)
    assert feed_all(parser, ["Hello", " world"]) == [ContentDelta("Hello"), ContentDelta(" world")]


def test_trailing_whitespace_is_held_not_emitted() -> None:
    parser = StreamingParser(thinking_open=False)
    events = feed_all(parser, ["  Hi", "\n\n", "there\n"]) + parser.finish()
    assert events == [ContentDelta("Hi"), ContentDelta("\n\nthere")]


def test_stop_token_prefix_is_held_and_stop_ends_everything() -> None:
    parser = StreamingParser(thinking_open=False)
    assert feed_all(parser, ["Hi <|im_"]) == [ContentDelta("Hi")]
    assert feed_all(parser, ["end|>", " more", "<tool_call>"]) == []
    assert parser.finish() == []
    assert parser.result.content == "Hi"


def first_event_position(text: str, kind: type, **kwargs) -> tuple[int, object]:
    parser = StreamingParser(**kwargs)
    for i, ch in enumerate(text):
        for event in parser.feed(ch):
            if isinstance(event, kind):
                return i, event
    for event in parser.finish():
        if isinstance(event, kind):
            return len(text), event
    raise AssertionError("no such event")


def test_call_started_as_soon_as_json_name_is_complete() -> None:
    text = 'Ok <tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    at, event = first_event_position(text, ToolCallStarted, thinking_open=False)
    assert event == ToolCallStarted(0, "get_weather")
    assert at == text.index('get_weather"') + len("get_weather")  # the closing quote


def test_call_started_when_name_comes_after_arguments() -> None:
    text = '<tool_call>{"arguments": {"name": "inner", "x": "a\\"b"}, "name": "outer"}</tool_call>'
    at, event = first_event_position(text, ToolCallStarted)
    assert event == ToolCallStarted(0, "outer")
    assert at == text.index('outer"') + len("outer")


def test_call_started_when_xml_function_tag_is_complete() -> None:
    text = "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>\n"
    at, event = first_event_position(text + "</tool_call>", ToolCallStarted)
    assert event == ToolCallStarted(0, "get_weather")
    assert at == text.index("<function=get_weather>") + len("<function=get_weather>") - 1


def test_failed_call_events() -> None:
    text = '<tool_call>{"name": "", "arguments": {}}</tool_call>'
    text += '<tool_call>{"name": "f", "arguments": 3}</tool_call>'
    _, events = stream(text, list(text))
    kinds = [(type(e).__name__, e.index) for e in events]
    # an empty name is never announced; a good name is, even if the call then fails
    assert kinds == [("ToolCallFailed", 0), ("ToolCallStarted", 1), ("ToolCallFailed", 1)]


def test_fallback_blocks_are_decided_at_finish() -> None:
    text = '<tool_call>{"name": "a", "arguments": {"x": "oops}}</tool_call>\n'
    text += '<tool_call>{"name": "b", "arguments": {}}</tool_call>'
    parser = StreamingParser()
    during = feed_all(parser, list(text))
    assert not any(isinstance(e, (ToolCallCompleted, ToolCallFailed)) for e in during)
    final = parser.finish()
    kinds = [type(e).__name__ for e in final if not isinstance(e, ToolCallStarted)]
    assert kinds == ["ToolCallFailed", "ToolCallCompleted"]
    assert parser.result.tool_calls[0].name == "b"


# ---------------------------------------------------------------------------------------------
# Robustness: never raise on model output


NASTY = [
    "<tool_call>" + "[" * 100_000 + "</tool_call>",
    "<tool_call>" + '{"name": "f", "arguments": ' + "[" * 50_000 + "]" * 50_000 + "}</tool_call>",
    '<tool_call>{"name": "f", "arguments": {"n": ' + "9" * 10_000 + "}}</tool_call>",
    '<tool_call>{"name": "f", "arguments": {"s": "\ud800\udfff\x00\x1b"}}</tool_call>\ud83d',
    '<tool_call>{"name": "\\ud800", "arguments": "\\"x\\""}</tool_call>',
    '<tool_call>{"name": "f", "arguments": {"x": Infinity}}</tool_call>',
    "<tool_call><function=f><parameter=n>\n" + "1" * 10_000 + "\n</parameter></function></tool_call>",
    "<tool_call>\\",
    '<tool_call>"\\',
    "<think>" * 1000 + "</think>" * 1000 + "<tool_call>" * 1000 + "</tool_call>" * 1000,
    "\x00\x01\x7f\u2028\u2029\ufeff\U0010ffff",
]


@pytest.mark.parametrize("text", NASTY, ids=range(len(NASTY)))
def test_nasty_inputs_do_not_raise(text: str) -> None:
    schemas = {"f": {"type": "object", "properties": {"n": {"type": "integer"}}}}
    for mode in (None, True, False):
        result = parse_output(text, thinking_open=mode, tool_schemas=schemas)
        assert result == stream(text, chunks_of(text, 997), thinking_open=mode, tool_schemas=schemas)[0]
        json.dumps(result.to_dict())  # always serialisable (NaN/Infinity are rejected)


def test_huge_random_input_does_not_raise() -> None:
    rng = random.Random(1)
    vocab = [*TAGS, "<function=f>", "<parameter=p>", "</parameter>", "</function>"]
    vocab += ["{", "}", '"', "\\", ":", ",", " ", "\n", "a", "é"]
    text = "".join(rng.choice(vocab) for _ in range(200_000))
    for mode in (None, True, False):
        streamed, _ = stream(text, chunks_of(text, 4096), thinking_open=mode)
        assert parse_output(text, thinking_open=mode) == streamed


# ---------------------------------------------------------------------------------------------
# Linear work


def realistic_output(target: int) -> str:
    """Reasoning, prose and many JSON/XML calls whose arguments are escape-heavy code."""
    parts = ["<think>\n" + "I need to consider the files carefully. " * (target // 400) + "\n</think>\n\n"]
    i = 0
    while sum(map(len, parts)) < target:
        i += 1
        code = "\n".join(f'    print("line {j}: \\"quoted\\" </tool_call>")' for j in range(20))
        args = {"path": f"f{i}.py", "content": "def f():\n" + code, "n": [1, 2, {"k": None}]}
        call = json.dumps({"name": "write_file", "arguments": args})
        parts.append(f"Step {i}: writing a file.\n\n<tool_call>\n{call}\n</tool_call>\n")
        if i % 3 == 0:
            xml = f"<function=run>\n<parameter=cmd>\npython f{i}.py\n</parameter>\n</function>"
            parts.append(f"<tool_call>\n{xml}\n</tool_call>\n")
    return "".join(parts) + "All done.<|im_end|>"


def timed(fn, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def stream_chars(text: str) -> ParseResult:
    parser = StreamingParser()
    for ch in text:
        parser.feed(ch)
    parser.finish()
    return parser.result


def test_char_by_char_streaming_is_linear_vs_one_shot() -> None:
    text = realistic_output(200_000)
    assert 190_000 < len(text) < 220_000
    one_shot = timed(lambda: parse_output(text), repeat=3)
    streaming = timed(lambda: stream_chars(text))
    assert stream_chars(text) == parse_output(text)
    ratio = streaming / one_shot
    print(f"\n200 KB: one-shot {one_shot * 1e3:.1f} ms, 1-char streaming {streaming * 1e3:.0f} ms, {ratio:.1f}x")
    assert ratio < 50  # a re-parse of the buffer per chunk would be > 1000x


def unclosed_reasoning_output(n: int) -> str:
    """Reasoning that never closes, with a call early: the rest is held until the end decides."""
    call = '<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>'
    return "<think>plan " + call + ("more " + call) * (n // 60)


@pytest.mark.parametrize("make", [realistic_output, lambda n: "word " * (n // 5), unclosed_reasoning_output],
                         ids=["mixed", "plain", "unclosed-reasoning"])
def test_char_by_char_streaming_scales_linearly(make) -> None:
    # One-shot plain text is a single str.find, so compare streaming with itself at 4x size.
    small, large = make(50_000), make(200_000)
    t_small = timed(lambda: stream_chars(small), repeat=2)
    t_large = timed(lambda: stream_chars(large), repeat=2)
    assert t_large / t_small < 8  # linear: ~4, quadratic: ~16
    assert timed(lambda: stream_chars(large[:100_000])) < 2.0


def test_repeated_fallbacks_stay_linear() -> None:
    # every block has an unbalanced quote; each fallback re-parses the rest of the output
    text = '<tool_call>"</tool_call>"' * 20_000
    assert timed(lambda: parse_output(text)) < 2.0
    assert len(parse_output(text).errors) == 20_000
