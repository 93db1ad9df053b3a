"""`smol-tools package`: one command from a checkpoint to a verified, publishable set of GGUFs.

Steps, each printed as one progress line: source (fetch) -> template drift -> MTP report ->
convert (BF16, F16 if asked) + metadata -> verify -> imatrix -> per quant: quantize, metadata,
verify -> eval of every verified file (with --eval) -> memory table (checked against llama.cpp) -> Modelfiles + Hub Ollama files -> card +
manifest -> upload plan (dry run) or publish -> summary table.

Every artifact is written under a temporary name and renamed when complete (atomic.py), and
recorded in build/state.json with the inputs it was made from; `--resume` skips exactly the
artifacts whose file and record both say they are done. Small text outputs (card, Modelfiles,
manifest) are cheap and always rewritten.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..chat_format import load_params
from .artifacts import FileReport
from .atomic import atomic_output
from .card import CardInput, render_card
from .convert import checkpoint_has_mtp, convert_to_gguf
from .drift import DriftReport, check_template_drift, choose_template
from .evaluate import EvalError, eval_gguf, suite_fingerprint
from .fetch import (SourceError, SourceInfo, check_source, checkpoint_problem, drop_weights,
                    fetch_source, is_local_source, resolve_revision)
from .ggufinfo import tensor_stats
from .imatrix import calibration_text, compute_imatrix
from .llama_quantize import quantize_with_program
from .memory import COMPUTE_SLACK_MIB, check_against_llama_cpp, memory_table_markdown, read_shape
from .measured import measured_section
from .metadata import MetadataSpec, fix_metadata
from .modelfile import hub_ollama_files, render_modelfile
from .mtp import gguf_mtp_layers, measure_mtp_speedup
from .progress import Progress, format_table, human_size
from .provenance import (ProvenanceError, card_base_model, check_base_model, check_publishable,
                         checkpoint_context_length, default_model_name, default_repo_id,
                         gguf_context_length, memory_contexts)
from .publish import UploadPlan, build_plan, publish
from .quantize import QuantizationError, hub_file_name, quant_types
from .settings import CALIBRATION_PATH, PackagingConfig, load_config
from .state import BuildState, sha256_file, sha256_text
from .verify import VerifyResult, verify_gguf

BUILD_DIR = "build"
SOURCE_DIR = "source"
CALIBRATION_TEXT = "tool-use-calibration.txt"  # the name llama.cpp records as the imatrix dataset


class PackageError(RuntimeError):
    """The build cannot go on (bad arguments, a step every later one needs failed)."""


@dataclass
class PackageOptions:
    source: str
    out: Path
    config: PackagingConfig = field(default_factory=load_config)
    quants: tuple[str, ...] | None = None  # None: the config's ladder
    imatrix: str = "auto"  # auto | off | path to an existing imatrix file
    template: str | None = None  # ours | checkpoint; required when the templates differ
    repo_id: str | None = None
    publish: bool = False
    resume: bool = False
    revision: str | None = None
    model_name: str | None = None
    declare_pre: str | None = None
    f16: bool = False
    expect_turns: Path | None = None
    imatrix_chunks: int | None = None
    imatrix_from: str = "BF16"  # or Q8_0: several times faster on CPU, nearly the same matrix
    threads: int | None = None
    verify_threads: int | None = None
    llama_bin: Path | None = None
    drop_source: bool = False
    check_memory: bool = True
    eval_suite: str | None = None  # default | tiny | suite file: score each published file
    eval_limit: int | None = None  # only the suite's first N cases
    from_gguf: bool = False  # SOURCE holds GGUFs someone else built: retemplate them (from_gguf.py)
    base_model: str | None = None  # Hub repo of a local SOURCE's checkpoint (provenance.py)

    @property
    def name(self) -> str:
        return self.model_name or default_model_name(self.source, self.config, self.base_model)

    @property
    def ladder(self) -> tuple[str, ...]:
        return tuple(q.upper() for q in (self.quants or self.config.quants))

    def needs_imatrix(self, quant: str) -> bool:
        return quant in self.config.imatrix_types or quant.startswith("IQ")


@dataclass
class PackageResult:
    out: Path
    files: list[FileReport]
    plan: UploadPlan
    drift: DriftReport
    template_choice: str
    has_mtp: bool
    imatrix: Path | None
    memory_checks: list[Any]
    published_url: str | None = None

    @property
    def failed(self) -> list[FileReport]:
        return [f for f in self.files if not f.publishable]


def validate_quants(quants: tuple[str, ...]) -> None:
    known = quant_types()
    unknown = [q for q in quants if q not in known]
    if unknown:
        raise PackageError(f"unknown quant type(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")


class Pipeline:
    """One build. Methods are the steps, in order; `run` strings them together."""

    def __init__(self, opts: PackageOptions, progress: Progress | None = None) -> None:
        self.opts = opts
        self.out = opts.out.resolve()
        self.build = self.out / BUILD_DIR
        self.progress = progress or Progress()
        self.state = BuildState(self.build / "state.json", fresh=not opts.resume)
        self.files: list[FileReport] = []
        self.template_file = self.build / "chosen-template.jinja"

    # ---- helpers -------------------------------------------------------------------------

    def _program(self, name: str) -> Path | None:
        return self.opts.llama_bin / name if self.opts.llama_bin else None

    def _gguf(self, kind: str) -> Path:
        return self.out / hub_file_name(self.opts.name, kind)

    def _write_text(self, path: Path, text: str) -> None:
        with atomic_output(path) as partial:
            partial.write_text(text, encoding="utf-8")

    # ---- steps ---------------------------------------------------------------------------

    def fetch(self) -> SourceInfo:
        started = time.monotonic()
        record = self.state.get("source") or {}
        # Weights are only needed while a conversion is still to do (they may have been dropped).
        outtypes = ["BF16"] + (["F16"] if self.opts.f16 else [])
        need_weights = not all(self._gguf(t).exists() and self.state.get(f"convert:{t}") for t in outtypes)
        pinned = record.get("revision") if self.opts.resume else None
        try:
            if pinned is None and not is_local_source(self.opts.source):
                # Record the commit before downloading: a build killed mid-download resumes that
                # commit, not whatever the branch points to by the time it is resumed.
                pinned = resolve_revision(self.opts.source, self.opts.revision)
                self.state.put("source", {"revision": pinned})
            info = fetch_source(self.opts.source, self.out / SOURCE_DIR, revision=self.opts.revision,
                                pinned=pinned, allow_patterns=self.opts.config.allow_patterns,
                                with_weights=need_weights)
        except Exception as exc:  # network, auth, unknown repo: say which source, keep it short
            raise PackageError(f"could not fetch {self.opts.source!r} (not a local folder, so a Hub "
                               f"repo id): {type(exc).__name__}: {str(exc)[:300]}") from exc
        if info.kind == "hub" and (problem := checkpoint_problem(info.path, need_weights=need_weights)):
            raise PackageError(f"{self.opts.source}@{info.revision}: {problem}")
        if need_weights or "has_mtp" not in record:
            has_mtp = checkpoint_has_mtp(info.path)
        else:  # the weights may be gone (--drop-source): keep what the full checkpoint showed
            has_mtp = record["has_mtp"]
            info = replace(info, files=record.get("files", info.files))
        self.state.put("source", {"revision": info.revision, "has_mtp": has_mtp,
                                  "fingerprint": info.fingerprint, "files": info.files})
        self.source_info, self.source_fingerprint = info, info.fingerprint
        where = f"{info.repo_id}@{info.revision[:12]}" if info.kind == "hub" else str(info.path)
        self.progress.step("source", f"{info.kind} {where}, {len(info.files)} files",
                           size=sum(info.files.values()), seconds=time.monotonic() - started)
        return info

    def check_template(self) -> None:
        started = time.monotonic()
        self.drift = check_template_drift(self.source_info.path)
        self.template, self.template_choice = choose_template(self.drift, self.opts.template)
        self._write_text(self.template_file, self.template)
        self.progress.step("template", f"{self.drift.summary()}; embedding {self.template_choice}",
                           seconds=time.monotonic() - started)
        if self.template_choice == "checkpoint" and self.drift.drift:
            self.progress.step("template", "WARNING: the Ollama files are generated from templates/ "
                               "(our format), not from the checkpoint's template")

    def report_mtp(self) -> None:
        self.has_mtp = bool(self.state.get("source")["has_mtp"])
        self.progress.step("mtp", "checkpoint has MTP tensors: kept (llama-server --spec-type draft-mtp)"
                           if self.has_mtp else "checkpoint has no MTP tensors")

    def metadata_spec(self) -> MetadataSpec:
        cfg = self.opts.config
        return MetadataSpec(name=self.opts.name, base_model=cfg.base_model, license=cfg.license,
                            quantized_by=cfg.quantized_by, chat_template=self.template,
                            source_repo=self.source_info.repo_id)

    def _fix_metadata(self, path: Path) -> None:
        """Check the file's metadata with gguf; rewrite it (atomically) if anything is off."""
        started = time.monotonic()
        fixed = fix_metadata(path, self.metadata_spec())
        if fixed:
            self.progress.step("metadata", f"{path.name}: set {', '.join(m.key for m in fixed)} (gguf rewrite)",
                               seconds=time.monotonic() - started)

    def _finish_file(self, report: FileReport, path: Path) -> FileReport:
        """Metadata check/fix, stats, SHA256 and verification of a finished GGUF."""
        self._fix_metadata(path)
        stats = tensor_stats(path)
        report.size, report.bits_per_weight = path.stat().st_size, round(stats.bits_per_weight, 3)
        report.tensor_types = stats.types_text()
        report.sha256 = self.state.sha256(path)
        self._verify(report, path)
        return report

    def _verify(self, report: FileReport, path: Path) -> None:
        turns = self.opts.expect_turns
        params = {"sha256": report.sha256, "template": sha256_text(self.template),
                  "turns": sha256_file(turns) if turns else None}
        key = f"verify:{path.name}"
        record = self.state.get(key)
        if record and record.get("params") == params:
            result = VerifyResult.from_dict(record["result"])
            how = "already verified"
        else:
            result = verify_gguf(path, self.template_file, turns_file=turns,
                                 threads=self.opts.verify_threads)
            self.state.put(key, {"params": params, "result": result.to_dict()})
            report.seconds["verify"] = result.seconds
            how = f"verified in {result.seconds:.1f}s"
        report.verified = result.ok
        report.problems += result.problems()
        checks = [f"corpus {result.corpus_cases - len(result.corpus_mismatches)}/{result.corpus_cases}"]
        if result.turns_checked:
            checks.append(f"turns {result.turns_checked - len(result.turn_failures)}/{result.turns_checked}")
        verdict = "OK" if result.ok else "FAILED: " + "; ".join(result.problems())
        self.progress.step("verify", f"{path.name}: {verdict} ({', '.join(checks)}; {how})")

    def convert(self) -> None:
        params_of: dict[str, dict[str, Any]] = {}
        for kind in ["BF16"] + (["F16"] if self.opts.f16 else []):
            path = self._gguf(kind)
            params_of[kind] = params = {"source": self.source_fingerprint, "outtype": kind.lower(),
                                        "declare_pre": self.opts.declare_pre}
            report = FileReport(path.name, kind)
            self.files.append(report)
            if self.state.done(f"convert:{kind}", path, params):
                self.progress.step("convert", f"{path.name}: done earlier", size=path.stat().st_size)
                continue
            result = convert_to_gguf(self.source_info.path, path, outtype=kind.lower(),
                                     declare_pre=self.opts.declare_pre)
            self.state.finish(f"convert:{kind}", path, params)
            report.seconds["convert"] = result.seconds
            self.progress.step("convert", f"{path.name} (llama.cpp convert_hf_to_gguf.py)",
                               size=result.size_bytes, seconds=result.seconds)
        self.bf16_params = params_of["BF16"]
        # Drop the download before the metadata rewrite, which briefly needs a second copy of
        # each file: on a ~30 GB disk the two must not coincide.
        if self.opts.drop_source and self.source_info.kind == "hub":
            freed = drop_weights(self.source_info)
            if freed:
                self.progress.step("source", "dropped the downloaded weights (conversion done)", size=freed)
        for report in list(self.files):
            path = self.out / report.name
            self._fix_metadata(path)
            self.state.finish(f"convert:{report.kind}", path, params_of[report.kind])  # new size
            self._finish_file(report, path)

    def make_imatrix(self) -> Path | None:
        wanted = [q for q in self.opts.ladder if self.opts.needs_imatrix(q)]
        mode = self.opts.imatrix
        if mode == "off" or not wanted:
            self.progress.step("imatrix", "off" if mode == "off" else "no requested type uses one")
            return None
        target = self.out / f"{self.opts.name}.imatrix.gguf"
        started = time.monotonic()
        if mode != "auto":
            given = Path(mode).expanduser()
            if not given.is_file():
                raise PackageError(f"--imatrix {mode}: no such file")
            params = {"file_sha256": sha256_file(given)}
            if not self.state.done("imatrix", target, params):
                with atomic_output(target) as partial:
                    shutil.copyfile(given, partial)
                self.state.finish("imatrix", target, params)
            self.progress.step("imatrix", f"{target.name}: copied from {given}", size=target.stat().st_size)
            return target
        text = calibration_text()
        text_file = self.build / CALIBRATION_TEXT
        if not text_file.exists() or text_file.read_text(encoding="utf-8") != text:
            self._write_text(text_file, text)
        chunks = self.opts.imatrix_chunks if self.opts.imatrix_chunks is not None else self.opts.config.imatrix_chunks
        model = self._gguf(self.opts.imatrix_from)
        model_params = (self.bf16_params if self.opts.imatrix_from == "BF16"
                        else (self.state.get(f"quantize:{self.opts.imatrix_from}") or {}).get("params"))
        if not model.exists() or model_params is None:
            raise PackageError(f"--imatrix-from {self.opts.imatrix_from}: {model.name} was not built")
        params = {"model": model_params, "calibration": sha256_text(text),
                  "ctx": self.opts.config.imatrix_ctx, "chunks": chunks}
        if self.state.done("imatrix", target, params):
            self.progress.step("imatrix", f"{target.name}: done earlier", size=target.stat().st_size)
            return target
        result = compute_imatrix(model, text_file, target, ctx=self.opts.config.imatrix_ctx,
                                 chunks=chunks, threads=self.opts.threads,
                                 program=self._program("llama-imatrix"),
                                 log_path=self.build / "logs" / "imatrix.log")
        self.state.finish("imatrix", target, params, chunks=result.chunks, seconds=result.seconds)
        self.progress.step("imatrix", f"{target.name}: {result.chunks} chunks x {self.opts.config.imatrix_ctx} "
                           f"tokens of {CALIBRATION_PATH.name} through {model.name} (llama-imatrix)",
                           size=target.stat().st_size, seconds=time.monotonic() - started)
        return target

    def quantize_all(self, quants: list[str], imatrix: Path | None) -> None:
        bf16 = self._gguf("BF16")
        imatrix_params = self.state.get("imatrix")["params"] if imatrix else None
        for quant in quants:
            path = self._gguf(quant)
            use = imatrix if imatrix is not None and self.opts.needs_imatrix(quant) else None
            params = {"from": self.bf16_params, "quant": quant, "imatrix": imatrix_params if use else None}
            report = FileReport(path.name, quant, imatrix=use is not None)
            self.files.append(report)
            key = f"quantize:{quant}"
            if self.state.done(key, path, params):
                report.fallbacks = self.state.get(key).get("fallbacks", [])
                self.progress.step("quantize", f"{path.name}: done earlier", size=path.stat().st_size)
            else:
                try:
                    result = quantize_with_program(
                        bf16, path, quant, imatrix=use, threads=self.opts.threads,
                        program=self._program("llama-quantize"), cwd=self.out,
                        log_path=self.build / "logs" / f"quantize-{quant}.log")
                except QuantizationError as exc:
                    report.problems.append(f"quantize failed: {str(exc).splitlines()[0]}")
                    self.progress.step("quantize", f"{path.name}: FAILED ({exc})")
                    continue
                report.fallbacks = [f"{f.tensor}: {f.wanted} -> {f.used}" for f in result.fallbacks]
                report.seconds["quantize"] = result.seconds
                self.state.finish(key, path, params, fallbacks=report.fallbacks)
                fell = f", {len(result.fallbacks)} tensor(s) fell back" if result.fallbacks else ""
                self.progress.step("quantize", f"{path.name} ({quant}{' + imatrix' if use else ''}"
                                   f"{fell}; llama-quantize)", size=result.size_bytes, seconds=result.seconds)
            self._finish_file(report, path)
            # The record must follow a metadata fix (its size is part of "done").
            if self.state.get(key) and self.state.get(key).get("size") != path.stat().st_size:
                self.state.finish(key, path, params, fallbacks=report.fallbacks)

    def evaluate_all(self) -> str:
        """Score every publishable file on the eval suite (`--eval`); returns the card's note."""
        suite = self.opts.eval_suite
        if not suite:
            return ""
        params = {"suite": suite_fingerprint(suite), "limit": self.opts.eval_limit}
        outcome = None
        for report in self.files:
            if not report.publishable:
                continue
            key, path = f"eval:{report.name}", self.out / report.name
            record = self.state.get(key)
            if record and record.get("params") == params | {"sha256": report.sha256}:
                report.eval_score = record["score"]
                self.progress.step("eval", f"{report.name}: {report.eval_score} (done earlier)")
                continue
            try:
                outcome = eval_gguf(path, self.build / "eval" / f"{report.name}.json", suite=suite,
                                    limit=self.opts.eval_limit, log_path=self.build / "logs" / f"eval-{report.name}.log")
            except EvalError as exc:  # the file stays verified and publishable; its cell says "-"
                self.progress.step("eval", f"{report.name}: FAILED ({str(exc).splitlines()[0]})")
                continue
            report.eval_score, report.seconds["eval"] = outcome.score, outcome.seconds
            self.state.put(key, {"params": params | {"sha256": report.sha256}, "score": outcome.score,
                                 "cases": outcome.cases, "suite_name": outcome.suite})
            self.progress.step("eval", f"{report.name}: {outcome.score}", seconds=outcome.seconds)
        scored = [f for f in self.files if f.eval_score]
        if not scored:
            return ""
        record = self.state.get(f"eval:{scored[0].name}")
        limit = f" (its first {self.opts.eval_limit} cases)" if self.opts.eval_limit else ""
        return (f"tool-selection F1 with its 95% bootstrap interval on the `{record['suite_name']}` suite"
                f"{limit}, {record['cases']} cases, greedy decoding through llama-cpp-python "
                "(`smol-tools eval`; metric definitions in the smol-tools repo's evals/README.md).")

    def memory(self) -> tuple[str, list[Any], str | None]:
        started = time.monotonic()
        good = [f for f in self.files if f.publishable]
        rows = [(f.name, read_shape(self.out / f.name)) for f in good]
        contexts = memory_contexts(self.opts.config.memory_contexts, self.context_length())
        table = memory_table_markdown(rows, contexts)
        checks: list[Any] = []
        note = None
        if self.opts.check_memory and good:
            smallest = min(good, key=lambda f: f.size or 0)
            checks = check_against_llama_cpp(self.out / smallest.name, contexts)
            verdict = "agrees" if all(c.ok for c in checks) else "DISAGREES"
            detail = "; ".join(
                f"{c.n_ctx // 1024}K: KV {c.llama_cpp_mib.get('kv_cache')} MiB, recurrent "
                f"{c.llama_cpp_mib.get('recurrent')} MiB, weights {c.llama_cpp_mib.get('weights')} MiB, "
                f"compute {c.llama_cpp_mib.get('compute')} MiB (ours {c.compute_ours_mib:.1f})"
                for c in checks)
            compute = ("within" if all(c.compute_close for c in checks) else "NOT within")
            note = (f"Checked against llama.cpp: loading `{smallest.name}` it allocates {detail} — "
                    f"the computation above {verdict} (to llama.cpp's 0.01 MiB rounding); the approximated "
                    f"compute buffer is {compute} {COMPUTE_SLACK_MIB:.0f} MiB or 10 % of llama.cpp's.")
            self.progress.step("memory", f"table for {len(rows)} files; llama.cpp {verdict} on "
                               f"{smallest.name} at {', '.join(str(c) for c in contexts)}",
                               seconds=time.monotonic() - started)
        else:
            self.progress.step("memory", f"table for {len(rows)} files", seconds=time.monotonic() - started)
        return table, checks, note

    def mtp_speed(self) -> str | None:
        """With MTP tensors, measure greedy speed with and without them (llama-server)."""
        if not self.has_mtp:
            return None
        # The card says every file keeps them: check each one, not only the measured file.
        lacking = [f.name for f in self.files if f.publishable and gguf_mtp_layers(self.out / f.name) == 0]
        name = hub_file_name(self.opts.name, self.default_quant())
        path = self.out / name
        if lacking or not path.exists():
            note = ("The checkpoint has MTP tensors, but these files do not carry them: "
                    + ", ".join(f"`{n}`" for n in lacking or [name]) + ".")
            self.progress.step("mtp", note)
        else:
            started = time.monotonic()
            try:
                speed = measure_mtp_speedup(path, threads=self.opts.threads)
                note = (f"Every file keeps the checkpoint's MTP layers. Measured on the build machine "
                        f"with llama-server and `{name}`: {speed.baseline_tps:.1f} tokens/s plain, "
                        f"{speed.mtp_tps:.1f} tokens/s with `--spec-type draft-mtp` "
                        f"({speed.speedup:.2f}x, draft acceptance {speed.draft_accepted}/{speed.draft_n} "
                        f"= {speed.acceptance:.0%}; greedy, one code prompt).")
            except Exception as exc:  # noqa: BLE001 - a failed measurement must not fail the build
                note = f"Every file keeps the checkpoint's MTP layers (speed-up not measured: {exc})."
            self.progress.step("mtp", note, seconds=time.monotonic() - started)
        return note

    def ollama_files(self) -> list[str]:
        written = []
        try:
            for f in self.files:
                if f.publishable and f.kind not in ("BF16", "F16"):
                    name = f"Modelfile.{f.kind}"
                    text = render_modelfile(f.name, context_length=self.context_length())
                    self._write_text(self.out / name, text)
                    written.append(name)
            for name, text in hub_ollama_files(context_length=self.context_length()).items():
                self._write_text(self.out / name, text)
                written.append(name)
        except (OSError, ValueError) as exc:
            # Publishing without them would give Ollama users the wrong prompt format; stop
            # here (everything before is kept: fix templates/ and re-run with --resume).
            raise PackageError(f"cannot write the Ollama files from templates/: {exc}") from exc
        self.progress.step("ollama", f"{len(written)} files: {', '.join(written)}")
        return written

    def context_length(self) -> int:
        """The packaged model's context length (Modelfile num_ctx, params, memory table, card):
        the checkpoint's config.json, else a built file's header, else templates/params.json."""
        if getattr(self, "_context_length", None) is None:
            found = checkpoint_context_length(self.source_info.path)
            for f in self.files:
                if found is None and (self.out / f.name).is_file():
                    found = gguf_context_length(self.out / f.name)
            self._context_length = found or load_params().context_length
        return self._context_length

    def card_source_extra(self) -> dict[str, Any]:
        """What the card's source line adds to the fetch manifest (a GGUF build says so)."""
        return {}

    def default_quant(self) -> str:
        """The type the card's usage lines name: Q4_K_M if it made it, else the smallest quant."""
        kinds = [f.kind for f in self.files if f.publishable and f.kind not in ("BF16", "F16")]
        return "Q4_K_M" if "Q4_K_M" in kinds or not kinds else kinds[-1]

    def card(self, imatrix: Path | None, memory: tuple[str, list[Any], str | None],
             ollama: list[str], mtp_note: str | None = None, eval_note: str = "") -> None:
        cfg = self.opts.config
        source = self.source_info.manifest() | self.card_source_extra()
        base = card_base_model(self.source_info.kind, self.source_info.repo_id, self.opts.base_model)
        imatrix_note = ""
        if imatrix is not None:
            rec = self.state.get("imatrix") or {}
            imatrix_note = (f"It was computed with llama.cpp's `llama-imatrix` over "
                            f"{rec.get('chunks', '?')} chunks of {cfg.imatrix_ctx} tokens of our own "
                            "tool-use conversations rendered with the smol-tools template."
                            if self.opts.imatrix == "auto" else "It was supplied to the build.")
        ci = CardInput(
            model_name=self.opts.name, repo_id=self.repo_id, base_model=base, license=cfg.license,
            pipeline_tag=cfg.pipeline_tag, tags=cfg.tags, quantized_by=cfg.quantized_by,
            files=[f for f in self.files if f.publishable], default_quant=self.default_quant(),
            source=source, template_choice=self.template_choice, drift_summary=self.drift.summary(),
            has_mtp=self.has_mtp, mtp_note=mtp_note, imatrix_file=imatrix.name if imatrix else None,
            turns_checked=self.opts.expect_turns is not None,
            imatrix_note=imatrix_note, memory_markdown=memory[0], memory_check=memory[2],
            ollama_files=tuple(ollama), eval_note=eval_note, context_length=self.context_length(),
            eval_scores={f.name: f.eval_score for f in self.files if f.publishable and f.eval_score},
            measured_markdown=measured_section(self.out, [f.name for f in self.files if f.publishable]))
        self._write_text(self.out / "README.md", render_card(ci))
        published = [f for f in self.files if f.publishable]
        manifest = {
            "model": self.opts.name, "base_model": base, "context_length": self.context_length(),
            "source": {k: v for k, v in source.items() if k != "path"},
            "template": self.template_choice, "template_sha256": sha256_text(self.template),
            "has_mtp": self.has_mtp, "imatrix": imatrix.name if imatrix else None,
            "files": [{k: v for k, v in f.to_dict().items() if k not in ("seconds", "problems")}
                      for f in published],
        }
        self._write_text(self.out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
        # The local report keeps everything, failures and timings included (not uploaded).
        report = manifest | {"source": source, "files": [f.to_dict() for f in self.files]}
        self._write_text(self.build / "report.json", json.dumps(report, indent=2) + "\n")
        self.progress.step("card", "README.md (model card) and manifest.json")

    def plan(self, imatrix: Path | None, ollama: list[str]) -> UploadPlan:
        files = [f.name for f in self.files if f.publishable]
        if imatrix is not None and any(f.imatrix for f in self.files if f.publishable):
            files.append(imatrix.name)
        files += ollama + ["README.md", "manifest.json"]
        return build_plan(self.out, self.repo_id, files)

    def start(self) -> None:
        """Every refusal that needs no step (arguments, SOURCE), then the output folder."""
        validate_quants(self.opts.ladder)
        if self.opts.eval_suite:  # a wrong suite is refused now, not after hours of quantizing
            try:
                suite_fingerprint(self.opts.eval_suite)
            except EvalError as exc:
                raise PackageError(str(exc)) from exc
        self.repo_id = self.opts.repo_id or default_repo_id(self.opts.name, self.opts.config)
        try:  # before anything is written: a wrong SOURCE leaves no out/ behind
            check_source(self.opts.source)
            check_base_model(self.opts.base_model)
            check_publishable(self.opts.source, self.opts.base_model, publish=self.opts.publish)
        except (SourceError, ProvenanceError) as exc:
            raise PackageError(str(exc)) from exc
        self.out.mkdir(parents=True, exist_ok=True)

    def run(self) -> PackageResult:
        self.start()
        self.fetch()
        self.check_template()
        self.report_mtp()
        self.convert()
        # Types that take no imatrix first: the imatrix may be computed from one of them (Q8_0).
        plain = [q for q in self.opts.ladder if not self.opts.needs_imatrix(q)]
        self.quantize_all(plain, None)
        imatrix = self.make_imatrix()
        self.quantize_all([q for q in self.opts.ladder if q not in plain], imatrix)
        order = ["BF16", "F16", *self.opts.ladder]
        self.files.sort(key=lambda f: order.index(f.kind))
        return self.finish(imatrix)

    def finish(self, imatrix: Path | None) -> PackageResult:
        """Once the GGUFs exist: eval, memory table, MTP speed, Ollama files, card, plan/publish
        (shared with from_gguf.FromGgufPipeline, whose files are retemplated, not built)."""
        eval_note = self.evaluate_all()
        memory = self.memory()
        mtp_note = self.mtp_speed()
        ollama = self.ollama_files()
        self.card(imatrix, memory, ollama, mtp_note, eval_note)
        plan = self.plan(imatrix, ollama)
        result = PackageResult(self.out, self.files, plan, self.drift, self.template_choice,
                               self.has_mtp, imatrix, memory[1])
        print(summary_table(result), file=self.progress.stream, flush=True)
        if not self.opts.publish:
            self.progress.step("publish", "dry run (pass --publish to upload)")
            print(plan.describe(), file=self.progress.stream, flush=True)
            return result
        try:  # also guards builds whose start() differs (from_gguf): never publish a guessed base_model
            check_publishable(self.opts.source, self.opts.base_model, publish=True)
        except ProvenanceError as exc:
            raise PackageError(str(exc)) from exc
        started = time.monotonic()
        try:
            result.published_url = publish(plan)
        except Exception as exc:  # auth, network, quota: everything built is kept for --resume
            raise PackageError(f"publishing to {self.repo_id} failed: {exc}") from exc
        self.progress.step("publish", f"uploaded {len(plan.files)} files: {result.published_url}",
                           size=plan.total_bytes, seconds=time.monotonic() - started)
        return result


def summary_table(result: PackageResult) -> str:
    rows = []
    for f in result.files:
        verified = "yes" if f.publishable else "NO: " + "; ".join(f.problems)[:70]
        note = f"{len(f.fallbacks)} fallback(s): {f.fallbacks[0]}{' ...' if len(f.fallbacks) > 1 else ''}" \
            if f.fallbacks else ("imatrix" if f.imatrix else "")
        rows.append([f.name, f.kind, human_size(f.size), f"{f.bits_per_weight:.2f}" if f.bits_per_weight else "-",
                     (f.sha256 or "-")[:16], verified, note])
    table = format_table(["file", "type", "size", "bpw", "sha256", "verified", "notes"], rows)
    tail = f"{len(result.files) - len(result.failed)}/{len(result.files)} files verified"
    if result.failed:
        tail += f"; NOT published: {', '.join(f.name for f in result.failed)}"
    return f"\n{table}\n{tail}"

