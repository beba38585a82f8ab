"""Tie policies: how a metric credits an exact tie between the rewards that decide an outcome."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

TIE_POLICIES = ("strict", "half", "fractional", "random", "published")


@dataclass(frozen=True)
class TiePolicy:
    """How a metric scores an exact tie between rewards that decide an outcome.

    Every rule here asks "do the correct responses score above the incorrect ones?". When the answer
    hangs on rewards that are exactly equal:

    * ``strict`` — the tie counts as a failure (credit 0). rewardlab's and RewardBench v1's convention.
    * ``half`` — the tie earns credit ½, however many responses share it.
    * ``fractional`` — the tie earns the probability that breaking it uniformly at random puts every
      correct response first: ``1/k`` when one correct response shares the top reward with ``k − 1``
      others (RewardBench 2's best-of-4 rule), ½ for a pair; in general ``1 / C(a + b, a)`` when ``a``
      correct and ``b`` incorrect responses share the deciding reward (:func:`beat_all_credit`).
    * ``random`` — break the tie with a seeded coin: credit 1 with that same probability, else 0
      (``np.random.default_rng(seed)``, drawn in example order, so a seed gives one fixed answer).
    * ``published`` — each benchmark's own published rule (e.g. strict for RewardBench v1,
      fractional for RewardBench 2's best-of-4); plain metrics resolve it to ``strict``.

    The expected value of ``random`` equals ``fractional``. ``str(policy)`` is what results record,
    e.g. ``"random(seed=3)"``.
    """

    name: str = "strict"
    seed: int = 0

    def __post_init__(self):
        if self.name not in TIE_POLICIES:
            raise ValueError(
                f"unknown tie policy {self.name!r}; choose one of {', '.join(TIE_POLICIES)} "
                "(random takes a seed: 'random:7')"
            )

    @classmethod
    def parse(cls, spec: "TiePolicy | str | None", seed: int = 0) -> "TiePolicy":
        """``"strict"``, ``"half"``, ``"fractional"``, ``"published"``, ``"random"`` (uses ``seed``)
        or ``"random:7"`` / ``"random(seed=7)"``; a :class:`TiePolicy` is returned as is; ``None`` →
        ``published``."""
        if isinstance(spec, TiePolicy):
            return spec
        if spec is None:
            return cls("published", seed)
        text = str(spec).strip().lower()
        for sep in (":", "(seed=", "@"):
            if sep in text:
                name, _, rest = text.partition(sep)
                try:
                    return cls(name.strip(), int(rest.rstrip(")").strip()))
                except ValueError as e:
                    raise ValueError(f"bad tie policy {spec!r}: expected e.g. 'random:7'") from e
        return cls(text, seed)

    def resolve(self, published: str) -> "TiePolicy":
        """This policy, or ``published`` (a policy name) when this one is ``published``."""
        return TiePolicy(published, self.seed) if self.name == "published" else self

    def rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)

    def __str__(self) -> str:
        return f"random(seed={self.seed})" if self.name == "random" else self.name


def tie_credit(policy: TiePolicy, p_fair: float, rng: np.random.Generator | None) -> float:
    """Credit for a tie whose fair (random tie-break) success probability is ``p_fair``."""
    if policy.name == "strict":
        return 0.0
    if policy.name == "half":
        return 0.5
    if policy.name == "fractional":
        return float(p_fair)
    if policy.name == "random":
        if rng is None:
            raise ValueError("the random tie policy needs an rng (policy.rng())")
        return float(rng.random() < p_fair)
    raise ValueError(f"tie policy {policy.name!r} must be resolved first (TiePolicy.resolve)")


def beat_all_credit(
    correct: Sequence[float],
    incorrect: Sequence[float],
    policy: TiePolicy | str = "strict",
    rng: np.random.Generator | None = None,
) -> float:
    """Credit in [0, 1] for "every correct response scores strictly above every incorrect one".

    ``m = min(correct) − max(incorrect)``: ``m > 0`` → 1, ``m < 0`` → 0. At ``m = 0``, ``a`` correct
    responses sit at ``min(correct)`` and ``b`` incorrect ones at ``max(incorrect)``; a uniformly random
    order of those ``a + b`` puts all the correct ones first with probability ``1 / C(a + b, a)``
    (``1/k`` for one correct response tied with ``k − 1`` others; ½ for a pair), and the tie policy
    turns that into credit (:class:`TiePolicy`).
    """
    policy = TiePolicy.parse(policy).resolve("strict")
    c = np.asarray(correct, dtype=np.float64).reshape(-1)
    w = np.asarray(incorrect, dtype=np.float64).reshape(-1)
    if c.size == 0 or w.size == 0:
        raise ValueError("beat_all_credit needs at least one correct and one incorrect reward")
    lo, hi = c.min(), w.max()
    if lo > hi:
        return 1.0
    if lo < hi:
        return 0.0
    a, b = int(np.sum(c == lo)), int(np.sum(w == hi))
    return tie_credit(policy, 1.0 / math.comb(a + b, a), rng)


def compare_credit(
    x: float, y: float, policy: TiePolicy | str = "strict", rng: np.random.Generator | None = None
) -> float:
    """Credit for ``x > y``: 1 if greater, 0 if smaller, a tie by the policy (fair probability ½)."""
    policy = TiePolicy.parse(policy).resolve("strict")
    if x > y:
        return 1.0
    if x < y:
        return 0.0
    return tie_credit(policy, 0.5, rng)


def pair_credits(
    r_chosen, r_other, policy: TiePolicy | str = "strict", rng: np.random.Generator | None = None
) -> np.ndarray:
    """Vectorised :func:`compare_credit` over pairs: 1 win, 0 loss, a tie by the policy.

    ``random`` draws one coin per tie, in pair order, from ``rng`` (default ``policy.rng()``).
    """
    policy = TiePolicy.parse(policy).resolve("strict")
    r_w = np.asarray(r_chosen, dtype=np.float64).reshape(-1)
    r_l = np.asarray(r_other, dtype=np.float64).reshape(-1)
    credit = (r_w > r_l).astype(np.float64)
    ties = r_w == r_l
    if ties.any():
        if policy.name == "random":
            rng = rng if rng is not None else policy.rng()
            credit[ties] = (rng.random(int(ties.sum())) < 0.5).astype(np.float64)
        else:
            credit[ties] = tie_credit(policy, 0.5, None)
    return credit
