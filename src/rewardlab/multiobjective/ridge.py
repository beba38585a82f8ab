"""Stage 1 in closed form (ArmoRM): one ridge probe per attribute on frozen features, no intercept, α by validation.

For attribute k, on the rows where it is rated: ``w_k = (XᵀX + αI)⁻¹ Xᵀ y`` (float64). α is the grid value with
the lowest MSE on a seeded 20% validation split; the probe is then refitted on all rated rows with that α.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

ALPHAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3, 1e4)


def ridge_solve(x: torch.Tensor, y: torch.Tensor, alpha: float) -> torch.Tensor:
    """``x`` ``(N, d)``, ``y`` ``(N,)`` → ``w`` ``(d,)`` minimising ``|xw − y|² + α|w|²``."""
    x, y = x.double(), y.double()
    d = x.shape[1]
    return torch.linalg.solve(x.T @ x + alpha * torch.eye(d, dtype=x.dtype), x.T @ y)


@dataclass
class RidgeFit:
    weight: torch.Tensor  # (K, d), float32: the head's weight
    alphas: list[float]  # chosen α per attribute
    val_mse: list[float]  # validation MSE at the chosen α


def fit_ridge(
    x: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, alphas=ALPHAS, val_fraction: float = 0.2, seed: int = 0
) -> RidgeFit:
    """x ``(N, d)``, target and mask ``(N, K)`` → one probe per attribute."""
    gen = torch.Generator().manual_seed(seed)
    weights, chosen, mses = [], [], []
    for k in range(target.shape[1]):
        rows = torch.nonzero(mask[:, k] > 0).flatten()
        if len(rows) == 0:
            raise ValueError(f"attribute {k} has no rated row")
        perm = rows[torch.randperm(len(rows), generator=gen)]
        n_val = int(round(val_fraction * len(rows))) if len(rows) >= 5 else 0
        val, tr = perm[:n_val], perm[n_val:]
        best = (float("inf"), alphas[len(alphas) // 2])
        if n_val:
            for a in alphas:
                w = ridge_solve(x[tr], target[tr, k], a)
                mse = float(((x[val].double() @ w - target[val, k].double()) ** 2).mean())
                if mse < best[0]:
                    best = (mse, a)
        weights.append(ridge_solve(x[rows], target[rows, k], best[1]).float())
        chosen.append(best[1])
        mses.append(best[0])
    return RidgeFit(torch.stack(weights), chosen, mses)
