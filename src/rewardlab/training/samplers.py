"""Which items make up each optimizer step: :class:`StepPlan`, the one step plan every trainer's loop reads, and
the samplers that make the scalar trainer's. Every plan is a pure function of (seed, epoch).

An epoch's *plan* is a list of steps, each a list of record indices (the global batch of that step, before
it is split over processes and micro-batches). A :class:`StepPlan` is either fixed orders cut into batches (the
judge and verifier trainers, the gate) or one of three samplers (``--sampler``):

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


class StepPlan:
    """Which items every optimizer step of a run takes: the one plan every trainer's loop reads
    (:func:`rewardlab.training.recipe.run_steps`, the scalar trainer).

    An epoch is a list of steps (item-index lists, the global batch before it is split over processes and
    micro-batches); step ``s`` (0-based) is position ``s mod steps_per_epoch`` of epoch ``s // steps_per_epoch``.
    :meth:`step` is a pure function of ``s`` (each epoch's steps are a pure function of the epoch), so a resumed
    run takes the same items as an uninterrupted one. Made two ways:

    * ``StepPlan(orders, batch_size)`` — an order of item indices per epoch, cut into ``batch_size`` slices (an
      epoch's last slice may be shorter); ``total`` covers every epoch (the judge and verifier trainers, the gate);
    * :meth:`sampled` — a sampler of this module (``random``, ``grouped``, ``tokens``) over records, run for
      ``total`` steps (the scalar and regression trainers).
    """

    def __init__(self, orders: Sequence[Sequence[int]], batch_size: int):
        fixed = [list(o) for o in orders]
        per_epoch = math.ceil(len(fixed[0]) / batch_size)
        self._start(lambda epoch: _slices(fixed[epoch], batch_size), per_epoch, per_epoch * len(fixed), batch_size)

    def _start(self, epoch_steps, steps_per_epoch: int, total: int, batch_size: int) -> None:
        self._epoch_steps, self.steps_per_epoch, self.total, self.batch_size = (
            epoch_steps,
            steps_per_epoch,
            total,
            batch_size,
        )
        self._cache: tuple[int, list[list[int]]] | None = None

    @classmethod
    def sampled(
        cls,
        records: Sequence,
        sampler: str = "random",
        batch_size: int = 16,
        world: int = 1,
        seed: int = 0,
        lengths: Sequence[int] | None = None,
        max_tokens: int | None = None,
        total: int | None = None,
    ) -> "StepPlan":
        """The plan of sampler ``sampler`` over ``records`` (seeded by ``seed``; with ``world`` processes, steps
        with fewer records than processes are dropped), ``total`` steps (None: one epoch). ``lengths``: the real
        tokens of every record, for ``tokens`` (with ``max_tokens``)."""
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, not {sampler!r}")
        if sampler == "tokens" and (max_tokens is None or lengths is None):
            raise ValueError("the tokens sampler needs max_tokens and the token count of every record")
        n, sizes = len(records), (list(lengths) if lengths is not None else None)
        groups = prompt_groups(records) if sampler == "grouped" else None
        epoch_steps = {
            "random": lambda epoch: random_plan(n, batch_size, world, seed, epoch),
            "grouped": lambda epoch: grouped_plan(groups, batch_size, world, seed, epoch),
            "tokens": lambda epoch: token_plan(sizes, max_tokens, world, seed, epoch),
        }[sampler]
        if sampler == "random":
            per_epoch = random_steps_per_epoch(n, batch_size, world)
        else:
            per_epoch = len(epoch_steps(0))
            if per_epoch == 0:
                raise ValueError(f"no step has at least {world} records (one per process)")
        plan = cls.__new__(cls)
        plan._start(epoch_steps, per_epoch, per_epoch if total is None else total, batch_size)
        return plan

    def plan(self, epoch: int) -> list[list[int]]:
        """The steps of ``epoch`` (the last epoch asked for is cached)."""
        if self._cache is None or self._cache[0] != epoch:
            self._cache = (epoch, self._epoch_steps(epoch))
        return self._cache[1]

    def step(self, s: int) -> tuple[int, list[int]]:
        """``(epoch, item indices)`` of step ``s``."""
        epoch, pos = divmod(s, self.steps_per_epoch)
        return epoch, list(self.plan(epoch)[pos])


def _slices(order: list[int], batch_size: int) -> list[list[int]]:
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
