"""Ranked lists (Nectar, K-wise data): a ranking with ties (inner lists) or one rank per response."""

from __future__ import annotations

from typing import Any

from rewardlab.data.fields import (
    ReadOptions,
    build_comparison,
    check_text,
    data_error,
    distinct_responses,
    finite_number,
    is_int,
    required,
)
from rewardlab.data.messages import prompt_field
from rewardlab.data.parsers.native import native_responses
from rewardlab.data.record import Comparison, check_tiers


def _tiers_from_ranks(ranks: list[float | None], location: dict, field: str) -> tuple[tuple[int, ...], ...]:
    """Rank numbers (lower is better, equal ranks tie, None unranked) → tiers."""
    ranked = [i for i, r in enumerate(ranks) if r is not None]
    if not ranked:
        raise data_error(location, field, "no response has a rank")
    tiers: list[list[int]] = []
    for i in sorted(ranked, key=lambda i: (ranks[i], i)):
        if tiers and ranks[tiers[-1][0]] == ranks[i]:
            tiers[-1].append(i)
        else:
            tiers.append([i])
    return tuple(tuple(t) for t in tiers)


def _ranking_tiers(value: Any, location: dict, k: int) -> tuple[tuple[int, ...], ...]:
    if not isinstance(value, list) or not value:
        raise data_error(location, "ranking", f"expected a non-empty list of response indices, got {value!r:.80}")
    tiers = []
    for entry in value:
        tier = entry if isinstance(entry, list) else [entry]
        if not tier or not all(is_int(i) for i in tier):
            raise data_error(location, "ranking", f"expected response indices or lists of them (ties), got {entry!r}")
        tiers.append(tuple(sorted(tier)))
    try:
        check_tiers(tuple(tiers), k)
    except ValueError as e:
        raise data_error(location, "ranking", str(e)) from None
    return tuple(tiers)


def _ranks(value: Any, location: dict, field: str, k: int) -> list[float | None]:
    if not isinstance(value, list) or len(value) != k:
        raise data_error(location, field, f"expected {k} ranks (numbers, lower is better, or null), got {value!r:.80}")
    ranks = [None if r is None else finite_number(r, location, field, f"rank {i}") for i, r in enumerate(value)]
    for i, r in enumerate(ranks):
        if r is not None and r < 1:
            raise data_error(location, field, f"rank {i}: ranks start at 1 (1 = best), got {value[i]!r}")
    return ranks


def parse_ranked(row: dict, location: dict, options: ReadOptions | None = None) -> Comparison:
    prompt = prompt_field(row, location, "prompt")
    if row.get("answers") is not None:  # Nectar
        answers = row["answers"]
        if not isinstance(answers, list) or len(answers) < 2:
            raise data_error(location, "answers", f"expected a list of at least two answers, got {answers!r:.80}")
        if not all(isinstance(a, dict) for a in answers):
            raise data_error(location, "answers", "expected objects with 'answer' and 'rank'")
        responses = tuple(
            check_text(a.get("answer"), location, "answers", what=f"answer {i}") for i, a in enumerate(answers)
        )
        tiers = _tiers_from_ranks(
            _ranks([a.get("rank") for a in answers], location, "answers", len(answers)), location, "answers"
        )
        field = "answers"
    else:
        responses = native_responses(row, location)
        field = "responses"
        if row.get("ranking") is not None:
            tiers = _ranking_tiers(row["ranking"], location, len(responses))
        else:
            tiers = _tiers_from_ranks(
                _ranks(required(row, location, "ranks"), location, "ranks", len(responses)), location, "ranks"
            )
    distinct_responses(responses, location, field)
    full = all(len(t) == 1 for t in tiers) and sum(len(t) for t in tiers) == len(responses)
    return build_comparison(
        row,
        location,
        prompt,
        responses,
        tiers[0][0],
        ranking=tuple(t[0] for t in tiers) if full else None,
        tiers=None if full else tiers,
    )
