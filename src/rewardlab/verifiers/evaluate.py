"""Verifier evaluation: ProcessBench's first-error protocol and best-of-n on fixed candidates.

**ProcessBench** (QwenLM/ProcessBench ``run_eval.py``): a model predicts the index of the first step it judges
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

from rewardlab.metrics.best_of_n import best_of_n_curve
from rewardlab.metrics.statistics import bootstrap_ci


def first_wrong(step_scores: Sequence[float | None], threshold: float) -> int:
    """Index of the first step scored below ``threshold`` (None = cut off: not judged), −1 if none.

    >>> first_wrong([0.9, 0.4, 0.1], 0.5), first_wrong([0.9, 0.8], 0.5)
    (1, -1)
    """
    return next((i for i, s in enumerate(step_scores) if s is not None and s < threshold), -1)


def processbench_scores(preds: Sequence[int], labels: Sequence[int]) -> dict:
    """acc_err, acc_cor and their harmonic mean F1 for one split (see the module docstring).

    Worked (6 rows): labels (2, 0, 1, −1, −1, −1), preds (2, 1, 1, −1, 0, −1): erroneous rows right 2 of 3
    → acc_err = 2/3; correct rows right 2 of 3 → acc_cor = 2/3; F1 = 2·(4/9)/(4/3) = 2/3.

    >>> r = processbench_scores([2, 1, 1, -1, 0, -1], [2, 0, 1, -1, -1, -1])
    >>> round(r["acc_err"], 4), round(r["acc_cor"], 4), round(r["f1"], 4), r["n_err"], r["n_cor"]
    (0.6667, 0.6667, 0.6667, 3, 3)
    """
    preds, labels = np.asarray(preds), np.asarray(labels)
    err, cor = labels >= 0, labels == -1
    acc_err = float(np.mean(preds[err] == labels[err])) if err.any() else float("nan")
    acc_cor = float(np.mean(preds[cor] == -1)) if cor.any() else float("nan")
    f1 = 0.0 if acc_err + acc_cor == 0 else 2 * acc_err * acc_cor / (acc_err + acc_cor)
    return {"acc_err": acc_err, "acc_cor": acc_cor, "f1": f1, "n_err": int(err.sum()), "n_cor": int(cor.sum())}


def random_step_baseline(n_steps: Sequence[int], labels: Sequence[int]) -> dict:
    """Expected scores of a predictor uniform over {−1, 0, …, K−1} (exact: each row is right with 1/(K+1)).

    >>> r = random_step_baseline([3, 1], [0, -1])  # 1/4 on the erroneous row, 1/2 on the correct one
    >>> r["acc_err"], r["acc_cor"], round(r["f1"], 4)
    (0.25, 0.5, 0.3333)
    """
    p = 1.0 / (np.asarray(n_steps) + 1.0)
    labels = np.asarray(labels)
    acc_err = float(p[labels >= 0].mean()) if (labels >= 0).any() else float("nan")
    acc_cor = float(p[labels == -1].mean()) if (labels == -1).any() else float("nan")
    f1 = 0.0 if acc_err + acc_cor == 0 else 2 * acc_err * acc_cor / (acc_err + acc_cor)
    return {"acc_err": acc_err, "acc_cor": acc_cor, "f1": f1}


def choose_threshold(step_scores: Sequence[Sequence[float | None]], labels: Sequence[int]) -> float:
    """The threshold with the highest F1 on these rows; candidates: every step score seen (a step is wrong when
    strictly below) and 1.0 + ε… all tied candidates → the smallest. ``labels``: ProcessBench labels."""
    seen = sorted({s for row in step_scores for s in row if s is not None})
    candidates = [0.0] + [(a + b) / 2 for a, b in zip(seen, seen[1:])] + [seen[-1] + 1e-9 if seen else 1.0]
    best, best_f1 = candidates[0], -1.0
    for t in candidates:
        f1 = processbench_scores([first_wrong(r, t) for r in step_scores], labels)["f1"]
        if f1 > best_f1 + 1e-12:
            best, best_f1 = t, f1
    return float(best)


def processbench_report(rows: list[dict], threshold_split: str, threshold: float | None = None) -> dict:
    """``rows``: ``{"split", "label", "step_scores"}``. The threshold: ``threshold`` when given, else chosen on
    ``threshold_split`` (:func:`choose_threshold`); per split the model's and the baselines' scores; ``f1_mean``
    over splits."""
    splits = sorted({r["split"] for r in rows})
    if threshold is None:
        if threshold_split not in splits:
            raise ValueError(f"threshold split {threshold_split!r} is not among the splits {splits}")
        sel = [r for r in rows if r["split"] == threshold_split]
        threshold = choose_threshold([r["step_scores"] for r in sel], [r["label"] for r in sel])
        how = f"chosen on split {threshold_split!r} (F1-maximising over its step scores)"
    else:
        how = "given"
    per = {}
    for sp in splits:
        sel = [r for r in rows if r["split"] == sp]
        labels = [r["label"] for r in sel]
        preds = [first_wrong(r["step_scores"], threshold) for r in sel]
        per[sp] = {
            "model": processbench_scores(preds, labels),
            "never_wrong": processbench_scores([-1] * len(sel), labels),
            "random_step": random_step_baseline([len(r["step_scores"]) for r in sel], labels),
            "n": len(sel),
        }
    return {
        "protocol": "ProcessBench: first step scored below the threshold vs label; F1 = harmonic mean of acc_err and acc_cor",
        "threshold": threshold,
        "threshold_rule": how,
        "splits": per,
        "f1_mean": float(np.mean([per[s]["model"]["f1"] for s in splits])),
    }


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
