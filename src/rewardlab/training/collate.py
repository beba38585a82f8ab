"""From comparisons to tensors: every response of every comparison becomes one row, pairs index rows.

A batch of B comparisons with K_b responses each is laid out as ``N = Σ K_b`` rows (each response
forwarded once, whatever the loss), and the preferences as indices into those rows:

* strict pairs ``chosen_idx`` / ``rejected_idx`` ``(P,)`` — every (winner, loser) pair the record's partial
  ranking implies (:meth:`Comparison.strict_pairs`), with ``pair_group`` (its record) and ``margin``;
* tied pairs ``tie_a`` / ``tie_b`` ``(T,)`` with ``tie_group``;
* a padded ``(B, K_max)`` view for K-wise losses: ``slot_row`` (the row of response k of record b, −1 for
  padding) and ``slot_tier`` (its tier, see :func:`rewardlab.training.losses.plackett_luce`).

A loss reads ``rewards[chosen_idx]`` etc.; every record's ``weight`` is in ``record_weight`` ``(B,)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from rewardlab.data.record import Comparison
from rewardlab.models.layout import build_inputs, default_token_budget, layout_group, pack_rows, pad_batch
from rewardlab.training.losses import PAD_TIER, UNRANKED_TIER


def pair_margin(c: Comparison, i: int, j: int) -> float | None:
    """The data's margin of pair (i, j): the record's ``margin`` for K = 2, else the score difference s_i − s_j."""
    if c.k == 2 and c.margin is not None:
        return float(c.margin)
    if c.scores is not None:
        return float(c.scores[i] - c.scores[j])
    return None


def preference_pairs(c: Comparison) -> list[tuple[int, int, float | None]]:
    """(winner, loser, margin) response indices of every strict pair of ``c`` (see :func:`pair_margin`).

    Without a ranking this is "the chosen response beats every other one", K − 1 pairs.
    """
    return [(i, j, pair_margin(c, i, j)) for i, j in c.strict_pairs()]


def response_tiers(c: Comparison) -> list[int]:
    """The tier of each response (0 = best), ``UNRANKED_TIER`` for a response in no tier. ``-> [K]``."""
    out = [UNRANKED_TIER] * c.k
    for t, tier in enumerate(c.preference_tiers()):
        for i in tier:
            out[i] = t
    return out


@dataclass
class PairBatch:
    inputs: dict[str, torch.Tensor]  # input_ids / attention_mask (/ token_type_ids): (N, T)
    chosen_idx: torch.Tensor  # (P,) row of the preferred response of each strict pair
    rejected_idx: torch.Tensor  # (P,) row of the dispreferred response
    margin: torch.Tensor | None  # (P,) or None when any pair lacks one
    group: torch.Tensor  # (N,) index of the comparison each row belongs to
    n_tokens: int  # real (non-padding) tokens
    pair_group: torch.Tensor | None = None  # (P,) the comparison of each strict pair
    tie_a: torch.Tensor | None = None  # (T,) rows of tied pairs
    tie_b: torch.Tensor | None = None
    tie_group: torch.Tensor | None = None  # (T,)
    slot_row: torch.Tensor | None = None  # (B, K_max) row of response k of comparison b; -1: padding
    slot_tier: torch.Tensor | None = None  # (B, K_max) tier; PAD_TIER for padding, UNRANKED_TIER
    record_weight: torch.Tensor | None = None  # (B,)

    @property
    def n_records(self) -> int:
        return 0 if self.record_weight is None else len(self.record_weight)

    def to(self, device) -> "PairBatch":
        moved = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name, value in moved.items():
            if isinstance(value, torch.Tensor):
                moved[name] = value.to(device)
        moved["inputs"] = {k: v.to(device) for k, v in self.inputs.items()}
        return PairBatch(**moved)


def _long(values: list) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.long)


@dataclass
class _Index:
    """Where every response row and every pair of a batch of records sits (the PairBatch minus its inputs)."""

    rows: list[dict]
    fields: dict


def _pair_index(records: list[Comparison], features: list[list[dict]]) -> _Index:
    """The rows (``features`` flattened, record by record) and every PairBatch field that indexes them."""
    rows, group, w, l, margins, pair_group = [], [], [], [], [], []
    tie_a, tie_b, tie_group = [], [], []
    k_max = max((c.k for c in records), default=0)
    slot_row = [[-1] * k_max for _ in records]
    slot_tier = [[PAD_TIER] * k_max for _ in records]
    for b, (c, feats) in enumerate(zip(records, features)):
        base = len(rows)
        rows.extend(feats)
        group.extend([b] * len(feats))
        for i, j, m in preference_pairs(c):
            w.append(base + i)
            l.append(base + j)
            margins.append(m)
            pair_group.append(b)
        for i, j in c.tied_pairs():
            tie_a.append(base + i)
            tie_b.append(base + j)
            tie_group.append(b)
        for k, tier in enumerate(response_tiers(c)):
            slot_row[b][k] = base + k
            slot_tier[b][k] = tier
    margin = None if any(m is None for m in margins) else torch.tensor(margins, dtype=torch.float32)
    fields = dict(
        chosen_idx=_long(w),
        rejected_idx=_long(l),
        margin=margin,
        group=_long(group),
        n_tokens=sum(len(f["input_ids"]) for f in rows),  # real tokens, however the rows are laid out
        pair_group=_long(pair_group),
        tie_a=_long(tie_a),
        tie_b=_long(tie_b),
        tie_group=_long(tie_group),
        slot_row=_long(slot_row).reshape(len(records), k_max),
        slot_tier=_long(slot_tier).reshape(len(records), k_max),
        record_weight=torch.tensor([float(c.weight) for c in records], dtype=torch.float32),
    )
    return _Index(rows, fields)


def collate_pairs(records: list[Comparison], features: list[list[dict]], pad_id: int, padding_side: str) -> PairBatch:
    """``features[b][k]`` is the encoded response k of record b (from :meth:`TextEncoder.encode`); padded rows."""
    index = _pair_index(records, features)
    return PairBatch(pad_batch(index.rows, pad_id, padding_side), **index.fields)


def collate_packed(records, features: list[list[dict]], rm, token_budget: int | None = None, share_prefix: bool = True):
    """Like :func:`collate_pairs` (same rows, pairs, groups, margins, ``n_tokens``), with packed inputs
    (:mod:`rewardlab.models.layout`: a record's responses share their prompt prefix, groups packed into rows of
    ``token_budget`` tokens, default :func:`~rewardlab.models.layout.default_token_budget`). ``rm(**batch.inputs)`` then
    returns the rewards in the same row order. When the packed forward does not cover the model
    (``rm.packing_mode()`` is None) the rows are padded instead, exactly as :func:`collate_pairs` lays them out."""
    mode = rm.packing_mode()
    if mode is None:
        return collate_pairs(records, features, rm.spec.pad_token_id, rm.spec.padding_side)
    index = _pair_index(records, features)
    groups = [layout_group(f, mode, share_prefix) for f in features]
    rows = pack_rows([len(g) for g in groups], token_budget or default_token_budget(rm.model))
    return PairBatch(build_inputs(groups, rows, rm.spec.pad_token_id), **index.fields)
