"""A terminal agent session: any backend, the real tools, every call shown as parsed JSON.

It behaves like the REPLs people know (`ollama run`, `llama-cli`): line editing and history
(the standard library's readline), Ctrl-C stops the reply being generated and returns to the
prompt, Ctrl-C or Ctrl-D at the prompt leaves, empty lines are ignored, and slash commands
change the session. The session itself is the app's (`cli_chat.open_session`)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

from .cli_chat import TurnStream, load_session, parse_set, save_session
from .cli_errors import CliError
from .events import (AgentFinished, ContentDelta, ContextStatus, ReasoningDelta, RoundStarted, ToolCallChecked,
                     ToolCallCompleted, ToolCallFailed, ToolCallStarted, ToolResultReady, TurnComplete, UnknownEvent)
from .tools.scripted import is_scripted

DIM, RESET = "\x1b[2m", "\x1b[0m"
PROMPT = ">>> "
HELP = """\
/help              this list
/bye               leave (Ctrl-D at the prompt does too)
/clear             forget the conversation and start a fresh workspace
/tools             the tools the model can call
/think on|off      reasoning before answering
/set NAME VALUE    sampling (temperature, top_p, top_k, min_p, repeat_penalty, presence_penalty,
                   max_tokens, seed) or max_rounds; /set alone shows the values
