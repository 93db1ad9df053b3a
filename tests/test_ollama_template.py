"""templates/smol-tools.gotmpl renders the prompt bytes of templates/smol-tools.jinja in Ollama.

No Ollama server here: smol_tools/ollama_harness is a Go program (text/template, standard library)
that hands the template exactly what Ollama's /api/chat does (its api types, message
collation, `json` helper and Think/IsThinkSet values). Every corpus case is rendered both
ways; where Ollama's types cannot carry a case, the test states what Ollama renders instead.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from smol_tools.chat_format import generation_prompt, render_prompt
from smol_tools.tool_schema import portable_tools, sorted_deep
from smol_tools.ollama_render import (
    GO_TEMPLATE_PATH,
    OllamaRenderError,
    ensure_ollama_renderer,
    inspect_ollama_template,
    render_with_ollama_template,
    run_ollama_renderer,
    to_ollama_messages,
    to_ollama_tools,
)
from tests.conftest import render_corpus

CASES = render_corpus()


@pytest.fixture(scope="module", autouse=True)
def renderer():
    # No skip when Go is missing: an unproven Ollama template must not look green.
    return ensure_ollama_renderer()


# ---------------------------------------------------------------------------------------------
# What Ollama's decoding does to a conversation (api/types.go, template/template.go).

def ollama_view_of_tools(tools: list[dict]) -> list[dict]:
    """The tools as Ollama lets the template see them, in the key order the gotmpl writes."""
    return portable_tools(tools)


def ollama_view_of_messages(messages: list[dict]) -> list[dict]:
    out = copy.deepcopy(messages)
    for message in out:
        for call in message.get("tool_calls") or []:
            fn = call.get("function", call)
            args = fn["arguments"]
            fn["arguments"] = sorted_deep(json.loads(args) if isinstance(args, str) else args)
    return out


def _render_both(case: dict) -> tuple[str, str]:
    kwargs = dict(add_generation_prompt=case["add_generation_prompt"],
                  enable_thinking=case["enable_thinking"])
    jinja = render_prompt(case["messages"], case["tools"], **kwargs)
    ollama = render_with_ollama_template(case["messages"], case["tools"], **kwargs)
    return jinja, ollama


# Corpus cases Ollama cannot carry unchanged, and why.
OLLAMA_DIVERGES = {
    "nested_arguments": (
        "Ollama hands templates tool properties and tool-call arguments as plain Go maps, so "
        "their keys come out sorted (to/subject/body/options -> body/options/subject/to), and "
        "api.ToolProperty has no minimum/maximum fields, so those keywords are dropped when "
        "the request is decoded. Tools written with sorted property names and only Ollama's "
        "keywords (anyOf, type, description, enum, items, properties, required), and calls "
        "whose argument keys are sorted, render identically."),
}


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_corpus_case_renders_as_in_jinja(case: dict) -> None:
    jinja, ollama = _render_both(case)
    if case["id"] not in OLLAMA_DIVERGES:
        assert ollama == jinja
        return
    # Not skipped: Ollama renders exactly the Jinja prompt of the conversation as its types
    # carry it (see OLLAMA_DIVERGES for why), and that differs from the original.
    expected = render_prompt(ollama_view_of_messages(case["messages"]),
                             ollama_view_of_tools(case["tools"]),
                             add_generation_prompt=case["add_generation_prompt"],
                             enable_thinking=case["enable_thinking"])
    assert ollama == expected
    assert ollama != jinja, f"{case['id']} now renders identically: drop it from OLLAMA_DIVERGES"


def test_divergences_name_corpus_cases() -> None:
    assert set(OLLAMA_DIVERGES) <= {c["id"] for c in CASES}


# ---------------------------------------------------------------------------------------------
# Ollama's tool-call prefix detection (tools/template.go, parseTag), reproduced on our own
# tokenizer of Go templates: the first {{if}} whose pipeline names the *field* .ToolCalls
# (a $variable's .ToolCalls does not count); in its body, depth first, the first text that is
# not only whitespace, where an action, or an if/range/with block without such text, ends the
# search; cut at the first "{" and trimmed. No such text means "{" (every JSON object is a call).


@dataclass
class Node:
    kind: str  # text | action | if | range | with | template
    text: str = ""  # text, or the pipeline
    body: list["Node"] = field(default_factory=list)
    else_body: list["Node"] | None = None


def _tokenize(src: str) -> list[tuple[str, str]]:
    """[(kind, value)] with kind "text" or "action"; trim markers applied, comments dropped."""
    tokens: list[tuple[str, str]] = []
    i = 0
    trim_next = False
    while i < len(src):
        j = src.find("{{", i)
        text = src[i:] if j < 0 else src[i:j]
        if trim_next:
            text = text.lstrip(" \t\r\n")
        if j < 0:
            tokens.append(("text", text))
            break
        k = j + 2
        trim_prev = src[k:k + 1] == "-" and src[k + 1:k + 2] in (" ", "\t", "\r", "\n")
        if trim_prev:
            text = text.rstrip(" \t\r\n")
            k += 1
        tokens.append(("text", text))
        # Find the closing "}}" outside string literals and comments.
        quote = None
        m = k
        while True:
            c = src[m]
            if quote:
                if c == "\\" and quote != "`":
                    m += 2
                    continue
                if c == quote:
                    quote = None
            elif src.startswith("/*", m):
                m = src.index("*/", m) + 2
                continue
            elif c in "\"`'":
                quote = c
            elif src.startswith("}}", m):
                break
            m += 1
        body = src[k:m]
        trim_next = len(body) >= 2 and body[-1] == "-" and body[-2] in " \t\r\n"
        if trim_next:
            body = body[:-1]
        body = body.strip()
        if not (body.startswith("/*") and body.endswith("*/")):
            tokens.append(("action", body))
        i = m + 2
    return [t for t in tokens if t != ("text", "")]


def _parse(tokens: list[tuple[str, str]]) -> list[Node]:
    """The main template's tree; {{define}} bodies are separate templates and are dropped."""
    root: list[Node] = []
    # Stack entries: (list being filled, the block node or None, "define" marker, close count).
    stack: list[tuple[list[Node], Node | None, bool, int]] = [(root, None, False, 0)]
    for kind, value in tokens:
        current, block, in_define, closes = stack[-1]
        if kind == "text":
            current.append(Node("text", value))
            continue
        word = value.split(None, 1)[0] if value else ""
        rest = value[len(word):].strip()
        if word in ("if", "range", "with"):
            node = Node(word, rest)
            current.append(node)
            stack.append((node.body, node, False, 1))
        elif word == "define" or word == "block":
            holder: list[Node] = []
            if word == "block":  # a block is also invoked in place
                current.append(Node("template", rest))
            stack.append((holder, None, True, 1))
        elif word == "else":
            # {{else}} / {{else if X}}: the rest belongs to the innermost block's else branch.
            lst, node, define, n = stack.pop()
            assert node is not None, "else outside a block"
            node.else_body = []
            if rest.startswith("if ") or rest.startswith("with "):
                inner = Node(rest.split(None, 1)[0], rest.split(None, 1)[1])
                node.else_body.append(inner)
                stack.append((inner.body, inner, define, n))  # one {{end}} closes the chain
            else:
                stack.append((node.else_body, node, define, n))
        elif word == "end":
            stack.pop()
        elif word == "template":
            current.append(Node("template", rest))
        elif word in ("break", "continue"):
            current.append(Node("control", word))
        else:
            current.append(Node("action", value))
    assert len(stack) == 1, "unbalanced template"
    return root


