"""`smol-tools doctor`: will this GGUF do correct tool calling as it is?

Everything is read from the header (`gguf_header`), never from tensor data. The answer rests
on what the runtimes that read a GGUF by themselves (llama-server `--jinja`, LM Studio,
llama-cpp-python) take from it:
- the chat template: `tokenizer.chat_template`, and `tokenizer.chat_template.tool_use`, which
  llama.cpp prefers whenever a request carries tools. It must render our corpus exactly like
  `templates/smol-tools.jinja` does; a foreign template (Qwen3.5's asks for XML calls) makes
  the model's JSON calls go unparsed or the prompt differ from training.
- end of generation: llama.cpp marks `<|im_end|>` and `<|endoftext|>` as end-of-generation
  by their text whenever the vocabulary has them, so both must be in the vocabulary; EOS/EOT
  ids are reported and checked against ours.
- `general.sampling.*`: llama-server and other llama.cpp front ends take their default
  sampling from these keys. Missing or different values are a warning, not a failure: the
  format stays right, only the defaults differ (llama-cpp-python ignores the keys).
"""

from __future__ import annotations

import math
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from .chat_format import load_params, load_template
from .gguf_header import GGUFHeader, read_header
from .pipeline.drift import load_corpus, render_case, render_foreign

TEMPLATE_KEY = "tokenizer.chat_template"
TOOL_USE_TEMPLATE_KEY = "tokenizer.chat_template.tool_use"
EOS_KEY = "tokenizer.ggml.eos_token_id"
EOT_KEY = "tokenizer.ggml.eot_token_id"
PAD_KEY = "tokenizer.ggml.padding_token_id"

# params.json sampling name -> (GGUF key llama.cpp reads, gguf.GGUFValueType). presence_penalty
# has no GGUF key in llama.cpp, so it is not written.
SAMPLING_KEYS: dict[str, tuple[str, int]] = {
    "temperature": ("general.sampling.temp", 6),  # FLOAT32
    "top_p": ("general.sampling.top_p", 6),
    "top_k": ("general.sampling.top_k", 5),  # INT32
    "min_p": ("general.sampling.min_p", 6),
    "repeat_penalty": ("general.sampling.penalty_repeat", 6),
}

TemplateStatus = Literal["missing", "ours", "equivalent", "different"]


def expected_sampling() -> dict[str, tuple[int, float | int]]:
    """GGUF key -> (value type, value) from templates/params.json."""
    sampling = load_params().sampling
    return {key: (vtype, int(sampling[name]) if vtype == 5 else float(sampling[name]))
            for name, (key, vtype) in SAMPLING_KEYS.items() if name in sampling}


def expected_token_ids(header: GGUFHeader) -> dict[str, tuple[str, int | None]]:
    """EOS/EOT/padding key -> (token text, its id in this file's own vocabulary)."""
    special = load_params().special_tokens
    wanted = {EOS_KEY: special["eos"], EOT_KEY: special["im_end"], PAD_KEY: special["pad"]}
    return {key: (text, header.token_id(text)) for key, text in wanted.items()}


# ---- the embedded template against ours, on the render corpus -----------------------------------

@dataclass(frozen=True)
class CaseDifference:
    case_id: str
    error: str | None = None  # the embedded template raised on this case
    offset: int | None = None  # first differing byte (UTF-8) of the two prompts
    ours: str = ""  # the bytes from `offset` on, decoded for display
    theirs: str = ""

    def describe(self) -> str:
        if self.error is not None:
            return f"{self.case_id}: the embedded template fails: {self.error}"
        return f"{self.case_id}: first difference at byte {self.offset}: ours {self.ours!r} vs embedded {self.theirs!r}"


@dataclass(frozen=True)
class TemplateCheck:
    key: str
    status: TemplateStatus
    cases: int = 0  # corpus cases rendered
    differences: list[CaseDifference] = field(default_factory=list)
    note: str | None = None  # why the corpus was not rendered, when it was not

    @property
    def good(self) -> bool:
        return self.status in ("ours", "equivalent")

    def summary(self) -> str:
        if self.status == "missing":
            return f"{self.key}: missing"
        if self.status == "ours":
            return f"{self.key}: byte-identical to templates/smol-tools.jinja"
        if self.status == "equivalent":
            return (f"{self.key}: differs in text from ours but renders all {self.cases} corpus "
                    f"conversations byte-identically")
        if not self.cases:
            return f"{self.key}: differs from ours ({self.note})"
        return f"{self.key}: differs from ours on {len(self.differences)}/{self.cases} corpus conversations"


