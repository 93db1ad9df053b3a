"""`smol-tools package` on the checkpoints people really have: the tiny model re-dressed with the
chat templates other checkpoints ship (Qwen3.5-4B's and Qwen3's stock templates, a plain ChatML
loop, none at all, the template in tokenizer_config.json vs chat_template.jinja, ours), as one
safetensors file or sharded with an index, with and without MTP tensors; plus the checkpoints
that cannot be packaged (a tokenizer llama.cpp's converter does not know, folders that are not
checkpoints). Every row either converts and verifies or stops with a one-paragraph error that
names the fix: never a traceback.

The stock templates are llama.cpp's reference copies (tests/fixtures/templates/SOURCES.md).
Successful rows run the early steps only (source, template, MTP report, BF16 conversion,
metadata, verification with the scripted turns); one row, the case the command exists for (a
Qwen3.5 fine-tune with its base's stock template), runs the whole command to a verified Q8_0.
The top of the file needs no model: the guarded render, the source checks and the converter's
failure messages."""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
from pathlib import Path

import pytest

from smol_tools.chat_format import load_template
from smol_tools.pipeline.cli_args import add_package_parser, options_from_args
from smol_tools.pipeline.convert import (ConversionError, UnknownPreTokenizerError, check_declare_pre,
                                         explain_failure)
from smol_tools.pipeline.drift import (TemplateDriftError, check_template_drift, choose_template,
                                       drift_message, load_corpus)
from smol_tools.pipeline.fetch import SourceError, check_source, checkpoint_problem
from smol_tools.pipeline.progress import Progress

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "tests" / "fixtures" / "templates"
TURNS = ROOT / "tests" / "fixtures" / "scripted_conversations.json"
QWEN35 = (TEMPLATES / "Qwen3.5-4B.jinja").read_text(encoding="utf-8")
QWEN3 = (TEMPLATES / "Qwen-Qwen3-0.6B.jinja").read_text(encoding="utf-8")
CHATML = (TEMPLATES / "chatml.jinja").read_text(encoding="utf-8")
OURS = load_template()
NAME = "tiny-matrix"
THREADS = ["--threads", "1", "--verify-threads", "1"]

# What each stock template does wrong on our corpus, in its own words (the two crashes).
QWEN35_ERROR = "TypeError: Can only get item pairs from a mapping."
QWEN3_ERROR = "TypeError: argument of type 'NoneType' is not iterable"
CHATML_ERROR = 'TypeError: can only concatenate str (not "NoneType") to str'


def one_paragraph(text: str) -> str:
    """The whole of what the command printed to stderr: one line, no traceback."""
    text = text.strip()
    assert text.startswith("error: "), text[-2000:]
    assert "\n" not in text and "Traceback" not in text, text[-2000:]
    return text


# ---- the guarded render (no model) ---------------------------------------------------------------

@pytest.mark.parametrize("template, error, line", [(QWEN35, QWEN35_ERROR, 120), (QWEN3, QWEN3_ERROR, 34),
                                                   (CHATML, CHATML_ERROR, 1)])
def test_a_stock_template_that_crashes_is_a_reported_difference(tmp_path, template, error, line) -> None:
    (tmp_path / "chat_template.jinja").write_text(template)
    report = check_template_drift(tmp_path)  # the issue: this raised TypeError
    assert report.drift and report.failures
    assert error in report.failures[0].error and f"(template line {line})" in report.failures[0].error
    assert f"{len(report.failures)} of them it cannot render" in report.summary()
    message = drift_message(report)
    assert "\n" not in message and "--template ours" in message and error in message
    assert "--template checkpoint is refused" in message  # it could not be embedded anyway
    with pytest.raises(TemplateDriftError, match="every file would fail verification"):
        choose_template(report, "checkpoint")
    assert choose_template(report, "ours") == (OURS, "ours")


def test_a_template_that_does_not_even_compile_is_a_difference(tmp_path) -> None:
    (tmp_path / "chat_template.jinja").write_text("{% for m in messages %}{{ m.content }")
    report = check_template_drift(tmp_path)
    assert len(report.failures) == report.cases  # every case, each with the syntax error
    assert report.failures[0].error.startswith("TemplateSyntaxError: ")
    assert "(template line 1)" in report.failures[0].error


