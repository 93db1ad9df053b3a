"""`python app.py` on 127.0.0.1, offline, driven through its named gradio_client endpoints: the
fallback to the tiny model is announced, scripted multi-round sessions return the expected
parsed calls and answers, and manual mode, stop, custom tools and export/import work."""

from __future__ import annotations

import json

import pytest

from tests.test_app_support import app_server, call, client, fake_openai, free_port, wait_for  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow


def _calls(turn: dict) -> list[tuple[str, dict]]:
    return [(c["name"], c["arguments"]) for c in turn["calls"]]


def test_offline_start_falls_back_to_the_tiny_model_and_says_so(app_server) -> None:
    status = call(client(app_server), "status")
    assert status["backend_ok"] and status["tiny_model"]
    assert "Hugging Face Hub" in status["notice"] and "tiny offline test model" in status["notice"]
    assert status["tools"] == ["get_weather", "calculate", "get_current_datetime", "read_file", "list_directory"]
    assert status["greedy"] and status["context_limit"] == 4096


def test_scripted_multi_round_sessions(app_server) -> None:
    c = client(app_server)
    turn = call(c, "send", "Compute 17 * 23, then add 100 to it.")
    assert _calls(turn) == [("calculate", {"expression": "17 * 23"}), ("calculate", {"expression": "391 + 100"})]
    assert [c_["result"] for c_ in turn["calls"]] == ["391", "491"]
    assert all(c_["schema_ok"] and c_["raw"].startswith("<tool_call>\n{") for c_ in turn["calls"])
    assert turn["answer"] == "17 * 23 = 391, and 391 + 100 = 491."
    assert turn["finish"]["reason"] == "answer" and len(turn["rounds"]) == 3
    # Prompt reuse: each later round evaluates only what is new.
    assert all(r["usage"]["cached_tokens"] > r["usage"]["prompt_tokens"] // 2 for r in turn["rounds"][1:])

    call(c, "reset")  # the tiny model knows single-question conversations
    turn = call(c, "send", "Show me notes.txt.")
    assert _calls(turn) == [("read_file", {"path": "notes.txt"}), ("list_directory", {"path": "."}),
                            ("read_file", {"path": "todo.txt"})]
    assert [c_["is_error"] for c_ in turn["calls"]] == [True, False, False]
    assert turn["calls"][2]["result"] == "buy milk"
    assert turn["answer"] == "There is no notes.txt; todo.txt says: buy milk."

    call(c, "reset")
    turn = call(c, "send", "Compare the weather in Tokyo and Lima.")
    first = turn["rounds"][0]
    assert [(x["name"], x["arguments"]) for x in first["calls"]] == [
        ("get_weather", {"city": "Tokyo"}), ("get_weather", {"city": "Lima"})]  # parallel: one round
    assert all('"city": "' in x["result"] for x in first["calls"])
    # What the browser shows is the same transcript: one round message with two cards.
    shown = call(c, "chat_messages")
    round_1 = next(m for m in shown if m.get("metadata", {}).get("title", "").startswith("Round 1"))
    assert round_1["metadata"]["title"] == "Round 1 · 2 parallel tool calls: get_weather, get_weather"
    assert round_1["content"].count('<div class="st-call">') == 2


def test_manual_results_and_stop(app_server) -> None:
    c = client(app_server)
    assert call(c, "set_tools", ["get_weather", "calculate", "get_current_datetime", "read_file", "list_directory"],
                "", True)["ok"]
    job = c.submit("What is the weather in Paris?", api_name="/send")
    waiting = wait_for(lambda: call(c, "status")["waiting_for"], what="the manual tool call")
    assert waiting == {"name": "get_weather", "arguments": {"city": "Paris"}}
    # The scripted result, typed by hand: the tiny model then gives its scripted answer.
    assert call(c, "submit_manual", '{"city": "Paris", "temperature_c": 18, "condition": "cloudy"}') is True
    turn = json.loads(job.result(timeout=60))
    assert turn["answer"] == "It is 18 °C and cloudy in Paris." and turn["calls"][0]["manual"]

    call(c, "reset")
    job = c.submit("What is the weather in Paris?", api_name="/send")
    wait_for(lambda: call(c, "status")["waiting_for"], what="the manual tool call")
    assert call(c, "stop") is True
    turn = json.loads(job.result(timeout=60))
    assert turn["finish"]["reason"] == "cancelled"
    assert "stopped by the user" in turn["calls"][0]["result"]
    assert call(c, "status")["busy"] is False


def test_custom_tools_are_checked_inline(app_server) -> None:
    c = client(app_server)
    bad = call(c, "set_tools", ["get_weather"], '[{"name": "lookup", "parameters": {"type": "object",}}]', False)
    assert not bad["ok"] and "line 1" in bad["problems"][0]
    bad = call(c, "set_tools", ["get_weather"], '{"name": "lookup", "parameters": {"type": "objekt"}}', False)
    assert not bad["ok"] and "parameters" in bad["problems"][0]
    good = call(c, "set_tools", ["get_weather"], '{"name": "lookup", "parameters": {"type": "object"}}', False)
    assert good["ok"] and good["status"]["tools"] == ["get_weather", "lookup"]
    assert good["status"]["custom_tools"] == ["lookup"]


def test_export_import_round_trip(app_server) -> None:
    first = client(app_server)
    turn = call(first, "send", "Show me notes.txt.")
    exported = call(first, "export_session")
    assert [m["role"] for m in exported["messages"]] == ["user", "assistant", "tool", "assistant", "tool",
                                                        "assistant", "tool", "assistant"]
    assert [t["function"]["name"] for t in exported["tools"]] == call(first, "status")["tools"]
    second = client(app_server)
    call(second, "import_session", json.dumps(exported))
    history = call(second, "history")
    assert _calls(history[0]) == _calls(turn) and history[0]["answer"] == turn["answer"]
    assert call(second, "export_session") == exported
    titles = [[m.get("metadata", {}).get("title") for m in call(x, "chat_messages")] for x in (first, second)]
    assert titles[0] == titles[1]


def test_test_connection_says_what_is_wrong(app_server, fake_openai) -> None:
    c = client(app_server)
    assert call(c, "test_connection", "llama-cpp-python", "tiny", "", "")["ok"]
    missing = call(c, "test_connection", "llama-cpp-python", "/nonexistent/model.gguf", "", "")
    assert not missing["ok"] and "no GGUF file" in missing["message"]
    down = call(c, "test_connection", "openai", "", f"http://127.0.0.1:{free_port()}", "")
    assert not down["ok"] and "cannot reach" in down["message"]
    wrong_model = call(c, "test_connection", "openai", "smol-tools", fake_openai.base_url, "")
    assert not wrong_model["ok"] and "'smol-tools' is not served" in wrong_model["message"]
    fake_openai.chat_template = "{% for m in messages %}{{ m.content }}{% endfor %}"
    no_tools = call(c, "test_connection", "openai", "fake", fake_openai.base_url, "")
    assert not no_tools["ok"] and "no tool support" in no_tools["message"]
    assert not call(c, "set_backend", "openai", "fake", fake_openai.base_url, "")["ok"]  # refused
    assert call(c, "status")["tiny_model"]


