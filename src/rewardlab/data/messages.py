"""Prompts and conversations in raw rows: message lists, HH-RLHF transcripts, a prompt given either way."""

from __future__ import annotations

import json
import re
from typing import Any

from rewardlab.data.fields import check_text, data_error, required, type_name

ROLES = ("system", "user", "assistant", "tool")


def checked_message(value: Any, location: dict, field: str, index: int) -> dict:
    where = f"message {index}"
    if not isinstance(value, dict):
        raise data_error(
            location, field, f"{where}: expected an object with 'role' and 'content', got {type_name(value)}"
        )
    for key in ("role", "content"):
        if key not in value:
            raise data_error(location, field, f"{where}: no '{key}'")
    if value["role"] not in ROLES:
        raise data_error(location, field, f"{where}: role {value['role']!r} is not one of {', '.join(ROLES)}")
    content = check_text(value["content"], location, field, what=f"{where} content")
    return {"role": value["role"], "content": content}


def checked_messages(value: Any, location: dict, field: str) -> tuple[dict, ...]:
    if not isinstance(value, list) or not value:
        raise data_error(location, field, f"expected a non-empty list of messages, got {type_name(value)}")
    return tuple(checked_message(item, location, field, i) for i, item in enumerate(value))


def message_list(value: Any, location: dict, field: str) -> tuple[dict, ...]:
    """A conversation as a benchmark publishes it: a non-empty list of ``{"role": text, "content": text}``
    objects, or that list as JSON text (a CSV cell); any role name and empty content pass, other keys (e.g.
    RMB's ``language``) are dropped. (:func:`checked_messages` is the stricter check of training data.)"""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise data_error(location, field, "expected a list of messages") from None
    if not isinstance(value, (list, tuple)) or not value:
        raise data_error(location, field, f"expected a non-empty list of messages, got {type_name(value)}")
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise data_error(location, field, f"message {i}: expected {{'role': text, 'content': text}}")
        out.append({"role": m["role"], "content": m["content"]})
    return tuple(out)


def single_assistant(messages: tuple[dict, ...], location: dict, field: str) -> str:
    if len(messages) != 1 or messages[0]["role"] != "assistant":
        roles = [m["role"] for m in messages]
        raise data_error(location, field, f"expected exactly one assistant message, got roles {roles}")
    return messages[0]["content"]


def shared_prefix_length(a: tuple, b: tuple) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


HH_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant):")

HH_ROLES = {"Human": "user", "Assistant": "assistant"}


def starts_with_human(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("\n\nHuman:", "Human:"))


def hh_turns(text: Any, location: dict, field: str) -> list[dict]:
    """Split an HH transcript into ``{"role", "content"}`` turns (contents stripped)."""
    if not isinstance(text, str):
        raise data_error(location, field, f"expected text, got {type_name(text)}")
    parts = HH_TURN.split(text)
    if parts[0] != "" or len(parts) < 3 or parts[1] != "Human":
        raise data_error(location, field, "does not start with a '\\n\\nHuman:' turn")
    return [
        {"role": HH_ROLES[speaker], "content": content.strip()} for speaker, content in zip(parts[1::2], parts[2::2])
    ]


def hh_split(text: Any, location: dict, field: str) -> tuple[tuple[dict, ...], str]:
    """(prompt messages, final assistant response) of one transcript."""
    turns = hh_turns(text, location, field)
    if turns[-1]["role"] != "assistant":
        raise data_error(location, field, "does not end with an '\\n\\nAssistant:' turn")
    for index, turn in enumerate(turns):
        if not turn["content"]:
            final = "final " if index == len(turns) - 1 else ""
            raise data_error(location, field, f"empty {final}{turn['role']} turn (turn {index})")
    return tuple(turns[:-1]), turns[-1]["content"]


def hh_difference(chosen: tuple[dict, ...], rejected: tuple[dict, ...]) -> str:
    n = shared_prefix_length(chosen, rejected)
    if len(chosen) != len(rejected):
        return f"chosen has {len(chosen)} earlier turns, rejected {len(rejected)}; they agree on the first {n}"
    return f"turn {n} differs"


def hh_prompt(text: str, location: dict, field: str) -> tuple[dict, ...]:
    """Nectar-style ``"\n\nHuman: …\n\nAssistant:"``: the turns before the final, empty Assistant turn."""
    turns = hh_turns(text, location, field)
    if turns[-1]["role"] == "assistant" and not turns[-1]["content"]:
        turns = turns[:-1]
    for index, turn in enumerate(turns):
        if not turn["content"]:
            raise data_error(location, field, f"empty {turn['role']} turn (turn {index})")
    return tuple(turns)


def prompt_field(row: dict, location: dict, *fields: str) -> Any:
    """The first present field of ``fields``: text (an HH transcript becomes messages) or a list of messages."""
    field = next((f for f in fields if row.get(f) is not None), fields[0])
    value = required(row, location, field)
    if isinstance(value, list):
        return checked_messages(value, location, field)
    text = check_text(value, location, field, what="text or a list of messages")
    return hh_prompt(text, location, field) if starts_with_human(text) else text
