"""Property tests of smol_tools.toolcalls.

* streaming == one-shot for any text, any chunking, every thinking_open mode;
* the one-shot parser never raises, and its result matches a slow, obviously-correct
  reference implementation of the spec (block boundaries and the reasoning/content split);
* generated calls round-trip, whatever their argument strings contain, and complete calls
  inside a reasoning block that never closes are calls (inside one that closes, drafts);
* the fallback table (`_EndOracle`) agrees with a plain forward scan.

Deeper run: TOOLCALLS_EXAMPLES=20000 pytest tests/test_toolcalls_property.py
"""

from __future__ import annotations

import json
import os
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smol_tools import toolcalls as tc
from smol_tools.toolcalls import ParseResult, StreamingParser, parse_output
from smol_tools.events import ContentDelta, ReasoningDelta, ToolCallCompleted, ToolCallFailed, ToolCallStarted

SETTINGS = settings(
    max_examples=int(os.environ.get("TOOLCALLS_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

VOCAB = [
    *("<think>", "</think>", "<tool_call>", "</tool_call>", "<|im_end|>", "<|endoftext|>"),
    *("<tool_", "</tool_c", "<thi", "</th", "<|im_", "<|endof", "<", ">", "|"),
    *("<function=f>", "<function=get_weather>", "<parameter=city>", "<parameter=n>"),
    *("</parameter>", "</function>"),
    '{"name": "f", "arguments": {"a": 1}}',
    '{"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}',
    *("{", "}", "[", "]", '"', "\\", '\\"', "\\\\", '"name"', '"arguments"', ":", ",", '"f"'),
    *("null", "3", "true", "\n", "\n\n", " ", "\t", "\r", "é", "日本", "😀", "\ud800", "\x00", "\x1b"),
    *("\u2028", "text", "Paris"),
]
SCHEMAS = {
    "get_weather": {"type": "object", "properties": {"city": {"type": "string"}, "n": {"type": "integer"}}}
}

vocab_text = st.lists(st.sampled_from(VOCAB), max_size=40).map("".join)
mixed_text = st.lists(st.one_of(st.sampled_from(VOCAB), st.text(max_size=5)), max_size=30).map("".join)
any_text = st.one_of(vocab_text, st.text(max_size=200), mixed_text)
modes = st.sampled_from([None, True, False])


@st.composite
def chunked(draw, texts=any_text):
    text = draw(texts)
    if draw(st.booleans()) and len(text) < 400:
        return text, list(text)  # char by char
    cuts = draw(st.lists(st.integers(0, len(text)), max_size=12)) if text else []
    bounds = [0, *sorted(set(cuts)), len(text)]
    return text, [text[a:b] for a, b in zip(bounds, bounds[1:])]


def run_stream(chunks: list[str], **kwargs) -> tuple[ParseResult, list]:
    parser = StreamingParser(**kwargs)
    events: list = []
    for chunk in chunks:
        events += parser.feed(chunk)
    events += parser.finish()
    return parser.result, events


# ---------------------------------------------------------------------------------------------
# Streaming equals one-shot


@SETTINGS
@given(chunked(), modes, st.booleans())
def test_streaming_equals_one_shot(text_chunks, mode, with_schemas) -> None:
    text, chunks = text_chunks
    kwargs = {"thinking_open": mode, "tool_schemas": SCHEMAS if with_schemas else None}
    one_shot = parse_output(text, **kwargs)  # must not raise
    result, events = run_stream(chunks, **kwargs)
    assert result == one_shot
    assert "".join(e.text for e in events if isinstance(e, ContentDelta)) == one_shot.content
    assert "".join(e.text for e in events if isinstance(e, ReasoningDelta)) == (one_shot.reasoning or "")
    started: dict[int, str] = {}
    finals = []
    for e in events:
        if isinstance(e, ToolCallStarted):
            assert e.index not in started and e.index not in finals
            started[e.index] = e.name
        elif isinstance(e, ToolCallCompleted):
            assert started.get(e.index) == e.call.name  # announced first, under the same name
        if isinstance(e, (ToolCallCompleted, ToolCallFailed)):
            finals.append(e.index)
    assert finals == list(range(len(one_shot.tool_calls) + len(one_shot.errors)))


@SETTINGS
@given(any_text, modes)
def test_output_invariants(text, mode) -> None:
    result = parse_output(text, thinking_open=mode)
    assert "<tool_call>" not in result.content
    for stop in tc.STOP_TOKENS:
        assert stop not in result.content and stop not in (result.reasoning or "")
    assert result.content == result.content.strip()
    assert result.reasoning is None or (result.reasoning and result.reasoning == result.reasoning.strip())
    for item in [*result.tool_calls, *result.errors]:
        assert item.raw.startswith("<tool_call>") and item.raw in valid_text(text)
    # Everything the parser returns is valid Unicode text and valid JSON (no lone surrogate,
    # no inf): it can enter a session's history.
    json.dumps(result.to_dict(), ensure_ascii=False, allow_nan=False).encode("utf-8")
    for error in result.errors:
        assert len(error.message) <= 700  # bounded, whatever the block held


# ---------------------------------------------------------------------------------------------
# A slow reference implementation of the spec, written independently of the state machine


def ref_string_aware_end(text: str, start: int) -> int | None:
    in_string = escape = False
    i = start
    while i < len(text):
        ch = text[i]
        if escape:
            escape = False
        elif in_string:
            if ch == "\\":
                escape = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif text.startswith("</tool_call>", i):
            return i
        i += 1
    return None


def valid_text(text: str) -> str:
    """The spec: a lone surrogate in the input is read as U+FFFD."""
    return "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in text)


def split_reasoning(body: str) -> tuple[str, str, bool]:
    """(reasoning, rest, unclosed-with-calls) for text that starts inside the reasoning block.

    No </think> at all: from the first <tool_call> on, the text is read as content."""
    end = body.find("</think>")
    if end >= 0:
        return body[:end], body[end + len("</think>") :], False
    call = body.find("<tool_call>")
    if call >= 0:
        return body[:call], body[call:], True
    return body, "", False


def reference_parse(text: str, mode: bool | None) -> tuple[str | None, str, list[tuple[str, bool, str]]]:
    """(reasoning, content, [(body, closed, form)]) by the rules of the spec, quadratic is fine."""
    return reference_parse_noted(text, mode)[:3]


def reference_parse_noted(text: str, mode: bool | None):
    text = valid_text(text)
    cuts = [i for i in (text.find(s) for s in tc.STOP_TOKENS) if i >= 0]
    text = text[: min(cuts)] if cuts else text
    reasoning = None
    unclosed = False
    lead = len(text) - len(text.lstrip())
    if text.startswith("<think>", lead):
        reasoning, rest, unclosed = split_reasoning(text[lead + len("<think>") :])
    elif mode is True:
        reasoning, rest, unclosed = split_reasoning(text)
    elif mode is None and (end := text.find("</think>")) >= 0 and not re.search("<think>|<tool_call>", text[:end]):
        reasoning, rest = text[:end], text[end + len("</think>") :]
    else:
        rest = text
    content, blocks, pos = [], [], 0
    while (open_at := rest.find("<tool_call>", pos)) >= 0:
        content.append(rest[pos:open_at])
        start = open_at + len("<tool_call>")
        first = rest[start:].lstrip()[:1]
        if first == "<":
            end, form = rest.find("</tool_call>", start), "xml"
        else:
            end, form = ref_string_aware_end(rest, start), "json"
            if end is None:
                end = rest.find("</tool_call>", start)
        if end is None or end < 0:
            blocks.append((rest[start:], False, form))
            pos = len(rest)
            break
        blocks.append((rest[start:end], True, form))
        pos = end + len("</tool_call>")
    content.append(rest[pos:])
    reasoning = reasoning.strip() if reasoning is not None else None
    return reasoning or None, "".join(content).strip(), blocks, unclosed


@SETTINGS
@given(any_text, modes)
def test_matches_reference_implementation(text, mode) -> None:
    result = parse_output(text, thinking_open=mode, tool_schemas=SCHEMAS)
    reasoning, content, blocks, unclosed = reference_parse_noted(text, mode)
    assert len(result.notes) == unclosed  # the reasoning-never-closed note, exactly then
    assert result.reasoning == reasoning
    assert result.content == content
    expected_calls, expected_errors = [], []
    for number, (body, closed, form) in enumerate(blocks, 1):
        raw = "<tool_call>" + body + ("</tool_call>" if closed else "")
        if not closed:
            expected_errors.append(raw)
            continue
        if form == "xml":
            outcome = tc._parse_xml_call(body, number, raw, SCHEMAS)
        else:
            outcome = tc._parse_json_call(body, number, raw)
        (expected_calls if isinstance(outcome, tc.ToolCall) else expected_errors).append(raw)
    assert [c.raw for c in result.tool_calls] == expected_calls
    assert [e.raw for e in result.errors] == expected_errors
    for number, error in enumerate(result.errors):
        assert re.match(r"tool call \d+ ", error.message)


@SETTINGS
@given(st.lists(st.sampled_from(['"', "\\", "</tool_call>", "x", "<", "\n"]), max_size=40).map("".join))
def test_end_oracle_matches_forward_scan(text) -> None:
    oracle = tc._EndOracle(text)
    for start in range(len(text) + 1):
        assert oracle.end_from(start) == ref_string_aware_end(text, start), (text, start)


# ---------------------------------------------------------------------------------------------
# Round trip of well-formed calls

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.sampled_from([*VOCAB, "x", "'"]), max_size=8).map("".join),  # tags inside strings
    st.text(max_size=10),
)
json_values = st.recursive(
    json_scalars,
    lambda kids: st.one_of(st.lists(kids, max_size=3), st.dictionaries(st.text(max_size=5), kids, max_size=3)),
    max_leaves=10,
)
names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,15}", fullmatch=True)
arguments = st.dictionaries(st.text(max_size=6), json_values, max_size=4)
calls = st.lists(st.tuples(names, arguments, st.booleans(), st.booleans()), max_size=4)
prose_chars = st.sampled_from(["a", "b", " ", "\n", "é", "😀", '"', "{", "}", ".", "<", ">"])
prose = st.text(alphabet=prose_chars, max_size=20)


