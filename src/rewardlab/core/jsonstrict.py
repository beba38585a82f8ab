"""Strict JSON out: every file rewardlab writes parses with any JSON reader (no ``NaN`` / ``Infinity`` tokens).

:func:`dumps_strict` is ``json.dumps`` after the package's one JSON cleaner, :func:`rewardlab.core.atomic.json_safe`: a
non-finite float (Python or numpy) becomes ``null``, the JSON for "no value". Values that must never be
non-finite (rewards, weights) are refused before they get here (:mod:`rewardlab.core.finite`); this is for statistics
that can be undefined (a loss over a window of skipped steps, a standard deviation of one value).
"""

from __future__ import annotations

import json
from typing import Any

from rewardlab.core.atomic import json_safe


def dumps_strict(obj: Any, **kwargs) -> str:
    """``json.dumps(obj, **kwargs)`` with non-finite floats as ``null``; never emits ``NaN``/``Infinity``."""
    return json.dumps(json_safe(obj), allow_nan=False, **kwargs)
