"""Solution scores by a named aggregation (rewardlab.verifiers.aggregate), worked by hand."""

import doctest

import pytest

from rewardlab.verifiers import aggregate as A


def test_step_aggregations_worked_by_hand():
    """Steps [0.9, 0.5, 0.8]: min 0.5; prod 0.9·0.5·0.8 = 0.36; last 0.8; mean (0.9 + 0.5 + 0.8) / 3 = 2.2 / 3."""
    steps = [0.9, 0.5, 0.8]
    assert A.aggregate("min", steps, []) == 0.5
    assert A.aggregate("prod", steps, []) == pytest.approx(0.36)
    assert A.aggregate("last", steps, []) == 0.8
    assert A.aggregate("mean", steps, []) == pytest.approx(2.2 / 3)


def test_token_aggregations_worked_by_hand():
    """Tokens [0.1, 0.2, 0.6]: last_token 0.6; mean_last_2 = (0.2 + 0.6) / 2 = 0.4; mean_last_5 over a tail shorter than
    5 is the mean of all three, 0.9 / 3 = 0.3 (not a sum divided by 5)."""
    toks = [0.1, 0.2, 0.6]
    assert A.aggregate("last_token", [], toks) == 0.6
    assert A.aggregate("mean_last_2", [], toks) == pytest.approx(0.4)
    assert A.aggregate("mean_last_5", [], toks) == pytest.approx(0.3)


def test_unknown_and_empty_inputs_are_refused():
    with pytest.raises(ValueError, match="unknown aggregation 'median'"):
        A.aggregate("median", [0.5], [])
    with pytest.raises(ValueError, match="no step scores"):
        A.aggregate("min", [], [0.5])
    with pytest.raises(ValueError, match="no completion tokens"):
        A.aggregate("mean_last_2", [0.5], [])


def test_docstring_examples():
    assert doctest.testmod(A).failed == 0
