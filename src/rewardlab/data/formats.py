"""Per-row parsers: one raw row (a dict from :mod:`rewardlab.data.readers`) in, one :class:`Comparison` out.

``FORMATS`` maps a format name to a parser ``(row, location) -> Comparison``; :func:`detect_format`
picks the name from a row's columns. Every problem raises :class:`DataError` naming the file, the
line or row, and the column at fault.

Formats
-------
``rewardlab``
    The native form written by :meth:`Comparison.to_json`: ``prompt`` (text or a list of messages),
    ``responses`` (two or more texts), ``chosen`` (an index), and optional ``ranking`` (a permutation
    of the response indices starting with ``chosen``), ``margin``, ``scores`` (one finite number per
    response), ``source`` and ``id``. An empty prompt text ``""`` means "no prompt" (see ``trl`` below).
``trl``
    TRL's preference datasets, with optional ``margin`` and ``id`` columns:

    * standard, explicit prompt: ``prompt``, ``chosen``, ``rejected`` texts;
    * standard, implicit prompt: ``chosen``, ``rejected`` texts only. Plain text has no reliable
      boundary between prompt and answer, so the prompt is ``""`` and the whole texts are the responses;
    * conversational, explicit prompt: ``prompt`` is a list of messages, ``chosen`` and ``rejected``
      each hold exactly one assistant message;
    * conversational, implicit prompt: ``chosen`` and ``rejected`` are whole conversations; their
      longest shared message prefix is the prompt, and each must continue it with exactly one
      assistant message.
``hh``
    Anthropic HH-RLHF: ``chosen`` and ``rejected`` are transcripts ``"\\n\\nHuman: …\\n\\nAssistant: …"``.
    The turns before the final assistant turn (Human → user, Assistant → assistant, contents stripped)
    are the prompt and must be the same in both; the final assistant turns (stripped) are the responses.
``pairwise``
    ``input``, ``output_1``, ``output_2`` texts and ``label`` — the int 1 or 2 naming the better output.
``ratings``
    Per-response ratings, UltraFeedback style: ``prompt`` (or ``instruction``) and ``completions``, a list
    of objects with ``response`` and either one ``score`` or aspect ratings — ``ratings`` ``{aspect: number}``
    or UltraFeedback's ``annotations`` ``{aspect: {"Rating": "4", …}}`` (``"N/A"`` = not rated). Or flat:
    ``prompt``, ``responses`` and ``scores`` (numbers or ``{aspect: number}`` objects) without ``chosen``.
    Several aspects become one score by the weights of :class:`ReadOptions` (default: their mean).
``helpsteer2``
    HelpSteer2: one row per (prompt, response) with the attributes ``helpfulness``, ``correctness``,
    ``coherence``, ``complexity``, ``verbosity`` (0–4). Rows are grouped by prompt (:data:`GROUPED`) into
    one record; the score of a response is the weighted sum of its attributes (default: helpfulness).
``helpsteer2_pref``
    HelpSteer2-Preference: ``prompt``, ``response_1``, ``response_2`` and ``preference_strength`` −3..3
    (negative: response 1 is better; ±3 much better, ±2 better, ±1 slightly better, 0 a tie). The margin is
    ``|strength|``, which the Llama 2 margin tables read as a rating level and Scaled BT as ``|s|``.
``ranked``
    Ranked lists (Nectar, Starling's K-wise data): ``prompt``, ``responses`` and either ``ranking`` (response
    indices best first; an inner list is a tie, e.g. ``[2, [0, 3], 1]``; indices left out rank below all
    listed ones, unordered) or ``ranks`` (one rank per response, 1 = best, equal ranks tie, null = unranked).
    Nectar's own shape is accepted too: ``prompt`` and ``answers`` = ``[{"answer", "rank"}, …]``; a prompt
    written as an HH transcript ``"\n\nHuman: …\n\nAssistant:"`` becomes messages.

Ratings become rankings (:meth:`Comparison.from_scores`): a higher score ranks higher, equal scores are tied,
and the scores are kept so a pair's margin is its score difference. Every format takes optional ``id``,
``source`` and ``weight`` (a per-example loss weight ≥ 0) columns; the pairwise ones also ``margin``.

Records hold messages as a tuple of plain ``{"role", "content"}`` dicts. ``source`` defaults to the
file's base name (for a hub dataset, its name) and ``id`` to ``"<base name>:<line or row>"``.
"""
from __future__ import annotations

