"""Reward-model losses: pure functions of reward tensors, one enum, one short dispatcher.

Every loss returns a *per-pair* tensor of shape ``(P,)``; the trainer sums it and divides by the number
of pairs in the whole (accumulated, all-process) batch, so that gradient accumulation and data
parallelism give the same update as one big batch.

Shapes: ``r_w``, ``r_l``, ``margin``: ``(P,)`` float tensors, the rewards of the preferred and the
dispreferred response of each pair and an optional per-pair margin.

A new loss is one function here plus one line in ``PAIR_LOSSES``. The trainer only calls
:func:`batch_loss` (losses of one collated batch) and :func:`count_units` (how many loss units a set of
comparisons holds, known before any forward pass, so the normaliser of a global batch is exact).
"""
from __future__ import annotations

import enum

import torch
import torch.nn.functional as F


class LossType(str, enum.Enum):
    BT = "bt"  # Bradley-Terry, reference eq. 3
    MARGIN = "margin"  # Llama 2, reference eq. 5

    def __str__(self) -> str:  # so argparse/YAML show the plain value
        return self.value


def bradley_terry(r_w: torch.Tensor, r_l: torch.Tensor) -> torch.Tensor:
    """Eq. 3: ``-log σ(r_w - r_l)``, computed as ``-logsigmoid`` (stable for any |Δ|). ``(P,) -> (P,)``."""
    return -F.logsigmoid(r_w - r_l)


def bradley_terry_softplus(r_w: torch.Tensor, r_l: torch.Tensor) -> torch.Tensor:
    """The corrected eq. 4: ``log(1 + exp(r_l - r_w)) = softplus(r_l - r_w)``. ``(P,) -> (P,)``.

    The reference prints ``log(1 + e^{r_l} - e^{r_w})``, which is not a loss (its argument goes negative
    whenever r_w > log(1 + e^{r_l})). ``-log σ(d) = log(1 + e^{-d})`` with ``d = r_w - r_l`` is the correct form.
    ``torch.nn.functional.softplus`` switches to the identity above its threshold, so no ``exp`` overflows.
    """
    return F.softplus(r_l - r_w)


def margin_loss(r_w: torch.Tensor, r_l: torch.Tensor, margin: torch.Tensor) -> torch.Tensor:
    """Eq. 5 (Llama 2): ``-log σ(r_w - r_l - m)``. A pair is only "won" once r_w beats r_l by ``m``. ``(P,) -> (P,)``."""
    return -F.logsigmoid(r_w - r_l - margin)


def reward_centering(r_w: torch.Tensor, r_l: torch.Tensor) -> torch.Tensor:
    """Auxiliary term ``(r_w + r_l)²`` (Eisenstein et al. 2023) that pulls rewards towards zero mean.

    BT is invariant to adding a constant to every reward; this term picks the zero-centred solution.
    Multiply by a small coefficient (e.g. 0.01). ``(P,) -> (P,)``.
    """
    return (r_w + r_l) ** 2


def pair_loss(loss: LossType | str, r_w: torch.Tensor, r_l: torch.Tensor,
              margin: torch.Tensor | None = None, center_coef: float = 0.0) -> torch.Tensor:
    """Dispatch to the named per-pair loss and add the centering term. Returns ``(P,)``."""
    loss = LossType(loss)
    fn, needs_margin = PAIR_LOSSES[loss]
    if needs_margin and margin is None:
        raise ValueError(f"loss '{loss}' needs a margin for every pair (a 'margin' field in the data)")
    out = fn(r_w, r_l, margin) if needs_margin else fn(r_w, r_l)
    if center_coef:
        out = out + center_coef * reward_centering(r_w, r_l)
    return out


# name -> (function, whether it takes the per-pair margin)
PAIR_LOSSES = {
    LossType.BT: (bradley_terry, False),
    LossType.MARGIN: (margin_loss, True),
}


def batch_loss(loss: LossType | str, rewards: torch.Tensor, batch, center_coef: float = 0.0) -> torch.Tensor:
    """Per-unit losses of a collated batch (:class:`rewardlab.collate.PairBatch`); ``rewards``: ``(N,)`` rows.

    For the pairwise losses a unit is a (winner, loser) pair: returns ``(P,)``.
    """
    return pair_loss(loss, rewards[batch.chosen_idx], rewards[batch.rejected_idx], batch.margin, center_coef)


def count_units(loss: LossType | str, records) -> int:
    """Number of loss units :func:`batch_loss` returns for these comparisons (pairwise: Σ (K - 1))."""
    LossType(loss)
    return sum(c.k - 1 for c in records)