_FIELD_TOOLCALLS = re.compile(r"(?<![\w$)\]])\.(?:\w+\.)*ToolCalls\b")


def _top_level(pipe: str) -> str:
    # Only direct arguments of the if's commands are FieldNodes to Ollama: drop string
    # literals and parenthesized sub-pipelines.
    pipe = re.sub(r'"(?:[^"\\]|\\.)*"|`[^`]*`', '""', pipe)
    while True:
        reduced = re.sub(r"\([^()]*\)", " ", pipe)
        if reduced == pipe:
            return pipe
        pipe = reduced


def _find_tool_calls_if(nodes: list[Node]) -> Node | None:
    for node in nodes:
        if node.kind == "if" and _FIELD_TOOLCALLS.search(_top_level(node.text)):
            return node
        if node.kind in ("if", "range", "with"):
            for branch in (node.body, node.else_body or []):
                found = _find_tool_calls_if(branch)
                if found:
                    return found
    return None


def _first_text(nodes: list[Node]) -> str | None:
    for node in nodes:
        if node.kind == "text":
            if node.text.strip():
                return node.text
        elif node.kind in ("if", "range", "with"):
            return _first_text(node.body) or _first_text(node.else_body or [])
        elif node.kind == "action":
            return None
    return None


def tool_call_tag(template: str) -> str:
    node = _find_tool_calls_if(_parse(_tokenize(template)))
    text = _first_text(node.body) if node else None
    if text is None:
        return "{"
    tag = text.replace("\r\n", "\n").split("{", 1)[0].strip()
    return tag or "{"


