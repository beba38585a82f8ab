"""The registry of input formats: one raw row (a dict from :mod:`rewardlab.data.readers`) in, one :class:`Comparison` out.

:data:`FORMAT_SPECS` names every format with its parser (in :mod:`rewardlab.data.parsers`: ``native``,
``pairwise``, ``ratings``, ``ranked``; the field checks they share are :mod:`rewardlab.data.fields` and
:mod:`rewardlab.data.messages`), its columns and its detection rule. ``FORMATS`` maps a format name to a parser
``(row, location, options) -> Comparison``; :func:`detect_format` picks the name from a row's columns. Every
problem raises :class:`DataError` naming the file, the line or row, and the column at fault.

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
    * standard, implicit prompt: ``chosen``, ``rejected`` texts only, the prompt being their shared beginning.
      HH transcripts (``Human:`` / ``Assistant:`` turns) split at their turns as the conversational variant
      splits its messages (the same records as ``hh``); plain text that shares a whole word has no reliable
      boundary between prompt and answer and is refused (give a ``prompt`` column); texts that share no word
      have no prompt (``""``) and the whole texts are the responses;
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

from dataclasses import dataclass
from typing import Any, Callable

from rewardlab.data.fields import data_error
from rewardlab.data.messages import starts_with_human
from rewardlab.data.parsers.native import parse_rewardlab
from rewardlab.data.parsers.pairwise import parse_helpsteer2_pref, parse_hh, parse_pairwise, parse_trl
from rewardlab.data.parsers.ranked import parse_ranked
from rewardlab.data.parsers.ratings import (
    group_key,
    group_rated,
    parse_helpsteer2,
    parse_nemo_regression,
    parse_ratings,
)
from rewardlab.data.record import Comparison

Parser = Callable[..., Comparison]  # (row, location, options: ReadOptions | None = None) -> Comparison


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
    group: tuple[Callable[[Any], Any], Callable[[list], Comparison]] | None = (
        None  # (row -> record key, rows -> record)
    )


def _looks_hh(row: dict) -> bool:
    # Either side is enough: a row whose other side is malformed then gets HH's precise error
    # instead of silently parsing as a TRL implicit-prompt row.
    return (
        {"chosen", "rejected"} <= row.keys()
        and row.get("prompt") is None
        and (starts_with_human(row["chosen"]) or starts_with_human(row["rejected"]))
    )


def _has(row: dict, *fields: str) -> bool:
    return all(row.get(f) is not None for f in fields)


# THE registry of formats, in the order of --help and the error text; detection follows ``detect_rank``.
FORMAT_SPECS: tuple[FormatSpec, ...] = (
    FormatSpec(
        "rewardlab", parse_rewardlab, "prompt, responses, chosen", lambda row: {"prompt", "responses"} <= row.keys(), 3
    ),
    FormatSpec("trl", parse_trl, "chosen, rejected[, prompt]", lambda row: {"chosen", "rejected"} <= row.keys(), 8),
    FormatSpec("hh", parse_hh, "chosen, rejected as '\\n\\nHuman: …' transcripts", _looks_hh, 7),
    FormatSpec(
        "pairwise",
        parse_pairwise,
        "input, output_1, output_2, label",
        lambda row: {"input", "output_1"} <= row.keys(),
        6,
    ),
    FormatSpec(
        "ratings",
        parse_ratings,
        "prompt, completions[].response + score/ratings/annotations",
        lambda row: (
            _has(row, "completions") or (_has(row, "prompt", "responses", "scores") and not _has(row, "chosen"))
        ),
        2,
    ),
    FormatSpec(
        "helpsteer2",
        parse_helpsteer2,
        "prompt, response, helpfulness, …",
        lambda row: {"prompt", "response", "helpfulness"} <= row.keys(),
        5,
        group=(group_key, group_rated),
    ),
    FormatSpec(
        "helpsteer2_pref",
        parse_helpsteer2_pref,
        "prompt, response_1, response_2, preference_strength",
        lambda row: {"response_1", "response_2", "preference_strength"} <= row.keys(),
        4,
    ),
    FormatSpec(
        "ranked",
        parse_ranked,
        "prompt, responses, ranking or ranks; or Nectar's prompt, answers",
        lambda row: (
            _has(row, "prompt", "answers")
            or (
                _has(row, "prompt", "responses")
                and not _has(row, "chosen")
                and (_has(row, "ranking") or _has(row, "ranks"))
            )
        ),
        1,
    ),
    FormatSpec(
        "nemo_regression",
        parse_nemo_regression,
        "text, label: NeMo regression rows (--objective regression)",
        lambda row: {"text", "label"} <= row.keys(),
        0,
    ),
    FormatSpec("single", None, "prompt, response: one text per row, scored alone (rewardlab score, normalize)"),
)
SPECS: dict[str, FormatSpec] = {f.name: f for f in FORMAT_SPECS}
# the comparison formats: name -> parser (row, location, options) -> Comparison
FORMATS: dict[str, Parser] = {f.name: f.parse for f in FORMAT_SPECS if f.parse is not None}
# formats whose parser returns one row of a record: name -> (key of the record a row belongs to, rows -> record)
GROUPED: dict[str, tuple[Callable[[Any], Any], Callable[[list], Comparison]]] = {
    f.name: f.group for f in FORMAT_SPECS if f.group is not None
}
_DETECTION_RULES: list[tuple[str, Callable[[dict], bool]]] = [
    (f.name, f.detect) for f in sorted(FORMAT_SPECS, key=lambda f: f.detect_rank) if f.detect is not None
]


def formats_text(comparisons_only: bool = True) -> str:
    """``name (columns), …`` of every format, from :data:`FORMAT_SPECS`."""
    return ", ".join(f"{f.name} ({f.columns})" for f in FORMAT_SPECS if f.parse is not None or not comparisons_only)


def format_help(comparisons_only: bool = True) -> str:
    """The --format choices for --help: the comparison formats, and ``single`` where a command reads it."""
    return "one of: auto (detected from the columns; one format per file), " + formats_text(comparisons_only)


def detect_format(row: dict, location: dict | None = None) -> str:
    """The name in :data:`FORMATS` that fits ``row``'s columns; :class:`DataError` if none does."""
    for name, matches in _DETECTION_RULES:
        if matches(row):
            return name
    raise data_error(
        location or {},
        None,
        f"cannot tell the format from the columns {sorted(row)}; accepted formats: {formats_text()}",
    )
