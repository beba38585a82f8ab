"""The one small interface every judge backend implements (built by name: :func:`rewardlab.judges.factory.make_backend`).

A backend turns chat messages into text, and can say how likely each of a few candidate tokens is as the
first token of its reply:

* ``generate(prompts, sampling, n=1)`` → for each prompt, ``n`` replies (``str``; ``None`` for a request that
  failed when the backend was asked to record failures rather than raise). Greedy when
  ``sampling.temperature == 0``; otherwise sampled with the seed ``sampling.seed`` (+ sample index).
* ``next_token_logprobs(prompts, candidates, assistant_prefix="")`` → for each prompt a dict
  ``{candidate: log p}`` for the first token of the reply (after ``assistant_prefix``, where a backend supports
  prefilling). A candidate matches a token whose text, stripped of whitespace, equals it (``"A"`` and ``" A"``
  are both A; their probabilities add). A candidate absent from the backend's answer gets ``-inf``.
* ``truncate(text, max_tokens, side)`` — cut a text to about ``max_tokens`` tokens (the backend's own tokenizer
  when it has one, else ~4 characters a token), keeping the ``"right"`` or ``"left"`` end.

Implementations: :class:`~rewardlab.judges.hf.HFBackend` (local transformers causal LM; the embedded
SmolLM2-135M-Instruct by default), :class:`~rewardlab.judges.openai_compat.OpenAIBackend` (any
OpenAI-compatible ``/v1/chat/completions`` endpoint) and :class:`~rewardlab.judges.llamacpp.LlamaCppBackend`
(optional ``llama-cpp-python``).
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from typing import Sequence

from rewardlab.core.errors import RewardlabError

Messages = list  # list[{"role": str, "content": str}]
NEG_INF = float("-inf")
TRUNCATION_MARK = " [...] "


class BackendError(RewardlabError):
    """A backend request failed (after retries)."""


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    max_new_tokens: int = 256
    seed: int = 0

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0

    def to_json(self) -> dict:
        return asdict(self)


class Backend:
    """Base class; see the module doc for the contract."""

    name = "backend"
    model_id = ""
    batch_size: int | None = None  # prompts per forward where the backend batches them (hf); None: it does not

    def with_batch_size(self, batch_size: int | None) -> "Backend":
        """This backend running ``batch_size`` prompts per forward: a shallow copy sharing the model, tokenizer and
        caches (counters such as a trunk cache's hits are then the copy's). Itself when ``batch_size`` is None or
        already its own, or when the backend does not batch."""
        if not batch_size or self.batch_size is None or batch_size == self.batch_size:
            return self
        other = copy.copy(self)
        other.batch_size = batch_size
        return other

    def generate(self, prompts: Sequence[Messages], sampling: Sampling, n: int = 1) -> list[list[str | None]]:
        raise NotImplementedError

    def next_token_logprobs(
        self, prompts: Sequence[Messages], candidates: Sequence[str], assistant_prefix: str = ""
    ) -> list[dict[str, float] | None]:
        raise NotImplementedError

    def truncate(self, text: str, max_tokens: int | None, side: str = "right") -> str:
        """Character-based default: about 4 characters a token."""
        if max_tokens is None or len(text) <= 4 * max_tokens:
            return text
        n = 4 * max_tokens
        return (text[:n] + TRUNCATION_MARK.rstrip()) if side == "right" else (TRUNCATION_MARK.lstrip() + text[-n:])

    def describe(self) -> dict:
        return {"backend": self.name, "model": self.model_id}

    def stats(self) -> dict:
        return {}

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def logsumexp(values: Sequence[float]) -> float:
    values = [v for v in values if v != NEG_INF]
    if not values:
        return NEG_INF
    m = max(values)
    return m + math.log(sum(math.exp(v - m) for v in values))


def candidate_logprobs(top: Sequence[tuple[str, float]], candidates: Sequence[str]) -> dict[str, float]:
    """``{candidate: log p}`` from a top-k list of ``(token text, logprob)``; whitespace-stripped match, summed."""
    out = {}
    for c in candidates:
        out[c] = logsumexp([lp for tok, lp in top if tok.strip() == c])
    return out


def two_way(logprobs: dict[str, float] | None, first: str, second: str) -> float | None:
    """``softmax([lp_first, lp_second])[0]``: P(first) among the two candidates; ``None`` when neither was seen."""
    if not logprobs:
        return None
    a, b = logprobs.get(first, NEG_INF), logprobs.get(second, NEG_INF)
    if a == NEG_INF and b == NEG_INF:
        return None
    if b == NEG_INF:
        return 1.0
    if a == NEG_INF:
        return 0.0
    return 1.0 / (1.0 + math.exp(b - a))
