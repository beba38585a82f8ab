"""Calibration of ``P = σ(r_winner − r_loser)``: log-loss, Brier score, expected calibration error."""

from __future__ import annotations

import numpy as np


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
