"""The one bin packer: best-fit decreasing, used for packed rows (:func:`rewardlab.models.layout.pack_rows`) and for
steps of whole prompts or token budgets (:func:`rewardlab.training.samplers.pack`)."""

from __future__ import annotations

import bisect
from typing import Sequence


def best_fit_decreasing(sizes: Sequence[int], capacity: int, tiebreak: Sequence[int] | None = None) -> list[list[int]]:
    """Item indices per bin, each bin's total size ≤ ``capacity``; an item larger than ``capacity`` gets a bin of
    its own. Bins come back in the order they were opened.

    Items are taken largest first, equal sizes in ascending ``tiebreak[i]`` (default: their index); each goes
    into the bin with the least room that still fits it (the earliest opened such bin on equal room), else into
    a new bin. Sizes (3, 1, 2, 2) with capacity 4: 3 → bin A (room 1); 2 → bin B (room 2); 2 → B (room 0,
    full); 1 → A. Bins ``[[0, 1], [2, 3]]``.
    """
    key = (lambda i: (-sizes[i], i)) if tiebreak is None else (lambda i: (-sizes[i], tiebreak[i]))
    bins: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (room left, bin index) of the bins with room, sorted
    for i in sorted(range(len(sizes)), key=key):
        size = sizes[i]
        at = bisect.bisect_left(free, (size, -1))
        if size <= capacity and at < len(free):
            room, b = free.pop(at)
        else:
            room, b = capacity, len(bins)
            bins.append([])
        bins[b].append(i)
        if room - size > 0:
            bisect.insort(free, (room - size, b))
    return bins
