"""Parallel slots: a real llama-server started with `-np 2` on the tiny GGUF, driven by the token
backend. Each session is pinned to its own slot, so concurrent sessions keep their prompt caches
(each later round evaluates only its new tokens) and give their scripted transcripts; a third
concurrent session waits for a slot instead of failing; with more sessions than slots the least
recently used one hands its slot over and its next round is evaluated in full, still correct."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from smol_tools.backends.llama_server_tokens import LlamaServerTokensBackend
from smol_tools.events import AgentFinished, TurnComplete
from smol_tools.llamacpp.server import LlamaServer
from tests.test_backends import _run_session, _transcript

pytestmark = pytest.mark.slow
SLOTS = 2


@pytest.fixture(scope="module")
def two_slot_server(tiny_gguf_f16):
    # -c is shared by the slots: 2 x 4096.
    with LlamaServer(tiny_gguf_f16, ctx_size=SLOTS * 4096, threads=2,
                     extra_args=["-np", str(SLOTS), "--no-prefill-assistant"]) as server:
        yield server


def _expected(conversation_id: str, single_slot_backend) -> tuple:
    return _transcript(*_run_session(single_slot_backend, conversation_id, f"alone-{conversation_id}"))


def _concurrently(backend, jobs: list[tuple[str, str]]) -> dict[str, tuple]:
    out: dict[str, tuple] = {}
    errors: list[BaseException] = []

    def run(conversation_id: str, session_id: str) -> None:
        try:
            out[session_id] = _run_session(backend, conversation_id, session_id)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not errors, errors
    return out


def test_sessions_get_their_own_slots_and_keep_their_caches(two_slot_server) -> None:
    backend = LlamaServerTokensBackend(two_slot_server.base_url, context_length=4096)
    alone = LlamaServerTokensBackend(two_slot_server.base_url, context_length=4096, slots=0)  # no pinning
    expected = {"a": _expected("error_recovery", alone), "b": _expected("multi_tool_sequential", alone)}
    out = _concurrently(backend, [("error_recovery", "a"), ("multi_tool_sequential", "b")])
    assert {k: _transcript(*v) for k, v in out.items()} == expected
    assert backend.slots == SLOTS and sorted(backend._slot_of.values()) == [0, 1]
    for session_id, conversation_id in (("a", "error_recovery"), ("b", "multi_tool_sequential")):
        messages, events = out[session_id]
        finished = events[-1]
        assert isinstance(finished, AgentFinished) and finished.reason == "answer"
        usages = [e.usage for e in events if isinstance(e, TurnComplete)]
        assert len(usages) >= 3
        for previous, current in zip(usages, usages[1:]):
            held = previous.prompt_tokens + previous.completion_tokens - 1
            assert current.cached_tokens == held, (session_id, current)  # the other session left it alone


def test_more_sessions_than_slots_queue_and_hand_slots_over(two_slot_server) -> None:
    backend = LlamaServerTokensBackend(two_slot_server.base_url, context_length=4096)
    alone = LlamaServerTokensBackend(two_slot_server.base_url, context_length=4096, slots=0)  # no pinning
    jobs = [("single_tool", "s1"), ("multi_tool_parallel", "s2"), ("reasoning_then_call", "s3")]
    expected = {session: _expected(conversation_id, alone) for conversation_id, session in jobs}
    out = _concurrently(backend, jobs)  # three sessions, two slots: one waits its turn
    for _, session in jobs:
        assert _transcript(*out[session]) == expected[session]
    # Three sessions took turns on two slots; the pins follow the most recent ones.
    assert len(backend._slot_of) == SLOTS and sorted(backend._slot_of.values()) == [0, 1]


def test_managed_server_starts_on_first_use_and_is_restarted(tiny_gguf_f16) -> None:
    from smol_tools.backends.managed_server import ManagedLlamaServerBackend

    backend = ManagedLlamaServerBackend(tiny_gguf_f16, slots=2, context_length=4096, threads=1)
    try:
        assert backend.check().ok and not backend.running  # a check does not load the model
        first = _transcript(*_run_session(backend, "multi_tool_sequential", "m1"))
        assert backend.running and first[1] == "answer"
        backend.server.process.kill()  # the server dies between two sessions' turns
        backend.server.process.wait()
        again = _transcript(*_run_session(backend, "multi_tool_sequential", "m2"))
        assert again == first and backend.restarts == 1
    finally:
        backend.close()
    assert not backend.running


def test_the_app_runs_a_managed_server(tiny_gguf_q8_0) -> None:
    from tests.test_app_support import AppProcess, call, client

    with AppProcess("test_slots_app", SMOL_TOOLS_BACKEND="llama-server-managed", SMOL_TOOLS_MODEL="tiny",
                    SMOL_TOOLS_SERVER_SLOTS="2", SMOL_TOOLS_SERVER_THREADS="1") as app:
        c = client(app)
        turn = call(c, "send", "Compute 17 * 23, then add 100 to it.")
        assert [x["result"] for x in turn["calls"]] == ["391", "491"]
        assert turn["answer"] == "17 * 23 = 391, and 391 + 100 = 491."
        assert "managed" in call(c, "status")["backend"]
        children = _children(app.process.pid)
        assert children, "the managed llama-server runs as the app's child"
    # The app was stopped with SIGTERM (AppProcess.stop): the server it started went with it.
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in children if _alive(pid)], "llama-server outlived the app"


def _children(pid: int) -> list[int]:
    """Child process ids of `pid` (Linux /proc)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"
