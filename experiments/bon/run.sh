#!/usr/bin/env bash
# The best-of-n over-optimization experiment on the embedded tasks, end to end (README: experiments/bon/README.md).
#   bash experiments/bon/run.sh [OUT]          (default OUT = experiments/bon/out)
# Steps: sample the proxies' prompts (N = TRAIN_N) and the best-of-n prompts (N = N) from SmolLM2-135M-Instruct,
# gold-labelled pairs with 25% flipped, three MiniLM proxies, rewardlab bon, rewardlab select, results.json/.md,
# a headless-Chromium screenshot of the HTML report. Sampling resumes; the rest is re-run.
# Per step: wall, process CPU (user + sys, children included) and the load average before/after -> OUT/times.tsv.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-experiments/bon/out}
TRAIN_PROMPTS=${TRAIN_PROMPTS:-24}  # prompts (prompt seed 1) whose samples give the proxies their pairs
TRAIN_N=${TRAIN_N:-8}               # samples per training prompt
PROMPTS=${PROMPTS:-16}              # best-of-n prompts (prompt seed 0), disjoint from the training prompts
N=${N:-64}                          # samples per best-of-n prompt
TOKENS=${TOKENS:-24}                # max new tokens (the tasks' answers are one line or a short list)
TEMP=${TEMP:-1.0}
STEPS=${STEPS:-12}                  # optimizer steps per proxy (batch 16)
PY=${PY:-.venv/bin/python}
mkdir -p "$OUT"
printf 'step\twall_s\tuser_s\tsys_s\tload_before\tload_after\n' > "$OUT/times.tsv"
t() {  # t NAME CMD...: run CMD, append its wall / CPU time and the 1-minute load average before and after
  local before; before=$(cut -d' ' -f1-3 /proc/loadavg)
  /usr/bin/time -f '%e\t%U\t%S' -o "$OUT/.time" "${@:2}"
  printf '%s\t%s\t%s\t%s\n' "$1" "$(cat "$OUT/.time")" "$before" "$(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/times.tsv"
}
SAMPLE=($PY -m rewardlab.cli sample --policy smollm2-135m --prompts embedded --temperature "$TEMP" --top-p 1.0
        --max-new-tokens "$TOKENS" --batch-size 64 --seed 0)
t "sample proxy prompts ($TRAIN_PROMPTS x $TRAIN_N)" "${SAMPLE[@]}" --prompt-seed 1 --limit "$TRAIN_PROMPTS" \
  --n "$TRAIN_N" --output "$OUT/train-samples.jsonl"
t "sample best-of-n prompts ($PROMPTS x $N)" "${SAMPLE[@]}" --prompt-seed 0 --limit "$PROMPTS" --n "$N" \
  --output "$OUT/samples.jsonl"
t pairs $PY experiments/bon/make_pairs.py "$OUT/train-samples.jsonl" "$OUT" --flip 0.25 --seed 0
for s in 0 1 2; do
  t "proxy $s" $PY -m rewardlab.cli train --backbone minilm --data "$OUT/pairs.jsonl" --format trl --seed "$s" \
    --max-steps "$STEPS" --batch-size 16 --lr 5e-5 --max-length 128 --eval-fraction 0.1 \
    --output-dir "$OUT/proxy-$s" --overwrite -q
done
t bon $PY -m rewardlab.cli bon --samples "$OUT/samples.jsonl" --gold embedded --n-boot 1000 --batch-size 64 \
  --proxy "$OUT/proxy-0/model" "$OUT/proxy-1/model" "$OUT/proxy-2/model" --output-dir "$OUT/report" --overwrite
t select $PY -m rewardlab.cli select --samples "$OUT/samples.jsonl" --scores "$OUT/report/scores.jsonl" --by min \
  --output "$OUT/selected.jsonl" --overwrite
rm -f "$OUT/.time"
$PY experiments/bon/summarize.py "$OUT"
chromium --headless --no-sandbox --disable-gpu --disable-background-networking --hide-scrollbars \
  --window-size=1280,2400 --screenshot="$(dirname "$OUT")/report-screenshot.png" \
  "file://$(realpath "$OUT/report/report.html")" 2>/dev/null || echo "chromium screenshot failed (report.html is still there)"
cat "$OUT/results.md"
