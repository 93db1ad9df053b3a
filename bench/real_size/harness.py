"""`python -m bench --real-size [--scale real|tiny] [--parts ...]`: the real-size measurements.

1. stand-in: the random-weight Qwen3.5-4B-shaped checkpoint (standin.py), built once and cached;
2. package: `smol-tools package` on it as a child process, sampled from /proc (measure.py): per
   step (cut at the pipeline's own progress lines) wall time, CPU time, peak RSS of the process
   tree, peak disk of the output folder, and the output sizes;
3. per quant (Q4_K_M, Q8_0) and context (4K, 16K, 32K): load time and RSS (fresh process each;
   once per quant a prompt that fills the largest context), prompt (512 tokens) and decode (128)
   rates on 2 threads through llama-bench (the anchor), our in-process backend, llama-server via
   our OpenAI-compatible backend, and the app's `/send` (decode rates from each one's own usage);
4. roofline: this machine's read bandwidth (bandwidth below) ÷ the weight bytes a decoded token
   reads, against the measured decode rate;
5. session: 20 forced tool rounds growing to ~32K tokens (session_child.py).

Every figure in the JSON was measured by this run; a part that was not run or failed is listed
under `not_measured` with the reason, never filled in with an estimate.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from smol_tools.pipeline.measured import context_full_rss

from ..common import ROOT
from .measure import TreeSampler, tree_rss_cpu

REFERENCE = ROOT / "bench" / "reference" / "real-size.json"
PARTS = ("convert-plan", "package", "quick-build", "llama-bench", "in-process", "server", "app", "roofline", "session")
MODEL_NAME = "smol-tools-standin"
SCHEMA = 1
STEP_LINE = re.compile(r"^\[\s*[\d.]+s\]\s+(\S+)\s+(.*)$")  # progress.Progress.step


@dataclass
class Plan:
    scale: str = "real"
    quants: tuple[str, ...] = ("Q4_K_M", "Q8_0")
    contexts: tuple[int, ...] = (4096, 16384, 32768)
    package_quants: tuple[str, ...] = ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "IQ4_XS")
    imatrix_chunks: int = 8
    threads: int = 2
    prompt_tokens: int = 512
    gen_tokens: int = 128
    bench_repetitions: int = 3
    fill: bool = True  # once per quant, a prompt that fills the largest context (half an hour at 32K here)
    rounds: int = 20
    parts: tuple[str, ...] = PARTS
    work: Path = Path()
    out: Path = REFERENCE
    llama_bin: Path | None = None
    bandwidth_mib: int = 1024  # per reader process

    @classmethod
    def for_scale(cls, scale: str, **overrides: Any) -> "Plan":
        if scale == "tiny":  # the harness's own test: seconds per part
            base = dict(contexts=(1024, 2048, 4096), package_quants=("Q8_0", "Q4_K_M"), imatrix_chunks=2,
                        bench_repetitions=1, bandwidth_mib=64)
        else:
            base = {}
        values = {"scale": scale, **base, **{k: v for k, v in overrides.items() if v is not None}}
        if not values.get("work") or values["work"] == Path():
            from smol_tools.llamacpp.source import CACHE_ROOT

            values["work"] = CACHE_ROOT / "real-size" / f"work-{scale}"
        return cls(**values)


@dataclass
class Results:
    data: dict[str, Any] = field(default_factory=dict)
    not_measured: list[str] = field(default_factory=list)
    log: Callable[[str], None] = lambda text: print(text, file=sys.stderr, flush=True)
    # Called after every part: the results file is rewritten as the run goes, so a run stopped
    # part-way (hours at the real size) keeps every figure it measured.
    checkpoint: Callable[[], None] = lambda: None

    def attempt(self, what: str, fn: Callable[[], Any]) -> Any:
        began = time.monotonic()
        self.log(f"[real-size] {what} ...")
        try:
            value = fn()
        except Exception as exc:  # one failed part must not hide the others' figures
            traceback.print_exc()
            self.not_measured.append(f"{what}: {type(exc).__name__}: {str(exc)[:400]}")
            value = None
        self.log(f"[real-size] {what}: {time.monotonic() - began:.1f} s")
        self.checkpoint()
        return value


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        mem = int(Path("/proc/meminfo").read_text().split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_bytes": mem, "platform": platform.platform(),
            "python": platform.python_version(), "load_average_at_start": list(os.getloadavg())}


def _python(*args: str) -> list[str]:
    return [sys.executable, *args]


def _run_json(cmd: list[str], timeout: float) -> dict[str, Any]:
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[1:4])} exited {done.returncode}: {done.stderr[-1500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- 2. the pipeline --------------------------------------------------------------------------------
def run_package(plan: Plan, source: Path) -> dict[str, Any]:
    out = plan.work / "package"
    shutil.rmtree(out, ignore_errors=True)
    cmd = _python("-m", "smol_tools", "package", str(source), "--out", str(out), "--model-name", MODEL_NAME,
                  "--declare-pre", "qwen35", "--quants", ",".join(plan.package_quants),
                  "--imatrix-chunks", str(plan.imatrix_chunks), "--threads", str(plan.threads),
                  "--verify-threads", str(plan.threads))
    started = time.monotonic()
    process = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "HF_HUB_OFFLINE": "1"})
    lines: list[tuple[float, str]] = []
    with TreeSampler(process.pid, folders=[out]) as sampler:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append((time.monotonic() - sampler.started, line.rstrip()))
        process.wait()
        sampler.sample()
    wall = time.monotonic() - started
    steps, previous = [], 0.0
    for at, line in lines:
        match = STEP_LINE.match(line)
        if not match:
            continue
        steps.append({"step": match[1], "detail": match[2][:200], "wall_s": round(at - previous, 2),
                      **sampler.window(previous, at)})
        previous = at
    files = {p.name: p.stat().st_size for p in sorted(out.glob("*.gguf"))} if out.exists() else {}
    result = {"command": " ".join(["smol-tools", *cmd[3:]]), "exit_status": process.returncode,
              "wall_s": round(wall, 1), "cpu_s": round(max((s.cpu for s in sampler.samples), default=0), 1),
              "peak_rss_mib": round(sampler.peak_rss / 2**20, 1), "peak_disk_bytes": sampler.peak_disk,
              "steps": steps, "files": files, "log_tail": [line for _, line in lines[-15:]]}
    if process.returncode != 0:
        raise RuntimeError(f"smol-tools package exited {process.returncode}: {result['log_tail']}")
    return result


def convert_plan(source: Path) -> dict[str, Any]:
    """llama.cpp's converter on the checkpoint with `--dry-run`: it maps every tensor name and shape
    (vocabulary padding, tied output, MTP block) and plans the file without writing it. Seconds of
    CPU at the real size: the check that the converter accepts this shape, before hours of work."""
    from smol_tools.llamacpp.source import llama_cpp_dir
    from smol_tools.pipeline.convert import checkpoint_has_mtp  # the converter asserts without --no-mtp

    source_dir = llama_cpp_dir()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = _python("-m", "smol_tools.pipeline.convert_entry", "--llama-cpp-dir", str(source_dir),
                      "--declare-pre", "qwen35", "--", str(source), "--outfile", str(Path(tmp) / "plan.gguf"),
                      "--outtype", "bf16", "--dry-run", *([] if checkpoint_has_mtp(source) else ["--no-mtp"]))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(source_dir), str(source_dir / "gguf-py"),
                                                            os.environ.get("PYTHONPATH", "")])}
        started = time.monotonic()
        process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        with TreeSampler(process.pid) as sampler:
            log, _ = process.communicate()
            sampler.sample()
    if process.returncode != 0:
        raise RuntimeError(f"the converter's dry run failed: {log[-1500:]}")
    planned = re.search(r"n_tensors = (\d+), total_size = (\S+)", log)
    embedding = re.search(r"token_embd\.weight,\s+\S+ --> (\S+), shape = \{([^}]*)\}", log)
    return {"wall_s": round(time.monotonic() - started, 1), "cpu_s": round(sampler.samples[-1].cpu, 1),
            "peak_rss_mib": round(sampler.peak_rss / 2**20, 1),
            "n_tensors": int(planned[1]) if planned else None, "total_size": planned[2] if planned else None,
            "token_embd": f"{embedding[1]} {{{embedding[2]}}}" if embedding else None,
            "output_tensor": re.search(r"hf-to-gguf:output\.weight,", log) is not None, "nextn_tensors": log.count(".nextn."),
            "command": "convert_hf_to_gguf.py SOURCE --outtype bf16 --dry-run (via smol_tools.pipeline.convert_entry)"}


QUICK_BUILD_CHILD = """
import sys
from pathlib import Path
from smol_tools.pipeline.convert import convert_to_gguf
from smol_tools.pipeline.llama_quantize import quantize_with_program
source, folder, name, threads = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
bf16 = folder / f"{name}-bf16.gguf"
convert_to_gguf(source, bf16, outtype="bf16", declare_pre="qwen35")
print("STEP convert", bf16.name, flush=True)
for quant in sys.argv[5:]:
    out = folder / f"{name}-{quant.lower()}.gguf"
    quantize_with_program(bf16, out, quant, threads=threads)
    print("STEP quantize", out.name, flush=True)
