"""Run the packaging pipeline the options ask for: converting a checkpoint (package.Pipeline) or
retemplating published GGUFs (from_gguf.FromGgufPipeline). Above both modules, so neither
imports the other's caller."""

from __future__ import annotations

from .from_gguf import FromGgufPipeline
from .package import PackageOptions, PackageResult, Pipeline
from .progress import Progress


def run_package(opts: PackageOptions, progress: Progress | None = None) -> PackageResult:
    if opts.from_gguf:
        return FromGgufPipeline(opts, progress).run()
    return Pipeline(opts, progress).run()
