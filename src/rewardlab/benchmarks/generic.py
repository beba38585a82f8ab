"""Benchmarks over any comparison file the foundation's readers accept (``rewardlab.data.load_comparisons``).

* ``generic``: pairwise accuracy over each record's strict pairs (:meth:`Comparison.strict_pairs`: chosen
  against every other response for plain data; for ranked / tiered data every pair in different tiers,
  judge-tied pairs left out), pooled over pairs, as :func:`rewardlab.metrics.accuracy.accuracy_summary`, overall
  and per ``source``. A record without strict pairs (all tied) has no credit and is left out of the subsets.
* ``best-of-n``: each record is a prompt with N candidates and a gold choice (``chosen``); accuracy is
  the share of prompts whose gold candidate gets the unique top reward, next to the random baseline
  1/N (:func:`rewardlab.metrics.best_of_n.best_of_n`).

Both are strict under the ``published`` tie policy (rewardlab's convention: a tie is not a win).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from rewardlab.benchmarks.base import Benchmark, BenchmarkData, subset_table
from rewardlab.data import load_comparisons
from rewardlab.data.record import Comparison
from rewardlab.metrics.best_of_n import best_of_n, best_of_n_credits
from rewardlab.metrics.statistics import sampling_units
from rewardlab.metrics.ties import TiePolicy, pair_credits


def load(path: str, limit: int | None = None, skip_invalid: bool = False) -> BenchmarkData:
    loaded = load_comparisons(path, skip_invalid=skip_invalid, limit=limit)
    return BenchmarkData(
        records=loaded.records, source=str(path), skipped=loaded.skipped, info={"format": loaded.format}
    )


def score_generic(
    records: Sequence[Comparison],
    scores: Sequence[Sequence[float]],
    policy: TiePolicy,
    seed: int = 0,
    n_boot: int = 1000,
) -> dict:
    pol = policy.resolve("strict")
    rng = pol.rng()
    per_example, pair_credit, pair_source = [], [], []
    for record, row in zip(records, scores):
        pairs = record.strict_pairs()
        credit = pair_credits([row[a] for a, _ in pairs], [row[b] for _, b in pairs], pol, rng)
        per_example.append(float(credit.mean()) if pairs else None)
        pair_credit += credit.tolist()
        pair_source += [record.source] * len(pairs)
    # accuracy is pooled over pairs; the per-source intervals resample records (K > 2 pairs stay together)
    scored = [(r.source, c, u) for r, c, u in zip(records, per_example, sampling_units(records)) if c is not None]
    subsets = subset_table(
        [s for s, _, _ in scored], [c for _, c, _ in scored], seed=seed, n_boot=n_boot, groups=[u for *_, u in scored]
    )
    for name, entry in subsets.items():
        mask = np.asarray([s == name for s in pair_source])
        entry["score"] = float(np.asarray(pair_credit)[mask].mean())
        entry["n_pairs"] = int(mask.sum())
    return {
        "headline": {"accuracy": float(np.mean(pair_credit))},
        "subsets": subsets,
        "notes": [],
        "per_example": per_example,
    }


def score_best_of_n(
    records: Sequence[Comparison],
    scores: Sequence[Sequence[float]],
    policy: TiePolicy,
    seed: int = 0,
    n_boot: int = 1000,
) -> dict:
    pol = policy.resolve("strict")
    gold = [r.chosen for r in records]
    summary = best_of_n(scores, gold, pol, seed=seed, n_boot=n_boot)
    credits = best_of_n_credits(scores, gold, pol).tolist()
    return {
        "headline": {
            "record accuracy (gold at top)": summary["record_accuracy"],
            "random baseline (mean 1/N)": summary["random_baseline"],
        },
        "best_of_n": summary,
        "subsets": subset_table(
            [r.source for r in records], credits, seed=seed, n_boot=n_boot, groups=sampling_units(records)
        ),
        "notes": [],
        "per_example": credits,
    }


GENERIC = Benchmark(
    name="generic",
    version="1",
    title="Generic comparisons",
    loader=load,
    rule=score_generic,
    schema="any format rewardlab's readers accept (trl, hh, pairwise, rewardlab)",
    published_ties={"pair": "strict"},
    reference="rewardlab.metrics.accuracy.accuracy_summary (strict pairwise accuracy, pooled over pairs)",
    reads_comparisons=True,
)

BEST_OF_N = Benchmark(
    name="best-of-n",
    version="1",
    title="Best-of-N",
    loader=load,
    rule=score_best_of_n,
    schema="rewardlab format: prompt, responses (N candidates), chosen (the gold index)",
    published_ties={"top": "strict"},
    reference="rewardlab.metrics.best_of_n.best_of_n (gold must be the unique top reward; random baseline 1/N)",
    reads_comparisons=True,
)
