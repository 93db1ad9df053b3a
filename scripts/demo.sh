#!/usr/bin/env bash
# Set everything up (idempotent) and start the demo: the Gradio app (app.py) on in-process
# llama-cpp-python, on http://127.0.0.1:7860. By default it loads the real model's Q4_K_M GGUF
# from the Hub (downloaded once); where the Hub cannot be reached it says so in the page and
# runs the test suite's tiny model instead, so the demo always answers. MODEL=path/to.gguf or
# MODEL=owner/repo:QUANT picks another model; `bash scripts/demo.sh chat` opens the terminal
# agent session instead of the web app.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The offline fallback trains the tiny model on first use, which needs the test profile (torch).
"$ROOT/scripts/setup.sh" test
cd "$ROOT"
if [ -n "${MODEL:-}" ]; then export SMOL_TOOLS_MODEL="$MODEL"; fi
# Run from the repository root so the tiny model fixture (tests/) is importable.
if [ "${1:-}" = "chat" ]; then
  shift
  exec "$ROOT/.venv/bin/python" -m smol_tools chat --model "${MODEL:-tiny}" "$@"
fi
exec "$ROOT/.venv/bin/python" app.py "$@"
