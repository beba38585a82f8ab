"""Evaluation metrics for reward models: pure functions over numbers, no model code.

Everything here works on the rewards a model gave to the responses of :class:`Comparison` records:
``scores[i][j]`` is the reward of ``records[i].responses[j]``. The *pairs* of a record are the
``(winner, loser)`` pairs its judgement implies (:meth:`Comparison.strict_pairs`): for plain data
(``chosen`` only) the chosen response against every other one, K − 1 pairs; with a ``ranking`` or
``tiers`` every pair of responses in different tiers. Responses the judge *tied* (same tier,
:meth:`Comparison.tied_pairs`) form no pair: they are neither wins nor losses; they are only counted
(``n_tied_pairs``) and described (``tie_agreement``, ``tied_mean_abs_gap``). Example: tiers
((2,), (0, 3), (1,)) give the pairs (2,0) (2,3) (2,1) (0,1) (3,1) and the tied pair (0,3).
The low-level functions take the pairs as ``pairs[i]`` (a list of ``(winner, loser)`` indices per
record); without it they fall back to chosen-vs-every-other.

* **Accuracy** (``accuracy``, *pair accuracy*) is pooled over the strict pairs of all records, and
  strict by default: a pair is a win only if ``r_winner > r_loser``. A reward tie is not a win; reward
  ties are counted and reported separately, so a model that gives every response the same reward
  scores accuracy 0 with tie rate 1, not 0.5. **Record accuracy** (``record_accuracy``) is the share
  of records (with at least one pair) whose every pair is a win — for plain data "the chosen response
  beats all the others", the number training logs as ``eval_record_accuracy``; for K = 2 both are equal.
  Record accuracy is always strict (a reward tie fails the record). Other **tie policies** (:class:`TiePolicy`: ``strict``,
  ``half``, ``fractional``, ``random`` with a seed) give ties partial or random credit; every result
  records the policy it used.
* **Calibration** reads ``P = σ(r_winner − r_loser)`` over the pairs as the probability the model gives
  to the human (ground-truth) choice, as in the Bradley–Terry loss. See :func:`calibration`.
* Confidence intervals come from a percentile bootstrap that resamples *records*, so the pairs of one
  K > 2 record stay together.

:func:`evaluate_scores` returns all of it as one JSON-serialisable dict (non-finite numbers → ``None``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
import scipy.stats

from rewardlab.atomic import json_safe

__all__ = [
    "TIE_POLICIES",
    "TiePolicy",
    "beat_all_credit",
    "compare_credit",
    "pair_credits",
    "best_of_n",
    "vote_from_rewards",
    "win_loss_tie",
    "adjusted_win_rate",
    "agreement",
    "PairOutcomes",
    "pairwise_outcomes",
    "pair_margins",
    "record_pairs",
    "accuracy_summary",
    "log_sigmoid",
    "sigmoid",
    "expected_calibration_error",
    "calibration",
    "length_correlation",
    "bootstrap_ci",
    "evaluate_scores",
]


class PairOutcomes(NamedTuple):
    """One entry per (winner, loser) pair, in record order then the order of the record's pairs; each (P,).

    ``wins[p]``: the winner's reward is strictly greater; ``ties[p]``: the rewards are equal;
    ``record[p]``: the index of the record the pair came from (for per-record / per-source grouping).
    """

    wins: np.ndarray
    ties: np.ndarray
    record: np.ndarray


def _rows(scores: Sequence[Sequence[float]], chosen: Sequence[int]) -> list[np.ndarray]:
    if len(scores) != len(chosen):
        raise ValueError(f"{len(scores)} score rows but {len(chosen)} chosen indices")
    rows = []
    for i, (row, c) in enumerate(zip(scores, chosen)):
        r = np.asarray(row, dtype=np.float64).reshape(-1)
        if r.size < 2:
            raise ValueError(f"record {i}: needs at least two rewards, got {r.size}")
        if not 0 <= int(c) < r.size:
            raise ValueError(f"record {i}: chosen={c} is not an index into {r.size} rewards")
        if not np.all(np.isfinite(r)):
            raise ValueError(f"record {i}: rewards must be finite, got {r.tolist()}")
        rows.append(r)
    return rows


Pairs = Sequence[Sequence[tuple[int, int]]]  # pairs[i]: record i's (winner, loser) response indices


def record_pairs(records: Sequence) -> tuple[list, list]:
    """``(strict, tied)``: each record's :meth:`~Comparison.strict_pairs` and :meth:`~Comparison.tied_pairs`."""
    return [r.strict_pairs() for r in records], [r.tied_pairs() for r in records]


