"""smol-tools demo: watch every tool call as parsed JSON, on any backend.

UI only: widgets and their events; the named API endpoints are in smol_tools/app/api.py.
Everything they do is in `smol_tools.app` (sessions, backends, rendering of agent events).
Run `python app.py`; the environment variables are listed in smol_tools/app/config.py.
"""

# No `from __future__ import annotations`: gr.api reads real type hints for the API schema.
import json
import logging
import os
from pathlib import Path
from typing import Any

import gradio as gr

from smol_tools.app.api import register_api
from smol_tools.app.mcp_api import register_mcp_api, restrict_mcp_tools
from smol_tools.app.mcp_servers import build_panel as build_mcp_panel
from smol_tools.app.backend_choice import KIND_LABELS
from smol_tools.app.config import QUANTS, TINY, AppConfig
from smol_tools.app.custom_tools import EXAMPLE as CUSTOM_TOOLS_EXAMPLE
from smol_tools.app.examples import example_labels, example_rows
from smol_tools.app.render import CSS, render_history, render_metrics
from smol_tools.app.service import LOCKED, DemoService
from smol_tools.app.session import AppSession, SessionBusy
from smol_tools.app.tools_panel import danger_warning, tool_choices
from smol_tools.app.transcript import TurnRecord
from smol_tools.tools import default_registry

log = logging.getLogger("smol_tools.app")
GENERATE = "generate"  # one concurrency group for everything that runs the model


