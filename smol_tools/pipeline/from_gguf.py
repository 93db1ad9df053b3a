"""`smol-tools package --from-gguf SOURCE`: republish GGUFs someone else built, fixed.

SOURCE is a Hub repo (`owner/name`, pinned to the commit it is listed at) or a local folder
of GGUFs. Every GGUF whose file name carries a quant tag (any layout the resolver knows; only
the `--quants` asked for, when given) is downloaded with huggingface_hub, then retemplated
(`gguf_retemplate`: our template, stop ids, sampling defaults, plus the general.* provenance a
converted build gets; tensor data copied unchanged) into the output folder under our file
names, and from there on it is a normal build: verify, memory table, Modelfiles and Hub
Ollama files, card, manifest, upload plan (or --publish). No checkpoint, no conversion, no
quantization: this is how the model repo's own GGUFs get republished with the right format.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..chat_format import load_template
from ..gguf_doctor import TemplateCheck, diagnose
from ..gguf_header import GGUFHeaderError, read_header
from ..gguf_retemplate import RetemplateError, retemplate
from ..model_source import ModelSourceError, _endpoint, _hub_error, pick_quant_files, quants_in, resolve_hub
from .artifacts import FileReport
from .drift import CaseDiff, DriftReport
from .fetch import SourceInfo
from .metadata import MetadataSpec
from .package import PackageError, PackageResult, Pipeline
from .provenance import ProvenanceError, check_base_model, check_publishable, default_repo_id
from .state import sha256_text

_STRING, _UINT32 = 8, 4


def _drift_from(check: TemplateCheck, template: str | None, found_in: str) -> DriftReport:
    """doctor's template finding in the shape the card and the summary already print."""
    # doctor keeps the prompts from the first differing byte on: enough for describe().
    differences = [CaseDiff(d.case_id, d.ours if d.error is None else None,
                            d.theirs if d.error is None else None, d.error) for d in check.differences]
    return DriftReport(template, found_in, check.cases, differences)


