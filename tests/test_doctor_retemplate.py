"""`smol-tools doctor` and `smol-tools retemplate` on GGUFs of the tiny model.

Four variants of the tiny F16 GGUF, their metadata rewritten with gguf's own
`copy_with_new_metadata` (independent of the code under test): Qwen3.5-4B's stock template (the
XML call form, as llama.cpp vendors it; tests/fixtures/templates/), a plain ChatML template, no
template at all, and ours as our pipeline embeds it. doctor must fail the first three and pass
the last; retemplate must fix each without changing one tensor byte, after which a real
llama-server renders the whole corpus like our renderer and returns parsed tool calls."""

from __future__ import annotations

import json
import shutil
import struct
import time
from pathlib import Path

import pytest

from smol_tools.chat_format import load_params, load_template
from smol_tools.cli import main
from smol_tools.gguf_doctor import diagnose
from smol_tools.gguf_header import read_header
from tests.conftest import render_corpus
from tests.fixtures.server_render import SERVER_INPUT_LIMITS, ours_render, server_render

STOCK_TEMPLATE = Path(__file__).parent / "fixtures" / "templates" / "Qwen3.5-4B.jinja"
CHATML_TEMPLATE = Path(__file__).parent / "fixtures" / "templates" / "chatml.jinja"
FOREIGN = ("qwen35_stock", "chatml", "no_template")


def _rewrite(source: Path, target: Path, template: str | None) -> Path:
    """`source` with tokenizer.chat_template replaced (None: removed), via gguf's own tool."""
    from gguf import GGUFReader, GGUFValueType, GGUFWriter, Keys
    from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata

    reader = GGUFReader(source)
    writer = GGUFWriter(target, arch=reader.get_field(Keys.General.ARCHITECTURE).contents(),
                        endianess=reader.endianess)
    new = {} if template is None else {Keys.Tokenizer.CHAT_TEMPLATE: MetadataDetails(GGUFValueType.STRING, template)}
    removed = [Keys.Tokenizer.CHAT_TEMPLATE] if template is None else []
    copy_with_new_metadata(reader, writer, new, removed)
    return target


@pytest.fixture(scope="module")
def variants(tiny_gguf_f16: Path, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("gguf-variants")
    return {
        "qwen35_stock": _rewrite(tiny_gguf_f16, folder / "stock.gguf", STOCK_TEMPLATE.read_text(encoding="utf-8")),
        "chatml": _rewrite(tiny_gguf_f16, folder / "chatml.gguf", CHATML_TEMPLATE.read_text(encoding="utf-8")),
        "no_template": _rewrite(tiny_gguf_f16, folder / "none.gguf", None),
        "ours": tiny_gguf_f16,
    }


@pytest.fixture(scope="module")
def fixed(variants: dict[str, Path], tmp_path_factory) -> dict[str, Path]:
    """Each foreign variant after `smol-tools retemplate IN OUT`."""
    folder = tmp_path_factory.mktemp("gguf-fixed")
    out = {}
    for name in FOREIGN:
        out[name] = folder / f"{name}.gguf"
        assert main(["retemplate", str(variants[name]), str(out[name])]) == 0
    return out


def _doctor_json(capsys, target: Path | str) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["doctor", str(target), "--json"])
    return code, json.loads(capsys.readouterr().out)


def _token_id(path: Path, text: str) -> int:
    return read_header(path).token_id(text)


# ---- doctor ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["qwen35_stock", "chatml", "no_template", "ours"])
def test_doctor_verdict_and_report(variants, capsys, name: str) -> None:
    path = variants[name]
    code, report = _doctor_json(capsys, path)
    assert code == (0 if name == "ours" else 1)
    assert report["ok"] is (name == "ours")
    # The facts, all from the header.
    assert report["architecture"] == "qwen35"
    assert report["quant"] == "F16"
    assert report["context_length"] == read_header(path).get("qwen35.context_length") > 0
    im_end, endoftext = _token_id(path, "<|im_end|>"), _token_id(path, "<|endoftext|>")
    assert report["eos"] == {"id": im_end, "text": "<|im_end|>"}
    assert report["stops"] == [{"text": "<|im_end|>", "id": im_end, "ends_generation": True},
                               {"text": "<|endoftext|>", "id": endoftext, "ends_generation": True}]
    assert report["mtp_layers"] == 0 and report["mtp_tensors"] == []
    assert report["sampling"] == {}  # the converter alone writes none; the pipeline's metadata step does (test_sampling_defaults.py)
    template = report["template"]
    if name == "ours":
        assert template["status"] == "ours" and report["problems"] == []
        assert "optional" in report["fix"]  # sampling defaults are a warning, not a failure
    elif name == "no_template":
        assert template["status"] == "missing"
        assert report["fix"].startswith(f"smol-tools retemplate {path} ")
    else:
        assert template["status"] == "different"
        assert template["cases"] == len(render_corpus())
        assert report["fix"].startswith(f"smol-tools retemplate {path} ")


