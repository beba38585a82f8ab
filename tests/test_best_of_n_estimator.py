"""The unbiased best-of-n estimator (rewardlab.metrics.best_of_n.expected_best_of_n / best_of_n_curve):
hand-worked numbers, brute force over every n-subset, ties, alignment, and the synthetic over-optimization shape."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest
from scipy import integrate, stats

from rewardlab.metrics.best_of_n import best_of_n_curve, expected_best_of_n, order_statistic_weights


def brute_force(proxy, gold, n):
    """E over all C(N, n) subsets (equally likely) of (proxy, gold) of the subset's proxy-argmax, a tie at the top
    broken uniformly: the tied samples' gold averaged. Exact rationals."""
    subsets = list(itertools.combinations(range(len(proxy)), n))
    ep, eg = Fraction(0), Fraction(0)
    for s in subsets:
        top = max(proxy[i] for i in s)
        tied = [i for i in s if proxy[i] == top]
        ep += Fraction(top)
        eg += sum(Fraction(gold[i]) for i in tied) / len(tied)
    return ep / len(subsets), eg / len(subsets)


def test_weights_worked():
    """N = 4, n = 2: C(4,2) = 6; rank i is the max with C(i−1, 1)/6 → [0, 1/6, 2/6, 3/6]."""
    assert order_statistic_weights(4, 2) == pytest.approx([0, 1 / 6, 2 / 6, 3 / 6], abs=1e-15)
    assert order_statistic_weights(5, 1) == pytest.approx([0.2] * 5, abs=1e-15)
    assert order_statistic_weights(5, 5) == pytest.approx([0, 0, 0, 0, 1], abs=1e-15)
    assert order_statistic_weights(200, 64).sum() == pytest.approx(1.0, abs=1e-12)


def test_worked_example():
    """proxy [1, 3, 2], gold [10, 0, 5], n = 2. Subsets {0,1}: top proxy 3 (gold 0); {0,2}: 2 (gold 5);
    {1,2}: 3 (gold 0) → E[proxy] = (3 + 2 + 3)/3 = 8/3, E[gold] = 5/3. Gold must follow its own sample
    when the samples are sorted: reading gold in file order would give 1/3·0 + 2/3·5 = 10/3."""
    p, g = expected_best_of_n([1, 3, 2], [10, 0, 5], 2)
    assert p == pytest.approx(8 / 3, abs=1e-14)
    assert g == pytest.approx(5 / 3, abs=1e-14)


@pytest.mark.parametrize("seed", range(6))
def test_matches_brute_force_on_every_n_with_ties(seed):
    """Small N, integer proxies drawn from a small range (so ties are common), every n = 1 … N: equal to the
    exact rational brute force over all n-subsets to 1e-12."""
    rng = np.random.default_rng(seed)
    for N in range(1, 8):
        proxy = rng.integers(0, 3, size=N).tolist()
        gold = rng.integers(-5, 6, size=N).tolist()
        for n in range(1, N + 1):
            bp, bg = brute_force(proxy, gold, n)
            p, g = expected_best_of_n(proxy, gold, n)
            assert p == pytest.approx(float(bp), abs=1e-12), (proxy, gold, n)
            assert g == pytest.approx(float(bg), abs=1e-12), (proxy, gold, n)


def test_tie_block_gets_its_mean_gold():
    """proxy [0, 1, 1], gold [9, 3, 6], n = 2: subsets {0,1} → 3, {0,2} → 6, {1,2} tie → (3+6)/2 = 4.5;
    E[gold] = (3 + 6 + 4.5)/3 = 4.5. Without the tie rule (stable sort, last one wins) it would be (3+6+6)/3 = 5."""
    assert expected_best_of_n([0, 1, 1], [9, 3, 6], 2)[1] == pytest.approx(4.5, abs=1e-14)


def test_constant_proxy_gives_mean_gold_for_every_n():
    gold = [3.0, -1.0, 4.0, 1.0, 5.0]
    for n in range(1, 6):
        assert expected_best_of_n([7.0] * 5, gold, n) == pytest.approx((7.0, 12.0 / 5), abs=1e-14)


def test_invariant_to_sample_order():
    """Shuffling the samples (proxy and gold together) changes nothing: gold stays aligned after sorting."""
    rng = np.random.default_rng(1)
    proxy, gold = rng.normal(size=20), rng.normal(size=20)
    perm = rng.permutation(20)
    for n in (1, 3, 20):
        assert expected_best_of_n(proxy[perm], gold[perm], n) == pytest.approx(expected_best_of_n(proxy, gold, n))


def test_refusals():
    with pytest.raises(ValueError, match=r"n=5 but only N=4"):
        expected_best_of_n([1, 2, 3, 4], [1, 2, 3, 4], 5)
    with pytest.raises(ValueError, match=r"n must be >= 1"):
        expected_best_of_n([1], [1], 0)
    with pytest.raises(ValueError, match=r"non-finite gold score nan at sample 1"):
        expected_best_of_n([1, 2], [0, float("nan")], 1)
    with pytest.raises(ValueError, match=r"2 proxy scores but 3 gold"):
        expected_best_of_n([1, 2], [0, 1, 2], 1)
    with pytest.raises(ValueError, match=r"n=4 but prompt 1 has only N=3"):
        best_of_n_curve([[1, 2, 3, 4], [1, 2, 3]], [[1, 2, 3, 4], [1, 2, 3]], [1, 4])
    with pytest.raises(ValueError, match=r"prompt 0: non-finite proxy score inf at sample 0"):
        best_of_n_curve([[float("inf"), 2]], [[1, 2]], [1])


