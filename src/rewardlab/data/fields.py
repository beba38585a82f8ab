"""Checked fields of one raw row: locations and errors, typed field readers, the record's names and weight.

The one field-check library of the comparison formats (:mod:`rewardlab.data.parsers`) and the benchmarks
(:mod:`rewardlab.benchmarks`).

Every check raises :class:`DataError` naming the file, the line or row and the column at fault
(:func:`data_error`). :class:`ReadOptions` says how readers turn several ratings into one score.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from rewardlab.core.errors import DataError
from rewardlab.data.readers import looks_local
from rewardlab.data.record import Comparison


@dataclass(frozen=True)
class ReadOptions:
    """How readers turn several ratings into one score.

    ``score_weights`` maps attribute / aspect names to weights; a response's score is ``Σ w_a · rating_a``.
    None: HelpSteer2 uses ``helpfulness`` alone, UltraFeedback-style aspect ratings their mean.
    """

    score_weights: dict[str, float] | None = None


def parse_score_weights(text: str | None) -> dict[str, float] | None:
    """``"helpfulness=1,correctness=0.5"`` → ``{"helpfulness": 1.0, "correctness": 0.5}``; None/"" → None."""
    if text is None or not str(text).strip():
        return None
    weights: dict[str, float] = {}
    for part in str(text).split(","):
        name, sep, value = part.partition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = float("nan")
        if not sep or not name.strip() or not math.isfinite(weight):
            raise DataError(
                f"expected name=number pairs separated by commas, got {part.strip()!r}", path="score_weights"
            )
        weights[name.strip()] = weight
    return weights


def data_error(location: dict, field: str | None, message: str) -> DataError:
    """A :class:`DataError` pointing at ``location`` (``{"path", "line"}`` or ``{"path", "row"}``)."""
    return DataError(
        message, path=location.get("path", "?"), line=location.get("line"), row=location.get("row"), field=field
    )


def source_name(location: dict) -> str:
    """The default ``source``: a file's base name, or a hub dataset's name."""
    path = str(location.get("path", ""))
    if looks_local(path):
        return os.path.basename(os.path.normpath(path))
    return path


def default_id(location: dict) -> str:
    position = location["line"] if "line" in location else location.get("row")
    return f"{source_name(location)}:{position}"


def type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def required(row: dict, location: dict, field: str) -> Any:
    value = row.get(field)
    if value is None:
        raise data_error(location, field, "null where a value is required" if field in row else "missing field")
    return value


# columns that hold text whenever they are present: null there is an error, never "no prompt" (leave the column out
# for an implicit prompt)
TEXT_COLUMNS = ("prompt", "instruction", "input", "response")


def no_null_text(row: dict, location: dict) -> None:
    """Refuse ``null`` in a column of :data:`TEXT_COLUMNS` that the row has (every format's rows pass here)."""
    for column in TEXT_COLUMNS:
        if column in row and row[column] is None:
            raise data_error(
                location, column, "null where text is required (leave the column out if the row has no prompt)"
            )


def check_text(value: Any, location: dict, field: str, what: str = "text", *, allow_empty: bool = False) -> str:
    """``value`` as text; ``allow_empty``: empty or whitespace-only text passes (a benchmark's published rows)."""
    if not isinstance(value, str):
        raise data_error(location, field, f"expected {what}, got {type_name(value)}")
    if not allow_empty and not value.strip():
        raise data_error(location, field, f"empty or whitespace-only {what}")
    return value


def text_field(row: dict, location: dict, field: str, *, allow_empty: bool = False) -> str:
    """The required text ``row[field]`` (:func:`required`, :func:`check_text`)."""
    return check_text(required(row, location, field), location, field, allow_empty=allow_empty)


def text_list(row: dict, location: dict, field: str) -> list[str]:
    """A column holding one text or a non-empty list of texts (a CSV cell: the list as JSON text)."""
    value = row.get(field)
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
        raise data_error(location, field, f"expected a non-empty list of texts, got {value!r:.60}")
    for i, v in enumerate(value):
        if not isinstance(v, str):
            raise data_error(location, field, f"item {i}: expected text, got {type_name(v)}")
    return list(value)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def int_in(row: dict, location: dict, field: str, allowed, expected: str) -> int:
    """The required integer ``row[field]``, one of ``allowed`` (``expected`` says which, for the error)."""
    value = required(row, location, field)
    if not is_int(value) or value not in allowed:
        raise data_error(location, field, f"expected {expected}, got {value!r}")
    return value


def int_field(row: dict, location: dict, field: str, default: int | None = None) -> int:
    """The integer ``row[field]`` (``default`` when absent); a CSV cell's digits (``"3"``, ``"-1"``) count, a bool
    does not."""
    value = row.get(field, default)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):  # numpy integers are Integral
        raise data_error(location, field, f"expected an integer, got {value!r}")
    return int(value)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def finite_number(value: Any, location: dict, field: str, where: str) -> float:
    if not is_number(value) or not math.isfinite(value):
        raise data_error(location, field, f"{where}: expected a finite number, got {value!r:.60}")
    return float(value)


