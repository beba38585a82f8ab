"""Normalisation and whitening statistics, checked where they are written and where they are read.

A reward is normalised as ``(r − mean) / std``. The statistics come from scored texts (``rewardlab normalize``, the
trainer's held-out split, ``compose --reference-data``) and are stored in ``rewardlab.json``; both sides go through
:func:`stats_problem`, so statistics that would reverse (``std < 0``), blow up (``std`` ≈ 0) or silently skip
(``std`` 0, ∞, NaN; a NaN ``mean``) the normalisation are refused, naming the file and the field, instead of
answering ``"normalized": true`` with raw, reversed or ``null`` rewards.

The floor: ``std`` must exceed :data:`REL_FLOOR` × the scores' magnitude (at least :data:`ABS_FLOOR`). Scores are
computed in float32 (about 7 significant digits), so a spread below a millionth of their size is rounding noise of
identical texts, not a spread of rewards: dividing by it multiplies that noise by a million (5 identical rows gave
std 6e-9 and scores near −1.9e6).
"""

from __future__ import annotations

import math

from rewardlab.core.errors import ModelContractError, RewardlabError

REL_FLOOR = 1e-6
ABS_FLOOR = 1e-6


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def stats_problem(mean, std, n=None, scale: float | None = None) -> str | None:
    """What is wrong with ``(mean, std, n)`` as normalisation statistics, or None. ``scale``: the magnitude of the
    scores they describe (max |r|; default |mean|). ``n`` None: not recorded (whitening statistics)."""
    if not _number(mean) or not math.isfinite(mean):
        return f"mean must be a finite number, got {mean!r}"
    if not _number(std) or not math.isfinite(std):
        return f"std must be a finite number, got {std!r}"
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 2):
        return f"n must be a whole number ≥ 2 (a spread needs two scores), got {n!r}"
    floor = max(ABS_FLOOR, REL_FLOOR * max(abs(mean), abs(scale or 0.0)))
    if std <= floor:
        if std < 0:
            return f"std {std!r} is negative: it would reverse every ranking"
        return f"std {std!r} is at or below the floor {floor:.3g}: the scores are constant up to rounding"
    return None


def measured(rewards: list[float], what: str) -> dict:
    """``{"mean", "std", "n"}`` of ``rewards`` (population std), refused with :class:`RewardlabError` naming
    ``what`` when they cannot normalise (fewer than two, non-finite, or constant up to rounding)."""
    n = len(rewards)
    if n == 0:
        raise RewardlabError(f"{what}: no scores to compute statistics from")
    if not all(math.isfinite(r) for r in rewards):
        raise RewardlabError(f"{what}: a score is not finite; no statistics are written")
    mean = math.fsum(rewards) / n
    std = math.sqrt(math.fsum((r - mean) ** 2 for r in rewards) / n)
    problem = stats_problem(mean, std, n, scale=max(abs(r) for r in rewards))
    if problem is not None:
        raise RewardlabError(f"{what}: cannot normalise with these {n} scores: {problem}")
    return {"mean": mean, "std": std, "n": n}


def checked_normalization(stats, source: str) -> dict:
    """``stats`` (a ``normalization`` record read from ``source``) when it can normalise; else
    :class:`ModelContractError` naming ``source: normalization.<field>``."""
    if stats is None:
        raise ModelContractError(
            f"{source}: this model has no normalisation statistics (rewardlab.json 'normalization'; "
            "run `rewardlab normalize --model DIR --data samples.jsonl`)"
        )
    if not isinstance(stats, dict):
        raise ModelContractError(f"{source}: normalization must be an object {{mean, std, n}}, got {stats!r}")
    problem = stats_problem(stats.get("mean"), stats.get("std"), stats.get("n"))
    if problem is not None:
        field = problem.split(" ", 1)[0]
        raise ModelContractError(f"{source}: normalization.{field}: {problem}")
    return stats


def normalize_with(stats, rewards: list, source: str = "rewardlab.json") -> list:
    """``(r − mean) / std`` with checked statistics; in rows ``[score, part, …]`` (a multi-objective server row)
    only the score changes."""
    stats = checked_normalization(stats, source)
    mean, std = stats["mean"], stats["std"]
    return [[(r[0] - mean) / std, *r[1:]] if isinstance(r, (list, tuple)) else (r - mean) / std for r in rewards]


def whitening_problem(mean, std) -> str | None:
    """What is wrong with a Llama 2 rule's whitening (``whiten_mean``/``whiten_std``), or None (both None: none)."""
    if mean is None and std is None:
        return None
    problem = stats_problem(mean, std)
    return None if problem is None else "whiten_" + problem
