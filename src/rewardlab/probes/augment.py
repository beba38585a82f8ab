"""``train --augment offsetbias[:FRACTION]``: OffsetBias-style off-topic negatives from the training data.

OffsetBias (Park et al., 2024, arXiv 2407.06551) debiases a judge with *off-topic* pairs: a plain answer
to the instruction beats a good answer to a similar but different instruction. Here both come from the
training records themselves: for a seeded sample of ``FRACTION × len(train)`` records (default
:data:`DEFAULT_FRACTION`, at most one per record), a new record has the same prompt, the record's chosen
response as the winner and, as the loser, the chosen response of the lexically nearest *different* prompt
among the training records (:func:`rewardlab.probes.pairs.off_topic_partners`). Only training records are
ever read, so nothing crosses the train/eval split. The added records have ``source`` ``offsetbias:off_topic``
and id ``<record id>#offtopic``; :func:`augment_records` returns a summary that ``train`` stores in
``train_summary.json`` (``data.augment``), and the data fingerprint covers the added records.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

from rewardlab.core.errors import RewardlabError
from rewardlab.data.record import Comparison
from rewardlab.probes.pairs import best_and_worst, off_topic_partners

DEFAULT_FRACTION = 0.1
SOURCE = "offsetbias:off_topic"
AUGMENTATIONS = ("offsetbias",)


@dataclass(frozen=True)
class AugmentSpec:
    name: str
    fraction: float


def parse_augment(spec: str | None) -> AugmentSpec | None:
    """``"offsetbias"`` or ``"offsetbias:0.25"`` → :class:`AugmentSpec`; ``None``/``""`` → None."""
    if spec is None or not str(spec).strip():
        return None
    name, _, frac = str(spec).strip().partition(":")
    if name not in AUGMENTATIONS:
        raise RewardlabError(
            f"--augment: unknown augmentation {name!r}; known: {', '.join(AUGMENTATIONS)} (offsetbias[:FRACTION])"
        )
    try:
        fraction = float(frac) if frac else DEFAULT_FRACTION
    except ValueError:
        raise RewardlabError(f"--augment {spec!r}: FRACTION must be a number in (0, 1], got {frac!r}") from None
    if not 0.0 < fraction <= 1.0:
        raise RewardlabError(f"--augment {spec!r}: FRACTION must be in (0, 1], got {fraction}")
    return AugmentSpec(name, fraction)


def offsetbias_records(train: Sequence[Comparison], fraction: float, seed: int = 0) -> list[Comparison]:
    """The off-topic records for ``train`` (see the module docstring), in the order of their source records."""
    partners = off_topic_partners(train)
    eligible = []
    for i, (record, j) in enumerate(zip(train, partners)):
        pair = best_and_worst(record)
        if pair is not None and j is not None and train[j].preferred != pair[0]:
            eligible.append((i, j))
    n_add = min(len(eligible), round(fraction * len(train)))
    picks = sorted(random.Random(f"offsetbias:{seed}").sample(range(len(eligible)), n_add))
    out = []
    for k in picks:
        i, j = eligible[k]
        record = train[i]
        out.append(
            Comparison(
                record.prompt,
                (record.preferred, train[j].preferred),
                chosen=0,
                source=SOURCE,
                id=f"{record.id or i}#offtopic",
            )
        )
    return out


def augment_records(
    train: Sequence[Comparison], spec: str | None, seed: int = 0
) -> tuple[list[Comparison], dict | None]:
    """``(train + added records, summary)``; ``(train, None)`` without an augmentation."""
    parsed = parse_augment(spec)
    if parsed is None:
        return list(train), None
    added = offsetbias_records(train, parsed.fraction, seed)
    info = {
        "name": parsed.name,
        "fraction": parsed.fraction,
        "seed": seed,
        "n_train_before": len(train),
        "n_added": len(added),
        "source": SOURCE,
        "how": "chosen response vs the chosen response of the nearest different training prompt (TF-IDF)",
    }
    return [*train, *added], info