def test_a_template_that_differs_but_renders_may_be_kept(tmp_path) -> None:
    drifted = OURS.replace("within <tool_call></tool_call> XML tags", "inside <function=...> tags")
    (tmp_path / "chat_template.jinja").write_text(drifted)
    report = check_template_drift(tmp_path)
    assert report.drift and not report.failures
    message = drift_message(report)
    assert "--template ours" in message and "--template checkpoint (keep" in message
    assert choose_template(report, "checkpoint") == (drifted, "checkpoint")


def test_an_unreadable_template_file_is_reported_not_raised(tmp_path) -> None:
    (tmp_path / "tokenizer_config.json").write_text('{"chat_template": "{{ x }}",')  # cut short
    report = check_template_drift(tmp_path)
    assert report.drift and report.found_in == "tokenizer_config.json"
    assert "cannot be read: JSONDecodeError" in report.summary()
    with pytest.raises(TemplateDriftError, match="--template ours"):
        choose_template(report, None)
    with pytest.raises(TemplateDriftError, match="Fix that file"):
        choose_template(report, "checkpoint")
    assert choose_template(report, "ours") == (OURS, "ours")
    (tmp_path / "tokenizer_config.json").unlink()
    (tmp_path / "chat_template.jinja").write_bytes(b"\xff\xfe{{ not utf-8 }}")
    assert "UnicodeDecodeError" in check_template_drift(tmp_path).summary()


def test_a_processors_chat_template_json_is_read_last(tmp_path) -> None:
    (tmp_path / "chat_template.json").write_text(json.dumps({"chat_template": QWEN35}))
    assert check_template_drift(tmp_path).found_in == "chat_template.json"
    (tmp_path / "tokenizer_config.json").write_text("{}")  # no template there: the next file counts
    (tmp_path / "chat_template.json").write_text("[1, 2")
    report = check_template_drift(tmp_path)
    assert report.found_in == "chat_template.json" and "JSONDecodeError" in report.read_error
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": OURS}))
    report = check_template_drift(tmp_path)
    assert report.found_in == "tokenizer_config.json" and not report.drift


# ---- SOURCE checks and the converter's failures (no model) ---------------------------------------

