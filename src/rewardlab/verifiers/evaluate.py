"""Verifier evaluation: ProcessBench's first-error protocol and best-of-n on fixed candidates.

**ProcessBench** (QwenLM/ProcessBench ``run_eval.py``; the protocol lives with the benchmark registry's entry,
:mod:`rewardlab.benchmarks.processbench`, and is imported here): a model predicts the index of the first step it judges
wrong (−1: none). Per split: ``acc_err`` = mean(pred == label) over the erroneous rows (label ≥ 0), ``acc_cor`` =
mean(pred == −1) over the all-correct rows, ``f1`` = 2·acc_err·acc_cor / (acc_err + acc_cor) (0 when both are 0);
the overall F1 is the mean over splits. A PRM outputs probabilities, so a step is judged wrong when its score is
below a threshold, chosen on a split the user names (the F1-maximising one over the step scores seen there) and
recorded. Baselines: never-wrong (always −1: acc_err 0, acc_cor 1, F1 0) and random-step (uniform over −1 and
the K step indices: its expected accuracies, exactly, 1/(K+1) per row).

**Best-of-n on fixed candidates** (outcome labels): per problem the solutions' scores and 0/1 correctness. top-1
accuracy (the highest-scored solution is correct; ties: the mean over the tied ones), pairwise accuracy (correct
vs incorrect solutions of one problem; ties ½), best-of-n accuracy for n = 1…N through the shared estimator
(:func:`rewardlab.metrics.best_of_n.best_of_n_curve`), and the oracle (any correct), random (the share correct)
and majority-vote (the most common final answer; tied answers averaged) baselines; 95% intervals by bootstrap
over problems.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np

from rewardlab.benchmarks.processbench import (  # noqa: F401  (the protocol, importable from here as before)
    choose_threshold,
    first_wrong,
    processbench_report,
    processbench_scores,
    random_step_baseline,
)
from rewardlab.metrics.best_of_n import best_of_n_curve
from rewardlab.metrics.statistics import bootstrap_ci


# --- best-of-n on fixed candidates -------------------------------------------------------------------------
def top1_credit(scores: Sequence[float], correct: Sequence[float]) -> float:
    """The correctness of the top-scored solution; a tie at the top: the mean over the tied ones.

    >>> top1_credit([0.9, 0.9, 0.1], [1, 0, 1]), top1_credit([0.2, 0.7], [0, 1])
    (0.5, 1.0)
    """
    s, c = np.asarray(scores, float), np.asarray(correct, float)
    return float(c[s == s.max()].mean())


def pairwise_credit(scores: Sequence[float], correct: Sequence[float]) -> float | None:
    """Mean over (correct, incorrect) pairs of one problem of [score_correct > score_incorrect] (ties ½); None
    when the problem has no such pair.

    >>> pairwise_credit([0.9, 0.5, 0.5, 0.1], [1, 1, 0, 0])  # pairs: (0.9,0.5) (0.9,0.1) (0.5,0.5)=½ (0.5,0.1)
    0.875
    """
    s, c = np.asarray(scores, float), np.asarray(correct, float)
    pos, neg = s[c == 1], s[c == 0]
    if not len(pos) or not len(neg):
        return None
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0) + 0.5 * (diff == 0)).mean())


def majority_credit(answers: Sequence[str | None], correct: Sequence[float]) -> float:
    """Majority vote over the final answers: the correctness of the most common answer (tied answers averaged;
    a solution without an answer votes for nothing; none at all: the mean correctness).

    >>> majority_credit(["18", "18", "26", "9"], [1, 1, 0, 0]), majority_credit(["1", "2"], [1, 0])
    (1.0, 0.5)
    """
    votes = Counter(a for a in answers if a is not None)
    if not votes:
        return float(np.mean(correct))
    top = max(votes.values())
    winners = [a for a, v in votes.items() if v == top]
    per = [float(np.mean([c for a, c in zip(answers, correct) if a == w])) for w in winners]
    return float(np.mean(per))


def _ci(values, seed: int) -> list[float]:
    return list(bootstrap_ci(np.asarray(values, float), n=1000, seed=seed))


def candidates_report(groups: list[dict], seed: int = 0) -> dict:
    """``groups``: per problem ``{"scores": [...], "correct": [0/1 ...], "answers": [...]}`` (one model's
    scores). top-1, pairwise, best-of-n (n = 1…min N) and the baselines, each with a 95% bootstrap interval over
    problems."""
    top1 = [top1_credit(g["scores"], g["correct"]) for g in groups]
    pairs = [p for g in groups if (p := pairwise_credit(g["scores"], g["correct"])) is not None]
    oracle = [float(max(g["correct"])) for g in groups]
    rand = [float(np.mean(g["correct"])) for g in groups]
    major = [majority_credit(g["answers"], g["correct"]) for g in groups]
    out = {
        "n_problems": len(groups),
        "top1": {"value": float(np.mean(top1)), "ci95": _ci(top1, seed), "ties": "mean over tied"},
        "pairwise": {
            "value": float(np.mean(pairs)) if pairs else None,
            "ci95": _ci(pairs, seed) if pairs else None,
            "n_problems": len(pairs),
            "ties": "1/2",
        },
        "baselines": {
            "oracle": {"value": float(np.mean(oracle)), "ci95": _ci(oracle, seed)},
            "random": {"value": float(np.mean(rand)), "ci95": _ci(rand, seed)},
            "majority_vote": {"value": float(np.mean(major)), "ci95": _ci(major, seed)},
        },
        "interval": "95% percentile bootstrap over problems (1000 resamples)",
    }
    out["best_of_n"] = best_of_n_accuracy(groups, seed)
    return out


def best_of_n_accuracy(groups: list[dict], seed: int = 0) -> dict:
    """Best-of-n accuracy for n = 1 … the smallest candidate count, by the shared estimator
    (:func:`rewardlab.metrics.best_of_n.best_of_n_curve`: the exact expected correctness of the score-argmax of n
    of the N candidates drawn without replacement, ties averaged; gold = is_correct as 0/1)."""
    N = min(len(g["scores"]) for g in groups)
    curve = best_of_n_curve([g["scores"] for g in groups], [g["correct"] for g in groups], seed=seed)
    return {
        "ns": curve["ns"],
        "accuracy": curve["gold"],
        "ci95": curve["gold_ci"],
        "estimator": curve["estimator"] + " (gold = is_correct)",
        "interval": curve["interval"],
        "n_candidates_min": N,
    }
