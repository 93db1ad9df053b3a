"""The `smol-tools` command line: render and parse, a stable interface other checks rely on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from smol_tools.chat_format import render_prompt
from smol_tools.toolcalls import parse_output
from tests.conftest import render_corpus

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "smol_tools", *args], input=stdin,
                          capture_output=True, text=True, cwd=ROOT)


def _write(tmp_path: Path, name: str, data) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("case_id", ["tools_with_system", "parallel_calls", "unicode_everywhere",
                                     "tools_no_think", "no_generation_prompt"])
def test_render_writes_the_exact_prompt(tmp_path: Path, case_id: str) -> None:
    case = next(c for c in render_corpus() if c["id"] == case_id)
    args = ["render", "--messages", _write(tmp_path, "m.json", case["messages"])]
    if case["tools"]:
        args += ["--tools", _write(tmp_path, "t.json", case["tools"])]
    if not case["add_generation_prompt"]:
        args.append("--no-generation-prompt")
    if not case["enable_thinking"]:
        args.append("--no-think")
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    expected = render_prompt(case["messages"], case["tools"],
                             add_generation_prompt=case["add_generation_prompt"],
                             enable_thinking=case["enable_thinking"])
    assert result.stdout == expected  # byte-exact: no added newline


def test_render_accepts_an_object_with_messages_and_tools(tmp_path: Path) -> None:
    case = next(c for c in render_corpus() if c["id"] == "single_call_round")
    path = _write(tmp_path, "conv.json", {"messages": case["messages"], "tools": case["tools"]})
    result = run_cli("render", "--messages", path)
    assert result.stdout == render_prompt(case["messages"], case["tools"])


def test_render_reports_bad_input_clearly(tmp_path: Path) -> None:
    result = run_cli("render", "--messages", _write(tmp_path, "m.json", [{"role": "robot", "content": "x"}]))
    assert result.returncode == 2
    assert "unexpected message role" in result.stderr
    result = run_cli("render", "--messages", _write(tmp_path, "m.json", {"nothing": 1}))
    assert result.returncode != 0 and "messages" in result.stderr


OUTPUT = ('<think>\nweather needed\n</think>\n\nChecking.\n\n<tool_call>\n{"name": "get_weather", '
          '"arguments": {"city": "Paris"}}\n</tool_call>\n<tool_call>\n{"name": "oops"\n</tool_call>'
          '<|im_end|>ignored')


@pytest.mark.parametrize("extra", [[], ["--stream"], ["--stream", "--chunk", "7"]])
def test_parse_prints_the_result_object(extra: list[str]) -> None:
    result = run_cli("parse", *extra, stdin=OUTPUT)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"reasoning", "content", "tool_calls", "errors", "notes"}
    assert data["notes"] == []
    assert data["reasoning"] == "weather needed"
    assert data["content"] == "Checking."
    assert data["tool_calls"] == [{"name": "get_weather", "arguments": {"city": "Paris"}}]
    assert len(data["errors"]) == 1 and data["errors"][0]["raw"].startswith("<tool_call>")
    assert data == parse_output(OUTPUT).to_dict()


def test_parse_never_fails_on_garbage() -> None:
    result = run_cli("parse", stdin="\x00<tool_call>{{{\udcff".encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
    assert result.returncode == 0
    assert json.loads(result.stdout)["errors"]


# ---- conventions: --version, help with defaults, completion, the app's variables -------------------

def _env(**extra: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("SMOL_TOOLS_")}
    return env | {"HF_HUB_OFFLINE": "1"} | extra


def test_version_names_the_package_the_runtimes_and_gguf() -> None:
    from importlib import metadata

    result = run_cli("--version")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"smol-tools {metadata.version('smol-tools')}"
    assert lines[1].startswith(f"llama-cpp-python {metadata.version('llama-cpp-python')}")
    assert f"gguf {metadata.version('gguf')}" in lines
    assert lines[3].startswith("llama.cpp: the tree vendored in llama-cpp-python")


CHANGELOG = """# Changelog

