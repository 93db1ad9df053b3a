"""The fifth engine: @huggingface/jinja (Node; the pinned npm package the Hub and transformers.js
use) renders the render corpus byte-identical to our renderer (= transformers), except the one
input shape it does not alias, asserted below. Plus the engine's input limits that come from
JavaScript itself, named and asserted, and `smol-tools render --engine hf-jinja`."""

from __future__ import annotations

import json

import pytest

from smol_tools.chat_format import render_prompt
from smol_tools.cli import main
from smol_tools.hf_jinja_render import HfJinjaError, pinned_version, render_cases_with_hf_jinja, render_with_hf_jinja
from tests.conftest import render_corpus

CASES = render_corpus()
# transformers copies a message's `thinking` into `reasoning_content` before rendering (so does
# our renderer); transformers.js passes messages as given, so the kept think block renders empty.
HF_JINJA_INPUT_LIMITS = {"reasoning_field_thinking_alias"}


def _ours(case: dict) -> str:
    return render_prompt(case["messages"], case["tools"], add_generation_prompt=case["add_generation_prompt"],
                         enable_thinking=case["enable_thinking"])


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict]:
    # One Node process for the whole corpus.
    return {c["id"]: r for c, r in zip(CASES, render_cases_with_hf_jinja(CASES))}


def test_the_pinned_version_is_installed_exactly() -> None:
    version = pinned_version()
    assert version.count(".") == 2 and version[0].isdigit()  # an exact pin, not a range


@pytest.mark.parametrize("case", [c for c in CASES if c["id"] not in HF_JINJA_INPUT_LIMITS], ids=lambda c: c["id"])
def test_hf_jinja_renders_the_corpus_identically(rendered: dict[str, dict], case: dict) -> None:
    assert rendered[case["id"]] == {"prompt": _ours(case)}


def test_hf_jinja_does_not_alias_thinking(rendered: dict[str, dict]) -> None:
    case = next(c for c in CASES if c["id"] == "reasoning_field_thinking_alias")
    prompt = rendered[case["id"]]["prompt"]
    assert prompt != _ours(case) and "<think>\n\n</think>\n\nHello" in prompt
    renamed = [{("reasoning_content" if k == "thinking" else k): v for k, v in m.items()} for m in case["messages"]]
    assert render_with_hf_jinja(renamed, case["tools"], add_generation_prompt=case["add_generation_prompt"],
                                enable_thinking=case["enable_thinking"]) == _ours(case)


def test_javascript_number_and_key_limits_are_inputs_not_template_differences() -> None:
    """What JSON.parse does to the conversation before the template sees it (transformers.js
    receives JavaScript objects): 1.0 becomes 1, integers past 2**53 round, integer-like keys
    move first. The same arguments as strings render identically."""
    def prompt_for(arguments) -> tuple[str, str]:
        messages = [{"role": "user", "content": "go"},
                    {"role": "assistant", "content": "", "tool_calls": [
                        {"type": "function", "function": {"name": "f", "arguments": arguments}}]}]
        return render_with_hf_jinja(messages, add_generation_prompt=False), render_prompt(messages, add_generation_prompt=False)

    js, py = prompt_for({"x": 1.0})
    assert '"arguments": {"x": 1.0}' in py and '"arguments": {"x": 1}' in js
    js, py = prompt_for({"n": 2**53 + 1})
    assert str(2**53 + 1) in py and str(2**53) in js and str(2**53 + 1) not in js
    js, py = prompt_for({"b": 1, "2": 2})
    assert '{"b": 1, "2": 2}' in py and '{"2": 2, "b": 1}' in js
    # The agent sends arguments as the model wrote them (a string): byte-identical again.
    js, py = prompt_for('{"x": 1.0, "n": 9007199254740993, "b": 1, "2": 2}')
    assert js == py


def test_template_errors_reach_the_caller() -> None:
    with pytest.raises(HfJinjaError, match="no messages provided"):
        render_with_hf_jinja([])
    with pytest.raises(HfJinjaError, match="unexpected message role"):
        render_with_hf_jinja([{"role": "narrator", "content": "x"}])


def test_cli_render_engine_hf_jinja(tmp_path, capsys) -> None:
    case = next(c for c in CASES if c["tools"] and c["id"] not in HF_JINJA_INPUT_LIMITS)
    conversation = tmp_path / "conversation.json"
    conversation.write_text(json.dumps({"messages": case["messages"], "tools": case["tools"]}), encoding="utf-8")
    flags = [] if case["enable_thinking"] else ["--no-think"]
    flags += [] if case["add_generation_prompt"] else ["--no-generation-prompt"]
    capsys.readouterr()
    assert main(["render", "--messages", str(conversation), "--engine", "hf-jinja", *flags]) == 0
    assert capsys.readouterr().out == _ours(case)


def test_the_node_harness_ships_as_package_data() -> None:
    import fnmatch
    import tomllib
    from pathlib import Path

    from smol_tools.hf_jinja_render import HARNESS_DIR

    root = Path(__file__).resolve().parents[2]
    globs = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-data"]["smol_tools"]
    for name in ("render.mjs", "package.json"):
        relative = (HARNESS_DIR / name).relative_to(root / "smol_tools").as_posix()
        assert (HARNESS_DIR / name).is_file() and any(fnmatch.fnmatch(relative, g) for g in globs), relative