import math
import os
import re
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Callable

from rewardlab.data.readers import looks_local
from rewardlab.data.record import Comparison, check_tiers
from rewardlab.errors import DataError

Parser = Callable[..., Comparison]  # (row, location, options: ReadOptions | None = None) -> Comparison

ROLES = ("system", "user", "assistant", "tool")
HELPSTEER2_ATTRIBUTES = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")


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
            raise DataError(f"expected name=number pairs separated by commas, got {part.strip()!r}",
                            path="score_weights")
        weights[name.strip()] = weight
    return weights


# --- locations and errors ----------------------------------------------------------------------------

def data_error(location: dict, field: str | None, message: str) -> DataError:
    """A :class:`DataError` pointing at ``location`` (``{"path", "line"}`` or ``{"path", "row"}``)."""
    return DataError(message, path=location.get("path", "?"), line=location.get("line"),
                     row=location.get("row"), field=field)


def source_name(location: dict) -> str:
    """The default ``source``: a file's base name, or a hub dataset's name."""
    path = str(location.get("path", ""))
    if looks_local(path):
        return os.path.basename(os.path.normpath(path))
    return path


def default_id(location: dict) -> str:
    position = location["line"] if "line" in location else location.get("row")
    return f"{source_name(location)}:{position}"


# --- field checks --------------------------------------------------------------------------------------

def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _required(row: dict, location: dict, field: str) -> Any:
    value = row.get(field)
    if value is None:
        raise data_error(location, field, "missing field")
    return value


def _check_text(value: Any, location: dict, field: str, what: str = "text") -> str:
    if not isinstance(value, str):
        raise data_error(location, field, f"expected {what}, got {_type_name(value)}")
    if not value.strip():
        raise data_error(location, field, f"empty or whitespace-only {what}")
    return value


def _text(row: dict, location: dict, field: str) -> str:
    return _check_text(_required(row, location, field), location, field)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_in(row: dict, location: dict, field: str, allowed, expected: str) -> int:
    """The required integer ``row[field]``, one of ``allowed`` (``expected`` says which, for the error)."""
    value = _required(row, location, field)
    if not _is_int(value) or value not in allowed:
        raise data_error(location, field, f"expected {expected}, got {value!r}")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _message(value: Any, location: dict, field: str, index: int) -> dict:
    where = f"message {index}"
    if not isinstance(value, dict):
        raise data_error(location, field, f"{where}: expected an object with 'role' and 'content', "
                                          f"got {_type_name(value)}")
    for key in ("role", "content"):
        if key not in value:
            raise data_error(location, field, f"{where}: no '{key}'")
    if value["role"] not in ROLES:
        raise data_error(location, field, f"{where}: role {value['role']!r} is not one of {', '.join(ROLES)}")
    content = _check_text(value["content"], location, field, what=f"{where} content")
    return {"role": value["role"], "content": content}


def _messages(value: Any, location: dict, field: str) -> tuple[dict, ...]:
    if not isinstance(value, list) or not value:
        raise data_error(location, field, f"expected a non-empty list of messages, got {_type_name(value)}")
    return tuple(_message(item, location, field, i) for i, item in enumerate(value))


def _margin(row: dict, location: dict) -> float | None:
    value = row.get("margin")
    if value is None:
        return None
    if not _is_number(value) or not math.isfinite(value):
        raise data_error(location, "margin", f"expected a finite number, got {value!r}")
    if value < 0:
        raise data_error(location, "margin", f"must not be negative, got {value!r}")
    return float(value)


def _optional_name(row: dict, location: dict, field: str) -> str | None:
    """An optional ``id``/``source`` column: text or an int; absent or empty means "use the default"."""
    value = row.get(field)
    if value is None or value == "":
        return None
    if isinstance(value, str) or _is_int(value):
        return str(value)
    raise data_error(location, field, f"expected text or an integer, got {_type_name(value)}")


# Training refuses a comparison whose responses are identical; evaluation reads it as an exact tie (credited by
# the tie policy), inside `identical_responses_are_ties()` (rewardlab.evalsets).
_IDENTICAL_IS_TIE: ContextVar[bool] = ContextVar("rewardlab_identical_is_tie", default=False)


@contextmanager
def identical_responses_are_ties():
    """Within this block, parsers accept identical responses (a tie) instead of refusing the row."""
    token = _IDENTICAL_IS_TIE.set(True)
    try:
        yield
    finally:
        _IDENTICAL_IS_TIE.reset(token)