def _fake_checkpoint(folder: Path, *, config=True, tokenizer=True, weights=True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if config:
        (folder / "config.json").write_text('{"architectures": ["Qwen3_5ForCausalLM"]}')
    if tokenizer:
        (folder / "tokenizer.json").write_text("{}")
    if weights:
        (folder / "model.safetensors").write_bytes(b"\0" * 8)
    return folder


def test_what_is_not_a_checkpoint_is_named(tmp_path) -> None:
    assert checkpoint_problem(_fake_checkpoint(tmp_path / "ok")) is None
    empty = tmp_path / "empty"
    empty.mkdir()
    problem = checkpoint_problem(empty)
    assert "no config.json, no tokenizer (tokenizer.json), no weights (*.safetensors)" in problem
    assert "found: nothing" in problem
    assert "no weights" in checkpoint_problem(_fake_checkpoint(tmp_path / "nw", weights=False))
    assert checkpoint_problem(_fake_checkpoint(tmp_path / "nw2", weights=False), need_weights=False) is None
    ggufs = tmp_path / "ggufs"
    ggufs.mkdir()
    (ggufs / "model-q4_k_m.gguf").write_bytes(b"GGUF")
    assert "already converted" in checkpoint_problem(ggufs)
    pickles = _fake_checkpoint(tmp_path / "bin", weights=False)
    (pickles / "pytorch_model.bin").write_bytes(b"\0")
    assert "safe_serialization=True" in checkpoint_problem(pickles)
    broken = _fake_checkpoint(tmp_path / "broken")
    (broken / "config.json").write_text("{")
    assert "config.json cannot be read" in checkpoint_problem(broken)
    sharded = _fake_checkpoint(tmp_path / "sharded", weights=False)
    (sharded / "model-00001-of-00002.safetensors").write_bytes(b"\0")
    (sharded / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    assert "lacks 1 of the 2 weight shards" in checkpoint_problem(sharded)


def test_source_that_is_neither_folder_nor_repo_id(tmp_path) -> None:
    check_source("enfuse/smol-tools-4b-32k")  # a repo id passes; the fetch step resolves it
    check_source(str(_fake_checkpoint(tmp_path / "ok")))
    with pytest.raises(SourceError, match="is a file, not a checkpoint"):
        check_source(str(tmp_path / "ok" / "config.json"))
    with pytest.raises(SourceError, match="neither a folder here nor a Hub repo id"):
        check_source(str(tmp_path / "no" / "such" / "folder"))
    with pytest.raises(SourceError, match="no weights"):
        check_source(str(_fake_checkpoint(tmp_path / "nw", weights=False)))


def test_converter_failures_become_one_paragraph(tmp_path) -> None:
    # The shape of the vendored converter's log (conversion/base.py, get_vocab_base_pre).
    log = ("INFO:hf-to-gguf:Loading model: x\nWARNING:hf-to-gguf:** chkhsh:  " + "ab" * 32 + "\n"
           "Traceback (most recent call last):\n  ...\nNotImplementedError: BPE pre-tokenizer was "
           "not recognized - update get_vocab_base_pre()\n")
    error = explain_failure(log, tmp_path, 1)
    assert isinstance(error, UnknownPreTokenizerError)
    assert "--declare-pre qwen35" in str(error) and "abababab" in str(error)
    assert "\n" not in str(error) and "Traceback" not in str(error)
    error = explain_failure("NotImplementedError: Architecture 'FooForCausalLM' not supported!", tmp_path, 1)
    assert "'FooForCausalLM'" in str(error) and "Qwen3_5ForCausalLM" in str(error) and "\n" not in str(error)
    log = "INFO:hf-to-gguf:Model architecture: Bar\nERROR:hf-to-gguf:Model Bar is not supported\n"
    error = explain_failure(log, tmp_path, 1)
    assert "architecture 'Bar'" in str(error) and "\n" not in str(error)
    assert "exit 3" in str(explain_failure("something else", tmp_path, 3))  # unknown: the log tail


def test_a_misspelt_declare_pre_is_refused_with_the_known_names(tmp_path) -> None:
    vocab = tmp_path / "src" / "llama-vocab.cpp"
    vocab.parent.mkdir()
    vocab.write_text('if (tokenizer_pre == "qwen35") {} else if (tokenizer_pre == "qwen2") {}')
    check_declare_pre("qwen35", tmp_path)
    with pytest.raises(ConversionError, match=r"'qwen3\.5' is not a pre-tokenizer.*qwen2, qwen35\."):
        check_declare_pre("qwen3.5", tmp_path)
    check_declare_pre("anything", tmp_path / "elsewhere")  # unknown layout: no check, no block


# ---- the matrix (the tiny model, re-dressed) -----------------------------------------------------

def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)  # the weights are never written to: share them
    except OSError:
        shutil.copy2(src, dst)


def _write_shards(weights: Path, folder: Path, shards: int = 2) -> None:
    """The checkpoint's tensors as `shards` files plus the index transformers writes."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(weights)
    names = sorted(tensors)
    weight_map: dict[str, str] = {}
    for i in range(shards):
        part = names[i::shards]
        shard = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        save_file({n: tensors[n].contiguous() for n in part}, folder / shard, metadata={"format": "pt"})
        weight_map |= {n: shard for n in part}
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))


def make_checkpoint(base: Path, folder: Path, *, jinja: str | None = None, in_config: str | None = None,
                    sharded: bool = False) -> Path:
    """`base` with its template files replaced: chat_template.jinja holds `jinja` (absent if None),
    tokenizer_config.json's chat_template is `in_config` (absent if None)."""
    folder.mkdir(parents=True)
    for item in base.iterdir():
        if item.is_file() and item.name not in ("chat_template.jinja", "tokenizer_config.json",
                                                 "model.safetensors"):
            _link_or_copy(item, folder / item.name)
    config = json.loads((base / "tokenizer_config.json").read_text(encoding="utf-8"))
    config.pop("chat_template", None)
    if in_config is not None:
        config["chat_template"] = in_config
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    if jinja is not None:
        (folder / "chat_template.jinja").write_text(jinja, encoding="utf-8")
    if sharded:
        _write_shards(base / "model.safetensors", folder)
    else:
        _link_or_copy(base / "model.safetensors", folder / "model.safetensors")
    return folder


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="smol-tools")
    add_package_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["package", *argv])