def test_tool_call_prefix_is_detected_as_tool_call_tag() -> None:
    template = GO_TEMPLATE_PATH.read_text(encoding="utf-8")
    assert '<tool_call>\n{"name": ' in template
    assert tool_call_tag(template) == "<tool_call>"
    # The Go harness applies the same rule to Go's own parse tree.
    assert inspect_ollama_template()["tool_call_tag"] == "<tool_call>"


def test_tag_rule_reproduction_matches_go_on_other_templates() -> None:
    # Guards the Python reproduction itself against the Go parse tree.
    samples = [
        '{{ range .Messages }}{{ if .ToolCalls }}[CALLS]{{ range .ToolCalls }}{"n": 1}{{ end }}{{ end }}{{ end }}',
        '{{ range $m := .Messages }}{{ if $m.ToolCalls }}<a>{{ end }}{{ if .ToolCalls }}\n  <b>\n{{ end }}{{ end }}',
        '{{ range .Messages }}{{ if .ToolCalls }}{{ .Content }}<tool_call>{{ end }}{{ end }}',
        '{{ range .Messages }}{{- if .ToolCalls -}} {{ if $.Tools }}x{"a"{{ end }}{{ end }}{{ end }}',
        '{{ range .Messages }}{{ if (.ToolCalls) }}<no>{{ end }}{{ if and .Role .ToolCalls }}{{ break }}<yes>{{ end }}{{ end }}',
    ]
    for sample in samples:
        assert tool_call_tag(sample) == inspect_ollama_template(sample)["tool_call_tag"], sample


def test_ollama_sees_tools_thinking_and_tool_round_trip() -> None:
    report = inspect_ollama_template()
    # thinking/template.go: tags found -> "thinking" capability; the prompt ending in <think>
    # starts Ollama's thinking parser inside the reasoning.
    assert report["thinking_tags"] == ["<think>", "</think>"]
    # server/images.go: "tools" capability, and a Go template with a tool round trip is
    # preferred to the GGUF's chat template only with "toolcalls" and tool_response in it.
    assert {"messages", "tools", "toolcalls"} <= set(report["vars"])
    assert "tool_response" in GO_TEMPLATE_PATH.read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# Generation prompt and thinking.

CONVERSATION = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]


@pytest.mark.parametrize("enable_thinking", [True, False])
def test_generation_prompt_follows_enable_thinking(enable_thinking: bool) -> None:
    prompt = render_with_ollama_template(CONVERSATION, enable_thinking=enable_thinking)
    assert prompt.endswith(generation_prompt(enable_thinking))
    assert prompt == render_prompt(CONVERSATION, enable_thinking=enable_thinking)


