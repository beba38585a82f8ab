"""Score records with any scorer and measure them: held-out comparisons (:func:`evaluate_model`) or a benchmark under
its rule (:func:`evaluate_benchmark`). What ``rewardlab eval``, ``rewardlab quickstart`` and the reports build on.
"""

from __future__ import annotations

from typing import Any

from rewardlab.benchmarks.base import score_records
from rewardlab.core.scorer import Scorer
from rewardlab.data.record import Comparison
from rewardlab.metrics.summary import evaluate_scores
from rewardlab.metrics.ties import TiePolicy


def _scores(rm: Scorer, records: list[Comparison], batch_size: int) -> list[list[float]]:
    """:func:`score_records`, except that a scorer whose scaliser reads the prompt's ``unsafe`` tag (the Llama 2
    rule: ``capabilities.reads_unsafe_tags``) scores record by record when some record is tagged, so the tag
    counts."""
    if rm.capabilities.reads_unsafe_tags and any(r.meta.get("unsafe") for r in records):
        return rm.score_comparisons(records, batch_size=batch_size)
    return score_records(rm, records, batch_size)


def evaluate_model(
    rm, records: list[Comparison], batch_size: int = 32, seed: int = 0, tie_policy: str = "strict", n_boot: int = 1000
) -> tuple[dict, list]:
    """Score ``records`` with ``rm`` (any scorer) and return ``(evaluate_scores result, scores)``."""
    scores = _scores(rm, records, batch_size)
    policy = TiePolicy.parse(tie_policy, seed=seed).resolve("strict")
    return evaluate_scores(records, scores, seed=seed, n_boot=n_boot, tie_policy=policy), scores


def evaluate_benchmark(
    scorer,
    bench,
    records: list[Comparison],
    batch_size: int = 32,
    seed: int = 0,
    tie_policy: str = "published",
    n_boot: int = 1000,
) -> tuple[dict, list, list]:
    """Score a benchmark's records with ``scorer``; return ``(result, scores, per-example credits)``.

    ``result`` holds the generic metrics (:func:`rewardlab.metrics.evaluate_scores`, over the records
    whose ``chosen`` is meaningful, ties credited by ``tie_policy`` resolved to strict for ``published``)
    and ``result["benchmark"]``, the benchmark rule's result (which records the tie policy it used).
    """
    scores = _scores(scorer, records, batch_size)
    bench_result = bench.score(
        records,
        scores,
        tie_policy=tie_policy,
        seed=seed,
        n_boot=n_boot,
        unreadable=scorer.unreadable_verdicts(records),
    )
    credits = bench_result.pop("per_example", None) or [None] * len(records)
    keep = [i for i, r in enumerate(records) if bench.pairwise(r)]
    result: dict[str, Any] = {}
    if keep:
        policy = TiePolicy.parse(tie_policy, seed=seed).resolve("strict")
        result = evaluate_scores(
            [records[i] for i in keep], [scores[i] for i in keep], seed=seed, n_boot=n_boot, tie_policy=policy
        )
    result["benchmark"] = bench_result
    return result, scores, credits
