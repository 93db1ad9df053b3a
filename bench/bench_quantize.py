"""Benchmark the pipeline's quantize step against llama.cpp's quantizer called directly.

Three ways to quantize the same BF16 GGUF to the same type, interleaved, repeated:

  pipeline  smol_tools.pipeline.llama_quantize.quantize_with_program (what `smol-tools package`
            runs: llama-quantize as a child, atomic .partial + fsync + rename, log capture and
            fallback parsing), timed in this process around the call;
  direct    the llama-quantize program started by hand, exactly as a user would;
  api       llama-cpp-python's `llama_model_quantize` (smol_tools.pipeline.quantize.quantize_gguf),
            in a fresh Python process, timed inside it around the call.

Wall time and peak RSS (getrusage ru_maxrss of the process that did the quantizing; for `api`
that includes the Python interpreter and llama_cpp import, reported separately as a baseline).
Median and spread (min-max, stdev) per variant; results as JSON + markdown in bench/results/.

The default input is a randomly initialised Qwen3.5 (same architecture as smol-tools-4b-32k:
linear + full attention layers, 12 of them at hidden size 1024, with a 151,936-row vocabulary;
~500M parameters, 1 GB BF16) built once and cached, so the timings are long enough to compare
and the largest tensors are of the 4B model's order; `--input FILE.gguf` benchmarks any GGUF (e.g. the real BF16).

    .venv/bin/python -m bench.bench_quantize [--input F] [--quants Q8_0,Q4_K_M] [--repeats 5] [--results-dir D]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
from smol_tools.llamacpp.source import CACHE_ROOT, llama_cpp_python_version
from smol_tools.pipeline.state import sha256_file

RESULTS = ROOT / "bench" / "results"
# The vocabulary of llama.cpp's qwen35 reference vocab (models/ggml-vocab-qwen35.gguf): the
# embedding and output matrices, the quantizer's largest tensors on the 4B model too, get a
# realistic row count (the tiny tokenizer is padded by the converter).
BENCH_VOCAB = 151936
BENCH_DIMS = dict(hidden_size=1024, intermediate_size=3072, num_hidden_layers=12,
                  num_attention_heads=8, num_key_value_heads=2, head_dim=128,
                  linear_num_key_heads=8, linear_key_head_dim=128, linear_num_value_heads=8,
                  linear_value_head_dim=128)

# Children time themselves around the call only: interpreter start-up and the one-time
# llama_cpp import are not part of a quantize step inside a running pipeline.
_CLOCKS = """
import json, resource, sys, time
def clocks():
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.monotonic(), a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime
"""
API_CHILD = _CLOCKS + """
from pathlib import Path
import llama_cpp
from smol_tools.pipeline.quantize import quantize_gguf
src, out, quant, threads = sys.argv[1:5]
wall, cpu = clocks()
if quant != "-":
    quantize_gguf(Path(src), Path(out), quant, threads=int(threads))
wall2, cpu2 = clocks()
print(json.dumps({"seconds": wall2 - wall, "cpu": cpu2 - cpu}))
"""
PIPELINE_CHILD = _CLOCKS + """
from pathlib import Path
from smol_tools.pipeline.llama_quantize import quantize_with_program
from smol_tools.pipeline.quantize import quant_types
src, out, quant, threads, log = sys.argv[1:6]
quant_types()  # the llama_cpp import a running pipeline has already paid
wall, cpu = clocks()
if quant != "-":
    quantize_with_program(Path(src), Path(out), quant, threads=int(threads), log_path=Path(log))
wall2, cpu2 = clocks()
print(json.dumps({"seconds": wall2 - wall, "cpu": cpu2 - cpu}))
"""
TIME = Path("/usr/bin/time")


def measure(cmd: list[str]) -> tuple[float, int, float, str]:
    """(wall seconds seen from here, peak RSS KiB of the process tree, CPU seconds, stdout).

    Peak RSS comes from GNU time (%M: ru_maxrss of its child and that child's descendants).
    Measuring from this Python process would be wrong: ru_maxrss survives fork+exec, so a
    child inherits the high-water mark of whatever started it."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        full = [str(TIME), "-f", "%M %U %S", "-o", rss.name, *cmd] if TIME.exists() else cmd
        started = time.monotonic()
        done = subprocess.run(full, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
        seconds = time.monotonic() - started
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:3])} ... failed with exit {done.returncode}")
        fields = (rss.read().strip().splitlines() or ["0 0 0"])[-1].split()
    return seconds, int(fields[0]), float(fields[1]) + float(fields[2]), done.stdout