@pytest.mark.parametrize(("think", "thinking_on"), [(None, True), (True, True), ("high", True),
                                                    (False, False)])
def test_think_values_map_to_enable_thinking(think: Any, thinking_on: bool) -> None:
    # Only an explicit "think": false (IsThinkSet and not Think) closes the think block; a
    # request without "think" opens it (Ollama sets think=true for thinking-capable models
    # anyway, and IsThinkSet=false would mean the same to this template).
    prompt = run_ollama_renderer({"template": GO_TEMPLATE_PATH.read_text(encoding="utf-8"),
                                  "messages": to_ollama_messages(CONVERSATION), "think": think})
    assert prompt == render_prompt(CONVERSATION, enable_thinking=thinking_on)


def test_add_generation_prompt_ollama_cannot_express_is_refused() -> None:
    # /api/chat has no such flag: the template opens a turn whenever the last message is not
    # the assistant's, so "no generation prompt after a user message" cannot reach Ollama.
    with pytest.raises(OllamaRenderError, match="add_generation_prompt=false cannot be expressed"):
        render_with_ollama_template(CONVERSATION, add_generation_prompt=False)


# ---------------------------------------------------------------------------------------------
# A long agent session: 10 tool rounds, each prompt checked, plus the finished conversation.

SESSION_TOOLS = [
    {"type": "function", "function": {
        "name": "calculate", "description": "Evaluate arithmetic, e.g. \"2 * (3 + 4)\".",
        "parameters": {"type": "object", "properties": {"expression": {"type": "string"}},
                       "required": ["expression"]}}},
    {"type": "function", "function": {
        "name": "get_weather", "description": "Get the weather for a city.",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "description": "City name, e.g. 'Zürich'."},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city"]}}},
]


def ten_round_session() -> list[dict]:
    messages: list[dict] = [
        {"role": "system", "content": "You are a careful agent. Use tools; answer briefly."},
        {"role": "user", "content": "Plan a trip: check the weather in 10 cities and add up scores."},
    ]
    cities = ["Paris", "Zürich", "東京", "Lima", "Oslo", "Cairo", "Perth", "Quito", "Reykjavík", "Nuuk"]
    for r, city in enumerate(cities):
        calls = [{"id": f"call_{r}_w", "type": "function",
                  "function": {"name": "get_weather", "arguments": {"city": city, "unit": "celsius"}}}]
        if r % 3 == 1:  # parallel calls in some rounds
            calls.append({"id": f"call_{r}_c", "type": "function", "function": {
                "name": "calculate", "arguments": json.dumps({"expression": f"{r} * 7 < 50 && {r} > 0"})}})
        messages.append({"role": "assistant", "content": "" if r % 2 else f"Round {r + 1}: checking {city}.",
                         "reasoning_content": f"Need the weather in {city} (round {r + 1}).",
                         "tool_calls": calls})
        messages.append({"role": "tool", "name": "get_weather", "tool_call_id": f"call_{r}_w",
                         "content": json.dumps({"city": city, "temp_c": 10 + r, "sky": "clear"},
                                               ensure_ascii=False)})
        if len(calls) > 1:
            messages.append({"role": "tool", "name": "calculate", "tool_call_id": f"call_{r}_c",
                             "content": str(r * 7)})
    messages.append({"role": "assistant", "content": "All ten checked: go to Cairo.\n",
                     "reasoning_content": "Cairo is warmest."})
    return messages


def test_ten_round_tool_session_renders_identically() -> None:
    session = ten_round_session()
    assert sum(1 for m in session if m["role"] == "assistant" and m.get("tool_calls")) == 10
    prompts = []
    for end in range(2, len(session)):
        if session[end - 1]["role"] != "tool" or session[end]["role"] == "tool":
            continue  # a prompt is rendered once every tool result of the round is in
        prefix = session[:end]
        ollama = render_with_ollama_template(prefix, SESSION_TOOLS)
        assert ollama == render_prompt(prefix, SESSION_TOOLS), f"round ending at message {end}"
        prompts.append(ollama)
    assert len(prompts) == 10
    # Reasoning after the last user query is kept, so each round extends the previous prompt.
    assert all(b.startswith(a) for a, b in zip(prompts, prompts[1:]))
    final = render_with_ollama_template(session, SESSION_TOOLS, add_generation_prompt=False)
    assert final == render_prompt(session, SESSION_TOOLS, add_generation_prompt=False)


# ---------------------------------------------------------------------------------------------
# Conversion and known limits of what Ollama can carry.

def test_to_ollama_messages_shapes_an_api_chat_request() -> None:
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": None, "reasoning_content": "why",
         "tool_calls": [{"id": "c1", "type": "function",
                         "function": {"name": "f", "arguments": '{"y": 1, "x": [2]}'}},
                        {"name": "g", "arguments": {"k": "v"}}]},
        {"role": "tool", "name": "f", "tool_call_id": "c1", "content": "ok"},
        {"role": "assistant", "content": "done", "thinking": "alias"},
    ]
    assert to_ollama_messages(messages) == [
        {"role": "user", "content": "ab"},
        {"role": "assistant", "content": "", "thinking": "why", "tool_calls": [
            {"id": "c1", "function": {"name": "f", "arguments": {"y": 1, "x": [2]}}},
            {"function": {"name": "g", "arguments": {"k": "v"}}}]},
        {"role": "tool", "content": "ok", "tool_name": "f", "tool_call_id": "c1"},
        {"role": "assistant", "content": "done", "thinking": "alias"},
    ]
    assert to_ollama_tools(None) is None
    assert to_ollama_tools(SESSION_TOOLS) == SESSION_TOOLS


