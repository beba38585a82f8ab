"""Evaluation metrics for reward models: pure functions over numbers, no model code.

Everything here works on the rewards a model gave to the responses of :class:`Comparison` records:
``scores[i][j]`` is the reward of ``records[i].responses[j]``. A record with K responses gives K − 1
*pairs*: the chosen response against every other one. (An optional ``ranking`` beyond the chosen
response is not used here.)

* **Accuracy** is strict: a pair is a win only if ``r_chosen > r_other``. A tie is not a win; ties
  are counted and reported separately, so a model that gives every response the same reward scores
  accuracy 0 with tie rate 1, not 0.5.
* **Calibration** reads ``P = σ(r_chosen − r_other)`` as the probability the model gives to the
  human (ground-truth) choice, as in the Bradley–Terry loss. See :func:`calibration`.
* Confidence intervals come from a percentile bootstrap that resamples *records*, so the pairs of one
  K > 2 record stay together.

:func:`evaluate_scores` returns all of it as one JSON-serialisable dict (non-finite numbers → ``None``).
"""
from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

__all__ = [
    "PairOutcomes",
    "pairwise_outcomes",
    "pair_margins",
    "accuracy_summary",
    "log_sigmoid",
    "sigmoid",
    "expected_calibration_error",
    "calibration",
    "length_correlation",
    "bootstrap_ci",
    "evaluate_scores",
]


class PairOutcomes(NamedTuple):
    """One entry per (chosen, other) pair, in record order then response order.

    ``wins[p]``: the chosen response's reward is strictly greater; ``ties[p]``: the rewards are equal;
    ``record[p]``: the index of the record the pair came from (for per-record / per-source grouping).
    """

    wins: np.ndarray
    ties: np.ndarray
    record: np.ndarray


def _rows(scores: Sequence[Sequence[float]], chosen: Sequence[int]) -> list[np.ndarray]:
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


