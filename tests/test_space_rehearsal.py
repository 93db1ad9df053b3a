"""A Hugging Face Space build, rehearsed the way a Gradio Space installs and starts the app.

A Space installs `pre-requirements.txt`, then `requirements.txt`, then its SDK (`gradio[oauth]`
at the front matter's `sdk_version`, and `spaces`), with pip into a fresh Python (README front
matter: `python_version`), and runs `python app.py` with `SPACE_ID`,
`SYSTEM=spaces` and `GRADIO_SERVER_NAME=0.0.0.0` set. The rehearsal does the same in a fresh
Python 3.11 virtual environment under pytest's tmp dir: no scripts/setup.sh, no project venv,
no wheel from ~/.cache/smol-tools. Only pip's own cache (~/.cache/pip) carries over between
runs, as on any CI machine, so the first run builds llama-cpp-python from its sdist wherever
the pre-built wheel index cannot be reached (minutes) and later runs take pip's cached wheel.
Install times go to tests/artifacts/space_rehearsal.json (docs/space.md quotes them).

The tests here are offline (HF_HUB_OFFLINE=1, a throwaway HOME and HF_HOME). That venv holds
the runtime requirements only, with no torch; the offline fallback is the tiny model's GGUF
shipped inside the package (smol_tools/tiny/), so the first boot answers a scripted example
exactly. The second boot points SMOL_TOOLS_MODEL at the tiny GGUF the test suite built
(tests/fixtures), the way an operator points a Space at a file. Loaded by path it is an
ordinary model to the app (all default tools, no scripted schemas), so the check there is that
a turn completes on it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from packaging.requirements import Requirement

from tests.test_app_support import ARTIFACTS, AppProcess, call, client

ROOT = Path(__file__).resolve().parent.parent
WHEEL_INDEX = "https://abetlen.github.io/llama-cpp-python/whl/cpu"
SPACE_PYTHON = "3.11"
SPACE_ENV = {"SPACE_ID": "smol-tools/space-rehearsal", "SYSTEM": "spaces", "GRADIO_SERVER_NAME": "0.0.0.0"}
PAGE_TITLE = "smol-tools: tool calls you can see"
LOCKED_TEXT = "fixed the backend"  # smol_tools.app.service.LOCKED


# -- the files a Space reads (fast: no install) ----------------------------------------------------

def _front_matter() -> dict[str, Any]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n", text, re.S)
    assert match, "README.md has no YAML front matter: a Space reads its settings from it"
    return yaml.safe_load(match[1])


def _requirements(name: str) -> tuple[list[str], dict[str, Requirement]]:
    """(option lines, requirements by name) of a requirements file, as pip would read them."""
    options: list[str] = []
    pins: dict[str, Requirement] = {}
    for raw in (ROOT / name).read_text(encoding="utf-8").splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not line:
            continue
        if line.startswith("-"):
            options.append(line)
            continue
        req = Requirement(line)  # raises on anything pip would not parse either
        assert req.name not in pins, f"{name}: {req.name} listed twice"
        pins[req.name] = req
    return options, pins


def test_space_files_agree() -> None:
    front = _front_matter()
    options, pins = _requirements("requirements.txt")
    pre_options, pre_pins = _requirements("pre-requirements.txt")

    assert front["sdk"] == "gradio" and (ROOT / front["app_file"]).is_file()
    # The Space installs gradio==sdk_version on top of requirements.txt: they must agree.
    assert str(pins["gradio"].specifier) == f"=={front['sdk_version']}"
    assert str(front["python_version"]) == SPACE_PYTHON
    # Every runtime requirement pinned, so the rehearsal installs what a Space installs.
    assert all(str(r.specifier).startswith("==") for r in pins.values()), pins
    # No index options in requirements.txt: where an index cannot be reached, pip retries it for
    # every package (about 10 s each here), and scripts/setup.sh installs this file too.
    assert options == []
    # pre-requirements.txt: the pre-built wheel index, for llama-cpp-python only, same pin.
    assert pre_options == [f"--extra-index-url {WHEEL_INDEX}"]
    assert list(pre_pins) == ["llama-cpp-python"]
    assert pre_pins["llama-cpp-python"].specifier == pins["llama-cpp-python"].specifier
    # A Space mounts each file on its own: a nested -r/-c would not be found there.
    assert not any(o.startswith(("-r", "-c", "--requirement", "--constraint")) for o in options + pre_options)


# -- the rehearsal -------------------------------------------------------------------------------

@dataclass
class SpaceVenv:
    python: Path
    home: Path  # a throwaway HOME for the app, as a fresh Space has
    timings: dict[str, float]
    pre_report: dict[str, Any]  # pip --report of the pre-requirements step
    pip_log: str


def _space_python() -> str:
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == SPACE_PYTHON:
        return sys.executable  # venv from a venv: the new one uses the base interpreter
    found = shutil.which(f"python{SPACE_PYTHON}")
    if found is None:
        pytest.fail(f"the Space rehearsal needs Python {SPACE_PYTHON} (README front matter "
                    f"python_version); install python{SPACE_PYTHON} or run the suite with it")
    return found


def _pip_env(venv: Path) -> dict[str, str]:
    """This machine's pip configuration, minus anything from the project's own setup."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "CMAKE_ARGS", "FORCE_CMAKE",
                        "CMAKE_BUILD_PARALLEL_LEVEL", "PIP_REQUIRE_VIRTUALENV"}}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    # A Space reaches the wheel index; a CI machine may not. pip then retries it for each of the
    # six packages of pre-requirements.txt, 5 times by default (about a minute of waiting that
    # tests nothing more); one retry keeps a PyPI hiccup survivable.
    env["PIP_RETRIES"] = "1"
    return env


