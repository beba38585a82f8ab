"""Strict JSON out: every file rewardlab writes parses with any JSON reader (no ``NaN`` / ``Infinity`` tokens).

:func:`dumps_strict` is ``json.dumps`` after :func:`finite_or_none`: a non-finite float (Python or numpy) becomes
``null``, the JSON for "no value". Values that must never be non-finite (rewards, weights) are refused before
they get here (:mod:`rewardlab.finite`); this is for statistics that can be undefined (a loss over a window of
skipped steps, a standard deviation of one value).
"""
from __future__ import annotations

import json
import math
from typing import Any


def finite_or_none(obj: Any) -> Any:
    """``obj`` with every NaN/±Inf float (also numpy floating scalars) inside dicts, lists and tuples as None."""
    if isinstance(obj, float) or (hasattr(obj, "dtype") and getattr(obj, "shape", None) == () and
                                  getattr(obj.dtype, "kind", "") == "f"):
        return float(obj) if math.isfinite(float(obj)) else None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(v) for v in obj]
    return obj


def dumps_strict(obj: Any, **kwargs) -> str:
    """``json.dumps(obj, **kwargs)`` with non-finite floats as ``null``; never emits ``NaN``/``Infinity``."""
    return json.dumps(finite_or_none(obj), allow_nan=False, **kwargs)
