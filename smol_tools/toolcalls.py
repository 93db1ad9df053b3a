"""Parse a tool-calling model's raw output into reasoning, content, tool calls and errors.

The model (Qwen3.5 architecture, Hermes/Qwen3 chat format) writes::

    <think>
    reasoning
    </think>

    Let me check.

    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_call><|im_end|>

and base models sometimes use the XML call form::

    <tool_call>
    <function=get_weather>
    <parameter=city>
    Paris
    </parameter>
    </function>
    </tool_call>

Design: there is ONE incremental state machine, `StreamingParser`; `parse_output` feeds it
the whole text in one chunk and finishes it. Every decision the machine takes depends only on
the text seen so far, and when the text seen so far cannot decide (a possible tag prefix at
the end of the buffer, a `<think>` that may still come), it waits. So the final result is the
same for any chunking by construction; the property tests check it anyway.

Work is linear in the output length: each state consumes its input with `str.find`/regex
jumps and keeps only a short undecided tail (at most 11 characters) in its buffer; block
text goes into lists that are joined once.

Streaming events: deltas never contain half a tag (a possible tag prefix at the end of the
buffer is held back) and add up exactly to the final stripped text (leading whitespace is
dropped, trailing whitespace held until more text follows). In auto mode nothing is emitted
until `<think>`, `</think>`, `<tool_call>` or the end decides whether the opening text is
reasoning. `ToolCallStarted` comes once the name is known (JSON: the `"name"` string value is
complete; XML: `<function=NAME>` is complete), or right before `ToolCallCompleted` if it
could not be announced earlier; a block that fails may or may not have been announced.

Decisions on points the format leaves open (cases in tests/parser_cases.json):

* `<|im_end|>` / `<|endoftext|>` end the output in every state, even inside a JSON string:
  everything from the first one on is ignored.
* `thinking_open=None` (auto): an explicit `<think>` at the start (after whitespace) opens the
  reasoning block; otherwise the text before the first `</think>` is reasoning when no
  `<think>` and no `<tool_call>` comes before it. `True`: the output starts inside the block
  (a leading explicit `<think>` is skipped). `False`: no implicit block, a `</think>` without
  opening tag is plain content text, kept verbatim.
* Only the first think block (at the start) is reasoning. `<think>`/`</think>` anywhere later
  is plain content text, kept verbatim (lossless; vLLM's Qwen3 parser does the same).
  A stray `</tool_call>` in content is kept verbatim too.
* A `<tool_call>` inside a reasoning block that closes is reasoning text (a draft), not a call.
  If the output ends still inside the reasoning block (no `</think>`: Qwen3.5-family models
  sometimes write their call without closing it), the text from the first `<tool_call>` in it
  on is read as content: complete blocks are calls, in order, cut ones errors, text around
  them content; the text before it stays reasoning, and `notes` says the reasoning was never
  closed. The first `</think>` closes the block wherever it stands (inside a JSON string too).
  Streaming holds the text from that `<tool_call>` on until `</think>` or the end decides.
* Text is valid Unicode: a lone surrogate code point in the input is read as U+FFFD. A decoded
  value that is not text or not a finite number (a `\\udc80` escape, `1e999`) makes its call
  an error, wherever it stands: in the arguments, their keys, the name, string-encoded
  arguments, an XML parameter value. Such values would poison the history (nothing can
  encode them) and break JSON re-serialisation.
* Duplicated keys in any JSON object of a call (`{"path": "a", "path": "b"}`, two
  `"arguments"`), both `"arguments"` and `"parameters"`, and an XML parameter given twice
  make the call an error: taking either value silently could run a call the model did not
  mean. Error messages are bounded (`safe_text.bound_text`): start, size and end.
* Reasoning that is empty after stripping (`<think>\\n\\n</think>`) is reported as `None`.
* A partial tag at the very end of the output (cut by max_tokens in the middle of
  `<tool_call>`) is plain text: the parser does not guess.
* JSON calls: `arguments` missing or `null` means `{}`; `"parameters"` is accepted as an alias
  when `arguments` is absent (Llama-style); an object encoded as a JSON string is decoded.
  A duplicated top-level `"name"` is an error (ambiguous; streaming announced the first).
  Raw control characters inside JSON strings are tolerated (models emit raw newlines in code
  arguments); NaN/Infinity and out-of-range numbers (`1e999`) are rejected (they would break
  JSON re-serialisation).
* A JSON block ends at the first `</tool_call>` outside a JSON string. If no such end exists
  up to the end of the output, the block ends at the first literal `</tool_call>` after its
  start (it is then reported as an error: its JSON has an unterminated string), and parsing
  resumes right after that tag. Only the end of the output proves there is no string-aware
  end, so this fallback is applied in `finish()` in every mode, one-shot and streaming alike.
  The re-parse after a fallback uses a precomputed table (`_EndOracle`) so that repeated
  fallbacks stay linear. Limit of this rule: an odd number of quotes between a broken block
  and a later `</tool_call>` (a second broken block, say) puts the scan back in phase, and the
  broken block then extends to that tag.
* A block without `</tool_call>` (output cut off) is an error even if its JSON is complete.
* An XML block (first non-blank character after `<tool_call>` is `<`) ends at the first
  literal `</tool_call>`. Parameter values: exactly one leading and one trailing newline are
  stripped; without a schema for the parameter the value is decoded as JSON when it is valid
  JSON, else kept as a string; with a declared `type` it is converted by that type (union types
  are tried in declared order); a value that does not convert stays a string, so that schema
  validation downstream reports it.
* `raw` of a call or error is the exact block text including the `<tool_call>` tag and the
  `</tool_call>` tag when there is one. Error messages number blocks from 1 in order of
  appearance, calls and errors sharing the count; events carry the 0-based block index.
"""

