"""The format as data: our jinja2 renderer is byte-identical to transformers' apply_chat_template."""

from __future__ import annotations

import json

import pytest
from tokenizers import Tokenizer, models
from transformers import PreTrainedTokenizerFast

from smol_tools.chat_format import (
    TemplateRenderError,
    generation_prompt,
    load_params,
    load_template,
    render_prompt,
    stop_strings,
)
from tests.conftest import render_corpus
from devkit.scripted import load_scripted, scripted_turns, turn_prompt

CASES = render_corpus()


@pytest.fixture(scope="module")
def hf_tokenizer() -> PreTrainedTokenizerFast:
    # apply_chat_template only needs the template; a one-word vocabulary keeps this test fast.
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"x": 0}, unk_token="x")))
    tok.chat_template = load_template()
    return tok


def test_corpus_is_large_and_varied() -> None:
    assert len(CASES) >= 40
    ids = [case["id"] for case in CASES]
    assert len(set(ids)) == len(ids)
    assert any(case["tools"] for case in CASES) and any(not case["tools"] for case in CASES)
    assert any(not case["enable_thinking"] for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_render_matches_transformers(case: dict, hf_tokenizer) -> None:
    ours = render_prompt(case["messages"], case["tools"],
                         add_generation_prompt=case["add_generation_prompt"],
                         enable_thinking=case["enable_thinking"])
    theirs = hf_tokenizer.apply_chat_template(
        case["messages"], tools=case["tools"], tokenize=False,
        add_generation_prompt=case["add_generation_prompt"],
        enable_thinking=case["enable_thinking"])
    assert ours == theirs


def test_tools_one_json_object_per_line_and_json_call_instruction() -> None:
    tools = load_scripted()["tools"]
    prompt = render_prompt([{"role": "user", "content": "hi"}], tools)
    block = prompt.split("<tools>\n", 1)[1].split("\n</tools>", 1)[0]
    assert [json.loads(line) for line in block.split("\n")] == tools
    assert '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>' in prompt
    assert "<function=" not in prompt  # Qwen3.5's XML instruction is not ours


def test_generation_prompt_thinking_on_and_off() -> None:
    messages = [{"role": "user", "content": "hi"}]
    assert render_prompt(messages).endswith("<|im_start|>assistant\n<think>\n")
    assert render_prompt(messages, enable_thinking=False).endswith(
        "<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert render_prompt(messages).endswith(generation_prompt(True))
    assert render_prompt(messages, enable_thinking=False).endswith(generation_prompt(False))
    assert not render_prompt(messages, add_generation_prompt=False).endswith("assistant\n")


def test_consecutive_tool_messages_share_one_user_turn() -> None:
    case = next(c for c in CASES if c["id"] == "three_consecutive_tool_results")
    prompt = render_prompt(case["messages"], case["tools"])
    assert prompt.count("<|im_start|>user\n<tool_response>") == 1
    assert ("<|im_start|>user\n<tool_response>\n1\n</tool_response>\n<tool_response>\n2\n"
            "</tool_response>\n<tool_response>\n3\n</tool_response><|im_end|>\n") in prompt


def test_reasoning_dropped_before_last_query_kept_after() -> None:
    case = next(c for c in CASES if c["id"] == "historical_reasoning_dropped")
    prompt = render_prompt(case["messages"], add_generation_prompt=False)
    assert "Easy sum." not in prompt
    assert "<think>\nAlso easy.\n</think>\n\n6." in prompt


def test_params_stop_tokens_and_defaults() -> None:
    params = load_params()
    assert stop_strings() == ["<|im_end|>", "<|endoftext|>"]
    assert "</tool_call>" not in params.stop  # parallel calls follow a closed block
    assert params.context_length == 32768
    assert params.sampling["temperature"] == 0.1


def test_template_errors_are_clear() -> None:
    with pytest.raises(TemplateRenderError, match="no messages"):
        render_prompt([])
    with pytest.raises(TemplateRenderError, match="unexpected message role"):
        render_prompt([{"role": "robot", "content": "x"}])
    with pytest.raises(TemplateRenderError, match="has no role"):
        render_prompt([{"content": "x"}])


@pytest.mark.parametrize("turn", scripted_turns(), ids=lambda t: t.name)
def test_next_round_extends_previous_prompt_plus_output(turn) -> None:
    """Prompt reuse: re-rendering the assistant turn reproduces the model's bytes exactly."""
    tools = load_scripted()["tools"]
    prompt = turn_prompt(turn, tools)
    rendered = render_prompt([*turn.history, turn.message], tools, add_generation_prompt=False,
                             enable_thinking=turn.thinking)
    assert rendered == prompt + turn.raw + "\n"
