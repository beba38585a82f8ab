"""Turn rewardlab sample's cache of the embedded tasks into a proxy's training pairs (and, optionally, a held-out part).

Training part (the first --train-prompts prompts; default all): every pair of two samples of one prompt whose gold rewards
differ (the embedded tasks' checkers), labelled by the gold, then a seeded 25% of the labels flipped (Coste et al.
2023) -> pairs.jsonl in rewardlab's trl format (prompt / chosen / rejected). Identical responses are skipped.
Held-out part (the rest, if any) -> heldout.jsonl. run.sh samples the proxies' prompts (prompt seed 1, N = 8) apart
from the best-of-n prompts (prompt seed 0, N = 64), so it passes no --train-prompts and there is no held-out part.

    python experiments/bon/make_pairs.py SAMPLES OUT_DIR --flip 0.25 --seed 0
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
from pathlib import Path

from rewardlab.data.synthetic import ground_truth_reward


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("samples")
    ap.add_argument("out_dir")
    ap.add_argument("--train-prompts", type=int, default=None)
    ap.add_argument("--flip", type=float, default=0.25)
    ap.add_argument("--max-pairs-per-prompt", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rows = [json.loads(x) for x in Path(a.samples).read_text().splitlines() if x.strip()]
    rng = random.Random(a.seed)
    out = Path(a.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train_prompts = len(rows) if a.train_prompts is None else a.train_prompts
    pairs, flipped, golds = [], 0, []
    for row in rows[:train_prompts]:
        gold = [ground_truth_reward(row["meta"], r) for r in row["responses"]]
        golds += gold
        cand = [
            (i, j)
            for i, j in itertools.combinations(range(len(gold)), 2)
            if gold[i] != gold[j] and row["responses"][i].strip() != row["responses"][j].strip()
        ]
        rng.shuffle(cand)
        for i, j in cand[: a.max_pairs_per_prompt]:
            good, bad = (i, j) if gold[i] > gold[j] else (j, i)
            if rng.random() < a.flip:
                good, bad = bad, good
                flipped += 1
            pairs.append({"prompt": row["prompt"], "chosen": row["responses"][good], "rejected": row["responses"][bad]})
    rng.shuffle(pairs)
    (out / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    held = rows[train_prompts:]
    if held:
        (out / "heldout.jsonl").write_text("".join(json.dumps(r) + "\n" for r in held))
    stats = {
        "train_prompts": min(train_prompts, len(rows)),
        "train_samples": len(golds),
        "train_samples_mean_gold": sum(golds) / max(1, len(golds)),
        "pairs": len(pairs),
        "flipped": flipped,
        "flip_share": flipped / max(1, len(pairs)),
        "heldout_prompts": len(held),
    }
    (out / "pairs-stats.json").write_text(json.dumps(stats, indent=1) + "\n")
    print(json.dumps(stats))


if __name__ == "__main__":
    main()
