"""Progress bars and status lines for every step that can take more than a couple of seconds.

One verbosity for the whole process: ``quiet`` (errors and the final summary only), ``normal`` (default:
progress bars with rate and ETA, a status line before each slow step) and ``verbose`` (also the details).
``rewardlab --quiet`` / ``--verbose`` set it; it is kept in ``$REWARDLAB_VERBOSITY`` so the processes of a
``torchrun`` / ``accelerate launch`` world inherit it. Only rank 0 (``$RANK`` unset or 0) draws anything.
Everything goes to stderr, so stdout stays the command's result. A bar appears only after ``DELAY_S``
seconds: steps that finish sooner print nothing.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
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


def bar(
    total: int | None,
    desc: str,
    unit: str = "it",
    initial: int = 0,
    leave: bool = False,
    delay: float = DELAY_S,
    show: bool = True,
):
    """A tqdm bar (count, rate and ETA) on stderr, shown after ``delay`` seconds; disabled (a no-op bar) when not
    :func:`enabled` or not ``show`` (a training run logging lines instead, :class:`StepLog`)."""
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        initial=initial,
        leave=leave,
        delay=delay,
        disable=not (show and enabled()),
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


# ---- training logs: a bar on a terminal, timestamped lines in a file ----------------------------------------
LOG_FORMATS = ("auto", "bar", "text", "json")


def log_mode(log_format: str, stream=None) -> str:
    """``bar``, ``text`` or ``json`` for ``--log-format`` (``auto``: the bar when stderr is a terminal, else text
    lines: a redirected bar is one ``\\r``-joined line that ``tail -f`` and ``grep`` cannot read)."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log_format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    if log_format != "auto":
        return log_format
    stream = stream or sys.stderr
    return "bar" if getattr(stream, "isatty", lambda: False)() else "text"


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class StepLog:
    """One line on stderr per ``--log-every`` steps (rank 0, not ``--quiet``) for ``text`` and ``json`` modes:

    ``2026-12-07T13:50:01Z train step 20/100 loss 0.6931 accuracy 0.500 lr 1.00e-04 pairs/s 12.3 eta 0:01:05``

    or the same fields as one JSON object (``time``, ``step``, ``total``, ``loss``, ``accuracy``, ``lr``,
    ``pairs_per_s``, ``eta_s``). The ETA is this invocation's seconds per step times the steps left. ``bar``
    mode prints nothing here (the bar shows it)."""

    def __init__(self, mode: str, total: int, start: int = 0, desc: str = "train", clock=time.time):
        self.mode, self.total, self.start, self.desc, self.clock = mode, total, start, desc, clock
        self.t0 = clock()

    def fields(self, rec: dict) -> dict:
        step = rec["step"]
        now = self.clock()
        per_step = (now - self.t0) / (step - self.start) if step > self.start else math.nan
        eta = per_step * (self.total - step)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        return {
            "time": stamp,
            "step": step,
            "total": self.total,
            "loss": rec.get("loss"),
            "accuracy": rec.get("accuracy"),
            "lr": rec.get("lr"),
            "pairs_per_s": rec.get("pairs_per_s"),
            "eta_s": None if math.isnan(eta) else round(eta, 1),
        }

    def line(self, rec: dict) -> str | None:
        if self.mode not in ("text", "json"):
            return None
        f = self.fields(rec)
        if self.mode == "json":
            return json.dumps({"event": self.desc, **f})

        def num(value, spec):
            return "n/a" if value is None else format(value, spec)

        return (
            f"{f['time']} {self.desc} step {f['step']}/{f['total']} loss {num(f['loss'], '.4f')} "
            f"accuracy {num(f['accuracy'], '.3f')} lr {num(f['lr'], '.2e')} pairs/s {num(f['pairs_per_s'], '.1f')} "
            f"eta {'n/a' if f['eta_s'] is None else _hms(f['eta_s'])}"
        )

    def log(self, rec: dict) -> None:
        text = self.line(rec)
        if text is not None and enabled():
            print(text, file=sys.stderr, flush=True)
