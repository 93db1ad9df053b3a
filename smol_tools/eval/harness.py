"""The harness's front door: build backends from specs, run, report, compare."""

from __future__ import annotations

from typing import Any, Sequence

from ..backends.base import Backend, SamplingParams
from ..backends.factory import make_backend
from ..model_source import TINY, resolve_gguf
from ..tiny import TINY_N_CTX as TINY_CONTEXT  # one figure for the tiny model's context
from .bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED
from .compare import RunSpec, compare_reports
from .report import build_report
from .runner import run_suite
from .suite import Suite


def resolve_model(backend: str, model: str) -> tuple[str, int | None]:
    """`tiny` (in process) is the shipped tiny model, found by model_source like every other
    spec, with its trained context; anything else goes to the backend as given."""
    if backend == "llama-cpp-python" and model.split(":")[0] == TINY:
        return str(resolve_gguf(model)), TINY_CONTEXT
    return model, None


def make_spec_backend(spec: RunSpec, n_ctx: int | None = None) -> Backend:
    model, tiny_ctx = resolve_model(spec.backend, spec.model)
    return make_backend(spec.backend, model=model, url=spec.url, n_ctx=n_ctx or tiny_ctx,  # type: ignore[arg-type]
                        api_key=spec.api_key)


def evaluate(backend: Backend, suite: Suite, *, label: str = "", backend_info: dict[str, Any] | None = None,
             max_tokens: int | None = None, progress: bool = True, resamples: int = DEFAULT_RESAMPLES,
             seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """Run `suite` on `backend` greedily and return the JSON report."""
    sampling = SamplingParams.greedy(**({"max_tokens": max_tokens} if max_tokens else {}))
    run = run_suite(backend, suite, label=label, backend_info=backend_info, sampling=sampling, progress=progress)
    return build_report(run, resamples=resamples, seed=seed)


def evaluate_specs(specs: Sequence[RunSpec], suite: Suite, *, n_ctx: int | None = None,
                   **options: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run the same suite for every spec (one backend at a time) and compare them."""
    reports = []
    for spec in specs:
        backend = make_spec_backend(spec, n_ctx)
        info = {"kind": spec.backend, "model": spec.model, "url": spec.url}
        reports.append(evaluate(backend, suite, label=spec.label, backend_info=info, **options))
    return reports, compare_reports(reports)
