"""Which comparisons make up each optimizer step. Every plan is a pure function of (seed, epoch).

An epoch's *plan* is a list of steps, each a list of record indices (the global batch of that step, before
it is split over processes and micro-batches). Three samplers:

``random`` (default)
    A seeded permutation cut into ``batch_size`` chunks — exactly the trainer's original order. With
    several processes the last partial chunk is dropped so every process gets data.
``grouped``
    All records of one prompt in the same step (InstructGPT put all C(K,2) comparisons of a prompt in one
    batch, because spreading them over steps overfits). Prompts are packed into steps of at most
    ``batch_size`` records; a prompt with more records than that gets a step of its own.
``tokens``
    Steps by total tokens instead of by count: records are packed into steps of at most ``max_tokens``
    real tokens (every response of a record counted); a longer record gets a step of its own.

``grouped`` and ``tokens`` pack with *best-fit decreasing*: items sorted by size (largest first, equal
sizes in a seeded random order), each into the fullest step it still fits, and the steps are then put in
a seeded random order. Which items share a step changes every epoch, but the number of steps, and how
many records each has, depend only on the item sizes: every epoch has the same number of steps, so the
learning-rate schedule and ``--resume`` stay exact. With several processes, steps with fewer records
than processes are dropped (like ``random`` drops its last partial chunk).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from rewardlab.core.binpack import best_fit_decreasing

SAMPLERS = ("random", "grouped", "tokens")


def _generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 100003 + epoch)


def random_steps_per_epoch(n: int, batch_size: int, world: int) -> int:
    return max(1, n // batch_size) if world > 1 else math.ceil(n / batch_size)


def random_plan(n: int, batch_size: int, world: int, seed: int, epoch: int) -> list[list[int]]:
    """A seeded permutation of ``range(n)`` cut in ``batch_size`` chunks (partial last one dropped when world > 1)."""
    perm = torch.randperm(n, generator=_generator(seed, epoch)).tolist()
    return [
        perm[pos * batch_size : (pos + 1) * batch_size] for pos in range(random_steps_per_epoch(n, batch_size, world))
    ]


def pack(sizes: Sequence[int], capacity: int, seed: int, epoch: int) -> list[list[int]]:
    """Best-fit decreasing (:func:`rewardlab.core.binpack.best_fit_decreasing`): item indices per bin, each bin's total size ≤ ``capacity`` (a larger item alone).

    Items sorted by size, largest first, equal sizes in the seeded order of (seed, epoch); each goes into
    the bin with the least room that still fits it (the earliest such bin on a tie), else a new bin. The
    bins come back in a seeded random order. Sizes (3, 1, 2, 2) with capacity 4: 3 → bin A; 2 → bin B;
    2 → B (room 2, fits exactly); 1 → A. Two bins {3, 1} and {2, 2}, whatever the seed.
    """
    g = _generator(seed, epoch)
    tiebreak = torch.randperm(len(sizes), generator=g).tolist()
    bins = best_fit_decreasing(sizes, capacity, tiebreak)
    order = torch.randperm(len(bins), generator=g).tolist()
    return [bins[b] for b in order]


def prompt_groups(records: Sequence) -> list[list[int]]:
    """Record indices grouped by prompt, groups in order of first appearance, records in input order."""
    groups: dict[str, list[int]] = {}
    for i, record in enumerate(records):
        groups.setdefault(record.prompt_key(), []).append(i)
    return list(groups.values())


def grouped_plan(groups: list[list[int]], batch_size: int, world: int, seed: int, epoch: int) -> list[list[int]]:
    """Steps of whole prompt groups, at most ``batch_size`` records each (a bigger group alone)."""
    bins = pack([len(g) for g in groups], batch_size, seed, epoch)
    steps = [[i for b in bin_ for i in groups[b]] for bin_ in bins]
    return [s for s in steps if len(s) >= world]


def token_plan(lengths: Sequence[int], max_tokens: int, world: int, seed: int, epoch: int) -> list[list[int]]:
    """Steps of records whose token counts sum to at most ``max_tokens`` (a longer record alone)."""
    return [s for s in pack(list(lengths), max_tokens, seed, epoch) if len(s) >= world]


class StepSampler:
    """The plan of every epoch for one run; ``step(s)`` is the record indices of global step ``s``."""

    def __init__(
        self,
        records: Sequence,
        sampler: str = "random",
        batch_size: int = 16,
        world: int = 1,
        seed: int = 0,
        lengths: Sequence[int] | None = None,
        max_tokens: int | None = None,
    ):
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, not {sampler!r}")
        if sampler == "tokens" and (max_tokens is None or lengths is None):
            raise ValueError("the tokens sampler needs max_tokens and the token count of every record")
        self.n, self.sampler, self.batch_size, self.world, self.seed = len(records), sampler, batch_size, world, seed
        self.lengths, self.max_tokens = (list(lengths) if lengths is not None else None), max_tokens
        self.groups = prompt_groups(records) if sampler == "grouped" else None
        self._cache: tuple[int, list[list[int]]] | None = None
        if sampler == "random":
            self.steps_per_epoch = random_steps_per_epoch(self.n, batch_size, world)
        else:
            self.steps_per_epoch = len(self.plan(0))
            if self.steps_per_epoch == 0:
                raise ValueError(f"no step has at least {world} records (one per process)")

    def plan(self, epoch: int) -> list[list[int]]:
        """The steps of ``epoch`` (the last epoch asked for is cached)."""
        if self._cache is None or self._cache[0] != epoch:
            self._cache = (epoch, _PLANS[self.sampler](self, epoch))
        return self._cache[1]

    def step(self, step: int) -> list[int]:
        epoch, pos = divmod(step, self.steps_per_epoch)
        return self.plan(epoch)[pos]


_PLANS = {
    "random": lambda s, epoch: random_plan(s.n, s.batch_size, s.world, s.seed, epoch),
    "grouped": lambda s, epoch: grouped_plan(s.groups, s.batch_size, s.world, s.seed, epoch),
    "tokens": lambda s, epoch: token_plan(s.lengths, s.max_tokens, s.world, s.seed, epoch),
}