from __future__ import annotations

import json
import math
import re
from bisect import bisect_left
from typing import Any, Callable, Literal, Mapping

from .events import (
    CallError,
    ContentDelta,
    ParseResult,
    ReasoningDelta,
    StreamEvent,
    ToolCall,
    ToolCallCompleted,
    ToolCallFailed,
    ToolCallStarted,
)
from .safe_text import bound_text, clean_text, invalid_text_in

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
CALL_OPEN = "<tool_call>"
CALL_CLOSE = "</tool_call>"
STOP_TOKENS = ("<|im_end|>", "<|endoftext|>")

__all__ = [
    "CallError",
    "ContentDelta",
    "ParseResult",
    "ReasoningDelta",
    "StreamEvent",
    "StreamingParser",
    "ToolCall",
    "ToolCallCompleted",
    "ToolCallFailed",
    "ToolCallStarted",
    "canonical_call_text",
    "parse_output",
]


# ---------------------------------------------------------------------------------------------
# Public data types: the parser's events and payloads live in smol_tools/events.py


def canonical_call_text(name: str, arguments: Any) -> str:
    """The block our template renders for a call: what the model wrote, when it wrote
    canonically (servers that parse calls themselves hand back only name and arguments)."""
    args = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
    return f'{CALL_OPEN}\n{{"name": {json.dumps(name, ensure_ascii=False)}, "arguments": {args}}}\n{CALL_CLOSE}'


def parse_output(
    text: str,
    *,
    thinking_open: bool | None = None,
    tool_schemas: Mapping[str, Mapping] | None = None,
) -> ParseResult:
    """Parse a complete model output. Never raises on any `str`."""
    parser = StreamingParser(thinking_open=thinking_open, tool_schemas=tool_schemas)
    parser.feed(text)
    parser.finish()
    return parser.result


# ---------------------------------------------------------------------------------------------
# Small text helpers


def _proper_prefixes(*tags: str) -> frozenset[str]:
    return frozenset(tag[:k] for tag in tags for k in range(1, len(tag)))


_CONTENT_HOLD = _proper_prefixes(THINK_OPEN, THINK_CLOSE, CALL_OPEN, CALL_CLOSE)
_AUTO_HOLD = _proper_prefixes(THINK_OPEN, THINK_CLOSE, CALL_OPEN)
_REASONING_HOLD = _proper_prefixes(THINK_CLOSE, CALL_OPEN)
_HELD_HOLD = _proper_prefixes(THINK_CLOSE)
_CALL_CLOSE_HOLD = _proper_prefixes(CALL_CLOSE)
_STOP_HOLD = _proper_prefixes(*STOP_TOKENS)
_LONGEST_TAG = max(len(t) for t in (THINK_OPEN, THINK_CLOSE, CALL_OPEN, CALL_CLOSE, *STOP_TOKENS))

_WS_RE = re.compile(r"\s*")
_NONWS_RE = re.compile(r"\S")
_AUTO_RE = re.compile(re.escape(THINK_OPEN) + "|" + re.escape(THINK_CLOSE) + "|" + re.escape(CALL_OPEN))
_IN_STRING_RE = re.compile(r'["\\]')
_OUT_TRACK_RE = re.compile(r'["{}\[\]:,<]')  # while still looking for the call's name
_OUT_PLAIN_RE = re.compile(r'["<]')
_END_TOKEN_RE = re.compile(r'["\\]|' + re.escape(CALL_CLOSE))
_FUNCTION_RE = re.compile(r"<function=([^>]*)>")


