"""Progress bars and status lines for every step that can take more than a couple of seconds.

One verbosity for the whole process: ``quiet`` (errors and the final summary only), ``normal`` (default:
progress bars with rate and ETA, a status line before each slow step) and ``verbose`` (also the details).
``rewardlab --quiet`` / ``--verbose`` set it; it is kept in ``$REWARDLAB_VERBOSITY`` so the processes of a
``torchrun`` / ``accelerate launch`` world inherit it. Only rank 0 (``$RANK`` unset or 0) draws anything.
Everything goes to stderr, so stdout stays the command's result. A bar appears only after ``DELAY_S``
seconds: steps that finish sooner print nothing.

Without a terminal (stderr redirected to a file, a cluster log) a tqdm bar would be one ``\r``-joined line that
``tail -f`` and ``grep`` cannot read, so every bar becomes :class:`LineBar`: one timestamped line every
``$REWARDLAB_LOG_INTERVAL`` seconds (default 10; 0: at every update) and one when it ends, or the same as JSON lines.
The process's log format (``--log-format``: auto | bar | text | json) is kept in ``$REWARDLAB_LOG_FORMAT`` like the
verbosity; :func:`set_log_format` sets it.
"""

from __future__ import annotations

import contextlib
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
    mode: str | None = None,
):
    """A progress display on stderr, shown after ``delay`` seconds; disabled (a no-op) when not :func:`enabled` or
    not ``show`` (a training run logging lines instead, :class:`StepLog`). On a terminal (``--log-format bar``, or
    ``auto`` with a terminal) a tqdm bar with count, rate and ETA; otherwise a :class:`LineBar` (``text`` or
    ``json`` lines); ``mode`` overrides the process's :func:`log_format`."""
    disable = not (show and enabled())
    mode = log_mode(mode or log_format())
    if mode != "bar":
        return LineBar(total, desc, unit=unit, initial=initial, delay=delay, mode=mode, disable=disable)
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        initial=initial,
        leave=leave,
        delay=delay,
        disable=disable,
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


# ---- logs: a bar on a terminal, timestamped lines in a file ------------------------------------------------
LOG_FORMATS = ("auto", "bar", "text", "json")
LOG_FORMAT_ENV = "REWARDLAB_LOG_FORMAT"
LOG_INTERVAL_ENV = "REWARDLAB_LOG_INTERVAL"
LOG_INTERVAL_S = 10.0  # seconds between two lines of a LineBar unless $REWARDLAB_LOG_INTERVAL says otherwise


