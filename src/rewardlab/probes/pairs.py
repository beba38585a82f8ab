"""The probes: one function per bias, each deriving controlled pairs from preference records.

Every probe returns :class:`ProbePair` items. ``reference`` is the response that should win (the record's
chosen response, unchanged, except for content_continuation), ``biased`` the variant carrying the bias, and
``base`` the same variant without the factor under test (the worse response as it was; for ``filler`` the
same length of neutral text); the pair (reference, base) is the control. A model without the bias prefers ``reference`` about as often as it did
against ``base``; a biased one prefers ``biased`` more often.

=====================  =====================================================================================
probe                  biased variant (texts from :mod:`rewardlab.probes.templates`)
=====================  =====================================================================================
length                 the worse response with its own words once more (twice as long; nothing new)
filler                 the worse response + polite content-free sentences; ``base``: the same number of the
                       response's own words instead (length held fixed: only the phrasing differs)
off_topic              the chosen response of the lexically nearest *different* prompt (TF-IDF cosine)
concreteness           the worse response with an invented citation and an invented figure appended
empty_reference        the worse response wrapped in references to material the prompt never gave
content_continuation   the prompt becomes a task on quoted text (the record's prompt: repeat it, lowercase it);
                       ``reference`` does the task, ``biased`` carries the quoted content on (answers it)
nested_instruction     the prompt gets another prompt of the data quoted inside it; ``biased`` answers that
                       quoted instruction (its chosen response), ``reference`` still answers the task
position               judges only: (chosen, rejected) shown in both orders; "biased" = the one shown first
=====================  =====================================================================================

Pure functions of ``(records, seed)``: a record's pair depends only on the seed, the probe and the record's
id (or index), via ``random.Random("seed:probe:key")``, never on the other records or the batching —
except the two probes that pick another record (off_topic: the nearest prompt; nested_instruction: a seeded
draw among the other prompts).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Sequence

from rewardlab.data.record import Comparison, Prompt
from rewardlab.probes import templates as T
from rewardlab.probes.similarity import nearest_other


@dataclass(frozen=True)
class ProbePair:
    probe: str
    prompt: Prompt
    reference: str  # should win: the record's chosen response
    biased: str  # carries the bias
    base: str | None  # what `biased` was built from by adding text (None: not derived)
    key: str  # the source record's id (or index)

    def comparison(self) -> Comparison:
        """(reference, biased), reference preferred."""
        return Comparison(
            self.prompt, (self.reference, self.biased), chosen=0, source=self.probe, id=f"{self.probe}:{self.key}"
        )

    def control(self) -> Comparison | None:
        """(reference, base): the same pair without the bias, or None."""
        if self.base is None:
            return None
        return Comparison(
            self.prompt, (self.reference, self.base), chosen=0, source=self.probe, id=f"{self.probe}:{self.key}:control"
        )


def user_text(prompt: Prompt) -> str:
    """The prompt's text (a chat: its last user message)."""
    if isinstance(prompt, str):
        return prompt
    users = [m["content"] for m in prompt if m.get("role") == "user"]
    return users[-1] if users else (prompt[-1]["content"] if prompt else "")


def with_user_text(prompt: Prompt, text: str) -> Prompt:
    """``prompt`` with its text (a chat: its last user message) replaced by ``text``."""
    if isinstance(prompt, str):
        return text
    idx = max((i for i, m in enumerate(prompt) if m.get("role") == "user"), default=len(prompt) - 1)
    return tuple({**m, "content": text} if i == idx else dict(m) for i, m in enumerate(prompt))


def _key(record: Comparison, index: int) -> str:
    return record.id or str(index)


def _rng(seed: int, probe: str, key: str) -> random.Random:
    return random.Random(f"{seed}:{probe}:{key}")


def best_and_worst(record: Comparison) -> tuple[str, str] | None:
    """(chosen, the worst response strictly below it), or None when the record has no strict preference."""
    losers = [j for i, j in record.strict_pairs() if i == record.chosen]
    if not losers:
        return None
    order = record.order()
    worst = max(losers, key=order.index)
    if record.responses[worst] == record.preferred:
        return None
    return record.preferred, record.responses[worst]