def test_doctor_names_the_stock_templates_failures_and_first_bytes(variants, capsys) -> None:
    _, stock = _doctor_json(capsys, variants["qwen35_stock"])
    differences = stock["template"]["differences"]
    # The stock template applies |items to arguments our corpus passes as a JSON string.
    assert any(d["error"] and "mapping" in d["error"] for d in differences)
    # Where it renders, the tools instruction asks for the XML call form, not ours.
    rendered = [d for d in differences if d["error"] is None]
    assert rendered and all(d["offset"] is not None for d in rendered)
    case = next(c for c in render_corpus() if c["id"] == rendered[0]["case_id"])
    ours = ours_render(case).encode()
    assert ours[rendered[0]["offset"]:].decode(errors="replace").startswith(rendered[0]["ours"])
    _, chatml = _doctor_json(capsys, variants["chatml"])
    first = chatml["template"]["differences"][0]
    assert first["error"] is None and first["ours"] != first["theirs"]


def test_doctor_text_report_says_what_to_run(variants, capsys) -> None:
    capsys.readouterr()
    assert main(["doctor", str(variants["no_template"])]) == 1
    out = capsys.readouterr().out
    assert "tokenizer.chat_template: missing" in out
    assert "verdict: NOT OK" in out
    assert f"fix: smol-tools retemplate {variants['no_template']} " in out


