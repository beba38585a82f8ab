"""The native ``rewardlab`` format (:meth:`Comparison.to_json`): prompt, responses, chosen, ranking/tiers, scores."""

from __future__ import annotations

import math
from typing import Any

from rewardlab.data.fields import (
    IDENTICAL_IS_TIE,
    ReadOptions,
    build_comparison,
    check_text,
    data_error,
    is_int,
    is_number,
    required,
)
from rewardlab.data.messages import checked_messages
from rewardlab.data.record import Comparison, check_tiers


def _native_prompt(row: dict, location: dict) -> Any:
    value = required(row, location, "prompt")
    if value == "":
        return ""  # "no prompt", as produced by TRL implicit-prompt text rows
    if isinstance(value, list):
        return checked_messages(value, location, "prompt")
    return check_text(value, location, "prompt", what="text or a list of messages")


def native_responses(row: dict, location: dict) -> tuple[str, ...]:
    value = required(row, location, "responses")
    if not isinstance(value, list) or len(value) < 2:
        raise data_error(location, "responses", f"expected a list of at least two texts, got {value!r:.80}")
    return tuple(check_text(item, location, "responses", what=f"response {i}") for i, item in enumerate(value))


def _native_chosen(row: dict, location: dict, responses: tuple[str, ...]) -> int:
    value = required(row, location, "chosen")
    if not is_int(value) or not 0 <= value < len(responses):
        raise data_error(location, "chosen", f"expected a response index 0..{len(responses) - 1}, got {value!r}")
    for i, response in enumerate(responses):
        if i != value and response == responses[value] and not IDENTICAL_IS_TIE.get():
            raise data_error(location, "responses", f"response {i} is identical to the chosen response")
    return value


def _native_ranking(row: dict, location: dict, k: int, chosen: int) -> tuple[int, ...] | None:
    value = row.get("ranking")
    if value is None:
        return None
    if not isinstance(value, list) or not all(is_int(i) for i in value) or sorted(value) != list(range(k)):
        raise data_error(location, "ranking", f"expected a permutation of 0..{k - 1}, got {value!r}")
    if value[0] != chosen:
        raise data_error(location, "ranking", f"ranks {value[0]} first but chosen is {chosen}")
    return tuple(value)


def _native_scores(row: dict, location: dict, k: int) -> tuple[float, ...] | None:
    value = row.get("scores")
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != k or not all(is_number(s) and math.isfinite(s) for s in value):
        raise data_error(location, "scores", f"expected {k} finite numbers, got {value!r}")
    return tuple(float(s) for s in value)


def _native_tiers(row: dict, location: dict, k: int, chosen: int) -> tuple[tuple[int, ...], ...] | None:
    value = row.get("tiers")
    if value is None:
        return None
    if row.get("ranking") is not None:
        raise data_error(location, "tiers", "give ranking (full, strict) or tiers (partial, with ties), not both")
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(t, list) and t and all(is_int(i) for i in t) for t in value)
    ):
        raise data_error(
            location, "tiers", f"expected a list of non-empty lists of response indices, got {value!r:.80}"
        )
    tiers = tuple(tuple(t) for t in value)
    try:
        check_tiers(tiers, k)
    except ValueError as e:
        raise data_error(location, "tiers", str(e)) from None
    if chosen not in tiers[0]:
        raise data_error(location, "tiers", f"chosen {chosen} is not in the first tier {list(tiers[0])}")
    return tiers


def parse_rewardlab(row: dict, location: dict, options: ReadOptions | None = None) -> Comparison:
    prompt = _native_prompt(row, location)
    responses = native_responses(row, location)
    chosen = _native_chosen(row, location, responses)
    return build_comparison(
        row,
        location,
        prompt,
        responses,
        chosen,
        ranking=_native_ranking(row, location, len(responses), chosen),
        tiers=_native_tiers(row, location, len(responses), chosen),
        scores=_native_scores(row, location, len(responses)),
    )
