#!/usr/bin/env bash
# The test command: install (scripts/setup.sh), then lint, type check, check and format-check
# the bundled specs, and run the whole test suite (including the embedded-model tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
ruff check kvsl tests bench scripts
mypy
kvsl check specs
kvsl fmt --check specs
python -m pytest -q "$@"
