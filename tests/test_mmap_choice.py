"""Weights held twice: llama.cpp's CPU repack with a memory-mapped file (issue 21, found at real size).

At the 4B stand-in's size, Q4_K_M loaded in process with the file mapped was 4,454 MiB resident:
the repacked copy (1,571 MiB, anonymous) plus the file's pages it was read from, still mapped;
without the mapping, 2,886 MiB (bench/README.md). The backends now load such files unmapped
(smol_tools/llamacpp/mapping.py). At the tiny model's size the bytes are too few to see in RSS,
so these tests look at the mapping itself in /proc/self/smaps, and check the repack rule against
what the vendored llama.cpp reports in its own log on this machine.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from devkit.tiny_gguf import ensure_tiny_gguf
from smol_tools.llamacpp import mapping
from smol_tools.llamacpp.server import LlamaServer

LOAD_AND_LOG = """
import sys, llama_cpp
llama_cpp.Llama(model_path=sys.argv[1], n_ctx=512, n_threads=1, use_mmap=True, verbose=True)
"""


def _mapped_rss_kib(path: Path) -> int | None:
    """Resident KiB of this process's mappings of `path`, or None when it is not mapped."""
    total, inside = None, False
    with open("/proc/self/smaps") as handle:
        for line in handle:
            fields = line.split()
            if fields and "-" in fields[0] and len(fields) >= 5:  # a mapping's header line
                inside = len(fields) >= 6 and fields[-1] == str(path)
            elif inside and line.startswith("Rss:"):
                total = (total or 0) + int(fields[1])
    return total


def _repack_buffer_mib(path: Path) -> float:
    log = subprocess.run([sys.executable, "-c", LOAD_AND_LOG, str(path)], capture_output=True, text=True,
                         timeout=300).stderr
    sizes = [float(line.split("=")[1].split()[0]) for line in log.splitlines()
             if "CPU_REPACK model buffer size" in line]
    return sum(sizes)


def test_repack_rules_per_instruction_set():
    avx2 = mapping.repacked_types("x86_64", frozenset({"sse3", "avx2", "fma"}))
    assert avx2 == {mapping.Q4_0, mapping.Q4_K, mapping.IQ4_NL, mapping.MXFP4}
    assert mapping.Q2_K in mapping.repacked_types("x86_64", frozenset({"avx2", "avx512f"}))
    assert mapping.repacked_types("x86_64", frozenset({"sse3"})) == frozenset()
    arm = mapping.repacked_types("aarch64", frozenset({"asimd", "asimddp"}))
    assert {mapping.Q8_0, mapping.Q6_K, mapping.Q4_K} <= arm
    assert mapping.repacked_types("riscv64", frozenset()) == frozenset()


@pytest.mark.parametrize("quant", ["Q4_K_M", "Q8_0"])
def test_the_rule_predicts_what_llama_cpp_repacks_here(quant):
    """Our prediction (a share of the weights repacked) against llama.cpp's own CPU_REPACK buffer."""
    gguf = ensure_tiny_gguf(quant)
    share = mapping.repacked_share(gguf)
    reported = _repack_buffer_mib(gguf)
    assert (share > 0) == (reported > 0), (quant, share, reported)
    if "avx2" in mapping.cpu_flags():  # the CI and development machines: x86-64 with AVX2
        assert (share > mapping.DUPLICATE_SHARE) == (quant == "Q4_K_M")
        assert mapping.use_mmap_for(gguf) == (quant == "Q8_0")


BACKEND_CHILD = """
import json, sys
from pathlib import Path
from tests.test_mmap_choice import _mapped_rss_kib
gguf = Path(sys.argv[1])
if sys.argv[2] == "llama":  # what the fix avoids: llama-cpp-python's default, the file mapped
    import llama_cpp
    model = llama_cpp.Llama(model_path=str(gguf), n_ctx=512, n_threads=1, verbose=False)
    mapped = True
else:
    from smol_tools.backends.llama_cpp import LlamaCppBackend
    model = LlamaCppBackend(gguf, n_ctx=1024, n_threads=1)
    mapped = model.model.mapped
    assert model.count_tokens("hello") > 0
print(json.dumps({"mapped": mapped, "file_rss_kib": _mapped_rss_kib(gguf)}))
"""


def _child(gguf: Path, which: str) -> dict:
    import json

    done = subprocess.run([sys.executable, "-c", BACKEND_CHILD, str(gguf), which], capture_output=True, text=True,
                          timeout=300, cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_in_process_backend_does_not_map_a_file_it_would_repack(monkeypatch):
    gguf = ensure_tiny_gguf("Q4_K_M")
    if not mapping.repacked_share(gguf) > mapping.DUPLICATE_SHARE:
        pytest.fail("this test needs a CPU that repacks Q4_K (x86-64 with AVX2, or ARM with dot product)")
    # Mapped, every page of the file is resident next to the repacked copy of its weights.
    plain = _child(gguf, "llama")
    assert (plain["file_rss_kib"] or 0) * 1024 > 0.5 * gguf.stat().st_size, plain
    ours = _child(gguf, "backend")
    assert ours == {"mapped": False, "file_rss_kib": None}
    monkeypatch.setenv(mapping.SETTING_ENV, "on")
    assert mapping.use_mmap_for(gguf) is True
    monkeypatch.setenv(mapping.SETTING_ENV, "sometimes")
    with pytest.raises(ValueError, match="SMOL_TOOLS_MMAP"):
        mapping.use_mmap_for(gguf)


def test_llama_server_loads_a_file_it_would_repack_unmapped():
    """A real llama-server started on the tiny Q4_K_M: llama.cpp's own log says how it loaded."""
    q4, q8 = ensure_tiny_gguf("Q4_K_M"), ensure_tiny_gguf("Q8_0")
    assert LlamaServer(q4, extra_args=["--load-mode", "mmap"]).mapping_args() == []  # the caller's choice wins
    if "avx2" not in mapping.cpu_flags():
        pytest.fail("this test needs a CPU that repacks Q4_K (x86-64 with AVX2)")
    assert LlamaServer(q8).mapping_args() == []
    def file_mapped(server: LlamaServer) -> bool:
        return str(q4) in Path(f"/proc/{server.process.pid}/maps").read_text()

    with LlamaServer(q4, ctx_size=512, threads=1) as server:
        assert server.mapping_args() == ["--load-mode", "none"]
        assert not file_mapped(server)
        assert server.post("/tokenize", {"content": "hello"})["tokens"]  # loaded and answering
    with LlamaServer(q4, ctx_size=512, threads=1, extra_args=["--load-mode", "mmap"]) as server:
        assert file_mapped(server)  # what the default would do: the source pages stay mapped


def test_the_in_process_context_uses_flash_attention(tiny_gguf_q8_0) -> None:
    """Also found at real size: llama-cpp-python turns flash attention off, and without it each
    prompt batch materialises its attention scores over the whole context; the 4B's compute
    buffer at 32K was 1,131 MiB instead of 527 (llama.cpp's log, bench/README.md). llama-server
    and llama.cpp's own default ("auto") use it on CPU; so does our in-process backend."""
    import llama_cpp

    from smol_tools.backends.llama_cpp import LlamaCppBackend

    backend = LlamaCppBackend(tiny_gguf_q8_0, n_ctx=4096, n_threads=1)
    assert backend.model.llm.context_params.flash_attn_type == llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