def _first_difference(case_id: str, ours: str, theirs: str, context: int = 40) -> CaseDifference:
    a, b = ours.encode(), theirs.encode()
    at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    show = lambda raw: raw[at: at + context].decode("utf-8", errors="replace")  # noqa: E731
    return CaseDifference(case_id, offset=at, ours=show(a), theirs=show(b))


def _load_cases() -> tuple[list[dict[str, Any]] | None, str | None]:
    try:
        return load_corpus(), None
    except (OSError, ValueError, KeyError) as exc:
        return None, f"render corpus unavailable: {exc}"


def check_template(template: str | None, key: str = TEMPLATE_KEY,
                   cases: list[dict[str, Any]] | None = None, ours: str | None = None) -> TemplateCheck:
    ours = ours if ours is not None else load_template()
    if template is None:
        return TemplateCheck(key, "missing")
    if template == ours:
        return TemplateCheck(key, "ours")
    note = None
    if cases is None:
        cases, note = _load_cases()
    if not cases:
        return TemplateCheck(key, "different", note=note or "no corpus to render")

    differences = []
    for case in cases:
        expected = render_case(case, ours)
        got, error = render_foreign(case, template)  # a foreign template may raise anything
        if error is not None:
            differences.append(CaseDifference(case["id"], error=error))
        elif got != expected:
            differences.append(_first_difference(case["id"], expected or "", got or ""))
    return TemplateCheck(key, "different" if differences else "equivalent", len(cases), differences)


# ---- the report ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class StopToken:
    text: str
    token_id: int | None  # None: not in the vocabulary

    @property
    def ends_generation(self) -> bool:
        # llama.cpp (llama-vocab.cpp) puts these texts in its end-of-generation set whenever
        # the vocabulary holds them, whatever EOS/EOT say; llama-cpp-python and LM Studio
        # run that same vocabulary code.
        return self.token_id is not None


@dataclass
class DoctorReport:
    path: str
    architecture: str | None
    quant: str | None
    context_length: int | None
    tensors: int
    eos: tuple[int | None, str | None]  # (id, token text)
    eot: tuple[int | None, str | None]
    stops: list[StopToken]
    mtp_layers: int
    mtp_tensors: list[str]
    sampling: dict[str, Any]
    template: TemplateCheck
    tool_use_template: TemplateCheck | None
    other_templates: list[str]
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    fix: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stops"] = [{"text": s.text, "id": s.token_id, "ends_generation": s.ends_generation}
                         for s in self.stops]
        data["eos"] = {"id": self.eos[0], "text": self.eos[1]}
        data["eot"] = {"id": self.eot[0], "text": self.eot[1]}
        data["ok"] = self.ok
        return data

    def describe(self, limit: int = 3) -> str:
        def token(ref: tuple[int | None, str | None]) -> str:
            return "not set" if ref[0] is None else f"{ref[0]} ({ref[1]!r})"

        lines = [
            f"file:           {self.path}",
            f"architecture:   {self.architecture or 'unknown'}",
            f"quant:          {self.quant or 'unknown'}",
            f"context length: {self.context_length if self.context_length is not None else 'unknown'}",
            f"EOS / EOT:      {token(self.eos)} / {token(self.eot)}",
        ]
        for stop in self.stops:
            where = "not in the vocabulary" if stop.token_id is None else f"id {stop.token_id}"
            lines.append(f"  {stop.text} ends generation: {'yes' if stop.ends_generation else 'no'} ({where})")
        lines.append(f"MTP:            {self._mtp_text()}")
        sampling = ", ".join(f"{k.removeprefix('general.sampling.')}={_short_number(v)}"
                             for k, v in self.sampling.items()) or "none"
        lines.append(f"sampling:       {sampling}")
        for check in filter(None, (self.template, self.tool_use_template)):
            lines.append(f"template:       {check.summary()}")
            lines += [f"  - {d.describe()}" for d in check.differences[:limit]]
            if len(check.differences) > limit:
                lines.append(f"  - ... and {len(check.differences) - limit} more")
        if self.other_templates:
            lines.append(f"named templates: {', '.join(self.other_templates)}")
        lines += [f"problem: {p}" for p in self.problems]
        lines += [f"warning: {w}" for w in self.warnings]
        if self.ok:
            lines.append("verdict: OK - tool calling works as is in llama-server --jinja, LM Studio "
                         "and llama-cpp-python")
        else:
            lines.append("verdict: NOT OK - tool calling will not work correctly as the file is")
        if self.fix:
            lines.append(f"fix: {self.fix}")
        return "\n".join(lines)

    def _mtp_text(self) -> str:
        if not self.mtp_layers and not self.mtp_tensors:
            return "no"
        return f"yes ({self.mtp_layers} nextn layer(s), {len(self.mtp_tensors)} tensors)"