def no_stop(value) -> bool:
    """Round-trippable: no stop token, and valid Unicode (a lone surrogate is refused or
    replaced, see test_output_invariants)."""
    dumped = json.dumps(value, ensure_ascii=False)
    return not any(s in dumped for s in tc.STOP_TOKENS) and valid_text(dumped) == dumped


@SETTINGS
@given(calls, prose, prose, st.booleans(), modes, st.data())
def test_generated_calls_round_trip(call_list, reasoning, content, implicit, mode, data) -> None:
    for name, args, _, _ in call_list:
        if not no_stop(args):
            return
    blocks = []
    for name, args, as_string, compact in call_list:
        arguments = json.dumps(args, ensure_ascii=False) if as_string else args
        body = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=not compact)
        blocks.append(f"<tool_call>{body}</tool_call>" if compact else f"<tool_call>\n{body}\n</tool_call>")
    content_text = content.replace("<", "&lt;")  # keep the prose tag-free
    reasoning_text = reasoning.replace("<", "&lt;")
    if implicit and mode is not False:
        head = f"{reasoning_text}\n</think>\n\n"
    else:
        head = f"<think>\n{reasoning_text}\n</think>\n\n"
    text = head + content_text + "\n\n" + "\n".join(blocks) + "<|im_end|>"
    result = parse_output(text, thinking_open=mode)
    assert result.errors == []
    assert [(c.name, c.arguments) for c in result.tool_calls] == [
        (name, args) for name, args, _, _ in call_list
    ]
    assert result.reasoning == (reasoning_text.strip() or None)
    assert result.content == content_text.strip()
    cut = data.draw(st.lists(st.integers(0, len(text)), max_size=8))
    bounds = [0, *sorted(set(cut)), len(text)]
    assert run_stream([text[a:b] for a, b in zip(bounds, bounds[1:])], thinking_open=mode)[0] == result


