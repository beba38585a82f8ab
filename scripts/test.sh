#!/usr/bin/env bash
# Set up, lint (ruff) and run the test suite (the fast default set; add `-m slow` for the slow ones, `-m ''` for all).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m ruff check src tests   # lint (pyproject.toml [tool.ruff])
.venv/bin/python -m ruff format --check src tests   # formatted (fix: ruff format src tests)
.venv/bin/python -m pytest -q "$@"
