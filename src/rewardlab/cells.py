"""Table cells shared by the Markdown (:mod:`rewardlab.report`) and HTML (:mod:`rewardlab.report_html`) reports."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

MISSING = "—"


def fmt(value: Any, digits: int = 4) -> str:
    """A number with ``digits`` decimals (ints and bools as they are); ``None``/NaN as "—"."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else MISSING
    return str(value)


def _get(d: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def model_label(path: str) -> str:
    """A model's short name for a report column or a judge: its directory's name, or the parent's for a
    ``.../run/model`` directory (``runs/rm/model`` → ``rm``)."""
    p = Path(str(path).rstrip("/"))
    name = p.parent.name if p.name == "model" and p.parent.name else p.name
    return name or "model"