def _pairs(scores, chosen) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(r_chosen, r_other, record index) per pair."""
    rows = _rows(scores, chosen)
    r_w, r_l, rec = [], [], []
    for i, (r, c) in enumerate(zip(rows, chosen)):
        c = int(c)
        others = np.delete(r, c)
        r_w.append(np.full(others.size, r[c]))
        r_l.append(others)
        rec.append(np.full(others.size, i, dtype=np.int64))
    if not rows:
        empty = np.zeros(0, dtype=np.float64)
        return empty, empty.copy(), np.zeros(0, dtype=np.int64)
    return np.concatenate(r_w), np.concatenate(r_l), np.concatenate(rec)


def pairwise_outcomes(scores: Sequence[Sequence[float]], chosen: Sequence[int]) -> PairOutcomes:
    """Compare each record's chosen reward with every other reward of that record.

    Returns :class:`PairOutcomes` ``(wins, ties, record)`` — boolean arrays ``wins`` (strictly
    greater) and ``ties`` (equal), and the int array ``record`` of each pair's record index.
    Raises ``ValueError`` on mismatched lengths, a bad ``chosen`` index or a non-finite reward.
    """
    r_w, r_l, rec = _pairs(scores, chosen)
    return PairOutcomes(wins=r_w > r_l, ties=r_w == r_l, record=rec)


def pair_margins(scores: Sequence[Sequence[float]], chosen: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """``(r_chosen − r_other, record index)`` per pair, in the order of :func:`pairwise_outcomes`."""
    r_w, r_l, rec = _pairs(scores, chosen)
    return r_w - r_l, rec


# ----------------------------------------------------------------------------------------------
# bootstrap


def bootstrap_ci(values, stat: Callable[[np.ndarray], float] = np.mean, n: int = 1000, seed: int = 0,
                 alpha: float = 0.05) -> tuple[float, float]:
    """Percentile bootstrap ``(low, high)`` of ``stat`` at level ``1 − alpha``.

    ``values`` holds one entry per *record* (rows of a 2-D array are resampled whole, so a record can
    carry e.g. ``[wins, pairs]``). Each of the ``n`` resamples draws ``len(values)`` records with
    replacement from ``np.random.default_rng(seed)``, so the result is deterministic for a seed.
    """
    values = np.asarray(values)
    m = values.shape[0] if values.ndim else 0
    if m == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    rng = np.random.default_rng(seed)
    stats = np.empty(n, dtype=np.float64)
    for b in range(n):
        stats[b] = stat(values[rng.integers(0, m, size=m)])
    low, high = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def _pooled_accuracy(rows: np.ndarray) -> float:
    """Accuracy of resampled ``[wins, pairs]`` record rows: total wins over total pairs."""
    return float(rows[:, 0].sum() / rows[:, 1].sum())


# ----------------------------------------------------------------------------------------------
# accuracy


def _finite(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def accuracy_summary(scores: Sequence[Sequence[float]], chosen: Sequence[int],
                     sources: Sequence[str] | None = None, *, seed: int = 0, n_boot: int = 1000) -> dict:
    """Strict pairwise accuracy, ties and mean margin, overall and per source.

    ``accuracy`` = wins / pairs (pooled over pairs, so a K = 3 record weighs two pairs);
    ``tie_rate`` = ties / pairs; ``mean_margin`` = mean over pairs of ``r_chosen − r_other``.
    ``accuracy_ci95`` and each source's ``ci95`` are bootstrap intervals over records
    (:func:`bootstrap_ci`, ``n_boot`` resamples, ``seed``); ``None`` when ``n_boot`` is 0.
    ``per_source`` maps each source name (records' order of first appearance) to
    ``{n, n_pairs, accuracy, ties, ci95}`` where ``n`` counts records.
    """
    wins, ties, rec = pairwise_outcomes(scores, chosen)
    margins, _ = pair_margins(scores, chosen)
    n_records = len(chosen)
    n_pairs = int(wins.size)
    per_record = np.stack([np.bincount(rec, weights=wins, minlength=n_records),
                           np.bincount(rec, minlength=n_records).astype(np.float64)], axis=1)

    def ci(rows):
        if n_boot <= 0 or rows.shape[0] == 0:
            return None
        return list(bootstrap_ci(rows, stat=_pooled_accuracy, n=n_boot, seed=seed))

    out = {
        "n_records": n_records,
        "n_pairs": n_pairs,
        "wins": int(wins.sum()),
        "accuracy": float(wins.mean()) if n_pairs else None,
        "accuracy_ci95": ci(per_record),
        "ties": int(ties.sum()),
        "tie_rate": float(ties.mean()) if n_pairs else None,
        "mean_margin": float(margins.mean()) if n_pairs else None,
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
                "accuracy": float(wins[mask].mean()),
                "ties": int(ties[mask].sum()),
                "ci95": ci(per_record[idx]),
            }
        out["per_source"] = per_source
    return out


# ----------------------------------------------------------------------------------------------
# calibration


def log_sigmoid(x) -> np.ndarray:
    """``log σ(x) = −log(1 + e^(−x))``, stable for any finite ``x`` (never ``log(0)``)."""
    return -np.logaddexp(0.0, -np.asarray(x, dtype=np.float64))


def sigmoid(x) -> np.ndarray:
    """``σ(x)`` without overflow warnings for large ``|x|``."""
    x = np.asarray(x, dtype=np.float64)
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def expected_calibration_error(p, labels, n_bins: int = 10) -> tuple[float, list[dict]]:
    """Binary ECE over ``n_bins`` equal-width bins of ``p`` on [0, 1].

    Bin ``b`` holds ``b/n_bins <= p < (b+1)/n_bins`` (``p = 1`` goes to the last bin).
    ``ECE = Σ_b (n_b / N) · |mean(label)_b − mean(p)_b|``. The table has one row per bin:
    ``{lo, hi, count, mean_p, mean_label}`` (means ``None`` for an empty bin), for a reliability plot.
    """
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    if p.shape != y.shape:
        raise ValueError(f"{p.size} probabilities but {y.size} labels")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    if p.size and (np.any(p < 0) or np.any(p > 1) or not np.all(np.isfinite(p))):
        raise ValueError("probabilities must lie in [0, 1]")
    which = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    bins, ece, total = [], 0.0, p.size
    for b in range(n_bins):
        mask = which == b
        count = int(mask.sum())
        row = {"lo": b / n_bins, "hi": (b + 1) / n_bins, "count": count, "mean_p": None, "mean_label": None}
        if count:
            mean_p, mean_label = float(p[mask].mean()), float(y[mask].mean())
            row["mean_p"], row["mean_label"] = mean_p, mean_label
            ece += count / total * abs(mean_label - mean_p)
        bins.append(row)
    return float(ece), bins


def calibration(margins, n_bins: int = 10, seed: int = 0) -> dict:
    """Calibration of ``P = σ(r_chosen − r_other)``, the probability given to the human choice.

    ``margins`` holds ``r_chosen − r_other`` per pair.

    * ``log_loss`` = mean of ``−log σ(Δ)``, computed as ``log(1 + e^(−Δ))`` (:func:`log_sigmoid`),
      so Δ = 50 gives ≈ 2e−22 and Δ = −1000 gives 1000 rather than ``inf``.
    * ``brier`` = mean of ``(1 − P)²`` = mean of ``σ(−Δ)²``.
    * ``ece``: written with the preferred response always first, every label would be 1 and ECE would
      only measure how far P falls below 1. So each pair is *oriented at random* as ``(a, b)`` —
      a fair coin per pair from ``np.random.default_rng(seed)``: ``a`` is the preferred response
      with probability ½. Then ``p = σ(r_a − r_b)`` and ``label = 1`` if ``a`` is the preferred one,
      else 0, and ECE is the standard binary one (:func:`expected_calibration_error`, ``n_bins``
      equal-width bins on [0, 1]). ``bins`` is its per-bin table. Log-loss and Brier do not depend on
      the orientation (flipping a pair maps ``(p, 1)`` to ``(1 − p, 0)``); ECE can, a little.
    """
    d = np.asarray(margins, dtype=np.float64).reshape(-1)
    if d.size and not np.all(np.isfinite(d)):
        raise ValueError("margins must be finite")
    rng = np.random.default_rng(seed)
    a_is_preferred = rng.random(d.size) < 0.5
    p = sigmoid(np.where(a_is_preferred, d, -d))
    ece, bins = expected_calibration_error(p, a_is_preferred.astype(np.float64), n_bins=n_bins)
    if d.size == 0:
        return {"log_loss": None, "brier": None, "ece": None, "n_bins": n_bins, "bins": bins}
    return {
        "log_loss": float(np.mean(-log_sigmoid(d))),
        "brier": float(np.mean(sigmoid(-d) ** 2)),
        "ece": ece,
        "n_bins": n_bins,
        "bins": bins,
    }


# ----------------------------------------------------------------------------------------------
# reward vs length


def _rank(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (as ``scipy.stats.rankdata``)."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    ends = np.r_[starts[1:], xs.size]
    avg = (starts + ends + 1) / 2.0  # mean of 1-based ranks starts+1 .. ends
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def _pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    if x.size < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return None
    xc, yc = x - x.mean(), y - y.mean()
    denom = math.sqrt(float(np.dot(xc, xc)) * float(np.dot(yc, yc)))
    if not denom or not math.isfinite(denom):
        return None
    return float(np.clip(np.dot(xc, yc) / denom, -1.0, 1.0))


def length_correlation(rewards, lengths) -> dict:
    """Pearson and Spearman correlation between reward and response length (characters).

    Pairs where either value is NaN/inf are dropped. Returns ``{"pearson": r | None,
    "spearman": ρ | None}``; a coefficient is ``None`` when it is undefined: fewer than two points
    or a constant input (zero variance). Spearman is Pearson on average-tie ranks.
    """
    x = np.asarray(rewards, dtype=np.float64).reshape(-1)
    y = np.asarray(lengths, dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"{x.size} rewards but {y.size} lengths")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    pearson = _pearson(x, y)
    spearman = _pearson(_rank(x), _rank(y)) if pearson is not None else None
    return {"pearson": pearson, "spearman": spearman}


# ----------------------------------------------------------------------------------------------
# everything


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return _finite(obj)
    return obj


def evaluate_scores(records: Sequence, scores: Sequence[Sequence[float]], seed: int = 0,
                    n_boot: int = 1000, n_bins: int = 10) -> dict:
    """All metrics for rewards ``scores[i][j]`` of ``records[i].responses[j]`` (:class:`Comparison`).

    Returns a JSON-serialisable dict::

        n_records, n_pairs, wins, accuracy, accuracy_ci95 [low, high], ties, tie_rate, mean_margin,
        per_source {name: {n, n_pairs, accuracy, ties, ci95}},
        calibration {log_loss, brier, ece, n_bins, bins [{lo, hi, count, mean_p, mean_label}]},
        length_correlation {pearson, spearman},       # over every response, length in characters
        reward_stats {mean, std, mean_chosen, mean_rejected, n_responses},
        seed

    ``std`` is the population standard deviation of all rewards; ``mean_rejected`` averages every
    non-chosen response. ``seed`` drives the bootstrap and the calibration orientation.
    """
    if len(records) != len(scores):
        raise ValueError(f"{len(records)} records but {len(scores)} score rows")
    if not records:
        raise ValueError("evaluate_scores needs at least one record")
    chosen = [int(r.chosen) for r in records]
    rows = _rows(scores, chosen)
    for i, (record, row) in enumerate(zip(records, rows)):
        if row.size != len(record.responses):
            raise ValueError(f"record {i} ({record.id or 'no id'}): {len(record.responses)} responses "
                             f"but {row.size} rewards")
    out = accuracy_summary(rows, chosen, [r.source for r in records], seed=seed, n_boot=n_boot)
    margins, _ = pair_margins(rows, chosen)
    out["calibration"] = calibration(margins, n_bins=n_bins, seed=seed)

    all_rewards = np.concatenate(rows)
    lengths = np.asarray([len(resp) for r in records for resp in r.responses], dtype=np.float64)
    out["length_correlation"] = length_correlation(all_rewards, lengths)
    chosen_rewards = np.asarray([row[c] for row, c in zip(rows, chosen)])
    rejected_rewards = np.concatenate([np.delete(row, c) for row, c in zip(rows, chosen)])
    out["reward_stats"] = {
        "mean": float(all_rewards.mean()),
        "std": float(all_rewards.std()),
        "mean_chosen": float(chosen_rewards.mean()),
        "mean_rejected": float(rejected_rewards.mean()),
        "n_responses": int(all_rewards.size),
    }
    out["seed"] = seed
    return _jsonable(out)
