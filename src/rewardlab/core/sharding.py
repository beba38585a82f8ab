"""Contiguous shards of a list over the processes of a ``torch.distributed`` world, and the gather back in input
order: the shared helpers of data-parallel scoring (:mod:`rewardlab.scoring.sharding`) and of the trainer's
held-out scoring (:mod:`rewardlab.training.train`).

Shards are contiguous blocks in input order (process r takes items ``[r·⌈M/W⌉, (r+1)·⌈M/W⌉)``); gathering
concatenates the blocks in rank order, so every process ends with the list one process would have made.
No heavy import at module level (torch.distributed only when a world has several processes).
"""

from __future__ import annotations


def shard_bounds(m: int, rank: int, size: int) -> tuple[int, int]:
    """Process ``rank``'s block of ``m`` items: 5 items over 2 processes → [0, 3) and [3, 5)."""
    per = -(-m // size)
    return min(rank * per, m), min((rank + 1) * per, m)


def gather_in_order(local: list, rank: int, size: int) -> list:
    """Every process's block, concatenated in rank order (``all_gather_object``), on every process."""
    if size == 1:
        return list(local)
    import torch.distributed as dist  # lazy: only a multi-process run needs torch.distributed

    blocks: list = [None] * size
    dist.all_gather_object(blocks, local)
    return [x for block in blocks for x in block]
