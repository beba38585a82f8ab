"""KL of best-of-n, the Gao fit and proxy ensembles (rewardlab.bon.kl / .gao / .ensemble): hand-worked numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardlab.bon.ensemble import combine, describe, standardize_members
from rewardlab.bon.gao import fit_gao, gao_analysis, n_at_kl, peak
from rewardlab.bon.kl import kl_bound, kl_curve, kl_discrete, kl_estimate, top_tie_share
from rewardlab.metrics.best_of_n import best_of_n_curve, expected_best_of_n

# ------------------------------------------------------------------------------------------------ KL


def test_kl_bound_values():
    """log n − (n−1)/n: n=1 → 0; n=2 → 0.693147 − 0.5 = 0.193147; n=4 → 1.386294 − 0.75 = 0.636294;
    n=64 → 4.158883 − 0.984375 = 3.174508."""
    assert kl_bound(1) == 0.0
    assert kl_bound(2) == pytest.approx(0.193147, abs=1e-6)
    assert kl_bound(4) == pytest.approx(0.636294, abs=1e-6)
    assert kl_bound(64) == pytest.approx(3.174508, abs=1e-6)
    with pytest.raises(ValueError, match="n must be >= 1"):
        kl_bound(0)


def test_kl_discrete_worked():
    """Two equally likely reward levels, n = 2: P_2(low) = (1/2)² = 1/4, P_2(high) = 1 − 1/4 = 3/4;
    KL = ¼·log(¼/½) + ¾·log(¾/½) = −0.173287 + 0.304099 = 0.130812 (below the bound 0.193147)."""
    assert kl_discrete([0.5, 0.5], 2) == pytest.approx(0.130812, abs=1e-6)
    assert kl_discrete([1.0], 5) == 0.0
    with pytest.raises(ValueError):
        kl_discrete([0.5, 0.4], 2)


def test_many_distinct_levels_approach_the_bound():
    """No ties (M equally likely distinct rewards, M large): the exact KL tends to log n − (n−1)/n."""
    for n in (2, 8, 32):
        assert kl_discrete(np.full(20000, 1 / 20000), n) == pytest.approx(kl_bound(n), abs=2e-3)


@pytest.mark.parametrize("eps", [0.01, 0.1, 0.3, 0.7])
@pytest.mark.parametrize("n", [1, 2, 8, 64])
def test_kl_estimate_is_exact_for_one_top_atom(eps, n):
    """A base sampler whose top reward has mass ε and whose other rewards are (a fine grid of) distinct levels:
    :func:`kl_discrete` on 20,000 lower levels plus the atom matches the closed form; it never exceeds the bound."""
    masses = np.concatenate([np.full(20000, (1 - eps) / 20000), [eps]])
    assert kl_estimate(n, eps) == pytest.approx(kl_discrete(masses, n), abs=3e-3)
    assert kl_estimate(n, eps) <= kl_bound(n) + 1e-12


def test_kl_estimate_limits():
    assert kl_estimate(16, 1e-12) == pytest.approx(kl_bound(16), abs=1e-9)
    assert kl_estimate(16, 1.0) == 0.0
    assert kl_estimate(1, 0.4) == pytest.approx(0.0, abs=1e-15)
    with pytest.raises(ValueError, match="eps must be in"):
        kl_estimate(2, 0.0)


def test_kl_curve_tie_share():
    """Prompt A: proxy [1, 2, 3, 3] → 2 of 4 tie at the top, ε = 0.5; prompt B: [5, 1, 2, 0] → ε = 0.25.
    estimate(n=1) = 0; bound(2) = 0.193147."""
    assert top_tie_share([1, 2, 3, 3]) == 0.5
    out = kl_curve([[1, 2, 3, 3], [5, 1, 2, 0]], [1, 2])
    assert out["mean_top_tie_share"] == pytest.approx(0.375)
    assert out["bound"] == pytest.approx([0.0, 0.193147], abs=1e-6)
    assert out["estimate"][0] == pytest.approx(0.0, abs=1e-15)
    assert out["estimate"][1] == pytest.approx((kl_estimate(2, 0.5) + kl_estimate(2, 0.25)) / 2)
    assert "upper bound" in out["methods"]["bound"] and "eps" in out["methods"]["estimate"]


# ------------------------------------------------------------------------------------------------ Gao fit


def test_fit_gao_worked():
    """d = [1, 2], Δgold = [1, 0]: α − β = 1 and 2α − 4β = 0 → α = 2, β = 1; peak d* = 2/(2·1) = 1."""
    alpha, beta = fit_gao([1, 2], [1, 0])
    assert (alpha, beta) == pytest.approx((2.0, 1.0))
    assert peak(alpha, beta) == pytest.approx(1.0)
    assert peak(1.0, -0.1) is None and peak(-1.0, 0.5) is None
    with pytest.raises(ValueError, match="two distinct KL"):
        fit_gao([0, 1], [0, 1])


def test_fit_recovers_exact_form():
    d = np.linspace(0, 2, 9)
    alpha, beta = fit_gao(d, d * (0.5 - 0.1 * d))
    assert (alpha, beta) == pytest.approx((0.5, 0.1))


def test_n_at_kl_interpolates_in_log_n():
    """ns [1, 2, 4], KL [0, 0.2, 0.6]: KL 0.4 is halfway from n=2 to n=4 → log n = (log 2 + log 4)/2 → n = √8."""
    assert n_at_kl(0.4, [1, 2, 4], [0, 0.2, 0.6]) == pytest.approx(math.sqrt(8))
    assert n_at_kl(0.6, [1, 2, 4], [0, 0.2, 0.6]) == pytest.approx(4.0)
    assert n_at_kl(0.7, [1, 2, 4], [0, 0.2, 0.6]) is None


def test_gao_analysis_on_the_synthetic_case():
    """proxy = g + h, gold = g − 0.5·h², 500 prompts × N = 64, bound KL: the fit peaks inside the range,
    near the observed peak (n = 8), and the interval covers it. Measured (seed 0): α = 1.213, β = 0.575,
    d* = 1.054, KL* = 1.112 nats, n* = 7.14, 95% interval [5.7, 9.2] (200 resamples), every resample peaked
    inside the measured range."""
    rng = np.random.default_rng(0)
    g, h = rng.normal(size=(2, 500, 64))
    ns = [1, 2, 4, 8, 16, 32, 64]
    curve = best_of_n_curve(g + h, g - 0.5 * h**2, ns, n_boot=0)
    out = gao_analysis(np.asarray(curve["per_prompt"]["gold"]), ns, [kl_bound(n) for n in ns], n_boot=200)
    assert out["beta"] > 0 and out["alpha"] > 0
    assert 4 <= out["n_star"] <= 16
    assert out["alpha"] == pytest.approx(1.213, abs=1e-3) and out["beta"] == pytest.approx(0.575, abs=1e-3)
    lo, hi = out["n_star_ci"]
    assert lo <= out["n_star"] <= hi
    assert out["observed_peak_n"] == 8
    assert out["inside_share"] == 1.0
    assert out["shape"].startswith("rises then falls")
    assert out["kl_star"] == pytest.approx(out["d_star"] ** 2)
    with pytest.raises(ValueError, match="must start at 1"):
        gao_analysis(np.zeros((2, 2)), [2, 4], [0.1, 0.6])


def test_gao_no_peak_when_gold_keeps_rising():
    """Gold = proxy (no over-optimization): β ≤ 0 or the peak lies past the largest n."""
    rng = np.random.default_rng(1)
    s = rng.normal(size=(200, 16))
    ns = [1, 2, 4, 8, 16]
    curve = best_of_n_curve(s, s, ns, n_boot=0)
    out = gao_analysis(np.asarray(curve["per_prompt"]["gold"]), ns, [kl_bound(n) for n in ns], n_boot=50)
    assert out["n_star"] is None
    assert out["observed_peak_n"] == 16
    assert out["shape"].startswith(("keeps rising", "rises; peak past"))


# ------------------------------------------------------------------------------------------------ ensembles


def test_ensemble_objectives_worked():
    """Members [[1, 4], [3, 0]]: mean [2, 2]; min [1, 0]; variance ((1−2)² + (3−2)²)/2 = 1 and
    ((4−2)² + (0−2)²)/2 = 4, so uwo(λ = 0.5) = [2 − 0.5, 2 − 2] = [1.5, 0]."""
    s = [[1, 4], [3, 0]]
    assert combine(s, "mean").tolist() == [2.0, 2.0]
    assert combine(s, "min").tolist() == [1.0, 0.0]
    assert combine(s, "uwo", lam=0.5).tolist() == [1.5, 0.0]
    assert combine(s, "uwo", lam=0.0).tolist() == [2.0, 2.0]
    with pytest.raises(ValueError, match="unknown ensemble objective 'max'"):
        combine(s, "max")
    assert "lambda = 0.5" in describe("uwo", 0.5, True) and "standardized" in describe("uwo", 0.5, True)


def test_standardize_members():
    """Row [1, 3] → mean 2, sd 1 → [−1, 1]; row [10, 10, ...] constant → zeros; scaling a member changes nothing."""
    z = standardize_members([[1, 3], [10, 10]])
    assert z.tolist() == [[-1.0, 1.0], [0.0, 0.0]]
    s = np.array([[5.0, 1.0, 4.0], [0.0, 2.0, 3.0]])
    scaled = s * np.array([[100.0], [0.01]]) + np.array([[7.0], [-3.0]])
    np.testing.assert_allclose(combine(scaled, "min", standardize=True), combine(s, "min", standardize=True))


def test_ensemble_keeps_gold_aligned():
    """Members [[5, 1, 4], [0, 2, 3]], gold [10, 20, 30]. min = [0, 1, 3] → sorted: s0, s1, s2 (gold 10, 20, 30);
    N = 3, n = 2 weights [0, 1/3, 2/3] → E[gold] = 20/3 + 60/3 = 80/3 ≈ 26.667. Gold left in member 0's order
    (s1, s2, s0: gold 20, 30, 10) would give 30/3 + 20/3 = 16.667. Shuffling the samples changes nothing."""
    members = np.array([[5.0, 1.0, 4.0], [0.0, 2.0, 3.0]])
    gold = np.array([10.0, 20.0, 30.0])
    assert expected_best_of_n(combine(members, "min"), gold, 2)[1] == pytest.approx(80 / 3)
    for perm in ([2, 0, 1], [1, 2, 0]):
        assert expected_best_of_n(combine(members[:, perm], "min"), gold[perm], 2)[1] == pytest.approx(80 / 3)