def _distinct(chosen: Any, rejected: Any, location: dict, field: str) -> None:
    if chosen == rejected and not _IDENTICAL_IS_TIE.get():
        raise data_error(location, field, "identical to the chosen response")


def _text_pair(row: dict, location: dict, first: str, second: str) -> tuple[str, str]:
    """Two required texts ``row[first]``, ``row[second]`` that must differ."""
    pair = (_text(row, location, first), _text(row, location, second))
    _distinct(pair[0], pair[1], location, second)
    return pair


def _weight(row: dict, location: dict) -> float:
    value = row.get("weight")
    if value is None:
        return 1.0
    if not _is_number(value) or not math.isfinite(value) or value < 0:
        raise data_error(location, "weight", f"expected a finite number >= 0, got {value!r}")
    return float(value)


def _names(row: dict, location: dict) -> dict:
    """``source``, ``id`` and ``weight`` from the row, or their defaults."""
    return {"source": _optional_name(row, location, "source") or source_name(location),
            "id": _optional_name(row, location, "id") or default_id(location),
            "weight": _weight(row, location)}


def _comparison(row: dict, location: dict, prompt: Any, responses: tuple[str, ...], chosen: int = 0,
                **extra: Any) -> Comparison:
    """Build the record, filling ``margin``, ``source``, ``id`` and ``weight`` from the row or the location."""
    extra.setdefault("margin", _margin(row, location))
    if "unsafe" in row:  # the prompt tagged unsafe: read by the Llama 2 rule (rewardlab.multiobjective.scalarise)
        if not isinstance(row["unsafe"], bool):
            raise data_error(location, "unsafe", f"expected true or false, got {row['unsafe']!r:.40}")
        extra["meta"] = {**extra.get("meta", {}), "unsafe": row["unsafe"]}
    return Comparison(prompt=prompt, responses=responses, chosen=chosen, **_names(row, location), **extra)


def _distinct_responses(responses: tuple[str, ...], location: dict, field: str) -> None:
    seen: dict[str, int] = {}
    for i, response in enumerate(responses):
        if response in seen and not _IDENTICAL_IS_TIE.get():
            raise data_error(location, field, f"response {i} is identical to response {seen[response]}")
        seen[response] = i


# --- rewardlab (native) --------------------------------------------------------------------------------

def _native_prompt(row: dict, location: dict) -> Any:
    value = _required(row, location, "prompt")
    if value == "":
        return ""  # "no prompt", as produced by TRL implicit-prompt text rows
    if isinstance(value, list):
        return _messages(value, location, "prompt")
    return _check_text(value, location, "prompt", what="text or a list of messages")


def _native_responses(row: dict, location: dict) -> tuple[str, ...]:
    value = _required(row, location, "responses")
    if not isinstance(value, list) or len(value) < 2:
        raise data_error(location, "responses", f"expected a list of at least two texts, got {value!r:.80}")
    return tuple(_check_text(item, location, "responses", what=f"response {i}") for i, item in enumerate(value))


def _native_chosen(row: dict, location: dict, responses: tuple[str, ...]) -> int:
    value = _required(row, location, "chosen")
    if not _is_int(value) or not 0 <= value < len(responses):
        raise data_error(location, "chosen", f"expected a response index 0..{len(responses) - 1}, got {value!r}")
    for i, response in enumerate(responses):
        if i != value and response == responses[value] and not _IDENTICAL_IS_TIE.get():
            raise data_error(location, "responses", f"response {i} is identical to the chosen response")
    return value


def _native_ranking(row: dict, location: dict, k: int, chosen: int) -> tuple[int, ...] | None:
    value = row.get("ranking")
    if value is None:
        return None
    if (not isinstance(value, list) or not all(_is_int(i) for i in value)
            or sorted(value) != list(range(k))):
        raise data_error(location, "ranking", f"expected a permutation of 0..{k - 1}, got {value!r}")
    if value[0] != chosen:
        raise data_error(location, "ranking", f"ranks {value[0]} first but chosen is {chosen}")
    return tuple(value)


def _native_scores(row: dict, location: dict, k: int) -> tuple[float, ...] | None:
    value = row.get("scores")
    if value is None:
        return None
    if (not isinstance(value, list) or len(value) != k
            or not all(_is_number(s) and math.isfinite(s) for s in value)):
        raise data_error(location, "scores", f"expected {k} finite numbers, got {value!r}")
    return tuple(float(s) for s in value)


