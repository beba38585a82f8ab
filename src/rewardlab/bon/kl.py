"""KL(best-of-n ‖ base sampler), in nats: the analytic bound and a sample-based estimate.

* ``bound``: log n − (n−1)/n (Stiennon et al. 2020; Gao et al. 2022). Beirami et al. 2024 (arXiv 2401.01879)
  show it is only an *upper bound*: exact when the rewards of the base sampler's outputs never tie, loose when
  outputs repeat or rewards tie (it grows without limit while the true KL is at most log(1/ε) + …).
* ``estimate``: the exact KL of best-of-n when the top-reward outcome has probability ε under the base sampler
  and no other reward ties (:func:`kl_estimate`, the form Beirami et al. propose), with ε estimated per prompt as
  the share of its N samples tied with the top proxy score (identical responses score the same, so repeats
  count), then averaged over prompts.

Best-of-n with uniform tie-breaking changes probabilities only through the reward: an outcome whose reward has
CDF F (and F⁻ just below it) has ``P_n/P = (F^n − F⁻^n)/(F − F⁻)``, so the KL depends only on the masses of
the reward levels (:func:`kl_discrete`, exact, used to check the other two).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

KL_BOUND = "analytic bound log n - (n-1)/n (nats; an upper bound, Beirami et al. 2024)"
KL_ESTIMATE = (
    "sample-based estimate (Beirami et al. 2024): exact KL when the top reward has mass eps and nothing else "
    "ties, eps = share of a prompt's N samples tied with its top proxy score; mean over prompts (nats)"
)
KL_METHODS = {"bound": KL_BOUND, "estimate": KL_ESTIMATE}


def kl_help() -> str:
    """``--kl``'s choices, for --help."""
    return "; ".join(f"{k}: {v}" for k, v in KL_METHODS.items())


def kl_bound(n: int) -> float:
    """``log n − (n−1)/n`` nats: n = 1 → 0, n = 2 → log 2 − 1/2 ≈ 0.1931, n = 4 → log 4 − 3/4 ≈ 0.6363."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got n={n}")
    return math.log(n) - (n - 1) / n


def kl_estimate(n: int, eps: float) -> float:
    """KL of best-of-n when the top-reward outcome has base probability ``eps`` and the rest of the rewards
    never tie::

        (1−ε)^n · (log n + (n−1)·log(1−ε) − (n−1)/n) + (1 − (1−ε)^n) · log((1 − (1−ε)^n) / ε)

    (the continuous part integrates n·u^(n−1)·log(n·u^(n−1)) over u ∈ [0, 1−ε); the atom gets
    1 − (1−ε)^n). ε → 0 gives :func:`kl_bound`; ε = 1 (every sample ties) gives 0.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got n={n}")
    if not 0 < eps <= 1:
        raise ValueError(f"eps must be in (0, 1], got {eps}")
    if eps == 1:
        return 0.0
    a = (1.0 - eps) ** n
    cont = a * (math.log(n) + (n - 1) * math.log1p(-eps) - (n - 1) / n)
    top = 1.0 - a
    return cont + (top * math.log(top / eps) if top > 0 else 0.0)


def kl_discrete(masses: Sequence[float], n: int) -> float:
    """Exact KL(best-of-n ‖ base) for a base sampler whose reward levels, ascending, have probabilities
    ``masses`` (shape ``(L,)``, summing to 1): ``P_n(level) = F^n − F⁻^n``, KL = Σ P_n log(P_n / P).
    Two equally likely levels, n = 2: P_2 = [1/4, 3/4] → ¼·log ½ + ¾·log 3/2 ≈ 0.1308."""
    p = np.asarray(masses, dtype=np.float64)
    if p.ndim != 1 or p.size == 0 or np.any(p <= 0) or not math.isclose(p.sum(), 1.0, abs_tol=1e-9):
        raise ValueError("masses must be positive and sum to 1")
    F = np.cumsum(p)
    F[-1] = 1.0
    Fm = np.concatenate([[0.0], F[:-1]])
    pn = F**n - Fm**n
    keep = pn > 0
    return float(np.sum(pn[keep] * np.log(pn[keep] / p[keep])))


def top_tie_share(proxy: Sequence[float]) -> float:
    """ε̂ for one prompt: the share of its samples whose proxy score equals the top one (at least 1/N)."""
    p = np.asarray(proxy, dtype=np.float64)
    if p.size == 0:
        raise ValueError("top_tie_share needs at least one sample")
    return float(np.mean(p == p.max()))


def kl_curve(proxy_rows: Sequence[Sequence[float]], ns: Sequence[int]) -> dict:
    """Both KLs for each n in ``ns``: ``bound`` (the same for every prompt) and ``estimate`` (the mean over
    prompts of :func:`kl_estimate` at each prompt's ε̂ = :func:`top_tie_share`). Each list is aligned with ``ns``;
    ``methods`` says how each was made."""
    eps = [top_tie_share(r) for r in proxy_rows]
    return {
        "ns": [int(n) for n in ns],
        "bound": [kl_bound(int(n)) for n in ns],
        "estimate": [float(np.mean([kl_estimate(int(n), e) for e in eps])) for n in ns],
        "mean_top_tie_share": float(np.mean(eps)),
        "methods": dict(KL_METHODS),
    }
