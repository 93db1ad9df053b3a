"""Turn records → Gradio chat messages (plain dicts of the messages format) and the metrics panel.

Reasoning is a collapsed "thought" (message metadata with a title). Each round's tool calls are
one open thought whose body is a row of cards, one per call, side by side: the raw
`<tool_call>` text, the parsed JSON (a fenced block, so Gradio adds a copy button), the schema
check, the result or error and its timing. Kept free of Gradio imports so it is cheap to test."""

from __future__ import annotations

import html
import json
import re
from typing import Any, Sequence

from .transcript import CallRecord, RoundRecord, TurnRecord

Message = dict[str, Any]

MAX_RESULT_CHARS = 4000  # in the chat; the export keeps everything
_CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"
_TAGS = re.compile(r"</?(?:think|tool_call|tool_response)>")
_FIELD = re.compile(r"^([\w/().\[\]-]+): (.*)$", re.S)  # the agent's "<path>: <message>" problems

# Classes the app's CSS lays out (app.py passes CSS to launch()).
CSS = """
.st-calls { display: flex; flex-wrap: wrap; gap: 0.75rem; align-items: stretch; }
.st-call { flex: 1 1 280px; min-width: 0; border: 1px solid var(--border-color-primary);
           border-radius: 8px; padding: 0.25rem 0.75rem; background: var(--background-fill-secondary); }
.st-call pre { max-height: 22rem; overflow: auto; }
.st-call pre code { white-space: pre-wrap; overflow-wrap: anywhere; }
.st-banner { border-left: 4px solid #d97706; padding: 0.5rem 0.75rem; background: rgba(217,119,6,0.08); }
.st-banner-ok { border-left: 4px solid #16a34a; padding: 0.5rem 0.75rem; background: rgba(22,163,74,0.08); }
"""


