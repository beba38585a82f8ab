"""Position bias: which orders a pair is shown in, and how per-order verdicts become one.

A pair is two responses ``(i, j)`` of one record. The judge sees them as "A" and "B"; *order* ``AB`` shows
``i`` as A, order ``BA`` (swapped) shows ``j`` as A. Each order gives an :class:`OrderResult`: the raw output,
the parsed verdict (``"A"``, ``"B"``, ``"tie"`` or ``None`` = unparseable) and ``p_a``, the probability that
A is better (1 / 0 / ½ for a generated verdict; the softmax over the A and B verdict tokens in
token-probability mode).

Position modes (:data:`POSITION_MODES`):

* ``single`` — order AB only (``i`` first). Biased; for comparison.
* ``random_swap`` — one order per pair, swapped by a seeded coin (sha256 of seed and pair key, so the
  choice does not depend on batching or on which other records are in the run).
* ``both`` — both orders with MT-Bench's consistency rule: the verdict stands only if both orders agree;
  disagreement ⇒ tie. An unparseable order makes the pair unparseable (counted; its reward is the tie ½).
* ``average`` — both orders, probabilities averaged: ``p(i) = mean(p_a(AB), 1 − p_a(BA))`` over the orders
  that parsed (the token-probability mode's "averaged over orders").

Every mode keeps the per-order results in the output. :func:`position_summary` reports the
*position-consistency rate* (how often the verdict survives swapping A and B, among pairs whose two orders
both parsed) and the rate at which position A is picked.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

from rewardlab.core.errors import RewardlabError

POSITION_MODES = ("single", "random_swap", "both", "average")


def check_mode(mode: str) -> str:
    if mode not in POSITION_MODES:
        raise RewardlabError(f"unknown position mode {mode!r}; choose one of {', '.join(POSITION_MODES)}")
    return mode


def swap_coin(seed: int, key: str) -> bool:
    digest = hashlib.sha256(f"{seed}\0{key}".encode("utf-8")).digest()
    return bool(digest[0] & 1)


def orders_for(mode: str, seed: int = 0, key: str = "") -> list[bool]:
    """The orders to show a pair in, as ``swapped`` flags: ``[False]``, ``[coin]`` or ``[False, True]``."""
    check_mode(mode)
    if mode == "single":
        return [False]
    if mode == "random_swap":
        return [swap_coin(seed, key)]
    return [False, True]


@dataclass
class OrderResult:
    swapped: bool
    raw: str | None = None
    verdict: str | None = None  # "A" | "B" | "tie" | None (unparseable)
    p_a: float | None = None
    error: str | None = None
    logprobs: dict | None = None  # token-probability mode: {candidate: log p}

    @property
    def order(self) -> str:
        return "BA" if self.swapped else "AB"

    def first_wins(self) -> str | None:
        """The verdict in the pair's own terms: ``"first"`` (response i), ``"second"`` (j), ``"tie"`` or ``None``."""
        if self.verdict is None:
            return None
        if self.verdict == "tie":
            return "tie"
        return "first" if (self.verdict == "A") != self.swapped else "second"

    def p_first(self) -> float | None:
        if self.p_a is None:
            return None
        return 1.0 - self.p_a if self.swapped else self.p_a

    def to_json(self) -> dict:
        out = {"order": self.order, "raw": self.raw, "verdict": self.verdict, "p_a": self.p_a, "error": self.error}
        if self.logprobs is not None:
            out["logprobs"] = {k: (v if v != float("-inf") else None) for k, v in self.logprobs.items()}
        return out


def verdict_p_a(verdict: str | None) -> float | None:
    return {"A": 1.0, "B": 0.0, "tie": 0.5}.get(verdict) if verdict else None


def verdict_from_p(p: float, eps: float = 0.0) -> str:
    return "A" if p > 0.5 + eps else "B" if p < 0.5 - eps else "tie"


@dataclass
class PairVerdict:
    i: int
    j: int
    orders: list[OrderResult]
    verdict: str | None  # "first" | "second" | "tie" | None (unparseable)
    p_first: float  # probability that response i is better; ½ when unparseable
    consistent: bool | None  # both orders parsed: did they agree? None with one order or a failed one
    error: str | None = None

    def to_json(self) -> dict:
        return {
            "i": self.i,
            "j": self.j,
            "verdict": self.verdict,
            "p_first": self.p_first,
            "consistent": self.consistent,
            "error": self.error,
            "orders": [o.to_json() for o in self.orders],
        }


