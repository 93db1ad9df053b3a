#!/usr/bin/env bash
# Set everything up (idempotent) and start the demo: a terminal chat, in-process
# llama-cpp-python. MODEL=path/to/model.gguf picks a GGUF; the default is the test suite's tiny
# model, built on first use (a few minutes), which knows only its scripted conversations.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODEL="${MODEL:-tiny}"
if [ "$MODEL" = "tiny" ]; then "$ROOT/scripts/setup.sh" test; else "$ROOT/scripts/setup.sh" runtime; fi
cd "$ROOT"
# -m from the repository root, so the tiny model fixture (tests/) is importable.
exec "$ROOT/.venv/bin/python" -m smol_tools chat --model "$MODEL" "$@"
