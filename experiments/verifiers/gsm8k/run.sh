#!/usr/bin/env bash
# ORM vs PRM vs BT on the shared GSM8K model solutions, split by question; end to end on CPU.
#
#   bash experiments/verifiers/gsm8k/run.sh [WORK]      # WORK: scratch folder (default /tmp/rewardlab-gsm8k-verifiers)
#
# DATA (default ../shared/data next to the repository, or two levels up for a worktree) must hold gsm8k-model-solutions-dev.jsonl and
# processbench-gsm8k.json. Models and derived files go to WORK; the reports are copied here (results/).
# Every command is timed (/usr/bin/time: wall and CPU seconds) into results/times.tsv.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
WORK="${1:-/tmp/rewardlab-gsm8k-verifiers}"
DATA="${DATA:-$REPO/../shared/data}"
[ -d "$DATA" ] || DATA="$REPO/../../shared/data"   # a worktree under /work/wt/
[ -f "$DATA/gsm8k-model-solutions-dev.jsonl" ] || { echo "run.sh: no gsm8k-model-solutions-dev.jsonl in $DATA (set DATA)" >&2; exit 2; }
RL="${RL:-$REPO/.venv/bin/rewardlab}"
PY="${PY:-$REPO/.venv/bin/python}"
OUT="$HERE/results"
TRAIN_QUESTIONS="${TRAIN_QUESTIONS:-150}"   # the CPU budget: 150 of the 446 training questions
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" HF_HUB_OFFLINE=1
mkdir -p "$WORK" "$OUT"
: > "$OUT/times.tsv.new"

timed() {  # timed NAME CMD...: runs CMD, appends "NAME wall_s user_s sys_s" to times.tsv
  local name=$1; shift
  /usr/bin/time -f "$name\t%e\t%U\t%S" -a -o "$OUT/times.tsv.new" "$@"
}

# 1. split by question (rewardlab's problem-hash rule, fraction 0.3, seed 0) and derived files
timed prepare "$PY" "$HERE/prepare.py" "$WORK" --data "$DATA" --fraction 0.3 --seed 0 \
    --train-questions "$TRAIN_QUESTIONS" > "$WORK/prepare.log"
cp "$WORK/split.json" "$OUT/split.json"

# 2. three models on the same training questions, same backbone (pretrained MiniLM, all weights trained), same
#    optimiser settings, run side by side (one thread each); each model's evaluation follows its training:
#    best-of-n on the 214 held-out questions (eval-verifier selects the same split again: --held-out-fraction 0.3
#    --split-seed 0), the verifiers under each aggregation; the PRM also on ProcessBench gsm8k rows of questions not
#    trained on, its threshold chosen on split "thr-gsm8k" (reported on it and on "test-gsm8k").
COMMON=(--backbone minilm --max-length 512 --epochs 1 --batch-size 8 --lr 1e-4 --warmup-ratio 0.1 --seed 0)
VER=(--marker "[SEP]" --prompt-separator "[SEP]" --eval-fraction 0 --overwrite)
AGG=(--aggregation min --aggregation prod --aggregation last --aggregation mean --aggregation last_token)
candidates() {  # candidates NAME [AGG...]
  local name=$1; shift
  timed "eval-candidates-$name" "$RL" eval-verifier --benchmark candidates \
      --data "$DATA/gsm8k-model-solutions-dev.jsonl" --held-out-fraction 0.3 --split-seed 0 \
      --model "$WORK/$name/model" "$@" --output "$WORK/candidates-$name.json" --overwrite \
      > "$WORK/eval-candidates-$name.log" 2>&1
}
(
  timed train-orm "$RL" train-verifier --objective orm --data "$WORK/orm-train.jsonl" "${COMMON[@]}" "${VER[@]}" \
      --output-dir "$WORK/orm" > "$WORK/orm.log" 2>&1
  candidates orm "${AGG[@]}"
) &
ORM_PID=$!
(
  timed train-prm "$RL" train-verifier --objective prm --data "$WORK/prm-train.jsonl" "${COMMON[@]}" "${VER[@]}" \
      --output-dir "$WORK/prm" > "$WORK/prm.log" 2>&1
  candidates prm "${AGG[@]}" &
  timed eval-processbench-prm "$RL" eval-verifier --benchmark processbench --data "$WORK/processbench-eval.json" \
      --threshold-split thr-gsm8k --model "$WORK/prm/model" --output "$WORK/processbench-prm.json" --overwrite \
      > "$WORK/eval-processbench-prm.log" 2>&1
  wait
) &
PRM_PID=$!
(
  timed train-bt "$RL" train --data "$WORK/bt-pairs.jsonl" --loss bt "${COMMON[@]}" --eval-fraction 0 \
      --report-to none --output-dir "$WORK/bt" --overwrite > "$WORK/bt.log" 2>&1
  candidates bt
) &
BT_PID=$!
wait $ORM_PID && wait $PRM_PID && wait $BT_PID

cp "$WORK"/candidates-*.json "$WORK"/candidates-*.md "$WORK/processbench-prm.json" "$WORK/processbench-prm.md" "$OUT/"
for m in orm prm; do cp "$WORK/$m/report.json" "$OUT/train-$m.json"; done
cp "$WORK/bt/train_summary.json" "$OUT/train-bt.json"
mv "$OUT/times.tsv.new" "$OUT/times.tsv"
"$PY" "$HERE/summarize.py" "$OUT"
