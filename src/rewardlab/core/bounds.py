"""Declared ranges of config fields: ``batch_size: Positive = 16`` next to the field it bounds.

Each alias is ``Annotated[type, constraint...]`` with :mod:`annotated_types` constraints, which
:mod:`rewardlab.core.settings` hands to pydantic; ``typing.get_type_hints`` without ``include_extras`` sees the
plain type, so argparse and anything else reading the annotations is unaffected. Every float of every config
must also be finite (pydantic ``allow_inf_nan=False``, set once in :mod:`rewardlab.core.settings`).
This module imports nothing heavy: the config modules import it at start-up.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Annotated

from annotated_types import Ge, Gt, Le, Lt

from rewardlab.core.errors import RewardlabError

Positive = Annotated[int, Ge(1)]  # counts and sizes: batch sizes, steps, lengths, tokens
NonNegative = Annotated[int, Ge(0)]  # 0 means "off" / "only at the end"
Seed = Annotated[int, Ge(0), Lt(2**32)]  # numpy's seed range
Port = Annotated[int, Ge(0), Le(65535)]
Fraction = Annotated[float, Ge(0.0), Le(1.0)]  # shares and probabilities, both ends allowed
PositiveFraction = Annotated[float, Gt(0.0), Le(1.0)]  # nucleus top_p: 0 would keep nothing
OpenFraction = Annotated[float, Ge(0.0), Lt(1.0)]  # dropout: 1 would drop everything
PositiveFloat = Annotated[float, Gt(0.0)]  # learning rates, scales, timeouts
NonNegativeFloat = Annotated[float, Ge(0.0)]  # weight decay, coefficients, 0 = off


# ---- the ranges bind however a config is built ----------------------------------------------------------
_HINTS: dict[type, dict] = {}


def _hints(cls: type) -> dict:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls, include_extras=True)
    return _HINTS[cls]


def _constraints(hint) -> list:
    """The annotated_types constraints of a field's type (``X | None`` looks inside ``X``)."""
    found = []
    if typing.get_origin(hint) is Annotated:
        found += list(getattr(hint, "__metadata__", ()))
    for arg in typing.get_args(hint):
        if typing.get_origin(arg) is Annotated:
            found += list(arg.__metadata__)
    return found


def out_of_bounds(config) -> list[str]:
    """``field = value: must be > 0``-style problems of a config dataclass's declared ranges (and non-finite
    floats); empty when every field is in range. None is never checked (an optional field left out)."""
    problems = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{f.name} = {value}: must be finite")
            continue
        for c in _constraints(_hints(type(config)).get(f.name)):
            for op, bound, text in (
                ("ge", getattr(c, "ge", None), ">="),
                ("gt", getattr(c, "gt", None), ">"),
                ("le", getattr(c, "le", None), "<="),
                ("lt", getattr(c, "lt", None), "<"),
            ):
                if bound is None:
                    continue
                ok = {"ge": value >= bound, "gt": value > bound, "le": value <= bound, "lt": value < bound}[op]
                if not ok:
                    problems.append(f"{f.name} = {value!r}: must be {text} {bound}")
    return problems


def check_bounds(config) -> None:
    """Refuse a config built with a field out of its declared range (:class:`rewardlab.core.errors.RewardlabError`
    naming the class, the field, the value and the range): ``TrainConfig(lr=-1.0)`` in Python, not only a flag."""
    problems = out_of_bounds(config)
    if problems:
        raise RewardlabError(f"{type(config).__name__}: " + "; ".join(problems))


@dataclasses.dataclass
class Bounded:
    """Mix into a config dataclass: its declared ranges are checked when it is built (``__post_init__``; a class
    with its own ``__post_init__`` calls :func:`check_bounds` there)."""

    def __post_init__(self):
        check_bounds(self)
