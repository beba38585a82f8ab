"""Rated responses: UltraFeedback-style ratings, HelpSteer2 rows (one response each, grouped by prompt), and
NeMo regression rows (refused here: they state no preference)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from rewardlab.data.fields import (
    ReadOptions,
    check_text,
    data_error,
    distinct_responses,
    finite_number,
    is_number,
    record_names,
    required,
    text_field,
    type_name,
    unsafe_meta,
)
from rewardlab.data.messages import prompt_field
from rewardlab.data.parsers.native import native_responses
from rewardlab.data.record import Comparison, prompt_key

HELPSTEER2_ATTRIBUTES = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")


def _combine(
    ratings: dict[str, float], weights: dict[str, float] | None, location: dict, field: str, where: str
) -> float:
    """One score from aspect ratings: ``Σ w_a · rating_a``, or their mean when ``weights`` is None."""
    if weights is None:
        if not ratings:
            raise data_error(location, field, f"{where}: no ratings")
        return sum(ratings.values()) / len(ratings)
    missing = sorted(a for a, w in weights.items() if w and a not in ratings)
    if missing:
        raise data_error(
            location,
            field,
            f"{where}: no rating for {', '.join(missing)} (weighted in the score "
            f"weights); it has {', '.join(sorted(ratings)) or 'none'}",
        )
    return sum(w * ratings[a] for a, w in weights.items() if w)


def _aspect_ratings(value: Any, location: dict, field: str, where: str) -> dict[str, float]:
    """``{aspect: number | null}`` or UltraFeedback's ``{aspect: {"Rating": "4", …}}`` (a list of such is
    averaged); ``null`` and ``"N/A"`` mean "not rated" and are left out."""
    if not isinstance(value, dict):
        raise data_error(location, field, f"{where}: expected an object of aspect ratings, got {type_name(value)}")
    out: dict[str, float] = {}
    for aspect, rating in value.items():
        items = rating if isinstance(rating, list) else [rating]
        numbers = []
        for item in items:
            if isinstance(item, dict):
                item = item.get("Rating", item.get("rating"))
            if item is None or item == "N/A":
                continue
            if isinstance(item, str):
                try:
                    item = float(item)
                except ValueError:
                    raise data_error(
                        location, field, f"{where}: rating of {aspect!r} is not a number: {item!r:.40}"
                    ) from None
            numbers.append(finite_number(item, location, field, f"{where}, {aspect}"))
        if numbers:
            out[str(aspect)] = sum(numbers) / len(numbers)
    return out


def _item_score(item: Any, location: dict, field: str, where: str, options: ReadOptions | None) -> float:
    """A number, or aspect ratings combined by the score weights (default: their mean)."""
    weights = options.score_weights if options is not None else None
    if is_number(item):
        return finite_number(item, location, field, where)
    return _combine(_aspect_ratings(item, location, field, where), weights, location, field, where)


def _rated(
    row: dict, location: dict, prompt: Any, responses: tuple[str, ...], scores: list[float], field: str
) -> Comparison:
    distinct_responses(responses, location, field)
    return Comparison.from_scores(
        prompt, responses, tuple(scores), **record_names(row, location), meta=unsafe_meta(row, location)
    )


def parse_ratings(row: dict, location: dict, options: ReadOptions | None = None) -> Comparison:
    prompt = prompt_field(row, location, "prompt", "instruction")
    if row.get("completions") is None and row.get("responses") is not None:  # flat: responses + scores
        responses = native_responses(row, location)
        value = required(row, location, "scores")
        if not isinstance(value, list) or len(value) != len(responses):
            raise data_error(
                location,
                "scores",
                f"expected {len(responses)} scores (numbers or objects of aspect ratings), got {value!r:.80}",
            )
        scores = [_item_score(v, location, "scores", f"score {i}", options) for i, v in enumerate(value)]
        return _rated(row, location, prompt, responses, scores, "responses")
    completions = required(row, location, "completions")
    if not isinstance(completions, list) or len(completions) < 2:
        raise data_error(
            location, "completions", f"expected a list of at least two completions, got {completions!r:.80}"
        )
    responses, scores = [], []
    for i, item in enumerate(completions):
        where = f"completion {i}"
        if not isinstance(item, dict):
            raise data_error(location, "completions", f"{where}: expected an object, got {type_name(item)}")
        responses.append(check_text(item.get("response"), location, "completions", what=f"{where} response"))
        if item.get("score") is not None:
            scores.append(finite_number(item["score"], location, "completions", f"{where} score"))
        elif item.get("ratings", item.get("annotations")) is not None:
            scores.append(
                _item_score(item.get("ratings", item.get("annotations")), location, "completions", where, options)
            )
        else:
            raise data_error(location, "completions", f"{where}: no 'score', 'ratings' or 'annotations'")
    return _rated(row, location, prompt, tuple(responses), scores, "completions")


@dataclass(frozen=True)
class RatedResponse:
    """One HelpSteer2 row: a response to a prompt and its score; :func:`group_rated` makes the record."""

    prompt: Any
    response: str
    score: float
    location: dict
    names: dict  # source, id, weight
    meta: dict = dataclasses.field(default_factory=dict)  # {"unsafe": bool} from the row's unsafe column, else {}


def parse_helpsteer2(row: dict, location: dict, options: ReadOptions | None = None) -> RatedResponse:
    prompt = prompt_field(row, location, "prompt")
    response = text_field(row, location, "response")
    weights = (options.score_weights if options is not None else None) or {"helpfulness": 1.0}
    ratings = {}
    for name in dict.fromkeys([*HELPSTEER2_ATTRIBUTES, *weights]):
        value = row.get(name)
        if value is None:
            continue
        ratings[name] = finite_number(value, location, name, "attribute")
        if name in HELPSTEER2_ATTRIBUTES and not 0 <= ratings[name] <= 4:
            raise data_error(location, name, f"expected a rating from 0 to 4, got {value!r}")
    missing = sorted(a for a, w in weights.items() if w and a not in ratings)
    if missing:
        raise data_error(location, missing[0], "missing attribute (weighted in the score weights)")
    score = _combine(ratings, weights, location, missing[0] if missing else "helpfulness", "attributes")
    return RatedResponse(prompt, response, score, location, record_names(row, location), unsafe_meta(row, location))


def group_rated(items: list[RatedResponse]) -> Comparison:
    """One record from the rows of one prompt (in file order): ratings → ranking with ties."""
    first = items[0]
    if len(items) < 2:
        raise data_error(
            first.location,
            "response",
            "the only response to this prompt (rows are grouped by prompt; a comparison needs two)",
        )
    seen: dict[str, RatedResponse] = {}
    for item in items:
        if item.response in seen:
            where = seen[item.response].location
            position = where.get("line", where.get("row"))
            raise data_error(
                item.location,
                "response",
                f"identical to another response to this prompt ({'line' if 'line' in where else 'row'} {position})",
            )
        seen[item.response] = item
        if item.names["weight"] != first.names["weight"]:
            raise data_error(item.location, "weight", "differs from the weight of the first row of this prompt")
        if item.meta.get("unsafe", False) != first.meta.get("unsafe", False):  # a tag of the prompt, not the row
            raise data_error(item.location, "unsafe", "differs from the unsafe tag of the first row of this prompt")
    meta = next((i.meta for i in items if i.meta), {})
    return Comparison.from_scores(
        first.prompt, tuple(i.response for i in items), tuple(i.score for i in items), **first.names, meta=meta
    )


def group_key(item: RatedResponse) -> Any:
    """Rows with the same key form one record."""
    return prompt_key(item.prompt)


def parse_nemo_regression(row: dict, location: dict, options: ReadOptions | None = None) -> Comparison:
    """NeMo-Aligner regression rows (``text`` + ``label``) rate one response and state no preference."""
    raise data_error(
        location,
        "label",
        "a NeMo regression row (text + label) rates one response and holds no "
        "preference; train it with --objective regression (rewardlab.data.ratings)",
    )
