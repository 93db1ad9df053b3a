"""`python -m bench [--quick] [--only NAME ...] [--out-dir DIR]`: run the benchmarks on the tiny
model and write bench/results/bench-<mode>-<time>.{json,md} (and bench-<mode>-latest.*).

`python -m bench --real-size [--scale tiny] ...`: the real-size run (bench/real_size/harness.py)."""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

from .common import RESULTS, Figure, build_report, not_measured, to_markdown, write_report

BENCHES = ("parse", "reuse", "overhead", "quantize", "app")
EXTRA = ("checkpoints", "strict", "concurrency")  # run only when named with --only (minutes; starts servers)


def _load(name: str):
    if name == "parse":
        from . import bench_parse as module
    elif name == "reuse":
        from . import bench_reuse as module
    elif name == "overhead":
        from . import bench_overhead as module
    elif name == "quantize":
        from . import bench_quantize_wrap as module
    elif name == "checkpoints":
        from . import bench_checkpoints as module
    elif name == "strict":
        from . import bench_strict as module
    elif name == "concurrency":
        from . import bench_concurrency as module
    else:
        from . import bench_app as module
    return module


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--real-size"]:  # its own run and results file (bench/real_size/), never in the default set
        from .real_size.harness import main as real_size_main

        return real_size_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and variants (CI: under 2 minutes)")
    parser.add_argument("--only", nargs="+", choices=BENCHES + EXTRA, help="run only these benchmarks")
    parser.add_argument("--out-dir", type=Path, default=RESULTS, help="where the reports go (default bench/results)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    figures: list[Figure] = []
    for name in args.only or BENCHES:
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        began = time.perf_counter()
        try:
            figures += _load(name).run(args.quick)
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            traceback.print_exc()
            figures.append(not_measured(name, name, f"{type(exc).__name__}: {exc}"))
        print(f"[bench] {name} done in {time.perf_counter() - began:.1f} s", file=sys.stderr, flush=True)
    command = "python -m bench" + (" --quick" if args.quick else "") + (
        f" --only {' '.join(args.only)}" if args.only else "")
    report = build_report(figures, mode="quick" if args.quick else "full", command=command,
                          seconds=time.perf_counter() - started)
    json_path, md_path = write_report(report, args.out_dir)
    print(to_markdown(report))
    print(f"written: {json_path} and {md_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
