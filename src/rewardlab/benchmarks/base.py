"""What every benchmark shares: the :class:`Benchmark` entry, loaded data, reading local rows, scoring.

Rows are read and their fields checked by the data stage's one library (:func:`rewardlab.data.loading.load_local_records`,
:mod:`rewardlab.data.fields`, :func:`rewardlab.data.messages.message_list`), so a bad benchmark row is reported as a bad
training row is: file, line or row, field, and how many other rows fail.

A benchmark is a *loader* (a local copy of the data in its published schema → :class:`BenchmarkData`,
one :class:`~rewardlab.data.Comparison` per benchmark example) and a *scoring rule* (the examples and
their rewards → a JSON-serialisable result dict). Rules are pure functions of numbers, so the tests
check them against hand-computed values without any model.

Scoring goes through :func:`score_records`, which asks any *scorer* for rewards: an object with
``score_comparisons(records, batch_size)`` returning one list of rewards per record (a
:class:`~rewardlab.models.reward_model.RewardModel`, or an LLM judge that returns per-response scores).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from rewardlab.core.errors import RewardlabError
from rewardlab.core.scorer import Scorer
from rewardlab.data.loading import load_local_records
from rewardlab.data.local import iter_local_rows, skipped_summary  # noqa: F401 (skipped_summary: re-exported)
from rewardlab.data.record import Comparison
from rewardlab.metrics.statistics import bootstrap_ci
from rewardlab.metrics.ties import TiePolicy

__all__ = [
    "Benchmark",
    "BenchmarkData",
    "iter_local_rows",
    "load_rows",
    "score_records",
    "subset_table",
    "mean_or_none",
]

# file endings the row readers accept (rewardlab.data.readers.FILE_READERS), longest first


@dataclass
class BenchmarkData:
    """A benchmark's examples as records (``source`` = subset, ``meta`` = benchmark labels)."""

    records: list[Comparison]
    source: str = ""
    skipped: list = field(default_factory=list)
    info: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Benchmark:
    """One registry entry.

    ``loader(path, limit=None, skip_invalid=False) -> BenchmarkData`` reads a local copy.
    ``rule(records, scores, policy, seed, n_boot) -> dict`` scores it; the dict has ``headline``
    (label → number), ``subsets`` (name → ``{n, score, ci95}``), ``per_example`` (one credit or
    ``None`` per record, moved to the per-example file by the caller) and anything else the rule
    reports. ``published_ties`` names the tie policy of each of the rule's decisions under the
    ``published`` policy. ``reference`` says where the formula comes from.
    ``pairwise(record)`` says whether a record's ``chosen`` is meaningful for the generic
    chosen-vs-rejected metrics and plots (False e.g. for a human tie vote).
    ``reads_comparisons``: the data is plain comparisons in any reader format (``--format``, ``--score-weights``
    apply), not a benchmark's fixed schema read by ``loader``.
    ``reads_unreadable``: the rule takes ``unreadable=`` (one bool per record: a judge gave no readable verdict
    for it) and scores those as the benchmark's own code does; for the other rules the count is only reported.
    ``scores``: what the rule reads — ``"responses"`` (one reward per response, any scorer: :meth:`score`) or
    ``"steps"`` (per-step scores of a verifier: ``loader`` gives solutions, ``rule(rows, threshold_split,
    threshold)``; ProcessBench, run by :func:`rewardlab.verifiers.run_eval.processbench_results`).
    """

    name: str
    version: str
    title: str
    loader: Callable[..., BenchmarkData]
    rule: Callable[..., dict]
    schema: str
    published_ties: dict
    reference: str
    pairwise: Callable[[Comparison], bool] = lambda record: True
    reads_comparisons: bool = False
    reads_unreadable: bool = False
    scores: str = "responses"  # what the rule reads: "responses" (a reward per response) or "steps" (a verifier's)

    def load(self, path: str, limit: int | None = None, skip_invalid: bool = False) -> BenchmarkData:
        return self.loader(path, limit=limit, skip_invalid=skip_invalid)

    def score(
        self,
        records: Sequence[Comparison] | BenchmarkData,
        scores: Sequence[Sequence[float]],
        tie_policy: TiePolicy | str | None = "published",
        seed: int = 0,
        n_boot: int = 1000,
        unreadable: Sequence[bool] | None = None,
    ) -> dict:
        """Apply the rule; the result also records the benchmark, version and tie policy used. ``unreadable``
        (a judge's records without a readable verdict) goes to a rule that ``reads_unreadable``; the result's
        ``n_unreadable`` counts them either way (None: the scorer has no verdicts to read, e.g. a reward model)."""
        if isinstance(records, BenchmarkData):
            records = records.records
        records = list(records)
        if len(records) != len(scores):
            raise ValueError(f"{len(records)} records but {len(scores)} score rows")
        if not records:
            raise ValueError(f"{self.name}: no examples to score")
        for i, (record, row) in enumerate(zip(records, scores)):
            if len(row) != record.k:
                raise ValueError(f"record {i} ({record.id}): {record.k} responses but {len(row)} rewards")
            if not all(math.isfinite(float(x)) for x in row):
                raise ValueError(f"record {i} ({record.id}): rewards must be finite, got {list(row)}")
        policy = TiePolicy.parse(tie_policy, seed=seed)
        if unreadable is not None and len(unreadable) != len(records):
            raise ValueError(f"{len(unreadable)} unreadable flags but {len(records)} records")
        extra = {"unreadable": list(unreadable)} if self.reads_unreadable and unreadable is not None else {}
        out = self.rule(records, [[float(x) for x in row] for row in scores], policy, seed, n_boot, **extra)
        if unreadable is not None:
            out.setdefault("n_unreadable", int(sum(bool(u) for u in unreadable)))
        rules = {what: str(policy.resolve(name)) for what, name in self.published_ties.items()}
        return {
            "benchmark": self.name,
            "version": self.version,
            "title": self.title,
            "tie_policy": str(policy),
            "tie_rules": rules,
            "reference": self.reference,
            **out,
        }


