"""Verifier losses and score read-outs: pure functions of tensors, one value per solution.

Shapes: ``B`` solutions, ``T`` tokens, ``C`` classes. ``labels`` [B, T] float hold a step's label at its
marker token and :data:`IGNORE` (-100) everywhere else; a step label is 0/1 (binary), a probability (soft) or
−1/0/+1 (ternary: classes 0/1/2). Every loss returns [B]: the solution's mean over what it is trained on (its
completion tokens, or its labelled steps); a solution with nothing to train on gives 0. A trainer sums these
over a step's solutions and divides by their number, so the loss does not depend on how a step is split over
processes or micro-batches.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE = -100.0


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[B, T] values, [B, T] bool mask → [B] mean over the mask (0 where the mask is empty)."""
    m = mask.to(values.dtype)
    return (values * m).sum(-1) / m.sum(-1).clamp(min=1)


def orm_token_bce(logits: torch.Tensor, outcome: torch.Tensor, completion_mask: torch.Tensor) -> torch.Tensor:
    """ORM per-token BCE (Cobbe et al. 2021, Lightman et al. 2023): the solution's outcome (0/1) is the target of
    every completion token; prompt tokens (and padding) are masked. logits [B, T], outcome [B], mask [B, T] → [B].

    Worked: tokens (prompt, t1, t2) with logits (0, 0, ln 3), outcome 1: t1 σ(0) = ½ → −ln ½ = 0.6931;
    t2 σ(ln 3) = ¾ → −ln ¾ = 0.2877; mean (0.6931 + 0.2877) / 2 = 0.4904.

    >>> import math
    >>> round(orm_token_bce(torch.tensor([[0.0, 0.0, math.log(3)]]), torch.tensor([1.0]),
    ...                     torch.tensor([[False, True, True]])).item(), 4)
    0.4904
    """
    target = outcome[:, None].expand_as(logits).to(logits.dtype)
    per_token = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return _masked_mean(per_token, completion_mask)


def orm_mean_logit_bce(logits: torch.Tensor, outcome: torch.Tensor, completion_mask: torch.Tensor) -> torch.Tensor:
    """The sequence-level ORM variant: one BCE of σ(mean of the completion tokens' logits) — the sigmoid after
    pooling, not the mean of the probabilities. logits [B, T], outcome [B], mask [B, T] → [B].

    Worked: completion logits (0, ln 3): mean ln 3 / 2 = 0.5493, σ = √3 / (1 + √3) = 0.6340, −ln 0.6340 = 0.4557.

    >>> import math
    >>> round(orm_mean_logit_bce(torch.tensor([[5.0, 0.0, math.log(3)]]), torch.tensor([1.0]),
    ...                          torch.tensor([[False, True, True]])).item(), 4)
    0.4557
    """
    pooled = _masked_mean(logits, completion_mask)
    return F.binary_cross_entropy_with_logits(pooled, outcome.to(pooled.dtype), reduction="none")


def prm_bce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """PRM binary / soft-label BCE at the step markers only: target = the label itself (0/1, or a probability
    kept as a float). logits [B, T], labels [B, T] (IGNORE elsewhere) → [B].

    Worked: marker logits (2, ln 3) with labels (1, 0.7): −ln σ(2) = ln(1 + e⁻²) = 0.1269;
    σ(ln 3) = ¾ → −(0.7 ln ¾ + 0.3 ln ¼) = 0.2014 + 0.4159 = 0.6173; mean 0.3721.

    >>> import math
    >>> round(prm_bce(torch.tensor([[9.0, 2.0, math.log(3)]]), torch.tensor([[IGNORE, 1.0, 0.7]])).item(), 4)
    0.3721
    """
    mask = labels != IGNORE
    target = torch.where(mask, labels, torch.zeros_like(labels)).to(logits.dtype)
    per_token = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return _masked_mean(per_token, mask)


def prm_ternary_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """PRM 3-class CE at the markers: label −1 / 0 / +1 → class 0 / 1 / 2. logits [B, T, 3], labels [B, T] → [B].

    Worked: logits (0, 0, 0) with label −1: −ln ⅓ = 1.0986; (0, 0, ln 2) with label +1: p = 2 / 4 → 0.6931;
    mean 0.8959.

    >>> import math
    >>> z = torch.tensor([[[0.0, 0.0, 0.0], [0.0, 0.0, math.log(2)], [7.0, 0.0, 0.0]]])
    >>> round(prm_ternary_ce(z, torch.tensor([[-1.0, 1.0, IGNORE]])).item(), 4)
    0.8959
    """
    mask = labels != IGNORE
    cls = torch.where(mask, labels + 1, torch.zeros_like(labels)).long()
    per_token = F.cross_entropy(logits.transpose(1, 2), cls, reduction="none")
    return _masked_mean(per_token, mask)


def prm_two_class_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """TRL's head: 2-class token classification, CE at the markers against [1 − p, p] (a hard 0/1 label is the
    usual CE; a soft label stays soft — TRL casts it with ``int()``). logits [B, T, 2], labels [B, T] → [B].

    Worked: logits (0, ln 3) → p(correct) = ¾; label 1: −ln ¾ = 0.2877; label 0.7: 0.6173 (as in :func:`prm_bce`).

    >>> import math
    >>> z = torch.tensor([[[0.0, math.log(3)], [0.0, math.log(3)]]])
    >>> [round(v, 4) for v in prm_two_class_ce(z, torch.tensor([[1.0, IGNORE]])).tolist()]
    [0.2877]
    >>> round(prm_two_class_ce(z, torch.tensor([[IGNORE, 0.7]])).item(), 4)
    0.6173
    """
    mask = labels != IGNORE
    p = torch.where(mask, labels, torch.zeros_like(labels)).to(logits.dtype)
    logp = F.log_softmax(logits, dim=-1)
    per_token = -((1 - p) * logp[..., 0] + p * logp[..., 1])
    return _masked_mean(per_token, mask)


def correct_probability(logits: torch.Tensor, head: str) -> torch.Tensor:
    """P(correct) per token: a one-output head (``bce``, ``orm_token``, ``orm_mean_logit``: [B, T] logits) σ(logit);
    ``two_class`` softmax class 1, ``ternary`` softmax class 2 (+1) ([B, T, C] logits) → [B, T].

    >>> correct_probability(torch.tensor([[0.0]]), "bce").tolist(), correct_probability(
    ...     torch.tensor([[[0.0, 0.0, 0.0]]]), "ternary").tolist()
    ([[0.5]], [[0.3333333432674408]])
    """
    if HEADS[head][0] == 1:
        return torch.sigmoid(logits)
    probs = torch.softmax(logits, dim=-1)
    return probs[..., 1] if head == "two_class" else probs[..., 2]


# objective/head → (number of outputs, loss over (logits, batch) → [B])
HEADS = {
    "orm_token": (1, lambda logits, b: orm_token_bce(logits, b["outcome"], b["completion_mask"])),
    "orm_mean_logit": (1, lambda logits, b: orm_mean_logit_bce(logits, b["outcome"], b["completion_mask"])),
    "bce": (1, lambda logits, b: prm_bce(logits, b["labels"])),
    "two_class": (2, lambda logits, b: prm_two_class_ce(logits, b["labels"])),
    "ternary": (3, lambda logits, b: prm_ternary_ce(logits, b["labels"])),
}