def _native_tiers(row: dict, location: dict, k: int, chosen: int) -> tuple[tuple[int, ...], ...] | None:
    value = row.get("tiers")
    if value is None:
        return None
    if row.get("ranking") is not None:
        raise data_error(location, "tiers", "give ranking (full, strict) or tiers (partial, with ties), not both")
    if (not isinstance(value, list) or not value
            or not all(isinstance(t, list) and t and all(_is_int(i) for i in t) for t in value)):
        raise data_error(location, "tiers", f"expected a list of non-empty lists of response indices, got {value!r:.80}")
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
    responses = _native_responses(row, location)
    chosen = _native_chosen(row, location, responses)
    return _comparison(row, location, prompt, responses, chosen,
                       ranking=_native_ranking(row, location, len(responses), chosen),
                       tiers=_native_tiers(row, location, len(responses), chosen),
                       scores=_native_scores(row, location, len(responses)))


# --- trl -----------------------------------------------------------------------------------------------

def _trl_text_explicit(row: dict, location: dict) -> tuple[Any, tuple[str, str]]:
    prompt = _text(row, location, "prompt")
    return prompt, (_text(row, location, "chosen"), _text(row, location, "rejected"))


def _trl_text_implicit(row: dict, location: dict) -> tuple[Any, tuple[str, str]]:
    return "", (_text(row, location, "chosen"), _text(row, location, "rejected"))


def _single_assistant(messages: tuple[dict, ...], location: dict, field: str) -> str:
    if len(messages) != 1 or messages[0]["role"] != "assistant":
        roles = [m["role"] for m in messages]
        raise data_error(location, field, f"expected exactly one assistant message, got roles {roles}")
    return messages[0]["content"]


def _trl_conversation_explicit(row: dict, location: dict) -> tuple[Any, tuple[str, str]]:
    prompt = _messages(_required(row, location, "prompt"), location, "prompt")
    responses = tuple(_single_assistant(_messages(_required(row, location, field), location, field),
                                        location, field) for field in ("chosen", "rejected"))
    return prompt, responses


def _shared_prefix_length(a: tuple, b: tuple) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def _trl_conversation_implicit(row: dict, location: dict) -> tuple[Any, tuple[str, str]]:
    chosen = _messages(_required(row, location, "chosen"), location, "chosen")
    rejected = _messages(_required(row, location, "rejected"), location, "rejected")
    _distinct(chosen, rejected, location, "rejected")
    n = _shared_prefix_length(chosen, rejected)
    if n == 0:
        raise data_error(location, "rejected", "shares no prompt messages with chosen")
    responses = (_single_assistant(chosen[n:], location, "chosen"),
                 _single_assistant(rejected[n:], location, "rejected"))
    return chosen[:n], responses


_TRL_VARIANTS: dict[tuple[bool, bool], Callable[[dict, dict], tuple[Any, tuple[str, str]]]] = {
    # (conversational, explicit prompt) -> parser
    (False, True): _trl_text_explicit,
    (False, False): _trl_text_implicit,
    (True, True): _trl_conversation_explicit,
    (True, False): _trl_conversation_implicit,
}


def parse_trl(row: dict, location: dict, options: ReadOptions | None = None) -> Comparison:
    chosen = _required(row, location, "chosen")
    if not isinstance(chosen, (str, list)):
        raise data_error(location, "chosen", f"expected text or a list of messages, got {_type_name(chosen)}")
    variant = _TRL_VARIANTS[(isinstance(chosen, list), row.get("prompt") is not None)]
    prompt, responses = variant(row, location)
    _distinct(responses[0], responses[1], location, "rejected")
    return _comparison(row, location, prompt, responses)


# --- hh (Anthropic HH-RLHF) ----------------------------------------------------------------------------

_HH_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant):")
_HH_ROLES = {"Human": "user", "Assistant": "assistant"}


def _hh_turns(text: Any, location: dict, field: str) -> list[dict]:
    """Split an HH transcript into ``{"role", "content"}`` turns (contents stripped)."""
    if not isinstance(text, str):
        raise data_error(location, field, f"expected text, got {_type_name(text)}")
    parts = _HH_TURN.split(text)
    if parts[0] != "" or len(parts) < 3 or parts[1] != "Human":
        raise data_error(location, field, "does not start with a '\\n\\nHuman:' turn")
    return [{"role": _HH_ROLES[speaker], "content": content.strip()}
            for speaker, content in zip(parts[1::2], parts[2::2])]


