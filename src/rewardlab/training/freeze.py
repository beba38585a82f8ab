"""Freeze a causal LM below its last decoder blocks (``--train-layers``: train-judge and train-verifier)."""

from __future__ import annotations

from rewardlab.core.errors import RewardlabError


def freeze_below(model, n_layers: int) -> dict:
    """Freeze every weight except the last ``n_layers`` decoder blocks and the final norm (a cheap CPU option:
    no backward pass below them). Returns ``{"trainable": n, "total": n}`` parameter counts."""
    base = getattr(model, "model", None) or getattr(model, "transformer", None)
    layers = getattr(base, "layers", None) or getattr(base, "h", None)
    if layers is None:
        raise RewardlabError(f"--train-layers: cannot find the decoder blocks of {type(model).__name__}")
    if not 0 < n_layers <= len(layers):
        raise RewardlabError(f"--train-layers must be in 1..{len(layers)}, got {n_layers}")
    for p in model.parameters():
        p.requires_grad_(False)
    for block in list(layers)[len(layers) - n_layers :]:
        for p in block.parameters():
            p.requires_grad_(True)
    norm = getattr(base, "norm", None) or getattr(base, "ln_f", None)
    if norm is not None:
        for p in norm.parameters():
            p.requires_grad_(True)
    return {
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "total": sum(p.numel() for p in model.parameters()),
    }
