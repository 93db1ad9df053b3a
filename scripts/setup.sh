#!/usr/bin/env bash
# Create/refresh the project's virtual environment. Idempotent: a second run with unchanged
# requirement files returns in about a second.
#   scripts/setup.sh runtime   -> requirements.txt (the demo)
#   scripts/setup.sh test      -> requirements-test.txt (tests; also packaging)
# Heavy builds are cached under ${SMOL_TOOLS_CACHE:-~/.cache/smol-tools}, keyed by version.
set -euo pipefail

PROFILE="${1:-runtime}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${SMOL_TOOLS_CACHE:-$HOME/.cache/smol-tools}"
VENV="${SMOL_TOOLS_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

case "$PROFILE" in
  runtime) REQ="$ROOT/requirements.txt" ;;
  test) REQ="$ROOT/requirements-test.txt" ;;
  *) echo "usage: scripts/setup.sh runtime|test" >&2; exit 2 ;;
esac

log() { printf '[setup] %s\n' "$*" >&2; }

"$PYTHON" - <<'PY' || { echo "smol-tools needs Python 3.11 or newer (set PYTHON=...)" >&2; exit 1; }
import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY

# System packages the tests need: Go (Ollama template check), Chromium (browser test), Node + npm (@huggingface/jinja).
if [ "$PROFILE" = test ]; then
  missing=()
  command -v go >/dev/null 2>&1 || missing+=(golang-go)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  # nginx: the load-balancer example (examples/nginx-llama-server.conf) runs in tests.
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing system packages: ${missing[*]}"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # @huggingface/jinja (the fifth template engine), pinned in smol_tools/hf_jinja_harness/package.json;
  # the same folder smol_tools/hf_jinja_render.py looks in.
  HF_JINJA_VERSION="$(sed -n 's/.*"@huggingface\/jinja": "\([^"]*\)".*/\1/p' "$ROOT/smol_tools/hf_jinja_harness/package.json")"
  HF_JINJA_DIR="$CACHE/hf-jinja/$HF_JINJA_VERSION"
  if [ ! -f "$HF_JINJA_DIR/node_modules/@huggingface/jinja/dist/index.js" ]; then
    log "installing @huggingface/jinja $HF_JINJA_VERSION (npm)"
    mkdir -p "$CACHE/hf-jinja"
    tmp="$(mktemp -d "$CACHE/hf-jinja/.install-XXXXXX")"
    cp "$ROOT/smol_tools/hf_jinja_harness/package.json" "$tmp/"
    (cd "$tmp" && npm install --silent --no-audit --no-fund --ignore-scripts --save-exact "@huggingface/jinja@$HF_JINJA_VERSION" >/dev/null)
    rm -rf "$HF_JINJA_DIR"; mv "$tmp" "$HF_JINJA_DIR"
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment in $VENV"
  "$PYTHON" -m venv "$VENV"
fi
VPY="$VENV/bin/python"

# The stamp records what was installed; unchanged inputs mean nothing to do.
STAMP="$VENV/.smol-tools-$PROFILE.stamp"
DIGEST="$(cat "$ROOT"/requirements*.txt "$ROOT/pyproject.toml" "$ROOT/scripts/setup.sh" | sha256sum | cut -c1-32)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$DIGEST" ]; then
  exit 0
fi

# llama-cpp-python ships only a source distribution on PyPI: build it once per version and
# keep the wheel. GGML_NATIVE=OFF makes the wheel portable across this fleet's CPUs.
LLAMA_VERSION="$(sed -n 's/^llama-cpp-python==\([^ ]*\).*/\1/p' "$ROOT/requirements.txt")"
PYTAG="$("$VPY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
WHEELS="$CACHE/wheels/llama-cpp-python-$LLAMA_VERSION-cpu-$PYTAG"
SDIST="$CACHE/sdist/llama_cpp_python-$LLAMA_VERSION.tar.gz"
if ! ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
  mkdir -p "$CACHE/sdist" "$WHEELS"
  if [ ! -f "$SDIST" ]; then
    log "downloading llama-cpp-python $LLAMA_VERSION source"
    tmp="$(mktemp -d "$CACHE/sdist/.dl-XXXXXX")"
    "$VPY" -m pip download --quiet --no-binary :all: --no-deps "llama-cpp-python==$LLAMA_VERSION" -d "$tmp"
    mv "$tmp"/llama_cpp_python-*.tar.gz "$SDIST"
    rm -rf "$tmp"
  fi
  log "building llama-cpp-python $LLAMA_VERSION (CPU, about 6 minutes on 2 cores; cached afterwards)"
  tmp="$(mktemp -d "$WHEELS/.build-XXXXXX")"
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAMA_BUILD_UI=OFF" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
    "$VPY" -m pip wheel --quiet --no-deps -w "$tmp" "$SDIST"
  mv "$tmp"/llama_cpp_python-*.whl "$WHEELS"/
  rm -rf "$tmp"
fi

log "installing $(basename "$REQ") into $VENV"
# This fleet's pip.conf lists local indexes that may be absent; drop pip's noise about them.
quiet_pip() { "$VPY" -m pip "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
quiet_pip install --quiet --upgrade pip >/dev/null
quiet_pip install --quiet --prefer-binary --find-links "$WHEELS" -r "$REQ"
"$VPY" -m pip install --quiet --no-deps --no-build-isolation -e "$ROOT" 2>/dev/null \
  || "$VPY" -m pip install --quiet --no-deps -e "$ROOT"
echo "$DIGEST" > "$STAMP"
log "ready: $VENV ($PROFILE)"
