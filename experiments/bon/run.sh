#!/usr/bin/env bash
# The best-of-n over-optimization experiment on the embedded tasks (README: experiments/bon/README.md).
# bash experiments/bon/run.sh [OUT]   — every step resumable / re-runnable; times in OUT/times.txt
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-experiments/bon/out}
PROMPTS=${PROMPTS:-48}        # the first TRAIN give the proxies their pairs, the rest are held out
TRAIN=${TRAIN:-24}
N=${N:-8}
TOKENS=${TOKENS:-32}
PY=${PY:-.venv/bin/python}
mkdir -p "$OUT"
t() { /usr/bin/time -f "%e s wall, %U s user, %S s sys: $1" -a -o "$OUT/times.txt" "${@:2}"; }
: > "$OUT/times.txt"
t sample $PY -m rewardlab.cli sample --policy smollm2-135m --prompts embedded --limit "$PROMPTS" --n "$N" \
  --temperature 1.0 --max-new-tokens "$TOKENS" --batch-size 32 --output "$OUT/samples.jsonl"
t pairs $PY experiments/bon/make_pairs.py "$OUT/samples.jsonl" "$OUT" --train-prompts "$TRAIN" --flip 0.25 --seed 0
for s in 0 1 2; do
  t "proxy $s" $PY -m rewardlab.cli train --backbone minilm --data "$OUT/pairs.jsonl" --format trl --seed "$s" \
    --epochs 2 --batch-size 16 --lr 5e-5 --eval-fraction 0.1 --output-dir "$OUT/proxy-$s" --overwrite -q
done
t bon $PY -m rewardlab.cli bon --samples "$OUT/heldout.jsonl" --gold embedded --n-boot 1000 \
  --proxy "$OUT/proxy-0/model" "$OUT/proxy-1/model" "$OUT/proxy-2/model" --output-dir "$OUT/report" --overwrite
t select $PY -m rewardlab.cli select --samples "$OUT/heldout.jsonl" --scores "$OUT/report/scores.jsonl" --by min \
  --output "$OUT/selected.jsonl" --overwrite
cat "$OUT/times.txt"