def build_demo(service: DemoService) -> gr.Blocks:
    config = service.config

    def session(request: gr.Request) -> AppSession:
        return service.session_for(request)  # counted against the caller's address (issue 16)

    # -- pieces of the page, from a session --------------------------------------------------
    def banner(s: AppSession) -> str:
        limit = f" · context {s.context_limit:,} tokens" if s.opened.ok else ""
        text = f"**Backend:** {s.opened.label}{limit}"
        if s.opened.notice:
            return f'<div class="st-banner">\n\n{text}\n\n⚠ {s.opened.notice}\n\n</div>'
        return f'<div class="st-banner-ok">\n\n{text}\n\n</div>'

    def file_check(s: AppSession) -> str:
        """`smol-tools doctor` on the GGUF loaded in process (empty for servers)."""
        return s.opened.details.get("file_check") or ""

    def backend_panel(s: AppSession) -> str:
        return "\n\n".join(filter(None, [LOCKED if config.lock_backend else "", file_check(s)]))

    def metrics(s: AppSession, turns: list[TurnRecord] | None = None) -> str:
        return render_metrics(s.turns if turns is None else turns, s.context_limit)

    def manual_prompt(s: AppSession) -> tuple[Any, str]:
        runner = s.runner
        request = runner.pending_manual if runner is not None else None
        if request is None:
            return gr.update(visible=False), ""
        args = json.dumps(request.arguments, ensure_ascii=False)
        return gr.update(visible=True), f"✍ **Manual mode**: type the result of `{request.name}` `{args}`"

    # -- page ------------------------------------------------------------------------------
    # delete_cache: Gradio's own copies of served files (the export download) go after an hour.
    with gr.Blocks(title="smol-tools: tool calls you can see", delete_cache=(3600, 3600)) as demo:
        gr.Markdown("# smol-tools · tool calls you can see\n"
                    "Every call the model makes, as it makes it: the raw `<tool_call>` text, the "
                    "parsed JSON, the schema check, the result and the timing, round by round.")
        banner_md = gr.Markdown(elem_id="st-banner")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(label="Conversation", height=640, elem_id="st-chat",
                                     buttons=["copy", "copy_all"], feedback_options=None,
                                     group_consecutive_messages=False, layout="panel",
                                     placeholder="Ask something that needs a tool, or pick an example below.")
                with gr.Row():
                    msg = gr.Textbox(show_label=False, placeholder="Message (Enter to send)",
                                     scale=8, elem_id="st-msg", autofocus=True)
                    send_btn = gr.Button("Send", variant="primary", scale=1, elem_id="st-send")
                    stop_btn = gr.Button("Stop", variant="stop", scale=1, elem_id="st-stop")
                with gr.Group(visible=False) as manual_box:
                    manual_md = gr.Markdown()
                    with gr.Row():
                        manual_text = gr.Textbox(label="Manual tool result", scale=8,
                                                 placeholder='e.g. {"temperature_c": 21}')
                        manual_btn = gr.Button("Submit result", scale=1)
                gr.Examples(examples=example_rows(service.default.tiny), inputs=[msg],
                            example_labels=example_labels(service.default.tiny),
                            label="Examples (the card's scenarios)")
            with gr.Column(scale=2):
                metrics_md = gr.Markdown(elem_id="st-metrics")
                with gr.Row():
                    thinking = gr.Checkbox(label="Thinking (reasoning before answering)", value=True)
                    greedy = gr.Checkbox(label="Greedy decoding (reproducible)")
                max_rounds = gr.Slider(1, config.max_rounds, value=min(20, config.max_rounds), step=1,
                                       label="Max tool rounds per message")  # the operator's ceiling
                new_btn = gr.Button("New session (clear chat, fresh workspace)")
                with gr.Accordion("Backend", open=False):
                    kind = gr.Radio([(label, k) for k, label in KIND_LABELS.items()], label="Runtime",
                                    value=config.backend)
                    model = gr.Textbox(label="Model", value=config.model or config.model_spec().partition(":")[0],
                                       info="In process: 'default' (the model's known Hub homes, in order), "
                                            f"a Hub repo (owner/name), a local .gguf path, or '{TINY}'. "
                                            "Servers: the model name they serve.")
                    quant = gr.Dropdown(list(QUANTS), value=config.quant if config.quant in QUANTS else QUANTS[0],
                                        label="Quant (Hub repos)", allow_custom_value=True)
                    url = gr.Textbox(label="Server URL", value=config.url,
                                     placeholder="http://127.0.0.1:8080 (llama-server) · http://127.0.0.1:11434 (Ollama)")
                    with gr.Row():
                        test_btn = gr.Button("Test connection", interactive=not config.lock_backend)
                        connect_btn = gr.Button("Connect", variant="primary",
                                                interactive=not config.lock_backend)
                    backend_md = gr.Markdown(LOCKED if config.lock_backend else "")
                with gr.Accordion("Tools", open=False):
                    registry = default_registry()
                    tools = gr.CheckboxGroup(tool_choices(registry), label="Tools the model sees")
                    gr.Markdown(danger_warning(config.allow_code, config.allow_network))
                    custom = gr.Code(label="Custom tools (JSON schemas, answered by you)", language="json",
                                     interactive=True, value="", lines=6, max_lines=20)
                    example_btn = gr.Button("Insert an example custom tool", size="sm")
                    manual = gr.Checkbox(label="Manual mode: I type each tool's result instead of running it")
                    apply_btn = gr.Button("Apply tools")
                    tools_md = gr.Markdown(elem_id="st-tools-status")
                    build_mcp_panel(service, tools)  # MCP servers' tools join the checkboxes
                with gr.Accordion("Workspace, outbox, calendar", open=False):
                    workspace_json = gr.JSON(label="This session only")
                    with gr.Row():
                        refresh_btn = gr.Button("Refresh")
                        upload_btn = gr.UploadButton("Add a text file", file_count="single")
                with gr.Accordion("Export / import (bug reports)", open=False):
                    with gr.Row():
                        export_btn = gr.Button("Export session")
                        download = gr.DownloadButton("Download JSON", value=None)
                    session_json = gr.Code(label="Session JSON (OpenAI messages + tools)", language="json",
                                           interactive=True, lines=10, max_lines=24)
                    with gr.Row():
                        import_btn = gr.Button("Import the JSON above")
                        import_upload = gr.UploadButton("Import a file", file_count="single")
                    io_md = gr.Markdown()

        # -- handlers ----------------------------------------------------------------------
        def on_load(request: gr.Request):
            s = session(request)
            return (banner(s), render_history(s.turns), metrics(s), s.chat.enabled_tools or [],
                    s.chat.config.enable_thinking, s.greedy, s.chat.config.max_rounds, s.manual_mode,
                    s.workspace_view(), backend_panel(s))

        def on_send(text: str, request: gr.Request):
            s = session(request)
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
                box, prompt = manual_prompt(s)
                yield render_history(history), metrics(s, history), "", box, prompt, gr.update()
            yield gr.update(), gr.update(), "", gr.update(visible=False), "", s.workspace_view()

        def on_stop(request: gr.Request) -> None:
            if not session(request).stop():
                gr.Info("Nothing is running.")

        def on_manual(text: str, request: gr.Request):
            if not session(request).submit_manual(text):
                gr.Warning("No tool call is waiting for a result.")
            return ""

        def on_new(request: gr.Request):
            s = session(request)
            s.new_session()
            return [], metrics(s), s.workspace_view(), "", None

        def on_options(think: bool, greedy_on: bool, rounds: float, request: gr.Request) -> None:
            session(request).set_options(thinking=think, greedy=greedy_on, max_rounds=int(rounds))

        def on_test(kind_v: str, model_v: str, quant_v: str, url_v: str) -> str:
            result = service.test_connection(kind_v, model_v, quant_v, url_v)
            return ("✓ " if result.ok else "✗ ") + result.message

        def on_connect(kind_v: str, model_v: str, quant_v: str, url_v: str, request: gr.Request,
                       progress=gr.Progress(track_tqdm=True)):
            progress(0, desc="Opening the backend (a Hub model downloads once)")
            result = service.connect(request.session_hash, kind_v, model_v, quant_v, url_v)
            s = session(request)
            return ("\n\n".join(filter(None, [("✓ " if result.ok else "✗ ") + result.message, file_check(s)])),
                    banner(s), s.chat.enabled_tools or [], s.greedy, metrics(s))

        def on_tools(enabled: list[str], custom_text: str, manual_on: bool, request: gr.Request) -> str:
            problems = session(request).set_tools(enabled or [], custom_text or "", bool(manual_on))
            if problems:
                return "✗ **Not applied:**\n" + "\n".join(f"- {p}" for p in problems)
            s = session(request)
            names = [t["function"]["name"] for t in s.chat.tool_schemas()]
            return f"✓ The model now sees {len(names)} tool(s): {', '.join(names) or 'none'}."

        def on_export(request: gr.Request):
            # Reachable through the queue like every page event: it only ever exports the caller's
            # own session, into that session's private folder (removed with the session).
            s = session(request)
            text, path = s.export_file()
            return text, str(path), f"Exported {len(s.chat.messages)} messages."

        def do_import(text: str, request: gr.Request):
            s = session(request)
            try:
                s.import_json(text or "")
            except (ValueError, SessionBusy) as exc:
                return f"✗ {exc}", gr.update(), gr.update(), gr.update(), gr.update(), gr.update()
            customs = json.dumps(s.chat.custom_tools, ensure_ascii=False, indent=2) if s.chat.custom_tools else ""
            return (f"✓ Imported {len(s.chat.messages)} messages.", render_history(s.turns), metrics(s),
                    s.chat.enabled_tools or [], customs, s.chat.config.enable_thinking)

        def on_import_file(file: Any, request: gr.Request):
            text = Path(file).read_text(encoding="utf-8", errors="replace") if file else ""
            return (text, *do_import(text, request))

        def on_upload(file: Any, request: gr.Request):
            s = session(request)
            if file:
                try:
                    s.put_file(Path(file).name, Path(file).read_text(encoding="utf-8"))
                except (ValueError, UnicodeDecodeError) as exc:
                    gr.Warning(f"Not added: {exc}")
            return s.workspace_view()

        def on_refresh(request: gr.Request):
            return session(request).workspace_view()

        def on_unload(request: gr.Request) -> None:
            service.sessions.drop(request.session_hash)

        private: dict[str, Any] = {"api_visibility": "private"}
        light: dict[str, Any] = {**private, "concurrency_limit": None}  # never wait behind the model
        demo.load(on_load, None, [banner_md, chatbot, metrics_md, tools, thinking, greedy, max_rounds, manual,
                                  workspace_json, backend_md], **light)
        send_outputs = [chatbot, metrics_md, msg, manual_box, manual_md, workspace_json]
        for trigger in (msg.submit, send_btn.click):
            trigger(on_send, [msg], send_outputs, concurrency_id=GENERATE,
                    concurrency_limit=config.concurrency, show_progress="hidden", **private)
        stop_btn.click(on_stop, None, None, **light)
        manual_btn.click(on_manual, [manual_text], [manual_text], **light)
        manual_text.submit(on_manual, [manual_text], [manual_text], **light)
        new_btn.click(on_new, None, [chatbot, metrics_md, workspace_json, session_json, download], **light)
        for option in (thinking, greedy, max_rounds):
            option.change(on_options, [thinking, greedy, max_rounds], None, **light)
        test_btn.click(on_test, [kind, model, quant, url], [backend_md], **light)
        connect_btn.click(on_connect, [kind, model, quant, url], [backend_md, banner_md, tools, greedy, metrics_md],
                          concurrency_id=GENERATE, concurrency_limit=config.concurrency, **private)
        apply_btn.click(on_tools, [tools, custom, manual], [tools_md], **light)
        example_btn.click(lambda: CUSTOM_TOOLS_EXAMPLE, None, [custom], **light)
        refresh_btn.click(on_refresh, None, [workspace_json], **light)
        upload_btn.upload(on_upload, [upload_btn], [workspace_json], **light)
        export_btn.click(on_export, None, [session_json, download, io_md], **light)
        import_outputs = [io_md, chatbot, metrics_md, tools, custom, thinking]
        import_btn.click(do_import, [session_json], import_outputs, **light)
        import_upload.upload(on_import_file, [import_upload], [session_json, *import_outputs], **light)
        demo.unload(on_unload)

        register_api(service, concurrency_id=GENERATE, concurrency_limit=config.concurrency)
        register_mcp_api(service, concurrency_id=GENERATE, concurrency_limit=config.concurrency)
    return demo


def main() -> None:
    logging.basicConfig(level=os.environ.get("SMOL_TOOLS_LOG", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = AppConfig.from_env()
    service = DemoService.from_config(config)
    demo = build_demo(service)
    demo.queue(default_concurrency_limit=None, max_size=256)
    log.info("serving on http://%s:%d (%s)", config.host, config.port, service.default.label)
    # max_file_size: an upload (a workspace file, an export) is refused before it reaches disk
    # when it exceeds what any handler would accept (issue 16: every write path has a quota).
    demo.launch(server_name=config.host, server_port=config.port, css=CSS, show_error=False,
                mcp_server=config.mcp_server, prevent_thread_lock=True, max_file_size=config.max_import_bytes)
    if config.mcp_server:  # only the deliberate MCP tools, not every endpoint (mcp_api.py)
        log.info("MCP tools at /gradio_api/mcp/: %s", ", ".join(restrict_mcp_tools(demo)))
    demo.block_thread()


if __name__ == "__main__":
    main()