def _p_to_verdict(p: float) -> str:
    return "first" if p > 0.5 else "second" if p < 0.5 else "tie"


def combine(mode: str, i: int, j: int, orders: Sequence[OrderResult]) -> PairVerdict:
    """One :class:`PairVerdict` from the per-order results, by the rule of ``mode`` (see the module doc)."""
    check_mode(mode)
    orders = list(orders)
    parsed = [o for o in orders if o.verdict is not None and o.p_a is not None]
    errors = [f"{o.order}: {o.error or 'unparseable'}" for o in orders if o not in parsed]
    consistent = None
    if len(orders) == 2 and len(parsed) == 2:
        consistent = parsed[0].first_wins() == parsed[1].first_wins()
    if mode in ("single", "random_swap"):
        if len(orders) != 1:
            raise ValueError(f"{mode} takes one order, got {len(orders)}")
        if not parsed:
            return PairVerdict(i, j, orders, None, 0.5, None, errors[0])
        o = parsed[0]
        return PairVerdict(i, j, orders, o.first_wins(), o.p_first(), None)
    if len(orders) != 2:
        raise ValueError(f"{mode} takes two orders, got {len(orders)}")
    if mode == "both":
        if errors:
            return PairVerdict(i, j, orders, None, 0.5, consistent, "; ".join(errors))
        verdict = parsed[0].first_wins() if consistent else "tie"
        p = {"first": 1.0, "second": 0.0, "tie": 0.5}[verdict]
        return PairVerdict(i, j, orders, verdict, p, consistent)
    # average
    if not parsed:
        return PairVerdict(i, j, orders, None, 0.5, None, "; ".join(errors))
    p = sum(o.p_first() for o in parsed) / len(parsed)
    return PairVerdict(i, j, orders, _p_to_verdict(p), p, consistent, "; ".join(errors) or None)


def rewards_from_pairs(k: int, pairs: Sequence[PairVerdict]) -> list[float]:
    """Per-response reward: the mean probability of beating each other response (P(win) for K = 2)."""
    total, count = [0.0] * k, [0] * k
    for pv in pairs:
        total[pv.i] += pv.p_first
        total[pv.j] += 1.0 - pv.p_first
        count[pv.i] += 1
        count[pv.j] += 1
    return [t / c if c else 0.5 for t, c in zip(total, count)]


def position_summary(pairs: Sequence[PairVerdict]) -> dict:
    """Counts and rates over many pairs.

    ``position_consistency``: among pairs shown in both orders whose two outputs both parsed, the fraction whose
    verdict survived the swap (``null`` without such pairs). ``position_consistency_all`` counts a pair with an
    unparseable order as inconsistent. ``first_position_rate``: of the per-order A/B verdicts (ties excluded), the
    fraction that picked position A — 0.5 for an unbiased judge on balanced data.
    """
    outputs = [o for pv in pairs for o in pv.orders]
    unparsed = [o for o in outputs if o.verdict is None]
    two = [pv for pv in pairs if len(pv.orders) == 2]
    both_parsed = [pv for pv in two if pv.consistent is not None]
    agree = sum(1 for pv in both_parsed if pv.consistent)
    ab = [o.verdict for o in outputs if o.verdict in ("A", "B")]
    reasons: dict[str, int] = {}
    for o in unparsed:
        reasons[o.error or "unparseable"] = reasons.get(o.error or "unparseable", 0) + 1
    return {
        "n_pairs": len(pairs),
        "n_outputs": len(outputs),
        "n_unparseable_outputs": len(unparsed),
        "unparseable_rate": len(unparsed) / len(outputs) if outputs else None,
        "unparseable_reasons": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
        "n_unparseable_pairs": sum(1 for pv in pairs if pv.verdict is None),
        "n_pairs_both_orders": len(two),
        "n_pairs_both_parsed": len(both_parsed),
        "position_consistency": agree / len(both_parsed) if both_parsed else None,
        "position_consistency_all": agree / len(two) if two else None,
        "first_position_rate": sum(1 for v in ab if v == "A") / len(ab) if ab else None,
        "tie_verdicts": sum(1 for pv in pairs if pv.verdict == "tie"),
    }
