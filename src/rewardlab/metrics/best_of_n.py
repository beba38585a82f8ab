"""Best-of-N: accuracy on fixed candidates (does the gold candidate get the highest reward among N?) and the
unbiased best-of-n estimator of proxy and gold reward over one batch of N samples per prompt."""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

from rewardlab.core.atomic import json_safe
from rewardlab.metrics.pairs import validated_rows
from rewardlab.metrics.statistics import bootstrap_ci
from rewardlab.metrics.ties import TiePolicy, beat_all_credit


def best_of_n_credits(
    scores: Sequence[Sequence[float]], gold: Sequence[int], tie_policy: TiePolicy | str = "strict", seed: int = 0
) -> np.ndarray:
    """Per prompt, the credit for "the gold candidate gets the highest reward" (:func:`beat_all_credit`
    of the gold reward against all the others; a tie at the top is scored by ``tie_policy``)."""
    policy = TiePolicy.parse(tie_policy, seed=seed).resolve("strict")
    rows = validated_rows(scores, gold)
    rng = policy.rng()
    return np.asarray(
        [beat_all_credit([r[int(g)]], np.delete(r, int(g)), policy, rng) for r, g in zip(rows, gold)], dtype=np.float64
    )


def best_of_n(
    scores: Sequence[Sequence[float]],
    gold: Sequence[int],
    tie_policy: TiePolicy | str = "strict",
    seed: int = 0,
    n_boot: int = 1000,
) -> dict:
    """Best-of-N accuracy: prompts with N candidates each (N may vary) and the index of the gold one.

    ``record_accuracy`` (record-level: one credit per prompt, not per pair) = mean over prompts of the credit
    for the gold candidate being the unique top reward
    (:func:`best_of_n_credits`; a tie at the top by ``tie_policy``: ``strict`` 0, ``half`` ½,
    ``fractional`` 1/k for k tied, ``random`` a seeded draw). ``random_baseline`` = mean of 1/N, the
    accuracy of picking a candidate uniformly at random (a constant scorer under ``fractional`` scores
    exactly this). ``by_n`` splits both by N. ``ties_at_top`` counts prompts whose gold reward is tied
    for the maximum. ``ci95``: bootstrap over prompts (``n_boot`` resamples, ``seed``).
    """
    policy = TiePolicy.parse(tie_policy, seed=seed).resolve("strict")
    rows = validated_rows(scores, gold)
    if not rows:
        raise ValueError("best_of_n needs at least one prompt")
    credit = best_of_n_credits(rows, gold, policy)
    sizes = np.asarray([r.size for r in rows])
    tied = np.asarray([r[int(g)] == r.max() and np.sum(r == r.max()) > 1 for r, g in zip(rows, gold)])
    by_n = {}
    for n in sorted(set(sizes.tolist())):
        mask = sizes == n
        by_n[str(n)] = {
            "n_prompts": int(mask.sum()),
            "record_accuracy": float(credit[mask].mean()),
            "random_baseline": 1.0 / n,
        }
    ci = list(bootstrap_ci(credit, n=n_boot, seed=seed)) if n_boot > 0 else None
    return json_safe(
        {
            "n_prompts": len(rows),
            "record_accuracy": float(credit.mean()),
            "ci95": ci,
            "random_baseline": float(np.mean(1.0 / sizes)),
            "ties_at_top": int(tied.sum()),
            "by_n": by_n,
            "tie_policy": str(policy),
        }
    )


# ------------------------------------------------------------------------------------------------
# The unbiased best-of-n estimator over one batch of N samples per prompt (proxy and gold rewards)

ESTIMATOR = (
    "unbiased best-of-n from one batch of N samples per prompt: samples sorted by proxy ascending, "
    "E[best of n] = sum_i C(i-1, n-1)/C(N, n) * value_(i) (n drawn without replacement); proxy ties broken "
    "uniformly at random in expectation (gold averaged over each tied block)"
)