def _hh_split(text: Any, location: dict, field: str) -> tuple[tuple[dict, ...], str]:
    """(prompt messages, final assistant response) of one transcript."""
    turns = _hh_turns(text, location, field)
    if turns[-1]["role"] != "assistant":
        raise data_error(location, field, "does not end with an '\\n\\nAssistant:' turn")
    for index, turn in enumerate(turns):
        if not turn["content"]:
            final = "final " if index == len(turns) - 1 else ""
            raise data_error(location, field, f"empty {final}{turn['role']} turn (turn {index})")
    return tuple(turns[:-1]), turns[-1]["content"]


def _hh_difference(chosen: tuple[dict, ...], rejected: tuple[dict, ...]) -> str:
    n = _shared_prefix_length(chosen, rejected)
    if len(chosen) != len(rejected):
        return f"chosen has {len(chosen)} earlier turns, rejected {len(rejected)}; they agree on the first {n}"
    return f"turn {n} differs"


def parse_hh(row: dict, location: dict, options: ReadOptions | None = None) -> Comparison:
    prompt, chosen = _hh_split(_required(row, location, "chosen"), location, "chosen")
    rejected_prompt, rejected = _hh_split(_required(row, location, "rejected"), location, "rejected")
    if rejected_prompt != prompt:
        raise data_error(location, "rejected", "the conversation before the final Assistant turn differs "
                                               f"from chosen's ({_hh_difference(prompt, rejected_prompt)})")
    _distinct(chosen, rejected, location, "rejected")
    return _comparison(row, location, prompt, (chosen, rejected))


# --- pairwise ------------------------------------------------------------------------------------------

_PAIRWISE_LABELS = {1: 0, 2: 1}  # label -> chosen index


def parse_pairwise(row: dict, location: dict, options: ReadOptions | None = None) -> Comparison:
    prompt = _text(row, location, "input")
    responses = _text_pair(row, location, "output_1", "output_2")
    label = _int_in(row, location, "label", _PAIRWISE_LABELS, "the integer 1 or 2")
    return _comparison(row, location, prompt, responses, _PAIRWISE_LABELS[label])


# --- ratings, rankings and preference strengths ---------------------------------------------------------

def _prompt(row: dict, location: dict, *fields: str) -> Any:
    """The first present field of ``fields``: text (an HH transcript becomes messages) or a list of messages."""
    field = next((f for f in fields if row.get(f) is not None), fields[0])
    value = _required(row, location, field)
    if isinstance(value, list):
        return _messages(value, location, field)
    text = _check_text(value, location, field, what="text or a list of messages")
    return _hh_prompt(text, location, field) if _starts_with_human(text) else text


def _hh_prompt(text: str, location: dict, field: str) -> tuple[dict, ...]:
    """Nectar-style ``"\n\nHuman: …\n\nAssistant:"``: the turns before the final, empty Assistant turn."""
    turns = _hh_turns(text, location, field)
    if turns[-1]["role"] == "assistant" and not turns[-1]["content"]:
        turns = turns[:-1]
    for index, turn in enumerate(turns):
        if not turn["content"]:
            raise data_error(location, field, f"empty {turn['role']} turn (turn {index})")
    return tuple(turns)


def _finite(value: Any, location: dict, field: str, where: str) -> float:
    if not _is_number(value) or not math.isfinite(value):
        raise data_error(location, field, f"{where}: expected a finite number, got {value!r:.60}")
    return float(value)


def _combine(ratings: dict[str, float], weights: dict[str, float] | None, location: dict, field: str,
             where: str) -> float:
    """One score from aspect ratings: ``Σ w_a · rating_a``, or their mean when ``weights`` is None."""
    if weights is None:
        if not ratings:
            raise data_error(location, field, f"{where}: no ratings")
        return sum(ratings.values()) / len(ratings)
    missing = sorted(a for a, w in weights.items() if w and a not in ratings)
    if missing:
        raise data_error(location, field, f"{where}: no rating for {', '.join(missing)} (weighted in the score "
                                          f"weights); it has {', '.join(sorted(ratings)) or 'none'}")
    return sum(w * ratings[a] for a, w in weights.items() if w)