## [Unreleased]

## [9.9.2]

- fix(server): a fix only; the tree is still 9.9.1's

## [9.9.1]

- feat: update llama.cpp to ggml-org/llama.cpp@0c1e57098
- feat: update llama.cpp to ggml-org/llama.cpp@4df29be4f
"""


def test_the_vendored_llama_cpp_commit_comes_from_the_changelog(tmp_path: Path) -> None:
    import io
    import tarfile

    from smol_tools.llamacpp.source import commit_from_changelog

    assert commit_from_changelog(CHANGELOG, "9.9.1") == "0c1e57098"
    assert commit_from_changelog(CHANGELOG, "9.9.2") == "0c1e57098"  # a release that did not update it
    assert commit_from_changelog(CHANGELOG, "1.0.0") is None
    # --version reads it from the cached sdist (the programs built from it say "commit unknown").
    from importlib import metadata

    version = metadata.version("llama-cpp-python")
    sdist = tmp_path / "sdist" / f"llama_cpp_python-{version}.tar.gz"
    sdist.parent.mkdir()
    with tarfile.open(sdist, "w:gz") as tar:
        for name, text in ((f"llama_cpp_python-{version}/README.md", "readme"),
                           (f"llama_cpp_python-{version}/CHANGELOG.md", CHANGELOG.replace("9.9.1", version))):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    result = subprocess.run([sys.executable, "-m", "smol_tools", "--version"], capture_output=True, text=True,
                            cwd=ROOT, env=_env(SMOL_TOOLS_CACHE=str(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert f"llama-cpp-python {version} (llama.cpp commit 0c1e57098, from its changelog)" in result.stdout


@pytest.mark.parametrize("command", ["render", "parse", "chat", "doctor", "retemplate", "package", "eval"])
def test_every_option_has_help_and_says_its_default(command: str) -> None:
    from smol_tools.cli import build_parser
    from smol_tools.cli_help import apply_formatter

    parser = build_parser()
    apply_formatter(parser)
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices[command]
    for action in sub._actions:
        assert action.help, f"{command} {action.option_strings or action.dest} has no help text"
        if action.option_strings and action.default not in (None, False, "", "==SUPPRESS==") and command != "package":
            assert "default" in (sub.formatter_class(command)._get_help_string(action) or ""), action.option_strings
    text = run_cli(command, "--help").stdout
    assert "%%" not in text and "(default: None)" not in text


def test_url_reads_the_same_in_chat_and_eval() -> None:
    from smol_tools.cli_help import URL_HELP

    for command in ("chat", "eval"):
        assert " ".join(URL_HELP.split()[:6]) in " ".join(run_cli(command, "--help").stdout.split())


def test_tab_completion_through_argcomplete(tmp_path: Path) -> None:
    out = tmp_path / "completions"

    def complete(line: str) -> list[str]:
        env = _env(_ARGCOMPLETE="1", COMP_LINE=line, COMP_POINT=str(len(line)),
                   _ARGCOMPLETE_STDOUT_FILENAME=str(out))
        done = subprocess.run([sys.executable, "-m", "smol_tools"], env=env, cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return [c.strip() for c in out.read_text().split("\x0b")]

    assert complete("smol-tools ch") == ["chat"]
    assert complete("smol-tools chat --backend o") == ["openai", "ollama"]
    assert "--max-rounds" in complete("smol-tools chat --max")


def test_chat_reads_the_apps_variables() -> None:
    # SMOL_TOOLS_MODEL=tiny goes to the tiny model, not the Hub (offline here: the Hub would fail).
    done = subprocess.run([sys.executable, "-m", "smol_tools", "chat", "--once", "Say hello in French.", "--json"],
                          env=_env(SMOL_TOOLS_MODEL="tiny"), cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    turn = json.loads(done.stdout)
    assert "tiny test model" in turn["backend"] and turn["answer"] == "Bonjour !"
    assert turn["finish"]["reason"] == "answer" and turn["calls"] == []
    # A message over SMOL_TOOLS_MAX_MESSAGE_CHARS is refused before it reaches the model.
    done = subprocess.run([sys.executable, "-m", "smol_tools", "chat", "--model", "tiny", "--once", "x" * 200],
                          env=_env(SMOL_TOOLS_MAX_MESSAGE_CHARS="100"), cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2 and "SMOL_TOOLS_MAX_MESSAGE_CHARS" in done.stderr


def test_chat_flags_override_the_variables_and_paths_stay_paths(tmp_path: Path) -> None:
    from smol_tools.cli_chat import ChatOptions, chat_config, looks_like_path, model_spec

    env = {"SMOL_TOOLS_MODEL": "someone/model", "SMOL_TOOLS_QUANT": "q8_0", "SMOL_TOOLS_N_CTX": "8192",
           "SMOL_TOOLS_API_KEY": "k", "SMOL_TOOLS_BACKEND": "openai", "SMOL_TOOLS_URL": "http://h:1"}
    config = chat_config(ChatOptions(), env)
    assert (config.backend, config.model, config.quant, config.n_ctx, config.api_key, config.url) == \
        ("openai", "someone/model", "Q8_0", 8192, "k", "http://h:1")
    config = chat_config(ChatOptions(backend="llama-cpp-python", quant="iq4_xs", n_ctx=4096), env)
    assert model_spec(config) == "someone/model:IQ4_XS" and config.n_ctx == 4096
    (tmp_path / "owner").mkdir()
    (tmp_path / "owner" / "model").write_bytes(b"GGUF")
    for spec in ("./nope", "nope.gguf", "~/m", "a/b/c", str(tmp_path / "owner" / "model")):
        assert looks_like_path(spec)
        assert model_spec(chat_config(ChatOptions(model=spec), {})) == spec
    assert not looks_like_path("owner/model")


def test_chat_falls_back_to_tiny_offline_only_when_told() -> None:
    args = [sys.executable, "-m", "smol_tools", "chat", "--once", "Say hello in French."]
    told = subprocess.run(args, env=_env(SMOL_TOOLS_FALLBACK_TINY="1"), cwd=ROOT, capture_output=True, text=True)
    assert told.returncode == 0 and "Bonjour !" in told.stdout
    assert "SMOL_TOOLS_FALLBACK_TINY is on: using the tiny offline test model" in told.stderr
    default = subprocess.run(args, env=_env(), cwd=ROOT, capture_output=True, text=True)
    assert default.returncode == 1 and "--model tiny" in default.stderr and "Bonjour" not in default.stdout


def test_parse_reads_bytes_that_are_not_utf8() -> None:
    done = subprocess.run([sys.executable, "-m", "smol_tools", "parse"], input=b"Caf\xe9 <tool_call>\n{\"name\": \"x\", "
                          b"\"arguments\": {}}\n</tool_call>", capture_output=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["content"].startswith("Caf\ufffd") and data["tool_calls"] == [{"name": "x", "arguments": {}}]


def test_render_reads_messages_from_stdin_and_refuses_non_utf8() -> None:
    ok = subprocess.run([sys.executable, "-m", "smol_tools", "render", "--messages", "-"],
                        input=json.dumps([{"role": "user", "content": "hi"}]).encode(), capture_output=True, cwd=ROOT)
    assert ok.returncode == 0 and ok.stdout.decode().endswith("<|im_start|>assistant\n<think>\n")
    bad = subprocess.run([sys.executable, "-m", "smol_tools", "render", "--messages", "-"], input=b'["caf\xe9"]',
                         capture_output=True, cwd=ROOT)
    assert bad.returncode == 2 and b"not UTF-8" in bad.stderr and b"Traceback" not in bad.stderr