/save FILE         write the session (the app's export format: OpenAI messages + tools)
/load FILE         continue a saved session (from here or from the app's Export)
Ctrl-C stops a reply being generated; at the prompt it leaves."""


def history_file() -> Path:
    """Where the prompt history lives (SMOL_TOOLS_HISTORY overrides; empty turns it off)."""
    explicit = os.environ.get("SMOL_TOOLS_HISTORY")
    if explicit is not None:
        return Path(explicit).expanduser()
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "smol-tools" / "chat_history"


def _setup_readline() -> Callable[[], None]:
    """Line editing and a history that survives the session; returns the function that saves it."""
    try:
        import readline  # optional: readline is missing on some platforms (Windows)
    except ImportError:  # e.g. Windows without pyreadline: plain input() still works
        return lambda: None
    _complete_commands(readline)
    path = history_file()
    if not str(path) or os.environ.get("SMOL_TOOLS_HISTORY") == "":
        return lambda: None
    try:
        readline.read_history_file(path)
    except (FileNotFoundError, OSError):
        pass
    readline.set_history_length(1000)

    def save() -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            readline.write_history_file(path)
        except OSError:  # a read-only home must not turn leaving into an error
            pass
    return save


COMMANDS = ("/help", "/bye", "/clear", "/tools", "/think on", "/think off", "/set", "/save", "/load")


def _complete_commands(readline: Any) -> None:
    """Tab completes the slash commands (a line that starts with "/")."""
    def complete(text: str, state: int) -> str | None:
        line = readline.get_line_buffer()
        if not line.startswith("/"):
            return None
        matches = [c[len(line) - len(text):] for c in COMMANDS if c.startswith(line)]
        return matches[state] if state < len(matches) else None

    readline.set_completer_delims(" ")
    readline.set_completer(complete)
    readline.parse_and_bind("tab: complete")


def run_repl(session: Any) -> int:
    tools = ", ".join(t["function"]["name"] for t in session.chat.tool_schemas())
    print(f"smol-tools chat — {session.opened.label}")
    if session.opened.notice:
        print(f"{DIM}{session.opened.notice}{RESET}")
    print(f"tools: {tools or 'none'}\n/help for commands, /bye or Ctrl-D to leave")
    save_history = _setup_readline()
    try:
        while True:
            try:
                line = input(PROMPT)
            except EOFError:
                print()
                return 0
            except KeyboardInterrupt:
                print()
                return 0
            text = line.strip()
            if not text:
                continue
            if text.startswith("/"):
                if _command(session, text) == "bye":
                    return 0
                continue
            try:
                stream = TurnStream(session, text)
            except CliError as exc:  # over the message limit: nothing was sent
                print(f"error: {exc}")
                continue
            try:
                for event in stream.events():
                    _show(event)
            except KeyboardInterrupt:
                stream.stop()
                sys.stdout.write(f"\n{DIM}[stopping…]{RESET}")
                sys.stdout.flush()
                for event in stream.events():  # the worker finishes the turn (cancelled)
                    pass
            print()
    finally:
        save_history()


def _command(session: Any, text: str) -> str | None:
    word, _, rest = text.partition(" ")
    rest = rest.strip()
    if word in ("/bye", "/exit", "/quit"):
        return "bye"
    if word in ("/help", "/?"):
        print(HELP)
    elif word == "/clear":
        session.new_session()
        print("cleared: a new conversation and a fresh workspace")
    elif word == "/tools":
        for tool in session.chat.tool_schemas():
            fn = tool["function"]
            print(f"  {fn['name']}: {fn.get('description', '').splitlines()[0] if fn.get('description') else ''}")
    elif word == "/think":
        if rest not in ("on", "off"):
            print("usage: /think on|off")
        else:
            session.set_options(thinking=rest == "on")
            print(f"thinking {rest}")
    elif word == "/set":
        if not rest:
            sampling = session.chat.config.sampling
            values = sampling.__dict__ if sampling is not None else "the runtime's defaults (templates/params.json)"
            print(f"sampling: {values}\nmax_rounds: {session.chat.config.max_rounds}\n"
                  f"thinking: {'on' if session.chat.config.enable_thinking else 'off'}")
        else:
            try:
                print(parse_set(session, rest.split()))
            except ValueError as exc:
                print(f"error: {exc}")
    elif word == "/save":
        if not rest:
            print("usage: /save FILE")
        else:
            try:
                print(f"saved to {save_session(session, rest)}")
            except OSError as exc:
                print(f"error: cannot write {rest}: {exc.strerror or exc}")
    elif word == "/load":
        if not rest:
            print("usage: /load FILE")
        else:
            try:
                turns = load_session(session, rest)
                print(f"loaded {rest}: {turns} turn(s); the conversation continues from there")
            except (ValueError, RuntimeError) as exc:
                print(f"error: {exc}")
    else:
        print(f"unknown command {word}; /help lists them")
    return None


# Events the terminal shows nothing for (or only sometimes, above): streaming call progress is
# printed once checked; a first round, a quiet context status and a plain answer need no line.
_NOT_PRINTED = (RoundStarted, ContextStatus, AgentFinished, ToolCallStarted, ToolCallCompleted, ToolCallFailed)


def _show(event: Any) -> None:
    if isinstance(event, RoundStarted) and event.round > 1:
        sys.stdout.write(f"\n{DIM}— round {event.round} —{RESET}\n")
    elif isinstance(event, ReasoningDelta):
        sys.stdout.write(f"{DIM}{event.text}{RESET}")
    elif isinstance(event, ContentDelta):
        sys.stdout.write(event.text)
    elif isinstance(event, ToolCallChecked):
        verdict = "schema ok" if event.ok else "; ".join(event.problems)
        sys.stdout.write(f"\n[call {event.index + 1}] {json.dumps({'name': event.name, 'arguments': event.arguments}, ensure_ascii=False)} ({verdict})")
    elif isinstance(event, ToolResultReady):
        label = "error" if event.outcome.is_error else "result"
        label = f"scripted {label}" if is_scripted(event.outcome.data) else label  # tools/scripted.py
        sys.stdout.write(f"\n[{label} {event.index + 1}, {event.seconds:.2f}s] {event.outcome.content[:500]}")
    elif isinstance(event, ContextStatus) and event.note:
        sys.stdout.write(f"\n{DIM}[{event.note}]{RESET}")
    elif isinstance(event, TurnComplete):
        for note in event.result.notes:  # e.g. the reasoning was never closed
            sys.stdout.write(f"\n{DIM}[{note}]{RESET}")
    elif isinstance(event, AgentFinished) and event.reason != "answer":
        sys.stdout.write(f"\n[{event.reason}] {event.message}")
    elif not isinstance(event, _NOT_PRINTED):
        raise UnknownEvent("the terminal chat", event)
    sys.stdout.flush()
