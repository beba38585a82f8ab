"""Declared ranges of config fields: ``batch_size: Positive = 16`` next to the field it bounds.

Each alias is ``Annotated[type, constraint...]`` with :mod:`annotated_types` constraints, which
:mod:`rewardlab.settings` hands to pydantic; ``typing.get_type_hints`` without ``include_extras`` sees the
plain type, so argparse and anything else reading the annotations is unaffected. Every float of every config
must also be finite (pydantic ``allow_inf_nan=False``, set once in :mod:`rewardlab.settings`).
This module imports nothing heavy: the config modules import it at start-up.
"""

from __future__ import annotations

from typing import Annotated

from annotated_types import Ge, Gt, Le, Lt

Positive = Annotated[int, Ge(1)]  # counts and sizes: batch sizes, steps, lengths, tokens
NonNegative = Annotated[int, Ge(0)]  # 0 means "off" / "only at the end"
Seed = Annotated[int, Ge(0), Lt(2**32)]  # numpy's seed range
Port = Annotated[int, Ge(0), Le(65535)]
Fraction = Annotated[float, Ge(0.0), Le(1.0)]  # shares and probabilities, both ends allowed
PositiveFraction = Annotated[float, Gt(0.0), Le(1.0)]  # nucleus top_p: 0 would keep nothing
OpenFraction = Annotated[float, Ge(0.0), Lt(1.0)]  # dropout: 1 would drop everything
PositiveFloat = Annotated[float, Gt(0.0)]  # learning rates, scales, timeouts
NonNegativeFloat = Annotated[float, Ge(0.0)]  # weight decay, coefficients, 0 = off
