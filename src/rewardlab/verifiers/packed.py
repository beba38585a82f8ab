"""The packed, prefix-shared forward of a verifier: the solutions of one problem compute their prompt once.

A batch's encoded solutions (:class:`~rewardlab.verifiers.steps.Encoded`) are grouped by prompt. Each group is laid
out by :func:`rewardlab.models.layout.layout_group`, the layout the pairwise trainer uses: the group's common token
prefix once (positions ``0 … p−1``), then each solution's own tokens with the positions they have in the
solution's own row (``p …``: positions restart after the prefix for every solution)::

    [ prompt + separator (p tokens) | solution 0's steps | solution 1's steps | ... ]

Each group is a row of its own (``token_budget=0``; the rows of a batch padded to the widest), and a 4-D boolean block
mask (:func:`rewardlab.models.packing.block_mask`) lets each token see the shared prefix and the
earlier tokens of its own solution only. The base model runs once over the rows, then the model's own dropout and
``score`` head, and the per-token logits are **gathered back into the padded** ``[B, T(, C)]`` **layout** of
:func:`rewardlab.verifiers.model.collate`: the labels, the completion mask, the losses and the read-outs are the
padded path's, unchanged, so a label lands on the same step-end token either way (a marker inside the shared
prefix, when two solutions share a first step, is read once and serves both).

Exact for a causal backbone (a token's hidden state depends only on the tokens before it and their positions,
identical in both layouts). Covered: transformers' generic token-classification class on the causal LMs of
:data:`rewardlab.models.packing.CAUSAL_TYPES` (a ``model`` base, ``dropout`` and a linear ``score`` head) with
``sdpa`` or ``eager`` attention and no sliding window shorter than ``max_length``. Anything else — a bidirectional
encoder (whose prompt states depend on the solution: nothing to share), another architecture or attention
implementation — gets ``(False, reason)`` from :func:`packed_support`: ``--packing auto`` then trains and scores on
the padded path and says so, ``--packing on`` refuses before training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rewardlab.models.layout import Group, build_inputs, layout_group, pack_rows
from rewardlab.models.packing import (
    ATTN_IMPLEMENTATIONS,
    CAUSAL_TYPES,
    _causal_states_at,
    _sliding_window,
    block_mask,
    last_layer_trimmable,
)
from rewardlab.verifiers.steps import Encoded

# One problem per row. Measured (perf/bench_prm_train.py's model, 4 × 256 Llama, 10 batches of 16 solutions = 4
# problems, forward + backward, one thread, process CPU seconds): padded 5.3-5.6; packed rows of 512 tokens 3.6-3.7;
# one problem per row 2.8-2.9 (the dense block mask costs attention over the whole row, whatever it hides).
TOKEN_BUDGET = 0


def packed_support(model, causal: bool, max_length: int) -> tuple[bool, str]:
    """``(True, "")`` when the packed forward is exact for this token-classification model, else ``(False, why)``."""
    if not causal:
        return False, "a bidirectional encoder: its prompt states depend on the solution, so nothing can be shared"
    cfg = model.config
    impl = getattr(cfg, "_attn_implementation", None)
    if impl not in ATTN_IMPLEMENTATIONS:
        return False, f"attention implementation {impl!r} (packing needs one of {ATTN_IMPLEMENTATIONS})"
    if cfg.model_type not in CAUSAL_TYPES:
        return False, f"model type {cfg.model_type!r} is not one of the covered causal LMs {CAUSAL_TYPES}"
    if not isinstance(getattr(model, "score", None), torch.nn.Linear) or not hasattr(model, "dropout"):
        return False, f"{type(model).__name__} is not transformers' generic token classifier (dropout + linear score)"
    window = _sliding_window(cfg)
    if window is not None and window < max_length:
        return False, f"sliding window {window} < max_length {max_length}"
    return True, ""


@dataclass
class PackedBatch:
    """Packed rows and the map back: ``inputs`` (``input_ids``, ``position_ids``, ``packed_seg``,
    ``packed_member``: ``(R, W)``); ``gather`` ``(B, T)``: for solution b's token t, its index in the flattened
    ``R·W`` rows (0 for padding); ``valid`` ``(B, T)``: t < the solution's length; ``tokens``: real packed tokens
    (each shared prefix counted once)."""

    inputs: dict[str, torch.Tensor]
    gather: torch.Tensor
    valid: torch.Tensor
    tokens: int

    def to(self, device) -> "PackedBatch":
        return PackedBatch(
            {k: v.to(device) for k, v in self.inputs.items()},
            self.gather.to(device),
            self.valid.to(device),
            self.tokens,
        )


def _own_starts(group: Group, n: int) -> tuple[int, list[int]]:
    """``(p, starts)``: the shared prefix length and the offset of each member's first own token in the group."""
    p = group.member.count(-1)
    starts = [group.member.index(k) for k in range(n)]
    return p, starts


