"""Multi-attribute ratings: one response to one prompt with named, possibly missing, ratings.

Preference formats (:mod:`rewardlab.data.formats`) turn ratings into one score and a ranking. Regression and
multi-objective reward models (:mod:`rewardlab.multiobjective`) need the ratings themselves, kept apart, with
"not rated" kept as missing (masked in the loss), so this module reads them into :class:`RatedText` records.

Every attribute has a :class:`Scale` ``[low, high]``; ratings are stored normalised to ``[0, 1]``
(``(v - low) / (high - low)``) and the scales are recorded with the model, so a prediction maps back with
``low + r · (high - low)``. A rating outside its scale, a non-numeric rating or a response with every attribute
missing is a :class:`DataError` naming the file, the line (or row) and the field.

Rated formats (:data:`RATED_FORMATS`; ``auto`` picks one from the first row's columns):

``helpsteer2``
    HelpSteer2 columns: ``prompt``, ``response`` and ``helpfulness``, ``correctness``, ``coherence``,
    ``complexity``, ``verbosity`` (0–4). A missing or null column is a missing rating.
``nemo``
    NeMo-Aligner's regression format: ``{"text": <SteerLM transcript>, "label": [9 numbers]}`` with −100 for a
    missing label. The nine slots are :data:`NEMO_ATTRIBUTES` (quality, toxicity, humor, creativity, then
    HelpSteer2's five). The transcript ``<extra_id_0>System\\n…\\n<extra_id_1>User\\n…\\n<extra_id_1>Assistant\\n…``
    becomes messages; the final assistant turn is the response.
``aspects``
    UltraFeedback style: ``prompt`` (or ``instruction``) and ``completions``, a list of objects with
    ``response`` and ``ratings`` ``{aspect: number}`` or ``annotations`` ``{aspect: {"Rating": "4", …}}``
    (``"N/A"`` or null: not rated). One record per completion. UltraFeedback's scale is 1–5.
``columns``
    Any numeric columns: ``prompt``, ``response`` and the columns named by ``attributes``.

Scales: HelpSteer2's and NeMo's attributes 0–4, UltraFeedback's aspects 1–5; any other attribute needs an
explicit scale (``scales={"name": (low, high)}``, on the command line ``--attribute-scales name=low:high``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from rewardlab.core.errors import DataError
from rewardlab.data.fields import data_error, default_id, source_name, unsafe_meta
from rewardlab.data.fields import text_field as _text
from rewardlab.data.messages import prompt_field as _prompt
from rewardlab.data.parsers.ratings import HELPSTEER2_ATTRIBUTES
from rewardlab.data.readers import iter_rows
from rewardlab.data.record import Prompt

NEMO_ATTRIBUTES = ("quality", "toxicity", "humor", "creativity", *HELPSTEER2_ATTRIBUTES)
NEMO_MISSING = -100
ULTRAFEEDBACK_ASPECTS = ("helpfulness", "honesty", "instruction_following", "truthfulness")


@dataclass(frozen=True)
class Scale:
    """The range ``[low, high]`` an attribute is rated on."""

    low: float
    high: float

    def __post_init__(self):
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.high > self.low):
            raise ValueError(f"a scale needs finite low < high, got [{self.low}, {self.high}]")

    def normalise(self, value: float) -> float:
        return (value - self.low) / (self.high - self.low)

    def denormalise(self, value: float) -> float:
        return self.low + value * (self.high - self.low)

    def to_json(self) -> list[float]:
        return [self.low, self.high]


DEFAULT_SCALES: dict[str, dict[str, Scale]] = {
    "helpsteer2": {a: Scale(0, 4) for a in HELPSTEER2_ATTRIBUTES},
    "nemo": {a: Scale(0, 4) for a in NEMO_ATTRIBUTES},
    "aspects": {},  # every aspect: Scale(1, 5) unless given (UltraFeedback)
    "columns": {a: Scale(0, 4) for a in HELPSTEER2_ATTRIBUTES},
}
ASPECT_SCALE = Scale(1, 5)


@dataclass(frozen=True)
class RatedText:
    """One (prompt, response) with ratings aligned to :attr:`RatedSet.attributes`, normalised to [0, 1];
    ``None`` = not rated. ``unsafe`` marks a prompt tagged unsafe (the Llama 2 rule reads it)."""

    prompt: Prompt
    response: str
    ratings: tuple[float | None, ...]
    source: str = ""
    id: str = ""
    unsafe: bool = False

    def mask(self) -> tuple[float, ...]:
        return tuple(0.0 if r is None else 1.0 for r in self.ratings)


@dataclass
class RatedSet:
    """What :func:`load_rated` read: the attribute names, their scales and the records."""

    attributes: tuple[str, ...]
    scales: tuple[Scale, ...]
    items: list[RatedText] = field(default_factory=list)
    format: str = ""
    source: str = ""

    def scales_json(self) -> dict[str, list[float]]:
        return {a: s.to_json() for a, s in zip(self.attributes, self.scales)}


def parse_attribute_list(text: str | None) -> tuple[str, ...] | None:
    """``"helpfulness,correctness"`` → ``("helpfulness", "correctness")``; None/"" → None. Duplicates refused."""
    if text is None or not str(text).strip():
        return None
    names = tuple(n.strip() for n in str(text).split(","))
    if any(not n for n in names):
        raise DataError(f"empty attribute name in {text!r}", path="attributes")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DataError(f"attribute(s) named twice: {', '.join(dup)}", path="attributes")
    return names


def parse_scales(text: str | None) -> dict[str, Scale]:
    """``"quality=0:9,score=1:10"`` → ``{"quality": Scale(0, 9), "score": Scale(1, 10)}``."""
    out: dict[str, Scale] = {}
    if text is None or not str(text).strip():
        return out
    for part in str(text).split(","):
        name, sep, rng = part.partition("=")
        low, colon, high = rng.partition(":")
        try:
            out[name.strip()] = Scale(float(low), float(high))
        except ValueError:
            colon = ""
        if not sep or not colon or not name.strip():
            raise DataError(f"expected name=low:high (low < high), got {part.strip()!r}", path="attribute_scales")
    return out


# --- row parsers: (row, location) -> (prompt, response, {attribute: raw value}, unsafe) -----------------------

RawRated = tuple[Prompt, str, dict[str, Any], bool]


def _unsafe(row: dict, location: dict) -> bool:
    return unsafe_meta(row, location).get("unsafe", False)


def _rated_columns(row: dict, location: dict, names: Iterable[str]) -> list[RawRated]:
    ratings = {n: row.get(n) for n in names}
    return [(_prompt(row, location, "prompt"), _text(row, location, "response"), ratings, _unsafe(row, location))]


def parse_helpsteer2_rated(row: dict, location: dict, attributes: tuple[str, ...] | None) -> list[RawRated]:
    return _rated_columns(row, location, attributes or HELPSTEER2_ATTRIBUTES)


def parse_columns_rated(row: dict, location: dict, attributes: tuple[str, ...] | None) -> list[RawRated]:
    if not attributes:
        raise data_error(location, None, "the 'columns' format needs --attributes naming the rating columns")
    return _rated_columns(row, location, attributes)


_NEMO_TURN = re.compile(r"<extra_id_1>(User|Assistant)\n")


def parse_nemo_transcript(text: str, location: dict, field: str = "text") -> tuple[tuple[dict, ...], str]:
    """A SteerLM transcript → (prompt messages, final assistant response). The system turn is kept when not empty."""
    head, *rest = _NEMO_TURN.split(text)
    if not rest:
        raise data_error(location, field, "no '<extra_id_1>User' / '<extra_id_1>Assistant' turns in the transcript")
    messages: list[dict] = []
    system = head.removeprefix("<extra_id_0>System\n").strip() if head.startswith("<extra_id_0>System") else ""
    if head.strip() and not head.startswith("<extra_id_0>System"):
        raise data_error(
            location, field, f"text before the first turn is not a '<extra_id_0>System' header: {head!r:.60}"
        )
    if system:
        messages.append({"role": "system", "content": system})
    for role, content in zip(rest[0::2], rest[1::2]):
        content = re.sub(r"\n?<extra_id_2>.*\Z", "", content, flags=re.S)  # SteerLM attribute line, if any
        messages.append({"role": role.lower(), "content": content.strip()})
    if messages[-1]["role"] != "assistant" or not messages[-1]["content"]:
        raise data_error(location, field, "the transcript does not end with a non-empty assistant turn")
    prompt = tuple(messages[:-1])
    if not any(m["role"] == "user" for m in prompt):
        raise data_error(location, field, "no user turn before the final assistant turn")
    for i, m in enumerate(prompt):
        if not m["content"]:
            raise data_error(location, field, f"empty {m['role']} turn (turn {i})")
    return prompt, messages[-1]["content"]


def parse_nemo_rated(row: dict, location: dict, attributes: tuple[str, ...] | None) -> list[RawRated]:
    text = _text(row, location, "text")
    labels = row.get("label")
    if not isinstance(labels, list) or len(labels) != len(NEMO_ATTRIBUTES):
        raise data_error(
            location,
            "label",
            f"expected a list of {len(NEMO_ATTRIBUTES)} labels "
            f"({', '.join(NEMO_ATTRIBUTES)}; {NEMO_MISSING} = missing), got {labels!r:.80}",
        )
    prompt, response = parse_nemo_transcript(text, location)
    ratings = {n: (None if v == NEMO_MISSING else v) for n, v in zip(NEMO_ATTRIBUTES, labels)}
    for n in attributes or ():
        if n not in ratings:
            raise data_error(
                location, "label", f"NeMo labels have no attribute {n!r}; they are {', '.join(NEMO_ATTRIBUTES)}"
            )
    return [(prompt, response, ratings, _unsafe(row, location))]


def _aspect_value(value: Any) -> Any:
    """``{"Rating": "4", …}`` → ``"4"``; ``"N/A"`` → None; numbers and anything else unchanged."""
    if isinstance(value, dict):
        value = value.get("Rating", value.get("rating"))
    return None if value == "N/A" else value


def parse_aspects_rated(row: dict, location: dict, attributes: tuple[str, ...] | None) -> list[RawRated]:
    prompt = _prompt(row, location, "prompt", "instruction")
    completions = row.get("completions")
    if not isinstance(completions, list) or not completions:
        raise data_error(location, "completions", f"expected a non-empty list of completions, got {completions!r:.80}")
    out = []
    for i, item in enumerate(completions):
        where = f"completions[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("response"), str) or not item["response"].strip():
            raise data_error(location, where, "expected an object with a non-empty 'response'")
        ratings = item.get("ratings", item.get("annotations"))
        if not isinstance(ratings, dict):
            raise data_error(location, where, "expected 'ratings' {aspect: number} or 'annotations' {aspect: {Rating}}")
        names = attributes or tuple(ratings)
        out.append(
            (
                prompt,
                item["response"],
                {f"{where}.{n}": _aspect_value(ratings.get(n)) for n in names},
                _unsafe(row, location),
            )
        )
    return out


RatedParser = Callable[[dict, dict, "tuple[str, ...] | None"], list[RawRated]]
RATED_FORMATS: dict[str, RatedParser] = {
    "helpsteer2": parse_helpsteer2_rated,
    "nemo": parse_nemo_rated,
    "aspects": parse_aspects_rated,
    "columns": parse_columns_rated,
}


def detect_rated_format(row: dict, location: dict, attributes: tuple[str, ...] | None) -> str:
    if {"text", "label"} <= row.keys():
        return "nemo"
    if "completions" in row:
        return "aspects"
    if {"prompt", "response"} <= row.keys():
        return "helpsteer2" if "helpfulness" in row and not attributes else "columns"
    raise data_error(
        location,
        None,
        f"cannot tell the rated format from the columns {sorted(row)}; accepted: "
        "helpsteer2 (prompt, response, helpfulness, …), nemo (text, label), "
        "aspects (prompt, completions[].ratings), columns (prompt, response, --attributes)",
    )


def _number(value: Any, location: dict, field: str) -> float | None:
    """A rating: a finite number (a numeric string is accepted, as in UltraFeedback); None = missing."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise data_error(location, field, f"rating is not a number: {value!r:.40}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise data_error(location, field, f"rating is not a finite number: {value!r:.40}")
    return float(value)