def _aspect_ratings(value: Any, location: dict, field: str, where: str) -> dict[str, float]:
    """``{aspect: number | null}`` or UltraFeedback's ``{aspect: {"Rating": "4", …}}`` (a list of such is
    averaged); ``null`` and ``"N/A"`` mean "not rated" and are left out."""
    if not isinstance(value, dict):
        raise data_error(location, field, f"{where}: expected an object of aspect ratings, got {_type_name(value)}")
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
                    raise data_error(location, field, f"{where}: rating of {aspect!r} is not a number: "
                                                      f"{item!r:.40}") from None
            numbers.append(_finite(item, location, field, f"{where}, {aspect}"))
        if numbers:
            out[str(aspect)] = sum(numbers) / len(numbers)
    return out


def _item_score(item: Any, location: dict, field: str, where: str, options: ReadOptions | None) -> float:
    """A number, or aspect ratings combined by the score weights (default: their mean)."""
    weights = options.score_weights if options is not None else None
    if _is_number(item):
        return _finite(item, location, field, where)
    return _combine(_aspect_ratings(item, location, field, where), weights, location, field, where)


def _rated(row: dict, location: dict, prompt: Any, responses: tuple[str, ...], scores: list[float],
           field: str) -> Comparison:
    _distinct_responses(responses, location, field)
    return Comparison.from_scores(prompt, responses, tuple(scores), **_names(row, location))


def parse_ratings(row: dict, location: dict, options: ReadOptions | None = None) -> Comparison:
    prompt = _prompt(row, location, "prompt", "instruction")
    if row.get("completions") is None and row.get("responses") is not None:  # flat: responses + scores
        responses = _native_responses(row, location)
        value = _required(row, location, "scores")
        if not isinstance(value, list) or len(value) != len(responses):
            raise data_error(location, "scores", f"expected {len(responses)} scores (numbers or objects of "
                                                 f"aspect ratings), got {value!r:.80}")
        scores = [_item_score(v, location, "scores", f"score {i}", options) for i, v in enumerate(value)]
        return _rated(row, location, prompt, responses, scores, "responses")
    completions = _required(row, location, "completions")
    if not isinstance(completions, list) or len(completions) < 2:
        raise data_error(location, "completions", f"expected a list of at least two completions, "
                                                  f"got {completions!r:.80}")
    responses, scores = [], []
    for i, item in enumerate(completions):
        where = f"completion {i}"
        if not isinstance(item, dict):
            raise data_error(location, "completions", f"{where}: expected an object, got {_type_name(item)}")
        responses.append(_check_text(item.get("response"), location, "completions", what=f"{where} response"))
        if item.get("score") is not None:
            scores.append(_finite(item["score"], location, "completions", f"{where} score"))
        elif item.get("ratings", item.get("annotations")) is not None:
            scores.append(_item_score(item.get("ratings", item.get("annotations")), location, "completions",
                                      where, options))
        else:
            raise data_error(location, "completions", f"{where}: no 'score', 'ratings' or 'annotations'")
    return _rated(row, location, prompt, tuple(responses), scores, "completions")


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
        if not tier or not all(_is_int(i) for i in tier):
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
    return [None if r is None else _finite(r, location, field, f"rank {i}") for i, r in enumerate(value)]


def parse_ranked(row: dict, location: dict, options: ReadOptions | None = None) -> Comparison:
    prompt = _prompt(row, location, "prompt")
    if row.get("answers") is not None:  # Nectar
        answers = row["answers"]
        if not isinstance(answers, list) or len(answers) < 2:
            raise data_error(location, "answers", f"expected a list of at least two answers, got {answers!r:.80}")
        if not all(isinstance(a, dict) for a in answers):
            raise data_error(location, "answers", "expected objects with 'answer' and 'rank'")
        responses = tuple(_check_text(a.get("answer"), location, "answers", what=f"answer {i}")
                          for i, a in enumerate(answers))
        tiers = _tiers_from_ranks(_ranks([a.get("rank") for a in answers], location, "answers", len(answers)),
                                  location, "answers")
        field = "answers"
    else:
        responses = _native_responses(row, location)
        field = "responses"
        if row.get("ranking") is not None:
            tiers = _ranking_tiers(row["ranking"], location, len(responses))
        else:
            tiers = _tiers_from_ranks(_ranks(_required(row, location, "ranks"), location, "ranks", len(responses)),
                                      location, "ranks")
    _distinct_responses(responses, location, field)
    full = all(len(t) == 1 for t in tiers) and sum(len(t) for t in tiers) == len(responses)
    return _comparison(row, location, prompt, responses, tiers[0][0],
                       ranking=tuple(t[0] for t in tiers) if full else None, tiers=None if full else tiers)