"""


def run_quick_build(plan: Plan, source: Path) -> dict[str, Any]:
    """Only what the runtimes need, when the whole package run does not fit: the pipeline's own
    conversion to BF16 and llama-quantize for `plan.quants` (no imatrix, no verification, card or
    memory check), timed and sampled per step like `package`."""
    out = plan.work / "package"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    cmd = _python("-c", QUICK_BUILD_CHILD, str(source), str(out), MODEL_NAME, str(plan.threads), *plan.quants)
    started = time.monotonic()
    process = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[tuple[float, str]] = []
    with TreeSampler(process.pid, folders=[out]) as sampler:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append((time.monotonic() - sampler.started, line.rstrip()))
        process.wait()
        sampler.sample()
    if process.returncode != 0:
        raise RuntimeError(f"quick build exited {process.returncode}: {[l for _, l in lines[-10:]]}")
    steps, previous = [], 0.0
    for at, line in lines:
        if line.startswith("STEP "):
            _, step, name = line.split(" ", 2)
            steps.append({"step": step, "file": name, "size_bytes": (out / name).stat().st_size,
                          "wall_s": round(at - previous, 2), **sampler.window(previous, at)})
            previous = at
    return {"wall_s": round(time.monotonic() - started, 1), "peak_rss_mib": round(sampler.peak_rss / 2**20, 1),
            "peak_disk_bytes": sampler.peak_disk, "steps": steps,
            "note": "convert_to_gguf (bf16) + llama-quantize per quant, without imatrix: not the package run"}


def quant_file(plan: Plan, quant: str) -> Path:
    path = plan.work / "package" / f"{MODEL_NAME}-{quant.lower()}.gguf"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run the package part first")
    return path


# -- 3. runtimes ------------------------------------------------------------------------------------
def _messages_for(gguf: Path, target: int) -> list[dict[str, Any]]:
    """The in-process child's prompt, rebuilt here for the server and the app: same template,
    same tokenizer (read from the GGUF without its weights)."""
    import llama_cpp

    from smol_tools.chat_format import render_prompt

    from .prompts import filler_messages

    vocab = llama_cpp.Llama(model_path=str(gguf), vocab_only=True, verbose=False)

    def count(messages) -> int:
        return len(vocab.tokenize(render_prompt(messages, None, enable_thinking=False).encode(), add_bos=False,
                                  special=True))
    return filler_messages(count, target)


def run_server(plan: Plan, gguf: Path, ctx: int) -> dict[str, Any]:
    from smol_tools.backends.base import SamplingParams
    from smol_tools.events import TurnComplete
    from smol_tools.backends.openai_compat import OpenAICompatBackend
    from smol_tools.llamacpp.server import LlamaServer

    messages = _messages_for(gguf, plan.prompt_tokens)
    started = time.monotonic()
    server = LlamaServer(gguf, ctx_size=ctx, threads=plan.threads)
    server.start(timeout=1800)  # a 4B file on a busy 2-core machine can take minutes
    try:
        load = time.monotonic() - started
        rss_load = tree_rss_cpu(server.process.pid)[0]
        backend = OpenAICompatBackend(server.base_url, context_length=ctx, timeout_s=3600)
        complete = None
        for event in backend.stream_turn(messages, None, sampling=SamplingParams.greedy(max_tokens=plan.gen_tokens),
                                         enable_thinking=False):
            if isinstance(event, TurnComplete):
                complete = event
        usage = complete.usage
        rss_turn = tree_rss_cpu(server.process.pid)[0]
    finally:
        server.stop()
    return {"load_s": round(load, 3), "rss_after_load_mib": round(rss_load / 2**20, 1),
            "rss_after_turn_mib": round(rss_turn / 2**20, 1), "prompt_tokens_evaluated": usage.prompt_tokens_evaluated,
            "pp_tokens_per_s": round(usage.prompt_tokens_evaluated / usage.prompt_seconds, 3) if usage.prompt_seconds else None,
            "completion_tokens": usage.completion_tokens,
            "tg_tokens_per_s": round(usage.tokens_per_second, 3), "source": "llama-server timings (prompt_ms, predicted_ms)"}


def run_app(plan: Plan, gguf: Path, ctx: int, budget_s: float, greedy: bool = False) -> dict[str, Any]:
    """`python app.py` on this GGUF, one `/send`; stopped through `/stop` after `budget_s` when
    the random model would otherwise write up to the default 2048 tokens. The app samples with
    the shipped defaults unless `greedy` (its "greedy" switch, /set_options)."""
    import socket
    import urllib.request

    from gradio_client import Client

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False",
           "SMOL_TOOLS_LOG": "WARNING", "SMOL_TOOLS_MODEL": str(gguf), "SMOL_TOOLS_N_CTX": str(ctx),
           "SMOL_TOOLS_FALLBACK_TINY": "0"}
    env.pop("GRADIO_SERVER_NAME", None)
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "app.log"
        process = subprocess.Popen(_python("app.py"), cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 600
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"app.py did not start: {log.read_text(errors='replace')[-800:]}")
                try:
                    with urllib.request.urlopen(f"{url}/gradio_api/info", timeout=2):
                        break
                except OSError:
                    time.sleep(0.5)
            client = Client(url, verbose=False, download_files=False)
            # A short message: the app's own prompt (its tools in the system turn) is most of it,
            # and the agent reserves max_tokens (2048) of the context for the answer.
            # No tools: with the stand-in's tiny tokenizer the default tools' schemas alone are ~3,100
            # tokens, which with the 2,048 the agent reserves for the answer overflow a 4K context.
            # The decode rate does not depend on what the prompt says.
            problems = json.loads(client.predict([], "", False, api_name="/set_tools")).get("problems")
            if problems:
                raise RuntimeError(f"set_tools: {problems}")
            if greedy:
                client.predict(True, True, 10, api_name="/set_options")  # thinking as by default, greedy on
            job = client.submit(APP_MESSAGE, api_name="/send")
            stop_at = time.monotonic() + budget_s
            while not job.done() and time.monotonic() < stop_at:
                time.sleep(0.2)
            stopped = False
            if not job.done():
                stopped = bool(client.predict(api_name="/stop"))
            turn = json.loads(job.result(timeout=600))
            rss = tree_rss_cpu(process.pid)[0]
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
    if not turn.get("rounds"):
        raise RuntimeError(f"the app's turn has no round: {json.dumps(turn)[:600]}")
    usage = turn["rounds"][-1]["usage"]
    gen_s, prompt_s = usage.get("generation_seconds") or 0, usage.get("prompt_seconds") or 0
    if not str(gguf.name) in json.dumps(turn.get("backend", "")) and gguf.stem not in str(turn.get("backend")):
        raise RuntimeError(f"the app answered with {turn.get('backend')!r}, not {gguf.name}")
    return {"backend": turn.get("backend"), "prompt_tokens": usage.get("prompt_tokens"),
            "prompt_tokens_evaluated": usage.get("prompt_tokens_evaluated"),
            "pp_tokens_per_s": round(usage["prompt_tokens_evaluated"] / prompt_s, 3) if prompt_s else None,
            "completion_tokens": usage.get("completion_tokens"),
            "tg_tokens_per_s": round(usage["completion_tokens"] / gen_s, 3) if gen_s else None,
            "stopped_via_stop_endpoint": stopped, "rss_after_turn_mib": round(rss / 2**20, 1),
            "sampling": "greedy" if greedy else "default",
            "note": f"the app's own prompt with no tools enabled (set_tools []) and {APP_MESSAGE!r}; "
                    "rates from the turn's usage (tokens ÷ seconds)"}


# -- 4. roofline ------------------------------------------------------------------------------------
APP_MESSAGE = "Say hello in French."
BANDWIDTH_CHILD = """
import json, sys, time, numpy as np
a = np.ones(int(sys.argv[1]) * 2**20 // 8)
a.sum()  # pages in
best = min((lambda t: (a.sum(), time.perf_counter() - t)[1])(time.perf_counter()) for _ in range(int(sys.argv[2])))
print(json.dumps({"bytes": a.nbytes, "seconds": best}))
"""


def measure_bandwidth(plan: Plan, trials: int = 3) -> dict[str, Any]:
    """Read bandwidth with `threads` concurrent readers: each process sums its own array of
    `bandwidth_mib` MiB (far beyond the caches) with numpy, best of 5 passes; the machine's figure is
    the sum of the readers' bytes ÷ seconds, best of `trials` launches."""
    best, runs = 0.0, []
    for _ in range(trials):
        procs = [subprocess.Popen(_python("-c", BANDWIDTH_CHILD, str(plan.bandwidth_mib), "5"), stdout=subprocess.PIPE,
                                  text=True) for _ in range(plan.threads)]
        outs = [json.loads(p.communicate()[0]) for p in procs]
        rate = sum(o["bytes"] / o["seconds"] for o in outs)
        runs.append(round(rate / 1e9, 3))
        best = max(best, rate)
    return {"gb_per_s": round(best / 1e9, 3), "trials_gb_per_s": runs, "readers": plan.threads,
            "mib_per_reader": plan.bandwidth_mib,
            "method": f"{plan.threads} processes at once, each numpy-summing its own {plan.bandwidth_mib} MiB "
                      "float64 array (best of 5 passes); bandwidth = sum of bytes/second over the readers, "
                      f"best of {trials} launches"}


def roofline_tokens_per_s(bandwidth: dict[str, Any], weight_bytes_per_token: int) -> float:
    """The decode rate the measured read bandwidth allows when every token reads the weights once."""
    return round(bandwidth["gb_per_s"] * 1e9 / weight_bytes_per_token, 3)


def weight_bytes_per_token(gguf: Path) -> int:
    """Bytes of weights one decoded token reads: every tensor but the MTP layers; with an untied
    output matrix the token embedding is only looked up (one row), so it does not count."""
    from smol_tools.gguf_header import read_header
    from smol_tools.pipeline.memory import read_shape

    shape = read_shape(gguf)
    names = {t.name: t.n_bytes for t in read_header(gguf).tensors}
    embedding = names.get("token_embd.weight", 0) if "output.weight" in names else 0
    return shape.weights_bytes - embedding


# -- the run ----------------------------------------------------------------------------------------
def run(plan: Plan) -> dict[str, Any]:
    from smol_tools.pipeline.measured import shape_key
    from smol_tools.pipeline.memory import estimate, read_shape

    from .config import SOURCES
    from .standin import ensure_standin

    results = Results()

    def checkpoint() -> None:  # the figures so far; `in_progress` until the run ends
        if plan.out:
            write({**report, "in_progress": True, "not_measured": list(results.not_measured)}, plan.out)
    plan.work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "schema": SCHEMA, "scale": plan.scale,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine(),
        "commands": [" ".join(["python -m bench --real-size", *sys.argv[2:]]) if sys.argv[1:2] == ["--real-size"]
                     else "python -m bench --real-size"],
        "plan": {"quants": plan.quants, "contexts": plan.contexts, "threads": plan.threads,
                 "prompt_tokens": plan.prompt_tokens, "gen_tokens": plan.gen_tokens, "parts": plan.parts,
                 "package_quants": plan.package_quants, "imatrix_chunks": plan.imatrix_chunks,
                 "bench_repetitions": plan.bench_repetitions, "fill": plan.fill},
        "config_sources": list(SOURCES)}
    results.checkpoint = checkpoint
    standin = ensure_standin(plan.scale, log=results.log)
    report["standin"] = {"path": str(standin.path), "n_params": standin.n_params, "size_bytes": standin.size_bytes,
                         "build": standin.build,
                         "config": {k: standin.config[k] for k in ("hidden_size", "intermediate_size",
                                                                   "num_hidden_layers", "vocab_size",
                                                                   "tie_word_embeddings", "mtp_num_hidden_layers")},
                         "tokenizer": "the tiny model's (708 tokens), padded to vocab_size by llama.cpp's converter"}
    if "convert-plan" in plan.parts:
        report["convert_plan"] = results.attempt("convert-plan", lambda: convert_plan(standin.path))
    if "package" in plan.parts:
        report["package"] = results.attempt("package", lambda: run_package(plan, standin.path))
    elif "quick-build" in plan.parts:
        report["quick_build"] = results.attempt("quick-build", lambda: run_quick_build(plan, standin.path))
    bandwidth = results.attempt("bandwidth", lambda: measure_bandwidth(plan)) if "roofline" in plan.parts else None
    report["bandwidth"] = bandwidth
    bench_program = None
    if "llama-bench" in plan.parts:
        from .llama_bench import ensure_llama_bench

        bench_program = results.attempt("llama-bench build", lambda: ensure_llama_bench(plan.llama_bin, log=results.log))
    runtimes: dict[str, Any] = {}
    report["runtimes"] = runtimes  # filled in place, so every checkpoint carries what is measured
    for quant in plan.quants if set(plan.parts) & {"llama-bench", "in-process", "server", "app", "roofline"} else ():
        try:
            gguf = quant_file(plan, quant)
        except FileNotFoundError as exc:
            results.not_measured.append(f"{quant}: {exc}")
            continue
        shape = read_shape(gguf)
        report.setdefault("shape_key", shape_key(gguf))  # the card prints this run for models of this shape
        entry: dict[str, Any] = {"file": gguf.name, "size_bytes": gguf.stat().st_size,
                                 "weights_bytes": shape.weights_bytes, "contexts": {}}
        runtimes[quant] = entry
        per_token = weight_bytes_per_token(gguf)  # kept without a bandwidth: a later --merge may bring one
        entry["roofline"] = {"weight_bytes_per_token": per_token}
        if bandwidth:
            entry["roofline"]["roofline_tokens_per_s"] = roofline_tokens_per_s(bandwidth, per_token)
        if bench_program:
            from .llama_bench import run_llama_bench

            entry["llama_bench"] = results.attempt(
                f"{quant} llama-bench", lambda: run_llama_bench(bench_program, gguf, plan.threads, plan.prompt_tokens,
                                                                plan.gen_tokens, plan.bench_repetitions))
        for ctx in plan.contexts:
            row: dict[str, Any] = {"computed_total_mib": round(estimate(shape, ctx).total / 2**20, 1)}
            entry["contexts"][str(ctx)] = row
            fill = plan.fill and ctx == max(plan.contexts)
            if "in-process" in plan.parts:
                cmd = _python("-m", "bench.real_size.inprocess_child", str(gguf), "--ctx", str(ctx),
                              "--threads", str(plan.threads), "--prompt-tokens", str(plan.prompt_tokens),
                              "--gen", str(plan.gen_tokens), *(["--fill"] if fill else []))
                row["in_process"] = results.attempt(f"{quant} @ {ctx} in process", lambda: _run_json(cmd, 4 * 3600))
            if "server" in plan.parts:
                row["llama_server"] = results.attempt(f"{quant} @ {ctx} llama-server", lambda: run_server(plan, gguf, ctx))
            if "app" in plan.parts:
                tg = ((row.get("in_process") or {}).get("tg_tokens_per_s") or 1.0)
                pp = ((row.get("in_process") or {}).get("pp_tokens_per_s") or 1.0)
                budget = 10 + 100 / pp + 1.5 * plan.gen_tokens / tg  # then /stop: see run_app
                row["app"] = results.attempt(f"{quant} @ {ctx} app /send", lambda: run_app(plan, gguf, ctx, budget))
            entry["ratios"] = ratios(entry)
        entry["ratios"] = ratios(entry)
    if "session" in plan.parts and plan.quants:
        try:
            gguf = quant_file(plan, plan.quants[0])
            cmd = _python("-m", "bench.real_size.session_child", str(gguf), "--ctx", str(max(plan.contexts)),
                          "--threads", str(plan.threads), "--rounds", str(plan.rounds))
            report["session"] = results.attempt(f"session ({plan.quants[0]})", lambda: {
                "file": gguf.name, **_run_json(cmd, 6 * 3600)})
        except FileNotFoundError as exc:
            results.not_measured.append(f"session: {exc}")
    link_session_fill(report)
    report["machine"]["load_average_at_end"] = list(os.getloadavg())
    for part in PARTS:
        if part == "quick-build" and "package" in plan.parts:
            continue  # a stand-in for the package run, not a measurement of its own
        if part not in plan.parts:
            results.not_measured.append(f"{part}: not run (not in --parts)")
    report["not_measured"] = results.not_measured
    return report