def order_statistic_weights(N: int, n: int) -> np.ndarray:
    """``w[i-1] = C(i−1, n−1) / C(N, n)``, i = 1 … N: the probability that the sample of rank i (ascending) is
    the largest of n drawn without replacement from N. Shape ``(N,)``, sums to 1; ``w[i-1] = 0`` for i < n.

    Built without binomials: ``w[N-1] = n/N`` and ``w[i-2] = w[i-1]·(i−n)/(i−1)``; e.g. N = 4, n = 2:
    ``[0, 1/6, 2/6, 3/6]`` (C(1,1)/6, C(2,1)/6, C(3,1)/6).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got n={n}")
    if n > N:
        raise ValueError(f"best-of-n needs n <= N: n={n} but only N={N} samples")
    return _weights(N, n).copy()


@functools.lru_cache(maxsize=4096)
def _weights(N: int, n: int) -> np.ndarray:
    i = np.arange(N, n, -1, dtype=np.float64)  # i = N … n+1 (1-based ranks)
    tail = (n / N) * np.concatenate([[1.0], np.cumprod((i - n) / (i - 1))])  # w[N-1], w[N-2], …, w[n-1]
    w = np.zeros(N, dtype=np.float64)
    w[n - 1 :] = tail[::-1]
    return w


@functools.lru_cache(maxsize=256)
def _weight_matrix(N: int, ns: tuple[int, ...]) -> np.ndarray:
    """Shape ``(len(ns), N)``: :func:`order_statistic_weights` for each n."""
    return np.stack([_weights(N, n) for n in ns])


def _sorted_with_tied_gold(proxy: Sequence[float], gold: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Proxy sorted ascending and the gold *aligned with it* (sorted by the same permutation), with the gold of
    every block of tied proxy values replaced by the block's mean. Shapes ``(N,)``, ``(N,)``."""
    p = np.asarray(proxy, dtype=np.float64).reshape(-1)
    g = np.asarray(gold, dtype=np.float64).reshape(-1)
    if p.shape != g.shape:
        raise ValueError(f"{p.size} proxy scores but {g.size} gold scores")
    if p.size == 0:
        raise ValueError("best-of-n needs at least one sample")
    for name, v in (("proxy", p), ("gold", g)):
        bad = np.flatnonzero(~np.isfinite(v))
        if bad.size:
            raise ValueError(f"non-finite {name} score {v[bad[0]]} at sample {int(bad[0])}")
    order = np.argsort(p, kind="stable")
    p, g = p[order], g[order]
    if np.any(p[1:] == p[:-1]):  # tied blocks: each gets its mean gold
        _, start, counts = np.unique(p, return_index=True, return_counts=True)
        g = np.repeat(np.add.reduceat(g, start) / counts, counts)
    return p, g


def expected_best_of_n(proxy: Sequence[float], gold: Sequence[float], n: int) -> tuple[float, float]:
    """One prompt's N samples (proxy and gold reward of each, aligned): ``(E[proxy], E[gold])`` of the sample with
    the highest proxy among n drawn uniformly without replacement, exactly (no simulation).

    Sorted by proxy ascending, the sample of rank i is the best of the n with probability
    ``C(i−1, n−1)/C(N, n)`` (:func:`order_statistic_weights`). A proxy tie is broken uniformly at random in
    expectation: tied samples are exchangeable, so each gets the block's mean gold. A constant proxy therefore
    gives ``mean(gold)`` for every n; n = 1 gives the means, n = N the top sample.
    Worked: proxy [1, 3, 2], gold [10, 0, 5], n = 2 → sorted gold [10, 5, 0], weights [0, 1/3, 2/3]
    → E[gold] = 1/3·5 + 2/3·0 = 5/3, E[proxy] = 1/3·2 + 2/3·3 = 8/3.
    Raises ValueError when n > N (naming both) or a score is non-finite (naming the sample).
    """
    p, g = _sorted_with_tied_gold(proxy, gold)
    w = order_statistic_weights(p.size, n)
    return float(w @ p), float(w @ g)