def _scale_for(name: str, format: str, scales: dict[str, Scale]) -> Scale | None:
    if name in scales:
        return scales[name]
    if name in DEFAULT_SCALES[format]:
        return DEFAULT_SCALES[format][name]
    return ASPECT_SCALE if format == "aspects" else None


def load_rated(
    source: str,
    attributes: tuple[str, ...] | None = None,
    format: str = "auto",
    scales: dict[str, Scale] | None = None,
    limit: int | None = None,
) -> RatedSet:
    """Read ``source`` into a :class:`RatedSet` with the attributes named. Default: every attribute of the format
    that at least one response rates (NeMo's unused slots are left out); a named attribute nobody rates is an error."""
    if format != "auto" and format not in RATED_FORMATS:
        raise DataError(
            f"unknown rated format {format!r}; accepted: auto, {', '.join(RATED_FORMATS)}", path=str(source)
        )
    scales = dict(scales or {})
    out: RatedSet | None = None
    for location, row in iter_rows(str(source)):
        if limit is not None and out is not None and len(out.items) >= limit:
            break
        name = detect_rated_format(row, location, attributes) if format == "auto" else format
        format = name
        for prompt, response, raw, unsafe in RATED_FORMATS[name](row, location, attributes):
            # aspects: keys are "completions[i].aspect" so errors name the completion; the attribute is the tail
            names = tuple(k.rpartition(".")[2] if name == "aspects" else k for k in raw)
            if out is None:
                attrs = attributes or names
                missing_scale = [a for a in attrs if _scale_for(a, name, scales) is None]
                if missing_scale:
                    raise DataError(
                        f"no known scale for attribute(s) {', '.join(missing_scale)}; give "
                        f"--attribute-scales {missing_scale[0]}=LOW:HIGH",
                        path=str(source),
                    )
                out = RatedSet(
                    tuple(attrs), tuple(_scale_for(a, name, scales) for a in attrs), format=name, source=str(source)
                )
            values = dict(zip(names, raw.items()))
            ratings: list[float | None] = []
            for attr, scale in zip(out.attributes, out.scales):
                key, value = values.get(attr, (attr, None))
                number = _number(value, location, key)
                if number is not None and not scale.low <= number <= scale.high:
                    raise data_error(
                        location,
                        key,
                        f"rating {number:g} is outside the scale [{scale.low:g}, {scale.high:g}] of {attr!r}",
                    )
                ratings.append(None if number is None else scale.normalise(number))
            if all(r is None for r in ratings):
                raise data_error(
                    location,
                    ", ".join(out.attributes),
                    "every attribute is missing (a response needs at least one rating)",
                )
            out.items.append(
                RatedText(
                    prompt,
                    response,
                    tuple(ratings),
                    source=source_name(location),
                    id=f"{default_id(location)}" + (f"/{len(out.items)}" if name == "aspects" else ""),
                    unsafe=unsafe,
                )
            )
    if out is None or not out.items:
        raise DataError("no rated responses", path=str(source))
    rated = [k for k in range(len(out.attributes)) if any(t.ratings[k] is not None for t in out.items)]
    if attributes is None and len(rated) < len(out.attributes):  # e.g. NeMo's four unused SteerLM slots
        out.attributes = tuple(out.attributes[k] for k in rated)
        out.scales = tuple(out.scales[k] for k in rated)
        out.items = [
            RatedText(t.prompt, t.response, tuple(t.ratings[k] for k in rated), t.source, t.id, t.unsafe)
            for t in out.items
        ]
    elif len(rated) < len(out.attributes):
        never = [a for k, a in enumerate(out.attributes) if k not in rated]
        raise DataError(f"no response rates attribute(s) {', '.join(never)} (named in --attributes)", path=str(source))
    return out
