"""K-wise rated data from the embedded synthetic set: each prompt gets K responses, scored by its task's checker.

Record i of ``rewardlab.data.synthetic.generate(n, seed)`` keeps its better and worse response and borrows
K − 2 responses written for other prompts of the same task (a seeded choice). Every response is scored by
the task's ground-truth checker (``synthetic.ground_truth_reward``), so borrowed responses that happen to
satisfy the prompt score high, off-topic ones low, and equal scores are ties. The rows are written in the
``ratings`` format (``prompt``, ``responses``, ``scores``), which the readers turn into rankings with ties.

    python experiments/synthetic_rankings.py --n 600 --k 4 --out /tmp/synthetic_k4.jsonl
"""
from __future__ import annotations

import argparse
import json
import random
from collections import Counter, defaultdict

from rewardlab.data import synthetic
from rewardlab.data.record import tiers_from_scores


def rated_rows(n: int, k: int, seed: int = 0) -> list[dict]:
    records = synthetic.generate(n, seed=seed)
    by_task = defaultdict(list)
    for i, c in enumerate(records):
        by_task[c.meta["task"]].append(i)
    rng = random.Random(f"rewardlab-synthetic-rankings/{seed}/{k}")
    rows = []
    for i, c in enumerate(records):
        pool = [j for j in by_task[c.meta["task"]] if j != i]
        responses = list(c.responses)
        for j in rng.sample(pool, len(pool)):
            if len(responses) == k:
                break
            borrowed = records[j].responses[rng.randrange(2)]
            if borrowed not in responses:
                responses.append(borrowed)
        rng.shuffle(responses)
        scores = [synthetic.ground_truth_reward(c.meta, r) for r in responses]
        rows.append({"id": f"{c.id}-k{k}", "source": c.source, "prompt": c.prompt, "responses": responses,
                     "scores": scores})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=600)
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    rows = rated_rows(args.n, args.k, args.seed)
    with open(args.out, "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    shapes = Counter(tuple(len(t) for t in tiers_from_scores(r["scores"])) for r in rows)
    print(f"wrote {len(rows)} rows to {args.out}; tier shapes (sizes best first): {shapes.most_common(6)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