def _pip_install(python: Path, env: dict[str, str], log: list[str], *args: str) -> float:
    start = time.monotonic()
    done = subprocess.run([str(python), "-m", "pip", "install", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1500)
    seconds = time.monotonic() - start
    log.append(f"$ pip install {' '.join(args)}  # {seconds:.1f} s, rc={done.returncode}\n"
               f"{done.stdout}\n{done.stderr}")
    if done.returncode != 0:
        raise AssertionError(f"pip install {' '.join(args)} failed:\n{done.stderr[-4000:]}")
    return seconds


@pytest.fixture(scope="module")
def space_venv(tmp_path_factory) -> SpaceVenv:
    base = tmp_path_factory.mktemp("space")
    venv = base / "venv"
    timings: dict[str, float] = {}
    start = time.monotonic()
    subprocess.run([_space_python(), "-m", "venv", str(venv)], check=True, timeout=300)
    timings["venv_s"] = time.monotonic() - start
    python = venv / "bin" / "python"
    env = _pip_env(venv)
    log: list[str] = []
    report_path = base / "pre-report.json"
    # The two steps a Gradio Space runs, in its order (--report only records pip's choices).
    timings["pre_requirements_s"] = _pip_install(python, env, log, "-r", "pre-requirements.txt",
                                                 "--report", str(report_path))
    timings["requirements_s"] = _pip_install(python, env, log, "-r", "requirements.txt")
    # Then the SDK itself: the front matter's Gradio and `spaces`, which Gradio's Spaces
    # reloader (SYSTEM=spaces) requires; without it a thread of app.py dies at start.
    sdk = f"gradio[oauth]=={_front_matter()['sdk_version']}"
    timings["sdk_s"] = _pip_install(python, env, log, sdk, "spaces")
    timings["install_total_s"] = timings["pre_requirements_s"] + timings["requirements_s"] + timings["sdk_s"]
    pip_log = "\n".join(log)
    pre_report = json.loads(report_path.read_text(encoding="utf-8"))
    llama = _llama_item(pre_report)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "space_rehearsal_pip.log").write_text(pip_log, encoding="utf-8")
    record = {k: round(v, 1) for k, v in timings.items()}
    record["llama_cpp_python_from"] = llama["download_info"]["url"]
    record["llama_cpp_python_built_here"] = "Building wheel for llama-cpp-python" in pip_log
    (ARTIFACTS / "space_rehearsal.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"\nSpace rehearsal install: {json.dumps(record)}")
    home = base / "home"
    home.mkdir()
    return SpaceVenv(python, home, timings, pre_report, pip_log)


def _llama_item(report: dict[str, Any]) -> dict[str, Any]:
    items = [i for i in report["install"] if i["metadata"]["name"].lower().replace("_", "-") == "llama-cpp-python"]
    assert len(items) == 1, f"pre-requirements.txt did not install llama-cpp-python: {report['install']}"
    return items[0]


def _index_has_the_wheel(version: str) -> bool:
    """Whether the pre-built index answers here and lists a wheel of `version`."""
    try:
        with urllib.request.urlopen(f"{WHEEL_INDEX}/llama-cpp-python/", timeout=15) as response:
            page = response.read().decode("utf-8", "replace")
    except OSError:
        return False
    return f"llama_cpp_python-{version}-" in page and ".whl" in page


class SpaceApp(AppProcess):
    """`python app.py` from the rehearsal venv, with a Space's environment (and nothing of this
    process's), on a free port."""

    def __init__(self, space: SpaceVenv, name: str, **extra: str) -> None:
        environ = {"PATH": f"{space.python.parent}{os.pathsep}/usr/local/bin:/usr/bin:/bin", "HOME": str(space.home),
                   "LANG": "C.UTF-8", "HF_HOME": str(space.home / "hf"), **SPACE_ENV}
        super().__init__(f"space_rehearsal_{name}", python=space.python, environ=environ, start_timeout=240,
                         SMOL_TOOLS_LOG="INFO", **extra)


def _assert_locked(c) -> None:
    probe = call(c, "test_connection", "openai", "", "http://127.0.0.1:9", "")
    assert not probe["ok"] and LOCKED_TEXT in probe["message"]
    switch = call(c, "set_backend", "llama-cpp-python", "tiny", "", "Q4_K_M")
    assert not switch["ok"] and LOCKED_TEXT in switch["message"]


@pytest.mark.slow
def test_space_install_takes_the_prebuilt_wheel_or_falls_back_to_the_sdist(space_venv: SpaceVenv) -> None:
    llama = _llama_item(space_venv.pre_report)
    version = llama["metadata"]["version"]
    url = llama["download_info"]["url"]
    assert version == str(_requirements("requirements.txt")[1]["llama-cpp-python"].specifier)[2:]
    if _index_has_the_wheel(version):
        assert url.startswith("https://github.com/abetlen/llama-cpp-python/releases/") and url.endswith(".whl"), url
        assert "Building wheel for llama-cpp-python" not in space_venv.pip_log
    else:
        # The index cannot be reached here: pip fell back to PyPI's sdist (built now or earlier
        # by this machine's pip, whose cache keeps the wheel it built from that very URL).
        assert url.endswith(f"llama_cpp_python-{version}.tar.gz") and "abetlen" not in url, url
    # Nothing came from the project's own caches or setup.
    assert ".cache/smol-tools" not in space_venv.pip_log
    probe = subprocess.run([str(space_venv.python), "-c",
                            "import importlib.util, llama_cpp; print(llama_cpp.__version__, "
                            "importlib.util.find_spec('torch') is None)"],
                           capture_output=True, text=True, timeout=120, check=True)
    assert probe.stdout.split() == [version, "True"]  # the runtime profile only: no torch


@pytest.mark.slow
def test_space_boots_offline_on_the_shipped_tiny_model(space_venv: SpaceVenv) -> None:
    """The Space's default settings, nothing preloaded, Hub offline: the page is served, the
    backend is locked, the notice says why the real model is not there, and the tiny model that
    ships in the package answers an example exactly as scripted (no torch in this venv)."""
    from tests.test_tiny_examples import assert_replays

    with SpaceApp(space_venv, "default") as app:
        assert f"<title>{PAGE_TITLE}</title>" in app.page() or PAGE_TITLE in app.page()
        c = client(app)
        status = call(c, "status")
        assert status["notice"].startswith("Offline: the Hugging Face Hub cannot be reached"), status
        assert status["backend_ok"] and status["tiny_model"], status
        _assert_locked(c)
        prompt = "What is the weather in Paris?"
        assert_replays(call(c, "send", prompt), prompt)
    # Gradio's Spaces machinery started too (its reloader thread needs the `spaces` package).
    log = app.log_tail(200_000)
    assert "serving on http://0.0.0.0:" in log and "Exception in thread" not in log, log[-3000:]


@pytest.mark.slow
def test_space_answers_on_the_tiny_gguf_offline(space_venv: SpaceVenv, tiny_gguf_q8_0: Path) -> None:
    with SpaceApp(space_venv, "tiny_gguf", SMOL_TOOLS_MODEL=str(tiny_gguf_q8_0), SMOL_TOOLS_N_CTX="4096") as app:
        assert PAGE_TITLE in app.page()
        c = client(app)
        status = call(c, "status")
        assert status["backend_ok"] and not status["notice"], status
        assert tiny_gguf_q8_0.name in status["backend"] and status["context_limit"] == 4096
        _assert_locked(c)
        # The five tools the tiny model was trained with keep its prompt short; greedy, two
        # rounds at most: a short, reproducible turn.
        five = ["get_weather", "calculate", "get_current_datetime", "read_file", "list_directory"]
        assert call(c, "set_tools", five, "", False)["ok"]
        call(c, "set_options", False, True, 2)
        turn = call(c, "send", "Compute 17 * 23, then add 100 to it.")
        assert turn["backend"] == status["backend"]
        # Loaded by path, its prompt is not the scripted one, so how the turn ends varies; what
        # matters is that the model ran in process and the turn ended with a stated reason.
        assert turn["finish"]["reason"] in {"answer", "round_limit", "context_overflow"}, turn["finish"]
        usage = turn["rounds"][0]["usage"]
        assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0, usage
        print(f"\nSpace app boot: {app.boot_s:.1f} s")
