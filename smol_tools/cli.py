"""`smol-tools` command line: thin subcommands over the package."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from .backends.factory import BACKEND_KINDS
from .model_source import DEFAULT, DEFAULT_HOMES

ENGINES = ("jinja", "llama", "ollama", "llama-cpp-python")


def _read_json(path: str) -> Any:
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    return json.loads(text)


def _load_conversation(messages_path: str, tools_path: str | None) -> tuple[list, list | None]:
    data = _read_json(messages_path)
    tools = None
    if isinstance(data, dict):  # also accept {"messages": [...], "tools": [...]}
        tools = data.get("tools")
        data = data.get("messages")
    if not isinstance(data, list):
        raise SystemExit("error: --messages must hold a JSON list of messages "
                         "(or an object with a 'messages' list)")
    if tools_path is not None:
        tools = _read_json(tools_path)
    if tools is not None and not isinstance(tools, list):
        raise SystemExit("error: --tools must hold a JSON list of tools")
    return data, tools


def cmd_render(args: argparse.Namespace) -> int:
    from .chat_format import TemplateRenderError, render_prompt

    messages, tools = _load_conversation(args.messages, args.tools)
    options = {"add_generation_prompt": not args.no_generation_prompt,
               "enable_thinking": not args.no_think}
    try:
        if args.engine == "jinja":
            prompt = render_prompt(messages, tools, **options)
        elif args.engine == "ollama":
            from .ollama_render import render_with_ollama_template

            prompt = render_with_ollama_template(messages, tools, **options)
        elif args.engine == "llama-cpp-python":
            prompt = _render_with_llama_cpp_python(args.gguf, messages, tools, **options)
        else:
            prompt = _render_with_llama_server(args.gguf, messages, tools, **options)
    except (TemplateRenderError, RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(prompt)
    sys.stdout.flush()
    return 0


def _render_with_llama_server(gguf: str | None, messages: list, tools: list | None, *,
                              add_generation_prompt: bool, enable_thinking: bool) -> str:
    """llama.cpp's own Jinja engine: a llama-server renders with the template inside `gguf`."""
    from .llama_server import LlamaServer

    if not gguf:
        raise ValueError("--engine llama needs --gguf PATH (the template is read from the GGUF)")
    payload = {"messages": messages, "add_generation_prompt": add_generation_prompt,
               "chat_template_kwargs": {"enable_thinking": enable_thinking}}
    if tools:
        payload["tools"] = tools
    # --no-prefill-assistant: a trailing assistant turn is finished, as in transformers.
    with LlamaServer(Path(gguf), ctx_size=2048, extra_args=["--no-prefill-assistant"]) as server:
        return server.post("/apply-template", payload)["prompt"]


def _render_with_llama_cpp_python(gguf: str | None, messages: list, tools: list | None, *,
                                  add_generation_prompt: bool, enable_thinking: bool) -> str:
    """llama-cpp-python's own chat formatter with the template embedded in `gguf`."""
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    if not gguf:
        raise ValueError("--engine llama-cpp-python needs --gguf PATH (the template is read from the GGUF)")
    llm = Llama(model_path=gguf, vocab_only=True, verbose=False)
    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        raise ValueError(f"{gguf} carries no tokenizer.chat_template")
    formatter = Jinja2ChatFormatter(template, eos_token="<|im_end|>", bos_token="",
                                    add_generation_prompt=add_generation_prompt)
    return formatter(messages=messages, tools=tools, enable_thinking=enable_thinking).prompt


