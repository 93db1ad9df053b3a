"""Every subcommand on ordinary mistakes: one clear line on stderr naming the fix, exit 2 for bad
usage and 1 for a failed job, never a traceback (tracebacks only with --debug or
SMOL_TOOLS_DEBUG=1). Each case runs the real console entry point in a fresh process, offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
USAGE, FAILED = 2, 1


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("bad-input")
    (d / "bad.json").write_text("{bad", encoding="utf-8")
    (d / "messages.json").write_text(json.dumps([{"role": "user", "content": "hi"}]), encoding="utf-8")
    (d / "dict.json").write_text(json.dumps({"nothing": 1}), encoding="utf-8")
    (d / "robot.json").write_text(json.dumps([{"role": "robot", "content": "x"}]), encoding="utf-8")
    (d / "bare_tools.json").write_text(json.dumps([{"name": "f", "parameters": {}}]), encoding="utf-8")
    (d / "tools_object.json").write_text(json.dumps({"type": "function"}), encoding="utf-8")
    (d / "latin1.json").write_bytes(b'["caf\xe9"]')
    (d / "junk.gguf").write_bytes(b"not a gguf at all" * 10)
    (d / "ckpt").mkdir()
    (d / "ckpt" / "readme.txt").write_text("a folder, not a checkpoint", encoding="utf-8")
    return d


AUTHORIZATIONS: list[str | None] = []


class _NotFound(BaseHTTPRequestHandler):
    """A real HTTP server that answers everything with 404: up, but not an inference server.
    It keeps the Authorization header of every request (AUTHORIZATIONS)."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        AUTHORIZATIONS.append(self.headers.get("Authorization"))
        self.send_error(404)

    do_POST = do_GET

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def not_a_model_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SMOL_TOOLS_")}
    environ.update({"HF_HUB_OFFLINE": "1", "SMOL_TOOLS_HISTORY": ""}, **(env or {}))
    return subprocess.run([sys.executable, "-m", "smol_tools", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env=environ, timeout=180)


# (id, args ({d} = the files folder, {dead} = a port nobody listens on), env, exit code, words the message has)
CASES = [
    ("render-missing-file", ["render", "--messages", "{d}/absent.json"], {}, USAGE, ["absent.json", "no such file"]),
    ("render-bad-json", ["render", "--messages", "{d}/bad.json"], {}, USAGE, ["not valid JSON", "line 1"]),
    ("render-not-utf8", ["render", "--messages", "{d}/latin1.json"], {}, USAGE, ["not UTF-8"]),
    ("render-folder", ["render", "--messages", "{d}"], {}, USAGE, ["is a folder"]),
    ("render-wrong-shape", ["render", "--messages", "{d}/dict.json"], {}, USAGE, ["list of message objects"]),
    ("render-unknown-role", ["render", "--messages", "{d}/robot.json"], {}, USAGE, ["unexpected message role"]),
    ("render-tools-bad-json", ["render", "--messages", "{d}/messages.json", "--tools", "{d}/bad.json"], {}, USAGE,
     ["--tools", "not valid JSON"]),
    ("render-tools-not-a-list", ["render", "--messages", "{d}/messages.json", "--tools", "{d}/tools_object.json"],
     {}, USAGE, ["JSON list of tools"]),
    ("render-tools-without-wrapper", ["render", "--messages", "{d}/messages.json", "--tools", "{d}/bare_tools.json"],
     {}, USAGE, ['{"type": "function"', "wrap it"]),
    ("render-engine-needs-gguf", ["render", "--messages", "{d}/messages.json", "--engine", "llama"], {}, USAGE,
     ["--gguf"]),
    ("render-unknown-engine", ["render", "--messages", "{d}/messages.json", "--engine", "vllm"], {}, USAGE,
     ["invalid choice"]),
    ("parse-chunk-zero", ["parse", "--stream", "--chunk", "0"], {}, USAGE, ["--chunk must be at least 1"]),
    ("parse-chunk-not-a-number", ["parse", "--chunk", "x"], {}, USAGE, ["invalid int value"]),
    ("doctor-missing-file", ["doctor", "{d}/absent.gguf"], {}, USAGE, ["no GGUF file", "absent.gguf"]),
    ("doctor-not-a-gguf", ["doctor", "{d}/junk.gguf"], {}, USAGE, ["not a GGUF file"]),
    ("doctor-folder", ["doctor", "{d}"], {}, USAGE, ["is a folder", ".gguf file inside"]),
    ("doctor-bad-spec", ["doctor", "not a model"], {}, USAGE, ["neither a GGUF file nor a Hub repo"]),
    ("doctor-hub-offline", ["doctor", "nobody/nothing:Q4_K_M"], {}, FAILED, ["offline mode", "local .gguf path"]),
    ("retemplate-no-output", ["retemplate", "{d}/junk.gguf"], {}, USAGE, ["give an output path", "--in-place"]),
    ("retemplate-missing-input", ["retemplate", "{d}/absent.gguf", "{d}/out.gguf"], {}, USAGE, ["no GGUF file"]),
    ("retemplate-not-a-gguf", ["retemplate", "{d}/junk.gguf", "{d}/out.gguf"], {}, USAGE, ["not a GGUF file"]),
    ("package-missing-folder", ["package", "{d}/absent", "--out", "{d}/pkg"], {}, USAGE,
     ["neither a folder here nor a Hub repo"]),
    ("package-not-a-checkpoint", ["package", "{d}/ckpt", "--out", "{d}/pkg"], {}, USAGE,
     ["not a Hugging Face checkpoint", "config.json"]),
    ("package-unknown-quant", ["package", "{d}/ckpt", "--quants", "Q9_ZZ", "--out", "{d}/pkg"], {}, USAGE,
     ["unknown quant type", "Q9_ZZ", "Q4_K_M"]),
    ("package-empty-quants", ["package", "--quants", ","], {}, USAGE, ["at least one quant"]),
    ("chat-path-that-is-not-there", ["chat", "--model", "./nope", "--once", "hi"], {}, USAGE,
     ["no GGUF file", "--model tiny", ".gguf"]),
    ("chat-gguf-name-not-there", ["chat", "--model", "nope.gguf", "--once", "hi"], {}, USAGE, ["no GGUF file at nope.gguf"]),
    ("chat-folder-as-model", ["chat", "--model", "{d}", "--once", "hi"], {}, USAGE, ["is a folder"]),
    ("chat-offline-default-model", ["chat", "--once", "hi"], {}, FAILED,
     ["Hub is unreachable", "--model tiny", "--model ./model.gguf"]),
    ("chat-server-down", ["chat", "--backend", "openai", "--url", "{dead}", "--once", "hi"], {}, FAILED,
     ["cannot reach", "Start the server", "--model tiny"]),
    ("chat-ollama-down", ["chat", "--backend", "ollama", "--url", "{dead}", "--once", "hi"], {}, FAILED,
     ["Start the server"]),
    ("chat-unknown-tiny-quant", ["chat", "--model", "tiny:IQ1_S", "--once", "hi"], {}, USAGE,
     ["the tiny model ships as", "asked for IQ1_S"]),
    ("chat-json-without-once", ["chat", "--json"], {}, USAGE, ["--json goes with --once"]),
    ("chat-too-many-rounds", ["chat", "--model", "tiny", "--max-rounds", "99", "--once", "hi"], {}, USAGE,
     ["--max-rounds", "between 1 and 50"]),
    ("chat-env-rounds-ceiling", ["chat", "--model", "tiny", "--max-rounds", "9", "--once", "hi"],
     {"SMOL_TOOLS_MAX_ROUNDS": "5"}, USAGE, ["between 1 and 5"]),
    ("chat-env-bad-context", ["chat", "--model", "tiny", "--once", "hi"], {"SMOL_TOOLS_N_CTX": "big"}, USAGE,
     ["SMOL_TOOLS_N_CTX='big' is not an integer"]),
    ("chat-env-bad-backend", ["chat", "--once", "hi"], {"SMOL_TOOLS_BACKEND": "vllm"}, USAGE,
     ["SMOL_TOOLS_BACKEND='vllm'", "llama-cpp-python"]),
    ("chat-env-model-path", ["chat", "--once", "hi"], {"SMOL_TOOLS_MODEL": "./gone.gguf"}, USAGE,
     ["no GGUF file", "gone.gguf"]),
    ("eval-server-down", ["eval", "--backend", "openai", "--url", "{dead}", "--model", "x", "--suite", "tiny"],
     {}, FAILED, ["cannot reach", "Connection refused", "Start the server"]),
    ("eval-not-a-url", ["eval", "--backend", "openai", "--url", "nowhere", "--model", "x", "--suite", "tiny"],
     {}, USAGE, ["not a server URL"]),
    ("eval-missing-suite", ["eval", "--model", "tiny", "--suite", "{d}/absent.json"], {}, USAGE, ["absent.json"]),
    ("eval-bad-json-suite", ["eval", "--model", "tiny", "--suite", "{d}/bad.json"], {}, USAGE, ["bad.json"]),
    ("eval-no-model", ["eval"], {}, USAGE, ["give --model"]),
    ("eval-missing-model-file", ["eval", "--model", "{d}/absent.gguf", "--suite", "tiny"], {}, USAGE, ["absent.gguf"]),
    ("eval-env-bad-backend", ["eval", "--suite", "tiny"], {"SMOL_TOOLS_BACKEND": "vllm"}, USAGE,
     ["SMOL_TOOLS_BACKEND='vllm'", "llama-cpp-python"]),
    # the variables are read: the model in SMOL_TOOLS_MODEL is the one looked for
    ("eval-env-model-path", ["eval", "--suite", "tiny"], {"SMOL_TOOLS_MODEL": "./gone.gguf"}, USAGE, ["gone.gguf"]),
    ("eval-env-server-down", ["eval", "--suite", "tiny"], {"SMOL_TOOLS_BACKEND": "openai", "SMOL_TOOLS_MODEL": "x",
     "SMOL_TOOLS_URL": "http://127.0.0.1:9"}, FAILED, ["cannot reach http://127.0.0.1:9", "Start the server"]),
    ("eval-unknown-scenario", ["eval", "--model", "tiny", "--scenario", "chess"], {}, USAGE, ["invalid choice"]),
]


def _dead_port() -> str:
    import socket

    with socket.socket() as sock:  # bound and closed: nothing listens there now
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize("case_id,args,env,code,words", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_error(files: Path, case_id: str, args: list[str], env: dict[str, str],
                                      code: int, words: list[str]) -> None:
    dead = _dead_port()
    argv = [a.replace("{d}", str(files)).replace("{dead}", dead) for a in args]
    result = run_cli(*argv, cwd=files, env=env)
    assert result.returncode == code, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr + result.stdout
    for word in words:
        assert word in result.stderr, (word, result.stderr)
    first = result.stderr.strip().splitlines()[-1 if "usage:" in result.stderr else 0]
    assert first.startswith(("error:", "smol-tools")), result.stderr
    if case_id.startswith("package"):
        assert not (files / "pkg").exists(), "a refused package run leaves no output folder behind"


def test_eval_on_a_server_that_fails_every_step_exits_1_with_the_first_cause(not_a_model_server: str,
                                                                             tmp_path: Path) -> None:
    # Up, but every request fails: a report would read "F1 0.000, precision 1.000" as if measured.
    result = run_cli("eval", "--backend", "openai", "--url", not_a_model_server, "--model", "x",
                     "--suite", "tiny", "--limit", "2", "--no-progress", cwd=tmp_path)
    assert result.returncode == FAILED, result.stderr
    assert "Traceback" not in result.stderr
    assert "every step failed to run" in result.stderr
    assert "the first (tiny-" in result.stderr and "404" in result.stderr


def test_eval_takes_its_server_and_key_from_the_apps_variables(not_a_model_server: str, tmp_path: Path) -> None:
    # No flags: SMOL_TOOLS_BACKEND/_URL/_MODEL/_API_KEY, as chat and the app read them.
    AUTHORIZATIONS.clear()
    result = run_cli("eval", "--suite", "tiny", "--limit", "1", "--no-progress", cwd=tmp_path,
                     env={"SMOL_TOOLS_BACKEND": "openai", "SMOL_TOOLS_URL": not_a_model_server,
                          "SMOL_TOOLS_MODEL": "x", "SMOL_TOOLS_API_KEY": "sk-eval-test"})
    assert result.returncode == FAILED and "every step failed to run on openai:x" in result.stderr, result.stderr
    assert "Bearer sk-eval-test" in AUTHORIZATIONS  # the inference requests carried the key
    assert "sk-eval-test" not in result.stdout + result.stderr
    # A flag still wins over its variable.
    AUTHORIZATIONS.clear()
    result = run_cli("eval", "--suite", "tiny", "--limit", "1", "--no-progress", "--api-key", "sk-flag", cwd=tmp_path,
                     env={"SMOL_TOOLS_BACKEND": "openai", "SMOL_TOOLS_URL": not_a_model_server,
                          "SMOL_TOOLS_MODEL": "x", "SMOL_TOOLS_API_KEY": "sk-eval-test"})
    assert "Bearer sk-flag" in AUTHORIZATIONS and "Bearer sk-eval-test" not in AUTHORIZATIONS


@pytest.mark.parametrize("how", [["--debug"], "env"])
def test_traceback_only_when_asked(files: Path, how) -> None:
    args = ["render", "--messages", str(files / "absent.json")]
    plain = run_cli(*args)
    assert "Traceback" not in plain.stderr
    asked = run_cli(*how, *args) if how != "env" else run_cli(*args, env={"SMOL_TOOLS_DEBUG": "1"})
    assert asked.returncode != 0
    assert "Traceback" in asked.stderr and "UsageError" in asked.stderr