# ----------------------------------------------------------------------------------------------
# reading local copies


def load_rows(
    source: str,
    parse: Callable[[dict, dict, str], Comparison],
    *,
    limit: int | None = None,
    skip_invalid: bool = False,
    keep: Callable[[Comparison], bool] | None = None,
) -> BenchmarkData:
    """Read ``source`` with :func:`rewardlab.data.loading.load_local_records` (the comparison loader's rule for a
    bad row) and turn each row into a record with ``parse(row, location, name)``, whose field checks are
    :mod:`rewardlab.data.fields`'. Bad rows raise :class:`DataError` naming file, line/row and field, or with
    ``skip_invalid`` are collected in ``skipped``. ``keep`` filters parsed records (counted in
    ``info["excluded"]``); ``limit`` caps the records kept."""
    read = load_local_records(source, parse, limit=limit, skip_invalid=skip_invalid, keep=keep)
    return BenchmarkData(read.records, str(source), read.skipped, {"excluded": read.excluded})


# ----------------------------------------------------------------------------------------------
# scoring


def _check_rows(records: Sequence[Comparison], scores: Any, who: str) -> list[list[float]]:
    scores = [list(map(float, row)) for row in scores]
    if len(scores) != len(records):
        raise RewardlabError(f"{who} returned {len(scores)} score rows for {len(records)} records")
    for record, row in zip(records, scores):
        if len(row) != record.k:
            raise RewardlabError(
                f"{who} returned {len(row)} rewards for record {record.id!r} with {record.k} responses"
            )
    return scores


def score_records(scorer: Scorer, records: Sequence[Comparison], batch_size: int = 32) -> list[list[float]]:
    """Rewards ``[[r_0, r_1, ...], ...]`` for every response of every record.

    * A *pointwise* scorer (``scorer.capabilities.pointwise``, :mod:`rewardlab.core.scorer`: every reward
      model kind) scores each distinct (prompt, response) once: identical inputs get
      identical rewards (so an exact tie stays a tie whatever the batching), and repeated responses
      (e.g. one chosen answer in several RewardBench pairs) cost nothing extra.
    * Any other scorer is asked ``score_comparisons(records, batch_size=...)``, one record per example,
      so an LLM judge that compares a record's responses side by side sees them together.

    A record may carry per-response prompts in ``meta["prompts"]`` (MT-Bench turn 2: each answer follows
    its own model's first turn). A pointwise scorer scores each with its own prompt; a comparison scorer
    gets one record per response (the response twice, its second reward ignored).
    """
    records = list(records)
    if scorer.capabilities.pointwise:
        keys: dict[tuple[str, str], int] = {}
        items: list[tuple[Any, str]] = []
        index: list[list[int]] = []
        for record in records:
            prompts = record.meta.get("prompts") or (record.prompt,) * record.k
            row = []
            for prompt, response in zip(prompts, record.responses):
                probe = Comparison(prompt, (response, response))
                key = (probe.prompt_key(), response)
                if key not in keys:
                    keys[key] = len(items)
                    items.append((prompt, response))
                row.append(keys[key])
            index.append(row)
        flat = [float(x) for x in scorer.score(items, batch_size=batch_size)]
        if len(flat) != len(items):
            raise RewardlabError(f"scorer returned {len(flat)} rewards for {len(items)} items")
        return [[flat[i] for i in row] for row in index]

    plain = [r for r in records if not r.meta.get("prompts")]
    split: list[Comparison] = []
    for r in records:
        if r.meta.get("prompts"):
            split += [
                Comparison(p, (resp, resp), chosen=0, source=r.source, id=f"{r.id}#{j}")
                for j, (p, resp) in enumerate(zip(r.meta["prompts"], r.responses))
            ]
    batch = plain + split
    got = _check_rows(batch, scorer.score_comparisons(batch, batch_size=batch_size), "scorer.score_comparisons")
    plain_scores, split_scores = iter(got[: len(plain)]), iter(got[len(plain) :])
    out = []
    for r in records:
        if r.meta.get("prompts"):
            out.append([next(split_scores)[0] for _ in range(r.k)])
        else:
            out.append(next(plain_scores))
    return out


# ----------------------------------------------------------------------------------------------
# result helpers


def subset_table(
    names: Sequence[str], credits: Sequence[float], seed: int = 0, n_boot: int = 1000, groups: Sequence | None = None
) -> dict:
    """``{subset: {n, score, ci95}}`` (score = mean credit; CI: bootstrap over examples, or over ``groups`` when
    given: one key per example, :func:`~rewardlab.metrics.statistics.sampling_units`, so the examples of one
    prompt or item are drawn together), in order of first appearance."""
    names = list(names)
    credits = np.asarray(credits, dtype=np.float64)
    keys = None if groups is None else np.asarray(list(groups), dtype=object)
    out = {}
    for name in dict.fromkeys(names):
        mask = np.asarray([n == name for n in names])
        values = credits[mask]
        unit = None if keys is None else keys[mask].tolist()
        out[name] = {
            "n": int(values.size),
            "score": float(values.mean()),
            "ci95": list(bootstrap_ci(values, n=n_boot, seed=seed, groups=unit)) if n_boot > 0 else None,
        }
    return out


def mean_or_none(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None
