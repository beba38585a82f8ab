"""Does the length probe agree in sign with a model's measured length preference? (docs/probes.md)

    PYTHONPATH=src python experiments/probes/length_check.py RUN_DIR [OUT.json]

RUN_DIR is a `rewardlab train` run. On its own held-out records (exactly the split it recorded) this measures
the model's length preference directly, from pairs as they come:
* ``shorter_preferred``: of the held-out pairs whose two responses differ in length (characters), the share in
  which the model gives the shorter response the higher reward (an exact tie counts ½);
* ``spearman_reward_length``: Spearman's rho between reward and response length over every held-out response;
then runs the probes ``length`` (the worse response twice: only length changes), ``filler`` (polite sentences
against the same number of the response's own words) on the same records. The signs must agree: a model that
prefers shorter answers (shorter_preferred > 0.5, rho < 0) must get a negative length-probe reward shift.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

from rewardlab.benchmarks.base import score_records
from rewardlab.evaluation.held_out import held_out_of_run
from rewardlab.metrics.statistics import bootstrap_ci, length_correlation
from rewardlab.probes.profile import bias_profile, win_credit
from rewardlab.scoring.loader import load_reward_model

# a run written by a rewardlab before its model seal (contract_hashes) loads only with trust_modified; set
# REWARDLAB_TRUST_MODIFIED=1 for such a run (the output records it)
TRUST_MODIFIED = os.environ.get("REWARDLAB_TRUST_MODIFIED") == "1"


def main(run_dir: str, out: str | None = None) -> dict:
    held, _ = held_out_of_run(run_dir)
    rm = load_reward_model(f"{run_dir}/model", say=None, trust_modified=TRUST_MODIFIED)
    scores = score_records(rm, held, batch_size=32)
    credit = []  # 1 when the shorter response gets the higher reward
    for record, row in zip(held, scores):
        for a, b in record.strict_pairs():
            la, lb = len(record.responses[a]), len(record.responses[b])
            if la != lb:
                short, long = (a, b) if la < lb else (b, a)
                credit.append(win_credit(row[short], row[long]))
    rewards = [r for row in scores for r in row]
    lengths = [len(t) for record in held for t in record.responses]
    profile = bias_profile(rm, held, ["length", "filler"], n_boot=1000, keep_pairs=False)["probes"]
    result = {
        "run": run_dir,
        "trust_modified": TRUST_MODIFIED,
        "n_held_out_records": len(held),
        "n_pairs_of_unequal_length": len(credit),
        "shorter_preferred": float(np.mean(credit)),
        "shorter_preferred_ci95": list(bootstrap_ci(np.asarray(credit), n=1000, seed=0)),
        "spearman_reward_length": length_correlation(rewards, lengths)["spearman"],
        "probes": profile,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        with open(out, "w") as f:
            f.write(text + "\n")
    return result


if __name__ == "__main__":
    main(*sys.argv[1:3])
