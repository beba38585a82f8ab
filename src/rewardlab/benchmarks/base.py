"""What every benchmark shares: the :class:`Benchmark` entry, loaded data, local row reading, scoring.

A benchmark is a *loader* (a local copy of the data in its published schema → :class:`BenchmarkData`,
one :class:`~rewardlab.data.Comparison` per benchmark example) and a *scoring rule* (the examples and
their rewards → a JSON-serialisable result dict). Rules are pure functions of numbers, so the tests
check them against hand-computed values without any model.

Scoring goes through :func:`score_records`, which asks any *scorer* for rewards: an object with
``score_comparisons(records, batch_size)`` returning one list of rewards per record (a
:class:`~rewardlab.model.RewardModel`, or an LLM judge that returns per-response scores).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from rewardlab.data.loading import with_failure_count
from rewardlab.data.readers import iter_rows
from rewardlab.data.record import Comparison
from rewardlab.errors import DataError, RewardlabError
from rewardlab.metrics.statistics import bootstrap_ci
from rewardlab.metrics.ties import TiePolicy
from rewardlab.model import RewardModel

__all__ = [
    "Benchmark",
    "BenchmarkData",
    "iter_local_rows",
    "load_rows",
    "score_records",
    "subset_table",
    "mean_or_none",
    "messages",
    "text",
    "text_list",
    "int_field",
]

# file endings the row readers accept (rewardlab.data.readers.FILE_READERS), longest first
_SUFFIXES = (".jsonl.gz", ".json.gz", ".jsonl", ".json", ".parquet", ".csv")


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


def _is_saved_dataset(path: Path) -> bool:
    return any((path / name).exists() for name in ("dataset_info.json", "dataset_dict.json", "state.json"))


def _stem(path: Path) -> str:
    name = path.name
    for suffix in _SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def iter_local_rows(
    source: str, on_error: Callable[[DataError], None] | None = None
) -> Iterator[tuple[dict, dict, str]]:
    """``(location, row, name)`` for every row of a local file or directory.

    A file (any type :func:`rewardlab.data.readers.iter_rows` reads) gives ``name`` = its base name
    without the extension. A ``datasets.save_to_disk`` directory is read as one dataset (name = the
    directory's name). Any other directory is walked recursively in sorted order, and each data file
    gives ``name`` = its path relative to the directory without the extension (e.g.
    ``Pairwise_set/Harmlessness/S1``). Benchmarks never fall back to a hub: a missing path is an error.
    """
    path = Path(os.path.expanduser(str(source)))
    if not path.exists():
        raise DataError("no such file or directory (benchmarks read a local copy of the data)", path=str(source))
    if path.is_dir() and not _is_saved_dataset(path):
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(_SUFFIXES))
        if not files:
            raise DataError(f"directory holds no data files ({', '.join(_SUFFIXES)})", path=str(source))
        for file in files:
            name = _stem(file)
            rel = file.relative_to(path).with_name(name).as_posix()
            for location, row in iter_rows(str(file), on_error=on_error):
                yield location, row, rel
        return
    name = path.name if path.is_dir() else _stem(path)
    for location, row in iter_rows(str(path), on_error=on_error):
        yield location, row, name


def load_rows(
    source: str,
    parse: Callable[[dict, dict, str], Comparison],
    *,
    limit: int | None = None,
    skip_invalid: bool = False,
    keep: Callable[[Comparison], bool] | None = None,
) -> BenchmarkData:
    """Read ``source`` with :func:`iter_local_rows` and turn each row into a record with
    ``parse(row, location, name)``. Bad rows raise :class:`DataError` naming file, line/row and field,
    or with ``skip_invalid`` are collected in ``skipped``. ``keep`` filters parsed records (counted in
    ``info["excluded"]``); ``limit`` caps the records kept."""
    try:
        return _load_rows(source, parse, limit=limit, skip_invalid=skip_invalid, keep=keep)
    except DataError as error:
        if skip_invalid or (error.line is None and error.row is None):
            raise
        try:
            others = len(_load_rows(source, parse, skip_invalid=True, keep=keep).skipped) - 1
        except DataError:  # no usable row at all
            others = -1
        if others < 0:
            raise error from None
        raise with_failure_count(error, others) from None


def _load_rows(
    source: str,
    parse: Callable[[dict, dict, str], Comparison],
    *,
    limit: int | None = None,
    skip_invalid: bool = False,
    keep: Callable[[Comparison], bool] | None = None,
) -> BenchmarkData:
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    data = BenchmarkData(records=[], source=str(source), info={"excluded": 0})
    on_error = data.skipped.append if skip_invalid else None
    if limit == 0:
        return data
    for location, row, name in iter_local_rows(source, on_error=on_error):
        try:
            record = parse(row, location, name)
        except DataError as error:
            if not skip_invalid:
                raise
            data.skipped.append(error)
            continue
        if keep is not None and not keep(record):
            data.info["excluded"] += 1
            continue
        data.records.append(record)
        if limit is not None and len(data.records) >= limit:
            break
    if not data.records:
        raise DataError("no usable examples" + skipped_summary(data.skipped, data.info["excluded"]), path=str(source))
    return data


SHOWN_REASONS = 3  # skipped_summary names this many reasons, then says how many more there are


def skipped_summary(skipped: list, excluded: int = 0) -> str:
    """``": 3 rows skipped as invalid (2× missing; 1× empty ...), first: FILE, line 2 ..."`` ('' when none). The
    :data:`SHOWN_REASONS` most frequent reasons are named; the rest as ``"… and N more reasons (M rows)"``."""
    parts = []
    if skipped:
        reasons: dict[str, int] = {}
        for e in skipped:
            key = getattr(e, "reason", str(e))
            reasons[key] = reasons.get(key, 0) + 1
        ranked = sorted(reasons.items(), key=lambda kv: -kv[1])
        why = "; ".join(f"{n}× {r}" for r, n in ranked[:SHOWN_REASONS])
        hidden = ranked[SHOWN_REASONS:]
        if hidden:  # never let the shown reasons pass for all of them
            rows = sum(n for _, n in hidden)
            why += (
                f"; … and {len(hidden)} more reason{'s' if len(hidden) != 1 else ''} "
                f"({rows} row{'s' if rows != 1 else ''})"
            )
        parts.append(
            f"{len(skipped)} row{'s' if len(skipped) != 1 else ''} skipped as invalid ({why}); first: {skipped[0]}"
        )
    if excluded:
        parts.append(f"{excluded} left out by the benchmark's filter")
    return (": " + "; ".join(parts)) if parts else ""


def _error(location: dict, field_name: str | None, message: str) -> DataError:
    return DataError(
        message, path=location.get("path", "?"), line=location.get("line"), row=location.get("row"), field=field_name
    )


def text(row: dict, location: dict, name: str, *, allow_empty: bool = False) -> str:
    """A required text column."""
    if name not in row or row[name] is None:
        raise _error(location, name, "missing")
    value = row[name]
    if not isinstance(value, str):
        raise _error(location, name, f"expected text, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise _error(location, name, "empty text")
    return value


def int_field(row: dict, location: dict, name: str, default: int | None = None) -> int:
    value = row.get(name, default)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise _error(location, name, f"expected an integer, got {value!r}")
    return int(value)


def messages(value: Any, location: dict, name: str) -> tuple[dict, ...]:
    """A conversation: a list of ``{"role", "content"}`` objects (other keys, e.g. RMB's ``language``,
    are dropped)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)  # CSV cells hold JSON text
        except ValueError:
            raise _error(location, name, "expected a list of messages") from None
    if not isinstance(value, (list, tuple)) or not value:
        raise _error(location, name, f"expected a non-empty list of messages, got {type(value).__name__}")
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise _error(location, name, f"message {i}: expected {{'role': text, 'content': text}}")
        out.append({"role": m["role"], "content": m["content"]})
    return tuple(out)


