"""Benchmark `smol-tools doctor` and `smol-tools retemplate` on a GGUF of at least 1 GB.

Not part of `python -m bench` or CI: it writes a few GB to disk. It builds a stand-in GGUF in
a scratch folder (deleted afterwards unless --keep): the qwen35 architecture, a vocabulary of
Qwen3.5's size (248,320 tokens, 247,587 merges: the header a real file has, where gguf's
GGUFReader spends its time), Qwen3.5-4B's stock chat template, and --size-gb of F32 tensors
in 64 MiB pieces, written with gguf's GGUFWriter one piece at a time. Then, each in a fresh
process under GNU time (wall time and peak RSS of that process):

  cp          a plain file copy of the input, and cp + fsync of the copy (the yardstick:
              retemplate fsyncs its output before renaming it, and should cost about this);
  retemplate  `python -m smol_tools retemplate IN OUT` (includes doctor on the result);
  doctor      `python -m smol_tools doctor IN --json`, and the header-only diagnosis timed
              inside the process;
  gguf        (--compare-gguf) gguf's own `copy_with_new_metadata` with GGUFReader/GGUFWriter,
              the tool retemplate does not use, for comparison.

and checks the retemplated file's data section is byte-identical to the input's (sha256).

    .venv/bin/python -m bench.bench_retemplate [--size-gb 1.1] [--workdir /tmp] [--compare-gguf] [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
STOCK_TEMPLATE = ROOT / "tests" / "fixtures" / "templates" / "Qwen3.5-4B.jinja"
VOCAB, MERGES = 248_320, 247_587
PIECE = 64 * 2**20  # bytes per tensor


def build_input(path: Path, size_gb: float) -> None:
    import numpy as np
    from gguf import GGUFWriter, LlamaFileType

    writer = GGUFWriter(path, arch="qwen35")
    writer.add_name("bench stand-in")
    writer.add_file_type(LlamaFileType.ALL_F32)
    writer.add_context_length(32768)
    tokens = [f"t{i}" for i in range(VOCAB)]
    tokens[248044], tokens[248045], tokens[248046] = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen35")
    writer.add_token_list(tokens)
    writer.add_token_types([1] * VOCAB)
    writer.add_token_merges([f"a{i} b{i}" for i in range(MERGES)])
    writer.add_eos_token_id(248044)
    template = STOCK_TEMPLATE.read_text(encoding="utf-8") if STOCK_TEMPLATE.exists() else "{{ messages }}"
    writer.add_chat_template(template)
    n_pieces = max(1, int(size_gb * 1e9) // PIECE + 1)
    rows = PIECE // 4 // 2048
    for i in range(n_pieces):
        writer.add_tensor_info(f"blk.{i}.ffn_up.weight", (rows, 2048), np.dtype(np.float32), PIECE)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    rng = np.random.default_rng(0)
    for _ in range(n_pieces):  # one 64 MiB piece in memory at a time
        writer.write_tensor_data(rng.random((rows, 2048), dtype=np.float32))
    writer.close()


def timed(cmd: list[str], env: dict[str, str] | None = None) -> dict:
    """Wall seconds and peak RSS (MiB) of `cmd`, from GNU time -v."""
    subprocess.run(["sync"], check=True)
    started = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, cwd=ROOT,
                            env=env)
    wall = time.perf_counter() - started
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)
    return {"cmd": " ".join(cmd), "rc": result.returncode, "wall_s": round(wall, 3),
            "peak_rss_mib": round(int(rss.group(1)) / 1024, 1) if rss else None,
            "stdout_tail": result.stdout[-2000:], "stderr_tail": result.stderr[-800:] if result.returncode else ""}


def data_digest(path: Path) -> str:
    from smol_tools.gguf_header import read_header

    start = read_header(path).data_start
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        handle.seek(start)
        while chunk := handle.read(16 * 2**20):
            digest.update(chunk)
    return digest.hexdigest()


GGUF_COPY = """
import sys, gguf
from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata
reader = gguf.GGUFReader(sys.argv[1])
writer = gguf.GGUFWriter(sys.argv[2], arch=reader.get_field('general.architecture').contents())
copy_with_new_metadata(reader, writer, {'tokenizer.chat_template': MetadataDetails(gguf.GGUFValueType.STRING, open(sys.argv[3]).read())}, [])
"""

DOCTOR_INSIDE = """
import sys, time
from smol_tools.gguf_doctor import diagnose
from smol_tools.gguf_header import read_header
t = time.perf_counter(); read_header(sys.argv[1]); header = time.perf_counter() - t
t = time.perf_counter(); report = diagnose(sys.argv[1]); print(f"{time.perf_counter() - t:.3f} {header:.3f}", report.ok)
"""

RETEMPLATE_INSIDE = """
import sys, time
from smol_tools.gguf_retemplate import retemplate
t = time.perf_counter(); result = retemplate(sys.argv[1], sys.argv[2], run_doctor=False)
print(f"{time.perf_counter() - t:.3f}")
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gb", type=float, default=1.1)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--compare-gguf", action="store_true", help="also time gguf's copy_with_new_metadata")
    parser.add_argument("--keep", action="store_true", help="keep the scratch files")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="bench-retemplate-", dir=args.workdir))
    python = sys.executable
    results: dict = {"size_gb": args.size_gb, "python": python}
    try:
        source, out = scratch / "in.gguf", scratch / "out.gguf"
        began = time.perf_counter()
        build_input(source, args.size_gb)
        results["input_bytes"] = source.stat().st_size
        results["build_s"] = round(time.perf_counter() - began, 1)
        print(f"input: {source} ({source.stat().st_size / 1e9:.2f} GB, built in {results['build_s']} s)",
              file=sys.stderr)
        results["cp"] = timed(["cp", str(source), str(scratch / "copy.gguf")])
        (scratch / "copy.gguf").unlink()
        # retemplate fsyncs its output before the rename; the fair yardstick does too.
        copy = scratch / "copy.gguf"
        results["cp+fsync"] = timed(["sh", "-c", f"cp '{source}' '{copy}' && sync '{copy}'"])
        copy.unlink()
        inner = timed([python, "-c", RETEMPLATE_INSIDE, str(source), str(out)])
        results["retemplate_call_s"] = float(inner["stdout_tail"].split()[0]) if inner["rc"] == 0 else None
        out.unlink(missing_ok=True)
        results["retemplate"] = timed([python, "-m", "smol_tools", "retemplate", str(source), str(out)])
        results["identical_tensor_data"] = data_digest(source) == data_digest(out)
        out.unlink(missing_ok=True)
        results["doctor"] = timed([python, "-m", "smol_tools", "doctor", str(source), "--json"])
        inside = timed([python, "-c", DOCTOR_INSIDE, str(source)])
        if inside["rc"] == 0:
            results["doctor_diagnose_s"], results["header_read_s"] = map(float, inside["stdout_tail"].split()[:2])
        if args.compare_gguf:
            template = ROOT / "templates" / "smol-tools.jinja"
            results["gguf"] = timed([python, "-c", GGUF_COPY, str(source), str(out), str(template)])
            out.unlink(missing_ok=True)
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "retemplate-latest.json").write_text(json.dumps(results, indent=2))
    print(f"| run | wall s | peak RSS MiB |\n|---|---|---|")
    for name in ("cp", "cp+fsync", "retemplate", "doctor", "gguf"):
        if name in results:
            r = results[name]
            print(f"| {name} | {r['wall_s']} | {r['peak_rss_mib']} |" + ("" if r["rc"] in (0, 1) else f" rc={r['rc']}"))
    print(f"inside the process: retemplate() {results.get('retemplate_call_s')} s (no doctor); header read "
          f"{results.get('header_read_s')} s; doctor's whole diagnosis {results.get('doctor_diagnose_s')} s; "
          f"tensor data identical after retemplate: {results['identical_tensor_data']}")
    return 0 if results["identical_tensor_data"] else 1


if __name__ == "__main__":
    sys.exit(main())
