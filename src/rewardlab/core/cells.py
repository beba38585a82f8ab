"""Table cells shared by the Markdown (:mod:`rewardlab.evaluation.report`) and HTML (:mod:`rewardlab.evaluation.report_html`) reports."""

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


def model_name(path: str, taken: dict) -> str:
    """A result column's name: the model's label, primed until it is not in ``taken``."""
    name = model_label(path)
    while name in taken:
        name += "'"
    return name


def with_ci(value: Any, ci: Any) -> str:
    """``0.7500 [0.6000, 0.9000]``: a value and its 95% interval as table text (the value alone without one)."""
    text = fmt(value)
    if text != MISSING and isinstance(ci, (list, tuple)) and len(ci) == 2:
        text += f" [{fmt(ci[0])}, {fmt(ci[1])}]"
    return text