def package_argv(source: Path, out: Path, *extra: str, declare_pre: bool = True,
                 turns: bool = True) -> list[str]:
    return [str(source), "--out", str(out), "--model-name", NAME, "--quants", "Q8_0", "--imatrix", "off",
            "--no-memory-check", *THREADS, *(["--expect-turns", str(TURNS)] if turns else []),
            *(["--declare-pre", "qwen35"] if declare_pre else []), *extra]


def run_command(argv: list[str], capsys) -> tuple[int, str, str]:
    """The `package` subcommand as the CLI runs it: exit status, stdout, stderr."""
    args = parse(argv)
    status = args.func(args)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture(scope="module")
def mtp_base(tiny_model) -> Path:
    from devkit.mtp_checkpoint import ensure_mtp_checkpoint

    return ensure_mtp_checkpoint(tiny_model.path)


# Rows that must stop before converting anything: (id, template files, flags, what the error says).
REFUSED = [
    ("qwen35-stock", {"jinja": QWEN35}, [], ["template drift", "chat_template.jinja", QWEN35_ERROR,
                                             "--template ours"]),
    ("qwen3-stock", {"jinja": QWEN3}, [], ["template drift", QWEN3_ERROR, "--template ours"]),
    ("chatml", {"jinja": CHATML}, [], ["template drift", CHATML_ERROR, "--template ours"]),
    ("qwen35-in-tokenizer-config", {"in_config": QWEN35}, [],
     ["template drift", "(tokenizer_config.json)", QWEN35_ERROR, "--template ours"]),
    # transformers 5 reads chat_template.jinja first: ours in tokenizer_config.json does not count.
    ("qwen35-jinja-beside-ours-in-config", {"jinja": QWEN35, "in_config": OURS}, [],
     ["template drift", "(chat_template.jinja)", QWEN35_ERROR]),
    ("qwen35-kept-on-request", {"jinja": QWEN35}, ["--template", "checkpoint"],
     ["--template checkpoint", "every file would fail verification", QWEN35_ERROR, "Use --template ours"]),
]


