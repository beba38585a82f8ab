"""Turn a judge's text into a verdict, a rating or Yes/No — or say exactly why it could not.

Every parser returns a :class:`Parsed`: ``value`` (``"A"``, ``"B"``, ``"tie"``; a float rating; ``"Yes"`` /
``"No"``) or ``value=None`` with ``error`` saying why (no verdict, conflicting verdicts, rating out of range,
empty output). Judges count these failures and report them; nothing is silently dropped.

Pairwise verdict parsers (:data:`PAIRWISE_PARSERS`, chosen by name or ``regex:<pattern>``):

* ``strict`` (default) — MT-Bench's bracketed verdicts ``[[A]]``, ``[[B]]``, ``[[C]]`` (= tie), spaces
  inside the brackets tolerated. All verdicts found must agree; ``[[A]] … [[B]]`` is an error
  ("conflicting"), not a guess.
* ``mtbench`` — FastChat's own rule, kept for reproducing MT-Bench numbers: the first of ``[[A]]``, ``[[B]]``,
  ``[[C]]`` that occurs anywhere, checked in that order (so ``[[A]] … [[B]]`` counts as A).
* ``last`` — the last bracketed verdict wins (reasoning judges often quote the format before answering).
* ``lenient`` — ``strict`` first; then the last of "verdict: A", "[A]", "Assistant A is better", "answer: B";
  then a reply that is only a letter (``A``, ``"B."``, ``(C)``).
* ``letter`` — the reply is one letter A/B/C (or "tie"), optionally with punctuation or ``[[ ]]``.
* ``regex:<pattern>`` — the first group of the last match: A/B/C/tie (any case) or 1/2.

Rating parsers (:data:`RATING_PARSERS`): ``mtbench`` (``[[x]]``, falling back to ``[x]``, as FastChat does;
first match), ``last`` (the last ``[[x]]`` / ``[x]``), ``number`` (the first number), ``regex:<pattern>``. A
rating outside ``[low, high]`` (1–10) is an error.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable

from rewardlab.core.errors import RewardlabError


@dataclass(frozen=True)
class Parsed:
    value: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.value is not None

    def to_json(self) -> dict:
        return {"value": self.value, "error": self.error}


_VERDICT = {"a": "A", "b": "B", "c": "tie", "tie": "tie", "1": "A", "2": "B"}
_BRACKETED = re.compile(r"\[\[\s*([ABC])\s*\]\]")
_LENIENT = [
    re.compile(r"(?:final\s+)?verdict\s*(?:is|:)?\s*[:\-]?\s*\[*\s*(A|B|C|tie)\b", re.I),
    re.compile(r"(?<!\[)\[\s*(A|B|C)\s*\](?!\])"),
    re.compile(r"\b(?:assistant|answer|response)\s+(A|B)\s+is\s+(?:better|the\s+better|superior|preferred)", re.I),
    re.compile(r"\b(?:answer|choice|winner)\s*[:=]\s*(A|B|C|tie)\b", re.I),
]
_LETTER = re.compile(r"^\W*(A|B|C|tie)\W*$", re.I)


def _empty(text: str | None) -> Parsed | None:
    if text is None:
        return Parsed(None, "no output (backend error)")
    if not text.strip():
        return Parsed(None, "empty output")
    return None


def parse_strict(text: str | None) -> Parsed:
    if (bad := _empty(text)) is not None:
        return bad
    found = [_VERDICT[m.lower()] for m in _BRACKETED.findall(text)]
    if not found:
        return Parsed(None, "no [[A]]/[[B]]/[[C]] verdict")
    if len(set(found)) > 1:
        return Parsed(None, "conflicting verdicts " + ", ".join(sorted(set(found))))
    return Parsed(found[0])


def parse_mtbench(text: str | None) -> Parsed:
    if (bad := _empty(text)) is not None:
        return bad
    for token, verdict in (("[[A]]", "A"), ("[[B]]", "B"), ("[[C]]", "tie")):
        if token in text:
            return Parsed(verdict)
    return Parsed(None, "no [[A]]/[[B]]/[[C]] verdict")


def parse_last(text: str | None) -> Parsed:
    if (bad := _empty(text)) is not None:
        return bad
    found = _BRACKETED.findall(text)
    return Parsed(_VERDICT[found[-1].lower()]) if found else Parsed(None, "no [[A]]/[[B]]/[[C]] verdict")


def parse_letter(text: str | None) -> Parsed:
    if (bad := _empty(text)) is not None:
        return bad
    stripped = text.strip().strip("[]").strip()
    m = _LETTER.match(stripped)
    if m:
        return Parsed(_VERDICT[m.group(1).lower()])
    return Parsed(None, "not a single letter A/B/C")


def parse_lenient(text: str | None) -> Parsed:
    if (bad := _empty(text)) is not None:
        return bad
    strict = parse_strict(text)
    if strict.ok or (strict.error or "").startswith("conflicting"):
        return strict
    for pattern in _LENIENT:
        found = pattern.findall(text)
        if found:
            return Parsed(_VERDICT[found[-1].lower()])
    letter = parse_letter(text)
    return letter if letter.ok else Parsed(None, "no verdict found")


def regex_parser(pattern: str, convert: Callable[[str], Parsed]) -> Callable[[str | None], Parsed]:
    try:
        compiled = re.compile(pattern, re.I | re.S)
    except re.error as e:
        raise RewardlabError(f"bad parser regex {pattern!r}: {e}") from e
    if compiled.groups < 1:
        raise RewardlabError(f"parser regex {pattern!r} needs one capturing group")

    def parse(text: str | None) -> Parsed:
        if (bad := _empty(text)) is not None:
            return bad
        matches = list(compiled.finditer(text))
        if not matches:
            return Parsed(None, f"no match for {pattern!r}")
        return convert(matches[-1].group(1))

    return parse


def _verdict_from_group(g: str) -> Parsed:
    v = _VERDICT.get(g.strip().lower())
    return Parsed(v) if v else Parsed(None, f"matched {g!r}, not A/B/C/tie/1/2")


PAIRWISE_PARSERS: dict[str, Callable[[str | None], Parsed]] = {
    "strict": parse_strict,
    "mtbench": parse_mtbench,
    "last": parse_last,
    "lenient": parse_lenient,
    "letter": parse_letter,
}

# ---- ratings ------------------------------------------------------------------------------------------
_NUM = r"(\d+(?:\.\d+)?)"
_RATING = re.compile(r"\[\[\s*" + _NUM + r"\s*\]\]")
_RATING_BACKUP = re.compile(r"\[\s*" + _NUM + r"\s*\]")
_NUMBER = re.compile(r"(?<![\w.])" + _NUM)


def _rating(value: str, low: float, high: float) -> Parsed:
    try:
        x = float(value)
    except ValueError:
        return Parsed(None, f"rating {value!r} is not a number")
    if not math.isfinite(x) or not low <= x <= high:
        return Parsed(None, f"rating {value} outside [{low:g}, {high:g}]")
    return Parsed(x)


def make_rating_parser(style: str = "mtbench", low: float = 1.0, high: float = 10.0) -> Callable[[str | None], Parsed]:
    if style.startswith("regex:"):
        return regex_parser(style[len("regex:") :], lambda g: _rating(g, low, high))
    if style not in RATING_PARSERS:
        raise RewardlabError(f"unknown rating parser {style!r}; choose {', '.join(RATING_PARSERS)} or regex:<pattern>")

    def parse(text: str | None) -> Parsed:
        if (bad := _empty(text)) is not None:
            return bad
        if style == "number":
            m = _NUMBER.search(text)
            return _rating(m.group(1), low, high) if m else Parsed(None, "no number")
        for pattern in (_RATING, _RATING_BACKUP):
            found = pattern.findall(text)
            if found:
                return _rating(found[0] if style == "mtbench" else found[-1], low, high)
        return Parsed(None, "no [[rating]]")

    return parse


RATING_PARSERS = ("mtbench", "last", "number")

# ---- yes / no ------------------------------------------------------------------------------------------
_YES_NO = re.compile(r"^\W*(yes|no)\b", re.I)


def parse_yes_no(text: str | None) -> Parsed:
    """``Yes`` / ``No`` from the first word of the reply."""
    if (bad := _empty(text)) is not None:
        return bad
    m = _YES_NO.match(text)
    return Parsed(m.group(1).capitalize()) if m else Parsed(None, "reply does not start with Yes or No")


def get_pairwise_parser(spec: str | None = "strict") -> Callable[[str | None], Parsed]:
    spec = spec or "strict"
    if spec.startswith("regex:"):
        return regex_parser(spec[len("regex:") :], _verdict_from_group)
    if spec not in PAIRWISE_PARSERS:
        raise RewardlabError(
            f"unknown verdict parser {spec!r}; choose {', '.join(PAIRWISE_PARSERS)} or regex:<pattern>"
        )
    return PAIRWISE_PARSERS[spec]