def _held_len(text: str, start: int, prefixes: frozenset[str]) -> int:
    """Length of the longest suffix of text[start:] that is a proper prefix of a tag.

    That suffix must wait for more input: emitting it could leak half a tag. All tags start
    with "<", so only suffixes starting there are candidates.
    """
    n = len(text)
    i = text.find("<", max(start, n - _LONGEST_TAG))
    while i != -1:
        if text[i:] in prefixes:
            return n - i
        i = text.find("<", i + 1)
    return 0


class _StopFilter:
    """Cuts the stream at the first stop token, holding back a possible stop-token prefix."""

    def __init__(self) -> None:
        self._held = ""
        self.stopped = False

    def feed(self, chunk: str) -> str:
        if self.stopped:
            return ""
        text = self._held + chunk if self._held else chunk
        if "<" not in text:  # fast path for the common 1-token chunk
            self._held = ""
            return text
        cuts = [i for i in (text.find(t) for t in STOP_TOKENS) if i >= 0]
        if cuts:
            self.stopped = True
            self._held = ""
            return text[: min(cuts)]
        n = _held_len(text, 0, _STOP_HOLD)
        self._held = text[len(text) - n :] if n else ""
        return text[: len(text) - n]

    def finish(self) -> str:
        rest, self._held = self._held, ""
        return rest


class _Sink:
    """Accumulates one text channel and turns raw pieces into deltas.

    Leading whitespace is dropped and trailing whitespace held back until more text follows,
    so the concatenated deltas equal the final stripped text exactly (no flicker of newlines
    in a UI that appends deltas).
    """

    def __init__(self) -> None:
        self.parts: list[str] = []
        self._ws: list[str] = []
        self._started = False

    def push(self, text: str) -> str:
        if not text:
            return ""
        if not self._started:
            text = text.lstrip()
            if not text:
                return ""
            self._started = True
        body = text.rstrip()
        if not body:
            self._ws.append(text)
            return ""
        delta = "".join(self._ws) + body if self._ws else body
        self._ws = [text[len(body) :]] if len(body) < len(text) else []
        self.parts.append(delta)
        return delta

    def text(self) -> str:
        return "".join(self.parts)


# ---------------------------------------------------------------------------------------------
# JSON helpers


def _json_error(exc: json.JSONDecodeError) -> str:
    # JSONDecodeError.msg sometimes ends in " at" ("Unterminated string starting at").
    return f"{exc.msg.removesuffix(' at')} at line {exc.lineno} column {exc.colno}"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


class _Refused(ValueError):
    """Valid JSON syntax that the parser refuses; callers turn it into the block's error."""


class _NonFinite(_Refused):
    pass


class _DuplicateKey(_Refused):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _finite_float(text: str) -> float:
    # 1e999 is valid JSON syntax but decodes to inf, which no JSON encoder may write back.
    value = float(text)
    if not math.isfinite(value):
        raise _NonFinite(f"the number {text[:40]} is out of range (not finite); use a finite number")
    return value


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return value


# strict=False: tolerate raw control characters (newlines) inside strings.
_DECODER = json.JSONDecoder(strict=False, parse_constant=_reject_constant, parse_float=_finite_float,
                            object_pairs_hook=_unique_pairs)


def _duplicate_message(where: str, key: str) -> str:
    return (f'{where} has more than one "{bound_text(clean_text(key), 60)}" key in one JSON object; '
            "write each key once")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _loads(text: str) -> tuple[bool, Any, str]:
    """Decode a whole JSON document: (ok, value, error message). Never raises."""
    text = text.strip()
    try:
        value, end = _DECODER.raw_decode(text)
    except json.JSONDecodeError as exc:
        return False, None, _json_error(exc)
    except _Refused:
        raise  # 1e999, a duplicated key: the caller's block is an error, not a string value
    except (ValueError, RecursionError) as exc:  # NaN, huge ints, absurd nesting
        return False, None, str(exc) or type(exc).__name__
    if end != len(text):
        return False, None, f"unexpected text after the JSON value: {text[end:end + 30]!r}"
    return True, value, ""


def _decode_json_string(body: str) -> str | None:
    try:
        value = _DECODER.decode('"' + body + '"')  # a string: no number, no object
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, str) else None