@pytest.mark.slow
@pytest.mark.parametrize("row, files, flags, says", REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_with_the_choice_explained(tiny_model, tmp_path, capsys, row, files, flags, says) -> None:
    source = make_checkpoint(tiny_model.path, tmp_path / row, **files)
    out = tmp_path / "out"
    status, _, err = run_command(package_argv(source, out, *flags), capsys)
    assert status == 2
    message = one_paragraph(err)
    for phrase in says:
        assert phrase in message, (phrase, message)
    assert not list(out.glob("*.gguf")) and not list(out.glob("*.partial"))  # stopped before converting


# Rows that convert and verify: (id, base, template files, sharded, flags, the template step's words).
# Qwen3.5's stock template with --template ours, sharded, is the end-to-end test below.
BUILT = [
    ("qwen3-stock+ours, mtp", "mtp", {"jinja": QWEN3}, False, ["--template", "ours"], "differs from ours"),
    ("chatml+ours, mtp sharded", "mtp", {"jinja": CHATML}, True, ["--template", "ours"], "differs from ours"),
    ("no template", "tiny", {}, False, [], "ships no chat template"),
    ("ours in jinja, qwen35 in config", "tiny", {"jinja": OURS, "in_config": QWEN35}, False, [],
     "(chat_template.jinja) renders all"),
    ("ours in tokenizer_config", "tiny", {"in_config": OURS}, False, [], "(tokenizer_config.json) renders all"),
]


@pytest.mark.slow
@pytest.mark.parametrize("row, base, files, sharded, flags, template_step", BUILT, ids=[r[0] for r in BUILT])
def test_converts_and_verifies(tiny_model, mtp_base, tmp_path, row, base, files, sharded, flags,
                               template_step) -> None:
    """The early steps, as `run` strings them: source, template, MTP, BF16 + metadata + verify.
    Sharded rows also replay the scripted turns (about 15 s each), which proves the re-sharded
    weights converted intact; the others verify with the short smoke generation."""
    from gguf import GGUFReader

    from smol_tools.pipeline.mtp import gguf_mtp_layers
    from smol_tools.pipeline.package import Pipeline

    with_mtp = base == "mtp"
    source = make_checkpoint(mtp_base if with_mtp else tiny_model.path, tmp_path / "checkpoint",
                             sharded=sharded, **files)
    assert (source / "model.safetensors.index.json").exists() == sharded
    stream = io.StringIO()
    argv = package_argv(source, tmp_path / "out", *flags, turns=sharded)
    pipeline = Pipeline(options_from_args(parse(argv)), Progress(stream))
    pipeline.start()
    pipeline.fetch()
    pipeline.check_template()
    pipeline.report_mtp()
    pipeline.convert()
    log = stream.getvalue()
    template_line = next(line for line in log.splitlines() if "]  template" in line)
    assert template_step in template_line and "embedding ours" in template_line, log
    assert pipeline.has_mtp == with_mtp
    [bf16] = pipeline.files
    assert bf16.verified and bf16.publishable, (row, bf16.problems, log)
    cases = len(load_corpus())
    assert f"corpus {cases}/{cases}" in log  # the embedded template (ours) renders the corpus in llama.cpp
    if sharded:
        assert "turns 19/19" in log  # the re-sharded weights still reproduce every scripted turn
    path = tmp_path / "out" / bf16.name
    assert GGUFReader(path).get_field("tokenizer.chat_template").contents() == OURS
    assert gguf_mtp_layers(path) == (1 if with_mtp else 0)


@pytest.mark.slow
def test_the_stock_qwen35_fine_tune_packages_end_to_end(tiny_model, tmp_path, capsys) -> None:
    """The issue's case through the whole command: refused without a choice, then built from
    sharded weights, every file replaying the scripted turns."""
    from gguf import GGUFReader

    source = make_checkpoint(tiny_model.path, tmp_path / "checkpoint", jinja=QWEN35, sharded=True)
    out = tmp_path / "out"
    status, _, err = run_command(package_argv(source, out), capsys)
    assert status == 2 and QWEN35_ERROR in one_paragraph(err)
    status, log, err = run_command(package_argv(source, out, "--template", "ours"), capsys)
    assert status == 0, log[-3000:] + err[-3000:]
    assert "(chat_template.jinja) differs from ours" in log and "embedding ours" in log
    assert "2/2 files verified" in log and log.count("turns 19/19") == 2  # BF16 and Q8_0
    for kind in ("bf16", "q8_0"):
        reader = GGUFReader(out / f"{NAME}-{kind}.gguf")
        assert reader.get_field("tokenizer.chat_template").contents() == OURS
    assert (out / "README.md").is_file()


@pytest.mark.slow
def test_an_unknown_pre_tokenizer_names_declare_pre(tiny_model, tmp_path, capsys) -> None:
    """The tiny model's tokenizer was trained here: the converter does not know its hash."""
    out = tmp_path / "out"
    status, _, err = run_command(package_argv(tiny_model.path, out, declare_pre=False), capsys)
    assert status == 2
    message = one_paragraph(err)
    assert "does not recognise the BPE pre-tokenizer" in message and "--declare-pre qwen35" in message
    assert "INFO:hf-to-gguf" not in message  # the converter's log is not printed
    assert not list(out.glob("*.gguf")) and not list(out.glob("*.partial"))


@pytest.mark.slow
def test_a_misspelt_declare_pre_stops_before_converting(tiny_model, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    argv = package_argv(tiny_model.path, out, declare_pre=False) + ["--declare-pre", "qwen3.5"]
    status, _, err = run_command(argv, capsys)
    assert status == 2
    assert "'qwen3.5' is not a pre-tokenizer llama.cpp knows" in one_paragraph(err)
    assert "qwen35" in err and not list(out.glob("*.gguf"))


def test_not_a_checkpoint_is_refused_before_any_step(tmp_path, capsys) -> None:
    """No step runs, so nothing is written: not out/, not out/build/."""
    empty = tmp_path / "empty"
    empty.mkdir()
    config_only = _fake_checkpoint(tmp_path / "config-only", weights=False)
    weights_only = _fake_checkpoint(tmp_path / "weights-only", config=False)
    gguf_file = tmp_path / "model.gguf"
    gguf_file.write_bytes(b"GGUF")
    cases = [(empty, "no config.json"), (config_only, "no weights (*.safetensors)"),
             (weights_only, "no config.json"), (gguf_file, "is a file, not a checkpoint"),
             (tmp_path / "typo" / "model", "neither a folder here nor a Hub repo id")]
    for source, says in cases:
        out = tmp_path / f"out-{source.name}"
        status, stdout, err = run_command(package_argv(source, out), capsys)
        assert status == 2 and says in one_paragraph(err), (source, err)
        assert not out.exists() and stdout == "", source