def fence(text: str, lang: str = "") -> str:
    """A fenced code block that survives backticks inside `text`."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{text}\n{ticks}"


def show_tags(text: str) -> str:
    """Keep <think>/<tool_call> literal in Markdown (Gradio would treat them as HTML tags)."""
    return _TAGS.sub(lambda m: html.escape(m.group(0)), text)


def pretty_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


def _result_block(text: str) -> str:
    if len(text) > MAX_RESULT_CHARS:
        cut = len(text) - MAX_RESULT_CHARS
        return fence(f"{text[:MAX_RESULT_CHARS]}\n… [{cut} more characters; the export has them all]", "text")
    try:
        return fence(pretty_json(json.loads(text)), "json")
    except json.JSONDecodeError:
        return fence(text, "text")


def number(i: int) -> str:
    return _CIRCLED[i] if i < len(_CIRCLED) else f"({i + 1})"


def _problem(text: str) -> str:
    """`city: 1 is not of type 'string'` -> the field in code style, so it stands out."""
    match = _FIELD.match(text)
    return f"`{match[1]}` {match[2]}" if match else text


def schema_verdict(call: CallRecord) -> str:
    if call.malformed:
        return "✗ not a valid call: " + "; ".join(call.problems)
    if call.schema_ok is None:
        return "checking…"
    if call.schema_ok:
        return "✓ schema ok"
    return "✗ schema: " + "; ".join(_problem(p) for p in call.problems)


def render_call(call: CallRecord) -> str:
    """One call card (Markdown inside a div: blank lines let Markdown run inside the HTML)."""
    timing = f" · {call.seconds:.2f} s" if call.seconds is not None else ""
    manual = " · ✍ typed by you" if call.manual else " · 📜 scripted result (tiny model)" if call.scripted else ""
    name = call.name.replace("`", "'")  # inside a code span: no HTML, but a backtick would end it
    parts = [f"**{number(call.index)} `{name}`** · {schema_verdict(call)}{timing}{manual}"]
    if call.raw:
        parts += ["Model output (raw)", fence(call.raw, "text")]
    if call.arguments is not None and not call.malformed:
        parts += ["Parsed call (JSON)", fence(pretty_json({"name": call.name, "arguments": call.arguments}), "json")]
    if call.status == "streaming":
        parts.append("*the model is writing this call…*")
    elif call.status == "waiting":
        parts.append("✍ **Waiting for you**: type this call's result in *Manual tool result* and press *Submit result*.")
    elif call.status == "running":
        parts.append("*running…*")
    elif call.status == "cut":
        parts.append("✗ *cut off: the turn ended before this call ran*")
    if call.result is not None:
        parts += ["**Error**" if call.is_error else "**Result**", _result_block(call.result)]
    body = "\n\n".join(parts)
    return f'<div class="st-call">\n\n{body}\n\n</div>'


def round_title(rnd: RoundRecord) -> str:
    names = [c.name for c in rnd.calls]
    if len(names) == 1:
        return f"Round {rnd.number} · tool call: {names[0]}"
    return f"Round {rnd.number} · {len(names)} parallel tool calls: {', '.join(names)}"


def usage_log(rnd: RoundRecord, turn_running: bool = True) -> str:
    usage = rnd.usage
    if usage is None:
        if not rnd.generating:
            return "imported"  # rebuilt from an export: no usage recorded
        return "generating…" if turn_running else "cut off before the model finished"
    parts = [f"prompt {usage.prompt_tokens} tok ({usage.cached_tokens} reused)",
             f"{usage.completion_tokens} tok generated"]
    if usage.reuse_note:
        parts.insert(1, f"re-evaluated because {usage.reuse_note}")
    if usage.tokens_per_second:
        parts.append(f"{usage.tokens_per_second:.1f} tok/s")
    return " · ".join(parts)


def render_round(rnd: RoundRecord, turn_no: int, thinking_done: bool, turn_running: bool) -> list[Message]:
    messages: list[Message] = []
    key = f"t{turn_no}r{rnd.number}"
    if rnd.reasoning.strip():
        meta: dict[str, Any] = {"title": f"Reasoning · round {rnd.number}", "id": f"{key}-think",
                                "status": "done" if thinking_done else "pending"}
        messages.append({"role": "assistant", "content": show_tags(rnd.reasoning.strip()), "metadata": meta})
    if rnd.content.strip() and rnd.calls:  # text the model wrote before its calls
        messages.append({"role": "assistant", "content": show_tags(rnd.content.strip())})
    if rnd.calls:
        # No "pending" status here: Gradio would show the cards as a scrolling preview, and the
        # point of this panel is to be read while it fills in.
        meta = {"title": round_title(rnd), "id": f"{key}-calls", "log": usage_log(rnd, turn_running)}
        if rnd.tools_seconds:
            meta["duration"] = round(rnd.tools_seconds, 3)
        cards = "\n\n".join(render_call(c) for c in rnd.calls)
        messages.append({"role": "assistant", "content": f'<div class="st-calls">\n\n{cards}\n\n</div>',
                         "metadata": meta})
    return messages


_ENDINGS = {
    "error": "⚠ **The backend failed**: {message}\n\nThe conversation up to this point is kept: "
             "fix or change the backend, then send your next message.",
    "cancelled": "■ **Stopped**: {message}. The conversation so far is kept.",
    "round_limit": "⚠ **Round limit**: {message}.",
    "context_overflow": "⚠ **Context full**: {message}",
}


def render_turn(turn: TurnRecord, turn_no: int) -> list[Message]:
    messages: list[Message] = [{"role": "user", "content": turn.user}]
    for i, rnd in enumerate(turn.rounds):
        last = i == len(turn.rounds) - 1
        # Reasoning stays open (with a spinner) only while the model is still thinking.
        thinking_done = not (turn.running and last and rnd.generating and not rnd.content and not rnd.calls)
        messages += render_round(rnd, turn_no, thinking_done, turn.running)
        if last and not rnd.calls and rnd.content.strip():
            messages.append({"role": "assistant", "content": show_tags(rnd.content.strip())})
    if turn.running and turn.rounds:
        last = turn.rounds[-1]
        if last.generating and not (last.reasoning or last.content or last.calls):
            # On a CPU a long prompt takes a while before the first token: say what is happening.
            messages.append({"role": "assistant", "content": f"*round {last.number}: the model is reading the prompt…*"})
    for note in turn.notes:
        messages.append({"role": "assistant", "content": f"ℹ {note}"})
    if turn.finish_reason in _ENDINGS:
        messages.append({"role": "assistant",
                         "content": _ENDINGS[turn.finish_reason].format(message=turn.finish_message)})
    elif turn.running and not turn.rounds:
        messages.append({"role": "assistant", "content": "*waiting for the model…*"})
    return messages


def render_history(turns: Sequence[TurnRecord]) -> list[Message]:
    messages: list[Message] = []
    for n, turn in enumerate(turns, start=1):
        messages += render_turn(turn, n)
    return messages


# -- metrics -------------------------------------------------------------------------------------
def meter(used: int, limit: int, width: int = 24) -> str:
    share = min(1.0, used / limit) if limit else 0.0
    filled = round(share * width)
    return f"`{'█' * filled}{'░' * (width - filled)}` {used:,} / {limit:,} tokens ({share:.0%})"


def render_metrics(turns: Sequence[TurnRecord], context_limit: int) -> str:
    """Context meter (tokens used of the context, per round) and speed / prompt-reuse figures."""
    rounds = [(n, r) for n, t in enumerate(turns, start=1) for r in t.rounds]
    used = next((r.context_used for _, r in reversed(rounds) if r.context_used is not None), 0)
    lines = [f"**Context** {meter(used or 0, context_limit)}"]
    measured = [(n, r) for n, r in rounds if r.usage is not None]
    if not measured:
        return "\n\n".join(lines + ["*No rounds yet.*"])
    last = measured[-1][1].usage
    assert last is not None
    lines.append(f"**Last round**: {last.tokens_per_second:.1f} tok/s · prompt {last.prompt_tokens} tok, "
                 f"{last.prompt_tokens_evaluated} evaluated, {last.cached_tokens} reused "
                 f"({last.reuse_ratio:.0%}) · {last.prompt_seconds:.2f} s prompt, "
                 f"{last.generation_seconds:.2f} s generation")
    table = ["| round | context | prompt (reused) | generated | tok/s | re-evaluated because |",
             "|---|--:|--:|--:|--:|---|"]
    for n, r in measured[-12:]:  # the latest rounds; the export keeps all
        u = r.usage
        assert u is not None
        table.append(f"| {n}.{r.number} | {r.context_used or 0} | {u.prompt_tokens} ({u.reuse_ratio:.0%}) | "
                     f"{u.completion_tokens} | {u.tokens_per_second:.1f} | {u.reuse_note.replace('|', '/')} |")
    return "\n\n".join(lines + ["\n".join(table)])
