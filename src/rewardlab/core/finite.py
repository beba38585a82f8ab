"""Non-finite numbers stop things with a message, never flow on silently.

A NaN/Inf loss or gradient norm stops training at that step (:func:`step_problem`); weights with a non-finite
value are never written (:func:`check_weights` before every save) and never loaded; a non-finite reward is an
error, not a ``null`` in a response or a ``NaN`` in a scores file (:func:`check_rewards`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from rewardlab.core.errors import RewardlabError


class NonFiniteError(RewardlabError):
    """A weight, loss, gradient norm or reward is NaN or infinite."""


def nonfinite_tensors(named: Iterable[tuple[str, torch.Tensor]]) -> list[str]:
    """Names of the floating-point tensors holding at least one NaN or ±Inf."""
    return [name for name, t in named if t.is_floating_point() and not bool(torch.isfinite(t).all())]


def check_weights(named: Iterable[tuple[str, torch.Tensor]], where: str) -> None:
    """Raise :class:`NonFiniteError` naming ``where`` and the first bad tensors if any weight is not finite."""
    bad = nonfinite_tensors(named)
    if bad:
        shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise NonFiniteError(f"{where}: non-finite (NaN/Inf) weights in {len(bad)} tensor(s): {shown}")


def check_rewards(rewards: list[float], where: str) -> list[float]:
    """``rewards`` unchanged when all are finite, else :class:`NonFiniteError` naming the first bad index.
    A reward may be a row of numbers (a multi-objective model's score, attributes and gate weights)."""
    for i, r in enumerate(rewards):
        if not all(math.isfinite(v) for v in (r if isinstance(r, list) else (r,))):
            raise NonFiniteError(
                f"{where}: the model gave a non-finite reward ({r}) for text #{i}; its weights or this input overflow"
            )
    return rewards


def step_problem(loss: float, grad_norm: float | None) -> str | None:
    """What is non-finite at an optimizer step (``"loss nan"``, ``"gradient norm inf"``), or None."""
    if not math.isfinite(loss):
        return f"loss {loss}"
    if grad_norm is not None and not math.isfinite(grad_norm):
        return f"gradient norm {grad_norm}"
    return None