def _parse_json_call(body: str, number: int, raw: str) -> ToolCall | str:
    """A JSON block's body -> ToolCall, or the error message."""
    where = f"tool call {number}"
    text = body.strip()
    if not text:
        return f"{where} is empty"
    try:
        obj, end = _DECODER.raw_decode(text)
    except json.JSONDecodeError as exc:
        return f"{where} is not valid JSON: {_json_error(exc)}"
    except _DuplicateKey as exc:  # ambiguous: the streaming announcement named the first "name"
        return _duplicate_message(where, exc.key)
    except _NonFinite as exc:
        return f"{where}: {exc}"
    except (ValueError, RecursionError) as exc:
        return f"{where} is not valid JSON: {str(exc) or type(exc).__name__}"
    if end != len(text):
        return f"{where} has trailing text after the JSON object: {text[end:end + 40].strip()!r}"
    if not isinstance(obj, dict):
        return f"{where} must be a JSON object, got {_json_type(obj)}"
    if "name" not in obj:
        return f'{where} has no "name"'
    name = obj["name"]
    if not isinstance(name, str) or not name.strip():
        return f'{where}: "name" must be a non-empty string, got {json.dumps(name)[:40]}'
    if "arguments" in obj and "parameters" in obj:
        return f'{where} has both "arguments" and "parameters"; give the arguments once, as "arguments"'
    args = obj.get("arguments", obj.get("parameters"))
    if isinstance(args, str):
        if not args.strip():
            args = None
        else:
            try:
                ok, args, err = _loads(args)
            except _DuplicateKey as exc:
                return _duplicate_message(f'{where}: "arguments"', exc.key)
            except _Refused as exc:
                ok, err = False, str(exc)
            if not ok:
                return f'{where}: "arguments" is a string that is not valid JSON: {err}'
    if args is None:
        args = {}
    if not isinstance(args, dict):
        return f'{where}: "arguments" must be a JSON object, got {_json_type(args)}'
    return _checked_call(name.strip(), args, raw, "json", where)


def _checked_call(name: str, args: dict[str, Any], raw: str, form: Literal["json", "xml"],
                  where: str) -> ToolCall | str:
    """The call, unless a decoded value cannot enter the history (a lone surrogate, inf)."""
    problem = invalid_text_in(name)
    if problem is not None:
        return f'{where}: "name" {problem}'
    problem = invalid_text_in(args)
    if problem is not None:
        subject = "argument" if problem.startswith('"') else "the arguments"
        return f"{where} ({name}): {subject} {problem}"
    return ToolCall(name=name, arguments=args, raw=raw, form=form)


# ---------------------------------------------------------------------------------------------
# XML form


_INT_RE = re.compile(r"\s*[-+]?\d+\s*")


def _generic_value(value: str) -> Any:
    ok, decoded, _ = _loads(value)
    return decoded if ok else value


def _as_type(value: str, type_name: str) -> tuple[bool, Any]:
    """Convert a raw XML parameter value to one JSON-schema type: (ok, converted)."""
    if type_name == "string":
        return True, value
    if type_name == "integer":
        if _INT_RE.fullmatch(value):
            try:
                return True, int(value)
            except ValueError:  # more digits than Python's int() limit
                return False, None
        return False, None
    if type_name == "boolean":
        word = value.strip().lower()
        return (True, word == "true") if word in ("true", "false") else (False, None)
    if type_name == "null":
        return (True, None) if value.strip() == "null" else (False, None)
    ok, decoded, _ = _loads(value)
    if not ok:
        return False, None
    if type_name == "number":
        good = isinstance(decoded, (int, float)) and not isinstance(decoded, bool)
    elif type_name == "object":
        good = isinstance(decoded, dict)
    elif type_name == "array":
        good = isinstance(decoded, list)
    else:
        good = False
    return good, decoded if good else None


def _declared_types(schema: Any, tool: str, param: str) -> list[str] | None:
    """The declared `type` of a parameter as a list, or None when unknown. Never raises."""
    if not isinstance(schema, Mapping):
        return None
    tool_schema = schema.get(tool)
    if not isinstance(tool_schema, Mapping):
        return None
    props = tool_schema.get("properties")
    if not isinstance(props, Mapping):
        return None
    prop = props.get(param)
    if not isinstance(prop, Mapping):
        return None
    declared = prop.get("type")
    if isinstance(declared, str):
        return [declared]
    if isinstance(declared, (list, tuple)) and declared and all(isinstance(t, str) for t in declared):
        return list(declared)
    return None


def _convert_param(value: str, types: list[str] | None) -> Any:
    if types is None:
        return _generic_value(value)
    for type_name in types:  # declared order decides unions like ["integer", "string"]
        ok, converted = _as_type(value, type_name)
        if ok:
            return converted
    return value  # leave it to schema validation to complain


def _strip_one_newline(value: str) -> str:
    if value.startswith("\n"):
        value = value[1:]
    if value.endswith("\n"):
        value = value[:-1]
    return value


