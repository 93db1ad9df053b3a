"""The tiny real Qwen3.5 model: same architecture, memorized scripted turns, reproduced exactly
from the Hugging Face checkpoint and from the F16 and Q8_0 GGUFs made by our pipeline."""

from __future__ import annotations

import json

import pytest

from smol_tools.chat_format import load_template, stop_strings
from devkit.scripted import scripted_turns, turn_prompt

TURNS = scripted_turns()


def test_scripted_turns_cover_the_scenarios() -> None:
    ids = {t.conversation_id for t in TURNS}
    assert {"single_tool", "multi_tool_parallel", "multi_tool_sequential", "no_tool_needed",
            "reasoning_then_call", "error_recovery"} <= ids
    assert len(TURNS) >= 15
    assert all(t.raw.endswith("<|im_end|>") for t in TURNS)


def test_checkpoint_is_a_hybrid_qwen35(tiny_model) -> None:
    config = json.loads((tiny_model.path / "config.json").read_text())
    assert config["architectures"] == ["Qwen3_5ForCausalLM"]
    assert config["model_type"] == "qwen3_5_text"
    assert set(config["layer_types"]) == {"linear_attention", "full_attention"}
    assert (tiny_model.path / "model.safetensors").exists()
    tok_config = json.loads((tiny_model.path / "tokenizer_config.json").read_text())
    template = tok_config.get("chat_template")
    if template is None:  # transformers may save it beside the config instead
        template = (tiny_model.path / "chat_template.jinja").read_text()
    assert template == load_template()


def test_tokenizer_has_qwen_special_tokens(tiny_model) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model.path)
    for token in ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>", "</think>",
                  "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"):
        ids = tok.encode(token, add_special_tokens=False)
        assert len(ids) == 1, f"{token} is not a single token: {ids}"
    assert tok.eos_token == "<|im_end|>"


def test_hf_checkpoint_reproduces_scripted_turns(tiny_model) -> None:
    import torch
    from transformers import AutoTokenizer
    from transformers.models.qwen3_5 import Qwen3_5ForCausalLM

    tok = AutoTokenizer.from_pretrained(tiny_model.path)
    model = Qwen3_5ForCausalLM.from_pretrained(tiny_model.path).eval()
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    failures = []
    for turn in TURNS:
        ids = tok.encode(turn_prompt(turn), add_special_tokens=False, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=120, do_sample=False, eos_token_id=im_end,
                                 pad_token_id=tok.pad_token_id)
        text = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=False)
        if text != turn.raw:
            failures.append((turn.name, text))
    assert failures == []


def _reproduce_with_llama_cpp(path) -> list[tuple[str, str]]:
    from llama_cpp import Llama

    llm = Llama(model_path=str(path), n_ctx=2048, n_threads=2, verbose=False)
    failures = []
    for turn in TURNS:
        out = llm.create_completion(turn_prompt(turn), max_tokens=200, temperature=0.0,
                                    stop=stop_strings())
        choice = out["choices"][0]
        # The stop string is consumed by the runtime; the turn ended on it, not on max_tokens.
        if choice["text"] + "<|im_end|>" != turn.raw or choice["finish_reason"] != "stop":
            failures.append((turn.name, choice["text"]))
    return failures


@pytest.mark.parametrize("quant", ["F16", "Q8_0"])
def test_gguf_reproduces_scripted_turns(quant, tiny_gguf_f16, tiny_gguf_q8_0) -> None:
    path = tiny_gguf_f16 if quant == "F16" else tiny_gguf_q8_0
    assert _reproduce_with_llama_cpp(path) == []


def test_gguf_metadata_carries_our_template_and_stop_ids(tiny_gguf_f16, tiny_gguf_q8_0, tiny_model) -> None:
    from gguf import GGUFReader
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model.path)
    for path in (tiny_gguf_f16, tiny_gguf_q8_0):
        reader = GGUFReader(path)
        fields = {name: field for name, field in reader.fields.items()}
        assert fields["general.architecture"].contents() == "qwen35"
        assert fields["tokenizer.chat_template"].contents() == load_template()
        assert fields["tokenizer.ggml.pre"].contents() == "qwen35"
        assert fields["tokenizer.ggml.eos_token_id"].contents() == tok.convert_tokens_to_ids("<|im_end|>")
    q8_types = {t.tensor_type.name for t in GGUFReader(tiny_gguf_q8_0).tensors}
    assert "Q8_0" in q8_types