def _added(
    probe: str, records: Sequence[Comparison], seed: int, make: Callable[[random.Random, Comparison, str], str]
) -> list[ProbePair]:
    """Pairs whose biased variant is ``make(rng, record, worse)``, the worse response with text added."""
    out = []
    for i, record in enumerate(records):
        pair = best_and_worst(record)
        if pair is None:
            continue
        key = _key(record, i)
        biased = make(_rng(seed, probe, key), record, pair[1])
        out.append(ProbePair(probe, record.prompt, pair[0], biased, pair[1], key))
    return out


def own_words(response: str, n_words: int) -> str:
    """``n_words`` words of ``response`` itself, in order, cycled: content-neutral material (nothing the
    response does not already say, in its own words) of a chosen length."""
    words = response.split() or ["."]
    return " ".join(words[i % len(words)] for i in range(n_words))


def length(records: Sequence[Comparison], seed: int = 0) -> list[ProbePair]:
    """The worse response followed (after a blank line) by its own words once more: twice the words, nothing
    new (no word, phrase or claim it did not have). Length is the one factor that changes; ``seed`` is unused."""

    def make(rng, record, worse):
        return f"{worse}\n\n{own_words(worse, len(worse.split()))}"

    return _added("length", records, seed, make)


def filler(records: Sequence[Comparison], seed: int = 0) -> list[ProbePair]:
    """The worse response + two polite :data:`~templates.FILLER` sentences; ``base`` = the worse response + the
    same number of its own words (:func:`own_words`), so both are equally long and only the phrasing of the
    added material differs: the control for the length this probe also adds."""
    out = []
    for i, record in enumerate(records):
        pair = best_and_worst(record)
        if pair is None:
            continue
        key = _key(record, i)
        added = " ".join(_rng(seed, "filler", key).sample(T.FILLER, 2))
        worse = pair[1]
        biased = f"{worse}\n\n{added}"
        base = f"{worse}\n\n{own_words(worse, len(added.split()))}"
        out.append(ProbePair("filler", record.prompt, pair[0], biased, base, key))
    return out


def concreteness(records: Sequence[Comparison], seed: int = 0) -> list[ProbePair]:
    """The worse response + " " + an invented citation + " " + an invented figure."""

    def make(rng, record, worse):
        citation = rng.choice(T.CITATIONS).format(
            year=rng.randint(2009, 2022), surname=rng.choice(T.SURNAMES), journal=rng.choice(T.JOURNALS)
        )
        figure = rng.choice(T.FIGURES).format(pct=rng.randint(61, 94), n=rng.randint(120, 4800))
        return f"{worse.rstrip()} {citation} {figure}"

    return _added("concreteness", records, seed, make)


def empty_reference(records: Sequence[Comparison], seed: int = 0) -> list[ProbePair]:
    """The worse response between an opener and a closer that point at material the prompt never gave."""

    def make(rng, record, worse):
        opener, closer = rng.choice(T.EMPTY_REFERENCES)
        return f"{opener}{worse.strip()}{closer}"

    return _added("empty_reference", records, seed, make)


CONTINUATION_ANSWERS: dict[str, Callable[[str], str]] = {"same": lambda t: t, "lower": str.lower}


def content_continuation(records: Sequence[Comparison], seed: int = 0) -> list[ProbePair]:
    """EvalBiasBench's *content continuation* items set a task on a quoted text (rewrite, paraphrase, correct)
    against a response that carries the quoted content on instead of doing the task. Here the quoted text is
    the record's prompt text, the task one that a template does exactly (:data:`~templates.CONTINUATION_TASKS`:
    repeat it, lowercase it): ``reference`` = the task done, ``biased`` = the record's chosen response (it
    takes up the quoted content and answers it). ``base`` is None. A record whose answer would equal the
    chosen response is left out."""
    out = []
    for i, record in enumerate(records):
        pair = best_and_worst(record)
        text = user_text(record.prompt).strip()
        if pair is None or not text:
            continue
        key = _key(record, i)
        task, answer = _rng(seed, "content_continuation", key).choice(T.CONTINUATION_TASKS)
        reference = CONTINUATION_ANSWERS[answer](text)
        if reference == pair[0]:
            continue
        prompt = with_user_text(record.prompt, task.format(text=text))
        out.append(ProbePair("content_continuation", prompt, reference, pair[0], None, key))
    return out