def _parse_xml_call(body: str, number: int, raw: str, schemas: Any) -> ToolCall | str:
    where = f"tool call {number}"
    text = body.strip()
    if not text:
        return f"{where} is empty"
    m = _FUNCTION_RE.match(text)
    if not m:
        return f"{where} is neither a JSON object nor a <function=NAME> block"
    name = m.group(1).strip()
    if not name:
        return f"{where} has an empty function name"
    params: dict[str, Any] = {}
    i = m.end()
    while True:
        i = _WS_RE.match(text, i).end()
        if text.startswith("</function>", i):
            i += len("</function>")
            break
        if not text.startswith("<parameter=", i):
            if i >= len(text):
                return f"{where} ({name}) is missing </function>"
            return f"{where} ({name}) has unexpected text: {text[i:i + 40]!r}"
        gt = text.find(">", i)
        if gt < 0:
            return f"{where} ({name}) has an unfinished <parameter= tag"
        pname = text[i + len("<parameter=") : gt].strip()
        if not pname:
            return f"{where} ({name}) has a parameter with an empty name"
        close = text.find("</parameter>", gt + 1)
        if close < 0:
            return f"{where} ({name}): parameter {pname!r} is missing </parameter>"
        if pname in params:
            return f"{where} ({name}) has parameter {pname!r} more than once; give each parameter once"
        value = _strip_one_newline(text[gt + 1 : close])
        try:
            params[pname] = _convert_param(value, _declared_types(schemas, name, pname))
        except _DuplicateKey as exc:
            return _duplicate_message(f"{where} ({name}): parameter {pname!r}", exc.key)
        except _Refused as exc:
            return f"{where} ({name}): parameter {pname!r}: {exc}"
        i = close + len("</parameter>")
    if text[i:].strip():
        return f"{where} ({name}) has trailing text after </function>: {text[i:i + 40].strip()!r}"
    return _checked_call(name, params, raw, "xml", where)


# ---------------------------------------------------------------------------------------------
# The state machine


class _EndOracle:
    """For a finished text: where a string-aware scan starting at a position ends.

    Used only after a fallback, where blocks in the remaining text are re-parsed. A backward
    pass over the quote/backslash/close-tag positions gives, for every start, the first
    `</tool_call>` met outside a JSON string (or none), so repeated fallbacks cannot make
    the parse quadratic. Same automaton as `StreamingParser._json`: OUT --"--> IN,
    IN --"--> OUT, IN --\\--> skips one character, `</tool_call>` in OUT ends the block.
    """

    def __init__(self, text: str) -> None:
        pos = [m.start() for m in _END_TOKEN_RE.finditer(text)]
        count = len(pos)
        out = [-1] * (count + 2)  # scanning from token t outside a string
        ins = [-1] * (count + 2)  # ... inside a string
        for t in range(count - 1, -1, -1):
            ch = text[pos[t]]
            if ch == "<":
                out[t], ins[t] = pos[t], ins[t + 1]
            elif ch == '"':
                out[t], ins[t] = ins[t + 1], out[t + 1]
            else:  # a backslash escapes the next character inside a string only
                escaped_token = t + 1 < count and pos[t + 1] == pos[t] + 1
                out[t], ins[t] = out[t + 1], ins[t + 2 if escaped_token else t + 1]
        self._pos = pos
        self._out = out

    def end_from(self, start: int) -> int | None:
        end = self._out[bisect_left(self._pos, start)]
        return None if end < 0 else end