def _pairs(scores, chosen, pairs: Pairs | None = None, rows: list[np.ndarray] | None = None
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(r_a, r_b, record index)``, each of shape (P,), for the pairs ``(a, b)`` of every record.

    ``pairs[i]`` lists record i's ``(a, b)`` response indices; None: ``(chosen, j)`` for every
    ``j ≠ chosen`` in index order. ``rows`` (from :func:`_rows`) skips re-validating ``scores``.
    """
    rows = _rows(scores, chosen) if rows is None else rows
    if pairs is None:
        pairs = [[(int(c), j) for j in range(r.size) if j != int(c)] for r, c in zip(rows, chosen)]
    if len(pairs) != len(rows):
        raise ValueError(f"{len(rows)} score rows but pairs for {len(pairs)} records")
    flat = [(i, int(a), int(b)) for i, record in enumerate(pairs) for a, b in record]
    for i, a, b in flat:
        if a == b or not (0 <= a < rows[i].size and 0 <= b < rows[i].size):
            raise ValueError(f"record {i}: pair ({a}, {b}) is not two distinct indices into {rows[i].size} rewards")
    r_a = np.asarray([rows[i][a] for i, a, _ in flat], dtype=np.float64)
    r_b = np.asarray([rows[i][b] for i, _, b in flat], dtype=np.float64)
    return r_a, r_b, np.asarray([i for i, _, _ in flat], dtype=np.int64)


def pairwise_outcomes(scores: Sequence[Sequence[float]], chosen: Sequence[int], pairs: Pairs | None = None
                      ) -> PairOutcomes:
    """Compare the winner's reward with the loser's for every pair of every record.

    ``pairs[i]``: record i's ``(winner, loser)`` indices (e.g. :func:`record_pairs`); None: the chosen
    response against every other one. Returns :class:`PairOutcomes` ``(wins, ties, record)`` — boolean
    arrays ``wins`` (strictly greater) and ``ties`` (equal), and the int array ``record`` of each pair's
    record index, all of shape (P,). Raises ``ValueError`` on mismatched lengths, a bad ``chosen`` or
    pair index or a non-finite reward.
    """
    r_w, r_l, rec = _pairs(scores, chosen, pairs)
    return PairOutcomes(wins=r_w > r_l, ties=r_w == r_l, record=rec)


def pair_margins(scores: Sequence[Sequence[float]], chosen: Sequence[int], pairs: Pairs | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``(r_winner − r_loser, record index)``, each (P,), in the order of :func:`pairwise_outcomes`."""
    r_w, r_l, rec = _pairs(scores, chosen, pairs)
    return r_w - r_l, rec


# ----------------------------------------------------------------------------------------------
# tie policies

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
            raise ValueError(f"unknown tie policy {self.name!r}; choose one of {', '.join(TIE_POLICIES)} "
                             "(random takes a seed: 'random:7')")

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


def _tie_credit(policy: TiePolicy, p_fair: float, rng: np.random.Generator | None) -> float:
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


def beat_all_credit(correct: Sequence[float], incorrect: Sequence[float], policy: TiePolicy | str = "strict",
                    rng: np.random.Generator | None = None) -> float:
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
    return _tie_credit(policy, 1.0 / math.comb(a + b, a), rng)


def compare_credit(x: float, y: float, policy: TiePolicy | str = "strict",
                   rng: np.random.Generator | None = None) -> float:
    """Credit for ``x > y``: 1 if greater, 0 if smaller, a tie by the policy (fair probability ½)."""
    policy = TiePolicy.parse(policy).resolve("strict")
    if x > y:
        return 1.0
    if x < y:
        return 0.0
    return _tie_credit(policy, 0.5, rng)


def pair_credits(r_chosen, r_other, policy: TiePolicy | str = "strict", rng: np.random.Generator | None = None) -> np.ndarray:
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
            credit[ties] = _tie_credit(policy, 0.5, None)
    return credit


# ----------------------------------------------------------------------------------------------
# bootstrap


def bootstrap_ci(values, stat: Callable[[np.ndarray], float] = np.mean, n: int = 1000, seed: int = 0,
                 alpha: float = 0.05) -> tuple[float, float]:
    """Percentile bootstrap ``(low, high)`` of ``stat`` at level ``1 − alpha``.

    ``values`` holds one entry per *record* (rows of a 2-D array are resampled whole, so a record can
    carry e.g. ``[wins, pairs]``). Each of the ``n`` resamples draws ``len(values)`` records with
    replacement from ``np.random.default_rng(seed)``, so the result is deterministic for a seed.
    """
    values = np.asarray(values)
    m = values.shape[0] if values.ndim else 0
    if m == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    rng = np.random.default_rng(seed)
    stats = np.empty(n, dtype=np.float64)
    for b in range(n):
        stats[b] = stat(values[rng.integers(0, m, size=m)])
    low, high = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def _pooled_accuracy(rows: np.ndarray) -> float:
    """Accuracy of resampled ``[wins, pairs]`` record rows: total wins over total pairs."""
    return float(rows[:, 0].sum() / rows[:, 1].sum())


# ----------------------------------------------------------------------------------------------
# accuracy


def _finite(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def accuracy_summary(scores: Sequence[Sequence[float]], chosen: Sequence[int],
                     sources: Sequence[str] | None = None, *, seed: int = 0, n_boot: int = 1000,
                     tie_policy: TiePolicy | str = "strict", pairs: Pairs | None = None,
                     tied: Pairs | None = None) -> dict:
    """Pair and record accuracy (strict by default), ties and mean margin, overall and per source.

    ``pairs[i]`` are record i's ``(winner, loser)`` pairs and ``tied[i]`` its judge-tied ``(i, j)``
    pairs (:func:`record_pairs`); by default the chosen response against every other one and no ties.

    ``accuracy`` = credit / pairs (pooled over pairs, so a record with three pairs weighs three), where
    a win earns 1, a loss 0 and a reward tie what ``tie_policy`` gives it (:class:`TiePolicy`;
    ``strict``: 0, so accuracy = wins / pairs; ``half``/``fractional``: ½; ``random``: a seeded coin —
    its seed is ``seed`` unless the policy names one). ``tie_policy`` in the result records the policy
    used; ``ties`` / ``tie_rate`` count reward ties among the pairs; ``mean_margin`` = mean over pairs of
    ``r_winner − r_loser``. ``record_accuracy`` = share of the records with at least one pair whose
    pairs are all strict wins (``n_scored_records`` of them). Judge-tied pairs are no pairs:
    ``n_tied_pairs`` counts them, ``tie_agreement`` is the share of them the model also scores exactly
    equal (meaningful for discrete scorers such as rating judges) and ``tied_mean_abs_gap`` the mean
    ``|r_i − r_j|`` over them (``None`` without tied pairs).
    ``accuracy_ci95`` and each source's ``ci95`` are bootstrap intervals over the records with pairs
    (:func:`bootstrap_ci`, ``n_boot`` resamples, ``seed``); ``None`` when ``n_boot`` is 0.
    ``per_source`` maps each source name (records' order of first appearance) to
    ``{n, n_pairs, accuracy, record_accuracy, ties, ci95}`` where ``n`` counts records.
    """
    policy = TiePolicy.parse(tie_policy, seed=seed).resolve("strict")
    rows = _rows(scores, chosen)
    r_w, r_l, rec = _pairs(scores, chosen, pairs, rows)
    wins, ties = r_w > r_l, r_w == r_l
    credit = pair_credits(r_w, r_l, policy)
    margins = r_w - r_l
    n_records = len(chosen)
    n_pairs = int(wins.size)
    pairs_of = np.bincount(rec, minlength=n_records).astype(np.float64)  # (n_records,)
    per_record = np.stack([np.bincount(rec, weights=credit, minlength=n_records), pairs_of], axis=1)
    scored = pairs_of > 0  # records with at least one pair
    all_won = scored & (np.bincount(rec, weights=wins, minlength=n_records) == pairs_of)
    t_a, t_b, _ = _pairs(scores, chosen, tied if tied is not None else [[] for _ in rows], rows)

    def ci(idx):
        idx = idx[scored[idx]]
        if n_boot <= 0 or idx.size == 0:
            return None
        return list(bootstrap_ci(per_record[idx], stat=_pooled_accuracy, n=n_boot, seed=seed))

    def record_accuracy(idx):
        idx = idx[scored[idx]]
        return float(all_won[idx].mean()) if idx.size else None

    everyone = np.arange(n_records)
    out = {
        "n_records": n_records,
        "n_pairs": n_pairs,
        "wins": int(wins.sum()),
        "accuracy": float(credit.mean()) if n_pairs else None,
        "accuracy_ci95": ci(everyone),
        "record_accuracy": record_accuracy(everyone),
        "n_scored_records": int(scored.sum()),
        "ties": int(ties.sum()),
        "tie_rate": float(ties.mean()) if n_pairs else None,
        "mean_margin": float(margins.mean()) if n_pairs else None,
        "n_tied_pairs": int(t_a.size),
        "tie_agreement": float(np.mean(t_a == t_b)) if t_a.size else None,
        "tied_mean_abs_gap": float(np.mean(np.abs(t_a - t_b))) if t_a.size else None,
        "tie_policy": str(policy),
    }
    if sources is not None:
        if len(sources) != n_records:
            raise ValueError(f"{len(sources)} sources but {n_records} records")
        per_source = {}
        names = np.asarray([str(s) for s in sources], dtype=object)
        for name in dict.fromkeys(names.tolist()):
            idx = np.flatnonzero(names == name)
            mask = np.isin(rec, idx)
            per_source[name] = {
                "n": int(idx.size),
                "n_pairs": int(mask.sum()),
                "accuracy": float(credit[mask].mean()) if mask.any() else None,
                "record_accuracy": record_accuracy(idx),
                "ties": int(ties[mask].sum()),
                "ci95": ci(idx),
            }
        out["per_source"] = per_source
    return out


# ----------------------------------------------------------------------------------------------
# calibration


def log_sigmoid(x) -> np.ndarray:
    """``log σ(x) = −log(1 + e^(−x))``, stable for any finite ``x`` (never ``log(0)``)."""
    return -np.logaddexp(0.0, -np.asarray(x, dtype=np.float64))


def sigmoid(x) -> np.ndarray:
    """``σ(x)`` without overflow warnings for large ``|x|``."""
    x = np.asarray(x, dtype=np.float64)
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def expected_calibration_error(p, labels, n_bins: int = 10) -> tuple[float, list[dict]]:
    """Binary ECE over ``n_bins`` equal-width bins of ``p`` on [0, 1].

    Bin ``b`` holds ``b/n_bins <= p < (b+1)/n_bins`` (``p = 1`` goes to the last bin).
    ``ECE = Σ_b (n_b / N) · |mean(label)_b − mean(p)_b|``. The table has one row per bin:
    ``{lo, hi, count, mean_p, mean_label}`` (means ``None`` for an empty bin), for a reliability plot.
    """
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    if p.shape != y.shape:
        raise ValueError(f"{p.size} probabilities but {y.size} labels")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    if p.size and (np.any(p < 0) or np.any(p > 1) or not np.all(np.isfinite(p))):
        raise ValueError("probabilities must lie in [0, 1]")
    which = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    bins, ece, total = [], 0.0, p.size
    for b in range(n_bins):
        mask = which == b
        count = int(mask.sum())
        row = {"lo": b / n_bins, "hi": (b + 1) / n_bins, "count": count, "mean_p": None, "mean_label": None}
        if count:
            mean_p, mean_label = float(p[mask].mean()), float(y[mask].mean())
            row["mean_p"], row["mean_label"] = mean_p, mean_label
            ece += count / total * abs(mean_label - mean_p)
        bins.append(row)
    return float(ece), bins


def calibration(margins, n_bins: int = 10, seed: int = 0) -> dict:
    """Calibration of ``P = σ(r_chosen − r_other)``, the probability given to the human choice.

    ``margins`` holds ``r_chosen − r_other`` per pair.

    * ``log_loss`` = mean of ``−log σ(Δ)``, computed as ``log(1 + e^(−Δ))`` (:func:`log_sigmoid`),
      so Δ = 50 gives ≈ 2e−22 and Δ = −1000 gives 1000 rather than ``inf``.
    * ``brier`` = mean of ``(1 − P)²`` = mean of ``σ(−Δ)²``.
    * ``ece``: written with the preferred response always first, every label would be 1 and ECE would
      only measure how far P falls below 1. So each pair is *oriented at random* as ``(a, b)`` —
      a fair coin per pair from ``np.random.default_rng(seed)``: ``a`` is the preferred response
      with probability ½. Then ``p = σ(r_a − r_b)`` and ``label = 1`` if ``a`` is the preferred one,
      else 0, and ECE is the standard binary one (:func:`expected_calibration_error`, ``n_bins``
      equal-width bins on [0, 1]). ``bins`` is its per-bin table. Log-loss and Brier do not depend on
      the orientation (flipping a pair maps ``(p, 1)`` to ``(1 − p, 0)``); ECE can, a little.
    """
    d = np.asarray(margins, dtype=np.float64).reshape(-1)
    if d.size and not np.all(np.isfinite(d)):
        raise ValueError("margins must be finite")
    rng = np.random.default_rng(seed)
    a_is_preferred = rng.random(d.size) < 0.5
    p = sigmoid(np.where(a_is_preferred, d, -d))
    ece, bins = expected_calibration_error(p, a_is_preferred.astype(np.float64), n_bins=n_bins)
    if d.size == 0:
        return {"log_loss": None, "brier": None, "ece": None, "n_bins": n_bins, "bins": bins}
    return {
        "log_loss": float(np.mean(-log_sigmoid(d))),
        "brier": float(np.mean(sigmoid(-d) ** 2)),
        "ece": ece,
        "n_bins": n_bins,
        "bins": bins,
    }


# ----------------------------------------------------------------------------------------------
# reward vs length


def _pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    """Pearson's r (``scipy.stats.pearsonr``); None when undefined (fewer than two points, a constant input)."""
    if x.size < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return None
    r = float(scipy.stats.pearsonr(x, y).statistic)
    return float(np.clip(r, -1.0, 1.0)) if math.isfinite(r) else None


def length_correlation(rewards, lengths) -> dict:
    """Pearson and Spearman correlation between reward and response length (characters).

    Pairs where either value is NaN/inf are dropped. Returns ``{"pearson": r | None,
    "spearman": ρ | None}``; a coefficient is ``None`` when it is undefined: fewer than two points
    or a constant input (zero variance). Spearman is Pearson on average-tie ranks.
    """
    x = np.asarray(rewards, dtype=np.float64).reshape(-1)
    y = np.asarray(lengths, dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"{x.size} rewards but {y.size} lengths")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    pearson = _pearson(x, y)
    spearman = float(scipy.stats.spearmanr(x, y).statistic) if pearson is not None else None
    return {"pearson": pearson, "spearman": spearman}


# ----------------------------------------------------------------------------------------------
# everything


_jsonable = json_safe


def evaluate_scores(records: Sequence, scores: Sequence[Sequence[float]], seed: int = 0,
                    n_boot: int = 1000, n_bins: int = 10, tie_policy: TiePolicy | str = "strict") -> dict:
    """All metrics for rewards ``scores[i][j]`` of ``records[i].responses[j]`` (:class:`Comparison`).

    The pairs of each record are its :meth:`~Comparison.strict_pairs` (for plain data: chosen against
    every other response); pairs the judge tied are left out and only counted (:func:`accuracy_summary`).
    Returns a JSON-serialisable dict::

        n_records, n_pairs, wins, accuracy, accuracy_ci95 [low, high], record_accuracy, n_scored_records,
        ties, tie_rate, mean_margin, n_tied_pairs, tie_agreement, tied_mean_abs_gap,
        per_source {name: {n, n_pairs, accuracy, record_accuracy, ties, ci95}},
        calibration {log_loss, brier, ece, n_bins, bins [{lo, hi, count, mean_p, mean_label}]},
        length_correlation {pearson, spearman},       # over every response, length in characters
        reward_stats {mean, std, mean_chosen, mean_rejected, n_responses},
        tie_policy,                                   # how ties were credited in accuracy (TiePolicy)
        seed

    ``std`` is the population standard deviation of all rewards; ``mean_rejected`` averages every
    response the chosen one beats (its losers in the pairs; with plain data every non-chosen response).
    Calibration is over the pairs' margins. ``seed`` drives the bootstrap and the calibration orientation.
    """
    if len(records) != len(scores):
        raise ValueError(f"{len(records)} records but {len(scores)} score rows")
    if not records:
        raise ValueError("evaluate_scores needs at least one record")
    chosen = [int(r.chosen) for r in records]
    rows = _rows(scores, chosen)
    for i, (record, row) in enumerate(zip(records, rows)):
        if row.size != len(record.responses):
            raise ValueError(f"record {i} ({record.id or 'no id'}): {len(record.responses)} responses "
                             f"but {row.size} rewards")
    pairs, tied = record_pairs(records)
    out = accuracy_summary(rows, chosen, [r.source for r in records], seed=seed, n_boot=n_boot,
                           tie_policy=tie_policy, pairs=pairs, tied=tied)
    margins, _ = pair_margins(rows, chosen, pairs)
    out["calibration"] = calibration(margins, n_bins=n_bins, seed=seed)

    all_rewards = np.concatenate(rows)
    lengths = np.asarray([len(resp) for r in records for resp in r.responses], dtype=np.float64)
    out["length_correlation"] = length_correlation(all_rewards, lengths)
    chosen_rewards = np.asarray([row[c] for row, c in zip(rows, chosen)])
    rejected_rewards = np.asarray([row[b] for row, c, p in zip(rows, chosen, pairs) for a, b in p if a == c])
    out["reward_stats"] = {
        "mean": float(all_rewards.mean()),
        "std": float(all_rewards.std()),
        "mean_chosen": float(chosen_rewards.mean()),
        "mean_rejected": float(rejected_rewards.mean()) if rejected_rewards.size else None,
        "n_responses": int(all_rewards.size),
    }
    out["seed"] = seed
    return _jsonable(out)


# ----------------------------------------------------------------------------------------------
# best-of-N


def best_of_n_credits(scores: Sequence[Sequence[float]], gold: Sequence[int],
                      tie_policy: TiePolicy | str = "strict", seed: int = 0) -> np.ndarray:
    """Per prompt, the credit for "the gold candidate gets the highest reward" (:func:`beat_all_credit`
    of the gold reward against all the others; a tie at the top is scored by ``tie_policy``)."""
    policy = TiePolicy.parse(tie_policy, seed=seed).resolve("strict")
    rows = _rows(scores, gold)
    rng = policy.rng()
    return np.asarray([beat_all_credit([r[int(g)]], np.delete(r, int(g)), policy, rng)
                       for r, g in zip(rows, gold)], dtype=np.float64)


def best_of_n(scores: Sequence[Sequence[float]], gold: Sequence[int], tie_policy: TiePolicy | str = "strict",
              seed: int = 0, n_boot: int = 1000) -> dict:
    """Best-of-N accuracy: prompts with N candidates each (N may vary) and the index of the gold one.

    ``accuracy`` = mean over prompts of the credit for the gold candidate being the unique top reward
    (:func:`best_of_n_credits`; a tie at the top by ``tie_policy``: ``strict`` 0, ``half`` ½,
    ``fractional`` 1/k for k tied, ``random`` a seeded draw). ``random_baseline`` = mean of 1/N, the
    accuracy of picking a candidate uniformly at random (a constant scorer under ``fractional`` scores
    exactly this). ``by_n`` splits both by N. ``ties_at_top`` counts prompts whose gold reward is tied
    for the maximum. ``ci95``: bootstrap over prompts (``n_boot`` resamples, ``seed``).
    """
    policy = TiePolicy.parse(tie_policy, seed=seed).resolve("strict")
    rows = _rows(scores, gold)
    if not rows:
        raise ValueError("best_of_n needs at least one prompt")
    credit = best_of_n_credits(rows, gold, policy)
    sizes = np.asarray([r.size for r in rows])
    tied = np.asarray([r[int(g)] == r.max() and np.sum(r == r.max()) > 1 for r, g in zip(rows, gold)])
    by_n = {}
    for n in sorted(set(sizes.tolist())):
        mask = sizes == n
        by_n[str(n)] = {"n_prompts": int(mask.sum()), "accuracy": float(credit[mask].mean()), "random_baseline": 1.0 / n}
    ci = list(bootstrap_ci(credit, n=n_boot, seed=seed)) if n_boot > 0 else None
    return _jsonable({
        "n_prompts": len(rows),
        "accuracy": float(credit.mean()),
        "ci95": ci,
        "random_baseline": float(np.mean(1.0 / sizes)),
        "ties_at_top": int(tied.sum()),
        "by_n": by_n,
        "tie_policy": str(policy),
    })


# ----------------------------------------------------------------------------------------------
# judge votes: win/loss/tie and agreement (MT-Bench style)

def _as_vote(vote: Any) -> tuple[float, float, float]:
    """``"model_a"`` → (1, 0, 0), ``"model_b"`` → (0, 1, 0), anything containing ``"tie"`` (e.g.
    MT-Bench's ``"tie (bothbad)"``) → (0, 0, 1); a 3-tuple is taken as it is."""
    if isinstance(vote, str):
        if "tie" in vote:
            return (0.0, 0.0, 1.0)
        if vote == "model_a":
            return (1.0, 0.0, 0.0)
        if vote == "model_b":
            return (0.0, 1.0, 0.0)
        raise ValueError(f"unknown vote {vote!r}: expected model_a, model_b or tie")
    a, b, t = (float(v) for v in vote)
    if min(a, b, t) < 0 or abs(a + b + t - 1.0) > 1e-9:
        raise ValueError(f"a vote (p_a, p_b, p_tie) must be probabilities summing to 1, got {vote!r}")
    return (a, b, t)


def vote_from_rewards(r_a: float, r_b: float, policy: TiePolicy | str = "strict",
                      rng: np.random.Generator | None = None) -> tuple[float, float, float]:
    """A reward model's vote on (a, b) as ``(p_a, p_b, p_tie)``: the higher reward wins.

    Equal rewards: ``strict`` → a tie vote (0, 0, 1), as a judge saying "tie"; ``half`` and
    ``fractional`` → half a vote each way (½, ½, 0); ``random`` → a seeded coin picks a or b.
    """
    policy = TiePolicy.parse(policy).resolve("strict")
    if r_a > r_b:
        return (1.0, 0.0, 0.0)
    if r_a < r_b:
        return (0.0, 1.0, 0.0)
    if policy.name == "strict":
        return (0.0, 0.0, 1.0)
    if policy.name in ("half", "fractional"):
        return (0.5, 0.5, 0.0)
    a_wins = _tie_credit(policy, 0.5, rng)
    return (a_wins, 1.0 - a_wins, 0.0)


def adjusted_win_rate(win: float, loss: float, tie: float) -> float | None:
    """``(W + 0.5·T) / (W + L + T)``: each tie counts as half a win (MT-Bench's ``win_rate_adjusted``)."""
    total = win + loss + tie
    return (win + 0.5 * tie) / total if total > 0 else None


def win_loss_tie(rows: Sequence[tuple[str, str, Any]]) -> dict:
    """Per model, wins / losses / ties over ``(model_a, model_b, vote)`` rows, MT-Bench style.

    A vote for a gives a a win and b a loss; a tie gives both a tie; a fractional vote
    ``(p_a, p_b, p_tie)`` adds those fractions. Returns ``{model: {win, loss, tie, n, win_rate,
    loss_rate, adjusted_win_rate}}`` with ``win_rate = W / (W+L+T)`` and the adjusted rate
    ``(W + 0.5·T) / (W+L+T)`` (:func:`adjusted_win_rate`). Models in order of first appearance.
    """
    table: dict[str, list[float]] = {}
    for model_a, model_b, vote in rows:
        p_a, p_b, p_t = _as_vote(vote)
        for model, w, l in ((model_a, p_a, p_b), (model_b, p_b, p_a)):
            cell = table.setdefault(str(model), [0.0, 0.0, 0.0])
            cell[0] += w
            cell[1] += l
            cell[2] += p_t
    out = {}
    for model, (w, l, t) in table.items():
        n = w + l + t
        out[model] = {"win": w, "loss": l, "tie": t, "n": n,
                      "win_rate": w / n if n else None, "loss_rate": l / n if n else None,
                      "adjusted_win_rate": adjusted_win_rate(w, l, t)}
    return _jsonable(out)


def agreement(judge_votes: Sequence[Any], human_votes: Sequence[Any], include_ties: bool = True) -> dict:
    """Agreement between a judge's and humans' votes on the same items, as in MT-Bench.

    Votes are ``"model_a"``, ``"model_b"``, ``"tie"`` (any text containing "tie") or ``(p_a, p_b, p_tie)``.
    ``include_ties=True`` ("with ties"): every item counts and two tie votes agree; the credit of an item
    is the judge's probability on the human's choice. ``include_ties=False`` ("without ties"): items
    where the human or the judge voted tie (``p_tie > 0``) are left out. Returns ``{agree, total, rate}``.
    """
    if len(judge_votes) != len(human_votes):
        raise ValueError(f"{len(judge_votes)} judge votes but {len(human_votes)} human votes")
    agree, total = 0.0, 0
    for j, h in zip(judge_votes, human_votes):
        jv, hv = _as_vote(j), _as_vote(h)
        if not include_ties and (hv[2] > 0 or jv[2] > 0):
            continue
        total += 1
        agree += sum(x * y for x, y in zip(jv, hv))
    return _jsonable({"agree": agree, "total": total, "rate": agree / total if total else None})
