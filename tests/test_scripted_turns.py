"""The scripted turns are self-consistent: each raw output parses into its OpenAI message."""

from __future__ import annotations

import pytest

from smol_tools.toolcalls import parse_output
from devkit.scripted import scripted_turns


@pytest.mark.parametrize("turn", scripted_turns(), ids=lambda t: t.name)
def test_raw_output_parses_into_the_message(turn) -> None:
    result = parse_output(turn.raw, thinking_open=turn.thinking)
    assert result.errors == []
    assert result.content == turn.message["content"]
    assert (result.reasoning or "") == turn.message.get("reasoning_content", "")
    expected_calls = [(c["function"]["name"], c["function"]["arguments"])
                      for c in turn.message.get("tool_calls", [])]
    assert [(c.name, c.arguments) for c in result.tool_calls] == expected_calls
