"""A minimal terminal chat over an in-process GGUF: prompt from our template, output through
our streaming parser, tool calls shown as parsed JSON (they are not executed here)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .chat_format import load_params, render_prompt
from .toolcalls import ContentDelta, ReasoningDelta, StreamingParser, ToolCallCompleted, ToolCallFailed


def _resolve_model(model: str) -> tuple[Path, list[dict[str, Any]] | None]:
    if model == "tiny":
        # The test suite's tiny model only knows its scripted tools; offer those.
        from tests.fixtures.scripted import load_scripted
        from tests.fixtures.tiny_gguf import ensure_tiny_gguf

        return ensure_tiny_gguf("Q8_0"), load_scripted()["tools"]
    path = Path(model)
    if not path.is_file():
        raise SystemExit(f"error: no GGUF file at {path}")
    return path, None


def run_terminal_chat(model: str, think: bool = True, max_tokens: int | None = None) -> int:
    from llama_cpp import Llama

    params = load_params()
    path, tools = _resolve_model(model)
    llm = Llama(model_path=str(path), n_ctx=params.context_length if model != "tiny" else 4096,
                verbose=False)
    messages: list[dict[str, Any]] = []
    print(f"smol-tools chat on {path.name} (empty line or Ctrl-D quits)")
    while True:
        try:
            user = input("you> ").strip()
        except EOFError:
            return 0
        if not user:
            return 0
        messages.append({"role": "user", "content": user})
        prompt = render_prompt(messages, tools, enable_thinking=think)
        parser = StreamingParser(thinking_open=True)
        stream = llm.create_completion(prompt, max_tokens=max_tokens or params.max_tokens,
                                       stop=list(params.stop), stream=True, **_sampling(params))
        for chunk in stream:
            _show(parser.feed(chunk["choices"][0]["text"]))
        _show(parser.finish())
        result = parser.result
        print()
        messages.append({
            "role": "assistant", "content": result.content, "reasoning_content": result.reasoning or "",
            "tool_calls": [{"type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                           for c in result.tool_calls],
        })


def _sampling(params) -> dict[str, Any]:
    s = params.sampling
    return {"temperature": s["temperature"], "top_p": s["top_p"], "top_k": s["top_k"],
            "min_p": s["min_p"], "repeat_penalty": s["repeat_penalty"]}


def _show(events) -> None:
    for event in events:
        if isinstance(event, ReasoningDelta):
            sys.stdout.write(f"\x1b[2m{event.text}\x1b[0m")
        elif isinstance(event, ContentDelta):
            sys.stdout.write(event.text)
        elif isinstance(event, ToolCallCompleted):
            call = {"name": event.call.name, "arguments": event.call.arguments}
            sys.stdout.write(f"\n[tool call] {json.dumps(call, ensure_ascii=False)}\n")
        elif isinstance(event, ToolCallFailed):
            sys.stdout.write(f"\n[malformed tool call] {event.error.message}\n")
        sys.stdout.flush()