def link_session_fill(report: dict[str, Any]) -> None:
    """The 20-round session grows to ~95 % of the largest context in process: for its quant that is
    a filled context too, so its end RSS stands in the table where no separate fill ran."""
    session = report.get("session") or {}
    for entry in (report.get("runtimes") or {}).values():
        if entry.get("file") != session.get("file") or not session.get("rss_at_end"):
            continue
        ctx = int(session.get("ctx") or 0)
        row = (entry.get("contexts") or {}).get(str(ctx))
        if row is None or (row.get("in_process") or {}).get("rss_after_fill_mib"):
            continue
        if session.get("tokens_held_at_end", 0) >= 0.85 * ctx:  # the session aims at 95 %; its tokenizer lands near 90
            row["context_full"] = {**session["rss_at_end"], "tokens": session["tokens_held_at_end"],
                                   "source": "the 20-round session's end (session_child.py), in process"}
        entry["ratios"] = ratios(entry)


def ratios(entry: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, from figures measured above (absent when a side is missing)."""
    out: dict[str, Any] = {}
    anchor = (entry.get("llama_bench") or {}).get("tg_tokens_per_s")
    roof = (entry.get("roofline") or {}).get("roofline_tokens_per_s")
    for ctx, row in entry["contexts"].items():
        got: dict[str, Any] = {}
        for side in ("in_process", "llama_server", "app"):
            tg = (row.get(side) or {}).get("tg_tokens_per_s")
            if tg and anchor:
                got[f"{side}_tg_over_llama_bench"] = round(tg / anchor, 3)
            if tg and roof and side == "in_process":
                got["in_process_tg_over_roofline"] = round(tg / roof, 3)
        rss = context_full_rss(row) or (row.get("in_process") or {}).get("rss_after_turn_mib")
        if rss:
            got["computed_total_over_rss"] = round(row["computed_total_mib"] / rss, 3)
        out[ctx] = got
    if anchor and roof:
        out["llama_bench_tg_over_roofline"] = round(anchor / roof, 3)
    return out


def write(report: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(report, indent=1, default=str) + "\n")
    partial.rename(path)
    return path


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench --real-size", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=("real", "tiny"), default="real")
    parser.add_argument("--parts", nargs="*", choices=PARTS, default=None,
                        help=f"what to run (default: all of {', '.join(PARTS)}; none: only build the stand-in)")
    parser.add_argument("--quants", default=None, help="comma-separated (default Q4_K_M,Q8_0)")
    parser.add_argument("--package-quants", default=None,
                        help="comma-separated types the package step builds (default: the five-quant ladder)")
    parser.add_argument("--contexts", default=None, help="comma-separated token counts")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--imatrix-chunks", type=int, default=None)
    parser.add_argument("--bench-repetitions", type=int, default=None, help="llama-bench -r (default 3)")
    parser.add_argument("--no-fill", dest="fill", action="store_false",
                        help="skip the prompt that fills the largest context (a later sitting can run it)")
    parser.add_argument("--llama-bin", type=Path, default=None, help="folder with your own llama-bench (CUDA, Metal)")
    parser.add_argument("--work", type=Path, default=None, help="where the package outputs go")
    parser.add_argument("--out", type=Path, default=None,
                        help="results JSON (default: bench/reference/real-size.json at real scale, "
                             "bench/results/real-size-tiny.json at tiny scale)")
    parser.add_argument("--merge", type=Path, nargs="+", default=None, metavar="RESULTS",
                        help="fold these runs' results files into --out (default: the reference) and stop; "
                             "later runs win figure by figure (bench/real_size/merge.py)")
    args = parser.parse_args(argv)
    from ..common import RESULTS

    if args.merge:
        from .merge import merge_reports, recompute_tables

        out = args.out or REFERENCE
        merged = merge_reports([json.loads(Path(p).read_text()) for p in args.merge])
        # the memory table may have changed since a run: compare with today's where the files are
        work = args.work or Plan.for_scale(args.scale).work
        recomputed = recompute_tables(merged, work / "package")
        if recomputed:
            print(f"computed totals from today's memory table for {', '.join(recomputed)}", file=sys.stderr)
        print(f"written: {write(merged, out)} ({len(merged['not_measured'])} figures still missing)", file=sys.stderr)
        return 0

    plan = Plan.for_scale(
        args.scale, parts=tuple(args.parts) if args.parts is not None else None,
        quants=tuple(q.strip().upper() for q in args.quants.split(",")) if args.quants else None,
        contexts=tuple(int(c) for c in args.contexts.split(",")) if args.contexts else None,
        package_quants=tuple(q.strip().upper() for q in args.package_quants.split(",")) if args.package_quants else None,
        threads=args.threads, imatrix_chunks=args.imatrix_chunks, llama_bin=args.llama_bin, work=args.work,
        bench_repetitions=args.bench_repetitions, fill=args.fill,
        out=args.out or (REFERENCE if args.scale == "real" else RESULTS / "real-size-tiny.json"))
    report = run(plan)
    print(f"written: {write(report, plan.out)}", file=sys.stderr)
    return 0
