"""smol_tools stands alone: what it reads at run time ships inside it, and no runtime module
reaches into tests/ or edits sys.path (issue 14 §1). Nothing outside tests/ does either: the
benchmarks get the tiny model from devkit/ (development builders, never shipped), and runtime code
never imports devkit.

The root templates/ folder stays the documented, user-facing copy (README commands such as
`--chat-template-file templates/smol-tools.jinja` name it); the package reads its own copy in
smol_tools/templates/, and this test keeps the two byte-identical. Edit both, or edit one and
`cp templates/* smol_tools/templates/`.
"""

from __future__ import annotations

import ast
import fnmatch
import tomllib
from pathlib import Path

import pytest

from smol_tools import chat_format, hf_jinja_render, ollama_render, tiny
from smol_tools.eval import suite
from smol_tools.pipeline import settings
from smol_tools.tiny import scripted

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "smol_tools"
RUNTIME_CODE = [*sorted(PACKAGE.rglob("*.py")), ROOT / "app.py", *sorted((ROOT / "packaging").glob("*.py"))]
# Every Python file of the checkout outside tests/ (and outside environments and build folders).
SKIPPED_TOP = {"tests", ".venv", ".git", "build", "dist", "node_modules"}
CODE_OUTSIDE_TESTS = sorted(p for p in ROOT.rglob("*.py") if p.relative_to(ROOT).parts[0] not in SKIPPED_TOP
                            and not p.relative_to(ROOT).parts[0].endswith(".egg-info"))


def test_root_templates_are_the_packaged_ones_byte_for_byte() -> None:
    root = sorted(p.name for p in (ROOT / "templates").iterdir())
    packaged = sorted(p.name for p in chat_format.TEMPLATES_DIR.iterdir() if p.is_file())
    assert root == packaged == ["params.json", "smol-tools.gotmpl", "smol-tools.jinja"]
    for name in root:
        assert (ROOT / "templates" / name).read_bytes() == (chat_format.TEMPLATES_DIR / name).read_bytes(), (
            f"templates/{name} differs from smol_tools/templates/{name}: copy the edited one over the other")


def _package_data_globs() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return config["tool"]["setuptools"]["package-data"]["smol_tools"]


@pytest.mark.parametrize("path", [
    chat_format.JINJA_TEMPLATE_PATH, chat_format.PARAMS_PATH, chat_format.TEMPLATES_DIR / "smol-tools.gotmpl",
    suite.DEFAULT_SUITE, suite.SCHEMA_PATH, settings.CONFIG_PATH, settings.CALIBRATION_PATH, settings.CORPUS_PATH,
    ollama_render.RENDERER_SOURCE_DIR / "main.go", ollama_render.RENDERER_SOURCE_DIR / "go.mod",
    ollama_render.RENDERER_SOURCE_DIR / "modelfile.go", hf_jinja_render.HARNESS_DIR / "package.json",
    hf_jinja_render.HARNESS_DIR / "render.mjs", scripted.SCRIPTED_PATH, tiny.SHIPPED_GGUF,
], ids=lambda p: p.name)
def test_runtime_data_lives_in_the_package_and_is_declared_as_package_data(path: Path) -> None:
    assert path.is_file(), path
    relative = path.resolve().relative_to(PACKAGE.resolve()).as_posix()  # raises when outside smol_tools/
    assert any(fnmatch.fnmatch(relative, pattern) for pattern in _package_data_globs()), (
        f"{relative} is read at run time but not in pyproject's package-data: a wheel would lack it")


def _shown(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name


def _offences(path: Path, forbidden: frozenset[str] = frozenset({"tests"})) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] in forbidden:
            found.append(f"{_shown(path)}:{node.lineno} imports {node.module}")
        elif isinstance(node, ast.Import) and any(a.name.split(".")[0] in forbidden for a in node.names):
            found.append(f"{_shown(path)}:{node.lineno} imports {node.names[0].name}")
        elif isinstance(node, ast.Attribute) and node.attr == "path" and \
                isinstance(node.value, ast.Name) and node.value.id == "sys":
            found.append(f"{_shown(path)}:{node.lineno} touches sys.path")
    return found


def test_no_runtime_module_imports_tests_or_devkit_or_edits_sys_path() -> None:
    offences = [o for path in RUNTIME_CODE for o in _offences(path, frozenset({"tests", "devkit"}))]
    assert offences == []


def test_no_code_outside_tests_imports_tests_or_edits_sys_path() -> None:
    folders = {p.relative_to(ROOT).parts[0] for p in CODE_OUTSIDE_TESTS}
    assert {"bench", "devkit", "smol_tools", "app.py"} <= folders  # the walk sees what it must
    offences = [o for path in CODE_OUTSIDE_TESTS for o in _offences(path)]
    assert offences == []


def test_the_offence_finder_finds_offences(tmp_path: Path) -> None:
    # Guard against a finder that passes everything.
    bad = tmp_path / "offending.py"
    bad.write_text("import sys\nsys.path.insert(0, 'x')\nfrom tests.fixtures.scripted import load_scripted\n"
                   "import tests.conftest\nfrom devkit.tiny_gguf import ensure_tiny_gguf\n", encoding="utf-8")
    assert len(_offences(bad)) == 3
    assert len(_offences(bad, frozenset({"tests", "devkit"}))) == 4