def test_doctor_reads_the_header_only(tiny_gguf_f16: Path, tmp_path: Path) -> None:
    """A 3 GiB GGUF (sparse: the tiny model's header, then one huge declared tensor) is
    diagnosed in well under a second: no tensor data is read."""
    from gguf import GGUFReader, GGUFWriter, GGMLQuantizationType
    import numpy as np

    reader = GGUFReader(tiny_gguf_f16)
    big = tmp_path / "big.gguf"
    writer = GGUFWriter(big, arch="qwen35")
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name == "general.architecture":
            continue
        sub = field.types[-1] if len(field.types) > 1 else None
        writer.add_key_value(field.name, field.contents(), field.types[0], sub_type=sub)
    n = 3 * 2**30 // 4
    writer.add_tensor_info("blk.0.ffn_up.weight", (n // 1024, 1024), np.dtype(np.float32), n * 4,
                           GGMLQuantizationType.F32)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    header_end = big.stat().st_size
    with open(big, "r+b") as handle:
        handle.truncate(-(-header_end // 32) * 32 + n * 4)
    assert big.stat().st_size > 3 * 2**30
    started = time.perf_counter()
    report = diagnose(big)
    elapsed = time.perf_counter() - started
    assert report.ok and report.tensors == 1
    assert elapsed < 1.0, f"doctor took {elapsed:.2f} s on a 3 GiB file"


def test_doctor_bad_input_is_one_clear_error(tmp_path: Path, capsys) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf at all" * 10)
    assert main(["doctor", str(junk)]) == 2
    err = capsys.readouterr().err
    assert "not a GGUF file" in err and "Traceback" not in err
    assert main(["doctor", str(tmp_path / "absent.gguf")]) == 2
    assert "absent.gguf" in capsys.readouterr().err


# ---- retemplate -----------------------------------------------------------------------------------

def _tensor_bytes(path: Path) -> dict[str, tuple]:
    from gguf import GGUFReader

    reader = GGUFReader(path)
    return {t.name: (t.tensor_type, tuple(int(x) for x in t.shape), t.data.tobytes()) for t in reader.tensors}


def _fields(path: Path) -> dict:
    from gguf import GGUFReader

    return {name: field.contents() for name, field in GGUFReader(path).fields.items()
            if not name.startswith("GGUF.")}


@pytest.mark.parametrize("name", FOREIGN)
def test_retemplate_fixes_metadata_and_keeps_every_tensor_byte(variants, fixed, capsys, name: str) -> None:
    source, out = variants[name], fixed[name]
    before, after = _tensor_bytes(source), _tensor_bytes(out)
    assert list(before) == list(after) and len(before) > 10
    for tensor, data in before.items():
        assert after[tensor] == data, tensor
    code, report = _doctor_json(capsys, out)
    assert code == 0 and report["template"]["status"] == "ours" and report["warnings"] == []
    old, new = _fields(source), _fields(out)
    im_end, endoftext = _token_id(source, "<|im_end|>"), _token_id(source, "<|endoftext|>")
    assert new["tokenizer.chat_template"] == load_template()
    assert (new["tokenizer.ggml.eos_token_id"], new["tokenizer.ggml.eot_token_id"],
            new["tokenizer.ggml.padding_token_id"]) == (im_end, im_end, endoftext)
    sampling = load_params().sampling
    assert new["general.sampling.top_k"] == sampling["top_k"]
    assert new["general.sampling.temp"] == pytest.approx(sampling["temperature"])
    assert new["general.sampling.top_p"] == pytest.approx(sampling["top_p"])
    # Nothing else changed: every other key/value is the source's.
    touched = {"tokenizer.chat_template", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
               "tokenizer.ggml.padding_token_id"}
    assert {k: v for k, v in old.items() if k not in touched} == \
        {k: v for k, v in new.items() if k not in touched and not k.startswith("general.sampling.")}


def test_retemplate_refuses_its_input_as_output_without_in_place(variants, tmp_path: Path, capsys) -> None:
    copy = tmp_path / "stock.gguf"
    shutil.copyfile(variants["qwen35_stock"], copy)
    original = copy.read_bytes()
    capsys.readouterr()
    assert main(["retemplate", str(copy), str(copy)]) == 2
    assert "--in-place" in capsys.readouterr().err
    assert main(["retemplate", str(copy)]) == 2
    assert copy.read_bytes() == original
    assert main(["retemplate", str(copy), "--in-place"]) == 0
    assert "doctor on the result" in capsys.readouterr().out
    assert diagnose(copy).ok
    assert _tensor_bytes(copy) == _tensor_bytes(variants["qwen35_stock"])
    assert not list(tmp_path.glob(".*partial"))
    # A second run has nothing to do and leaves the file alone.
    stamp = copy.stat().st_mtime_ns
    assert main(["retemplate", str(copy), "--in-place"]) == 0
    assert "nothing rewritten" in capsys.readouterr().out
    assert copy.stat().st_mtime_ns == stamp


def _small_gguf(path: Path, tokens: list[str], **strings: str) -> Path:
    from gguf import GGUFWriter
    import numpy as np

    writer = GGUFWriter(path, arch="qwen35")
    writer.add_token_list(tokens)
    for key, value in strings.items():
        writer.add_string(key.replace("__", "."), value)
    writer.add_tensor("blk.0.nextn.eh_proj.weight", np.arange(40, dtype=np.float32).reshape(5, 8))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_retemplate_drops_a_foreign_tool_use_template(tmp_path: Path, capsys) -> None:
    """llama.cpp renders requests with tools through tokenizer.chat_template.tool_use when the
    file has one; doctor fails such a file and retemplate removes the key."""
    path = _small_gguf(tmp_path / "tool_use.gguf", ["a", "<|im_end|>", "<|endoftext|>"],
                       tokenizer__chat_template=load_template(),
                       tokenizer__chat_template__tool_use="{{ raise_exception('no') }}")
    code, report = _doctor_json(capsys, path)
    assert code == 1 and report["tool_use_template"]["status"] == "different"
    assert report["mtp_tensors"] == ["blk.0.nextn.eh_proj.weight"]
    out = tmp_path / "fixed.gguf"
    assert main(["retemplate", str(path), str(out)]) == 0
    assert "tokenizer.chat_template.tool_use" not in read_header(out).records
    assert _tensor_bytes(out) == _tensor_bytes(path)


def test_retemplate_refuses_a_vocabulary_without_our_stop_tokens(tmp_path: Path, capsys) -> None:
    path = _small_gguf(tmp_path / "llama.gguf", ["a", "</s>", "<s>"])
    code, report = _doctor_json(capsys, path)
    assert code == 1 and report["fix"].startswith("none by metadata")
    assert main(["retemplate", str(path), str(tmp_path / "out.gguf")]) == 2
    err = capsys.readouterr().err
    assert "not in this file's vocabulary" in err and "Traceback" not in err
    assert not (tmp_path / "out.gguf").exists()


def test_retemplate_refuses_a_split_shard(tmp_path: Path, capsys) -> None:
    from gguf import GGUFWriter

    path = tmp_path / "m-00001-of-00002.gguf"
    writer = GGUFWriter(path, arch="qwen35")
    writer.add_token_list(["<|im_end|>", "<|endoftext|>"])
    writer.add_uint16("split.no", 0)
    writer.add_uint16("split.count", 2)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    assert main(["retemplate", str(path), str(tmp_path / "out.gguf")]) == 2
    assert "llama-gguf-split --merge" in capsys.readouterr().err


def test_header_reader_agrees_with_gguf(variants) -> None:
    """Our fast header walk finds what gguf's GGUFReader finds (offsets, types, values)."""
    from gguf import GGUFReader

    path = variants["qwen35_stock"]
    ours, theirs = read_header(path), GGUFReader(path)
    assert ours.data_start == theirs.data_offset
    assert [(t.name, t.ggml_type, t.offset, t.n_bytes) for t in ours.tensors] == \
        [(t.name, int(t.tensor_type), int(t.data_offset) - theirs.data_offset, int(t.n_bytes)) for t in theirs.tensors]
    assert ours.tokens == theirs.get_field("tokenizer.ggml.tokens").contents()
    for name, record in ours.records.items():
        if isinstance(record.value, (str, int, float)):
            assert theirs.get_field(name).contents() == pytest.approx(record.value), name
    assert struct.unpack("<Q", path.read_bytes()[16:24])[0] == len(ours.records)


# ---- the fixed files in a real llama-server --------------------------------------------------------

def _arguments(call: dict) -> dict:
    arguments = call["function"]["arguments"]  # the OpenAI wire form is a JSON string
    return json.loads(arguments) if isinstance(arguments, str) else arguments


@pytest.mark.slow
def test_retemplated_stock_file_renders_and_calls_tools_in_llama_server(fixed) -> None:
    """One llama-server --jinja on the retemplated stock-template file: every corpus case renders
    byte-identical to our renderer, and the scripted tool-call turns come back as parsed
    tool_calls."""
    from smol_tools.llamacpp.server import LlamaServer
    from devkit.scripted import load_scripted, scripted_turns

    cases = [c for c in render_corpus() if c["id"] not in SERVER_INPUT_LIMITS]
    tools = load_scripted()["tools"]
    turns = [t for t in scripted_turns() if t.message.get("tool_calls")]
    assert len(cases) >= 38 and len(turns) >= 5
    # One thread: on a shared 2-core machine two spinning threads are the slower choice.
    with LlamaServer(fixed["qwen35_stock"], ctx_size=2048, threads=1,
                     extra_args=["--no-prefill-assistant"]) as server:
        for case in cases:
            assert server_render(server, case) == ours_render(case), case["id"]
        for turn in turns:
            reply = server.post("/v1/chat/completions", {
                "messages": turn.history, "tools": tools, "temperature": 0, "max_tokens": 256,
                "chat_template_kwargs": {"enable_thinking": turn.thinking}})
            message = reply["choices"][0]["message"]
            got = [(c["function"]["name"], _arguments(c)) for c in message.get("tool_calls") or []]
            want = [(c["function"]["name"], _arguments(c)) for c in turn.message["tool_calls"]]
            assert got == want, turn.name


@pytest.mark.slow
def test_render_engine_llama_on_the_fixed_file_equals_jinja(fixed, tmp_path: Path, capsys) -> None:
    """The command a user runs: `smol-tools render --engine llama --gguf OUT` vs `--engine jinja`."""
    case = next(c for c in render_corpus() if c["id"] == "parallel_calls")
    messages, tools = tmp_path / "m.json", tmp_path / "t.json"
    messages.write_text(json.dumps(case["messages"]), encoding="utf-8")
    tools.write_text(json.dumps(case["tools"]), encoding="utf-8")
    prompts = []
    for engine in (["--engine", "llama", "--gguf", str(fixed["chatml"])], ["--engine", "jinja"]):
        capsys.readouterr()
        assert main(["render", "--messages", str(messages), "--tools", str(tools), *engine]) == 0
        prompts.append(capsys.readouterr().out)
    assert prompts[0] == prompts[1] and "<tool_call>" in prompts[0]


# ---- the app's Backend panel ---------------------------------------------------------------------

def test_backend_panel_shows_doctor_for_the_loaded_file(variants) -> None:
    """In process the app renders with our template (the file works there); the panel says
    whether the same file works in runtimes that read its metadata, and how to fix it."""
    from smol_tools.app.backend_choice import BackendChoice, open_backend

    stock = open_backend(BackendChoice("llama-cpp-python", str(variants["qwen35_stock"]), n_ctx=512))
    assert stock.ok
    panel = stock.details["file_check"]
    assert f"`{variants['qwen35_stock'].name}` (qwen35, F16" in panel
    assert "works here whatever it embeds" in panel
    assert "✗" in panel and f"Fix: `smol-tools retemplate {variants['qwen35_stock']} " in panel
    ours = open_backend(BackendChoice("llama-cpp-python", str(variants["ours"]), n_ctx=512))
    assert "✓ correct tool calling as it is" in ours.details["file_check"]
    assert "byte-identical to templates/smol-tools.jinja" in ours.details["file_check"]


def test_doctor_fix_line_for_a_hub_spec_writes_to_the_current_folder(variants) -> None:
    report = diagnose(variants["chatml"], fix_target="someone/model:Q8_0")
    assert report.fix == "smol-tools retemplate someone/model:Q8_0 chatml.smol-tools.gguf"
