"""Write (correct, incorrect) solution pairs of the GSM8K *training* questions for a BT model, by the same
problem-hash split train-verifier uses (--eval-fraction, --seed), so the BT model, the ORM and the evaluation
(`eval-verifier --held-out-fraction`) see the same questions on the same side.

    python experiments/verifiers/gsm8k_pairs.py ../shared/data/gsm8k-model-solutions-dev.jsonl /tmp/gsm8k-pairs.jsonl
"""

import json
import sys

from rewardlab.verifiers.readers import read_verifier_data
from rewardlab.verifiers.train import split_problems


def main(src: str, dst: str, fraction: float = 0.2, seed: int = 0) -> None:
    train, _ = split_problems(read_verifier_data(src).problems, fraction, seed)
    n = 0
    with open(dst, "w") as f:
        for p in train:
            good = [s for s in p.solutions if s.outcome == 1.0]
            bad = [s for s in p.solutions if s.outcome == 0.0]
            for g in good:
                for b in bad:
                    row = {"prompt": p.prompt, "chosen": "\n".join(g.steps), "rejected": "\n".join(b.steps)}
                    f.write(json.dumps(row) + "\n")
                    n += 1
    print(f"{n} pairs from {len(train)} training questions -> {dst}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
