"""Run ownership: one run writes an output directory at a time.

Every output directory a command claims (:func:`rewardlab.core.outputs.claim_output_dir`) is locked for as long as the
command runs, by every process of the run:

* ``OUT/.rewardlab.lock`` — the door: an exclusive ``flock`` held by the run's main process (rank 0 under
  ``torchrun``); its text names the holder (pid, host, command, start time). A second writer, a second
  ``--overwrite`` or a concurrent ``--resume`` finds it taken and is refused, naming the holder's pid.
* ``OUT/.rewardlab.workers.lock`` — a shared ``flock`` held by every process of the run (each torchrun worker
  too, with its pid in ``OUT/.rewardlab.workers/``). A new run's main process needs it free, so workers left
  running by a killed launcher keep the directory theirs: the new run is refused naming their pids.

A lock is the kernel's: it ends with the process that holds it (``kill -9`` included), so a lock of a dead process
is never in the way; its holder text is then stale, and the next run says whose it was and takes it over. A clean
exit empties the text. Locks taken during a command are released when it returns (:func:`owning`).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from rewardlab.core.errors import RewardlabError

DOOR = ".rewardlab.lock"
WORKERS = ".rewardlab.workers.lock"
WORKER_DIR = ".rewardlab.workers"
LOCK_NAMES = (DOOR, WORKERS, WORKER_DIR)  # not part of any run's output (emptiness checks skip them)
JOIN_TIMEOUT_S = 600.0


class OwnershipError(RewardlabError):
    """The output directory is being written by another live process."""


def _rank() -> int:
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def is_main_process() -> bool:
    """Rank 0 of a launch (or the only process)."""
    return _rank() == 0


def run_identity() -> str:
    """What the processes of one launch share: the launcher (torchrun's agent is every local worker's parent)."""
    if "LOCAL_RANK" in os.environ and "RANK" in os.environ:
        return "torchrun:" + ":".join(
            os.environ.get(k, "") for k in ("TORCHELASTIC_RUN_ID", "MASTER_ADDR", "MASTER_PORT")
        )
    return f"process:{socket.gethostname()}:{os.getpid()}"


def _holder_text(command: str) -> dict:
    return {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "host": socket.gethostname(),
        "command": command,
        "run": run_identity(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _read_holder(fd: int) -> dict | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        raw = os.read(fd, 65536).decode("utf-8", "replace").strip()
        holder = json.loads(raw) if raw else None
        return holder if isinstance(holder, dict) else None
    except (OSError, ValueError):
        return None


def describe(holder: dict | None) -> str:
    if not holder:
        return "a process that did not say who it is"
    return (
        f"pid {holder.get('pid')} on {holder.get('host')} ({holder.get('command') or 'rewardlab'}, "
        f"started {holder.get('started')})"
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _workers(out: Path) -> list[dict]:
    """The recorded workers of ``out`` still running on this host (others' cannot be checked: kept)."""
    found = []
    for p in sorted((out / WORKER_DIR).glob("*.json")):
        try:
            w = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(w, dict):
            continue
        if w.get("host") == socket.gethostname() and isinstance(w.get("pid"), int) and not _alive(w["pid"]):
            continue
        found.append(w)
    return found


@dataclass
class Lock:
    out: Path
    door: int | None  # the door's fd (main process) or None (a worker)
    workers: int
    info: Path | None
    depth: int
    stale: dict | None = None  # the dead holder whose lock was taken over
    created: bool = False  # the directory did not exist: removed again at release when nothing was written


@dataclass
class _Held:
    locks: dict[str, Lock] = field(default_factory=dict)
    depth: int = 0


_HELD = _Held()


def _key(out: Path) -> str:
    return str(out.resolve())


def _lock(path: Path, op: int, fd: int | None = None) -> int:
    """An fd of ``path`` locked with ``op`` (``flock``); BlockingIOError when ``LOCK_NB`` finds it taken. The file is
    opened again when it was removed and replaced while waiting (a holder removes it at its clean end)."""
    while True:
        if fd is None:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, op)
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)
        fd = None