def optional_margin(row: dict, location: dict) -> float | None:
    value = row.get("margin")
    if value is None:
        return None
    if not is_number(value) or not math.isfinite(value):
        raise data_error(location, "margin", f"expected a finite number, got {value!r}")
    if value < 0:
        raise data_error(location, "margin", f"must not be negative, got {value!r}")
    return float(value)


def optional_name(row: dict, location: dict, field: str) -> str | None:
    """An optional ``id``/``source`` column: text or an int; absent or empty means "use the default"."""
    value = row.get(field)
    if value is None or value == "":
        return None
    if isinstance(value, str) or is_int(value):
        return str(value)
    raise data_error(location, field, f"expected text or an integer, got {type_name(value)}")


# Training refuses a comparison whose responses are identical; evaluation reads it as an exact tie (credited by
# the tie policy), inside `identical_responses_are_ties()` (rewardlab.data.evalsets).
IDENTICAL_IS_TIE: ContextVar[bool] = ContextVar("rewardlab_identical_is_tie", default=False)


@contextmanager
def identical_responses_are_ties():
    """Within this block, parsers accept identical responses (a tie) instead of refusing the row."""
    token = IDENTICAL_IS_TIE.set(True)
    try:
        yield
    finally:
        IDENTICAL_IS_TIE.reset(token)


def distinct(chosen: Any, rejected: Any, location: dict, field: str) -> None:
    if chosen == rejected and not IDENTICAL_IS_TIE.get():
        raise data_error(location, field, "identical to the chosen response")


def text_pair(row: dict, location: dict, first: str, second: str) -> tuple[str, str]:
    """Two required texts ``row[first]``, ``row[second]`` that must differ."""
    pair = (text_field(row, location, first), text_field(row, location, second))
    distinct(pair[0], pair[1], location, second)
    return pair


def optional_weight(row: dict, location: dict) -> float:
    value = row.get("weight")
    if value is None:
        return 1.0
    if not is_number(value) or not math.isfinite(value) or value < 0:
        raise data_error(location, "weight", f"expected a finite number >= 0, got {value!r}")
    return float(value)


def record_names(row: dict, location: dict) -> dict:
    """``source``, ``id`` and ``weight`` from the row, or their defaults."""
    return {
        "source": optional_name(row, location, "source") or source_name(location),
        "id": optional_name(row, location, "id") or default_id(location),
        "weight": optional_weight(row, location),
    }


def unsafe_meta(row: dict, location: dict) -> dict:
    """``{"unsafe": bool}`` from the row's optional ``unsafe`` column (the prompt tagged unsafe, read by the Llama 2
    rule: rewardlab.multiobjective.scalarise), ``{}`` without one; a record keeps it in ``meta``."""
    if "unsafe" not in row:
        return {}
    if not isinstance(row["unsafe"], bool):
        raise data_error(location, "unsafe", f"expected true or false, got {row['unsafe']!r:.40}")
    return {"unsafe": row["unsafe"]}


def build_comparison(
    row: dict, location: dict, prompt: Any, responses: tuple[str, ...], chosen: int = 0, **extra: Any
) -> Comparison:
    """Build the record, filling ``margin``, ``source``, ``id``, ``weight`` and ``meta["unsafe"]`` from the row or
    the location."""
    extra.setdefault("margin", optional_margin(row, location))
    tag = unsafe_meta(row, location)
    if tag:
        extra["meta"] = {**extra.get("meta", {}), **tag}
    return Comparison(prompt=prompt, responses=responses, chosen=chosen, **record_names(row, location), **extra)


def distinct_responses(responses: tuple[str, ...], location: dict, field: str) -> None:
    seen: dict[str, int] = {}
    for i, response in enumerate(responses):
        if response in seen and not IDENTICAL_IS_TIE.get():
            raise data_error(location, field, f"response {i} is identical to response {seen[response]}")
        seen[response] = i
