"""The front door: README.md answers "what do I run?" within its first screenful, every recipe
in its path table names files that exist, and every link in README.md and docs/ leads somewhere."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
LINK = re.compile(r"\]\(([^)\s]+)\)")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)  # links inside code are code, not links
PATHS = ["Ollama", "llama-server", "LM Studio", "llama-cpp-python", "demo app", "Space", "own quants"]


def _body() -> list[str]:
    text = README.read_text(encoding="utf-8")
    return text.split("\n---\n", 1)[1].splitlines()  # after the Space front matter


def test_readme_is_short_before_the_docs_and_leads_with_the_paths() -> None:
    lines = _body()
    first_doc = next(i for i, line in enumerate(lines) if "](docs/" in line)
    assert first_doc <= 150
    heads = [line for line in lines if line.startswith("## ")]
    assert heads[:2] == ["## Two commands", "## Which path is yours?"]
    assert "bash scripts/demo.sh" in "\n".join(lines) and "bash scripts/test.sh" in "\n".join(lines)
    start = lines.index("## Which path is yours?")
    rows = [line for line in lines[start:] if line.startswith("| **")]
    for name in PATHS:
        assert any(name in row.split("|")[1] for row in rows), f"no row for {name}"


def test_the_recipes_name_files_that_exist() -> None:
    text = "\n".join(_body())
    for path in ("Modelfile", "Modelfile.local", "templates/smol-tools.jinja", "scripts/demo.sh",
                 "scripts/test.sh", "scripts/setup.sh", "requirements-packaging.txt", "app.py"):
        assert path in text and (ROOT / path).is_file(), path
    modelfile = (ROOT / "Modelfile").read_text(encoding="utf-8")
    assert "FROM hf.co/enfuse/smol-tools-4b-32k:Q4_K_M" in modelfile and modelfile.split("FROM ")[1].split()[0] in text


def test_every_docs_page_is_linked_and_every_link_resolves() -> None:
    readme = README.read_text(encoding="utf-8")
    pages = sorted((ROOT / "docs").glob("*.md"))
    unlinked = [p.name for p in pages if f"](docs/{p.name}" not in readme]
    assert not unlinked, f"link these from README.md: {unlinked}"
    for source in [README, ROOT / "SECURITY.md", *pages]:
        for target in LINK.findall(CODE.sub("", source.read_text(encoding="utf-8"))):
            if target.startswith(("http://", "https://", "mailto:", "#")):
                continue
            path = (source.parent / target.split("#")[0]).resolve()
            assert path.exists(), f"{source.name} links to {target}, which does not exist"
