"""Single ``{"prompt", "response"}`` rows (policy samples), as ``rewardlab score``, ``normalize`` and ``compose`` read
them: each row checked (the field, file and line named), or None when the file holds comparisons instead."""

from __future__ import annotations

from pathlib import Path

from rewardlab.core.errors import DataError
from rewardlab.data.readers import iter_rows


def single_rows(path: str, limit: int | None = None) -> list[dict] | None:
    """Rows with ``prompt`` + ``response`` (not a comparison), or None when the file holds comparisons."""
    rows = []
    for loc, row in iter_rows(path):
        if limit is not None and len(rows) >= limit:
            break
        if "response" not in row:
            return (
                None if not rows else bad_field(loc, "response", "missing field (other rows are prompt/response rows)")
            )
        if not isinstance(row.get("response"), str) or not row["response"]:
            bad_field(loc, "response", f"expected non-empty text, got {type(row.get('response')).__name__}")
        prompt = row.get("prompt")
        if not prompt or not (
            isinstance(prompt, str)
            or (
                isinstance(prompt, list)
                and all(
                    isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                    for m in prompt
                )
            )
        ):
            bad_field(loc, "prompt", "missing, empty, or not text / a list of {role, content} messages")
        prompt = row["prompt"] if isinstance(row["prompt"], str) else tuple(row["prompt"])
        if not isinstance(row.get("unsafe", False), bool):
            bad_field(loc, "unsafe", "expected true or false")
        rows.append(
            {
                "id": row.get("id", f"{Path(path).name}:{loc.get('line', loc.get('row'))}"),
                "prompt": prompt,
                "response": row["response"],
                "unsafe": row.get("unsafe", False),
            }
        )
    return rows


def json_prompt(prompt):
    """A prompt as it is written out: text, or the list of chat messages."""
    return prompt if isinstance(prompt, str) else [dict(m) for m in prompt]


def bad_field(loc: dict, field: str, msg: str):
    raise DataError(msg, path=loc["path"], line=loc.get("line"), row=loc.get("row"), field=field)
