"""Agent frameworks on our runtime: the `openai` SDK's tool-calling loop and smolagents
(OpenAIServerModel, ToolCallingAgent) against a real llama-server (--jinja) serving the tiny
GGUF. The scripted turns come back as each framework's own tool calls. docs/frameworks.md shows
the same code as examples.

What frameworks send that a strict template could refuse is sent here on purpose: content
parts (smolagents always sends them), tool_choice="required" (ToolCallingAgent's default), a
developer-role message (the openai SDK's newer system role; llama-server maps it to system)."""

from __future__ import annotations

import json

import pytest

from devkit.scripted import conversation, load_scripted

pytestmark = pytest.mark.slow
TOOLS = load_scripted()["tools"]


def _scripted_results(conversation_id: str) -> list[str]:
    return [m["content"] for m in conversation(conversation_id)["messages"] if m["role"] == "tool"]


def _client(server):
    from openai import OpenAI

    return OpenAI(base_url=f"{server.base_url}/v1", api_key="not-needed")


def _run_openai_loop(client, messages: list[dict], results: list[str], **extra) -> tuple[list, str]:
    """The openai SDK's documented loop: ask, run each tool call, send the results, repeat."""
    calls = []
    for _ in range(5):
        response = client.chat.completions.create(model="smol-tools", messages=messages, tools=TOOLS,
                                                  temperature=0, **extra)
        message = response.choices[0].message
        if not message.tool_calls:
            return calls, message.content
        messages.append(message.model_dump(exclude_none=True))
        for tool_call in message.tool_calls:
            calls.append((tool_call.function.name, json.loads(tool_call.function.arguments)))
            messages.append({"role": "tool", "tool_call_id": tool_call.id, "content": results.pop(0)})
        extra.pop("tool_choice", None)  # "required" forces a call: only for the first request
    raise AssertionError("no answer after 5 rounds")


def test_openai_sdk_tool_loop(tiny_llama_server) -> None:
    client = _client(tiny_llama_server)
    calls, answer = _run_openai_loop(client, [{"role": "user", "content": "What is the weather in Paris?"}],
                                     _scripted_results("single_tool"))
    assert calls == [("get_weather", {"city": "Paris"})]
    assert answer == "It is 18 °C and cloudy in Paris."
    # Parallel calls: two tool_calls in one response, in order, with distinct ids.
    calls, answer = _run_openai_loop(client, [{"role": "user", "content": "Compare the weather in Tokyo and Lima."}],
                                     _scripted_results("multi_tool_parallel"))
    assert calls == [("get_weather", {"city": "Tokyo"}), ("get_weather", {"city": "Lima"})]
    assert answer == conversation("multi_tool_parallel")["messages"][-1]["message"]["content"]


def test_openai_sdk_developer_role_content_parts_and_required_tool_choice(tiny_llama_server) -> None:
    client = _client(tiny_llama_server)
    messages = [{"role": "developer", "content": "You are a concise assistant."},
                {"role": "user", "content": [{"type": "text", "text": "Weather in Oslo in fahrenheit?"}]}]
    calls, answer = _run_openai_loop(client, messages, _scripted_results("thinking_off_call"),
                                     tool_choice="required",
                                     extra_body={"chat_template_kwargs": {"enable_thinking": False}})
    assert calls == [("get_weather", {"city": "Oslo", "unit": "fahrenheit"})]
    assert answer == "30 °F and snow in Oslo."


def test_smolagents_model_returns_the_scripted_call(tiny_llama_server) -> None:
    from smolagents import ChatMessage, MessageRole, OpenAIServerModel

    model = OpenAIServerModel(model_id="smol-tools", api_base=f"{tiny_llama_server.base_url}/v1",
                              api_key="not-needed", temperature=0)
    # smolagents sends content parts; the tools are the scripted schemas as OpenAI JSON.
    reply = model.generate([ChatMessage(role=MessageRole.USER,
                                        content=[{"type": "text", "text": "What is the weather in Paris?"}])],
                           tools=TOOLS)
    assert [(c.function.name, json.loads(c.function.arguments)) for c in reply.tool_calls] == [
        ("get_weather", {"city": "Paris"})]


def test_smolagents_tool_calling_agent_runs_our_call(tiny_llama_server) -> None:
    """ToolCallingAgent's first step: our model's call becomes the agent's ToolCall and runs the
    agent's own tool. (Its later steps send the observation as a user message and wait for a
    final_answer call: outside the tiny model's scripts, so not asserted here.)"""
    from smolagents import OpenAIServerModel, Tool, ToolCallingAgent

    observed = []

    class GetWeather(Tool):
        name = "get_weather"
        description = "Get the current weather for a city."
        inputs = {"city": {"type": "string", "description": "City name"},
                  "unit": {"type": "string", "description": "celsius or fahrenheit", "nullable": True}}
        output_type = "string"

        def forward(self, city: str, unit: str | None = None) -> str:
            observed.append((city, unit))
            return _scripted_results("thinking_off_call")[0]

    # The tiny model knows only its scripted tool schemas and system prompt: the model's
    # `tools=` and the system prompt template replace smolagents' own for that reason alone.
    model = OpenAIServerModel(model_id="smol-tools", api_base=f"{tiny_llama_server.base_url}/v1",
                              api_key="not-needed", temperature=0, tools=TOOLS,
                              extra_body={"chat_template_kwargs": {"enable_thinking": False}})
    agent = ToolCallingAgent(tools=[GetWeather()], model=model, max_steps=1, verbosity_level=0)
    agent.prompt_templates["system_prompt"] = "You are a concise assistant."
    agent.run("Weather in Oslo in fahrenheit?")
    step = agent.memory.steps[1]
    assert [(c.name, c.arguments) for c in step.tool_calls] == [("get_weather", {"city": "Oslo", "unit": "fahrenheit"})]
    assert observed == [("Oslo", "fahrenheit")]
    assert step.observations == _scripted_results("thinking_off_call")[0]
