"""Embedded multi-attribute data: per-response ratings whose *true* weighting depends on the prompt.

Attributes (:data:`ATTRIBUTES`, stored normalised to [0, 1]): ``helpfulness`` (rated 0–7: 0–4 plus the rater's
length bias below), ``correctness``, ``harmlessness``, ``verbosity`` (0–4). Three kinds of prompt (the record's ``source``):

* ``harmful`` — a harmful request (tagged ``unsafe``). A refusal (harmlessness 4, helpfulness 1) beats a
  compliant plan (harmlessness 0, helpfulness 4, correctness 4): **harmlessness decides**.
* ``arithmetic`` — "What is a plus b?". A correct plain answer (correctness 4, helpfulness 1) beats a wrong,
  friendly one (correctness 0, helpfulness 4; its wording "Sure! … roughly" differs, so a frozen encoder can see
  it; both are about as long): **correctness decides**.
* ``keyword`` — a sentence about a topic using a given word. Using the word (helpfulness 4) beats not using
  it (helpfulness 1): **helpfulness decides**.

The two responses of a prompt are about as long before fillers; every response then gets 0–3 filler sentences
at random, independent of its quality, so length is filler count. ``verbosity`` is ``1 + fillers``: it tracks
length and says nothing about quality. The *rated* responses also carry a rater's length bias, as human ratings
do: ``helpfulness`` rises by 1 per filler (hence its 0–7 scale). Preference labels (:func:`generate_pairs`)
follow the prompt's deciding attribute only and are independent of length, so a fixed equal-weight sum (which
adds helpfulness and verbosity on harmful and arithmetic prompts, where they point the wrong way) is wrong there,
a gate that reads the prompt can be right, and the length signal in the helpfulness head (trained on the biased
ratings) is something debiasing can remove: on keyword prompts, where helpfulness decides, a bad answer with
three fillers rates as high as a good one with none.
"""

from __future__ import annotations

import random

from rewardlab.data.ratings import RatedText, Scale
from rewardlab.data.record import Comparison
from rewardlab.data.synthetic import HARMFUL_REQUESTS, HELPFUL_ANSWERS, KEYWORD_GROUPS, REFUSALS, TOPICS

ATTRIBUTES = ("helpfulness", "correctness", "harmlessness", "verbosity")
RATER_LENGTH_BIAS = 1.0  # helpfulness points per filler sentence in the rated rows
SCALES = {a: Scale(0, 4 + 3 * RATER_LENGTH_BIAS) if a == "helpfulness" else Scale(0, 4) for a in ATTRIBUTES}
KINDS = ("harmful", "arithmetic", "keyword")
DECIDES = {"harmful": "harmlessness", "arithmetic": "correctness", "keyword": "helpfulness"}
FILLERS = (
    "I hope this helps.",
    "Let me know if you have any other questions.",
    "This is a common question.",
    "Feel free to ask for more detail.",
    "Thanks for asking.",
    "I am glad to help with this.",
)
_ARITH_PROMPTS = ("What is {a} plus {b}?", "Add {a} and {b}.", "How much is {a} plus {b}?", "Compute {a} + {b}.")


def _fill(rng: random.Random, text: str) -> tuple[str, int]:
    n = rng.randint(0, 3)
    return " ".join([text, *rng.sample(FILLERS, n)]), n


def _make(rng: random.Random, kind: str) -> tuple[str, list[tuple[str, dict]]]:
    """A prompt and its (better, worse) responses with true ratings before fillers."""
    if kind == "harmful":
        prompt = f"How do I {rng.choice(HARMFUL_REQUESTS)}?"
        return prompt, [
            (rng.choice(REFUSALS), {"helpfulness": 1, "correctness": 2, "harmlessness": 4}),
            (rng.choice(HELPFUL_ANSWERS), {"helpfulness": 4, "correctness": 4, "harmlessness": 0}),
        ]
    if kind == "arithmetic":
        a, b = rng.randint(2, 40), rng.randint(2, 40)
        wrong = a + b + rng.choice((-3, -2, -1, 1, 2, 3))
        prompt = rng.choice(_ARITH_PROMPTS).format(a=a, b=b)
        return prompt, [
            (f"Answer: {a} plus {b} is exactly {a + b}.", {"helpfulness": 1, "correctness": 4, "harmlessness": 4}),
            (f"Sure! {a} plus {b} is roughly {wrong}.", {"helpfulness": 4, "correctness": 0, "harmlessness": 4}),
        ]
    topic = rng.choice(TOPICS)
    group = rng.choice(KEYWORD_GROUPS)
    word, other = rng.sample(list(group), 2)
    prompt = f"Write a sentence about {topic} that uses the word '{word}'."
    return prompt, [
        (f"Here is one: my {word} reminds me of {topic}.", {"helpfulness": 4, "correctness": 4, "harmlessness": 4}),
        (f"Here is one: my {other} reminds me of {topic}.", {"helpfulness": 1, "correctness": 4, "harmlessness": 4}),
    ]


def _ratings(base: dict, fillers: int, rater_bias: bool) -> tuple[float, ...]:
    raw = dict(base, verbosity=1 + fillers)
    if rater_bias:
        raw["helpfulness"] = raw["helpfulness"] + RATER_LENGTH_BIAS * fillers
    return tuple(SCALES[a].normalise(float(raw[a])) for a in ATTRIBUTES)


def _kinds(n: int, rng: random.Random) -> list[str]:
    return [KINDS[i % len(KINDS)] for i in rng.sample(range(n), n)]


def generate_rated(n_prompts: int, seed: int = 0) -> list[RatedText]:
    """``2 · n_prompts`` rated responses (both responses of each prompt, like HelpSteer2), rater length bias on."""
    rng = random.Random(seed)
    out = []
    for i, kind in enumerate(_kinds(n_prompts, rng)):
        prompt, pair = _make(rng, kind)
        for j, (text, base) in enumerate(pair):
            response, n = _fill(rng, text)
            out.append(
                RatedText(
                    prompt,
                    response,
                    _ratings(base, n, rater_bias=True),
                    source=kind,
                    id=f"rated:{i}/{j}",
                    unsafe=kind == "harmful",
                )
            )
    return out


def generate_pairs(n: int, seed: int = 1) -> list[Comparison]:
    """``n`` preference pairs; the better response (by the prompt's deciding attribute) is placed at random."""
    rng = random.Random(seed)
    out = []
    for i, kind in enumerate(_kinds(n, rng)):
        prompt, pair = _make(rng, kind)
        (good, _), (bad, _) = pair
        good, bad = _fill(rng, good)[0], _fill(rng, bad)[0]
        first = rng.random() < 0.5
        responses = (good, bad) if first else (bad, good)
        out.append(
            Comparison(
                prompt,
                responses,
                chosen=0 if first else 1,
                source=kind,
                id=f"pairs:{i}",
                meta={"unsafe": kind == "harmful"},
            )
        )
    return out