def text_list(row: dict, location: dict, name: str) -> list[str]:
    """A column holding one text or a list of texts (CSV: JSON text)."""
    value = row.get(name)
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            try:
                value = json.loads(stripped)
            except ValueError:
                pass
        if isinstance(value, str):
            value = [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise _error(location, name, f"expected a non-empty list of texts, got {value!r:.60}")
    for i, v in enumerate(value):
        if not isinstance(v, str):
            raise _error(location, name, f"item {i}: expected text, got {type(v).__name__}")
    return list(value)


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


def _pointwise(scorer: Any) -> bool:
    """True when the scorer scores each (prompt, response) on its own via ``score(items, batch_size)``:
    a RewardModel, or any object that says so with ``pointwise = True``."""
    if getattr(scorer, "pointwise", None) is not None:
        return bool(scorer.pointwise)
    return isinstance(scorer, RewardModel)


def score_records(scorer: Any, records: Sequence[Comparison], batch_size: int = 32) -> list[list[float]]:
    """Rewards ``[[r_0, r_1, ...], ...]`` for every response of every record.

    * A *pointwise* scorer (a :class:`~rewardlab.model.RewardModel`, or ``scorer.pointwise = True`` with
      ``score(items, batch_size)``) scores each distinct (prompt, response) once: identical inputs get
      identical rewards (so an exact tie stays a tie whatever the batching), and repeated responses
      (e.g. one chosen answer in several RewardBench pairs) cost nothing extra.
    * Any other scorer is asked ``score_comparisons(records, batch_size=...)``, one record per example,
      so an LLM judge that compares a record's responses side by side sees them together.

    A record may carry per-response prompts in ``meta["prompts"]`` (MT-Bench turn 2: each answer follows
    its own model's first turn). A pointwise scorer scores each with its own prompt; a comparison scorer
    gets one record per response (the response twice, its second reward ignored).
    """
    records = list(records)
    if _pointwise(scorer):
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
