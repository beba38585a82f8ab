"""How a solution becomes token ids, and where its step labels sit.

The text of a solution is ``prompt + prompt_separator + step_1 + marker + step_2 + marker + … + step_K + marker``:
a separator between the prompt and the first step always (TRL trains without one and infers with one), and the
**marker** ends every step. A step's label (PRM) and its score are read at the marker's token, so the marker must
be **one token id that never merges with its neighbours**: a dedicated added special token (``special=True``,
never merged by construction), or a separator string that is checked here, solution by solution, against the
tokenizer at hand — the token that covers exactly the marker's characters at the end of each step must be the
marker's own id. Otherwise :class:`MarkerError` names the marker, the solution and what it tokenized to (OpenRLHF
issue #683: a marker that does not tokenize to one standalone id turned every label into -100, silently).

A text longer than ``max_length`` tokens keeps its first ``max_length``; every step label that falls beyond is
counted (:attr:`Encoded.dropped_labels`), and the trainer reports or refuses it (``--on-truncation``).
"""

from __future__ import annotations

from dataclasses import dataclass

from rewardlab.core.errors import RewardlabError


class MarkerError(RewardlabError):
    """The step marker does not end a step with its one standalone token id."""


@dataclass(frozen=True)
class StepFormat:
    marker: str = "\n"  # ends every step; the step's label and score sit at its token
    prompt_separator: str = "\n"  # between the prompt and the first step (always; never labelled)
    special: bool = False  # the marker is a dedicated added special token

    def render(self, prompt: str, steps) -> tuple[str, list[tuple[int, int]], int]:
        """``(text, marker character spans, first step's character offset)``.

        >>> StepFormat("<s>", " | ").render("Q?", ["a", "b"])
        ('Q? | a<s>b<s>', [(6, 9), (10, 13)], 5)
        """
        text = prompt + self.prompt_separator
        start, spans = len(text), []
        for s in steps:
            text += s
            spans.append((len(text), len(text) + len(self.marker)))
            text += self.marker
        return text, spans, start

    def to_json(self) -> dict:
        return {"marker": self.marker, "prompt_separator": self.prompt_separator, "special": self.special}


def marker_id(tokenizer, fmt: StepFormat) -> int:
    """The marker's one token id; :class:`MarkerError` when it is not one token on its own."""
    ids = tokenizer(fmt.marker, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        pieces = tokenizer.convert_ids_to_tokens(ids)
        raise MarkerError(
            f"step marker {fmt.marker!r} tokenizes to {len(ids)} tokens {pieces} (ids {ids}), not one: choose "
            "another --marker or --marker-special (a dedicated added token)"
        )
    return ids[0]


def add_special_marker(tokenizer, model, fmt: StepFormat) -> None:
    """Add ``fmt.marker`` as a special token (and grow the embeddings) when the tokenizer lacks it."""
    if fmt.marker not in tokenizer.get_vocab():
        tokenizer.add_special_tokens({"additional_special_tokens": [fmt.marker]})
        model.resize_token_embeddings(len(tokenizer))


@dataclass
class Encoded:
    """One solution's tokens: ``ids``; ``step_positions[k]``: the index of step k's marker token (None: cut off by
    ``max_length``); ``completion_start``: the first token of step 1 (after the prompt and separator);
    ``end``: one past the last step's marker (kept tokens only); ``dropped_labels``: labelled steps cut off."""

    ids: list[int]
    step_positions: list[int | None]
    completion_start: int
    end: int
    dropped_labels: int = 0


def encode(
    tokenizer, fmt: StepFormat, mid: int, prompt: str, steps, labels=None, max_length: int | None = None, name=""
) -> Encoded:
    """Tokenize one solution (the tokenizer's own special tokens added, as plain transformers would) and find
    each step's marker token by character offsets; :class:`MarkerError` when a step does not end in the marker's
    one id. ``labels`` (one per step, None = unlabelled) only to count the labels truncation drops."""
    text, spans, first = fmt.render(prompt, steps)
    enc = tokenizer(text, add_special_tokens=True, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    by_span = {(a, b): j for j, (a, b) in enumerate(offsets) if b > a}
    positions = []
    for k, span in enumerate(spans):
        j = by_span.get(span)
        if j is None or ids[j] != mid:
            covering = [j for j, (a, b) in enumerate(offsets) if b > a and a < span[1] and b > span[0]]
            shown = [text[offsets[j][0] : offsets[j][1]] for j in covering]
            raise MarkerError(
                f"step marker {fmt.marker!r} does not end step {k + 1} of {name or 'a solution'} as one standalone "
                f"token: the step's end tokenized to {shown} (ids {[ids[j] for j in covering]}; the marker alone is "
                f"id {mid}); use --marker-special (a dedicated added token) or another --marker"
            )
        positions.append(j)
    completion_start = next((j for j, (a, b) in enumerate(offsets) if b > a and a >= first), len(ids))
    end = positions[-1] + 1 if positions else completion_start
    dropped = 0
    if max_length is not None and len(ids) > max_length:
        ids = ids[:max_length]
        for k, p in enumerate(positions):
            if p >= max_length:
                positions[k] = None
                dropped += labels is not None and labels[k] is not None
        end = min(end, max_length)
    return Encoded(ids, positions, completion_start, end, dropped)
