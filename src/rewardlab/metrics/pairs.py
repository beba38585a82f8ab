"""The pairs a record's judgement implies, and what the rewards say about them.

``scores[i][j]`` is the reward of ``records[i].responses[j]``; ``pairs[i]`` lists record i's ``(winner, loser)``
response indices (:func:`record_pairs`); without it the functions fall back to chosen-vs-every-other.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np


class PairOutcomes(NamedTuple):
    """One entry per (winner, loser) pair, in record order then the order of the record's pairs; each (P,).

    ``wins[p]``: the winner's reward is strictly greater; ``ties[p]``: the rewards are equal;
    ``record[p]``: the index of the record the pair came from (for per-record / per-source grouping).
    """

    wins: np.ndarray
    ties: np.ndarray
    record: np.ndarray


def validated_rows(scores: Sequence[Sequence[float]], chosen: Sequence[int]) -> list[np.ndarray]:
    if len(scores) != len(chosen):
        raise ValueError(f"{len(scores)} score rows but {len(chosen)} chosen indices")
    rows = []
    for i, (row, c) in enumerate(zip(scores, chosen)):
        r = np.asarray(row, dtype=np.float64).reshape(-1)
        if r.size < 2:
            raise ValueError(f"record {i}: needs at least two rewards, got {r.size}")
        if not 0 <= int(c) < r.size:
            raise ValueError(f"record {i}: chosen={c} is not an index into {r.size} rewards")
        if not np.all(np.isfinite(r)):
            raise ValueError(f"record {i}: rewards must be finite, got {r.tolist()}")
        rows.append(r)
    return rows


Pairs = Sequence[Sequence[tuple[int, int]]]  # pairs[i]: record i's (winner, loser) response indices


def record_pairs(records: Sequence) -> tuple[list, list]:
    """``(strict, tied)``: each record's :meth:`~Comparison.strict_pairs` and :meth:`~Comparison.tied_pairs`."""
    return [r.strict_pairs() for r in records], [r.tied_pairs() for r in records]


def pair_rewards(
    scores, chosen, pairs: Pairs | None = None, rows: list[np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(r_a, r_b, record index)``, each of shape (P,), for the pairs ``(a, b)`` of every record.

    ``pairs[i]`` lists record i's ``(a, b)`` response indices; None: ``(chosen, j)`` for every
    ``j ≠ chosen`` in index order. ``rows`` (from :func:`validated_rows`) skips re-validating ``scores``.
    """
    rows = validated_rows(scores, chosen) if rows is None else rows
    if pairs is None:
        pairs = [[(int(c), j) for j in range(r.size) if j != int(c)] for r, c in zip(rows, chosen)]
    if len(pairs) != len(rows):
        raise ValueError(f"{len(rows)} score rows but pairs for {len(pairs)} records")
    flat = [(i, int(a), int(b)) for i, record in enumerate(pairs) for a, b in record]
    for i, a, b in flat:
        if a == b or not (0 <= a < rows[i].size and 0 <= b < rows[i].size):
            raise ValueError(f"record {i}: pair ({a}, {b}) is not two distinct indices into {rows[i].size} rewards")
    r_a = np.asarray([rows[i][a] for i, a, _ in flat], dtype=np.float64)
    r_b = np.asarray([rows[i][b] for i, _, b in flat], dtype=np.float64)
    return r_a, r_b, np.asarray([i for i, _, _ in flat], dtype=np.int64)


def pairwise_outcomes(
    scores: Sequence[Sequence[float]], chosen: Sequence[int], pairs: Pairs | None = None
) -> PairOutcomes:
    """Compare the winner's reward with the loser's for every pair of every record.

    ``pairs[i]``: record i's ``(winner, loser)`` indices (e.g. :func:`record_pairs`); None: the chosen
    response against every other one. Returns :class:`PairOutcomes` ``(wins, ties, record)`` — boolean
    arrays ``wins`` (strictly greater) and ``ties`` (equal), and the int array ``record`` of each pair's
    record index, all of shape (P,). Raises ``ValueError`` on mismatched lengths, a bad ``chosen`` or
    pair index or a non-finite reward.
    """
    r_w, r_l, rec = pair_rewards(scores, chosen, pairs)
    return PairOutcomes(wins=r_w > r_l, ties=r_w == r_l, record=rec)


def pair_margins(
    scores: Sequence[Sequence[float]], chosen: Sequence[int], pairs: Pairs | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(r_winner − r_loser, record index)``, each (P,), in the order of :func:`pairwise_outcomes`."""
    r_w, r_l, rec = pair_rewards(scores, chosen, pairs)
    return r_w - r_l, rec
