"""The one record type every reader produces and every loss, collator and metric consumes.

A ``Comparison`` is a prompt (plain text, or a chat conversation as a tuple of ``{"role", "content"}``
messages) plus two or more candidate responses and what a judge said about them.

* ``chosen`` is the index of the preferred response (for K = 2: 0 or 1).
* ``ranking`` (optional) is a full, strict ranking: every response index once, best first, ``chosen`` first.
* ``tiers`` (optional) is the general form: a partial ranking with ties, as tiers best first
  (``((2,), (0, 3), (1,))``: 2 beats 0 and 3, which are tied, and both beat 1). Responses in no tier are
  ranked below every tier and are unordered among themselves (a top-k ranking). ``chosen`` is in the first
  tier. Give ``ranking`` or ``tiers``, not both. When neither is given, ``chosen`` beats every other
  response and the others are unordered (:meth:`Comparison.preference_tiers` returns ``((chosen,),)``).
* ``margin`` (optional) is a non-negative strength of preference for K = 2 (e.g. a Llama 2 rating level or
  the absolute HelpSteer2-Preference strength).
* ``scores`` (optional) are per-response scalar ratings aligned with ``responses``; with K > 2 the margin of
  a pair is the score difference. :meth:`Comparison.from_scores` turns ratings into a ranking: a higher
  score ranks higher, equal scores are tied.
* ``source`` names where the record came from (file or subset), used for per-source accuracy.
* ``id`` is stable across runs; readers derive it from the file and line when the data has none.
* ``weight`` (default 1) multiplies every loss unit of the record (per-example weights).

Preferences the losses read (:meth:`strict_pairs`, :meth:`tied_pairs`): ``i`` beats ``j`` when ``i``'s
tier comes before ``j``'s, or ``i`` is in a tier and ``j`` in none; ``i`` and ``j`` are tied when they share
a tier. Two responses that are both in no tier give no preference.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Union

Message = dict  # {"role": str, "content": str}
Prompt = Union[str, tuple]  # str or tuple[Message, ...]


def prompt_key(prompt: Prompt) -> str:
    """A canonical string for a prompt (a string, or messages by role and content): equal prompts, equal keys."""
    if isinstance(prompt, str):
        return prompt
    return json.dumps([[m["role"], m["content"]] for m in prompt], ensure_ascii=False)


@dataclass(frozen=True)
class Comparison:
    prompt: Prompt
    responses: tuple[str, ...]
    chosen: int = 0
    ranking: tuple[int, ...] | None = None
    margin: float | None = None
    scores: tuple[float, ...] | None = None
    source: str = ""
    id: str = ""
    meta: dict = field(default_factory=dict, compare=False, hash=False)
    tiers: tuple[tuple[int, ...], ...] | None = None
    weight: float = 1.0

    def __post_init__(self):
        if len(self.responses) < 2:
            raise ValueError("a Comparison needs at least two responses")
        if not 0 <= self.chosen < len(self.responses):
            raise ValueError(f"chosen={self.chosen} is not a response index")
        if self.tiers is not None:
            if self.ranking is not None:
                raise ValueError("give ranking (full, strict) or tiers (partial, with ties), not both")
            check_tiers(self.tiers, self.k)
            if self.chosen not in self.tiers[0]:
                raise ValueError(f"chosen={self.chosen} is not in the first tier {self.tiers[0]}")
        if not (isinstance(self.weight, (int, float)) and math.isfinite(self.weight) and self.weight >= 0):
            raise ValueError(f"weight must be a finite number >= 0, got {self.weight!r}")

    @classmethod
    def from_scores(
        cls, prompt: Prompt, responses: tuple[str, ...], scores: tuple[float, ...], **kwargs
    ) -> "Comparison":
        """Ratings become a ranking: higher score ranks higher, equal scores (to 1e-9) are tied.

        A strict order of all responses is stored as ``ranking``, one with ties as ``tiers``; ``chosen``
        is the first (lowest-index) response of the best tier. ``scores`` are kept, so a pair's margin is
        its score difference. Example: scores (3, 5, 3) → tiers ((1,), (0, 2)), chosen 1.
        """
        if len(scores) != len(responses):
            raise ValueError(f"{len(scores)} scores for {len(responses)} responses")
        tiers = tiers_from_scores(scores)
        strict = all(len(t) == 1 for t in tiers)
        return cls(
            prompt=prompt,
            responses=tuple(responses),
            chosen=tiers[0][0],
            ranking=tuple(t[0] for t in tiers) if strict else None,
            tiers=None if strict else tiers,
            scores=tuple(float(s) for s in scores),
            **kwargs,
        )

    @property
    def k(self) -> int:
        return len(self.responses)

    @property
    def preferred(self) -> str:
        return self.responses[self.chosen]

    @property
    def rejected_indices(self) -> tuple[int, ...]:
        return tuple(i for i in range(self.k) if i != self.chosen)

    def order(self) -> tuple[int, ...]:
        """Response indices best to worst (``ranking``; or the tiers flattened, then the unranked; else chosen first)."""
        if self.ranking is not None:
            return self.ranking
        if self.tiers is not None:
            listed = [i for t in self.tiers for i in t]
            return (*listed, *(i for i in range(self.k) if i not in listed))
        return (self.chosen, *self.rejected_indices)

    def preference_tiers(self) -> tuple[tuple[int, ...], ...]:
        """The partial ranking as tiers, best first: ``tiers``, or ``ranking`` as one-response tiers, or ``((chosen,),)``."""
        if self.tiers is not None:
            return self.tiers
        if self.ranking is not None:
            return tuple((i,) for i in self.ranking)
        return ((self.chosen,),)

    def unranked(self) -> tuple[int, ...]:
        """Responses in no tier: below every tier, unordered among themselves."""
        listed = {i for t in self.preference_tiers() for i in t}
        return tuple(i for i in range(self.k) if i not in listed)

    def strict_pairs(self) -> list[tuple[int, int]]:
        """Every ``(winner, loser)`` pair the partial ranking implies, winners' tiers in order.

        Tiers ((2,), (0, 3), (1,)) give (2,0) (2,3) (2,1) (0,1) (3,1): C(4,2) = 6 pairs minus the tie (0,3).
        Without ranking or tiers: (chosen, j) for every other j, as before rankings existed.
        """
        tiers = self.preference_tiers()
        below = [*tiers[1:], self.unranked()]
        out = []
        for t, tier in enumerate(tiers):
            losers = [j for later in below[t:] for j in later]
            out.extend((i, j) for i in tier for j in losers)
        return out

    def tied_pairs(self) -> list[tuple[int, int]]:
        """Every ``(i, j)``, ``i < j``, in the same tier (the judge said they are equally good)."""
        return [
            (a, b)
            for tier in self.preference_tiers()
            for n, a in enumerate(sorted(tier))
            for b in sorted(tier)[n + 1 :]
        ]

    def prompt_key(self) -> str:
        """A canonical string for the prompt, used for hashing (split, dedup, fingerprint): :func:`prompt_key`."""
        return prompt_key(self.prompt)

    def prompt_hash(self) -> str:
        return hashlib.sha256(self.prompt_key().encode("utf-8")).hexdigest()

    def to_json(self) -> dict:
        d = {
            "id": self.id,
            "source": self.source,
            "prompt": self.prompt if isinstance(self.prompt, str) else [dict(m) for m in self.prompt],
            "responses": list(self.responses),
            "chosen": self.chosen,
        }
        if self.ranking is not None:
            d["ranking"] = list(self.ranking)
        if self.margin is not None:
            d["margin"] = self.margin
        if self.scores is not None:
            d["scores"] = list(self.scores)
        if self.tiers is not None:
            d["tiers"] = [list(t) for t in self.tiers]
        if self.weight != 1.0:
            d["weight"] = self.weight
        if "unsafe" in self.meta:  # the Llama 2 rule's unsafe-prompt tag (read back by the formats' readers)
            d["unsafe"] = bool(self.meta["unsafe"])
        return d


def per_record(records, flat) -> list[list]:
    """One value per response, the records' responses in order, → one list per record:
    ``[flat[0:k_0], flat[k_0:k_0 + k_1], …]``."""
    out, i = [], 0
    for c in records:
        out.append(list(flat[i : i + c.k]))
        i += c.k
    return out


def check_tiers(tiers, k: int) -> None:
    """``ValueError`` unless ``tiers`` is a non-empty sequence of non-empty, disjoint tuples of indices 0..k-1."""
    if not tiers:
        raise ValueError("tiers must hold at least one tier")
    seen: set[int] = set()
    for tier in tiers:
        if not isinstance(tier, tuple) or not tier:
            raise ValueError(f"every tier must be a non-empty tuple of response indices, got {tier!r}")
        for i in tier:
            if not (isinstance(i, int) and not isinstance(i, bool)) or not 0 <= i < k:
                raise ValueError(f"tier {tier} holds {i!r}, not a response index 0..{k - 1}")
            if i in seen:
                raise ValueError(f"response {i} is in more than one tier")
            seen.add(i)


def tiers_from_scores(scores, tol: float = 1e-9) -> tuple[tuple[int, ...], ...]:
    """Indices grouped by equal score (within ``tol``), best tier first; each tier in index order.

    (3, 5, 3) → ((1,), (0, 2)); (1, 2, 3) → ((2,), (1,), (0,)).
    """
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    tiers: list[list[int]] = []
    for i in order:
        if tiers and abs(scores[tiers[-1][0]] - scores[i]) <= tol:
            tiers[-1].append(i)
        else:
            tiers.append([i])
    return tuple(tuple(sorted(t)) for t in tiers)


def prompt_as_messages(prompt: Prompt) -> list[Message]:
    """A text prompt becomes one user message; a conversation is returned as a list of dicts."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [dict(m) for m in prompt]