def _short_number(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def quant_name(file_type: Any) -> str | None:
    """general.file_type -> the name users type (Q4_K_M, F16, ...)."""
    if not isinstance(file_type, int):
        return None
    from gguf import LlamaFileType  # start-up time: gguf imports numpy

    try:
        name = LlamaFileType(file_type).name
    except ValueError:
        return f"file_type {file_type}"
    return "F32" if name == "ALL_F32" else name.removeprefix("MOSTLY_")


def _is_mtp_tensor(name: str) -> bool:
    return ".nextn." in name or name.startswith("mtp.") or ".mtp." in name


def retemplate_command(target: Path | str, file: Path | str | None = None) -> str:
    """The fix line. `target` is what the user typed: a local file (the output goes next to
    it) or owner/repo:QUANT, whose download sits in the Hub cache (the output then goes to the
    current folder, named after `file`)."""
    local = Path(target)
    if local.is_file() or file is None:
        out = local.with_name(f"{local.stem}.smol-tools{local.suffix or '.gguf'}")
    else:
        out = Path(f"{Path(file).stem}.smol-tools.gguf")
    return f"smol-tools retemplate {shlex.quote(str(target))} {shlex.quote(str(out))}"


def _sampling_matches(actual: Any, wanted: float | int) -> bool:
    if not isinstance(actual, (int, float)) or isinstance(actual, bool):
        return False
    return math.isclose(float(actual), float(wanted), rel_tol=1e-6, abs_tol=1e-7)


def diagnose(path: Path, cases: list[dict[str, Any]] | None = None, *,
             header: GGUFHeader | None = None, fix_target: str | None = None) -> DoctorReport:
    """The doctor's report on `path` (header only). `fix_target` names the file in the fix line
    when `path` is a cached download the user did not type."""
    header = header if header is not None else read_header(Path(path))
    arch = header.get("general.architecture")
    arch = arch if isinstance(arch, str) else None
    context = header.get(f"{arch}.context_length") if arch else None
    mtp_layers = header.get(f"{arch}.nextn_predict_layers", 0) if arch else 0
    template = header.get(TEMPLATE_KEY)
    tool_use = header.get(TOOL_USE_TEMPLATE_KEY)
    named = sorted(k.removeprefix(TEMPLATE_KEY + ".") for k in header.records
                   if k.startswith(TEMPLATE_KEY + ".") and k != TOOL_USE_TEMPLATE_KEY)
    if cases is None and (isinstance(template, str) or isinstance(tool_use, str)):
        cases, _ = _load_cases()
    template_check = check_template(template if isinstance(template, str) else None, TEMPLATE_KEY, cases)
    tool_use_check = (check_template(tool_use, TOOL_USE_TEMPLATE_KEY, cases)
                      if isinstance(tool_use, str) else None)
    eos_id, eot_id = header.get(EOS_KEY), header.get(EOT_KEY)
    report = DoctorReport(
        path=str(path), architecture=arch, quant=quant_name(header.get("general.file_type")),
        context_length=context if isinstance(context, int) else None, tensors=len(header.tensors),
        eos=(eos_id, header.token_text(eos_id)), eot=(eot_id, header.token_text(eot_id)),
        stops=[StopToken(text, header.token_id(text)) for text in load_params().stop],
        mtp_layers=int(mtp_layers) if isinstance(mtp_layers, int) else 0,
        mtp_tensors=[t.name for t in header.tensors if _is_mtp_tensor(t.name)],
        sampling={k: r.value for k, r in header.records.items() if k.startswith("general.sampling.")},
        template=template_check, tool_use_template=tool_use_check, other_templates=named)
    _judge(report, header, fix_target or str(path), Path(path).name)
    return report


def _judge(report: DoctorReport, header: GGUFHeader, target: str, file: str) -> None:
    vocabulary_ok = True
    if header.tokens is None:
        report.problems.append("the file has no tokenizer.ggml.tokens vocabulary")
        vocabulary_ok = False
    for stop in report.stops:
        if header.tokens is not None and stop.token_id is None:
            report.problems.append(f"{stop.text} is not in the vocabulary, so it cannot end generation")
            vocabulary_ok = False
    fixable = False
    for check in filter(None, (report.template, report.tool_use_template)):
        if check.status == "missing":
            report.problems.append("no chat template is embedded: llama-server falls back to plain ChatML "
                                   "without tools, and LM Studio and llama-cpp-python have nothing to render")
            fixable = True
        elif not check.good:
            used_by = ("llama-server uses it for every request with tools" if check.key == TOOL_USE_TEMPLATE_KEY
                       else "every runtime that reads the file renders with it")
            report.problems.append(f"{check.summary()}; {used_by}")
            fixable = True
    for key, (text, wanted_id) in expected_token_ids(header).items():
        actual = header.get(key)
        if wanted_id is not None and actual != wanted_id and key != PAD_KEY:
            shown = "not set" if actual is None else f"{actual} ({header.token_text(actual)!r})"
            report.warnings.append(f"{key} is {shown}, ours is {wanted_id} ({text!r})")
    wanted_sampling = expected_sampling()
    off = [k for k, (_, v) in wanted_sampling.items() if not _sampling_matches(report.sampling.get(k), v)]
    if off:
        report.warnings.append(
            "general.sampling.* " + ("missing" if not report.sampling else f"differs from templates/params.json on {', '.join(off)}")
            + ": llama-server and LM Studio will sample with their own defaults (temperature 0.8), not ours")
    if not vocabulary_ok:
        report.fix = ("none by metadata: this vocabulary is not the smol-tools (Qwen ChatML) one; "
                      "use a GGUF of smol-tools-4b-32k")
    elif fixable:
        report.fix = retemplate_command(target, file)
    elif report.warnings:
        report.fix = f"optional, for our sampling defaults and stop ids: {retemplate_command(target, file)}"


def panel_markdown(report: DoctorReport) -> str:
    """The app's Backend panel: what the loaded file is, and whether it works outside the app.

    In process the app renders every prompt with our own template, so any GGUF of the model
    works there; the verdict is about the same file in runtimes that read its metadata."""
    name = Path(report.path).name
    facts = ", ".join(filter(None, [report.architecture, report.quant,
                                    f"context {report.context_length:,}" if report.context_length else None,
                                    "MTP" if report.mtp_layers or report.mtp_tensors else None]))
    lines = [f"**Loaded file:** `{name}` ({facts}). This app renders prompts with its own template, "
             f"so the file works here whatever it embeds.",
             f"**Embedded template:** {report.template.summary().removeprefix(TEMPLATE_KEY + ': ')}."]
    if report.ok:
        lines.append("**Outside this app** (llama-server `--jinja`, LM Studio, llama-cpp-python): ✓ correct "
                     "tool calling as it is" + (f" ({len(report.warnings)} warning(s): "
                                                 f"{'; '.join(report.warnings)})" if report.warnings else "."))
    else:
        lines.append("**Outside this app** (llama-server `--jinja`, LM Studio, llama-cpp-python): ✗ "
                     + "; ".join(report.problems) + (f". Fix: `{report.fix}`" if report.fix else "."))
    return "\n\n".join(lines)
