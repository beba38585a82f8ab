#!/usr/bin/env bash
# Set up and run the test suite (the fast default set; add `-m slow` for the slow ones, `-m ''` for all).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pytest -q "$@"
