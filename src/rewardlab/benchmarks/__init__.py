"""Benchmark registry: a plain mapping from a name to its loader, scoring rule and version.

>>> from rewardlab.benchmarks import REGISTRY, get_benchmark
>>> bench = get_benchmark("rewardbench")
>>> data = bench.load("rewardbench-filtered.jsonl")                 # a local copy, published schema
>>> result = bench.score(data, scores, tie_policy="published")      # scores[i][j]: reward of response j

=================  =========================================================================
name               what
=================  =========================================================================
rewardbench        RewardBench v1: subsets → 4 sections (count-weighted) + Prior Sets; both headlines
rewardbench-2      RewardBench 2: best-of-4 (1/k for ties at the top), Ties formula, mean of six
rmb                RMB: pairwise and Best-of-N accuracy for helpfulness/harmlessness, mean of four
generic            any comparison file: pairwise accuracy, per source
best-of-n          any comparison file with N candidates: gold-at-top accuracy vs random 1/N
mt-bench-human     MT-Bench human judgments: judge–human agreement with/without ties, W/L/T
evalbiasbench      EvalBiasBench (OffsetBias): per-bias single/pair accuracy and pair agreement, both orders
processbench       ProcessBench: a verifier's first wrong step vs the label, F1 of acc_err/acc_cor per split
=================  =========================================================================

``detect_benchmark(path)`` names the benchmark a file's own layout gives away (EvalBiasBench's JSON object
keyed by bias name), so ``eval`` scores it by that rule without ``--benchmark``.

Each module's docstring says exactly where its formula was read.
"""

from __future__ import annotations

from rewardlab.benchmarks import evalbiasbench, generic, mtbench, processbench, rewardbench, rewardbench2, rmb
from rewardlab.benchmarks.base import Benchmark, BenchmarkData, score_records
from rewardlab.core.errors import RewardlabError

REGISTRY: dict[str, Benchmark] = {
    b.name: b
    for b in (
        rewardbench.BENCHMARK,
        rewardbench2.BENCHMARK,
        rmb.BENCHMARK,
        generic.GENERIC,
        generic.BEST_OF_N,
        mtbench.BENCHMARK,
        evalbiasbench.BENCHMARK,
        processbench.BENCHMARK,
    )
}
# benchmarks recognised from the file itself: name -> detect(path) -> bool
DETECTORS = {"evalbiasbench": evalbiasbench.detect}
ALIASES = {
    "rewardbench-v1": "rewardbench",
    "rewardbench-1": "rewardbench",
    "rb1": "rewardbench",
    "rewardbench2": "rewardbench-2",
    "rewardbench-v2": "rewardbench-2",
    "rb2": "rewardbench-2",
    "bon": "best-of-n",
    "mt-bench": "mt-bench-human",
    "judge-agreement": "mt-bench-human",
    "biasbench": "evalbiasbench",
    "eval-bias-bench": "evalbiasbench",
    "process-bench": "processbench",
}

__all__ = [
    "REGISTRY",
    "ALIASES",
    "DETECTORS",
    "Benchmark",
    "BenchmarkData",
    "get_benchmark",
    "detect_benchmark",
    "describe_benchmarks",
    "score_records",
]


def get_benchmark(name: str) -> Benchmark:
    """The registry entry for ``name`` (or an alias); a clear error listing the names otherwise."""
    key = ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in REGISTRY:
        raise RewardlabError(
            f"unknown benchmark {name!r}; known: {', '.join(REGISTRY)} "
            "(`rewardlab eval --benchmark list` describes them)"
        )
    return REGISTRY[key]


def detect_benchmark(path: str) -> Benchmark | None:
    """The benchmark whose published layout ``path`` has (:data:`DETECTORS`), or None."""
    for name, matches in DETECTORS.items():
        if matches(path):
            return REGISTRY[name]
    return None


def describe_benchmarks() -> str:
    """A plain-text table of the registry: name, version, expected columns, published tie rules."""
    lines = []
    for b in REGISTRY.values():
        ties = ", ".join(f"{k}: {v}" for k, v in b.published_ties.items())
        lines += [
            f"{b.name:<16} {b.title} — version {b.version}",
            f"{'':<16} columns: {b.schema}",
            f"{'':<16} published tie rules: {ties}",
            f"{'':<16} source: {b.reference}",
            "",
        ]
    aliases = ", ".join(f"{k} → {v}" for k, v in ALIASES.items())
    lines.append(f"aliases: {aliases}")
    lines.append("tie policies (--tie-policy): published (default), strict, half, fractional, random[:SEED]")
    return "\n".join(lines)
