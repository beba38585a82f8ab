"""One solution score from step scores or token probabilities, by a named aggregation (recorded with every number).

Step aggregations (over the K step scores, each P(step correct) at its marker): ``min`` (Math-Shepherd), ``prod``
(Lightman et al.), ``last`` (search-and-learn's default), ``mean``. Token aggregations (over the completion's
per-token P(correct), for an ORM): ``last_token`` (the probability at the last step's marker, the last completion
token) and ``mean_last_<m>`` (the mean over the last m completion tokens, e.g. ``mean_last_8``).
"""

from __future__ import annotations

import math
import re
from typing import Sequence

STEP_AGGREGATIONS = {
    "min": min,
    "prod": lambda xs: math.prod(xs),
    "last": lambda xs: xs[-1],
    "mean": lambda xs: sum(xs) / len(xs),
}
_MEAN_LAST = re.compile(r"^mean_last_([1-9][0-9]*)$")


def check_aggregation(name: str) -> str:
    """``name`` when it is an aggregation; ValueError listing them otherwise."""
    if name in STEP_AGGREGATIONS or name == "last_token" or _MEAN_LAST.match(name):
        return name
    raise ValueError(
        f"unknown aggregation {name!r}: one of {', '.join(STEP_AGGREGATIONS)}, last_token, mean_last_<m> (e.g. mean_last_8)"
    )


def aggregate(name: str, step_scores: Sequence[float], token_probs: Sequence[float]) -> float:
    """The solution score under aggregation ``name``.

    >>> aggregate("min", [0.9, 0.5, 0.8], []), round(aggregate("prod", [0.9, 0.5, 0.8], []), 3)
    (0.5, 0.36)
    >>> aggregate("last", [0.9, 0.5, 0.8], []), round(aggregate("mean", [0.9, 0.5, 0.8], []), 4)
    (0.8, 0.7333)
    >>> aggregate("last_token", [], [0.1, 0.2, 0.6]), aggregate("mean_last_2", [], [0.1, 0.2, 0.6])
    (0.6, 0.4)
    """
    check_aggregation(name)
    if name in STEP_AGGREGATIONS:
        if not step_scores:
            raise ValueError("no step scores to aggregate (every step was cut off by max_length)")
        return float(STEP_AGGREGATIONS[name](list(step_scores)))
    if not token_probs:
        raise ValueError("no completion tokens to aggregate")
    if name == "last_token":
        return float(token_probs[-1])
    m = int(_MEAN_LAST.match(name).group(1))
    tail = list(token_probs)[-m:]
    return float(sum(tail) / len(tail))