_STRENGTHS = range(-3, 4)


def parse_helpsteer2_pref(row: dict, location: dict, options: ReadOptions | None = None) -> Comparison:
    prompt = _prompt(row, location, "prompt")
    responses = _text_pair(row, location, "response_1", "response_2")
    strength = _int_in(row, location, "preference_strength", _STRENGTHS, "an integer from -3 to 3")
    return _comparison(row, location, prompt, responses, 0 if strength <= 0 else 1, margin=float(abs(strength)),
                       tiers=((0, 1),) if strength == 0 else None)


@dataclass(frozen=True)
class RatedResponse:
    """One HelpSteer2 row: a response to a prompt and its score; :func:`group_rated` makes the record."""

    prompt: Any
    response: str
    score: float
    location: dict
    names: dict  # source, id, weight


def _prompt_key(prompt: Any) -> Any:
    return prompt if isinstance(prompt, str) else tuple((m["role"], m["content"]) for m in prompt)


def parse_helpsteer2(row: dict, location: dict, options: ReadOptions | None = None) -> RatedResponse:
    prompt = _prompt(row, location, "prompt")
    response = _text(row, location, "response")
    weights = (options.score_weights if options is not None else None) or {"helpfulness": 1.0}
    ratings = {}
    for name in dict.fromkeys([*HELPSTEER2_ATTRIBUTES, *weights]):
        value = row.get(name)
        if value is None:
            continue
        ratings[name] = _finite(value, location, name, "attribute")
        if name in HELPSTEER2_ATTRIBUTES and not 0 <= ratings[name] <= 4:
            raise data_error(location, name, f"expected a rating from 0 to 4, got {value!r}")
    missing = sorted(a for a, w in weights.items() if w and a not in ratings)
    if missing:
        raise data_error(location, missing[0], "missing attribute (weighted in the score weights)")
    score = _combine(ratings, weights, location, missing[0] if missing else "helpfulness", "attributes")
    return RatedResponse(prompt, response, score, location, _names(row, location))


def group_rated(items: list[RatedResponse]) -> Comparison:
    """One record from the rows of one prompt (in file order): ratings → ranking with ties."""
    first = items[0]
    if len(items) < 2:
        raise data_error(first.location, "response", "the only response to this prompt (rows are grouped by "
                                                     "prompt; a comparison needs two)")
    seen: dict[str, RatedResponse] = {}
    for item in items:
        if item.response in seen:
            where = seen[item.response].location
            position = where.get("line", where.get("row"))
            raise data_error(item.location, "response", f"identical to another response to this prompt "
                                                        f"({'line' if 'line' in where else 'row'} {position})")
        seen[item.response] = item
        if item.names["weight"] != first.names["weight"]:
            raise data_error(item.location, "weight", "differs from the weight of the first row of this prompt")
    return Comparison.from_scores(first.prompt, tuple(i.response for i in items), tuple(i.score for i in items),
                                  **first.names)


def group_key(item: RatedResponse) -> Any:
    """Rows with the same key form one record."""
    return _prompt_key(item.prompt)


def parse_nemo_regression(row: dict, location: dict, options: ReadOptions | None = None) -> Comparison:
    """NeMo-Aligner regression rows (``text`` + ``label``) rate one response and state no preference."""
    raise data_error(location, "label", "a NeMo regression row (text + label) rates one response and holds no "
                                        "preference; train it with --objective regression (rewardlab.data.ratings)")


# --- registry and detection ----------------------------------------------------------------------------

@dataclass(frozen=True)
class FormatSpec:
    """One input format: its name (``--format``), its parser, the rule that recognises it from a row's columns
    (``--format auto``), the columns in words (``--help`` and the detection error), and for a format whose rows
    are single responses, how rows group into records."""

    name: str
    parse: Parser | None  # None: not a comparison format (``single``, read by ``rewardlab score``/``normalize``)
    columns: str
    detect: Callable[[dict], bool] | None = None  # None: never chosen by --format auto
    detect_rank: int = 0  # detection tries lower ranks first (a more specific rule before a looser one)
    group: tuple[Callable[[Any], Any], Callable[[list], Comparison]] | None = None  # (row -> record key, rows -> record)


