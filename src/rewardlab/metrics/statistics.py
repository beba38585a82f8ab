"""Statistics over records: percentile bootstrap intervals and the reward-length correlation (scipy)."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import scipy.stats


def bootstrap_ci(
    values,
    stat: Callable[[np.ndarray], float] = np.mean,
    n: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    groups=None,
) -> tuple[float, float]:
    """Percentile bootstrap ``(low, high)`` of ``stat`` at level ``1 − alpha``.

    ``values`` holds one entry per *record* (rows of a 2-D array are resampled whole, so a record can
    carry e.g. ``[wins, pairs]``). Each of the ``n`` resamples draws ``len(values)`` records with
    replacement from ``np.random.default_rng(seed)``, so the result is deterministic for a seed.

    ``groups`` (one hashable key per record) makes it a *cluster* bootstrap: the unit that was sampled is a
    group (an EvalBiasBench item shown in both orders, a prompt with several pairs), so each resample draws
    as many groups as there are, with replacement, and takes all of each drawn group's records. Records of
    one group are not independent; resampling them one by one makes the interval too narrow. With every group
    of one record it is the plain bootstrap above, draw for draw.
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
    if groups is None:
        for b in range(n):
            stats[b] = stat(values[rng.integers(0, m, size=m)])
    else:
        if len(groups) != m:
            raise ValueError(f"{len(groups)} group keys for {m} values")
        codes = {}
        code = np.asarray([codes.setdefault(g, len(codes)) for g in groups])  # first-appearance order
        order = np.argsort(code, kind="stable")  # records grouped, each group in record order
        sizes = np.bincount(code)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        g = sizes.size
        for b in range(n):
            draw = rng.integers(0, g, size=g)
            lengths = sizes[draw]
            offsets = np.repeat(starts[draw] - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
            stats[b] = stat(values[order[offsets + np.arange(lengths.sum())]])
    low, high = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def sampling_units(records) -> list:
    """The unit each record was sampled as, for :func:`bootstrap_ci` ``groups``: ``meta["item"]`` when the
    loader set one (an EvalBiasBench item, both of its orders), else the record's prompt (several pairs of one
    prompt, e.g. a K-response set binarised or MT-Bench's judgments of one question, are one unit)."""
    return [(r.meta or {}).get("item") or r.prompt_key() for r in records]


def _pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    """Pearson's r (``scipy.stats.pearsonr``); None when undefined (fewer than two points, a constant input)."""
    if x.size < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return None
    r = float(scipy.stats.pearsonr(x, y).statistic)
    return float(np.clip(r, -1.0, 1.0)) if math.isfinite(r) else None


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
    spearman = float(scipy.stats.spearmanr(x, y).statistic) if pearson is not None else None
    return {"pearson": pearson, "spearman": spearman}