def pack_solutions(
    encoded: list[Encoded], keys: list, pad_id: int, token_budget: int = TOKEN_BUDGET, share_prefix: bool = True
) -> PackedBatch:
    """Lay out ``encoded`` (solution b's prompt key ``keys[b]``; the same key = one group) in packed rows of at most
    ``token_budget`` tokens (a longer group: a row of its own; 0: every group its own row).

    >>> e = [Encoded([1, 2, 3, 4], [3], 2, 4), Encoded([1, 2, 5], [2], 2, 3)]
    >>> pb = pack_solutions(e, ["q", "q"], 0, 16)
    >>> pb.inputs["input_ids"].tolist(), pb.inputs["position_ids"].tolist(), pb.gather.tolist(), pb.tokens
    ([[1, 2, 3, 4, 5]], [[0, 1, 2, 3, 2]], [[0, 1, 2, 3], [0, 1, 4, 0]], 5)
    """
    members: dict = {}
    for b, key in enumerate(keys):
        members.setdefault(key, []).append(b)
    order = list(members.values())
    groups = [layout_group([{"input_ids": encoded[b].ids} for b in idx], "causal", share_prefix) for idx in order]
    rows = pack_rows([len(g) for g in groups], token_budget)
    inputs = build_inputs(groups, rows, pad_id)
    inputs.pop("packed_read")
    W = inputs["input_ids"].shape[1]
    T = max(len(e.ids) for e in encoded)
    gather = torch.zeros((len(encoded), T), dtype=torch.long)
    valid = torch.zeros((len(encoded), T), dtype=torch.bool)
    for r, row in enumerate(rows):
        off = 0
        for g in row:
            p, starts = _own_starts(groups[g], len(order[g]))
            for k, b in enumerate(order[g]):
                n = len(encoded[b].ids)
                own = torch.arange(starts[k], starts[k] + n - p)
                gather[b, :n] = r * W + off + torch.cat([torch.arange(p), own])
                valid[b, :n] = True
            off += len(groups[g])
    return PackedBatch(inputs, gather, valid, sum(len(g) for g in groups))


def packed_logits(model, batch: PackedBatch, reads: torch.Tensor | None = None) -> torch.Tensor:
    """Per-token logits ``[B, T, C]`` (float) in the padded layout, from one forward over the packed rows: the base
    model under the block mask and restarted positions, then the model's own ``dropout`` and ``score``. Padding
    positions hold 0 (nothing reads them: labels and masks are the padded batch's).

    ``reads`` ``[B, T]`` bool (a PRM's labelled step-end tokens): only those positions are computed and filled (0
    elsewhere), and the last layer runs with queries at them only (keys and values over every token;
    :func:`rewardlab.models.packing._causal_states_at`, the pairwise path's trimmed last layer) where
    :func:`~rewardlab.models.packing.last_layer_trimmable` allows it: about a quarter of a 4-layer model's forward and
    backward saved, the same values (tested ≤ 1e-5)."""
    inp = batch.inputs
    mask = block_mask(inp["packed_seg"], inp["packed_member"], causal=True)
    if model.config._attn_implementation == "eager":
        dtype = next(model.parameters()).dtype
        mask = torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(~mask, torch.finfo(dtype).min)
    base = getattr(model, model.base_model_prefix)
    if reads is not None and bool(reads.any()) and last_layer_trimmable(model) == "":
        W = inp["input_ids"].shape[1]
        flat = batch.gather[reads]
        states = _causal_states_at(base, inp["input_ids"], inp["position_ids"], mask, flat // W, flat % W)
        picked = model.score(model.dropout(states)).float()
        out = torch.zeros((*reads.shape, picked.shape[-1]), dtype=picked.dtype, device=picked.device)
        out[reads] = picked
        return out
    hidden = base(
        input_ids=inp["input_ids"], attention_mask=mask, position_ids=inp["position_ids"], use_cache=False
    ).last_hidden_state
    logits = model.score(model.dropout(hidden)).float().flatten(0, 1)
    return logits[batch.gather] * batch.valid[..., None]