def _starts_with_human(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("\n\nHuman:", "Human:"))


def _looks_hh(row: dict) -> bool:
    # Either side is enough: a row whose other side is malformed then gets HH's precise error
    # instead of silently parsing as a TRL implicit-prompt row.
    return ({"chosen", "rejected"} <= row.keys() and row.get("prompt") is None
            and (_starts_with_human(row["chosen"]) or _starts_with_human(row["rejected"])))


def _has(row: dict, *fields: str) -> bool:
    return all(row.get(f) is not None for f in fields)


# THE registry of formats, in the order of --help and the error text; detection follows ``detect_rank``.
FORMAT_SPECS: tuple[FormatSpec, ...] = (
    FormatSpec("rewardlab", parse_rewardlab, "prompt, responses, chosen",
               lambda row: {"prompt", "responses"} <= row.keys(), 3),
    FormatSpec("trl", parse_trl, "chosen, rejected[, prompt]", lambda row: {"chosen", "rejected"} <= row.keys(), 8),
    FormatSpec("hh", parse_hh, "chosen, rejected as '\\n\\nHuman: …' transcripts", _looks_hh, 7),
    FormatSpec("pairwise", parse_pairwise, "input, output_1, output_2, label",
               lambda row: {"input", "output_1"} <= row.keys(), 6),
    FormatSpec("ratings", parse_ratings, "prompt, completions[].response + score/ratings/annotations",
               lambda row: _has(row, "completions")
               or (_has(row, "prompt", "responses", "scores") and not _has(row, "chosen")), 2),
    FormatSpec("helpsteer2", parse_helpsteer2, "prompt, response, helpfulness, …",
               lambda row: {"prompt", "response", "helpfulness"} <= row.keys(), 5, group=(group_key, group_rated)),
    FormatSpec("helpsteer2_pref", parse_helpsteer2_pref, "prompt, response_1, response_2, preference_strength",
               lambda row: {"response_1", "response_2", "preference_strength"} <= row.keys(), 4),
    FormatSpec("ranked", parse_ranked, "prompt, responses, ranking or ranks; or Nectar's prompt, answers",
               lambda row: _has(row, "prompt", "answers")
               or (_has(row, "prompt", "responses") and not _has(row, "chosen")
                   and (_has(row, "ranking") or _has(row, "ranks"))), 1),
    FormatSpec("nemo_regression", parse_nemo_regression, "text, label: NeMo regression rows (--objective regression)",
               lambda row: {"text", "label"} <= row.keys(), 0),
    FormatSpec("single", None, "prompt, response: one text per row, scored alone (rewardlab score, normalize)"),
)
SPECS: dict[str, FormatSpec] = {f.name: f for f in FORMAT_SPECS}
# the comparison formats: name -> parser (row, location, options) -> Comparison
FORMATS: dict[str, Parser] = {f.name: f.parse for f in FORMAT_SPECS if f.parse is not None}
# formats whose parser returns one row of a record: name -> (key of the record a row belongs to, rows -> record)
GROUPED: dict[str, tuple[Callable[[Any], Any], Callable[[list], Comparison]]] = {
    f.name: f.group for f in FORMAT_SPECS if f.group is not None}
_DETECTION_RULES: list[tuple[str, Callable[[dict], bool]]] = [
    (f.name, f.detect) for f in sorted(FORMAT_SPECS, key=lambda f: f.detect_rank) if f.detect is not None]


def formats_text(comparisons_only: bool = True) -> str:
    """``name (columns), …`` of every format, from :data:`FORMAT_SPECS`."""
    return ", ".join(f"{f.name} ({f.columns})" for f in FORMAT_SPECS if f.parse is not None or not comparisons_only)


def format_help(comparisons_only: bool = True) -> str:
    """The --format choices for --help: the comparison formats, and ``single`` where a command reads it."""
    return "one of: auto (detected from the first row's columns), " + formats_text(comparisons_only)


def detect_format(row: dict, location: dict | None = None) -> str:
    """The name in :data:`FORMATS` that fits ``row``'s columns; :class:`DataError` if none does."""
    for name, matches in _DETECTION_RULES:
        if matches(row):
            return name
    raise data_error(location or {}, None,
                     f"cannot tell the format from the columns {sorted(row)}; accepted formats: {formats_text()}")
