"""Derived training/evaluation files for the GSM8K verifier comparison (written to WORK, never into the repo).

    python experiments/verifiers/gsm8k/prepare.py WORK --data /work/shared/data [--fraction 0.3] [--seed 0]

The split is by **question**, with rewardlab's own problem-hash rule
(:func:`rewardlab.verifiers.train.split_problems`: sha256 of (seed, question)), so that
``eval-verifier --held-out-fraction F --split-seed S`` selects exactly the held-out questions written here.

Files (all from ../shared/data, nothing copied into the repository):

* ``orm-train.jsonl`` — the training questions' rows of gsm8k-model-solutions-dev.jsonl, unchanged (ORM data).
* ``prm-train.jsonl`` — TRL stepwise rows ``{prompt, completions, labels}`` of the same solutions, step labels
  derived by the rule below (PRM data).
* ``bt-pairs.jsonl`` — every (correct, incorrect) pair of solutions of one training question,
  ``{prompt, chosen, rejected}``, the steps joined by newlines (BT data).
* ``processbench-eval.json`` — ProcessBench gsm8k rows whose problem is **not** a training question (the
  dataset's questions are GSM8K test questions too: some are ours), each id renamed to ``thr-…`` or ``test-…`` (eval-verifier splits ``thr-gsm8k`` and ``test-gsm8k``) by
  a second question hash (seed + 1), so the PRM's threshold is chosen on ``thr-gsm8k`` and reported on ``test-gsm8k``.
* ``split.json`` — the counts.

``--train-questions N`` trains on a seeded sample of N of the training questions (the CPU budget); the
questions left out are **not** moved to the held-out side (they are used by nobody), and ProcessBench rows are
dropped only when their problem is one of the N questions actually trained on.

Step-label rule (there are no step labels in the GSM8K file): every step of a **correct** solution is labelled 1;
of an **incorrect** solution only the last step (the ``A: <answer>`` line, whose answer is wrong) is labelled 0,
the other steps are left unlabelled. Weakness: a correct final answer can follow a wrong step (then 1 is wrong),
and the PRM never sees an intermediate wrong step, so its step scores before the last line are trained only on
positives: it is close to an outcome model read at the answer line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from pathlib import Path

from rewardlab.verifiers.readers import read_verifier_data
from rewardlab.verifiers.train import split_problems


def question_hash(seed: int, text: str) -> float:
    return int(hashlib.sha256(f"{seed}\0{text}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("--fraction", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-questions", type=int, default=None, help="train on this many training questions (seeded)")
    ap.add_argument("--data", required=True, help="the folder holding the shared data files")
    a = ap.parse_args()
    data, work = Path(a.data), Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    src = data / "gsm8k-model-solutions-dev.jsonl"
    train, held = split_problems(read_verifier_data(str(src)).problems, a.fraction, a.seed)
    pool = len(train)
    if a.train_questions is not None and a.train_questions < len(train):
        train = random.Random(a.seed).sample(train, a.train_questions)  # the CPU budget's subset
    train_q = {p.prompt for p in train}

    rows = [json.loads(line) for line in src.read_text().splitlines() if line.strip()]
    with open(work / "orm-train.jsonl", "w") as f:
        for r in rows:
            if r["question"] in train_q:
                f.write(json.dumps(r) + "\n")

    n_prm = n_pairs = labelled = 0
    with open(work / "prm-train.jsonl", "w") as prm, open(work / "bt-pairs.jsonl", "w") as bt:
        for p in train:
            for s in p.solutions:
                labels = [1] * len(s.steps) if s.outcome == 1.0 else [None] * (len(s.steps) - 1) + [0]
                prm.write(json.dumps({"prompt": p.prompt, "completions": list(s.steps), "labels": labels}) + "\n")
                n_prm += 1
                labelled += sum(v is not None for v in labels)
            good = [s for s in p.solutions if s.outcome == 1.0]
            bad = [s for s in p.solutions if s.outcome == 0.0]
            for g in good:
                for b in bad:
                    bt.write(
                        json.dumps({"prompt": p.prompt, "chosen": "\n".join(g.steps), "rejected": "\n".join(b.steps)})
                        + "\n"
                    )
                    n_pairs += 1

    pb = json.loads((data / "processbench-gsm8k.json").read_text())
    kept, overlap, sides = [], 0, {"thr": 0, "test": 0}
    for r in pb:
        if r["problem"] in train_q:
            overlap += 1
            continue
        side = "thr" if question_hash(a.seed + 1, r["problem"]) < 0.5 else "test"
        sides[side] += 1
        kept.append({**r, "id": f"{side}-{r['id']}"})
    (work / "processbench-eval.json").write_text(json.dumps(kept))

    info = {
        "split": f"rewardlab.verifiers.train.split_problems(fraction={a.fraction}, seed={a.seed}) by question",
        "training_pool_questions": pool,
        "train_questions": len(train),
        "held_out_questions": len(held),
        "train_solutions": sum(len(p.solutions) for p in train),
        "train_correct": sum(s.outcome == 1.0 for p in train for s in p.solutions),
        "prm_rows": n_prm,
        "prm_step_labels": labelled,
        "bt_pairs": n_pairs,
        "bt_questions_with_pairs": sum(
            0 < sum(s.outcome == 1.0 for s in p.solutions) < len(p.solutions) for p in train
        ),
        "processbench_rows": len(pb),
        "processbench_rows_dropped_training_question": overlap,
        "processbench_threshold_rows": sides["thr"],
        "processbench_test_rows": sides["test"],
        "processbench_test_erroneous": sum(r["label"] != -1 for r in kept if r["id"].startswith("test-")),
    }
    (work / "split.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
