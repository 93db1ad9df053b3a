"""ensure_llama_programs builds once per machine: a second caller waits on the build lock and
then finds the programs built, instead of running CMake into the same folder.

The CMake build itself is replaced by a stand-in that takes a while and writes the programs
(the real build is exercised by every test that starts a llama-server)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from smol_tools.llamacpp import build


def test_concurrent_callers_build_once(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(build, "CACHE_ROOT", tmp_path)
    builds: list[str] = []

    def slow_build(final: Path, version: str, log) -> None:
        builds.append(version)
        time.sleep(0.5)  # long enough for the other caller to arrive while this one builds
        (final / "bin").mkdir(parents=True)
        for name in build.PROGRAMS:
            (final / "bin" / name).write_text("#!/bin/sh\n")

    monkeypatch.setattr(build, "_build_into", slow_build)
    results: list[Path] = []
    callers = [threading.Thread(target=lambda: results.append(build.ensure_llama_programs("9.9.9", log=lambda _: None)))
               for _ in range(3)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(timeout=30)
    assert builds == ["9.9.9"]  # one build; the others waited for it
    assert len(results) == 3 and len(set(results)) == 1
    assert all((results[0] / name).exists() for name in build.PROGRAMS)
    assert (tmp_path / "llama.cpp-bin" / ".build.lock").exists()
