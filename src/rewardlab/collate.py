"""From comparisons to tensors: every response of every comparison becomes one row, pairs index rows.

A batch of B comparisons with K_b responses each is laid out as ``N = Σ K_b`` rows (each response
forwarded once), and the preferences as index pairs into those rows. A loss then reads
``rewards[chosen_idx]`` and ``rewards[rejected_idx]``; K-wise losses can regroup rows by ``group``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from rewardlab.data.record import Comparison
from rewardlab.model import pad_batch


def preference_pairs(c: Comparison) -> list[tuple[int, int, float | None]]:
    """(winner, loser, margin) response indices: the chosen response beats every other one.

    The margin is the record's ``margin`` for K = 2, else the score difference when ``scores`` exist.
    """
    out = []
    for j in c.rejected_indices:
        if c.k == 2 and c.margin is not None:
            m = float(c.margin)
        elif c.scores is not None:
            m = float(c.scores[c.chosen] - c.scores[j])
        else:
            m = None
        out.append((c.chosen, j, m))
    return out


@dataclass
class PairBatch:
    inputs: dict[str, torch.Tensor]  # input_ids / attention_mask (/ token_type_ids): (N, T)
    chosen_idx: torch.Tensor  # (P,) row of the preferred response of each pair
    rejected_idx: torch.Tensor  # (P,) row of the dispreferred response
    margin: torch.Tensor | None  # (P,) or None when any pair lacks one
    group: torch.Tensor  # (N,) index of the comparison each row belongs to
    n_tokens: int  # real (non-padding) tokens

    def to(self, device) -> "PairBatch":
        return PairBatch({k: v.to(device) for k, v in self.inputs.items()}, self.chosen_idx.to(device),
                         self.rejected_idx.to(device), None if self.margin is None else self.margin.to(device),
                         self.group.to(device), self.n_tokens)


def collate_pairs(records: list[Comparison], features: list[list[dict]], pad_id: int, padding_side: str) -> PairBatch:
    """``features[b][k]`` is the encoded response k of record b (from :meth:`TextEncoder.encode`)."""
    rows, group, w, l, margins = [], [], [], [], []
    for b, (c, feats) in enumerate(zip(records, features)):
        base = len(rows)
        rows.extend(feats)
        group.extend([b] * len(feats))
        for i, j, m in preference_pairs(c):
            w.append(base + i)
            l.append(base + j)
            margins.append(m)
    inputs = pad_batch(rows, pad_id, padding_side)
    margin = None if any(m is None for m in margins) else torch.tensor(margins, dtype=torch.float32)
    return PairBatch(inputs, torch.tensor(w), torch.tensor(l), margin, torch.tensor(group),
                     int(inputs["attention_mask"].sum()))
