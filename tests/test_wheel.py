"""The installable wheel works outside the checkout (issue 14 §3).

The wheel is built from a copy of the package sources (pyproject.toml, README.md, smol_tools/)
with `pip wheel --no-build-isolation` (the pinned setuptools of requirements-test.txt; no
network), installed into a fresh virtual environment under a temporary directory together with
the llama-cpp-python wheel scripts/setup.sh caches (its own pip, --find-links, --no-index), and run from that
directory, away from the repository: `smol-tools render` and `parse` on a render-corpus case,
`smol-tools chat --model tiny` for one scripted turn, and `smol-tools doctor` on the shipped
tiny GGUF. The pure-Python dependencies are not downloaded again: a .pth file in the new
environment appends this environment's site-packages (after its own, so the wheel's smol_tools
is the one imported; the test proves it).
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from smol_tools.chat_format import render_prompt
from smol_tools.tiny import SHIPPED_GGUF
from tests.conftest import render_corpus

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("SMOL_TOOLS_CACHE", Path.home() / ".cache" / "smol-tools"))


def _llama_wheels() -> Path:
    version = next(line.split("==")[1].split()[0] for line in (ROOT / "requirements.txt").read_text().splitlines()
                   if line.startswith("llama-cpp-python=="))
    folder = CACHE / "wheels" / f"llama-cpp-python-{version}-cpu-cp{sys.version_info[0]}{sys.version_info[1]}"
    assert any(folder.glob("llama_cpp_python-*.whl")), f"scripts/setup.sh caches the wheel in {folder}"
    return folder


def _run(cmd: list[str], cwd: Path, env: dict[str, str], stdin: str | None = None,
         timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("wheel")
    source = base / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "smol_tools", source / "smol_tools",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "node_modules"))
    dist = base / "dist"
    build = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                  "-w", str(dist), str(source)], cwd=base, env=os.environ.copy())
    assert build.returncode == 0, build.stderr[-3000:]
    wheel = next(dist.glob("smol_tools-*.whl"))

    venv = base / "venv"
    created = _run([sys.executable, "-m", "venv", str(venv)], cwd=base, env=os.environ.copy())  # ensurepip: offline
    assert created.returncode == 0, created.stderr
    python = venv / "bin" / "python"
    purelib = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                        cwd=base, env=os.environ.copy()).stdout.strip())
    install = _run([str(python), "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
                    "--find-links", str(_llama_wheels()), str(wheel), "llama-cpp-python"],
                   cwd=base, env=os.environ.copy())
    assert install.returncode == 0, install.stderr[-3000:]
    # After the install (else pip would find llama-cpp-python already there and skip it).
    ours = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (purelib / "zz_test_env_deps.pth").write_text("\n".join(ours) + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", SMOL_TOOLS_HISTORY="", PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    work = base / "elsewhere"  # cwd for every command: not the checkout
    work.mkdir()
    return {"wheel": wheel, "venv": venv, "python": python, "cli": venv / "bin" / "smol-tools", "env": env,
            "cwd": work, "purelib": purelib}


def test_the_wheel_carries_the_package_data(installed) -> None:
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    for required in ("smol_tools/templates/smol-tools.jinja", "smol_tools/templates/params.json",
                     "smol_tools/templates/smol-tools.gotmpl", "smol_tools/eval/suite.json",
                     "smol_tools/pipeline/data/config.toml", "smol_tools/pipeline/data/render_corpus.json",
                     "smol_tools/pipeline/data/calibration/conversations.json",
                     "smol_tools/ollama_harness/main.go", "smol_tools/tiny/scripted_conversations.json",
                     f"smol_tools/tiny/{SHIPPED_GGUF.name}"):
        assert required in names, required
    assert not any(n.startswith("tests/") for n in names)
    metadata = next(zipfile.Path(installed["wheel"], n) for n in names if n.endswith(".dist-info/METADATA")).read_text()
    assert 'Requires-Dist: llama-cpp-python>=0.3.17; extra == "llama"' in metadata  # pip install smol-tools[llama]
    assert 'Requires-Dist: mcp<2,>=1.30; extra == "mcp"' in metadata  # pip install smol-tools[mcp]


def test_the_installed_package_is_the_wheel_not_the_checkout(installed) -> None:
    where = _run([str(installed["python"]), "-c", "import smol_tools, llama_cpp; print(smol_tools.__file__); "
                  "print(llama_cpp.__file__)"], cwd=installed["cwd"], env=installed["env"])
    assert where.returncode == 0, where.stderr
    package, llama = where.stdout.splitlines()
    assert Path(package).is_relative_to(installed["venv"]) and not Path(package).is_relative_to(ROOT)
    assert Path(llama).is_relative_to(installed["venv"])


def test_render_and_parse_from_outside_the_checkout(installed) -> None:
    case = next(c for c in render_corpus() if c["id"] == "parallel_calls")
    conversation = installed["cwd"] / "conversation.json"
    conversation.write_text(json.dumps({"messages": case["messages"], "tools": case["tools"]}), encoding="utf-8")
    args = [str(installed["cli"]), "render", "--messages", str(conversation)]
    args += [] if case["add_generation_prompt"] else ["--no-generation-prompt"]
    args += [] if case["enable_thinking"] else ["--no-think"]
    rendered = _run(args, cwd=installed["cwd"], env=installed["env"])
    assert rendered.returncode == 0, rendered.stderr
    assert rendered.stdout == render_prompt(case["messages"], case["tools"],
                                            add_generation_prompt=case["add_generation_prompt"],
                                            enable_thinking=case["enable_thinking"])
    output = ('<think>\nboth\n</think>\n\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Tokyo"}}\n'
              '</tool_call>\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Lima"}}\n</tool_call><|im_end|>')
    parsed = _run([str(installed["cli"]), "parse"], cwd=installed["cwd"], env=installed["env"], stdin=output)
    assert parsed.returncode == 0, parsed.stderr
    calls = json.loads(parsed.stdout)["tool_calls"]
    assert [(c["name"], c["arguments"]) for c in calls] == [("get_weather", {"city": "Tokyo"}),
                                                            ("get_weather", {"city": "Lima"})]


def test_chat_with_the_tiny_model_answers_a_scripted_turn(installed) -> None:
    done = _run([str(installed["cli"]), "chat", "--model", "tiny", "--once", "What is the weather in Paris?", "--json"],
                cwd=installed["cwd"], env=installed["env"])
    assert done.returncode == 0, done.stderr[-3000:]
    turn = json.loads(done.stdout)
    assert turn["answer"] == "It is 18 °C and cloudy in Paris."
    assert [(c["name"], c["arguments"], c["scripted"]) for c in turn["calls"]] == [("get_weather", {"city": "Paris"}, True)]


def test_doctor_on_the_shipped_tiny_gguf(installed) -> None:
    shipped = installed["purelib"] / "smol_tools" / "tiny" / SHIPPED_GGUF.name
    assert shipped.is_file()
    for target in ("tiny", str(shipped)):
        done = _run([str(installed["cli"]), "doctor", target, "--json"], cwd=installed["cwd"], env=installed["env"])
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        report = json.loads(done.stdout)
        assert report["ok"] is True and report["template"]["status"] == "ours"  # our template, embedded
        assert Path(report["path"]) == shipped and report["quant"] == SHIPPED_GGUF.stem.rsplit("-", 1)[1].upper()
