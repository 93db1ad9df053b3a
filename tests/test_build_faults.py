"""`smol-tools package` killed (SIGKILL) at each step that writes, then `--resume`d.

Kill points (tests/test_package.py kills the quantizer; these are the others):
- download: a Hub SOURCE served by tests/local_hub.py, through the real huggingface_hub client,
  killed with the weights file part-way down (and the branch moved on meanwhile);
- convert: llama.cpp's converter has half-written the BF16 `.partial` file;
- verify: the verifier of the last quant is running (its result not yet recorded);
- Ollama files / card: `Modelfile.Q4_K_M` or `manifest.json` half-written under its temporary
  name (README.md already renamed into place, for the latter).

How each is caught, without hooks in the pipeline: the pipeline's Python children run through a
wrapper interpreter (the launcher sets `sys.executable`) that runs the real command and then
hangs, leaving what a kill at that moment would find; the card writes are caught by patching
`os.fsync` in the launcher, which atomic_output calls just before its rename; the download is
held by the stand-in server. After every kill: each file under a final name is byte-identical to
the uninterrupted build's (anything partial is under a temporary name), no child outlives the
pipeline, and `--resume` redoes only what is missing; its published set (every GGUF, the
imatrix, Modelfiles, Hub Ollama files, card, manifest) equals the uninterrupted build's by SHA256.
The card and manifest carry no timings, so they are compared whole.

Each build here is about 10 s on an idle 2-core machine (short ladder, one thread)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from smol_tools.pipeline.state import sha256_file
from tests.local_hub import LocalHub
from tests.test_package import NAME, REPO, ROOT, THREADS, TURNS, _alive, gguf

pytestmark = pytest.mark.slow

QUANTS = "Q8_0,Q4_K_M"  # one plain type, one with the imatrix: every kind of step, quickly
GGUFS = [gguf("BF16"), gguf("Q8_0"), gguf("Q4_K_M"), f"{NAME}.imatrix.gguf"]
BUILD_QUANTS = ROOT / "packaging" / "build_quants.py"
HUB_REPO = "owner/tiny-smol-tools"
COMMIT, PUSHED = "a" * 40, "b" * 40


def build_args(source: str, out: Path, *extra: str) -> list[str]:
    return [str(BUILD_QUANTS), source, "--out", str(out), "--model-name", NAME, "--declare-pre", "qwen35",
            "--expect-turns", str(TURNS), "--quants", QUANTS, "--repo-id", REPO, *THREADS, *extra]


def child_env(tmp_path: Path, hub: LocalHub | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HF_HUB_OFFLINE", "HF_ENDPOINT")}
    env |= {"HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_DISABLE_TELEMETRY": "1"}
    if hub is not None:
        env |= {"HF_ENDPOINT": hub.endpoint, "HF_HUB_DISABLE_XET": "1"}
    return env


def run_build(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=900, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def final_files(out: Path) -> dict[str, str]:
    """Every file under its final name at the top of `out` (what the plan uploads), by SHA256."""
    return {p.name: sha256_file(p) for p in sorted(out.iterdir()) if p.is_file() and not p.name.startswith(".")}


def launcher(tmp_path: Path, patch: str) -> Path:
    """A Python script that applies `patch`, then runs build_quants.py with the remaining argv."""
    path = tmp_path / "launch.py"
    path.write_text(f"import os, runpy, sys, time\n{patch}\nsys.argv = sys.argv[1:]\n"
                    "runpy.run_path(sys.argv[0], run_name='__main__')\n")
    return path


def python_wrapper(tmp_path: Path, match: str, marker: Path, then: str = "", quiet: bool = False) -> Path:
    """A stand-in for the pipeline's Python (its `sys.executable`): a command whose arguments
    match the shell pattern `match` runs for real, then `then` runs, then it writes its pid to
    `marker` and hangs; a kill now finds what it would find at that point. Anything else is
    the real interpreter."""
    script = tmp_path / "python"
    script.write_text(
        "#!/bin/sh\n"
        f'case " $* " in {match})\n'
        f'  "{sys.executable}" "$@"{" > /dev/null" if quiet else ""} || exit $?\n'
        f"  {then or ':'}\n"
        f'  echo $$ > "{marker}"\n'
        "  exec sleep 300;;\n"
        "esac\n"
        f'exec "{sys.executable}" "$@"\n')
    script.chmod(0o755)
    return script


def start_and_kill(args: list[str], env: dict[str, str], log: Path, ready: Callable[[], bool],
                   timeout: float = 600) -> None:
    """Start the build, wait until `ready()`, SIGKILL it (the process only, as the OOM killer would)."""
    with open(log, "w") as sink:
        proc = subprocess.Popen([sys.executable, *args], stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        deadline = time.monotonic() + timeout
        while not ready() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if not ready():
            proc.kill()
            proc.wait()
            pytest.fail(f"the kill point was never reached:\n{log.read_text()[-3000:]}")
        proc.send_signal(signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL


def assert_dies_with_pipeline(marker: Path) -> None:
    """The hanging child was tied to the pipeline (PR_SET_PDEATHSIG): it is gone too."""
    pid = int(marker.read_text())
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), f"child {pid} outlived the killed pipeline"


def assert_nothing_partial_under_a_final_name(out: Path, baseline: Path) -> None:
    """After a kill: every file under its final name is the finished file (byte-identical to the
    uninterrupted build's); anything else is under a temporary `.name.partial` name; the build
    record still parses (it is replaced atomically too)."""
    reference = final_files(baseline)
    for name, digest in final_files(out).items():
        assert digest == reference.get(name), f"{name} is under its final name but is not the finished file"
    for item in out.iterdir():
        if item.name.startswith("."):
            assert item.name.endswith(".partial"), item.name
    json.loads((out / "build" / "state.json").read_text())


def assert_same_published_set(out: Path, baseline: Path) -> None:
    resumed, reference = final_files(out), final_files(baseline)
    assert set(GGUFS) <= set(reference) and {"README.md", "manifest.json", "Modelfile.Q4_K_M"} <= set(reference)
    assert resumed == reference
    assert not [p.name for p in out.rglob("*.partial")] and not list(out.rglob("*.incomplete"))


def lines(text: str, step: str) -> list[str]:
    return [line.split(f"]  {step}", 1)[1].strip() for line in text.splitlines() if f"]  {step} " in line]


@pytest.fixture(scope="module")
def baseline(tiny_model, tmp_path_factory) -> Path:
    """The uninterrupted build, with the same arguments as the killed ones."""
    tmp = tmp_path_factory.mktemp("baseline")
    run_build(build_args(str(tiny_model.path), tmp / "out"), child_env(tmp))
    return tmp / "out"


def test_killed_during_convert(baseline, tiny_model, tmp_path) -> None:
    out, marker = tmp_path / "out", tmp_path / "converter.pid"
    partial = out / f".{gguf('BF16')}.partial"
    wrapper = python_wrapper(
        tmp_path, '*" smol_tools.pipeline.convert_entry "*" --outtype bf16 "*', marker,
        then='out=$(prev=; for a; do [ "$prev" = --outfile ] && echo "$a"; prev=$a; done); '
             'truncate -s $(( $(stat -c %s "$out") / 2 )) "$out"')
    args = build_args(str(tiny_model.path), out)
    start_and_kill([str(launcher(tmp_path, f"sys.executable = {str(wrapper)!r}")), *args],
                   child_env(tmp_path), tmp_path / "first.log", marker.exists)
    assert_dies_with_pipeline(marker)
    assert partial.stat().st_size > 0  # half of what the converter wrote
    assert not (out / gguf("BF16")).exists()
    assert_nothing_partial_under_a_final_name(out, baseline)

    text = run_build(args + ["--resume"], child_env(tmp_path))
    assert "done earlier" not in text  # nothing was finished: everything is made now
    assert f"{gguf('BF16')} (llama.cpp convert_hf_to_gguf.py)" in lines(text, "convert")[0]
    assert_same_published_set(out, baseline)


def test_killed_during_verify(baseline, tiny_model, tmp_path) -> None:
    out, marker = tmp_path / "out", tmp_path / "verifier.pid"
    wrapper = python_wrapper(tmp_path, f'*" -m smol_tools.pipeline.verify "*"/{gguf("Q4_K_M")} "*', marker,
                             quiet=True)
    args = build_args(str(tiny_model.path), out)
    start_and_kill([str(launcher(tmp_path, f"sys.executable = {str(wrapper)!r}")), *args],
                   child_env(tmp_path), tmp_path / "first.log", marker.exists)
    assert_dies_with_pipeline(marker)
    assert_nothing_partial_under_a_final_name(out, baseline)
    assert set(final_files(out)) == set(GGUFS)  # every GGUF made; the Ollama files and card not yet
    state = json.loads((out / "build" / "state.json").read_text())
    assert f"verify:{gguf('Q8_0')}" in state and f"verify:{gguf('Q4_K_M')}" not in state

    text = run_build(args + ["--resume"], child_env(tmp_path))
    assert lines(text, "convert")[0].startswith(f"{gguf('BF16')}: done earlier")
    assert lines(text, "imatrix")[0].startswith(f"{NAME}.imatrix.gguf: done earlier")
    assert [q.split(":")[1].split()[:2] for q in lines(text, "quantize")] == [["done", "earlier"]] * 2
    verified = lines(text, "verify")
    for name, line in zip([gguf("BF16"), gguf("Q8_0")], verified):
        assert line.startswith(f"{name}: OK") and line.endswith("already verified)")
    assert verified[2].startswith(f"{gguf('Q4_K_M')}: OK") and "verified in" in verified[2]  # redone
    assert_same_published_set(out, baseline)


FSYNC_PATCH = """
TARGET, MARKER = {target!r}, {marker!r}
_real_fsync = os.fsync
def _fsync(fd):
    # atomic_output fsyncs the temporary file just before renaming it into place: hold the
    # target there, half written, as a kill in the middle of writing it would leave it.
    name = os.readlink(f"/proc/self/fd/{{fd}}")
    if os.path.basename(name) == TARGET:
        os.truncate(name, os.fstat(fd).st_size // 2)
        with open(MARKER, "w") as handle:
            handle.write(str(os.getpid()))
        time.sleep(300)
    return _real_fsync(fd)
os.fsync = _fsync
"""


@pytest.mark.parametrize("target", ["Modelfile.Q4_K_M", "manifest.json"])
def test_killed_writing_ollama_files_or_card(baseline, tiny_model, tmp_path, target) -> None:
    out, marker = tmp_path / "out", tmp_path / "pipeline.pid"
    partial = out / f".{target}.partial"
    args = build_args(str(tiny_model.path), out)
    patch = FSYNC_PATCH.format(target=partial.name, marker=str(marker))
    start_and_kill([str(launcher(tmp_path, patch)), *args], child_env(tmp_path), tmp_path / "first.log",
                   marker.exists)
    assert partial.stat().st_size == (baseline / target).stat().st_size // 2
    assert not (out / target).exists()
    assert_nothing_partial_under_a_final_name(out, baseline)
    written_before = set(final_files(out))
    assert set(GGUFS) | {"Modelfile.Q8_0"} <= written_before
    if target == "manifest.json":
        assert "README.md" in written_before  # renamed into place just before: complete

    text = run_build(args + ["--resume"], child_env(tmp_path))
    assert [line.split(":")[1].split()[:2] for line in lines(text, "convert") + lines(text, "quantize")] \
        == [["done", "earlier"]] * 3
    assert lines(text, "imatrix")[0].startswith(f"{NAME}.imatrix.gguf: done earlier")
    assert all(line.endswith("already verified)") for line in lines(text, "verify")) and len(lines(text, "verify")) == 3
    assert lines(text, "card") == ["README.md (model card) and manifest.json"]  # small text: rewritten
    assert_same_published_set(out, baseline)


@pytest.fixture(scope="module")
def hub_baseline(tiny_model, tmp_path_factory) -> Path:
    """The uninterrupted build of the same checkpoint as a Hub SOURCE at commit COMMIT (its
    GGUFs record the source repo, its card and manifest the commit)."""
    tmp = tmp_path_factory.mktemp("hub-baseline")
    with LocalHub(tiny_model.path, HUB_REPO, COMMIT) as hub:
        run_build(build_args(HUB_REPO, tmp / "out"), child_env(tmp, hub))
    return tmp / "out"


def test_killed_during_download(hub_baseline, tiny_model, tmp_path) -> None:
    """Killed with the weights part-way down, and `main` moved on meanwhile: the resumed build
    downloads what is missing from the commit the first run resolved (recorded before the
    download began), and ends byte-identical to an uninterrupted build of that commit."""
    out = tmp_path / "out"
    source, downloads = out / "source", out / "source" / ".cache" / "huggingface" / "download"
    weights = (tiny_model.path / "model.safetensors").read_bytes()
    small = ["config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"]
    args = build_args(HUB_REPO, out)

    with LocalHub(tiny_model.path, HUB_REPO, COMMIT, push_after_lookup=PUSHED) as hub:
        hub.stall("model.safetensors", after=len(weights) - 1)  # everything but the last byte sent

        def mid_file() -> bool:
            partial = list(downloads.glob("*.incomplete")) if downloads.is_dir() else []
            return (hub.stalled.is_set() and all((source / n).exists() for n in small)
                    and len(partial) == 1 and partial[0].stat().st_size > 0)

        start_and_kill(args, child_env(tmp_path, hub), tmp_path / "first.log", mid_file)
        hub.release()
        partial = next(downloads.glob("*.incomplete"))
        assert 0 < partial.stat().st_size < len(weights)
        assert not (source / "model.safetensors").exists()  # never under its final name
        for name in small:  # the finished downloads are complete
            assert (source / name).read_bytes() == (tiny_model.path / name).read_bytes()
        assert not list(out.glob("*.gguf"))
        assert json.loads((out / "build" / "state.json").read_text())["source"]["revision"] == COMMIT
        assert hub.main == PUSHED  # the branch moved while the build was down
        killed_at = len(hub.requests)

        text = run_build(args + ["--resume"], child_env(tmp_path, hub))
        again = hub.requests[killed_at:]

    assert lines(text, "source")[0].startswith(f"hub {HUB_REPO}@{COMMIT[:12]}")
    assert not [r for r in again if "/revision/" in r[1]]  # the recorded commit, not main's new one
    assert not [r for r in again if r[1].startswith(f"/api/models/{HUB_REPO}/tree/")]  # listing cached
    fetched = {r[1].rsplit("/", 1)[-1] for r in again if r[0] == "GET" and "/resolve/" in r[1]}
    # Only the unfinished file is fetched again. huggingface_hub never resumes a killed process's
    # partial file (its name is unique to that process), so it comes down whole; the orphan is
    # deleted, not left to fill the disk.
    assert fetched == {"model.safetensors"} and hub.gets("model.safetensors")[-1] is None
    assert not partial.exists()
    assert lines(text, "convert")[0].startswith(f"{gguf('BF16')} (llama.cpp convert_hf_to_gguf.py)")
    assert_same_published_set(out, hub_baseline)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source"]["revision"] == COMMIT
