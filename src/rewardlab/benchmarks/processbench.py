"""ProcessBench (Zheng et al. 2024, arXiv 2412.06559): first-error identification of a process verifier.

The protocol is QwenLM/ProcessBench ``code/run_eval.py``: rows ``{id, generator, problem, steps, label,
final_answer_correct}``, ``label`` the 0-based index of the earliest wrong step (−1: every step correct). A model
predicts the index of the first step it judges wrong (−1: none). Per split (a row's id prefix: ``gsm8k-12`` →
``gsm8k``): ``acc_err`` = mean(pred == label) over the erroneous rows, ``acc_cor`` = mean(pred == −1) over the
all-correct rows, ``f1`` = 2·acc_err·acc_cor / (acc_err + acc_cor) (0 when both are 0); the overall F1 is the mean
over splits. A PRM outputs probabilities, so a step is judged wrong when its score is strictly below a threshold,
chosen on a split the user names (the F1-maximising one over the step scores seen there) or given, and recorded;
the splits it was chosen on are listed (their F1 is in-sample). Baselines: never-wrong (always −1: acc_err 0,
acc_cor 1, F1 0) and random-step (uniform over −1 and the K step indices: exactly 1/(K+1) per row).

Registered as ``processbench`` with ``scores="steps"``: the rule reads per-step scores (a verifier's), not one
reward per response, so ``rewardlab eval --benchmark processbench`` and ``rewardlab eval-verifier`` both score it
through :func:`rewardlab.verifiers.run_eval.processbench_results`, with this entry's loader and rule.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from rewardlab.benchmarks.base import Benchmark, BenchmarkData
from rewardlab.core.errors import DataError
from rewardlab.verifiers.readers import read_verifier_data


def split_of(solution_id: str) -> str:
    """ProcessBench's split of a row: its id's prefix (``gsm8k-12`` → ``gsm8k``; no ``-``: ``all``).

    >>> split_of("gsm8k-12"), split_of("olympiadbench-3"), split_of("row7")
    ('gsm8k', 'olympiadbench', 'all')
    """
    return solution_id.rsplit("-", 1)[0] if "-" in solution_id else "all"


def load(path: str, limit: int | None = None, skip_invalid: bool = False) -> BenchmarkData:
    """ProcessBench rows (or any step-labelled verifier file: the first step labelled wrong is the label) as
    solutions, in file order (``records``: :class:`~rewardlab.verifiers.records.Solution`). A solution whose first
    error cannot be told (no labels, or unlabelled before any error) is a DataError naming it."""
    data = read_verifier_data(path, "auto", skip_invalid=skip_invalid, limit=limit)
    sols = [s for p in data.problems for s in p.solutions]
    unknown = [s.id for s in sols if s.first_error is None]
    if unknown:
        raise DataError(
            f"{len(unknown)} solutions have no first-error label (the first: {unknown[0]!r}); ProcessBench needs a "
            "'label' per row, or step labels up to the first wrong step",
            path=path,
        )
    return BenchmarkData(records=sols, source=str(path), skipped=data.skipped, info={"format": data.format})


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
    in_sample = [threshold_split] if how.startswith("chosen") else []  # scored on the split it was chosen on
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
        "threshold_in_sample_splits": in_sample,  # their F1 is optimistic: the threshold was fitted to them
        "splits": per,
        "f1_mean": float(np.mean([per[s]["model"]["f1"] for s in splits])),
    }


BENCHMARK = Benchmark(
    name="processbench",
    version="2024-12 (splits gsm8k, math, olympiadbench, omnimath)",
    title="ProcessBench",
    loader=load,
    rule=processbench_report,
    schema="id, generator, problem, steps [..], label (first wrong step, -1: all correct), final_answer_correct",
    published_ties={"threshold": "a step is wrong when its score is strictly below the threshold"},
    reference="QwenLM/ProcessBench code/run_eval.py (F1 of acc_err and acc_cor per split, mean over splits)",
    scores="steps",
)
