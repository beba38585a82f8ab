"""Candidate sets: one prompt's N responses (and optionally their gold rewards), read from a file.

Two row shapes, told apart per row (SHAPES: shared with the verifiers):

* one row per prompt: ``{"id"?, "prompt": str | [messages], "responses": [str, ...], "gold": [number | bool |
  null, ...]?, "meta"?: {...}}`` — what ``rewardlab sample`` writes (plus ``logprobs``, ``sampling``);
* one row per sample: ``{"id"?, "prompt", "response", "gold"?, "meta"?}``, grouped by prompt in file order
  (consecutive rows with the same prompt form one set; the same prompt again later is a second set); TRL's SFT
  rows (``{"messages": [..., assistant]}`` or ``{"prompt", "completion"}``, what ``rewardlab select`` writes)
  are read as such rows.

Gold ``null`` (a checker that could not decide) stays ``None``: it is counted by the analysis, never read as 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from rewardlab.core.errors import DataError
from rewardlab.data.readers import iter_rows


@dataclass
class CandidateSet:
    id: str
    prompt: str | list  # text, or a list of {role, content} messages
    responses: list[str]
    gold: list[float | None] | None = None  # per response; None: no labels in the file
    meta: dict = field(default_factory=dict)  # facts a gold checker reads (the embedded tasks' meta)
    extra: dict = field(default_factory=dict)  # anything else the row carried (logprobs, sampling, ...)


def _prompt(loc: dict, value):
    ok = isinstance(value, str) and value != ""
    ok = ok or (
        isinstance(value, list)
        and bool(value)
        and all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in value
        )
    )
    if not ok:
        _bad(loc, "prompt", "missing, empty, or not text / a list of {role, content} messages")
    return value


def _gold(loc: dict, value, field_name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    _bad(loc, field_name, f"expected a finite number, true/false or null, got {value!r}")


def _bad(loc: dict, field_name: str, msg: str):
    raise DataError(msg, path=loc.get("path", "?"), line=loc.get("line"), row=loc.get("row"), field=field_name)


def _assistant_text(loc: dict, value, field_name: str) -> str:
    if isinstance(value, str):
        return value
    if (
        isinstance(value, list)
        and len(value) == 1
        and isinstance(value[0], dict)
        and value[0].get("role") == "assistant"
    ):
        if isinstance(value[0].get("content"), str):
            return value[0]["content"]
    _bad(loc, field_name, "expected text or one {role: assistant, content} message")


def _sft_row(loc: dict, row: dict) -> dict:
    """An SFT row (TRL's ``messages``, or ``prompt`` + ``completion``, as ``rewardlab select`` writes) as a
    one-sample row: the prompt is every message but the last, the response the last (assistant) message."""
    if "messages" in row:
        msgs = row["messages"]
        if not isinstance(msgs, list) or len(msgs) < 2 or not isinstance(msgs[-1], dict):
            _bad(loc, "messages", "expected the prompt's messages followed by the assistant's answer")
        response = _assistant_text(loc, [msgs[-1]], "messages")
        return {**{k: v for k, v in row.items() if k != "messages"}, "prompt": msgs[:-1], "response": response}
    if "completion" in row and "response" not in row and "responses" not in row:
        response = _assistant_text(loc, row["completion"], "completion")
        return {**{k: v for k, v in row.items() if k != "completion"}, "response": response}
    return row


def read_candidates(path: str | Path) -> list[CandidateSet]:
    """Every candidate set of ``path`` (JSONL / JSON / any file :func:`iter_rows` reads), in file order.
    A bad row stops with the file, line and field."""
    sets: list[CandidateSet] = []
    open_single: CandidateSet | None = None
    name = Path(path).name
    for loc, row in iter_rows(str(path)):
        where = loc.get("line", loc.get("row"))
        row = _sft_row(loc, row)
        prompt = _prompt(loc, row.get("prompt"))
        meta = row.get("meta") or {}
        if not isinstance(meta, dict):
            _bad(loc, "meta", "expected an object")
        if "responses" in row:
            open_single = None
            responses = row["responses"]
            if not isinstance(responses, list) or not responses or not all(isinstance(r, str) for r in responses):
                _bad(loc, "responses", "expected a non-empty list of texts")
            gold = None
            if row.get("gold") is not None:
                if not isinstance(row["gold"], list) or len(row["gold"]) != len(responses):
                    _bad(loc, "gold", f"expected a list of {len(responses)} values, one per response")
                gold = [_gold(loc, g, "gold") for g in row["gold"]]
            extra = {k: v for k, v in row.items() if k not in ("id", "prompt", "responses", "gold", "meta")}
            sets.append(CandidateSet(str(row.get("id", f"{name}:{where}")), prompt, list(responses), gold, meta, extra))
        elif "response" in row:
            if not isinstance(row["response"], str):
                _bad(loc, "response", "expected text")
            has_gold = "gold" in row
            if open_single is None or open_single.prompt != prompt:
                open_single = CandidateSet(
                    str(row.get("id", f"{name}:{where}")), prompt, [], [] if has_gold else None, meta
                )
                sets.append(open_single)
            elif (open_single.gold is not None) != has_gold:
                _bad(loc, "gold", "some samples of this prompt have a gold value and some do not")
            open_single.responses.append(row["response"])
            if has_gold:
                open_single.gold.append(_gold(loc, row["gold"], "gold"))
        else:
            _bad(loc, "responses", "a row needs 'responses' (one row per prompt) or 'response' (one row per sample)")
    if not sets:
        raise DataError("no candidate sets in the file", path=str(path))
    return sets
