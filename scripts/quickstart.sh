#!/usr/bin/env bash
# The main job on the embedded default: set up, evaluate the untrained model, train, evaluate, write the report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/rewardlab quickstart "$@"