class FromGgufPipeline(Pipeline):
    """A build whose GGUFs exist already: fetch -> template report -> retemplate -> the rest."""

    def start(self) -> None:
        """The refusals of Pipeline.start that apply without a checkpoint, then the output folder."""
        self.repo_id = self.opts.repo_id or default_repo_id(self.opts.name, self.opts.config)
        folder = Path(self.opts.source).expanduser()
        if not folder.is_dir():
            from huggingface_hub.utils import HFValidationError, validate_repo_id  # start-up time: huggingface_hub

            try:
                validate_repo_id(self.opts.source.split("@")[0])
            except HFValidationError:
                raise PackageError(f"--from-gguf {self.opts.source!r}: neither a folder of GGUF files nor a "
                                   "Hub repo id (owner/name)") from None
        try:  # a card must not name a guessed base model
            check_base_model(self.opts.base_model)
            check_publishable(self.opts.source, self.opts.base_model, publish=self.opts.publish)
        except ProvenanceError as exc:
            raise PackageError(str(exc)) from exc
        self.out.mkdir(parents=True, exist_ok=True)

    # ---- source: the published files --------------------------------------------------------

    def _listing(self) -> tuple[str | None, str | None, list[str]]:
        """(repo id, commit, file names) of the source."""
        folder = Path(self.opts.source).expanduser()
        if folder.is_dir():
            return None, None, sorted(p.name for p in folder.iterdir() if p.is_file())
        from huggingface_hub import HfApi  # start-up time: huggingface_hub


        repo, _, revision = self.opts.source.partition("@")
        try:
            info = HfApi(endpoint=_endpoint()).model_info(repo, revision=revision or self.opts.revision)
        except Exception as exc:  # the client's transport raises its own types
            known = _hub_error(repo, exc)
            raise PackageError(f"--from-gguf {repo}: {known or exc}") from exc
        return repo, info.sha, [s.rfilename for s in info.siblings or []]

    def fetch(self) -> SourceInfo:
        started = time.monotonic()
        repo, sha, names = self._listing()
        found = quants_in(names)
        wanted = list(self.opts.quants) if self.opts.quants else found
        missing = [q for q in wanted if q not in found]
        if not found or missing:
            raise PackageError(f"--from-gguf {self.opts.source}: no GGUF for {', '.join(missing) or 'any quant'}; "
                               f"quants there: {', '.join(found) or 'none (no .gguf file named with a quant)'}")
        self.sources: dict[str, Path] = {}
        files: dict[str, int] = {}
        folder = Path(self.opts.source).expanduser()
        for quant in wanted:
            try:
                parts = pick_quant_files(names, quant)
                if len(parts) > 1:
                    raise PackageError(f"{parts[0]} is split in {len(parts)} parts: merge them with "
                                       "llama-gguf-split --merge and package the folder holding the merged file")
                path = folder / parts[0] if repo is None else resolve_hub(repo, quant, sha).path
            except ModelSourceError as exc:
                raise PackageError(f"--from-gguf {self.opts.source}: {exc}") from exc
            self.sources[quant] = path
            files[parts[0]] = path.stat().st_size
        info = SourceInfo(folder if repo is None else path.parent, "local" if repo is None else "hub",
                          repo, sha, files)
        self.source_info, self.source_fingerprint = info, (
            info.fingerprint if repo else "local:" + sha256_text(repr(sorted(
                (n, s, (folder / n).stat().st_mtime_ns) for n, s in files.items())))[:16])
        self.state.put("source", {"revision": sha, "files": files, "from_gguf": True})
        where = f"{repo}@{sha[:12]}" if repo else str(folder)
        self.progress.step("source", f"GGUFs of {where}: {', '.join(wanted)}", size=sum(files.values()),
                           seconds=time.monotonic() - started)
        return info

    def check_template(self) -> None:
        """What the published files embed (doctor, header only); we always embed ours."""
        started = time.monotonic()
        first_quant, first = next(iter(self.sources.items()))
        try:
            report = diagnose(first)
        except GGUFHeaderError as exc:
            raise PackageError(str(exc)) from exc
        embedded = read_header(first).get("tokenizer.chat_template")
        self.drift = _drift_from(report.template, embedded if isinstance(embedded, str) else None,
                                 Path(first).name)
        self.template, self.template_choice = load_template(), "ours"
        self._write_text(self.template_file, self.template)
        self.progress.step("template", f"{Path(first).name}: {report.template.summary()}; embedding ours",
                           seconds=time.monotonic() - started)

    def report_mtp(self) -> None:
        self.has_mtp = False
        for path in self.sources.values():
            header = read_header(path)
            arch = header.get("general.architecture")
            if header.get(f"{arch}.nextn_predict_layers", 0) or any(".nextn." in t.name for t in header.tensors):
                self.has_mtp = True
        self.progress.step("mtp", "the files carry MTP (nextn) tensors: kept" if self.has_mtp
                           else "the files carry no MTP tensors")

    # ---- the files ----------------------------------------------------------------------------

    def card_source_extra(self) -> dict[str, Any]:
        # These files were converted by someone else; the card must not claim our conversion.
        return {"from_gguf": True}

    def provenance(self) -> dict[str, tuple[int, object]]:
        """The general.* keys a converted build gets (metadata.MetadataSpec), as retemplate fields."""
        spec: MetadataSpec = self.metadata_spec()
        fields: dict[str, tuple[int, object]] = {k: (_STRING, v) for k, v in spec.string_fields().items()
                                                 if k != "tokenizer.chat_template"}
        fields["general.base_model.count"] = (_UINT32, 1)
        return fields

    def retemplate_all(self) -> None:
        for quant, source in self.sources.items():
            path = self._gguf(quant)
            report = FileReport(path.name, quant)
            self.files.append(report)
            extra = self.provenance()
            params = {"source": self.source_fingerprint, "file": source.name,
                      "template": sha256_text(self.template), "fields": repr(sorted(extra.items()))}
            key = f"retemplate:{quant}"
            if self.state.done(key, path, params):
                self.progress.step("retemplate", f"{path.name}: done earlier", size=path.stat().st_size)
            else:
                try:
                    result = retemplate(source, path, template=self.template, extra=extra, run_doctor=False)
                except (RetemplateError, GGUFHeaderError) as exc:
                    report.problems.append(f"retemplate failed: {exc}")
                    self.progress.step("retemplate", f"{path.name}: FAILED ({exc})")
                    continue
                self.state.finish(key, path, params)
                report.seconds["retemplate"] = result.seconds
                self.progress.step("retemplate", f"{source.name} -> {path.name} (metadata only; "
                                   f"{len(result.changed)} keys set, {len(result.removed)} removed)",
                                   size=result.data_bytes, seconds=result.seconds)
            doctor = diagnose(path)
            if not doctor.ok:
                report.problems += [f"doctor: {p}" for p in doctor.problems]
            self._finish_file(report, path)

    def run(self) -> PackageResult:
        self.start()
        self.fetch()
        self.check_template()
        self.report_mtp()
        self.retemplate_all()
        return self.finish(None)
