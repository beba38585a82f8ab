"""Pair accuracy (``accuracy``) and record accuracy (``record_accuracy``), overall and per source."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from rewardlab.metrics.pairs import Pairs, pair_rewards, validated_rows
from rewardlab.metrics.statistics import bootstrap_ci
from rewardlab.metrics.ties import TiePolicy, pair_credits


def _pooled_accuracy(rows: np.ndarray) -> float:
    """Accuracy of resampled ``[wins, pairs]`` record rows: total wins over total pairs."""
    return float(rows[:, 0].sum() / rows[:, 1].sum())


def accuracy_summary(
    scores: Sequence[Sequence[float]],
    chosen: Sequence[int],
    sources: Sequence[str] | None = None,
    *,
    seed: int = 0,
    n_boot: int = 1000,
    tie_policy: TiePolicy | str = "strict",
    pairs: Pairs | None = None,
    tied: Pairs | None = None,
    groups: Sequence | None = None,
) -> dict:
    """Pair and record accuracy (strict by default), ties and mean margin, overall and per source.

    ``pairs[i]`` are record i's ``(winner, loser)`` pairs and ``tied[i]`` its judge-tied ``(i, j)``
    pairs (:func:`record_pairs`); by default the chosen response against every other one and no ties.

    ``accuracy`` = credit / pairs (pooled over pairs, so a record with three pairs weighs three), where
    a win earns 1, a loss 0 and a reward tie what ``tie_policy`` gives it (:class:`TiePolicy`;
    ``strict``: 0, so accuracy = wins / pairs; ``half``/``fractional``: ½; ``random``: a seeded coin —
    its seed is ``seed`` unless the policy names one). ``tie_policy`` in the result records the policy
    used; ``ties`` / ``tie_rate`` count reward ties among the pairs; ``mean_margin`` = mean over pairs of
    ``r_winner − r_loser``. ``record_accuracy`` = share of the records with at least one pair whose
    pairs are all strict wins (``n_scored_records`` of them). Judge-tied pairs are no pairs:
    ``n_tied_pairs`` counts them, ``tie_agreement`` is the share of them the model also scores exactly
    equal (meaningful for discrete scorers such as rating judges) and ``tied_mean_abs_gap`` the mean
    ``|r_i − r_j|`` over them (``None`` without tied pairs).
    ``accuracy_ci95`` and each source's ``ci95`` are bootstrap intervals over the records with pairs
    (:func:`bootstrap_ci`, ``n_boot`` resamples, ``seed``); ``None`` when ``n_boot`` is 0. ``groups`` (one key
    per record, :func:`~rewardlab.metrics.statistics.sampling_units`) resamples whole groups instead of
    records (a prompt's pairs, an item's two orders); ``ci_unit`` in the result says which.
    ``per_source`` maps each source name (records' order of first appearance) to
    ``{n, n_pairs, accuracy, record_accuracy, ties, ci95}`` where ``n`` counts records.
    """
    policy = TiePolicy.parse(tie_policy, seed=seed).resolve("strict")
    rows = validated_rows(scores, chosen)
    r_w, r_l, rec = pair_rewards(scores, chosen, pairs, rows)
    wins, ties = r_w > r_l, r_w == r_l
    credit = pair_credits(r_w, r_l, policy)
    margins = r_w - r_l
    n_records = len(chosen)
    n_pairs = int(wins.size)
    pairs_of = np.bincount(rec, minlength=n_records).astype(np.float64)  # (n_records,)
    per_record = np.stack([np.bincount(rec, weights=credit, minlength=n_records), pairs_of], axis=1)
    scored = pairs_of > 0  # records with at least one pair
    all_won = scored & (np.bincount(rec, weights=wins, minlength=n_records) == pairs_of)
    t_a, t_b, _ = pair_rewards(scores, chosen, tied if tied is not None else [[] for _ in rows], rows)

    keys = None if groups is None else np.asarray(list(groups), dtype=object)
    if keys is not None and keys.size != n_records:
        raise ValueError(f"{keys.size} group keys but {n_records} records")

    def ci(idx):
        idx = idx[scored[idx]]
        if n_boot <= 0 or idx.size == 0:
            return None
        unit = None if keys is None else keys[idx].tolist()
        return list(bootstrap_ci(per_record[idx], stat=_pooled_accuracy, n=n_boot, seed=seed, groups=unit))

    def record_accuracy(idx):
        idx = idx[scored[idx]]
        return float(all_won[idx].mean()) if idx.size else None

    everyone = np.arange(n_records)
    out = {
        "n_records": n_records,
        "n_pairs": n_pairs,
        "wins": int(wins.sum()),
        "accuracy": float(credit.mean()) if n_pairs else None,
        "accuracy_ci95": ci(everyone),
        "record_accuracy": record_accuracy(everyone),
        "n_scored_records": int(scored.sum()),
        "ties": int(ties.sum()),
        "tie_rate": float(ties.mean()) if n_pairs else None,
        "mean_margin": float(margins.mean()) if n_pairs else None,
        "n_tied_pairs": int(t_a.size),
        "tie_agreement": float(np.mean(t_a == t_b)) if t_a.size else None,
        "tied_mean_abs_gap": float(np.mean(np.abs(t_a - t_b))) if t_a.size else None,
        "tie_policy": str(policy),
        "ci_unit": "record" if keys is None else "group (prompt or item)",
    }
    if sources is not None:
        if len(sources) != n_records:
            raise ValueError(f"{len(sources)} sources but {n_records} records")
        per_source = {}
        names = np.asarray([str(s) for s in sources], dtype=object)
        for name in dict.fromkeys(names.tolist()):
            idx = np.flatnonzero(names == name)
            mask = np.isin(rec, idx)
            per_source[name] = {
                "n": int(idx.size),
                "n_pairs": int(mask.sum()),
                "accuracy": float(credit[mask].mean()) if mask.any() else None,
                "record_accuracy": record_accuracy(idx),
                "ties": int(ties[mask].sum()),
                "ci95": ci(idx),
            }
        out["per_source"] = per_source
    return out
