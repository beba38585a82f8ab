"""The records a verifier trains and is scored on: a :class:`Solution` (a prompt and its ordered steps, with an
outcome label and/or one label per step) and a :class:`Problem` (the solutions of one prompt, grouped so that
per-problem metrics and prefix sharing see them together).

Step-label schemes (:data:`SCHEMES`), decided per file by the reader and checked per value:

* ``binary`` — 0 / 1 (a JSON ``true``/``false`` or the integers 0 and 1);
* ``ternary`` — −1 / 0 / +1 (PRM800K's bad / neutral / good; trained as 3 classes);
* ``soft`` — any float in [0, 1] (Math-Shepherd-style Monte-Carlo estimates; a 0.7 stays 0.7 end to end);

and ``None`` for an unlabelled step (ProcessBench's steps after the first wrong one). A solution whose steps
are all unlabelled still carries an outcome for an ORM. Nothing here reads files: :mod:`rewardlab.verifiers.readers`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

SCHEMES = ("binary", "ternary", "soft")


def label_error(value, scheme: str) -> str | None:
    """Why ``value`` is not a step label of ``scheme`` (None: it is one, or it is None = unlabelled).

    >>> label_error(0.7, "soft") is None, label_error(0.7, "binary")
    (True, 'expected 0 or 1 (binary scheme), got 0.7')
    >>> label_error(-1, "ternary") is None, label_error(2, "ternary")
    (True, 'expected -1, 0 or 1 (ternary scheme), got 2')
    """
    if value is None:
        return None
    if isinstance(value, bool):
        value = int(value)
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return f"expected a number, got {value!r}"
    if scheme == "binary" and value not in (0, 1):
        return f"expected 0 or 1 (binary scheme), got {value!r}"
    if scheme == "ternary" and value not in (-1, 0, 1):
        return f"expected -1, 0 or 1 (ternary scheme), got {value!r}"
    if scheme == "soft" and not 0.0 <= value <= 1.0:
        return f"expected a probability in [0, 1] (soft scheme), got {value!r}"
    if scheme not in SCHEMES:
        raise ValueError(f"unknown label scheme {scheme!r} (one of {', '.join(SCHEMES)})")
    return None


def step_is_correct(value: float | None, scheme: str) -> bool | None:
    """A label read as "this step is correct": binary 1, ternary +1 (0 = neutral counts as not wrong: True),
    soft ≥ 0.5; None stays None."""
    if value is None:
        return None
    if scheme == "ternary":
        return value >= 0
    return value >= 0.5


@dataclass(frozen=True)
class Solution:
    """One solution: ``prompt`` (the problem text), ``steps`` (non-empty texts, in order), ``outcome`` (1.0 the
    final answer is correct, 0.0 wrong, None unknown) and ``step_labels`` (one per step, each a value of
    ``scheme`` or None; None as a whole: no step labels). ``id`` names it in errors and outputs."""

    prompt: str
    steps: tuple[str, ...]
    outcome: float | None = None
    step_labels: tuple[float | None, ...] | None = None
    scheme: str = "binary"
    id: str = ""
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        if self.step_labels is not None and len(self.step_labels) != len(self.steps):
            raise ValueError(f"{len(self.step_labels)} step labels for {len(self.steps)} steps")
        for v in self.step_labels or ():
            problem = label_error(v, self.scheme)
            if problem:
                raise ValueError(problem)

    @property
    def first_error(self) -> int | None:
        """0-based index of the first step labelled wrong; -1 when every labelled step is correct and the last
        step is labelled; None when that cannot be told (no labels, or it ends unlabelled before any error)."""
        if self.step_labels is None:
            return None
        for i, v in enumerate(self.step_labels):
            ok = step_is_correct(v, self.scheme)
            if ok is False:
                return i
            if ok is None:
                return None
        return -1


@dataclass
class Problem:
    """The solutions of one prompt (file order), with an optional ``reference`` answer."""

    id: str
    prompt: str
    solutions: list[Solution]
    reference: str | None = None


def group_by_prompt(solutions: list[Solution]) -> list[Problem]:
    """Solutions with the same prompt text as one :class:`Problem` each, in order of first appearance; the
    problem's id is its first solution's id."""
    by_prompt: dict[str, Problem] = {}
    for s in solutions:
        if s.prompt not in by_prompt:
            by_prompt[s.prompt] = Problem(id=s.id, prompt=s.prompt, solutions=[])
        by_prompt[s.prompt].solutions.append(s)
    return list(by_prompt.values())


def split_lines(response: str) -> list[str]:
    """The step rule of ``score(items)``: one step per non-empty line, each stripped of surrounding whitespace.

    >>> split_lines("  a = 1\\n\\nb = a + 1  \\nA: 2\\n")
    ['a = 1', 'b = a + 1', 'A: 2']
    """
    return [line.strip() for line in response.split("\n") if line.strip()]


def prompt_text(prompt) -> str:
    """A verifier reads the prompt as text; chat messages are joined by newlines (content only)."""
    return prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in prompt)


STEP_RULE = "lines"  # the name recorded with every score that came from split_lines