xml_chars = st.sampled_from(["a", "1", " ", "\n", '"', "{", "}", "é", "<", "/"])
xml_values = st.text(alphabet=xml_chars, max_size=12).filter(
    lambda v: "</parameter>" not in v and "</tool_call>" not in v
)


@SETTINGS
@given(st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), xml_values, max_size=4))
def test_xml_string_parameters_round_trip(params) -> None:
    body = "".join(f"<parameter={k}>\n{v}\n</parameter>\n" for k, v in params.items())
    text = f"<tool_call>\n<function=f>\n{body}</function>\n</tool_call>"
    schema = {"f": {"type": "object", "properties": {k: {"type": "string"} for k in params}}}
    result = parse_output(text, tool_schemas=schema)
    assert result.errors == [] and result.tool_calls[0].arguments == params


@SETTINGS
@given(calls, prose, prose, st.booleans(), st.sampled_from([None, True]), st.data())
def test_calls_in_unclosed_reasoning_are_calls(call_list, reasoning, between, closes, mode, data) -> None:
    """Issue 15: a model that never writes </think> must not lose its calls. Complete blocks
    inside an unclosed reasoning block are calls, in order, with a note; if the block closes
    later they are drafts (reasoning). Streaming agrees with one-shot under any chunking."""
    if not call_list or not all(no_stop(args) for _, args, _, _ in call_list):
        return
    if any("</think>" in json.dumps(args, ensure_ascii=False) for _, args, _, _ in call_list):
        return  # the first </think> closes the block wherever it stands (a documented limit)
    blocks = [f"<tool_call>\n{json.dumps({'name': n, 'arguments': a}, ensure_ascii=False)}\n</tool_call>"
              for n, a, _, _ in call_list]
    reasoning_text = reasoning.replace("<", "&lt;")
    between_text = between.replace("<", "&lt;")
    opening = "" if mode is True else "<think>\n"
    body = reasoning_text + "\n" + f"\n{between_text}\n".join(blocks)
    text = opening + body + ("\n</think>\n\nDone." if closes else "") + "<|im_end|>"
    result = parse_output(text, thinking_open=mode)
    assert result.errors == []
    if closes:
        assert result.tool_calls == [] and result.notes == [] and result.content == "Done."
        assert result.reasoning == body.strip()
    else:
        assert [(c.name, c.arguments) for c in result.tool_calls] == [(n, a) for n, a, _, _ in call_list]
        assert result.reasoning == (reasoning_text.strip() or None)
        assert len(result.notes) == 1 and "never closed" in result.notes[0]
    cut = data.draw(st.lists(st.integers(0, len(text)), max_size=8))
    bounds = [0, *sorted(set(cut)), len(text)]
    assert run_stream([text[a:b] for a, b in zip(bounds, bounds[1:])], thinking_open=mode)[0] == result
