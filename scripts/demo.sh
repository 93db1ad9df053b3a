#!/usr/bin/env bash
# Set everything up (idempotent) and start the demo: the Gradio app (app.py) on in-process
# llama-cpp-python, on http://127.0.0.1:7860. By default it loads the real model's Q4_K_M GGUF
# from the Hub (downloaded once); where the Hub cannot be reached it says so in the page and
# runs the tiny offline model shipped inside the package (smol_tools/tiny/, 1.6 MB), so the demo
# always answers. MODEL=path/to.gguf, MODEL=owner/repo:QUANT or MODEL=tiny picks another model;
# `bash scripts/demo.sh chat` opens the terminal agent session instead of the web app.
# Only the runtime profile is installed (requirements.txt): no torch, no transformers, no apt.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SMOL_TOOLS_VENV:-$ROOT/.venv}"
"$ROOT/scripts/setup.sh" runtime
cd "$ROOT"
if [ -n "${MODEL:-}" ]; then export SMOL_TOOLS_MODEL="$MODEL"; fi
if [ "${1:-}" = "chat" ]; then
  shift
  exec "$VENV/bin/python" -m smol_tools chat --model "${MODEL:-tiny}" "$@"
fi
exec "$VENV/bin/python" app.py "$@"
