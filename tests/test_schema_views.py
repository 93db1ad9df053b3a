"""Each runtime gets the most faithful tool schemas it can carry (issue 19 §7).

Jinja runtimes (in process, llama-server, vLLM, LM Studio) get the tools as declared: the
author's property order and every keyword. Ollama gets its own view (sorted property names,
only the keywords its Go types hold), which is what its templates see whatever we send. The
parity of each engine with our renderer on that view is proven by the corpus tests
(test_render_parity.py for the Jinja engines on the declared tools, test_ollama_template.py for
Ollama on its view); here: which view each backend gets, and what the prompt shows then.
"""

from __future__ import annotations

import json

import pytest

from smol_tools.backends.llama_server_tokens import LlamaServerTokensBackend
from smol_tools.backends.ollama import OllamaBackend
from smol_tools.backends.openai_compat import OpenAICompatBackend
from smol_tools.chat_format import render_prompt
from smol_tools.chat_session import ChatSession
from smol_tools.ollama_render import render_with_ollama_template
from smol_tools.tool_schema import FULL_VIEW, OLLAMA_VIEW, backend_view, portable_tools, tool_view

EVENT = {"type": "function", "function": {
    "name": "create_event", "description": "Put an event in the calendar.",
    "parameters": {"type": "object", "properties": {
        "title": {"type": "string", "maxLength": 200},
        "start": {"type": "string", "format": "date-time", "description": "ISO 8601"},
        "attendees": {"type": "integer", "minimum": 1, "maximum": 50, "default": 1}},
        "required": ["title", "start"]}}}
MESSAGES = [{"role": "user", "content": "Lunch with Ana tomorrow at noon."}]


def test_full_view_is_the_declaration_and_ollama_view_is_its_loss() -> None:
    full = tool_view([EVENT], FULL_VIEW)
    assert full == [EVENT] and full[0] is not EVENT
    assert list(full[0]["function"]["parameters"]["properties"]) == ["title", "start", "attendees"]
    ollama = tool_view([EVENT], OLLAMA_VIEW)
    assert ollama == portable_tools([EVENT])
    props = ollama[0]["function"]["parameters"]["properties"]
    assert list(props) == ["attendees", "start", "title"]  # Go maps: sorted
    assert "format" not in props["start"] and "minimum" not in props["attendees"]
    with pytest.raises(ValueError, match="unknown schema view"):
        tool_view([EVENT], "lmstudio")


def test_each_backend_names_its_view() -> None:
    assert backend_view(OllamaBackend("http://127.0.0.1:9")) == OLLAMA_VIEW
    assert backend_view(OpenAICompatBackend("http://127.0.0.1:9")) == FULL_VIEW
    assert backend_view(LlamaServerTokensBackend("http://127.0.0.1:9")) == FULL_VIEW


def test_a_session_shows_jinja_runtimes_the_declared_tools_and_ollama_its_view() -> None:
    jinja = ChatSession(OpenAICompatBackend("http://127.0.0.1:9"), enabled_tools=[], custom_tools=[EVENT])
    ollama = ChatSession(OllamaBackend("http://127.0.0.1:9"), enabled_tools=[], custom_tools=[EVENT])
    assert jinja.tool_schemas() == [EVENT]
    assert ollama.tool_schemas() == portable_tools([EVENT])
    prompt = render_prompt(MESSAGES, jinja.tool_schemas())
    assert json.dumps(EVENT, ensure_ascii=False) in prompt  # order and keywords as the author wrote them
    assert '"format": "date-time"' in prompt and prompt.index('"title"') < prompt.index('"attendees"')


def test_ollama_renders_the_declared_tools_as_exactly_its_view() -> None:
    """What the model sees on Ollama when it is sent the full declaration (the Go harness decodes
    the request as Ollama does): the Ollama view, not the declaration. Sending the view is no loss."""
    from_full = render_with_ollama_template(MESSAGES, [EVENT])
    assert from_full == render_prompt(MESSAGES, portable_tools([EVENT]))
    assert from_full == render_with_ollama_template(MESSAGES, portable_tools([EVENT]))
    assert from_full != render_prompt(MESSAGES, [EVENT])
