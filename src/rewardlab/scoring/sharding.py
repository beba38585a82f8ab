"""Data-parallel work: under ``torchrun`` / ``accelerate launch`` (``WORLD_SIZE`` > 1) each process does one shard of
the items and the results are gathered back **in input order**, so every process ends with the list one process
would have made. CPU runs use gloo.

Shards are contiguous blocks in input order (process r takes items ``[r·⌈M/W⌉, (r+1)·⌈M/W⌉)``), so the samples
of one prompt usually stay together and length-sorted batching inside a shard works as it does in one process.
A scorer's result for an item does not depend on its batch-mates except for float rounding (a block's batches
differ from one process's), so the gathered list equals one process's to ~1e-6 (tests/test_sharding.py).

**A failing process does not hang the others.** Each process's part runs inside :func:`exchange`: its outcome (the
result, or the error it raised) is gathered from every process, so when one process fails (bad input in its shard,
a non-finite score, out of memory) every process learns it at the same gather and raises the same one-line
:class:`ProcessFailed` naming the failing process and its reason (``rewardlab.cli`` prints it, exit 2). A process
that dies outright (killed) closes its gloo connections: the others' gather fails at once and they stop with
"lost process …". An error that is not one of rewardlab's (a bug) is re-raised with its traceback on the process
where it happened; the others stop with the one line.

Fault injection for tests (:func:`inject_fault`): ``REWARDLAB_FAULT_INJECT="RANK:KIND[@STEP]"`` makes process RANK
fail in its STEP-th sharded part (1 = the first, the default) with KIND ``error`` (a rewardlab error), ``oom``
(``MemoryError``, as an allocation that fails), ``nonfinite`` (a NaN score, caught by the finite check) or ``exit``
(the process dies: ``os._exit(1)``).
"""

from __future__ import annotations

import atexit
import math
import os
import re
from typing import Any, Callable, Sequence

from rewardlab.core.errors import RewardlabError
from rewardlab.core.sharding import gather_in_order, shard_bounds  # re-exported: moved to core/ for the trainer

FAULT_ENV = "REWARDLAB_FAULT_INJECT"
__all__ = [
    "FAULT_ENV",
    "NonFiniteInShard",
    "ProcessFailed",
    "exchange",
    "gather_in_order",
    "is_main_process",
    "map_sharded",
    "score_items",
    "shard_bounds",
    "world",
]
_steps_done = [0]  # this process's sharded parts so far (for the fault injection's @STEP)


class ProcessFailed(RewardlabError):
    """One process of a data-parallel run failed; raised on every process with its rank and reason."""


class NonFiniteInShard(ProcessFailed):
    """A process's part stopped on a non-finite value (its message names the item by its index in the whole input)."""


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


def inject_fault(rank: int) -> None:
    """The test hook (module docstring): raise / die here when ``REWARDLAB_FAULT_INJECT`` names this process and
    this sharded part. Counts the parts of this process."""
    _steps_done[0] += 1
    spec = os.environ.get(FAULT_ENV, "")
    m = re.fullmatch(r"(\d+):(error|oom|nonfinite|exit)(?:@(\d+))?", spec.strip())
    if not spec or m is None or int(m.group(1)) != rank or _steps_done[0] != int(m.group(3) or 1):
        return
    kind = m.group(2)
    if kind == "exit":
        os._exit(1)
    if kind == "oom":
        raise MemoryError("injected: cannot allocate memory")
    if kind == "nonfinite":
        from rewardlab.core.finite import check_rewards  # lazy: torch

        check_rewards([0.0, math.nan], "injected")
    raise RewardlabError(f"injected fault ({FAULT_ENV}={spec})")


def _reason(e: BaseException) -> str:
    """One line saying why a part failed."""
    if isinstance(e, RewardlabError):
        return str(e)
    if isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError":  # torch.OutOfMemoryError too
        return f"out of memory ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'no details'})"
    first = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


def _global_index(message: str, offset: int) -> str:
    """A scorer's ``text #k`` counts from the start of this process's shard; name the item in the whole input."""
    return re.sub(r"text #(\d+)", lambda m: f"text #{int(m.group(1)) + offset}", message) if offset else message


def exchange(part: Callable[[], Any], *, offset: int = 0, what: str = "its part") -> list:
    """Run ``part()`` on this process and gather every process's result (a list indexed by rank, on every
    process). If any process's part raised, every process raises :class:`ProcessFailed` (or
    :class:`NonFiniteInShard`) naming the lowest failing rank and its reason, instead of waiting forever in the
    gather. ``offset`` (this process's first item in the whole input) makes a ``text #k`` in the reason global.
    One process: ``[part()]``, errors raised as they are."""
    rank, size = world()
    if size == 1:
        inject_fault(rank)
        return [part()]
    import torch.distributed as dist  # lazy: only a multi-process run needs torch.distributed

    error: BaseException | None = None
    try:
        inject_fault(rank)
        outcome: tuple = ("ok", part())
    except Exception as e:  # noqa: BLE001 — every failure (MemoryError too) is told to the others, then raised
        error = e
        kind = "nonfinite" if type(e).__name__ == "NonFiniteError" else "error"
        outcome = (kind, _global_index(_reason(e), offset), what)
    outcomes: list = [None] * size
    try:
        dist.all_gather_object(outcomes, outcome)
    except RuntimeError as e:  # a peer died (connection closed / timeout): no outcome from it
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ProcessFailed(
            f"lost process: another of the {size} processes stopped without reporting while this one (rank {rank}) "
            f"was gathering {what} ({first[:200]})"
        ) from None
    failed = [(r, o) for r, o in enumerate(outcomes) if o[0] != "ok"]
    if not failed:
        return [o[1] for o in outcomes]
    r, (kind, reason, where) = failed[0]
    more = f" ({len(failed) - 1} other process(es) failed too)" if len(failed) > 1 else ""
    cls = NonFiniteInShard if kind == "nonfinite" else ProcessFailed
    message = f"process {r} of {size} failed in {where}: {reason}{more}"
    if error is not None and r == rank and not isinstance(error, (RewardlabError, MemoryError)):
        raise error  # a bug where it happened: its traceback; the others stop with the one line
    raise cls(message)


def map_sharded(fn: Callable[..., list], *seqs: Sequence, what: str = "its shard") -> list:
    """``fn(*shards)`` on this process's block of each sequence (all the same length), the results gathered in
    input order on every process; one process: ``fn(*seqs)``. A failing process stops every process
    (:func:`exchange`)."""
    rank, size = world()
    if size == 1:
        return exchange(lambda: list(fn(*seqs)), what=what)[0]
    lo, hi = shard_bounds(len(seqs[0]), rank, size)
    from rewardlab.core import progress  # lazy: tqdm only when there is work to show

    progress.status(f"{what}: {len(seqs[0])} items over {size} processes (data-parallel)")  # process 0 shows it
    parts = [list(s[lo:hi]) for s in seqs]
    blocks = exchange(lambda: list(fn(*parts)) if hi > lo else [], offset=lo, what=f"{what} (items {lo}..{hi - 1})")
    return [x for block in blocks for x in block]


def score_items(rm, items: Sequence, batch_size: int = 16, **score_kwargs) -> list[float]:
    """``rm.score`` over ``items`` — data-parallel when launched with several processes — in input order."""
    return map_sharded(
        lambda part: [float(x) for x in rm.score(part, batch_size=batch_size, **score_kwargs)], items, what="scoring"
    )