def test_consecutive_same_role_messages_are_merged_by_ollama() -> None:
    # template/template.go collate(): Ollama joins consecutive non-tool messages of one role
    # with "\n\n" before the template sees them; Jinja keeps two turns.
    messages = [{"role": "user", "content": "one"}, {"role": "user", "content": "two"}]
    ollama = render_with_ollama_template(messages)
    assert ollama == render_prompt([{"role": "user", "content": "one\n\ntwo"}])
    assert ollama != render_prompt(messages)


def test_tool_call_arguments_are_rendered_with_sorted_keys() -> None:
    # The template gets arguments as a Go map: a call written {"b", "a"} comes back {"a", "b"}.
    messages = [{"role": "user", "content": "q"},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"type": "function", "function": {"name": "f", "arguments": {"b": 1, "a": "<&>"}}}]},
                {"role": "tool", "content": "r"}]
    ollama = render_with_ollama_template(messages)
    assert '{"name": "f", "arguments": {"a": "<&>", "b": 1}}' in ollama
    assert ollama == render_prompt(ollama_view_of_messages(messages))


def test_renderer_build_is_cached() -> None:
    first = ensure_ollama_renderer()
    assert first.is_file() and ensure_ollama_renderer() == first
    assert first.parent.name != "" and len(first.parent.name) == 64  # sha256 of sources + Go


# ---------------------------------------------------------------------------------------------
# Seeded random conversations: the Go template's string work (trimming Unicode whitespace,
# splitting inline <think>, JSON escaping across its fast paths) against Jinja. They avoid only
# what Ollama cannot carry: unsorted argument keys, consecutive same-role messages, an empty
# reasoning field, and assistant content with two </think> (documented in the gotmpl).

ATOMS = ["a", "word", " ", "  ", "\n", "\n\n", "\t", "\r\n", "\u00a0", "\u3000", "\u2028", "\x1c",
         "<", ">", "&", '"', "\\", "'", "</think>", "<think>", "<tool_response>",
         "</tool_response>", "é", "東京", "🇫🇷", "\x01", "\b", "\f", "\x7f", "x" * 70, "{{", "}}"]


