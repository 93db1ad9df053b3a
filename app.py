"""smol-tools demo: watch every tool call as parsed JSON, on any backend.

The layout and its wiring only: the event handlers are in smol_tools/app/page.py, the named API
endpoints in smol_tools/app/api.py, and everything they do in `smol_tools.app` (sessions,
backends, rendering of agent events).
Run `python app.py`; the environment variables are listed in smol_tools/app/config.py.
"""

# No `from __future__ import annotations`: gr.api reads real type hints for the API schema.
import logging
import os
import signal
from typing import Any

import gradio as gr

from smol_tools.app.api import register_api
from smol_tools.app.mcp_api import register_mcp_api, restrict_mcp_tools
from smol_tools.app.mcp_servers import build_panel as build_mcp_panel
from smol_tools.app.page import PageEvents
from smol_tools.app.backend_choice import KIND_LABELS
from smol_tools.app.config import QUANTS, TINY, AppConfig
from smol_tools.app.custom_tools import EXAMPLE as CUSTOM_TOOLS_EXAMPLE
from smol_tools.app.examples import example_labels, example_rows
from smol_tools.app.render import CSS
from smol_tools.app.service import LOCKED, DemoService
from smol_tools.app.tools_panel import danger_warning, tool_choices
from smol_tools.tools import default_registry

log = logging.getLogger("smol_tools.app")
GENERATE = "generate"  # one concurrency group for everything that runs the model


def build_demo(service: DemoService) -> gr.Blocks:
    config = service.config
    page = PageEvents(service)  # the handlers the widgets below are wired to

    # -- layout ----------------------------------------------------------------------------
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
                with gr.Row():  # the tool-call policy (docs/strict-calls.md); also /set_options
                    tool_choice = gr.Dropdown(["auto", "none", "required"], value="auto", allow_custom_value=True,
                                              label="Tool choice", info="or the name of one tool to force",
                                              elem_id="st-tool-choice")
                    parallel = gr.Checkbox(label="Parallel calls", value=True)
                    strict = gr.Checkbox(label="Strict calls (grammar)")
                policy_md = gr.Markdown(elem_id="st-policy")
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

        # -- wiring: page events stay off the API (private); the API is api.py's ---------------
        private: dict[str, Any] = {"api_visibility": "private"}
        light: dict[str, Any] = {**private, "concurrency_limit": None}  # never wait behind the model
        demo.load(page.on_load, None, [banner_md, chatbot, metrics_md, tools, thinking, greedy, max_rounds,
                                       manual, workspace_json, backend_md, tool_choice, parallel, strict],
                **light)
        send_outputs = [chatbot, metrics_md, msg, manual_box, manual_md, workspace_json]
        for trigger in (msg.submit, send_btn.click):
            trigger(page.on_send, [msg], send_outputs, concurrency_id=GENERATE,
                    concurrency_limit=config.concurrency, show_progress="hidden", **private)
        stop_btn.click(page.on_stop, None, None, **light)
        manual_btn.click(page.on_manual, [manual_text], [manual_text], **light)
        manual_text.submit(page.on_manual, [manual_text], [manual_text], **light)
        new_btn.click(page.on_new, None, [chatbot, metrics_md, workspace_json, session_json, download], **light)
        for option in (thinking, greedy, max_rounds):
            option.change(page.on_options, [thinking, greedy, max_rounds], None, **light)
        for option in (tool_choice, parallel, strict):
            option.change(page.on_policy, [tool_choice, parallel, strict], [policy_md], **light)
        test_btn.click(page.on_test, [kind, model, quant, url], [backend_md], **light)
        connect_btn.click(page.on_connect, [kind, model, quant, url],
                          [backend_md, banner_md, tools, greedy, metrics_md],
                          concurrency_id=GENERATE, concurrency_limit=config.concurrency, **private)
        apply_btn.click(page.on_tools, [tools, custom, manual], [tools_md], **light)
        example_btn.click(lambda: CUSTOM_TOOLS_EXAMPLE, None, [custom], **light)
        refresh_btn.click(page.on_refresh, None, [workspace_json], **light)
        upload_btn.upload(page.on_upload, [upload_btn], [workspace_json], **light)
        export_btn.click(page.on_export, None, [session_json, download, io_md], **light)
        import_outputs = [io_md, chatbot, metrics_md, tools, custom, thinking]
        import_btn.click(page.do_import, [session_json], import_outputs, **light)
        import_upload.upload(page.on_import_file, [import_upload], [session_json, *import_outputs], **light)
        demo.unload(page.on_unload)

        register_api(service, concurrency_id=GENERATE, concurrency_limit=config.concurrency)
        register_mcp_api(service, concurrency_id=GENERATE, concurrency_limit=config.concurrency)
    return demo


def main() -> None:
    logging.basicConfig(level=os.environ.get("SMOL_TOOLS_LOG", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # `kill`, systemd, docker stop and Spaces stop the app with SIGTERM, which would end it without
    # running atexit: a managed llama-server would be left behind. Handled like Ctrl-C instead,
    # so Gradio closes and every backend the app started is stopped with it.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
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
