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

Records hold messages as a tuple of plain ``{"role", "content"}`` dicts. ``source`` defaults to the
file's base name (for a hub dataset, its name) and ``id`` to ``"<base name>:<line or row>"``.
"""
from __future__ import annotations

import math
import os
import re
from typing import Any, Callable

from rewardlab.data.readers import looks_local
from rewardlab.data.record import Comparison
from rewardlab.errors import DataError

Parser = Callable[[dict, dict], Comparison]

ROLES = ("system", "user", "assistant", "tool")


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


def _distinct(chosen: Any, rejected: Any, location: dict, field: str) -> None:
    if chosen == rejected:
        raise data_error(location, field, "identical to the chosen response")


def _comparison(row: dict, location: dict, prompt: Any, responses: tuple[str, ...], chosen: int = 0,
                **extra: Any) -> Comparison:
    """Build the record, filling ``margin``, ``source`` and ``id`` from the row or the location."""
    return Comparison(
        prompt=prompt, responses=responses, chosen=chosen, margin=_margin(row, location),
        source=_optional_name(row, location, "source") or source_name(location),
        id=_optional_name(row, location, "id") or default_id(location),
        **extra,
    )


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
        if i != value and response == responses[value]:
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


def parse_rewardlab(row: dict, location: dict) -> Comparison:
    prompt = _native_prompt(row, location)
    responses = _native_responses(row, location)
    chosen = _native_chosen(row, location, responses)
    return _comparison(row, location, prompt, responses, chosen,
                       ranking=_native_ranking(row, location, len(responses), chosen),
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


def parse_trl(row: dict, location: dict) -> Comparison:
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


def parse_hh(row: dict, location: dict) -> Comparison:
    prompt, chosen = _hh_split(_required(row, location, "chosen"), location, "chosen")
    rejected_prompt, rejected = _hh_split(_required(row, location, "rejected"), location, "rejected")
    if rejected_prompt != prompt:
        raise data_error(location, "rejected", "the conversation before the final Assistant turn differs "
                                               f"from chosen's ({_hh_difference(prompt, rejected_prompt)})")
    _distinct(chosen, rejected, location, "rejected")
    return _comparison(row, location, prompt, (chosen, rejected))


# --- pairwise ------------------------------------------------------------------------------------------

_PAIRWISE_LABELS = {1: 0, 2: 1}  # label -> chosen index


def parse_pairwise(row: dict, location: dict) -> Comparison:
    prompt = _text(row, location, "input")
    responses = (_text(row, location, "output_1"), _text(row, location, "output_2"))
    _distinct(responses[0], responses[1], location, "output_2")
    label = _required(row, location, "label")
    if not _is_int(label) or label not in _PAIRWISE_LABELS:
        raise data_error(location, "label", f"expected the integer 1 or 2, got {label!r}")
    return _comparison(row, location, prompt, responses, _PAIRWISE_LABELS[label])


# --- registry and detection ----------------------------------------------------------------------------

FORMATS: dict[str, Parser] = {
    "rewardlab": parse_rewardlab,
    "trl": parse_trl,
    "hh": parse_hh,
    "pairwise": parse_pairwise,
}


def _starts_with_human(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("\n\nHuman:", "Human:"))


def _looks_hh(row: dict) -> bool:
    # Either side is enough: a row whose other side is malformed then gets HH's precise error
    # instead of silently parsing as a TRL implicit-prompt row.
    return ({"chosen", "rejected"} <= row.keys() and row.get("prompt") is None
            and (_starts_with_human(row["chosen"]) or _starts_with_human(row["rejected"])))


_DETECTION_RULES: list[tuple[str, Callable[[dict], bool]]] = [
    ("rewardlab", lambda row: {"prompt", "responses"} <= row.keys()),
    ("pairwise", lambda row: {"input", "output_1"} <= row.keys()),
    ("hh", _looks_hh),
    ("trl", lambda row: {"chosen", "rejected"} <= row.keys()),
]


def detect_format(row: dict, location: dict | None = None) -> str:
    """The name in :data:`FORMATS` that fits ``row``'s columns; :class:`DataError` if none does."""
    for name, matches in _DETECTION_RULES:
        if matches(row):
            return name
    raise data_error(location or {}, None,
                     f"cannot tell the format from the columns {sorted(row)}; accepted formats: "
                     "rewardlab (prompt, responses, chosen), trl (chosen, rejected[, prompt]), "
                     "hh (chosen, rejected as '\\n\\nHuman: …' transcripts), "
                     "pairwise (input, output_1, output_2, label)")