def _prompt_curves(proxy: Sequence[float], gold: Sequence[float], ns: Sequence[int]) -> np.ndarray:
    """Shape ``(2, len(ns))``: E[proxy] and E[gold] of best-of-n for each n in ``ns`` for one prompt."""
    p, g = _sorted_with_tied_gold(proxy, gold)
    w = _weight_matrix(p.size, tuple(ns))  # (K, N)
    return np.stack([w @ p, w @ g])


def best_of_n_curve(
    proxy_rows: Sequence[Sequence[float]],
    gold_rows: Sequence[Sequence[float]],
    ns: Sequence[int] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict:
    """Best-of-n curves over prompts: ``proxy_rows[k]`` / ``gold_rows[k]`` are prompt k's N_k samples' rewards.

    For each n in ``ns`` (default 1 … min N_k), each prompt's exact expectation (:func:`expected_best_of_n`),
    then the mean over prompts (every prompt weighs the same). ``*_ci`` is the percentile bootstrap interval
    (level 1 − alpha) of that mean, resampling *prompts* with replacement (``n_boot`` resamples,
    ``np.random.default_rng(seed)``; the same resamples for every n and for proxy and gold); ``None`` when
    ``n_boot`` = 0. ``per_prompt`` keeps the exact per-prompt values, shape ``(prompts, len(ns))``.
    Raises ValueError when some prompt has fewer samples than the largest n (naming the prompt, n and N).
    """
    if len(proxy_rows) != len(gold_rows):
        raise ValueError(f"{len(proxy_rows)} proxy rows but {len(gold_rows)} gold rows")
    if len(proxy_rows) == 0:
        raise ValueError("best_of_n_curve needs at least one prompt")
    sizes = [len(r) for r in proxy_rows]
    ns = list(range(1, min(sizes) + 1)) if ns is None else [int(n) for n in ns]
    if not ns:
        raise ValueError("best_of_n_curve needs at least one n")
    if min(ns) < 1:
        raise ValueError(f"n must be >= 1, got n={min(ns)}")
    for k, size in enumerate(sizes):
        if max(ns) > size:
            raise ValueError(f"best-of-n needs n <= N: n={max(ns)} but prompt {k} has only N={size} samples")
    per = []
    for k, (p, g) in enumerate(zip(proxy_rows, gold_rows)):
        try:
            per.append(_prompt_curves(p, g, ns))
        except ValueError as e:
            raise ValueError(f"prompt {k}: {e}") from None
    per_prompt = np.stack(per)  # (P, 2, K)
    mean = per_prompt.mean(axis=0)
    out: dict = {
        "ns": ns,
        "n_prompts": len(per),
        "samples_per_prompt": {"min": min(sizes), "max": max(sizes)},
        "proxy": mean[0].tolist(),
        "gold": mean[1].tolist(),
        "proxy_ci": None,
        "gold_ci": None,
        "estimator": ESTIMATOR,
        "aggregation": "mean over prompts (each prompt weighs the same)",
        "interval": None,
        "per_prompt": {"proxy": per_prompt[:, 0].tolist(), "gold": per_prompt[:, 1].tolist()},
    }
    if n_boot > 0:
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        rng = np.random.default_rng(seed)
        m = per_prompt.shape[0]
        boots = np.empty((n_boot, 2, len(ns)), dtype=np.float64)
        for b in range(n_boot):
            boots[b] = per_prompt[rng.integers(0, m, size=m)].mean(axis=0)
        low, high = np.quantile(boots, [alpha / 2, 1 - alpha / 2], axis=0)  # (2, K) each
        out["proxy_ci"] = np.stack([low[0], high[0]], axis=1).tolist()
        out["gold_ci"] = np.stack([low[1], high[1]], axis=1).tolist()
        out["interval"] = f"percentile bootstrap over prompts, {n_boot} resamples, seed {seed}, level {1 - alpha:g}"
    return json_safe(out)