def bench_model() -> Path:
    """A random-weight Qwen3.5 checkpoint converted to BF16 GGUF, cached by its dimensions."""
    from smol_tools.pipeline.convert import convert_to_gguf

    key = "-".join(f"{v}" for v in [*BENCH_DIMS.values(), BENCH_VOCAB])
    folder = CACHE_ROOT / "bench" / f"qwen35-random-{key}"
    gguf = folder / "bench-bf16.gguf"
    if gguf.exists():
        return gguf
    import shutil

    import torch
    from transformers.models.qwen3_5 import Qwen3_5ForCausalLM, Qwen3_5TextConfig

    from devkit.tiny_model import ensure_tiny_model

    tiny = ensure_tiny_model().path  # its tokenizer: the converter needs a real one
    checkpoint = folder / "checkpoint"
    checkpoint.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (tiny / name).exists():
            shutil.copy2(tiny / name, checkpoint / name)
    tiny_config = json.loads((tiny / "config.json").read_text())
    n = BENCH_DIMS["num_hidden_layers"]
    config = Qwen3_5TextConfig(
        vocab_size=BENCH_VOCAB, max_position_embeddings=32768,
        layer_types=["full_attention" if (i + 1) % 4 == 0 else "linear_attention" for i in range(n)],
        linear_conv_kernel_dim=4, rope_parameters=tiny_config["rope_parameters"],
        tie_word_embeddings=False, eos_token_id=tiny_config["eos_token_id"],
        pad_token_id=tiny_config["pad_token_id"], bos_token_id=None,
        architectures=["Qwen3_5ForCausalLM"], **BENCH_DIMS)
    torch.manual_seed(0)
    model = Qwen3_5ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(checkpoint, safe_serialization=True)
    convert_to_gguf(checkpoint, gguf, outtype="bf16", declare_pre="qwen35")
    shutil.rmtree(checkpoint)
    return gguf


def run_direct(program: Path, src: Path, out: Path, quant: str, threads: int) -> tuple[float, int, float]:
    seconds, rss, cpu, _ = measure([str(program), str(src), str(out), quant, str(threads)])
    return seconds, rss, cpu


def run_pipeline(src: Path, out: Path, quant: str, threads: int, log: Path) -> tuple[float, int, float]:
    _, rss, _, stdout = measure([sys.executable, "-c", PIPELINE_CHILD, str(src), str(out), quant,
                                 str(threads), str(log)])
    inside = json.loads(stdout)
    return inside["seconds"], rss, inside["cpu"]


def run_api(src: Path, out: Path, quant: str, threads: int) -> tuple[float, int, float]:
    _, rss, _, stdout = measure([sys.executable, "-c", API_CHILD, str(src), str(out), quant, str(threads)])
    inside = json.loads(stdout)
    return inside["seconds"], rss, inside["cpu"]


def stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "stdev": statistics.stdev(values) if len(values) > 1 else 0.0, "n": len(values)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", type=Path, default=None, help="BF16/F16 GGUF (default: bench model)")
    parser.add_argument("--quants", default="Q8_0,Q4_K_M")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--build-model", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--results-dir", type=Path, default=RESULTS,
                        help="where quantize-latest.{json,md} go (default: bench/results/)")
    args = parser.parse_args(argv)
    if args.build_model:
        print(bench_model())
        return 0

    from smol_tools.llamacpp.build import ensure_llama_programs

    program = ensure_llama_programs() / "llama-quantize"
    if args.input is None:
        # Build in a child: a parent that imported torch would hand its RSS high-water mark to
        # every program it starts (ru_maxrss survives fork+exec), spoiling the RSS figures.
        built = subprocess.run([sys.executable, "-m", "bench.bench_quantize", "--build-model"], check=True, cwd=ROOT,
                               capture_output=True, text=True)
        args.input = Path(built.stdout.strip().splitlines()[-1])
    src = args.input.resolve()
    quants = [q.strip().upper() for q in args.quants.split(",") if q.strip()]
    load_at_start = os.getloadavg()[0]
    print(f"input {src} ({src.stat().st_size / 2**20:.0f} MiB), {args.repeats} repeats, "
          f"{args.threads} threads, load average {os.getloadavg()[0]:.2f}", flush=True)
    _, api_baseline_rss, _ = run_api(src, src, "-", args.threads)  # interpreter + llama_cpp import
    _, pipeline_baseline_rss, _ = run_pipeline(src, src, "-", args.threads, Path(os.devnull))
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(dir=CACHE_ROOT) as tmp:
        work = Path(tmp)
        for quant in quants:
            runs: dict[str, dict[str, list]] = {v: {"seconds": [], "rss_kib": [], "cpu": []}
                                                for v in ("pipeline", "direct", "api")}
            hashes: dict[str, str] = {}
            run_direct(program, src, work / "warm.gguf", quant, args.threads)  # warm the page cache
            for i in range(args.repeats):
                # Rotate the order so drift in machine load does not favour one variant.
                order = ["pipeline", "direct", "api"][i % 3:] + ["pipeline", "direct", "api"][:i % 3]
                for variant in order:
                    out = work / f"{variant}-{quant}.gguf"
                    # Each variant starts with no dirty pages of another's output to write back.
                    os.sync()
                    if variant == "pipeline":
                        seconds, rss, cpu = run_pipeline(src, out, quant, args.threads, work / "log.txt")
                    elif variant == "direct":
                        seconds, rss, cpu = run_direct(program, src, out, quant, args.threads)
                    else:
                        seconds, rss, cpu = run_api(src, out, quant, args.threads)
                    runs[variant]["seconds"].append(seconds)
                    runs[variant]["rss_kib"].append(rss)
                    runs[variant]["cpu"].append(cpu)
                    hashes[variant] = sha256_file(out)
                    out.unlink()
                print(f"  {quant} repeat {i + 1}/{args.repeats}: " + ", ".join(
                    f"{v} {runs[v]['seconds'][-1]:.2f}s" for v in ("pipeline", "direct", "api")), flush=True)
            summary = {v: {"seconds": stats(r["seconds"]), "cpu_seconds": stats(r["cpu"]),
                           "peak_rss_mib": stats([k / 1024 for k in r["rss_kib"]]),
                           "raw_seconds": r["seconds"], "raw_cpu": r["cpu"]} for v, r in runs.items()}
            for other in ("pipeline", "api"):
                for measure_name, key in (("seconds", "pct"), ("cpu_seconds", "cpu_pct")):
                    base = summary["direct"][measure_name]
                    mine = summary[other][measure_name]
                    summary[f"{other}_vs_direct_{key}"] = 100 * (mine["median"] / base["median"] - 1)
                    summary[f"{other}_vs_direct_{key}_best"] = 100 * (mine["min"] / base["min"] - 1)
            summary["outputs_identical"] = {"pipeline_vs_direct": hashes["pipeline"] == hashes["direct"],
                                            "api_vs_direct": hashes["api"] == hashes["direct"]}
            results[quant] = summary
    report = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "input": str(src), "input_bytes": src.stat().st_size, "repeats": args.repeats,
        "threads": args.threads, "cpu_count": os.cpu_count(), "machine": platform.machine(),
        "load_average": load_at_start,
        "llama_cpp_python": llama_cpp_python_version(),
        "api_baseline_rss_mib": api_baseline_rss / 1024,
        "pipeline_baseline_rss_mib": pipeline_baseline_rss / 1024, "rss_by_gnu_time": TIME.exists(),
        "results": results,
    }
    md = to_markdown(report)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / ".gitignore").write_text("*\n")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for name in (f"quantize-{stamp}", "quantize-latest"):
        (args.results_dir / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
        (args.results_dir / f"{name}.md").write_text(md)
    print(md)
    print(f"written: {args.results_dir / f'quantize-{stamp}.json'} and .md")
    return 0


def to_markdown(report: dict) -> str:
    lines = [f"# Quantize benchmark ({report['date']})", "",
             f"Input `{Path(report['input']).name}` ({report['input_bytes'] / 2**20:.0f} MiB), "
             f"{report['repeats']} repeats, {report['threads']} thread(s) on {report['cpu_count']} CPUs, "
             f"llama-cpp-python {report['llama_cpp_python']}, load average {report['load_average']:.1f} "
             "at the start. Wall and CPU time: median [min-max] (stdev); vs direct: median "
             "(best of N); peak RSS: median.", "",
             "| type | variant | wall s | vs direct | CPU s | vs direct | peak RSS MiB |",
             "|---|---|---|---|---|---|---|"]

    def cell(v: dict) -> str:
        return f"{v['median']:.3f} [{v['min']:.3f}-{v['max']:.3f}] ({v['stdev']:.3f})"

    for quant, r in report["results"].items():
        for variant in ("pipeline", "direct", "api"):
            v = r[variant]
            rel = rel_cpu = "-"
            if variant != "direct":
                rel = f"{r[f'{variant}_vs_direct_pct']:+.1f} % ({r[f'{variant}_vs_direct_pct_best']:+.1f} %)"
                rel_cpu = (f"{r[f'{variant}_vs_direct_cpu_pct']:+.1f} % "
                           f"({r[f'{variant}_vs_direct_cpu_pct_best']:+.1f} %)")
            lines.append(f"| {quant} | {variant} | {cell(v['seconds'])} | {rel} | {cell(v['cpu_seconds'])} "
                         f"| {rel_cpu} | {v['peak_rss_mib']['median']:.0f} |")
    lines += ["", "Peak RSS is the largest process of the variant's tree (GNU time %M): `direct` is "
                  "llama-quantize alone; `pipeline` is max(the Python process running the step, its "
                  f"llama-quantize child), the Python side alone {report['pipeline_baseline_rss_mib']:.0f} MiB; "
                  f"`api` is Python with llama_cpp quantizing in-process ({report['api_baseline_rss_mib']:.0f} MiB "
                  "before it starts).",
              "Outputs byte-identical: " + ", ".join(
                  f"{q}: pipeline=direct {r['outputs_identical']['pipeline_vs_direct']}, "
                  f"api=direct {r['outputs_identical']['api_vs_direct']}" for q, r in report["results"].items()), ""]
    return "\n".join(lines)

if __name__ == "__main__":
    sys.exit(main())
