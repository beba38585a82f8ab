"""How many evaluated texts a model saw cut short: counted per subset, reported, warned about.

A text longer than the scorer's ``max_length`` is truncated before it is scored (``ScoringSpec.truncation`` says
which end goes), so its reward is a reward for part of it. :func:`truncation_counts` counts, for a scorer whose
text side is a :class:`~rewardlab.models.reward_model.TextEncoder` (rewardlab, foreign and DPO-implicit models), the texts
(one per response of each record) whose untruncated token count exceeds ``max_length``, overall and per subset
(the record's source). :func:`truncation_warnings` names each subset where more than :data:`WARN_RATE` of the
texts were cut. ``rewardlab eval`` stores the counts as ``results.<model>.truncation`` in ``report.json``, puts
the warnings in the report's notes and on stderr, and the terminal summary prints one line per model.
"""

from __future__ import annotations

from typing import Any, Sequence

WARN_RATE = 0.05  # warn when more than this share of a subset's texts is cut to max_length


def truncation_counts(scorer: Any, records: Sequence) -> dict | None:
    """``{max_length, truncation, n_texts, n_truncated, rate, warn_rate, per_subset: {name: {n_texts,
    n_truncated, rate}}}`` for ``records`` under ``scorer``'s contract; None when the scorer has no token limit
    rewardlab can read (an LLM judge, a composed scorer)."""
    encoder = scorer.text_encoder()  # the declared interface (rewardlab.core.scorer)
    if encoder is None:
        return None
    limit = int(encoder.spec.max_length)
    per: dict[str, list[int]] = {}
    seen: dict[tuple, bool] = {}
    for record in records:
        prompts = record.meta.get("prompts") or (record.prompt,) * record.k
        for prompt, response in zip(prompts, record.responses):
            key = (record.prompt_key() if prompt is record.prompt else repr(prompt), response)
            if key not in seen:
                seen[key] = encoder.untruncated_length(prompt, response) > limit
            counts = per.setdefault(str(record.source), [0, 0])
            counts[0] += 1
            counts[1] += int(seen[key])
    n_texts = sum(c[0] for c in per.values())
    n_cut = sum(c[1] for c in per.values())
    return {
        "max_length": limit,
        "truncation": encoder.spec.truncation,
        "n_texts": n_texts,
        "n_truncated": n_cut,
        "rate": n_cut / n_texts if n_texts else None,
        "warn_rate": WARN_RATE,
        "per_subset": {
            name: {"n_texts": n, "n_truncated": cut, "rate": cut / n if n else None} for name, (n, cut) in per.items()
        },
    }


def truncation_line(name: str, counts: dict | None) -> str | None:
    """One line for the terminal summary and the notes: how many texts ``name`` saw cut, and at what length."""
    if not counts:
        return None
    rate = counts["rate"] or 0.0
    return (
        f"{name}: {counts['n_truncated']} of {counts['n_texts']} texts ({rate:.1%}) longer than max_length "
        f"{counts['max_length']} were cut ({counts['truncation']}) before scoring"
    )


def truncation_warnings(name: str, counts: dict | None) -> list[str]:
    """A warning per subset where more than ``WARN_RATE`` of the texts were cut."""
    if not counts:
        return []
    out = []
    for subset, c in counts["per_subset"].items():
        if c["rate"] is not None and c["rate"] > counts["warn_rate"]:
            out.append(
                f"{name} cut {c['n_truncated']} of {c['n_texts']} {subset} texts "
                f"({c['rate']:.0%}) to max_length {counts['max_length']} (warning above "
                f"{counts['warn_rate']:.0%}): their rewards are for part of the text"
            )
    return out
