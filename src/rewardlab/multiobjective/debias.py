"""ArmoRM's verbosity debiasing: r′_j = r_j − λ_j · r_v, λ_j the smallest grid value that decorrelates r′_j from r_v.

λ_j is the first value of :data:`LAMBDA_GRID` with ``Spearman(r_j − λ·r_v, r_v) ≤ threshold`` (0.03) on a
reference set (chosen and rejected responses pooled). The verbosity attribute itself gets λ = 1 (it is zeroed
out), and an attribute that never reaches the threshold also keeps λ = 1 (as in ArmoRM's code). As a matrix:
``T = I``, ``T[v, :] -= λ``, and ``r′ = r @ T``.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

LAMBDA_GRID = (0.0, 0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, *[round(0.2 + 0.05 * i, 2) for i in range(16)])
THRESHOLD = 0.03


def spearman(a, b) -> float:
    """Spearman's ρ; 0 when either side is constant (no monotone relation to measure)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(spearmanr(a, b).statistic)


def find_lambdas(
    rewards: np.ndarray, verbosity_index: int, threshold: float = THRESHOLD, grid: tuple[float, ...] = LAMBDA_GRID
) -> np.ndarray:
    """``(N, K)`` reference rewards → λ ``(K,)``; λ[verbosity_index] = 1."""
    rewards = np.asarray(rewards, dtype=float)
    if rewards.ndim != 2 or not 0 <= verbosity_index < rewards.shape[1]:
        raise ValueError(
            f"rewards must be (N, K) and verbosity_index in 0..K-1, got {rewards.shape}, {verbosity_index}"
        )
    if list(grid) != sorted(grid):
        raise ValueError("the λ grid must be increasing")
    v = rewards[:, verbosity_index]
    out = np.ones(rewards.shape[1])
    for j in range(rewards.shape[1]):
        if j == verbosity_index:
            continue
        for lam in grid:
            if spearman(rewards[:, j] - lam * v, v) <= threshold:
                out[j] = lam
                break
    return out


def transform_matrix(lambdas: np.ndarray, verbosity_index: int) -> np.ndarray:
    """``T`` ``(K, K)`` with ``r @ T = r′``: the identity minus λ in the verbosity row."""
    k = len(lambdas)
    t = np.eye(k)
    t[verbosity_index, :] -= np.asarray(lambdas, dtype=float)
    return t
