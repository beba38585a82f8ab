"""Every metric for a set of scored :class:`~rewardlab.data.record.Comparison` records, as one JSON-safe dict."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from rewardlab.core.atomic import json_safe
from rewardlab.metrics.accuracy import accuracy_summary
from rewardlab.metrics.calibration import calibration
from rewardlab.metrics.pairs import pair_margins, record_pairs, validated_rows
from rewardlab.metrics.statistics import length_correlation, sampling_units
from rewardlab.metrics.ties import TiePolicy


def evaluate_scores(
    records: Sequence,
    scores: Sequence[Sequence[float]],
    seed: int = 0,
    n_boot: int = 1000,
    n_bins: int = 10,
    tie_policy: TiePolicy | str = "strict",
) -> dict:
    """All metrics for rewards ``scores[i][j]`` of ``records[i].responses[j]`` (:class:`Comparison`).

    The pairs of each record are its :meth:`~Comparison.strict_pairs` (for plain data: chosen against
    every other response); pairs the judge tied are left out and only counted (:func:`accuracy_summary`).
    Returns a JSON-serialisable dict::

        n_records, n_pairs, wins, accuracy, accuracy_ci95 [low, high], record_accuracy, n_scored_records,
        ties, tie_rate, mean_margin, n_tied_pairs, tie_agreement, tied_mean_abs_gap,
        per_source {name: {n, n_pairs, accuracy, record_accuracy, ties, ci95}},
        calibration {log_loss, brier, ece, n_bins, bins [{lo, hi, count, mean_p, mean_label}]},
        length_correlation {pearson, spearman},       # over every response, length in characters
        reward_stats {mean, std, mean_chosen, mean_rejected, n_responses},
        tie_policy,                                   # how ties were credited in accuracy (TiePolicy)
        seed

    ``std`` is the population standard deviation of all rewards; ``mean_rejected`` averages every
    response the chosen one beats (its losers in the pairs; with plain data every non-chosen response).
    Calibration is over the pairs' margins. ``seed`` drives the bootstrap and the calibration orientation.
    The intervals resample the unit that was sampled (:func:`~rewardlab.metrics.statistics.sampling_units`: an
    item shown in both orders, else a prompt with all its records), not single records (``ci_unit``).
    """
    if len(records) != len(scores):
        raise ValueError(f"{len(records)} records but {len(scores)} score rows")
    if not records:
        raise ValueError("evaluate_scores needs at least one record")
    chosen = [int(r.chosen) for r in records]
    rows = validated_rows(scores, chosen)
    for i, (record, row) in enumerate(zip(records, rows)):
        if row.size != len(record.responses):
            raise ValueError(
                f"record {i} ({record.id or 'no id'}): {len(record.responses)} responses but {row.size} rewards"
            )
    pairs, tied = record_pairs(records)
    out = accuracy_summary(
        rows,
        chosen,
        [r.source for r in records],
        seed=seed,
        n_boot=n_boot,
        tie_policy=tie_policy,
        pairs=pairs,
        tied=tied,
        groups=sampling_units(records),
    )
    margins, _ = pair_margins(rows, chosen, pairs)
    out["calibration"] = calibration(margins, n_bins=n_bins, seed=seed)

    all_rewards = np.concatenate(rows)
    lengths = np.asarray([len(resp) for r in records for resp in r.responses], dtype=np.float64)
    out["length_correlation"] = length_correlation(all_rewards, lengths)
    chosen_rewards = np.asarray([row[c] for row, c in zip(rows, chosen)])
    rejected_rewards = np.asarray([row[b] for row, c, p in zip(rows, chosen, pairs) for a, b in p if a == c])
    out["reward_stats"] = {
        "mean": float(all_rewards.mean()),
        "std": float(all_rewards.std()),
        "mean_chosen": float(chosen_rewards.mean()),
        "mean_rejected": float(rejected_rewards.mean()) if rejected_rewards.size else None,
        "n_responses": int(all_rewards.size),
    }
    out["seed"] = seed
    return json_safe(out)
