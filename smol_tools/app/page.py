"""The demo page's event handlers, apart from its layout (app.py) and its named API (api.py).

Each handler finds the session of the browser tab that fired it and returns what the widgets
show; app.py wires them to the widgets. They return `gr.update()` for widgets they leave alone.
"""

# No `from __future__ import annotations`: Gradio finds the gr.Request parameter by its type hint.
import json
from pathlib import Path
from typing import Any

import gradio as gr

from .render import render_history, render_metrics
from .service import LOCKED, DemoService
from .session import AppSession, SessionBusy
from .transcript import TurnRecord


class PageEvents:
    """The handlers of one page, bound to the service every session lives in."""

    def __init__(self, service: DemoService) -> None:
        self.service = service

    # -- pieces of the page, from a session --------------------------------------------------
    def session(self, request: gr.Request) -> AppSession:
        return self.service.session_for(request)  # counted against the caller's address (issue 16)

    def banner(self, s: AppSession) -> str:
        limit = f" · context {s.context_limit:,} tokens" if s.opened.ok else ""
        text = f"**Backend:** {s.opened.label}{limit}"
        if s.opened.notice:
            return f'<div class="st-banner">\n\n{text}\n\n⚠ {s.opened.notice}\n\n</div>'
        return f'<div class="st-banner-ok">\n\n{text}\n\n</div>'

    def file_check(self, s: AppSession) -> str:
        """`smol-tools doctor` on the GGUF loaded in process (empty for servers)."""
        return s.opened.details.get("file_check") or ""

    def backend_panel(self, s: AppSession) -> str:
        return "\n\n".join(filter(None, [LOCKED if self.service.config.lock_backend else "", self.file_check(s)]))

    def metrics(self, s: AppSession, turns: list[TurnRecord] | None = None) -> str:
        return render_metrics(s.turns if turns is None else turns, s.context_limit)

    def manual_prompt(self, s: AppSession) -> tuple[Any, str]:
        runner = s.runner
        request = runner.pending_manual if runner is not None else None
        if request is None:
            return gr.update(visible=False), ""
        args = json.dumps(request.arguments, ensure_ascii=False)
        return gr.update(visible=True), f"✍ **Manual mode**: type the result of `{request.name}` `{args}`"

    # -- handlers ----------------------------------------------------------------------------
    def on_load(self, request: gr.Request):
        s = self.session(request)
        return (self.banner(s), render_history(s.turns), self.metrics(s), s.chat.enabled_tools or [],
                s.chat.config.enable_thinking, s.greedy, s.chat.config.max_rounds, s.manual_mode,
                s.workspace_view(), self.backend_panel(s), *self.policy(s))

    @staticmethod
    def policy(s) -> tuple[str, bool, bool]:
        """The session's tool-call policy as the three widgets show it."""
        config = s.chat.config
        choice = config.tool_choice
        if isinstance(choice, dict):  # OpenAI's {"type": "function", "function": {"name": ...}}
            choice = (choice.get("function") or {}).get("name") or "auto"
        return str(choice), bool(config.parallel_tool_calls), bool(config.strict)

    def on_send(self, text: str, request: gr.Request):
        s = self.session(request)
        text = (text or "").strip()
        if not text:
            yield gr.update(), gr.update(), gr.update(), gr.update(), gr.update(), gr.update()
            return
        before = list(s.turns)
        try:
            runner = s.start_turn(text)
        except (SessionBusy, ValueError) as exc:  # busy, or a message over the server's limit
            gr.Warning(str(exc))
            yield gr.update(), gr.update(), gr.update(), gr.update(), gr.update(), gr.update()
            return
        for turn in runner.updates():
            history = before + [turn]
            box, prompt = self.manual_prompt(s)
            yield render_history(history), self.metrics(s, history), "", box, prompt, gr.update()
        yield gr.update(), gr.update(), "", gr.update(visible=False), "", s.workspace_view()

    def on_stop(self, request: gr.Request) -> None:
        if not self.session(request).stop():
            gr.Info("Nothing is running.")

    def on_manual(self, text: str, request: gr.Request):
        if not self.session(request).submit_manual(text):
            gr.Warning("No tool call is waiting for a result.")
        return ""

    def on_new(self, request: gr.Request):
        s = self.session(request)
        s.new_session()
        return [], self.metrics(s), s.workspace_view(), "", None

    def on_options(self, think: bool, greedy_on: bool, rounds: float, request: gr.Request) -> None:
        self.session(request).set_options(thinking=think, greedy=greedy_on, max_rounds=int(rounds))

    def on_policy(self, choice: str, parallel_on: bool, strict_on: bool, request: gr.Request) -> str:
        """Tool choice (auto / none / required / one tool's name), parallel calls, strict calls."""
        choice = (choice or "auto").strip()
        if choice not in ("auto", "none", "required"):  # a tool's name: OpenAI's named form
            choice = {"type": "function", "function": {"name": choice}}
        try:
            self.session(request).set_options(tool_choice=choice, parallel_tool_calls=bool(parallel_on),
                                              strict=bool(strict_on))
        except ValueError as exc:  # e.g. a name that is not one of this session's tools
            return f"✗ Not applied: {exc}"
        return ""

    def on_test(self, kind_v: str, model_v: str, quant_v: str, url_v: str) -> str:
        result = self.service.test_connection(kind_v, model_v, quant_v, url_v)
        return ("✓ " if result.ok else "✗ ") + result.message

    def on_connect(self, kind_v: str, model_v: str, quant_v: str, url_v: str, request: gr.Request,
                   progress=gr.Progress(track_tqdm=True)):
        progress(0, desc="Opening the backend (a Hub model downloads once)")
        result = self.service.connect(request.session_hash, kind_v, model_v, quant_v, url_v)
        s = self.session(request)
        return ("\n\n".join(filter(None, [("✓ " if result.ok else "✗ ") + result.message, self.file_check(s)])),
                self.banner(s), s.chat.enabled_tools or [], s.greedy, self.metrics(s))

    def on_tools(self, enabled: list[str], custom_text: str, manual_on: bool, request: gr.Request) -> str:
        problems = self.session(request).set_tools(enabled or [], custom_text or "", bool(manual_on))
        if problems:
            return "✗ **Not applied:**\n" + "\n".join(f"- {p}" for p in problems)
        s = self.session(request)
        names = [t["function"]["name"] for t in s.chat.tool_schemas()]
        return f"✓ The model now sees {len(names)} tool(s): {', '.join(names) or 'none'}."

    def on_export(self, request: gr.Request):
        # Reachable through the queue like every page event: it only ever exports the caller's
        # own session, into that session's private folder (removed with the session).
        s = self.session(request)
        text, path = s.export_file()
        return text, str(path), f"Exported {len(s.chat.messages)} messages."

    def do_import(self, text: str, request: gr.Request):
        s = self.session(request)
        try:
            s.import_json(text or "")
        except (ValueError, SessionBusy) as exc:
            return f"✗ {exc}", gr.update(), gr.update(), gr.update(), gr.update(), gr.update()
        customs = json.dumps(s.chat.custom_tools, ensure_ascii=False, indent=2) if s.chat.custom_tools else ""
        return (f"✓ Imported {len(s.chat.messages)} messages.", render_history(s.turns), self.metrics(s),
                s.chat.enabled_tools or [], customs, s.chat.config.enable_thinking)

    def on_import_file(self, file: Any, request: gr.Request):
        text = Path(file).read_text(encoding="utf-8", errors="replace") if file else ""
        return (text, *self.do_import(text, request))

    def on_upload(self, file: Any, request: gr.Request):
        s = self.session(request)
        if file:
            try:
                s.put_file(Path(file).name, Path(file).read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError) as exc:
                gr.Warning(f"Not added: {exc}")
        return s.workspace_view()

    def on_refresh(self, request: gr.Request):
        return self.session(request).workspace_view()

    def on_unload(self, request: gr.Request) -> None:
        self.service.sessions.drop(request.session_hash)
