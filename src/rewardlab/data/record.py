"""The one record type every reader produces and every loss, collator and metric consumes.

A ``Comparison`` is a prompt (plain text, or a chat conversation as a tuple of ``{"role", "content"}``
messages) plus two or more candidate responses and what a judge said about them.

* ``chosen`` is the index of the preferred response (for K = 2: 0 or 1).
* ``ranking`` (optional) lists response indices from best to worst; ties may be expressed later by the
  rankings issue. When absent, the ranking is "``chosen`` beats every other response".
* ``margin`` (optional) is a non-negative strength of preference (e.g. Llama 2 rating gap).
* ``scores`` (optional) are per-response scalar ratings aligned with ``responses``.
* ``source`` names where the record came from (file or subset), used for per-source accuracy.
* ``id`` is stable across runs; readers derive it from the file and line when the data has none.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Union

Message = dict  # {"role": str, "content": str}
Prompt = Union[str, tuple]  # str or tuple[Message, ...]


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

    def __post_init__(self):
        if len(self.responses) < 2:
            raise ValueError("a Comparison needs at least two responses")
        if not 0 <= self.chosen < len(self.responses):
            raise ValueError(f"chosen={self.chosen} is not a response index")

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
        """Response indices best to worst (``ranking`` if given, else chosen first)."""
        if self.ranking is not None:
            return self.ranking
        return (self.chosen, *self.rejected_indices)

    def prompt_key(self) -> str:
        """A canonical string for the prompt, used for hashing (split, dedup, fingerprint)."""
        if isinstance(self.prompt, str):
            return self.prompt
        return json.dumps([[m["role"], m["content"]] for m in self.prompt], ensure_ascii=False)

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
        return d


def prompt_as_messages(prompt: Prompt) -> list[Message]:
    """A text prompt becomes one user message; a conversation is returned as a list of dicts."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [dict(m) for m in prompt]
