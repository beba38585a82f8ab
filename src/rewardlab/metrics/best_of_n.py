"""Best-of-N accuracy: does the gold candidate get the highest reward among N?"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from rewardlab.atomic import json_safe
from rewardlab.metrics.pairs import validated_rows
from rewardlab.metrics.statistics import bootstrap_ci
from rewardlab.metrics.ties import TiePolicy, beat_all_credit


def best_of_n_credits(
    scores: Sequence[Sequence[float]], gold: Sequence[int], tie_policy: TiePolicy | str = "strict", seed: int = 0
) -> np.ndarray:
    """Per prompt, the credit for "the gold candidate gets the highest reward" (:func:`beat_all_credit`
    of the gold reward against all the others; a tie at the top is scored by ``tie_policy``)."""
    policy = TiePolicy.parse(tie_policy, seed=seed).resolve("strict")
    rows = validated_rows(scores, gold)
    rng = policy.rng()
    return np.asarray(
        [beat_all_credit([r[int(g)]], np.delete(r, int(g)), policy, rng) for r, g in zip(rows, gold)], dtype=np.float64
    )


def best_of_n(
    scores: Sequence[Sequence[float]],
    gold: Sequence[int],
    tie_policy: TiePolicy | str = "strict",
    seed: int = 0,
    n_boot: int = 1000,
) -> dict:
    """Best-of-N accuracy: prompts with N candidates each (N may vary) and the index of the gold one.

    ``record_accuracy`` (record-level: one credit per prompt, not per pair) = mean over prompts of the credit
    for the gold candidate being the unique top reward
    (:func:`best_of_n_credits`; a tie at the top by ``tie_policy``: ``strict`` 0, ``half`` ½,
    ``fractional`` 1/k for k tied, ``random`` a seeded draw). ``random_baseline`` = mean of 1/N, the
    accuracy of picking a candidate uniformly at random (a constant scorer under ``fractional`` scores
    exactly this). ``by_n`` splits both by N. ``ties_at_top`` counts prompts whose gold reward is tied
    for the maximum. ``ci95``: bootstrap over prompts (``n_boot`` resamples, ``seed``).
    """
    policy = TiePolicy.parse(tie_policy, seed=seed).resolve("strict")
    rows = validated_rows(scores, gold)
    if not rows:
        raise ValueError("best_of_n needs at least one prompt")
    credit = best_of_n_credits(rows, gold, policy)
    sizes = np.asarray([r.size for r in rows])
    tied = np.asarray([r[int(g)] == r.max() and np.sum(r == r.max()) > 1 for r, g in zip(rows, gold)])
    by_n = {}
    for n in sorted(set(sizes.tolist())):
        mask = sizes == n
        by_n[str(n)] = {
            "n_prompts": int(mask.sum()),
            "record_accuracy": float(credit[mask].mean()),
            "random_baseline": 1.0 / n,
        }
    ci = list(bootstrap_ci(credit, n=n_boot, seed=seed)) if n_boot > 0 else None
    return json_safe(
        {
            "n_prompts": len(rows),
            "record_accuracy": float(credit.mean()),
            "ci95": ci,
            "random_baseline": float(np.mean(1.0 / sizes)),
            "ties_at_top": int(tied.sum()),
            "by_n": by_n,
            "tie_policy": str(policy),
        }
    )
