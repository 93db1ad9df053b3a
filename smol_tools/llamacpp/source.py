"""Locate the llama.cpp source tree vendored in the pinned llama-cpp-python sdist.

That tree carries the reference converter (`convert_hf_to_gguf.py` + `conversion/` +
`gguf-py/`), the server and quantizer sources, and reference chat templates. We extract it once
per machine into ~/.cache/smol-tools/llama.cpp/<llama-cpp-python version>/.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib import metadata
from pathlib import Path

CACHE_ROOT = Path(os.environ.get("SMOL_TOOLS_CACHE", Path.home() / ".cache" / "smol-tools"))


class LlamaCppSourceError(RuntimeError):
    """The vendored llama.cpp tree could not be found or fetched."""


def llama_cpp_python_version() -> str:
    try:
        return metadata.version("llama-cpp-python")
    except metadata.PackageNotFoundError as exc:
        raise LlamaCppSourceError(
            "llama-cpp-python is not installed; run the README's setup command") from exc


def sdist_path(version: str) -> Path:
    return CACHE_ROOT / "sdist" / f"llama_cpp_python-{version}.tar.gz"


_UPDATE_LINE = re.compile(r"llama\.cpp@([0-9a-f]{7,40})")


def commit_from_changelog(text: str, version: str) -> str | None:
    """The llama.cpp commit llama-cpp-python `version` vendors, from its CHANGELOG.md: the first
    "update llama.cpp to ggml-org/llama.cpp@HASH" at or below that version's heading (a release
    without such a line still carries the previous one's tree)."""
    heading = re.search(rf"^## \[{re.escape(version)}\]", text, re.MULTILINE)
    found = _UPDATE_LINE.search(text, heading.end()) if heading else None
    return found.group(1) if found else None


def vendored_commit(version: str | None = None) -> str | None:
    """The vendored tree's llama.cpp commit, read from the cached sdist's changelog; None without
    the sdist. The sdist has no git metadata, so the programs we build say "commit unknown"."""
    version = version or llama_cpp_python_version()
    archive = sdist_path(version)
    if not archive.exists():
        return None
    wanted = f"llama_cpp_python-{version}/CHANGELOG.md"
    try:
        with tarfile.open(archive) as tar:
            for member in tar:  # stops at the file: getmember() would decompress all 76 MB first
                if member.name == wanted:
                    handle = tar.extractfile(member)
                    return commit_from_changelog(handle.read().decode("utf-8", "replace"), version) if handle else None
    except (OSError, tarfile.TarError):
        return None
    return None


def _download_sdist(version: str) -> Path:
    target = sdist_path(version)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
               "--no-build-isolation", f"llama-cpp-python=={version}", "-d", tmp]
        result = subprocess.run(cmd, capture_output=True, text=True)
        files = list(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        if result.returncode != 0 and not files:
            raise LlamaCppSourceError(
                f"could not download the llama-cpp-python {version} sdist:\n{result.stderr[-2000:]}")
        os.replace(files[0], target)
    return target


def llama_cpp_dir(version: str | None = None) -> Path:
    """Path of the vendored llama.cpp tree (env SMOL_TOOLS_LLAMA_CPP_DIR overrides)."""
    override = os.environ.get("SMOL_TOOLS_LLAMA_CPP_DIR")
    if override:
        path = Path(override)
        if not (path / "convert_hf_to_gguf.py").exists():
            raise LlamaCppSourceError(f"SMOL_TOOLS_LLAMA_CPP_DIR={path} has no convert_hf_to_gguf.py")
        return path
    version = version or llama_cpp_python_version()
    final = CACHE_ROOT / "llama.cpp" / version
    if (final / "convert_hf_to_gguf.py").exists():
        return final
    archive = sdist_path(version)
    if not archive.exists():
        archive = _download_sdist(version)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=final.parent))
    try:
        prefix = f"llama_cpp_python-{version}/vendor/llama.cpp/"
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
            for member in members:
                member.name = member.name[len(prefix):]
            tar.extractall(staging, members=[m for m in members if m.name], filter="data")
        if final.exists():
            shutil.rmtree(staging)
        else:
            staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final
