# PYTHON_ARGCOMPLETE_OK  (argcomplete's marker: this entry point completes itself)
"""`smol-tools` command line: thin subcommands over the package."""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

from .app.config import QUANTS
from .backends.factory import BACKEND_KINDS
from .cli_errors import FAILED, CliError, UsageError, debug_enabled, one_line
from .cli_help import URL_HELP, HelpFormatter, apply_formatter
from .model_source import DEFAULT_HOMES, DEFAULT_QUANT
from .termination import unwind_on_termination



class _VersionAction(argparse.Action):
    """--version: computed only when asked (it imports llama_cpp), printed as is."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        print(_versions())
        parser.exit(0)

ENGINES = ("jinja", "llama", "ollama", "llama-cpp-python", "hf-jinja")


def _read_json(path: str, option: str) -> Any:
    """A JSON file (or stdin for '-'), or a UsageError that says which option and what is wrong."""
    try:
        text = sys.stdin.buffer.read().decode("utf-8") if path == "-" else \
            Path(path).expanduser().read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{option} {path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{option} {path}: is a folder, give a JSON file") from None
    except UnicodeDecodeError:
        raise UsageError(f"{option} {path}: not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot read it ({exc.strerror or exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{option} {path}: not valid JSON (line {exc.lineno}, column {exc.colno}: "
                         f"{exc.msg})") from None


def _check_tools(tools: list) -> None:
    """OpenAI tools: {"type": "function", "function": {"name": ..., "parameters": {...}}}."""
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(tool.get("function"), dict):
            hint = (' (it looks like a bare function: wrap it as {"type": "function", "function": {...}})'
                    if isinstance(tool, dict) and "name" in tool else "")
            raise UsageError(f'--tools[{i}] is not an OpenAI tool {{"type": "function", "function": {{...}}}}{hint}')
        if not isinstance(tool["function"].get("name"), str) or not tool["function"]["name"]:
            raise UsageError(f"--tools[{i}].function has no \"name\"")
        if not isinstance(tool["function"].get("parameters", {}), dict):
            raise UsageError(f"--tools[{i}].function.parameters must be a JSON Schema object")


def _load_conversation(messages_path: str, tools_path: str | None) -> tuple[list, list | None]:
    data = _read_json(messages_path, "--messages")
    tools = None
    if isinstance(data, dict):  # also accept {"messages": [...], "tools": [...]}
        tools = data.get("tools")
        data = data.get("messages")
    if not isinstance(data, list) or not all(isinstance(m, dict) for m in data):
        raise UsageError("--messages must hold a JSON list of message objects "
                         "(or an object with a 'messages' list)")
    if tools_path is not None:
        tools = _read_json(tools_path, "--tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise UsageError("--tools must hold a JSON list of tools")
        _check_tools(tools)
    return data, tools


def cmd_render(args: argparse.Namespace) -> int:
    # start-up time: the CLI loads only what the chosen subcommand runs
    from .chat_format import TemplateRenderError, render_prompt

    messages, tools = _load_conversation(args.messages, args.tools)
    options = {"add_generation_prompt": not args.no_generation_prompt,
               "enable_thinking": not args.no_think}
    try:
        if args.engine == "jinja":
            prompt = render_prompt(messages, tools, **options)
        elif args.engine == "ollama":
            # start-up time: the CLI loads only what the chosen subcommand runs
            from .ollama_render import render_with_ollama_template

            prompt = render_with_ollama_template(messages, tools, **options)
        elif args.engine == "llama-cpp-python":
            prompt = _render_with_llama_cpp_python(args.gguf, messages, tools, **options)
        elif args.engine == "hf-jinja":
            # start-up time: the CLI loads only what the chosen subcommand runs
            from .hf_jinja_render import render_with_hf_jinja

            prompt = render_with_hf_jinja(messages, tools, **options)
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
    from .llamacpp.server import LlamaServer  # start-up time: the CLI loads only what the chosen subcommand runs

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
    from llama_cpp import Llama  # start-up time: llama_cpp loads its native library
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter  # start-up time: llama_cpp loads its native library

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
    # start-up time: the CLI loads only what the chosen subcommand runs
    from .toolcalls import StreamingParser, parse_output

    # Model output is what it is: bytes that are not UTF-8 become U+FFFD, never a crash.
    text = sys.stdin.buffer.read().decode("utf-8", errors="replace")
    if args.stream:
        if args.chunk < 1:
            raise UsageError("--chunk must be at least 1")
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
    # start-up time: the CLI loads only what the chosen subcommand runs
    from .cli_chat import ChatOptions, open_session, run_once
    from .terminal_chat import _show, run_repl  # start-up time: the CLI loads only what the chosen subcommand runs

    if args.json and args.once is None:
        raise UsageError("--json goes with --once MESSAGE (one turn, printed as the app's /send returns it)")
    options = ChatOptions(backend=args.backend, model=args.model, quant=args.quant, url=args.url,
                          api_key=args.api_key, n_ctx=args.ctx_size, max_rounds=args.max_rounds,
                          system=args.system, think=not args.no_think, allow_code=args.allow_code,
                          no_network=args.no_network)
    session = open_session(options, say=lambda text: print(text, file=sys.stderr))
    try:
        if args.mcp:  # MCP servers' tools join the built-ins (smol_tools/app/mcp_servers.py)
            # start-up time: the CLI loads only what the chosen subcommand runs
            from .app.mcp_servers import attach_mcp_servers

            problems = attach_mcp_servers(session, args.mcp)
            if problems:
                raise CliError("; ".join(problems))
        if args.once is not None:
            return run_once(session, args.once, as_json=args.json, show=_show)
        return run_repl(session)
    finally:
        session.close()


def _gguf_input(spec: str) -> Path:
    """A local GGUF path or owner/repo:QUANT -> the file; CliError (2: fix the name or file,
    1: the Hub could not be reached) otherwise."""
    from .cli_chat import model_error  # start-up time: the CLI loads only what the chosen subcommand runs
    from .gguf_header import GGUFHeaderError  # start-up time: the CLI loads only what the chosen subcommand runs
    # start-up time: the CLI loads only what the chosen subcommand runs
    from .model_source import ModelSourceError, resolve_gguf

    try:
        return resolve_gguf(spec)
    except ModelSourceError as exc:
        raise model_error(exc, hint="") from None
    except GGUFHeaderError as exc:
        raise UsageError(str(exc)) from None


def cmd_doctor(args: argparse.Namespace) -> int:
    from .gguf_doctor import diagnose  # start-up time: the CLI loads only what the chosen subcommand runs
    from .gguf_header import GGUFHeaderError  # start-up time: the CLI loads only what the chosen subcommand runs

    from .cli_chat import model_error  # start-up time: the CLI loads only what the chosen subcommand runs
    from .gguf_remote import header_for  # start-up time: the CLI loads only what the chosen subcommand runs
    from .model_source import ModelSourceError  # start-up time: the CLI loads only what the chosen subcommand runs

    try:
        # A Hub spec: only the header's bytes are fetched (range requests), unless --download or cached.
        source = header_for(args.gguf, download=args.download)
        report = diagnose(source.path, header=source.header, fix_target=source.fix_target)
    except ModelSourceError as exc:
        raise model_error(exc, hint="") from None
    except GGUFHeaderError as exc:
        raise UsageError(str(exc)) from None
    if source.remote:
        print(source.describe_fetch(), file=sys.stderr)
    if args.json:
        json.dump(report.to_dict(), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        print(report.describe())
    return 0 if report.ok else 1


def cmd_retemplate(args: argparse.Namespace) -> int:
    from .gguf_header import GGUFHeaderError  # start-up time: the CLI loads only what the chosen subcommand runs
    # start-up time: the CLI loads only what the chosen subcommand runs
    from .gguf_retemplate import RetemplateError, retemplate

    if args.in_place and args.output is not None and Path(args.output).resolve() != Path(args.input).resolve():
        raise UsageError("--in-place rewrites the input itself: give no output path")
    if args.output is None and not args.in_place:
        raise UsageError("give an output path (smol-tools retemplate IN.gguf OUT.gguf), or --in-place "
                         "to rewrite IN.gguf itself")
    source = _gguf_input(args.input)
    if args.in_place and Path(args.input).resolve() != source.resolve():
        raise UsageError(f"--in-place needs a local file, not {args.input!r} (a download is not yours to rewrite)")
    try:
        result = retemplate(source, None if args.in_place else Path(args.output), in_place=args.in_place)
    except (RetemplateError, GGUFHeaderError, OSError) as exc:
        raise UsageError(str(exc)) from None
    print(result.describe())
    assert result.report is not None
    print("\ndoctor on the result:")
    print(result.report.describe())
    return 0 if result.report.ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smol-tools", description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--version", action=_VersionAction,
                        help="print the versions of smol-tools, llama-cpp-python, llama.cpp and gguf")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of a failure (also SMOL_TOOLS_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    render = sub.add_parser("render", help="print the exact prompt for a conversation")
    render.add_argument("--messages", required=True, help="JSON file of OpenAI messages ('-' = stdin)")
    render.add_argument("--tools", help="JSON file of OpenAI tools")
    render.add_argument("--engine", choices=ENGINES, default="jinja",
                        help="jinja: our renderer (= transformers); llama: llama.cpp's Jinja engine "
                             "in a llama-server started on --gguf for this one render (127.0.0.1, a free "
                             "port, built once and cached); llama-cpp-python: its chat formatter with the "
                             "template in --gguf; ollama: the Go template as Ollama runs it; hf-jinja: "
                             "@huggingface/jinja (the Hub's and transformers.js's engine) in Node")
    render.add_argument("--gguf", help="GGUF whose embedded template --engine llama uses")
    render.add_argument("--no-generation-prompt", action="store_true",
                        help="end after the last message, without the assistant turn's opening (default: add it)")
    render.add_argument("--no-think", action="store_true", help="render with enable_thinking=false")
    render.set_defaults(func=cmd_render)

    parse = sub.add_parser("parse", help="parse model output (stdin) into reasoning, content, calls")
    parse.add_argument("--stream", action="store_true", help="use the streaming parser")
    parse.add_argument("--chunk", type=int, default=1, help="chunk size for --stream")
    parse.set_defaults(func=cmd_parse)

    chat = sub.add_parser(
        "chat", help="a terminal agent session with the tools (like `ollama run`)",
        description="Chat with the model in the terminal; every tool call is shown as parsed JSON. "
                    "Each option's default comes from the SMOL_TOOLS_* variable the app reads "
                    "(named in its help), else the app's default. /help inside lists the commands.")
    chat.add_argument("--backend", choices=BACKEND_KINDS, default=None,
                      help="where the model runs (default: $SMOL_TOOLS_BACKEND, else llama-cpp-python, in process)")
    chat.add_argument("--model", default=None,
                      help="in process: a GGUF path (anything that exists or looks like a path is a path), "
                           "owner/repo[:QUANT], 'tiny' (the offline test model), or 'default' (the model's "
                           f"known homes on the Hub, in order: {', '.join(DEFAULT_HOMES)}); servers: the "
                           "model name (default: $SMOL_TOOLS_MODEL, else 'default' in process and the "
                           "server's own default otherwise)")
    chat.add_argument("--quant", default=None, metavar="QUANT",
                      help=f"quant to fetch for a Hub model without ':QUANT', one of {', '.join(QUANTS)} "
                           f"(default: $SMOL_TOOLS_QUANT, else {DEFAULT_QUANT})")
    chat.add_argument("--url", default=None, help=URL_HELP + " (default: $SMOL_TOOLS_URL)")
    chat.add_argument("--api-key", default=None,
                      help="API key for --backend openai (default: $SMOL_TOOLS_API_KEY)")
    chat.add_argument("-c", "--ctx-size", type=int, default=None, metavar="N",
                      help="context length in tokens (default: $SMOL_TOOLS_N_CTX, else the format's 32768; "
                           "4096 for the tiny model)")
    chat.add_argument("--max-rounds", type=int, default=None, metavar="N",
                      help="tool rounds per turn before the agent stops (default: 20; at most "
                           "$SMOL_TOOLS_MAX_ROUNDS, else 50)")
    chat.add_argument("--system", default=None, metavar="TEXT",
                      help="system prompt put before the tool list (default: none, as the model was trained)")
    chat.add_argument("--no-think", action="store_true",
                      help="answer without a reasoning block (default: think first; /think on|off inside)")
    chat.add_argument("--allow-code", action="store_true",
                      help="turn on execute_python / shell_command (sandboxed; default: "
                           "$SMOL_TOOLS_ALLOW_CODE, else off)")
    chat.add_argument("--no-network", action="store_true",
                      help="turn off the tools that reach the network (default: $SMOL_TOOLS_ALLOW_NETWORK, else on)")
    chat.add_argument("--once", default=None, metavar="MESSAGE",
                      help="send one message, print the reply and exit (no prompt)")
    chat.add_argument("--json", action="store_true",
                      help="with --once: print the turn as JSON, exactly as the app's /send endpoint returns it")
    chat.add_argument("--mcp", action="append", default=[], metavar="SERVER",
                      help="an MCP server whose tools the model may call: a command line (stdio, e.g. "
                           "\"npx -y @modelcontextprotocol/server-everything\") or an http(s) URL; repeatable")
    chat.set_defaults(func=cmd_chat)

    doctor = sub.add_parser("doctor", help="will this GGUF do correct tool calling as it is? (header only)")
    doctor.add_argument("gguf", metavar="FILE.gguf|owner/repo:QUANT",
                        help="a local GGUF, or a Hub repo and quant (only its header is fetched)")
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    doctor.add_argument("--download", action="store_true",
                        help="a Hub spec: download the whole file (cached) instead of reading its header remotely")
    doctor.set_defaults(func=cmd_doctor)

    retemplate = sub.add_parser("retemplate", help="give a GGUF our chat template, stop ids and sampling "
                                                   "defaults (metadata only; tensor data copied unchanged)")
    retemplate.add_argument("input", metavar="IN.gguf", help="a GGUF path or owner/repo:QUANT")
    retemplate.add_argument("output", metavar="OUT.gguf", nargs="?",
                            help="where to write the fixed copy (omit with --in-place)")
    retemplate.add_argument("--in-place", action="store_true",
                            help="rewrite IN.gguf itself (replaced only once the new file is complete)")
    retemplate.set_defaults(func=cmd_retemplate)

    # start-up time: the CLI loads only what the chosen subcommand runs
    from .pipeline.cli_args import add_package_parser

    add_package_parser(sub)

    from .eval.cli_args import add_eval_parser  # start-up time: the CLI loads only what the chosen subcommand runs

    add_eval_parser(sub).set_defaults(func=cmd_eval_with_variables)
    return parser


def cmd_eval_with_variables(args: argparse.Namespace) -> int:
    """`smol-tools eval`: the SMOL_TOOLS_* variables fill the flags left out, then the eval runs
    (applied here, above both layers: the eval package does not read the app's settings)."""
    from .cli_chat import apply_model_variables  # start-up time: the CLI loads only what the chosen subcommand runs
    from .eval.cli_args import cmd_eval  # start-up time: the CLI loads only what the chosen subcommand runs

    apply_model_variables(args)
    return cmd_eval(args)


def _versions() -> str:
    """Package, llama-cpp-python (and the llama.cpp it was built from), gguf, the llama.cpp we build."""
    from importlib import metadata  # start-up time: importlib.metadata takes ~0.1 s to import

    def version_of(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    lines = [f"smol-tools {version_of('smol-tools')}",
             f"llama-cpp-python {version_of('llama-cpp-python')}{_llama_cpp_python_build()}",
             f"gguf {version_of('gguf')}"]
    lines.append(f"llama.cpp: {_llama_cpp_build()}")
    return "\n".join(lines)


def _llama_cpp_python_build() -> str:
    # llama-cpp-python bundles its own llama.cpp; its system info names the build's features.
    try:
        import llama_cpp  # start-up time: llama_cpp loads its native library

        info = llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip()
    except Exception:  # noqa: BLE001 - not installed, or a build without the call
        return ""
    return f" (bundled llama.cpp: {info[:160]})" if info else ""


def _llama_cpp_build() -> str:
    """llama.cpp as smol-tools uses it: the tree vendored in the llama-cpp-python sdist, built
    once for llama-server / quantize / imatrix (its own version line, when it is built)."""
    from importlib import metadata  # start-up time: importlib.metadata takes ~0.1 s to import

    try:
        version = metadata.version("llama-cpp-python")
    except metadata.PackageNotFoundError:
        return "unknown (llama-cpp-python is not installed)"
    cache = os.environ.get("SMOL_TOOLS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "smol-tools")
    servers = sorted(glob.glob(os.path.join(cache, "llama.cpp-bin", f"{version}-*", "bin", "llama-server")))
    where = f"the tree vendored in llama-cpp-python {version}"
    from .llamacpp.source import vendored_commit  # start-up time: only --version reads the sdist

    commit = vendored_commit(version)
    if commit:  # the built programs cannot name it (the sdist has no .git): its changelog does
        where += f" (llama.cpp commit {commit}, from its changelog)"
    if not servers:
        return f"{where}; programs not built yet (the first llama-server or package run builds them)"
    try:
        out = subprocess.run([servers[-1], "--version"], capture_output=True, text=True, timeout=20)
        line = next((l.strip() for l in (out.stdout + out.stderr).splitlines() if l.startswith("version")), "")
    except (OSError, subprocess.SubprocessError):
        line = ""
    return f"{where}; built at {os.path.dirname(servers[-1])}" + (f" ({line})" if line else "")


def _complete(parser: argparse.ArgumentParser) -> None:
    """Tab completion through argcomplete when it is installed (`pip install argcomplete`, then
    `eval "$(register-python-argcomplete smol-tools)"`); a no-op without it or outside a shell's
    completion request."""
    try:
        import argcomplete  # optional: argcomplete (tab completion) may not be installed
    except ImportError:
        return
    argcomplete.autocomplete(parser)


def main(argv: Sequence[str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    apply_formatter(parser)
    _complete(parser)
    args = parser.parse_args(raw)  # bad usage: argparse prints it and exits 2
    debug = debug_enabled(args.debug)
    unwind_on_termination()  # a llama-server a command started is stopped when it is killed
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        if debug:
            raise
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `smol-tools ... | head`: the reader left, nothing to report
        return 0
    except Exception as exc:  # noqa: BLE001 - a failed job is one line, the traceback is for --debug
        if debug:
            raise
        print(f"error: {type(exc).__name__}: {one_line(exc)}\n(run with --debug or SMOL_TOOLS_DEBUG=1 for "
              "the traceback)", file=sys.stderr)
        return FAILED


if __name__ == "__main__":
    sys.exit(main())
