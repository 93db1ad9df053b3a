"""The real-size stand-in builder and measurement harness (bench/real_size/), at a small scale.

The full-size run (`python -m bench --real-size`) takes hours and ~30 GB of disk; these tests run
the same code on a few-MB model with the real configuration's options (hybrid layer order, tied
embeddings, MTP head, a vocabulary padded beyond the tokenizer):
- the builder's checkpoint is exactly what transformers' `Qwen3_5ForCausalLM` loads (no missing or
  unexpected keys, same shapes, tied output) plus the MTP head, and llama.cpp's converter (through
  our pipeline) turns it into a GGUF with the padded vocabulary and the MTP block;
- the real configuration's tensor list (computed on the meta device, no memory) has the published
  model's size and shapes, and the shard plan keeps every shard under its bound;
- the harness runs end to end at tiny scale and writes the results file the card reads.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny_mtp_standin():
    from bench.real_size.config import TINY_MTP
    from bench.real_size.standin import ensure_standin

    return ensure_standin(TINY_MTP, log=lambda _: None)


def test_standin_is_what_transformers_loads(tiny_mtp_standin):
    import torch
    from safetensors import safe_open
    from transformers.models.qwen3_5 import Qwen3_5ForCausalLM

    folder = tiny_mtp_standin.path
    assert (folder / "complete").exists()
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    on_disk: dict[str, tuple[int, ...]] = {}
    for shard in sorted(set(index["weight_map"].values())):
        with safe_open(folder / shard, "pt") as handle:
            for name in handle.keys():
                on_disk[name] = tuple(handle.get_slice(name).get_shape())
                assert handle.get_slice(name).get_dtype() == "BF16"
    assert set(on_disk) == set(index["weight_map"])

    model, info = Qwen3_5ForCausalLM.from_pretrained(folder, output_loading_info=True, dtype=torch.bfloat16)
    assert not info["missing_keys"] and not info["mismatched_keys"], info
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items() if k != "lm_head.weight"}
    mtp = {k: v for k, v in on_disk.items() if k.startswith("mtp.")}
    assert {k: v for k, v in on_disk.items() if not k.startswith("mtp.")} == expected
    assert "lm_head.weight" not in on_disk  # tied, as the published checkpoint
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert len(mtp) == 15 and mtp["mtp.fc.weight"] == (256, 512)
    assert on_disk["model.embed_tokens.weight"] == (1024, 256)
    kinds = [("linear_attn" if any(k.startswith(f"model.layers.{i}.linear_attn.") for k in on_disk) else "full")
             for i in range(4)]
    assert kinds == ["linear_attn", "linear_attn", "linear_attn", "full"]
    # the model's own initialisation: 1-centred norms stored as 0, the gated norm as 1
    assert float(model.model.norm.weight.detach().abs().max()) == 0.0
    assert float(model.model.layers[0].linear_attn.norm.weight.detach().min()) == 1.0
    logits = model(torch.tensor([[1, 2, 3]])).logits
    assert logits.shape == (1, 3, 1024) and bool(torch.isfinite(logits).all())


def test_standin_is_reproducible_and_streamed(tmp_path):
    from bench.real_size.config import TINY, full_config
    from bench.real_size.standin import plan_shards, tensor_specs, write_shard

    specs = tensor_specs(full_config(TINY, {"eos_token_id": 701, "pad_token_id": 699}))
    shards = plan_shards(specs, shard_bytes=1 << 20)
    assert len(shards) > 1 and all(sum(s.nbytes for s in shard) <= 1 << 20 or len(shard) == 1 for shard in shards)
    assert [s.name for shard in shards for s in shard] == [s.name for s in specs]
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    size = write_shard(a, shards[0])
    write_shard(b, shards[0])
    assert a.stat().st_size == size and a.read_bytes() == b.read_bytes()


def test_real_configuration_tensor_list():
    from bench.real_size.config import REAL, full_config
    from bench.real_size.standin import SHARD_BYTES, plan_shards, tensor_specs

    config = full_config("real", {"eos_token_id": 701, "pad_token_id": 699})
    assert config["layer_types"] == ["full_attention" if (i + 1) % 4 == 0 else "linear_attention" for i in range(32)]
    specs = {s.name: s for s in tensor_specs(config)}
    n_params = sum(math.prod(s.shape) for s in specs.values())
    assert 4.2e9 < n_params < 4.4e9  # "4B": 4.33 B with the MTP head, text model only
    assert specs["model.embed_tokens.weight"].shape == (REAL["vocab_size"], 2560)
    assert "lm_head.weight" not in specs
    assert specs["model.layers.0.linear_attn.in_proj_qkv.weight"].shape == (2 * 16 * 128 + 32 * 128, 2560)
    assert specs["model.layers.0.linear_attn.A_log"].shape == (32,)
    assert specs["model.layers.3.self_attn.q_proj.weight"].shape == (2 * 16 * 256, 2560)  # with its output gate
    assert specs["model.layers.3.self_attn.k_proj.weight"].shape == (4 * 256, 2560)
    assert specs["model.layers.31.mlp.down_proj.weight"].shape == (2560, 9216)
    assert sum(name.startswith("mtp.") for name in specs) == 15
    shards = plan_shards(list(specs.values()))
    assert len(shards) == 5 and all(sum(s.nbytes for s in shard) <= SHARD_BYTES for shard in shards)


def test_pipeline_converts_the_standin(tiny_mtp_standin, tmp_path):
    from gguf import GGUFReader

    from smol_tools.pipeline.convert import convert_to_gguf
    from smol_tools.pipeline.mtp import gguf_mtp_layers

    out = tmp_path / "standin-bf16.gguf"
    result = convert_to_gguf(tiny_mtp_standin.path, out, outtype="bf16", declare_pre="qwen35")
    assert result.has_mtp and gguf_mtp_layers(out) == 1
    tensors = {t.name: t for t in GGUFReader(out).tensors}
    assert int(tensors["token_embd.weight"].shape[1]) == 1024  # the tokenizer's 708 tokens, padded
    assert "output.weight" not in tensors  # tied: llama.cpp reads the embedding as the output matrix


def test_harness_runs_at_tiny_scale_and_the_card_reads_its_file(tmp_path):
    """Every part but llama-bench (a separate llama.cpp build of minutes) on one quant and context."""
    out = tmp_path / "real-size.json"
    cmd = [sys.executable, "-m", "bench", "--real-size", "--scale", "tiny", "--quants", "Q8_0",
           "--package-quants", "Q8_0", "--contexts", "4096", "--threads", "1", "--work", str(tmp_path / "work"),
           "--out", str(out), "--parts", "convert-plan", "package", "in-process", "server", "app", "roofline", "session"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["not_measured"] == ["llama-bench: not run (not in --parts)"], report["not_measured"]
    assert report["scale"] == "tiny" and report["machine"]["cores"] and report["date"]
    plan = report["convert_plan"]
    assert plan["n_tensors"] == 55 and plan["token_embd"] == "BF16 {256, 1024}" and not plan["output_tensor"]
    package = report["package"]
    assert package["exit_status"] == 0 and package["files"]["smol-tools-standin-q8_0.gguf"] > 0
    steps = {s["step"] for s in package["steps"]}
    assert {"convert", "quantize", "verify", "memory", "card"} <= steps
    assert all({"wall_s", "cpu_s", "peak_rss_mib", "peak_disk_bytes"} <= set(s) for s in package["steps"])
    assert package["peak_rss_mib"] > 30 and package["peak_disk_bytes"] > 0
    entry = report["runtimes"]["Q8_0"]
    row = entry["contexts"]["4096"]
    assert row["in_process"]["tg_tokens_per_s"] > 0 and row["in_process"]["rss_after_fill_mib"] > 0
    assert row["in_process"]["prompt_tokens"] >= 512
    assert row["llama_server"]["tg_tokens_per_s"] > 0 and row["app"]["tg_tokens_per_s"] > 0
    assert row["llama_server"]["rss_after_turn_mib"] > 10 and row["app"]["rss_after_turn_mib"] > 10
    assert report["bandwidth"]["gb_per_s"] > 0 and entry["roofline"]["roofline_tokens_per_s"] > 0
    session = report["session"]
    assert len(session["rounds"]) == 20 and session["full_reevaluations"] == 0
    # prompt reuse: every later round evaluates only its new tokens
    assert all(r["prompt_tokens_evaluated"] < r["prompt_tokens"] / 2 for r in session["rounds"][3:])
    assert session["last_prompt_tokens"] > 0.8 * 4096

    from smol_tools.pipeline.card import CardInput, render_card
    from smol_tools.pipeline.measured import measured_section

    folder = tmp_path / "work" / "package"
    table = measured_section(folder, ["smol-tools-standin-q8_0.gguf"], path=out)
    assert "`smol-tools-standin-q8_0.gguf` | 4K" in table and "Not measured in this run: llama-bench" in table
    card = render_card(CardInput(model_name="m", repo_id="o/m", base_model=None, license="apache-2.0",
                                 pipeline_tag="text-generation", tags=(), quantized_by="me", files=[],
                                 default_quant="Q8_0", source={"kind": "local"}, template_choice="ours",
                                 drift_summary="same", has_mtp=False, measured_markdown=table))
    assert "### Measured" in card and table in card
    # a model of another shape never borrows these figures
    from devkit.tiny_gguf import ensure_tiny_gguf

    tiny = ensure_tiny_gguf("Q8_0")
    assert measured_section(tiny.parent, [tiny.name], path=out) == ""


def test_committed_reference_renders():
    from smol_tools.pipeline.measured import REFERENCE, load_results, measured_markdown

    results = load_results(REFERENCE)
    if results is None:  # written by the real-size run; the card then prints no measured table
        assert not REFERENCE.exists()
        return
    assert results["scale"] == "real" and results["standin"]["n_params"] > 4e9 and results["machine"]["cores"]
    if not results.get("runtimes"):  # only the stand-in was built and measured: every part says why not
        assert measured_markdown(results) == ""
        assert {m.split(":")[0] for m in results["not_measured"]} >= {"package", "in-process", "session"}
        return
    assert results["shape_key"].startswith("qwen35 layers=32 ")
    rows = sum(len(entry.get("contexts") or {}) for entry in results["runtimes"].values())
    assert (measured_markdown(results).count("\n") >= 3) if rows else measured_markdown(results) == ""


def test_memory_check_allows_the_rounding_of_each_summed_buffer():
    """Found on the stand-in's Q4_K_M: llama.cpp reports its weights as two buffers (CPU 0.45 MiB +
    CPU_REPACK 1.27 MiB), each rounded to 0.01 MiB, so their sum can be off by 0.01 MiB; the check
    allowed one rounding only and called an exact table wrong."""
    from smol_tools.pipeline.memory import MemoryCheck, parse_llama_log

    log = ("load_tensors:          CPU model buffer size =     0.45 MiB\n"
           "load_tensors:   CPU_REPACK model buffer size =     1.27 MiB\n"
           "llama_kv_cache: size =    2.00 MiB\n")
    reported = parse_llama_log(log)
    assert reported["weights"] == 1.72 and reported["weights_figures"] == 2 and reported["kv_cache_figures"] == 1
    ours = {"weights": 1.713104248046875, "kv_cache": 2.0}
    assert MemoryCheck(4096, ours, reported).ok
    one_buffer = parse_llama_log("load_tensors:          CPU model buffer size =     1.72 MiB\nllama_kv_cache: size =    2.00 MiB\n")
    assert not MemoryCheck(4096, ours, one_buffer).ok  # a single rounded figure still allows 0.005 only
    assert not MemoryCheck(4096, {"weights": 1.69, "kv_cache": 2.0}, reported).ok


def test_merge_folds_runs_figure_by_figure():
    """Real-size runs are split over sittings (`--parts`); `--merge` keeps each figure from the
    latest run that measured it, recomputes ratios from the merged figures and lists exactly what
    is still missing (a failure's own message where a run tried, "not run yet" otherwise)."""
    from bench.real_size.merge import merge_reports

    plan = {"threads": 2, "prompt_tokens": 512, "gen_tokens": 128}
    first = {"schema": 1, "scale": "real", "date": "2026-12-03T10:00:00+00:00", "machine": {"cores": 2},
             "commands": ["python -m bench --real-size --parts package roofline"], "shape_key": "k",
             "plan": {**plan, "quants": ["Q4_K_M"], "contexts": [4096], "parts": ["package", "roofline"]},
             "package": {"wall_s": 10}, "bandwidth": {"gb_per_s": 10.0},
             "runtimes": {"Q4_K_M": {"file": "q4.gguf", "roofline": {"weight_bytes_per_token": 2e9},
                                     "contexts": {"4096": {"computed_total_mib": 100.0,
                                                           "in_process": {"tg_tokens_per_s": 1.0}}}}},
             "not_measured": ["Q4_K_M @ 4096 llama-server: RuntimeError: refused"]}
    second = {"schema": 1, "scale": "real", "date": "2026-12-03T12:00:00+00:00", "machine": {"cores": 2},
              "commands": ["python -m bench --real-size --parts llama-bench in-process server"], "shape_key": "k",
              "plan": {**plan, "quants": ["Q4_K_M", "Q8_0"], "contexts": [4096, 32768],
                       "parts": ["llama-bench", "in-process", "server"]},
              "runtimes": {"Q4_K_M": {"file": "q4.gguf", "roofline": {"weight_bytes_per_token": 2e9},
                                      "llama_bench": {"tg_tokens_per_s": 4.0},
                                      "contexts": {"4096": {"computed_total_mib": 100.0,
                                                            "in_process": {"tg_tokens_per_s": 3.9},
                                                            "llama_server": {"tg_tokens_per_s": 3.8}}}}},
              "not_measured": ["package: not run (not in --parts)", "Q8_0 llama-bench: OSError: disk full"]}
    merged = merge_reports([second, first])  # order of the arguments does not matter: dates do
    q4 = merged["runtimes"]["Q4_K_M"]
    row = q4["contexts"]["4096"]
    assert row["in_process"]["tg_tokens_per_s"] == 3.9 and row["llama_server"]["tg_tokens_per_s"] == 3.8
    assert merged["package"] == {"wall_s": 10} and merged["bandwidth"]["gb_per_s"] == 10.0
    assert q4["roofline"]["roofline_tokens_per_s"] == 5.0  # the first run's bandwidth, the merged weights
    assert q4["ratios"]["4096"]["in_process_tg_over_llama_bench"] == 0.975
    assert q4["ratios"]["llama_bench_tg_over_roofline"] == 0.8
    missing = merged["not_measured"]
    assert "Q4_K_M @ 4096 llama-server: RuntimeError: refused" not in missing  # measured later
    assert "Q8_0 llama-bench: OSError: disk full" in missing
    assert "Q4_K_M @ 4096 app /send: not run yet" in missing and "session (Q4_K_M): not run yet" in missing
    assert "Q4_K_M @ 32768 context filled: not run yet" in missing
    assert not any("not in --parts" in m for m in missing)
    assert merged["plan"]["contexts"] == [4096, 32768] and len(merged["runs"]) == 2
    with pytest.raises(ValueError, match="different model shapes"):
        merge_reports([first, {**second, "shape_key": "other"}])


def test_the_session_counts_as_the_filled_context_of_its_quant():
    """The 20-round session ends with ~95 % of the largest context held in process: for its quant
    that RSS is the 'context full' figure (no second half-hour fill); a short session is not."""
    from bench.real_size.merge import merge_reports

    def report(held: int) -> dict:
        return {"schema": 1, "scale": "real", "date": "2026-12-03T10:00:00+00:00", "shape_key": "k",
                "plan": {"quants": ["Q4_K_M"], "contexts": [32768], "parts": ["in-process", "session"]},
                "runtimes": {"Q4_K_M": {"file": "q4.gguf", "contexts": {"32768": {
                    "computed_total_mib": 3000.0, "in_process": {"tg_tokens_per_s": 4.0, "rss_after_turn_mib": 2900.0}}}}},
                "session": {"file": "q4.gguf", "ctx": 32768, "tokens_held_at_end": held,
                            "rss_at_end": {"rss_mib": 3100.0, "anon_mib": 900.0, "file_mib": 2200.0}},
                "not_measured": []}

    full = merge_reports([report(31200)])
    row = full["runtimes"]["Q4_K_M"]["contexts"]["32768"]
    assert row["context_full"]["rss_mib"] == 3100.0 and row["context_full"]["tokens"] == 31200
    assert full["runtimes"]["Q4_K_M"]["ratios"]["32768"]["computed_total_over_rss"] == round(3000 / 3100, 3)
    assert not any("context filled" in m for m in full["not_measured"])
    from smol_tools.pipeline.measured import measured_markdown

    assert "3.03 GiB" in measured_markdown(full)  # the 'RSS, context full' column
    short = merge_reports([report(8000)])
    assert "context_full" not in short["runtimes"]["Q4_K_M"]["contexts"]["32768"]
    assert "Q4_K_M @ 32768 context filled: not run yet" in short["not_measured"]


def test_readme_prints_the_measured_headline():
    """README's real-size line is the one measured.headline() makes from bench/reference/real-size.json,
    so the front page's figures are the results file's, not estimates."""
    from smol_tools.pipeline.measured import REFERENCE, headline, load_results

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    results = load_results(REFERENCE)
    line = headline(results) if results else ""
    assert line, "the committed results file has no Q4_K_M runtime figures"
    assert line in " ".join(readme.split()), line


def test_the_card_states_the_long_session_from_its_rounds():
    """The card's session sentence is made of the session's own rounds: how far the prompt grew,
    what the last round evaluated and cost next to rounds 1 and 2, and any full re-evaluation."""
    from smol_tools.pipeline.measured import measured_markdown, session_sentence

    rounds = [{"round": 1, "prompt_tokens": 900, "prompt_tokens_evaluated": 900, "seconds": 80.2},
              {"round": 2, "prompt_tokens": 2500, "prompt_tokens_evaluated": 1600, "seconds": 120.4},
              {"round": 3, "prompt_tokens": 31000, "prompt_tokens_evaluated": 1650, "seconds": 150.0}]
    results = {"session": {"file": "q4.gguf", "rounds": rounds, "full_reevaluations": 0},
               "runtimes": {"Q4_K_M": {"file": "q4.gguf", "contexts": {"32768": {"computed_total_mib": 3000.0}}}}}
    sentence = session_sentence(results)
    assert "A 3-round tool session in process (`q4.gguf`" in sentence and "grew to 31,000 prompt tokens" in sentence
    assert "round 3 evaluated 1,650 new prompt tokens in 150 s" in sentence
    assert "round 2 1,600 in 120 s, round 1 900 in 80 s" in sentence and "0 full re-evaluations" in sentence
    assert sentence in measured_markdown(results)
    assert session_sentence({"session": {"rounds": rounds[:1]}}) == "" and session_sentence({}) == ""


def test_merge_recomputes_the_table_from_the_files_at_hand(tmp_path):
    """An older run's computed totals are replaced by today's memory table where the GGUF is in
    the folder (here the shipped tiny file), and the ratios follow; other quants are left alone."""
    import shutil

    from bench.real_size.merge import recompute_tables
    from smol_tools.pipeline.memory import estimate, read_shape
    from smol_tools.tiny import SHIPPED_GGUF as source

    shutil.copy(source, tmp_path / source.name)
    merged = {"runtimes": {
        "Q3_K_M": {"file": source.name, "contexts": {"4096": {"computed_total_mib": 1.0,
                                                             "in_process": {"rss_after_turn_mib": 100.0}}}},
        "Q8_0": {"file": "absent.gguf", "contexts": {"4096": {"computed_total_mib": 7.0}}}}}
    assert recompute_tables(merged, tmp_path) == [source.name]
    expected = round(estimate(read_shape(source), 4096).total / 2**20, 1)
    row = merged["runtimes"]["Q3_K_M"]["contexts"]["4096"]
    assert row["computed_total_mib"] == expected != 1.0
    assert merged["runtimes"]["Q3_K_M"]["ratios"]["4096"]["computed_total_over_rss"] == round(expected / 100.0, 3)
    assert merged["runtimes"]["Q8_0"]["contexts"]["4096"]["computed_total_mib"] == 7.0
