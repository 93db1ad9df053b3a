"""An OpenAI-compatible backend that dies in the middle of a streamed reply: the chat shows a
clear error, the history up to that point is kept, and once the server is back the next turn
continues the same conversation."""

from __future__ import annotations

import pytest

from tests.test_app_support import FakeOpenAI, app_server, call, client, fake_openai  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow


def test_backend_dies_mid_stream_and_comes_back(app_server, fake_openai: FakeOpenAI) -> None:
    c = client(app_server)
    assert call(c, "set_backend", "openai", "fake", fake_openai.base_url, "")["ok"]

    first = call(c, "send", "What is the weather in Rome")
    assert first["finish"]["reason"] == "answer" and first["calls"][0]["arguments"] == {"city": "Rome"}

    # Turn 2: round 1 (the call) completes; round 2 (the answer) dies after two chunks.
    fake_openai.crash_mid_stream(2, when=lambda body: body["messages"][-1]["role"] == "tool")
    second = call(c, "send", "What is the weather in Oslo")
    assert second["finish"]["reason"] == "error"
    assert "lost the connection" in second["finish"]["message"] and fake_openai.base_url in second["finish"]["message"]
    assert [(x["name"], x["arguments"]) for x in second["calls"]] == [("get_weather", {"city": "Oslo"})]
    assert second["calls"][0]["result"].startswith('{"city": "Oslo"')  # round 1's work is kept
    assert len(second["rounds"]) == 2 and second["rounds"][1]["finish_reason"] is None  # cut mid-round

    # The chat says so, in words.
    shown = call(c, "chat_messages")
    assert "The backend failed" in shown[-1]["content"] and "lost the connection" in shown[-1]["content"]
    assert "conversation up to this point is kept" in shown[-1]["content"]
    # The history up to the failure is in the session (and in its export).
    messages = call(c, "export_session")["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant", "user", "assistant", "tool"]
    assert messages[-1]["content"].startswith('{"city": "Oslo"')

    # The server is down now: the connection test says so.
    down = call(c, "test_connection", "openai", "fake", fake_openai.base_url, "")
    assert not down["ok"] and "cannot reach" in down["message"]

    fake_openai.start()  # back on the same port
    third = call(c, "send", "Email me@example.com")
    assert third["finish"]["reason"] == "answer" and third["calls"][0]["name"] == "send_email"
    # The server got the whole conversation, including the turn that failed half-way.
    sent = fake_openai.requests[-1]["messages"]
    users = [m["content"] for m in sent if m["role"] == "user"]
    assert users == ["What is the weather in Rome", "What is the weather in Oslo", "Email me@example.com"]
    assert any(m["role"] == "tool" and m["content"].startswith('{"city": "Oslo"') for m in sent)
    assert len(call(c, "history")) == 3
