"""Ensembles of proxy reward models (Coste et al. 2023, arXiv 2310.02743): several members' scores of the same
samples combined into one proxy score per sample.

* ``mean``: the members' mean;
* ``min`` (worst-case optimisation, WCO): the lowest member score;
* ``uwo`` (uncertainty-weighted optimisation): mean − λ·variance across members (population variance, ddof 0).

Members trained separately have different offsets and scales; ``standardize`` (the CLI's default) first maps each
member to zero mean and unit variance over all samples it scored, so min and variance compare like with like.
The combined score keeps the samples' order: it is one number per sample, aligned with the gold of that sample.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

OBJECTIVES: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "mean": lambda s, lam: s.mean(axis=0),
    "min": lambda s, lam: s.min(axis=0),
    "uwo": lambda s, lam: s.mean(axis=0) - lam * s.var(axis=0),
}
DESCRIPTIONS = {
    "mean": "mean of the members",
    "min": "worst case: minimum over the members (WCO, Coste et al. 2023)",
    "uwo": "mean - lambda * variance over the members (UWO, Coste et al. 2023; population variance)",
}


def standardize_members(scores: np.ndarray) -> np.ndarray:
    """Shape ``(M, S)`` → the same with each row at mean 0, standard deviation 1 (a constant row → all 0)."""
    s = np.asarray(scores, dtype=np.float64)
    sd = s.std(axis=1, keepdims=True)
    return (s - s.mean(axis=1, keepdims=True)) / np.where(sd > 0, sd, 1.0)


def combine(scores, objective: str, lam: float = 0.5, standardize: bool = False) -> np.ndarray:
    """``scores``: shape ``(M, S)`` (M members, S samples, same order for every member) → shape ``(S,)``.
    Worked (no standardizing): members [[1, 4], [3, 0]]: mean [2, 2], min [1, 0], variance [1, 4], so
    uwo with λ = 0.5 gives [1.5, 0]."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown ensemble objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] < 1:
        raise ValueError(f"ensemble scores must have shape (members, samples), got {s.shape}")
    if lam < 0:
        raise ValueError(f"lambda must be >= 0, got {lam}")
    if standardize:
        s = standardize_members(s)
    return OBJECTIVES[objective](s, lam)


def describe(objective: str, lam: float, standardize: bool) -> str:
    """How a combined score was made, for every output that reports one."""
    text = DESCRIPTIONS[objective] + (f", lambda = {lam:g}" if objective == "uwo" else "")
    return text + ("; each member standardized over all samples first" if standardize else "")
