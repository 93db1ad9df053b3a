"""App overhead: one answer through the Gradio app ÷ the same answer from the backend directly.

`python app.py` runs as a user starts it (offline, the tiny model) and is driven with
gradio_client through its named `send` endpoint. Its streaming UI event is private (not callable
by gradio_client), so time to first token proper is not observable from outside a browser; the
turn measured is a one-round, no-tool answer of a few tokens, whose latency is the time to its
first token plus a handful of token steps. The anchor is the same prompt (the app's own
messages and tools, read back through `export_session`) streamed by `LlamaCppBackend` in this
process, same GGUF, context and greedy decoding; the token counts of both are checked equal.
Both sides repeat an identical prompt, so both get the runtime's prefix reuse alike.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from .common import ROOT, Figure, not_measured

QUESTION = "Say hello in French."
TITLE = "App overhead (one short answer)"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_app(log: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False",
           "SMOL_TOOLS_LOG": "WARNING", "SMOL_TOOLS_MODEL": "tiny"}
    env.pop("GRADIO_SERVER_NAME", None)
    process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log.open("wb"),
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited with {process.returncode}: {log.read_text(errors='replace')[-800:]}")
        try:
            with urllib.request.urlopen(f"{url}/gradio_api/info", timeout=2):
                return process, url
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("app.py did not answer within 240 s")


def _call(client, endpoint: str, *args):
    result = client.predict(*args, api_name=f"/{endpoint}")
    return json.loads(result) if isinstance(result, str) and result[:1] in "[{" else result


def run(quick: bool) -> list[Figure]:
    if not (ROOT / "app.py").exists():
        return [not_measured("app_overhead", TITLE, "app missing")]
    try:
        from gradio_client import Client
    except ImportError:
        return [not_measured("app_overhead", TITLE, "gradio_client is not installed")]
    from smol_tools.backends.base import SamplingParams
    from smol_tools.events import TurnComplete
    from smol_tools.backends.llama_cpp import LlamaCppBackend
    from devkit.tiny_gguf import ensure_tiny_gguf

    with tempfile.TemporaryDirectory() as tmp:
        process, url = _start_app(Path(tmp) / "app.log")
        try:
            client = Client(url, verbose=False, download_files=False)
            status = _call(client, "status")
            if not status.get("tiny_model"):
                return [not_measured("app_overhead", TITLE, "the app did not open the tiny model")]
            turn = _call(client, "send", QUESTION)  # warm-up, and the prompt the app builds
            exported = _call(client, "export_session")
            messages = [m for m in exported["messages"] if m["role"] != "assistant"]
            tools = exported.get("tools") or []
            thinking = bool(status.get("thinking", True))
            backend = LlamaCppBackend(ensure_tiny_gguf("Q8_0"), n_ctx=int(status.get("context_limit") or 4096))
            sampling = SamplingParams.greedy()

            def direct_once() -> tuple[float, float, object]:
                started = time.perf_counter()
                first = None
                for event in backend.stream_turn(messages, tools, sampling=sampling, enable_thinking=thinking,
                                                 session_id="bench-app"):
                    first = first or time.perf_counter()
                    if isinstance(event, TurnComplete):
                        complete = event
                done = time.perf_counter()
                return done - started, first - started, complete

            def app_once() -> tuple[float, dict]:
                _call(client, "reset")
                started = time.perf_counter()
                result = _call(client, "send", QUESTION)
                return time.perf_counter() - started, result

            direct_once()
            figure = Figure("app_overhead", TITLE, "`send` through the Gradio app (gradio_client)",
                            "LlamaCppBackend.stream_turn directly", "<= 1.05 + a few ms", None)
            app_times, direct_times, first_times, transport = [], [], [], []
            for i in range(3 if quick else 15):
                if i % 2:
                    (d, f, complete), (a, turn) = direct_once(), app_once()
                else:
                    (a, turn), (d, f, complete) = app_once(), direct_once()
                started = time.perf_counter()  # the floor of any call through Gradio: a trivial endpoint
                _call(client, "status")
                transport.append(time.perf_counter() - started)
                app_times.append(a)
                direct_times.append(d)
                first_times.append(f)
                figure.samples.append(a / d)
            figure.best = (min(app_times), min(direct_times))
            app_usage = turn["rounds"][-1]["usage"]
            same = (app_usage["prompt_tokens"], app_usage["completion_tokens"]) == (
                complete.usage.prompt_tokens, complete.usage.completion_tokens)
            extra_ms = 1e3 * (min(app_times) - min(direct_times))
            figure.details = {"app_seconds": app_times, "direct_seconds": direct_times,
                              "direct_first_event_seconds": first_times, "same_tokens": same,
                              "prompt_tokens": complete.usage.prompt_tokens,
                              "completion_tokens": complete.usage.completion_tokens,
                              "answer": turn.get("answer"), "overhead_ms_fastest": extra_ms,
                              "status_round_trip_ms_fastest": 1e3 * min(transport)}
            floor = 1e3 * min(transport)
            figure.notes = [
                f"`python app.py` (tiny model, offline) on 127.0.0.1 via gradio_client's `send`; {QUESTION!r} answered "
                f"in one round ({complete.usage.completion_tokens} tokens, same prompt and token counts as the direct "
                f"call: {same}). Fastest app turn {1e3 * min(app_times):.1f} ms vs direct {1e3 * min(direct_times):.1f} "
                f"ms (+{extra_ms:.0f} ms). The fastest call of the trivial `status` endpoint through the same client "
                f"takes {floor:.1f} ms: the round trip through gradio_client and the Gradio queue is a floor under any "
                f"call, and the turn's own work (session, agent, model, transcript) adds "
                f"{max(0.0, 1e3 * min(app_times) - floor):.0f} ms beyond it. On a model this fast that floor is the "
                "whole ratio; on the 4B model, whose first token takes seconds on CPU, it is a few percent. Time to "
                "first token itself is not exposed by the app's public API (its streaming event is private), so "
                "this whole short turn stands in for it."]
            return [figure]
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