def test_curve_mean_over_prompts_and_bootstrap():
    """Two prompts. Prompt 0: proxy [1, 3, 2], gold [10, 0, 5]: n=1 → (2, 5), n=2 → (8/3, 5/3).
    Prompt 1: proxy [0, 0, 1], gold [0, 0, 3]: n=1 → (1/3, 1), n=2 → weights [0, 1/3, 2/3] → (2/3, 2).
    Means: n=1 → (7/6, 3), n=2 → (5/3, 11/6). The bootstrap interval contains the mean and lies within the
    two prompts' values."""
    out = best_of_n_curve([[1, 3, 2], [0, 0, 1]], [[10, 0, 5], [0, 0, 3]], [1, 2], n_boot=200, seed=3)
    assert out["ns"] == [1, 2]
    assert out["proxy"] == pytest.approx([7 / 6, 5 / 3])
    assert out["gold"] == pytest.approx([3.0, 11 / 6])
    np.testing.assert_allclose(out["per_prompt"]["gold"], [[5, 5 / 3], [1, 2]], atol=1e-14)
    lo, hi = out["gold_ci"][0]
    assert 1 <= lo <= 3 <= hi <= 5
    assert "bootstrap over prompts, 200 resamples, seed 3" in out["interval"]
    assert "C(i-1, n-1)/C(N, n)" in out["estimator"]
    default = best_of_n_curve([[1, 3, 2], [0, 0, 1]], [[10, 0, 5], [0, 0, 3]], n_boot=0)
    assert default["ns"] == [1, 2, 3] and default["gold_ci"] is None


def analytic_synthetic(c: float, n: int) -> tuple[float, float]:
    """proxy s = g + h, gold = g − c·h², g, h ~ N(0,1). s ~ N(0, 2) and, given s, g and h are each N(s/2, 1/2),
    so E[gold | s] = s/2 − c(s²/4 + 1/2). Best of n i.i.d. by proxy: s = √2·Z₍ₙ₎ (the max of n standard
    normals), so E[proxy] = √2·m₁ and E[gold] = m₁/√2 − c(m₂/2 + 1/2), mᵏ = E[Z₍ₙ₎ᵏ] by quadrature."""

    def moment(k):
        return integrate.quad(lambda z: z**k * n * stats.norm.pdf(z) * stats.norm.cdf(z) ** (n - 1), -12, 12)[0]

    m1, m2 = moment(1), moment(2)
    return np.sqrt(2) * m1, m1 / np.sqrt(2) - c * (m2 / 2 + 0.5)


def test_synthetic_overoptimization_shape():
    """proxy = g + h, gold = g − 0.5·h² (seeded), 2000 prompts × N = 64 samples, n = 1, 2, 4, …, 64.

    Measured (seed 0): gold −0.501, −0.101, 0.091, 0.159, 0.152, 0.103, 0.051; proxy 0.00, 0.80, 1.46, 2.02,
    2.51, 2.94, 3.33 (the n = 64 gold interval is [−0.036, 0.133]: one sample per prompt, the widest). Analytic (quadrature, :func:`analytic_synthetic`): gold −0.500, −0.101, 0.090, 0.157,
    0.145, 0.082, −0.017. The notes quote −0.50, −0.10, 0.10, 0.17, 0.16, 0.10, 0.01 (same shape, peak at
    n = 8–16; within 0.05 of ours at every n). Gold rises then falls, proxy rises at every step, and the
    analytic value lies inside every 95% bootstrap interval.
    """
    rng = np.random.default_rng(0)
    g, h = rng.normal(size=(2, 2000, 64))
    ns = [1, 2, 4, 8, 16, 32, 64]
    out = best_of_n_curve(g + h, g - 0.5 * h**2, ns, n_boot=300, seed=0)
    gold, proxy = np.asarray(out["gold"]), np.asarray(out["proxy"])
    assert np.all(np.diff(proxy) > 0)
    peak = int(np.argmax(gold))
    assert ns[peak] in (8, 16)
    assert np.all(np.diff(gold[: peak + 1]) > 0) and np.all(np.diff(gold[peak:]) < 0)
    assert gold[-1] < gold[peak] - 0.1 * (gold[peak] - gold[0])
    notes = [-0.50, -0.10, 0.10, 0.17, 0.16, 0.10, 0.01]
    assert gold == pytest.approx(notes, abs=0.05)
    for k, n in enumerate(ns):
        ap, ag = analytic_synthetic(0.5, n)
        lo, hi = out["gold_ci"][k]
        assert lo <= ag <= hi, (n, ag, out["gold_ci"][k])
        lo, hi = out["proxy_ci"][k]
        assert lo <= ap <= hi, (n, ap, out["proxy_ci"][k])