def cmd_parse(args: argparse.Namespace) -> int:
    from .toolcalls import StreamingParser, parse_output

    text = sys.stdin.read()
    if args.stream:
        if args.chunk < 1:
            raise SystemExit("error: --chunk must be at least 1")
        parser = StreamingParser()
        for start in range(0, len(text), args.chunk):
            parser.feed(text[start: start + args.chunk])
        parser.finish()
        result = parser.result
    else:
        result = parse_output(text)
    json.dump(result.to_dict(), sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from .terminal_chat import run_terminal_chat

    return run_terminal_chat(args.backend, args.model, args.url, think=not args.no_think,
                             allow_code=args.allow_code)


def _gguf_input(spec: str) -> tuple[Path | None, str | None]:
    """A local GGUF path or owner/repo:QUANT -> (file, None), or (None, the error to print)."""
    from .gguf_header import GGUFHeaderError
    from .model_source import ModelSourceError, resolve_gguf

    try:
        return resolve_gguf(spec), None
    except (ModelSourceError, GGUFHeaderError) as exc:
        return None, str(exc)


def cmd_doctor(args: argparse.Namespace) -> int:
    from .gguf_doctor import diagnose
    from .gguf_header import GGUFHeaderError

    path, error = _gguf_input(args.gguf)
    report = None
    try:
        # A Hub file is named as the user typed it in the fix line, not by its cache path.
        target = str(path) if path is not None and Path(args.gguf).expanduser().is_file() else args.gguf
        report = diagnose(path, fix_target=target) if path is not None else None
    except GGUFHeaderError as exc:
        error = str(exc)
    if report is None:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        json.dump(report.to_dict(), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        print(report.describe())
    return 0 if report.ok else 1


def cmd_retemplate(args: argparse.Namespace) -> int:
    from .gguf_header import GGUFHeaderError
    from .gguf_retemplate import RetemplateError, retemplate

    if args.in_place and args.output is not None and Path(args.output).resolve() != Path(args.input).resolve():
        print("error: --in-place rewrites the input itself: give no output path", file=sys.stderr)
        return 2
    if args.output is None and not args.in_place:
        print("error: give an output path (smol-tools retemplate IN.gguf OUT.gguf), or --in-place "
              "to rewrite IN.gguf itself", file=sys.stderr)
        return 2
    source, error = _gguf_input(args.input)
    if source is not None and args.in_place and Path(args.input).resolve() != source.resolve():
        error = f"--in-place needs a local file, not {args.input!r} (a download is not yours to rewrite)"
    if error is not None:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        result = retemplate(source, None if args.in_place else Path(args.output), in_place=args.in_place)
    except (RetemplateError, GGUFHeaderError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(result.describe())
    assert result.report is not None
    print("\ndoctor on the result:")
    print(result.report.describe())
    return 0 if result.report.ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smol-tools", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    render = sub.add_parser("render", help="print the exact prompt for a conversation")
    render.add_argument("--messages", required=True, help="JSON file of OpenAI messages ('-' = stdin)")
    render.add_argument("--tools", help="JSON file of OpenAI tools")
    render.add_argument("--engine", choices=ENGINES, default="jinja",
                        help="jinja: our renderer (= transformers); llama: llama.cpp's Jinja engine "
                             "in a llama-server started on --gguf for this one render (127.0.0.1, a free "
                             "port, built once and cached); llama-cpp-python: its chat formatter with the "
                             "template in --gguf; ollama: the Go template as Ollama runs it")
    render.add_argument("--gguf", help="GGUF whose embedded template --engine llama uses")
    render.add_argument("--no-generation-prompt", action="store_true")
    render.add_argument("--no-think", action="store_true", help="render with enable_thinking=false")
    render.set_defaults(func=cmd_render)

    parse = sub.add_parser("parse", help="parse model output (stdin) into reasoning, content, calls")
    parse.add_argument("--stream", action="store_true", help="use the streaming parser")
    parse.add_argument("--chunk", type=int, default=1, help="chunk size for --stream")
    parse.set_defaults(func=cmd_parse)

    chat = sub.add_parser("chat", help="a terminal agent session with the tools")
    chat.add_argument("--backend", choices=BACKEND_KINDS,
                      default="llama-cpp-python")
    chat.add_argument("--model", default=DEFAULT,
                      help="in process: a GGUF path, owner/repo:QUANT, 'tiny' (the offline test model), or "
                           "'default[:QUANT]' (the model's known homes on the Hub, in order: "
                           f"{', '.join(DEFAULT_HOMES)}); servers: the model name")
    chat.add_argument("--url", default="", help="server URL for --backend openai/llama-server/ollama")
    chat.add_argument("--no-think", action="store_true")
    chat.add_argument("--allow-code", action="store_true",
                      help="enable execute_python/shell_command/network tools (sandboxed)")
    chat.set_defaults(func=cmd_chat)

    doctor = sub.add_parser("doctor", help="will this GGUF do correct tool calling as it is? (header only)")
    doctor.add_argument("gguf", metavar="FILE.gguf|owner/repo:QUANT")
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    doctor.set_defaults(func=cmd_doctor)

    retemplate = sub.add_parser("retemplate", help="give a GGUF our chat template, stop ids and sampling "
                                                   "defaults (metadata only; tensor data copied unchanged)")
    retemplate.add_argument("input", metavar="IN.gguf", help="a GGUF path or owner/repo:QUANT")
    retemplate.add_argument("output", metavar="OUT.gguf", nargs="?")
    retemplate.add_argument("--in-place", action="store_true",
                            help="rewrite IN.gguf itself (replaced only once the new file is complete)")
    retemplate.set_defaults(func=cmd_retemplate)

    from .pipeline.cli_args import add_package_parser

    add_package_parser(sub)

    from .eval.cli_args import add_eval_parser

    add_eval_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
