"""Gold rewards for candidate sets: a programmatic checker (by name), the file's own labels, or a reward model.

A checker is ``check(meta, prompt, response) -> float | None``. ``None`` (the checker cannot decide) and an
exception inside the checker both mark the sample as *failed*: it gets no gold value, it is counted and listed,
and it is never scored as 0. Register a new checker with one entry in :data:`GOLD_CHECKERS`.
"""

from __future__ import annotations

import math
from typing import Callable

from rewardlab.data.synthetic import TASKS

Checker = Callable[[dict, object, str], "float | None"]


def _embedded(meta: dict, prompt, response: str) -> float | None:
    """The embedded preference tasks' programs (:data:`rewardlab.data.synthetic.TASKS`), chosen by ``meta['task']``."""
    task = TASKS.get(meta.get("task"))
    if task is None:
        raise ValueError(f"meta.task {meta.get('task')!r} is not an embedded task ({', '.join(TASKS)})")
    return task.reward(meta, response)


def _arithmetic_chains(meta: dict, prompt, response: str) -> float | None:
    """The verifiers' embedded multi-step arithmetic task (:func:`rewardlab.verifiers.synthetic.check`): 1.0 when the
    last ``A:`` line equals the chain's true result, 0.0 when it does not, None when it cannot be decided."""
    from rewardlab.verifiers.synthetic import check  # lazy: the verifier package only for this gold

    return check(prompt, response) if isinstance(prompt, str) else None


GOLD_CHECKERS: dict[str, tuple[Checker, str]] = {
    "embedded": (_embedded, "the embedded tasks' checkers (rewardlab.data.synthetic), read from each prompt's meta"),
    "arithmetic-chains": (
        _arithmetic_chains,
        "the verifiers' embedded multi-step arithmetic task (rewardlab.verifiers.synthetic.check): the final A: line",
    ),
}
LABELS = "labels"  # --gold labels: the 'gold' values in the samples file


def gold_help() -> str:
    """``--gold``'s choices, for --help."""
    listed = "; ".join(f"{k}: {d}" for k, (_, d) in GOLD_CHECKERS.items())
    return f"{listed}; {LABELS}: the file's 'gold' values; anything else: a reward model (any model the loader takes)"


def run_checker(check: Checker, meta: dict, prompt, response: str) -> tuple[float | None, str | None]:
    """``(gold, None)`` or ``(None, why it failed)``: the checker returned None / a non-finite value, or raised."""
    try:
        value = check(meta, prompt, response)
    except Exception as e:  # a checker bug or a sample it cannot read: marked, counted, never 0
        return None, f"{type(e).__name__}: {e}"
    if value is None:
        return None, "the checker could not decide (None)"
    value = float(value)
    if not math.isfinite(value):
        return None, f"the checker returned {value}"
    return value, None
