"""The tiny model's GGUF shipped inside the package (smol_tools/tiny/) is faithful: it carries
our template and stop tokens, and greedy decoding reproduces every scripted turn (issue 14 §2).

tests/fixtures builds the model from source; `python -m devkit.ship_tiny` copies the
build into the package. When the template or the scripted conversations change, the fixtures
retrain the model and this test fails until the shipped file is rebuilt with that command.
"""

from __future__ import annotations

import json

from smol_tools.chat_format import JINJA_TEMPLATE_PATH
from smol_tools.model_source import resolve_model
from smol_tools.pipeline.verify import verify_gguf
from smol_tools.tiny import SHIPPED_GGUF, SHIPPED_QUANT, TINY_N_CTX
from smol_tools.tiny.scripted import SCRIPTED_PATH


def _scripted_turn_count() -> int:
    data = json.loads(SCRIPTED_PATH.read_text(encoding="utf-8"))
    return sum(1 for c in data["conversations"] for m in c["messages"] if m["role"] == "assistant")


def test_tiny_resolves_to_the_shipped_file_from_any_directory(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    resolved = resolve_model("tiny")
    assert resolved.path == SHIPPED_GGUF and resolved.tiny and resolved.quant == SHIPPED_QUANT
    assert SHIPPED_GGUF.stat().st_size < 4 * 2**20  # "a few MB": it ships in every wheel


def test_shipped_gguf_reproduces_every_scripted_turn() -> None:
    result = verify_gguf(SHIPPED_GGUF, JINJA_TEMPLATE_PATH, turns_file=SCRIPTED_PATH, threads=1)
    assert result.error is None, result.error
    assert result.template_matches, "the shipped GGUF embeds another template: run python -m devkit.ship_tiny"
    assert all(result.stops_are_eog.values()), result.stops_are_eog
    assert result.turns_checked == _scripted_turn_count() == 19
    assert result.turn_failures == [], result.turn_failures
    assert result.ok


def test_one_context_size_for_the_tiny_model() -> None:
    # The figure lives in smol_tools.tiny; every entry point imports it.
    from smol_tools.app import backend_choice
    from smol_tools.eval import harness

    assert harness.TINY_CONTEXT == backend_choice.TINY_N_CTX == TINY_N_CTX == 4096