def acquire(out: str | os.PathLike, command: str = "rewardlab", *, main: bool | None = None) -> Lock:
    """Lock ``out`` (created if missing) for this process; re-entrant within a process. ``main`` (default: rank 0
    of the launch) takes the door; the others join the run the main process holds. Raises
    :class:`OwnershipError` naming the holder when another live process writes ``out``."""
    out = Path(out)
    key = _key(out) if out.exists() else None
    if key is not None and key in _HELD.locks:
        return _HELD.locks[key]
    main = _rank() == 0 if main is None else main
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RewardlabError(f"cannot lock the output directory {out}: {e.strerror or e}") from None
    door = workers = None
    stale = None
    try:
        if main:
            try:
                door = _lock(out / DOOR, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fd = os.open(out / DOOR, os.O_RDONLY)
                try:
                    holder = _read_holder(fd)
                finally:
                    os.close(fd)
                raise OwnershipError(
                    f"{out} is being written by {describe(holder)}: a second run into the same output directory "
                    "(also with --overwrite or --resume) must wait for it to end, or stop it first"
                ) from None
            stale = _read_holder(door)
            try:
                workers = _lock(out / WORKERS, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                left = _workers(out)
                raise OwnershipError(
                    f"{out} is still being written by {len(left) or 'some'} process(es) of an earlier run "
                    f"({'; '.join(describe(w) for w in left) or 'unnamed'}): its launcher or main process is gone "
                    "but these run on; stop them first"
                ) from None
            for old in (out / WORKER_DIR).glob("*.json"):  # no process of an earlier run is left: their records go
                with contextlib.suppress(OSError):
                    old.unlink()
            fcntl.flock(workers, fcntl.LOCK_SH)  # downgrade: the door keeps other runs out meanwhile
            os.ftruncate(door, 0)
            os.lseek(door, 0, os.SEEK_SET)
            os.write(door, (json.dumps(_holder_text(command)) + "\n").encode())
            if stale and stale.get("pid") != os.getpid():
                print(
                    f"rewardlab: {out}: took over the stale lock of {describe(stale)}, which is no longer running",
                    file=sys.stderr,
                )
            else:
                stale = None
        else:
            _wait_for_main(out)
            workers = _lock(out / WORKERS, fcntl.LOCK_SH)
        (out / WORKER_DIR).mkdir(exist_ok=True)
        info = out / WORKER_DIR / f"{socket.gethostname()}-{os.getpid()}.json"
        info.write_text(json.dumps(_holder_text(command)))
    except OSError as e:
        for fd in (door, workers):
            if fd is not None:
                os.close(fd)
        raise RewardlabError(f"cannot lock the output directory {out}: {e.strerror or e}") from None
    except BaseException:
        for fd in (door, workers):
            if fd is not None:
                os.close(fd)
        raise
    lock = Lock(out, door, workers, info, _HELD.depth, stale, created and main)
    _HELD.locks[_key(out)] = lock
    return lock


def _wait_for_main(out: Path) -> None:
    """A worker (rank > 0) joins the run its main process holds: it waits until the door names this launch."""
    me = run_identity()
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    while True:
        holder = None
        with contextlib.suppress(OSError):
            fd = os.open(out / DOOR, os.O_RDONLY)
            try:
                holder = _read_holder(fd)
            finally:
                os.close(fd)
        if holder and holder.get("run") == me:
            return
        if time.monotonic() > deadline:
            raise OwnershipError(f"{out}: the main process of this run did not take the output directory in time")
        time.sleep(0.2)


def release(lock: Lock) -> None:
    """Give ``lock`` up. The main process removes the lock files while it still holds them (a clean end leaves
    nothing behind, and a process waiting on the old file opens the new one: :func:`_lock`)."""
    _HELD.locks.pop(_key(lock.out), None)
    if lock.info is not None:
        with contextlib.suppress(OSError):
            lock.info.unlink()
        with contextlib.suppress(OSError):
            lock.info.parent.rmdir()  # when no other worker is recorded
    if lock.door is not None:
        with contextlib.suppress(OSError):
            (lock.out / WORKERS).unlink()
        with contextlib.suppress(OSError):
            (lock.out / DOOR).unlink()
        os.close(lock.door)
    os.close(lock.workers)
    if lock.created:
        with contextlib.suppress(OSError):
            lock.out.rmdir()  # a command that failed before writing leaves no empty directory behind


@contextlib.contextmanager
def owning():
    """Release, when the block ends, every lock taken inside it (locks taken by an enclosing block stay)."""
    _HELD.depth += 1
    depth = _HELD.depth
    try:
        yield
    finally:
        for lock in [x for x in _HELD.locks.values() if x.depth >= depth]:
            release(lock)
        _HELD.depth -= 1


def owns_outputs(func):
    """Decorator: the command ``func`` releases the output directories it locked when it returns or fails."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with owning():
            return func(*args, **kwargs)

    return wrapper


def held(out: str | os.PathLike) -> bool:
    return Path(out).exists() and _key(Path(out)) in _HELD.locks
