"""Progress bars and status lines for every step that can take more than a couple of seconds.

One verbosity for the whole process: ``quiet`` (errors and the final summary only), ``normal`` (default:
progress bars with rate and ETA, a status line before each slow step) and ``verbose`` (also the details).
``rewardlab --quiet`` / ``--verbose`` set it; it is kept in ``$REWARDLAB_VERBOSITY`` so the processes of a
``torchrun`` / ``accelerate launch`` world inherit it. Only rank 0 (``$RANK`` unset or 0) draws anything.
Everything goes to stderr, so stdout stays the command's result. A bar appears only after ``DELAY_S``
seconds: steps that finish sooner print nothing.
"""

from __future__ import annotations

import os
import sys
from typing import Iterable, Iterator, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

LEVELS = {"quiet": 0, "normal": 1, "verbose": 2}
ENV = "REWARDLAB_VERBOSITY"
DELAY_S = 1.0


def set_verbosity(level: str) -> None:
    if level not in LEVELS:
        raise ValueError(f"verbosity must be one of {', '.join(LEVELS)}, not {level!r}")
    os.environ[ENV] = level


def verbosity() -> int:
    return LEVELS.get(os.environ.get(ENV, "normal"), 1)


def _rank0() -> bool:
    return os.environ.get("RANK", "0") in ("", "0")


def enabled(level: int = 1) -> bool:
    """Whether output of ``level`` (1: normal, 2: verbose) is shown here."""
    return verbosity() >= level and _rank0()


def status(message: str, level: int = 1) -> None:
    """One line on stderr (``rewardlab: loading the backbone minilm``) before a step without a bar."""
    if enabled(level):
        print(f"rewardlab: {message}", file=sys.stderr, flush=True)


def bar(total: int | None, desc: str, unit: str = "it", initial: int = 0, leave: bool = False, delay: float = DELAY_S):
    """A tqdm bar (count, rate and ETA) on stderr, shown after ``delay`` seconds; disabled (a no-op bar) when not
    :func:`enabled`."""
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        initial=initial,
        leave=leave,
        delay=delay,
        disable=not enabled(),
        dynamic_ncols=True,
        file=sys.stderr,
    )


def track(items: Iterable[T], desc: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
    """``items``, one by one, advancing a :func:`bar`."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with bar(total, desc, unit) as b:
        for item in items:
            yield item
            b.update(1)