def set_log_format(log_format: str) -> None:
    """This process's ``--log-format`` (inherited by a ``torchrun`` world's processes, like the verbosity)."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log_format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    os.environ[LOG_FORMAT_ENV] = log_format


@contextlib.contextmanager
def logging_as(log_format: str):
    """Every bar inside follows ``log_format`` (a command's ``--log-format``); the previous setting comes back."""
    previous = os.environ.get(LOG_FORMAT_ENV)
    set_log_format(log_format)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(LOG_FORMAT_ENV, None)
        else:
            os.environ[LOG_FORMAT_ENV] = previous


def check_log_format(value: str) -> None:
    """Refuse a ``--log-format`` that is not one of :data:`LOG_FORMATS` (when the config is built)."""
    if value not in LOG_FORMATS:
        from rewardlab.core.errors import RewardlabError  # lazy: keeps this module's imports as they were

        raise RewardlabError(f"--log-format {value}: expected one of {', '.join(LOG_FORMATS)}")


def log_format() -> str:
    """The process's ``--log-format`` (``auto`` when none was set or the variable holds something else)."""
    value = os.environ.get(LOG_FORMAT_ENV, "auto")
    return value if value in LOG_FORMATS else "auto"


def log_interval() -> float:
    """Seconds between two :class:`LineBar` lines: ``$REWARDLAB_LOG_INTERVAL`` (a number >= 0), else 10."""
    try:
        value = float(os.environ.get(LOG_INTERVAL_ENV, LOG_INTERVAL_S))
    except ValueError:
        return LOG_INTERVAL_S
    return value if math.isfinite(value) and value >= 0 else LOG_INTERVAL_S


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


def _stamp(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class LineBar:
    """A progress bar for a log file: the part of tqdm's interface the commands use (``update``, ``set_postfix``,
    ``close``, a context manager, ``n``, ``total``), printing one line to stderr when ``delay`` seconds have passed
    since it started and then at most one every :func:`log_interval` seconds, and a last one when it closes (if it
    printed any, or took longer than ``delay``):

    ``2026-12-07T13:50:01Z score 1200/5000 text (24%) 350.2 text/s eta 0:00:11``

    or, in ``json`` mode, ``{"event": "score", "time": ..., "n": 1200, "total": 5000, "unit": "text",
    "rate": 350.2, "eta_s": 10.9, "elapsed_s": 3.4, "finished": false}`` (``finished: true`` on the last line; a
    bar left by an exception prints no last line). The rate counts this invocation's updates
    (``initial`` is where a resumed task starts); the ETA is the items left over that rate."""

    def __init__(
        self,
        total: int | None,
        desc: str,
        unit: str = "it",
        initial: int = 0,
        delay: float = DELAY_S,
        mode: str = "text",
        disable: bool = False,
        clock=time.time,
        interval: float | None = None,
        stream=None,
    ):
        self.total, self.desc, self.unit, self.n, self.initial = total, desc, unit, initial, initial
        self.mode, self.disable, self.clock = mode, disable, clock
        self.interval = log_interval() if interval is None else interval
        self.delay = min(delay, self.interval)  # REWARDLAB_LOG_INTERVAL=0: a line at every update from the first
        self.stream = stream
        self.t0 = clock()
        self.last: float | None = None  # when the last line was printed
        self.postfix: dict = {}
        self.closed = False

    def fields(self, now: float, done: bool = False) -> dict:
        elapsed = now - self.t0
        rate = (self.n - self.initial) / elapsed if elapsed > 0 else None
        left = None if self.total is None else max(self.total - self.n, 0)
        eta = 0.0 if done else (left / rate if left is not None and rate else None)
        return {
            "time": _stamp(now),
            "n": self.n,
            "total": self.total,
            "unit": self.unit,
            "rate": None if rate is None else round(rate, 3),
            "eta_s": None if eta is None else round(eta, 1),
            "elapsed_s": round(elapsed, 1),
            **self.postfix,
        }

    def line(self, now: float, done: bool = False) -> str:
        f = self.fields(now, done)
        if self.mode == "json":
            return json.dumps({"event": self.desc, **f, "finished": done})
        count = f"{f['n']}/{f['total']}" if f["total"] is not None else f"{f['n']}"
        share = f" ({100 * f['n'] / f['total']:.0f}%)" if f["total"] else ""
        rate = "n/a" if f["rate"] is None else f"{f['rate']:.1f}"
        tail = f"done in {_hms(f['elapsed_s'])}" if done else f"eta {'n/a' if f['eta_s'] is None else _hms(f['eta_s'])}"
        extra = "".join(f" {k} {v}" for k, v in self.postfix.items())
        return f"{f['time']} {self.desc} {count} {self.unit}{share} {rate} {self.unit}/s{extra} {tail}"

    def _print(self, text: str) -> None:
        print(text, file=self.stream or sys.stderr, flush=True)

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.disable:
            return
        now = self.clock()
        due = now - self.t0 >= self.delay if self.last is None else now - self.last >= self.interval
        if due:
            self.last = now
            self._print(self.line(now))

    def set_postfix(self, **kwargs) -> None:
        self.postfix = {k: str(v) for k, v in kwargs.items()}

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.disable:
            return
        now = self.clock()
        if self.last is not None or now - self.t0 >= self.delay:
            self._print(self.line(now, done=True))

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is not None:  # not finished: no "done" line
            self.closed = True
        self.close()
