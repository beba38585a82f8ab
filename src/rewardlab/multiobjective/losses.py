"""Masked regression loss over K attribute outputs (NeMo-Aligner's ``reg_loss_func`` form)."""

from __future__ import annotations

import torch


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``Σ m_k (ŷ_k − y_k)² / Σ m_k`` over the whole batch; a scalar.

    pred, target, mask: ``(B, K)``. ``mask`` is 1 where the label exists and 0 where it is missing; missing
    targets may hold any finite placeholder (they are multiplied by 0). A batch with no label at all gives 0
    (and no gradient), not NaN.
    """
    if pred.shape != target.shape or pred.shape != mask.shape:
        raise ValueError(f"pred {tuple(pred.shape)}, target {tuple(target.shape)} and mask {tuple(mask.shape)} differ")
    mask = mask.to(pred.dtype)
    err = (pred - torch.where(mask > 0, target.to(pred.dtype), pred.detach())) ** 2 * mask
    return err.sum() / mask.sum().clamp(min=1.0)


def targets_and_mask(ratings: list[tuple[float | None, ...]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Ratings with ``None`` for missing → ``(targets (B, K), mask (B, K))``; missing targets are 0."""
    target = torch.tensor([[0.0 if r is None else r for r in row] for row in ratings], dtype=torch.float32)
    mask = torch.tensor([[0.0 if r is None else 1.0 for r in row] for row in ratings], dtype=torch.float32)
    return target, mask
