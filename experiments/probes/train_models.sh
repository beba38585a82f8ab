#!/usr/bin/env bash
# The four models of the bias-probe experiment (experiments/probes/README.md), as two chains run side by side.
# Run from the repository root: bash experiments/probes/train_models.sh  (outputs under runs/probes-exp/)
set -euo pipefail
PY=${PYTHON:-python}
OUT=${OUT:-runs/probes-exp}
HH=${HH:-../shared/data/hh-rlhf-harmless-base-test.jsonl.gz}
mkdir -p "$OUT"
embedded() {  # the quickstart model (`rewardlab train` defaults: embedded data, MiniLM), without and with the augmentation
  [ -f "$OUT/embedded/train_summary.json" ] || $PY -m rewardlab.cli train --output-dir "$OUT/embedded" > "$OUT/embedded.log" 2>&1
  $PY -m rewardlab.cli train --augment offsetbias --output-dir "$OUT/embedded-offsetbias" > "$OUT/embedded-offsetbias.log" 2>&1
}
hh() {  # the first 1200 shared hh-rlhf harmless-base pairs, 20% of prompts held out, 96 tokens per text (2 shared cores)
  local opts="--data $HH --skip-invalid --limit 1200 --eval-fraction 0.2 --max-length 96"
  OMP_NUM_THREADS=1 $PY -m rewardlab.cli train $opts --output-dir "$OUT/hh" > "$OUT/hh.log" 2>&1
  OMP_NUM_THREADS=1 $PY -m rewardlab.cli train $opts --augment offsetbias --output-dir "$OUT/hh-offsetbias" > "$OUT/hh-offsetbias.log" 2>&1
}
embedded & A=$!
hh & B=$!
wait $A $B
echo done > "$OUT/ALL_DONE"