def _random_conversation(rng) -> tuple[list[dict], list[dict] | None]:
    def text(n=None):
        return "".join(rng.choice(ATOMS) for _ in range(rng.randint(0, 10) if n is None else n))

    def value(depth=0):
        kind = rng.randint(0, 6 if depth < 2 else 3)
        if kind == 0:
            return text(rng.randint(0, 5))
        if kind == 1:
            return rng.randint(-1000, 10**6)
        if kind == 2:
            return rng.choice([True, False, None])
        if kind == 3:
            return rng.choice([2.5, -0.125, 1e-3])
        if kind == 4:
            return [value(depth + 1) for _ in range(rng.randint(0, 3))]
        return {text(rng.randint(1, 3)): value(depth + 1) for _ in range(rng.randint(0, 3))}

    messages: list[dict] = []
    if rng.random() < 0.4:
        messages.append({"role": "system", "content": text()})
    for _ in range(rng.randint(1, 3)):
        if rng.random() < 0.2:
            wrapped = "<tool_response>" + text(3) + "</tool_response>"
            messages.append({"role": "user", "content": rng.choice(["", "\n "]) + wrapped + rng.choice(["", "\u3000\n"])})
        else:
            messages.append({"role": "user", "content": text()})
        for _ in range(rng.randint(0, 3)):
            content = rng.choice([text(), None, text() + "</think>" + text(), "<think>" + text() + "</think>" + text()])
            if content and content.count("</think>") > 1:
                content = content.replace("</think>", "")
            assistant: dict[str, Any] = {"role": "assistant", "content": content}
            if rng.random() < 0.4:
                assistant["reasoning_content"] = text(rng.randint(1, 6))
            calls = []
            if rng.random() < 0.5:
                for _ in range(rng.randint(1, 3)):
                    args = sorted_deep({rng.choice(["city", "q", "é", "<k>"]) + str(i): value() for i in range(rng.randint(0, 3))})
                    calls.append({"type": "function", "function": {
                        "name": rng.choice(["f", "get_weather", "é<>"]),
                        "arguments": rng.choice([args, json.dumps(args, ensure_ascii=False)])}})
                assistant["tool_calls"] = calls
            messages.append(assistant)
            messages.extend({"role": "tool", "content": text()} for _ in calls)
            if not calls:
                break
    deduped = [messages[0]]
    for message in messages[1:]:
        if message["role"] != deduped[-1]["role"] or message["role"] == "tool":
            deduped.append(message)
    tools = None
    if rng.random() < 0.6:
        tools = []
        for i in range(rng.randint(1, 2)):
            props = {}
            for name in sorted(rng.sample(["alpha", "beta", "z<&>", "ünï"], rng.randint(0, 3))):
                prop: dict[str, Any] = {"type": rng.choice(["string", "integer", "array"])}
                if rng.random() < 0.5:
                    prop["description"] = text(rng.randint(1, 6))
                if rng.random() < 0.3:
                    prop["enum"] = [text(2) for _ in range(rng.randint(1, 3))]
                props[name] = prop
            params: dict[str, Any] = {"type": "object", "properties": props}
            if props:
                params["required"] = sorted(props)[:1]
            tools.append({"type": "function", "function": {
                "name": f"tool_{i}" + rng.choice(["", '"q"']), "description": text(rng.randint(1, 8)),
                "parameters": params}})
    return deduped, tools


def test_random_conversations_render_identically() -> None:
    import random

    rng = random.Random(20240611)
    for n in range(80):
        messages, tools = _random_conversation(rng)
        kwargs = dict(add_generation_prompt=messages[-1]["role"] != "assistant",
                      enable_thinking=rng.random() < 0.5)
        jinja = render_prompt(messages, tools, **kwargs)
        ollama = render_with_ollama_template(messages, tools, **kwargs)
        assert ollama == jinja, f"conversation {n}: {json.dumps([messages, tools], ensure_ascii=False)}"
