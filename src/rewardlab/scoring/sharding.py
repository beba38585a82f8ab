"""Data-parallel scoring: under ``torchrun`` / ``accelerate launch`` (``WORLD_SIZE`` > 1) each process scores
one shard of the items and the scores are gathered back **in input order**, so every process ends with the list
one process would have made. CPU runs use gloo.

Shards are contiguous blocks in input order (process r takes items ``[r·⌈M/W⌉, (r+1)·⌈M/W⌉)``), so the samples
of one prompt usually stay together and length-sorted batching inside a shard works as it does in one process.
A scorer's result for an item does not depend on its batch-mates except for float rounding (a block's batches
differ from one process's), so the gathered list equals one process's to ~1e-6 (tests/test_sharding.py).
"""

from __future__ import annotations

import atexit
import os
from typing import Callable, Sequence

from rewardlab.core.sharding import gather_in_order, shard_bounds  # re-exported: moved to core/ for the trainer

__all__ = ["gather_in_order", "is_main_process", "map_sharded", "score_items", "shard_bounds", "world"]


def world() -> tuple[int, int]:
    """``(rank, world_size)``: from the launcher's environment, starting the gloo / NCCL group once if needed
    (and ending it when the process exits)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return 0, 1
    import torch  # lazy: only a multi-process run needs torch.distributed
    import torch.distributed as dist  # lazy: as above

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        atexit.register(lambda: dist.is_initialized() and dist.destroy_process_group())
    return dist.get_rank(), dist.get_world_size()


def is_main_process() -> bool:
    """Process 0 (or the only process): the one that writes outputs."""
    return world()[0] == 0


def map_sharded(fn: Callable[..., list], *seqs: Sequence) -> list:
    """``fn(*shards)`` on this process's block of each sequence (all the same length), the results gathered in
    input order on every process; one process: ``fn(*seqs)``."""
    rank, size = world()
    if size == 1:
        return list(fn(*seqs))
    lo, hi = shard_bounds(len(seqs[0]), rank, size)
    parts = [list(s[lo:hi]) for s in seqs]
    local = list(fn(*parts)) if hi > lo else []
    return gather_in_order(local, rank, size)


def score_items(rm, items: Sequence, batch_size: int = 16, **score_kwargs) -> list[float]:
    """``rm.score`` over ``items`` — data-parallel when launched with several processes — in input order."""
    return map_sharded(lambda part: [float(x) for x in rm.score(part, batch_size=batch_size, **score_kwargs)], items)
