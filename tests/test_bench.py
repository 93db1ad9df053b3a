"""`python -m bench --quick` runs every benchmark on the tiny model and writes its report.
Performance targets are not asserted here (they are figures for people, with their spread);
what is checked is that each figure was measured as a positive ratio, or says why not."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.session import SessionRun, new_tokens

ROOT = Path(__file__).resolve().parent.parent
FIGURES = {"parse_stream_vs_oneshot", "reuse_in_process", "reuse_llama_server", "reuse_llama_server_tokens", "agent_overhead", "agent_overhead_heavy_twin",
           "quantize_wall_q8_0", "quantize_rss_q8_0", "app_overhead"}


def test_new_tokens_counts_what_the_previous_round_did_not_hold() -> None:
    usage = lambda p, c: SimpleNamespace(prompt_tokens=p, completion_tokens=c)  # noqa: E731
    run = SessionRun([usage(100, 10), usage(130, 12), usage(160, 5)], ["tool_calls", "tool_calls", "stop"],
                     [], [], "answer")
    assert new_tokens(run, stop_counted=False) == [100, 20, 18]
    assert new_tokens(run, stop_counted=True) == [100, 21, 19]  # the server counts the stop token


@pytest.mark.slow
def test_quick_bench_runs_and_writes_its_report(tmp_path, tiny_gguf_f16, tiny_gguf_q8_0) -> None:
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out-dir", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "bench-quick-latest.json").read_text())
    assert report["mode"] == "quick" and report["command"] == "python -m bench --quick"
    assert {f["id"] for f in report["figures"]} == FIGURES
    for figure in report["figures"]:
        if figure["status"] == "measured":
            assert isinstance(figure["ratio"], float) and figure["ratio"] > 0, figure["id"]
            assert figure["spread"]["n"] == len(figure["samples"]) >= 1
            assert all(s > 0 for s in figure["samples"])
            assert figure["measured"] and figure["anchor"] and figure["notes"]
        else:
            assert figure["status"].startswith("not measured: ") and figure["ratio"] is None, figure
    # Everything this repository provides is measurable here; only the app may be absent.
    unmeasured = {f["id"] for f in report["figures"] if f["ratio"] is None}
    assert unmeasured <= {"app_overhead"}, [f["status"] for f in report["figures"] if f["ratio"] is None]
    markdown = (tmp_path / "bench-quick-latest.md").read_text()
    assert markdown.startswith("Command: `python -m bench --quick`")
    assert markdown.count("\n| ") == len(FIGURES) + 1  # header + one row per figure
    assert report["seconds"] < 300
