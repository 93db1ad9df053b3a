"""The app's named API endpoints: a public contract for gradio_client, scripts and tests.

Each public method of `DemoApi` is one endpoint, named after the method, described by its
docstring (Gradio shows both in the API page). Names, parameters and results stay stable.

Every endpoint returns JSON text rather than a structure: gradio_client takes any returned
dict with a "path" key (read_file's arguments!) for a file to download, so structures travel
as strings.
"""

# No `from __future__ import annotations`: gr.api reads real type hints for the API schema.
import functools
import json
import logging
import uuid
from typing import Any, Callable

import gradio as gr

from .render import render_history
from .service import DemoService
from .session import AppSession, SessionBusy, SessionRefused

log = logging.getLogger(__name__)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


class DemoApi:
    """The endpoints, bound to one service. `register_api` publishes them."""

    # Endpoints that run the model share the page's concurrency group; the rest never wait.
    GENERATING = ("send", "set_backend")
    LIGHT = ("history", "chat_messages", "status", "test_connection", "set_tools", "set_options", "reset",
             "stop", "submit_manual", "export_session", "import_session", "workspace", "put_file")

    def __init__(self, service: DemoService) -> None:
        self.service = service

    def _session(self, request: gr.Request) -> AppSession:
        return self.service.session_for(request)  # counted against the caller's address

    def send(self, message: str, request: gr.Request) -> str:
        """Send a message; return that turn's transcript: rounds, calls with parsed
        arguments, schema checks, results, timings, the answer and how the turn ended."""
        s = self._session(request)
        if not message.strip():
            raise gr.Error("the message is empty")
        try:
            turn = s.run_turn(message)
        except SessionBusy as exc:
            raise gr.Error(str(exc)) from None
        return _json({"turn": len(s.turns), "backend": s.opened.label, **turn.to_dict()})

    def history(self, request: gr.Request) -> str:
        """Every turn of this session, as `send` returns them."""
        return _json([t.to_dict() for t in self._session(request).turns])

    def chat_messages(self, request: gr.Request) -> str:
        """The chat exactly as the UI shows it (Gradio messages with metadata)."""
        return _json(render_history(self._session(request).turns))

    def status(self, request: gr.Request) -> str:
        """Backend, tools, options and size of this session."""
        return _json(self._session(request).info())

    def set_backend(self, kind: str, model: str, url: str, quant: str, request: gr.Request) -> str:
        """Switch this session to a backend (kind: llama-cpp-python | openai | ollama); the
        conversation is kept."""
        result = self.service.connect(request.session_hash, kind, model, quant, url,
                                      client=self.service.client_of(request))
        return _json({"ok": result.ok, "message": result.message})

    def test_connection(self, kind: str, model: str, url: str, quant: str) -> str:
        """Check a backend without switching to it."""
        result = self.service.test_connection(kind, model, quant, url)
        return _json({"ok": result.ok, "message": result.message})

    def set_tools(self, enabled: list[str], custom_tools: str, manual: bool, request: gr.Request) -> str:
        """Choose the tools the model sees; custom tools are JSON schemas answered manually."""
        problems = self._session(request).set_tools(enabled, custom_tools, manual)
        return _json({"ok": not problems, "problems": problems, "status": self._session(request).info()})

    def set_options(self, thinking: bool, greedy: bool, max_rounds: int, request: gr.Request,
                    tool_choice: str = "auto", parallel_tool_calls: bool = True, strict: bool = False) -> str:
        """Thinking on/off, greedy decoding, the tool-round limit and the tool-call policy for this
        session: tool_choice ("auto", "none", "required" or OpenAI's function object as JSON),
        parallel_tool_calls and strict calls (docs/strict-calls.md)."""
        self._session(request).set_options(thinking=thinking, greedy=greedy, max_rounds=max_rounds,
                                           tool_choice=tool_choice, parallel_tool_calls=parallel_tool_calls,
                                           strict=strict)
        return self.status(request)

    def reset(self, request: gr.Request) -> str:
        """New session: clear the history, fresh workspace, outbox and calendar."""
        self._session(request).new_session()
        return self.status(request)

    def stop(self, request: gr.Request) -> bool:
        """Stop the running turn (True if one was running)."""
        return self._session(request).stop()

    def submit_manual(self, result: str, request: gr.Request) -> bool:
        """Answer the call that waits for a manual result (see `status`'s waiting_for)."""
        return self._session(request).submit_manual(result)

    def export_session(self, request: gr.Request) -> str:
        """The whole session as JSON: OpenAI messages + tools, re-importable."""
        return self._session(request).export_json()

    def import_session(self, data: str, request: gr.Request) -> str:
        """Load an export into this session."""
        try:
            self._session(request).import_json(data)
        except (ValueError, SessionBusy) as exc:
            raise gr.Error(str(exc)) from None
        return self.status(request)

    def workspace(self, request: gr.Request) -> str:
        """This session's workspace files, outbox and calendar."""
        return _json(self._session(request).workspace_view())

    def put_file(self, path: str, text: str, request: gr.Request) -> str:
        """Write a text file into this session's workspace."""
        try:
            self._session(request).put_file(path, text)
        except ValueError as exc:
            raise gr.Error(str(exc)) from None
        return self.workspace(request)


def user_facing(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Errors a visitor reads say what was wrong with the input and nothing about the server:
    our own refusals (ValueError, a busy or refused session) pass as written; anything else is
    logged here with its traceback and answered with a reference to that log line only."""
    @functools.wraps(fn)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (ValueError, SessionBusy, SessionRefused) as exc:
            raise gr.Error(str(exc)) from None
        except Exception:  # noqa: BLE001 - the message must not carry paths or exception text
            reference = uuid.uuid4().hex[:8]
            log.exception("endpoint %s failed (reference %s)", getattr(fn, "__name__", "?"), reference)
            raise gr.Error(f"the server could not handle this request (reference {reference})") from None
    return guarded


def register_api(service: DemoService, *, concurrency_id: str, concurrency_limit: int | None) -> DemoApi:
    """Publish every endpoint of `DemoApi` in the current gr.Blocks context. The model-running
    ones join `concurrency_id` (shared with the page's send button) under `concurrency_limit`."""
    api = DemoApi(service)
    for name in DemoApi.GENERATING:
        gr.api(user_facing(getattr(api, name)), api_name=name, concurrency_id=concurrency_id,
               concurrency_limit=concurrency_limit)
    for name in DemoApi.LIGHT:
        gr.api(user_facing(getattr(api, name)), api_name=name, concurrency_limit=None)
    return api
