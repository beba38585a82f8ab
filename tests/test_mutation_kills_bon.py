"""Behaviour tests for the lines the mutation run (scripts/mutate.py) found unguarded in the best-of-N modules."""

import numpy as np
import pytest

from rewardlab.bon.ensemble import combine
from rewardlab.metrics.best_of_n import best_of_n, best_of_n_curve


def test_ties_at_top_counts_a_gold_tied_for_the_maximum_only():
    """Known answer: [1, 1, 0] with gold 0 is tied at the top (1 prompt); [0, 0, 1] with gold 0 is tied, but at the
    bottom (not counted); [2, 1, 0] is untied. ties_at_top = 1."""
    out = best_of_n([[1, 1, 0], [0, 0, 1], [2, 1, 0]], [0, 0, 0], n_boot=0)
    assert out["ties_at_top"] == 1


def test_random_baseline_per_n_is_one_over_n():
    """Two prompts with 4 candidates and one with 2: by_n's random baseline is 1/4 and 1/2; overall mean(1/N) = 1/3."""
    out = best_of_n([[3, 2, 1, 0], [0, 1, 2, 3], [1, 0]], [0, 3, 0], n_boot=0)
    assert out["by_n"]["4"]["random_baseline"] == 0.25 and out["by_n"]["2"]["random_baseline"] == 0.5
    assert out["random_baseline"] == pytest.approx(1 / 3)


def test_a_single_bootstrap_resample_still_gives_an_interval():
    """n_boot = 1 is a (degenerate) bootstrap: the interval is reported (None only for n_boot = 0)."""
    curve = best_of_n_curve([[0.1, 0.5], [0.3, 0.2]], [[0, 1], [1, 0]], n_boot=1)
    assert curve["gold_ci"] is not None and curve["proxy_ci"] is not None
    assert best_of_n_curve([[0.1, 0.5]], [[0, 1]], n_boot=0)["gold_ci"] is None


def test_ensemble_scores_must_be_members_by_samples():
    """A flat vector is not an ensemble: refused with the shape, not read as one member."""
    with pytest.raises(ValueError, match=r"shape \(members, samples\)"):
        combine(np.array([1.0, 2.0, 3.0]), "mean")