class _Block:
    """State of the tool-call block being read."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.parts: list[str] = []
        self.size = 0
        self.form: Literal["json", "xml"] = "json"
        self.started = False
        # JSON string scanner
        self.in_string = False
        self.escape = False
        self.first_close: int | None = None  # first literal </tool_call> (fallback end)
        self.tail = ""  # last characters, to find a tag split across segments
        # name tracker: structure of the top-level object until "name" is read
        self.track = True
        self.depth = 0
        self.slot = "start"  # start | key | colon | value | after
        self.key: str | None = None
        self.capture: str | None = None  # "key" | "name" while reading that string
        self.captured: list[str] = []
        self.capture_from = 0
        # XML name
        self.head: list[str] | None = []

    def add_json(self, seg: str) -> None:
        if not seg:
            return
        if self.first_close is None:
            joined = self.tail + seg
            k = joined.find(CALL_CLOSE)
            if k >= 0:
                self.first_close = self.size - len(self.tail) + k
            else:
                self.tail = joined[-(len(CALL_CLOSE) - 1) :]
        self.parts.append(seg)
        self.size += len(seg)


_LEAD, _AUTO, _REASONING, _CONTENT, _BLOCK_LEAD, _JSON, _XML = range(7)


class StreamingParser:
    """Incremental parser: `feed()` chunks, then `finish()`, then read `.result`."""

    def __init__(
        self,
        *,
        thinking_open: bool | None = None,
        tool_schemas: Mapping[str, Mapping] | None = None,
    ) -> None:
        self._mode = thinking_open
        self._schemas = tool_schemas
        self._stop = _StopFilter()
        self._buf = ""  # undecided tail only (a few characters), see module docstring
        self._state = _LEAD
        self._reasoning = _Sink()
        self._content = _Sink()
        self._pending: list[str] = []  # auto mode: text whose channel is not decided yet
        # Reasoning from its first <tool_call> on: reasoning if </think> comes, else calls.
        self._held: list[str] | None = None
        self._unclosed_reasoning = False
        self._block: _Block | None = None
        self._blocks = 0
        self._oracle: _EndOracle | None = None
        self._calls: list[ToolCall] = []
        self._errors: list[CallError] = []
        self._events: list[StreamEvent] = []
        self._result: ParseResult | None = None
        self._handlers: dict[int, Callable[[str, int, bool], tuple[int, bool]]] = {
            _LEAD: self._lead,
            _AUTO: self._auto,
            _REASONING: self._in_reasoning,
            _CONTENT: self._in_content,
            _BLOCK_LEAD: self._block_lead,
            _JSON: self._json,
            _XML: self._xml,
        }

    # -- public API -------------------------------------------------------------------------

    def feed(self, chunk: str) -> list[StreamEvent]:
        if self._result is not None:
            raise RuntimeError("feed() after finish()")
        self._events = []
        text = self._stop.feed(clean_text(chunk))  # a lone surrogate is no text: U+FFFD
        if text:
            self._buf += text
            self._run(final=False)
        return self._events

    def finish(self) -> list[StreamEvent]:
        if self._result is not None:
            raise RuntimeError("finish() called twice")
        self._events = []
        self._buf += self._stop.finish()
        self._run(final=True)
        reasoning = self._reasoning.text()
        notes = []
        if self._unclosed_reasoning:
            notes.append(f"the reasoning was never closed ({THINK_CLOSE} missing), so its "
                         f"{self._blocks} {CALL_OPEN} block(s) were read as tool calls")
        self._result = ParseResult(
            reasoning=reasoning or None,
            content=self._content.text(),
            tool_calls=list(self._calls),
            errors=list(self._errors),
            notes=notes,
        )
        return self._events

    @property
    def result(self) -> ParseResult:
        if self._result is None:
            raise RuntimeError("result is available after finish()")
        return self._result

    # -- driver -----------------------------------------------------------------------------

    def _run(self, final: bool) -> None:
        # Each handler consumes from `pos`, may switch state, and says whether to go on.
        pos, more = 0, True
        while more:
            pos, more = self._handlers[self._state](self._buf, pos, final)
        self._buf = self._buf[pos:]

    def _emit_reasoning(self, text: str) -> None:
        delta = self._reasoning.push(text)
        if delta:
            self._events.append(ReasoningDelta(delta))

    def _emit_content(self, text: str) -> None:
        delta = self._content.push(text)
        if delta:
            self._events.append(ContentDelta(delta))

    # -- states before and around the reasoning block ---------------------------------------

    def _lead(self, buf: str, pos: int, final: bool) -> tuple[int, bool]:
        i = _WS_RE.match(buf, pos).end()
        if buf.startswith(THINK_OPEN, i):  # explicit block at the start: reasoning in any mode
            self._state = _REASONING
            return i + len(THINK_OPEN), True
        rest = len(buf) - i
        if not final and rest < len(THINK_OPEN) and THINK_OPEN.startswith(buf[i:]):
            return i, False  # leading whitespace dropped: it would be stripped anyway
        self._state = {True: _REASONING, False: _CONTENT}.get(self._mode, _AUTO)
        return i, True

    def _auto(self, buf: str, pos: int, final: bool) -> tuple[int, bool]:
        m = _AUTO_RE.search(buf, pos)
        if m is None and not final:
            end = len(buf) - _held_len(buf, pos, _AUTO_HOLD)
            self._pending.append(buf[pos:end])
            return end, False
        end = m.start() if m else len(buf)
        self._pending.append(buf[pos:end])
        text = "".join(self._pending)
        self._pending = []
        self._state = _CONTENT
        if m is not None and m.group() == THINK_CLOSE:
            self._emit_reasoning(text)
            return m.end(), True
        self._emit_content(text)  # a <think>/<tool_call> is left for the content state
        return end, True

    def _in_reasoning(self, buf: str, pos: int, final: bool) -> tuple[int, bool]:
        if self._held is not None:
            return self._holding(buf, pos, final)
        j = buf.find(THINK_CLOSE, pos)
        c = buf.find(CALL_OPEN, pos, j if j >= 0 else len(buf))
        if c >= 0:
            # Whether this block is a draft (reasoning) or a call depends on a </think> that
            # may still come: hold everything from here on.
            self._emit_reasoning(buf[pos:c])
            self._held = []
            return c, True
        if j >= 0:
            self._emit_reasoning(buf[pos:j])
            self._state = _CONTENT
            return j + len(THINK_CLOSE), True
        end = len(buf) if final else len(buf) - _held_len(buf, pos, _REASONING_HOLD)
        self._emit_reasoning(buf[pos:end])
        return end, False

    def _holding(self, buf: str, pos: int, final: bool) -> tuple[int, bool]:
        held = self._held
        assert held is not None
        j = buf.find(THINK_CLOSE, pos)
        if j >= 0:  # the block closes: the held blocks were drafts, reasoning text
            held.append(buf[pos:j])
            self._held = None
            self._emit_reasoning("".join(held))
            self._state = _CONTENT
            return j + len(THINK_CLOSE), True
        if not final:
            end = len(buf) - _held_len(buf, pos, _HELD_HOLD)
            held.append(buf[pos:end])
            return end, False
        # The output ended inside the reasoning: its calls must not vanish. Read the held text
        # (it starts at the first <tool_call>) as content: complete blocks are calls, cut ones
        # errors, text around them content.
        held.append(buf[pos:])
        self._held = None
        self._unclosed_reasoning = True
        self._state = _CONTENT
        self._buf = "".join(held)
        return 0, True

    def _in_content(self, buf: str, pos: int, final: bool) -> tuple[int, bool]:
        j = buf.find(CALL_OPEN, pos)
        if j >= 0:
            self._emit_content(buf[pos:j])
            self._block = _Block(self._blocks)
            self._blocks += 1
            self._state = _BLOCK_LEAD
            return j + len(CALL_OPEN), True
        end = len(buf) if final else len(buf) - _held_len(buf, pos, _CONTENT_HOLD)
        self._emit_content(buf[pos:end])
        return end, False

    # -- tool-call blocks -------------------------------------------------------------------

    def _block_lead(self, buf: str, pos: int, final: bool) -> tuple[int, bool]:
        block = self._block
        assert block is not None
        i = _WS_RE.match(buf, pos).end()
        block.add_json(buf[pos:i])
        if i == len(buf):
            if final:
                self._close(block, "".join(block.parts), closed=False)
                return i, True
            return i, False
        if buf[i] == "<":
            block.form = "xml"
            self._state = _XML
            return i, True
        self._state = _JSON
        if self._oracle is not None:
            return self._json_by_oracle(block, buf, i)
        return i, True

    def _xml(self, buf: str, pos: int, final: bool) -> tuple[int, bool]:
        block = self._block
        assert block is not None
        j = buf.find(CALL_CLOSE, pos)
        if j >= 0:
            end = j
        else:
            end = len(buf) if final else len(buf) - _held_len(buf, pos, _CALL_CLOSE_HOLD)
        seg = buf[pos:end]
        block.parts.append(seg)
        if block.head is not None and seg:
            self._xml_name(block, seg)
        if j >= 0:
            self._close(block, "".join(block.parts), closed=True)
            return j + len(CALL_CLOSE), True
        if final:
            self._close(block, "".join(block.parts), closed=False)
            return end, True
        return end, False

    def _xml_name(self, block: _Block, seg: str) -> None:
        # The name is known once "<function=NAME>" is complete, i.e. at the first ">".
        assert block.head is not None
        block.head.append(seg)
        if ">" in seg:
            m = _FUNCTION_RE.match("".join(block.head))
            block.head = None
            if m and m.group(1).strip():
                block.started = True
                self._events.append(ToolCallStarted(block.index, m.group(1).strip()))

    def _json(self, buf: str, pos: int, final: bool) -> tuple[int, bool]:
        """String-aware scan for the block end; tracks the top-level "name" on the way."""
        block = self._block
        assert block is not None
        n = len(buf)
        i = pos
        close_at = -1
        if block.capture:
            block.capture_from = pos
        while i < n:
            if block.escape:
                block.escape = False
                i += 1
            elif block.in_string:
                m = _IN_STRING_RE.search(buf, i)
                if m is None:
                    i = n
                    break
                k = m.start()
                i = k + 1
                if buf[k] == "\\":
                    block.escape = True
                else:
                    block.in_string = False
                    if block.capture:
                        block.captured.append(buf[block.capture_from : k])
                        self._string_done(block, buf, pos, k)
            else:
                m = (_OUT_TRACK_RE if block.track else _OUT_PLAIN_RE).search(buf, i)
                k = m.start() if m else n
                if block.track and k > i and _NONWS_RE.search(buf, i, k):
                    self._structure(block, "")
                if m is None:
                    i = n
                    break
                ch = buf[k]
                if ch == "<":
                    if buf.startswith(CALL_CLOSE, k):
                        close_at = i = k
                        break
                    if not final and n - k < len(CALL_CLOSE) and CALL_CLOSE.startswith(buf[k:]):
                        i = k  # maybe the end tag: wait for more
                        break
                    i = k + 1
                    if block.track:
                        self._structure(block, "")
                    continue
                i = k + 1
                if ch == '"':
                    block.in_string = True
                    if block.track:
                        self._string_start(block, i)
                elif block.track:
                    self._structure(block, ch)
        if block.capture and block.in_string:
            block.captured.append(buf[block.capture_from : i])
        block.add_json(buf[pos:i])
        if close_at >= 0:
            self._close(block, "".join(block.parts), closed=True)
            return close_at + len(CALL_CLOSE), True
        if final:
            return self._fallback(block)
        return i, False

    def _string_start(self, block: _Block, at: int) -> None:
        if block.depth == 1 and (block.slot == "key" or (block.slot == "value" and block.key == "name")):
            block.capture = "key" if block.slot == "key" else "name"
            block.captured = []
            block.capture_from = at
        elif block.depth == 0:
            block.track = False  # not an object: no name to announce
        elif block.depth == 1:
            block.slot = "after"

    def _string_done(self, block: _Block, buf: str, pos: int, at: int) -> None:
        text = _decode_json_string("".join(block.captured))
        kind, block.capture, block.captured = block.capture, None, []
        if kind == "key":
            block.key, block.slot = text, "colon"
            return
        block.slot = "after"
        # Announce only while no literal </tool_call> was passed: after one, the scan may be
        # out of phase (unbalanced quote) and this "name" may belong to the next block.
        seen_close = block.first_close is not None or CALL_CLOSE in block.tail + buf[pos:at]
        if text and text.strip() and not seen_close:
            block.started = True
            block.track = False
            self._events.append(ToolCallStarted(block.index, text.strip()))

    def _structure(self, block: _Block, ch: str) -> None:
        """One structural character (or "" for other non-blank text) outside strings."""
        if ch in ("{", "["):
            if block.depth == 0:
                if ch == "[" or block.slot != "start":
                    block.track = False
                    return
                block.slot = "key"
            elif block.depth == 1:
                block.slot = "after"
            block.depth += 1
        elif ch in ("}", "]"):
            block.depth -= 1
            if block.depth <= 0:
                block.track = False  # top-level object closed without a usable name
            elif block.depth == 1:
                block.slot = "after"
        elif block.depth == 0:
            block.track = False
        elif block.depth == 1:
            if ch == ":":
                block.slot = "value" if block.slot == "colon" else "after"
            elif ch == ",":
                block.slot = "key"
            else:
                block.slot = "after"

    def _fallback(self, block: _Block) -> tuple[int, bool]:
        """End of output inside a JSON block: no string-aware end exists."""
        body = "".join(block.parts)
        if block.first_close is None:
            self._close(block, body, closed=False)
            self._buf = ""  # everything up to the end belongs to the unclosed block
            return 0, True
        self._close(block, body[: block.first_close], closed=True)
        tail = body[block.first_close + len(CALL_CLOSE) :]
        self._buf = tail
        self._oracle = _EndOracle(tail)
        return 0, True

    def _json_by_oracle(self, block: _Block, buf: str, i: int) -> tuple[int, bool]:
        # After a fallback the rest of the text is known: look the block's end up.
        end = self._oracle.end_from(i) if self._oracle else None
        if end is None:
            end = buf.find(CALL_CLOSE, i)
        if end < 0:
            block.parts.append(buf[i:])
            self._close(block, "".join(block.parts), closed=False)
            return len(buf), True
        block.parts.append(buf[i:end])
        self._close(block, "".join(block.parts), closed=True)
        return end + len(CALL_CLOSE), True

    def _close(self, block: _Block, body: str, *, closed: bool) -> None:
        self._block = None
        self._state = _CONTENT
        number = block.index + 1
        raw = CALL_OPEN + body + (CALL_CLOSE if closed else "")
        outcome: ToolCall | str
        if not closed:
            outcome = f"tool call {number} is not closed: missing {CALL_CLOSE} (output cut off?)"
        elif block.form == "xml":
            outcome = _parse_xml_call(body, number, raw, self._schemas)
        else:
            outcome = _parse_json_call(body, number, raw)
        if isinstance(outcome, ToolCall):
            if not block.started:
                self._events.append(ToolCallStarted(block.index, outcome.name))
            self._calls.append(outcome)
            self._events.append(ToolCallCompleted(block.index, outcome))
        else:
            # Bounded: a block's name or parameter can be megabytes, and the model reads this.
            error = CallError(raw=raw, message=bound_text(clean_text(outcome)))
            self._errors.append(error)
            self._events.append(ToolCallFailed(block.index, error))
