"""The vendored llama.cpp: its source tree, its programs and their server processes.

    source.py   the llama.cpp tree inside the pinned llama-cpp-python sdist, extracted once
    build.py    llama-server, llama-quantize, llama-imatrix built from that tree, once per version
    server.py   a real llama-server on 127.0.0.1 serving one GGUF (start, health, stop)
    mapping.py  whether to memory-map a GGUF (not when the CPU backend repacks most of it)

This subpackage depends on nothing else in smol_tools but the GGUF header reader; the pipeline,
the eval harness, the backends, the CLI and the tests use it.
"""
