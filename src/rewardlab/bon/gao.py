"""Gao, Schulman, Hilton (2022)'s best-of-n form for the gold reward: ``gold(d) − gold(0) = d·(α − β·d)`` with
d = √KL, fitted by least squares through the origin; the peak is at d* = α/(2β) (when β > 0) and n* is the n
whose KL is d*² (interpolated in log n along the KL curve used)."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

FIT = (
    "least squares of gold(n) - gold(n=1) on [d, -d^2], d = sqrt(KL), no intercept (Gao et al. 2022); "
    "peak d* = alpha/(2 beta) when beta > 0; n* interpolated in log n along the KL curve"
)


def fit_gao(d: Sequence[float], delta_gold: Sequence[float]) -> tuple[float, float]:
    """``(α, β)`` minimising Σ (Δgold − d(α − βd))² over the points. Shapes ``(K,)``. Needs two points with
    distinct d > 0. Worked: d = [1, 2], Δgold = [1, 0] → α − β = 1, 2α − 4β = 0 → α = 2, β = 1 (exact fit)."""
    d = np.asarray(d, dtype=np.float64)
    y = np.asarray(delta_gold, dtype=np.float64)
    if d.shape != y.shape:
        raise ValueError(f"{d.size} KL points but {y.size} gold points")
    if np.unique(d[d > 0]).size < 2:
        raise ValueError(
            "the Gao fit needs at least two distinct KL values above 0 (n = 1 and one more n is not enough)"
        )
    X = np.stack([d, -(d**2)], axis=1)
    (alpha, beta), *_ = np.linalg.lstsq(X, y, rcond=None)
    return float(alpha), float(beta)


def peak(alpha: float, beta: float) -> float | None:
    """d* = α/(2β) when β > 0 and α > 0 (the fitted gold rises then falls); None otherwise (no peak)."""
    return alpha / (2 * beta) if beta > 0 and alpha > 0 else None


def shape(alpha: float, beta: float, n_star: float | None) -> str:
    """The fitted curve in words: peaks inside the measured n, past them, keeps rising, or never rises."""
    if alpha <= 0:
        return "never rises (alpha <= 0: gold falls from n = 1)"
    if beta <= 0:
        return "keeps rising (beta <= 0: no peak)"
    return "rises then falls (peak inside the measured n)" if n_star is not None else "rises; peak past the largest n"


def n_at_kl(kl_target: float, ns: Sequence[int], kls: Sequence[float]) -> float | None:
    """The n whose KL is ``kl_target``, linear in log n between the measured points (``kls`` ascending with
    ``ns``); None when it lies beyond the largest KL (the peak is past the largest n measured)."""
    kls = np.asarray(kls, dtype=np.float64)
    if kl_target > kls[-1]:
        return None
    return float(math.exp(np.interp(kl_target, kls, np.log(np.asarray(ns, dtype=np.float64)))))


def gao_analysis(
    per_prompt_gold: np.ndarray, ns: Sequence[int], kls: Sequence[float], n_boot: int = 1000, seed: int = 0
) -> dict:
    """The fit on the mean-over-prompts gold curve and its bootstrap over prompts.

    ``per_prompt_gold``: shape ``(prompts, K)``, the exact best-of-n gold per prompt for ``ns`` (``ns[0]`` must
    be 1: gold is taken relative to it). ``kls``: shape ``(K,)``, KL per n (held fixed in the bootstrap).
    Returns α, β, d*, KL*, n* (None: no peak in the fit, or past the largest n), the fitted curve, and
    ``n_star_ci`` (percentile interval over the resamples that peak inside the measured range) with the share of
    resamples that peak at all (``peaked_share``) and inside it (``inside_share``).
    """
    ns = [int(n) for n in ns]
    if ns[0] != 1:
        raise ValueError(f"the Gao fit takes gold relative to n = 1: ns must start at 1, got {ns[0]}")
    g = np.asarray(per_prompt_gold, dtype=np.float64)
    d = np.sqrt(np.asarray(kls, dtype=np.float64))

    def one(mean_gold: np.ndarray) -> tuple[float, float, float | None, float | None]:
        alpha, beta = fit_gao(d, mean_gold - mean_gold[0])
        dstar = peak(alpha, beta)
        nstar = n_at_kl(dstar**2, ns, kls) if dstar is not None else None
        return alpha, beta, dstar, nstar

    mean = g.mean(axis=0)
    alpha, beta, dstar, nstar = one(mean)
    out = {
        "alpha": alpha,
        "beta": beta,
        "d_star": dstar,
        "kl_star": dstar**2 if dstar is not None else None,
        "n_star": nstar,
        "peak_past_largest_n": dstar is not None and nstar is None,
        "fitted_delta_gold": (d * (alpha - beta * d)).tolist(),
        "observed_peak_n": ns[int(np.argmax(mean))],
        "shape": shape(alpha, beta, nstar),
        "fit": FIT,
        "n_star_ci": None,
        "peaked_share": None,
        "inside_share": None,
        "interval": None,
    }
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        m = g.shape[0]
        stars, peaked = [], 0
        for _ in range(n_boot):
            _, _, ds, nsr = one(g[rng.integers(0, m, size=m)].mean(axis=0))
            peaked += ds is not None
            if nsr is not None:
                stars.append(nsr)
        out["peaked_share"] = peaked / n_boot
        out["inside_share"] = len(stars) / n_boot
        if stars:
            out["n_star_ci"] = [float(x) for x in np.quantile(stars, [0.025, 0.975])]
        out["interval"] = (
            f"percentile bootstrap over prompts ({n_boot} resamples, seed {seed}, KL held fixed), 95%, over the "
            "resamples whose fit peaks inside the measured n"
        )
    return out