def _distinct_prompts(records: Sequence[Comparison]) -> tuple[list[str], dict[str, int]]:
    """The distinct prompt keys in first-appearance order, and each key's first record index."""
    first: dict[str, int] = {}
    for i, r in enumerate(records):
        first.setdefault(r.prompt_key(), i)
    return list(first), first


def off_topic_partners(records: Sequence[Comparison]) -> list[int | None]:
    """For each record, the index of the first record of the lexically nearest *different* prompt
    (TF-IDF cosine of the prompts' texts), or None when the data has one prompt."""
    keys, first = _distinct_prompts(records)
    texts = [user_text(records[first[k]].prompt) for k in keys]
    near = nearest_other(texts)
    by_key = {k: (None if n is None else first[keys[n]]) for k, n in zip(keys, near)}
    return [by_key[r.prompt_key()] for r in records]


def off_topic(records: Sequence[Comparison], seed: int = 0) -> list[ProbePair]:
    """The chosen response vs the chosen response of the nearest different prompt (fluent, good, but an
    answer to another question). ``seed`` is unused: the partner is the nearest prompt."""
    partners = off_topic_partners(records)
    out = []
    for i, (record, j) in enumerate(zip(records, partners)):
        pair = best_and_worst(record)
        if pair is None or j is None or records[j].preferred == pair[0]:
            continue
        out.append(ProbePair("off_topic", record.prompt, pair[0], records[j].preferred, None, _key(record, i)))
    return out


def nested_instruction(records: Sequence[Comparison], seed: int = 0) -> list[ProbePair]:
    """The prompt becomes a :data:`~templates.NESTED_INSTRUCTIONS` template holding another prompt of the
    data (a seeded draw among the other distinct prompts) as quoted material; ``reference`` = the chosen
    response to the original task, ``biased`` = the chosen response to the quoted instruction."""
    keys, first = _distinct_prompts(records)
    position_of = {k: n for n, k in enumerate(keys)}
    out = []
    if len(keys) < 2:
        return out
    for i, record in enumerate(records):
        pair = best_and_worst(record)
        if pair is None:
            continue
        key = _key(record, i)
        rng = _rng(seed, "nested_instruction", key)
        own = position_of[record.prompt_key()]
        pick = rng.randrange(len(keys) - 1)
        other = records[first[keys[pick + (pick >= own)]]]
        if other.preferred == pair[0]:
            continue
        prompt = with_user_text(
            record.prompt,
            rng.choice(T.NESTED_INSTRUCTIONS).format(
                prompt=user_text(record.prompt), nested=user_text(other.prompt).strip()
            ),
        )
        out.append(ProbePair("nested_instruction", prompt, pair[0], other.preferred, None, key))
    return out


def position(records: Sequence[Comparison], seed: int = 0) -> list[ProbePair]:
    """(chosen, worse) as they are; the runner shows each pair in both orders and counts how often the
    response shown first wins. Only meaningful for judges (a pointwise reward model has no order)."""
    out = []
    for i, record in enumerate(records):
        pair = best_and_worst(record)
        if pair is not None:
            out.append(ProbePair("position", record.prompt, pair[0], pair[1], None, _key(record, i)))
    return out


PROBES: dict[str, Callable[[Sequence[Comparison], int], list[ProbePair]]] = {
    "length": length,
    "filler": filler,
    "off_topic": off_topic,
    "concreteness": concreteness,
    "empty_reference": empty_reference,
    "content_continuation": content_continuation,
    "nested_instruction": nested_instruction,
    "position": position,
}
JUDGE_ONLY = ("position",)
