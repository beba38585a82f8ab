"""The one output claim: every writing command claims its output (a file or a directory) here before any work.

A claim refuses, with one line naming the path and the reason:

* an existing output, unless the user says what they want: ``--resume`` (continue the run that is there) or
  ``--overwrite`` (replace it: the files the command writes are removed first, so nothing of the old run mixes
  with the new one; other files are left alone);
* a target that is not a regular file or directory — a device, a FIFO, a socket — even with ``--overwrite``, and
  a symbolic link that leads out of the output's directory (one inside it is written through);
* an output that is, or would overwrite, an input of the same command or a model it reads (``score --data X
  --output X``, ``compose --output-dir <a member's directory>``), or a file a model directory it reads depends on;
* an output directory that holds a model (``rewardlab.json``) which the command does not write;
* a place that cannot be written (read-only file system, permissions, a file where a directory must be) and a disk
  without room for what the command writes, net of what its own earlier run already holds there (``--resume`` after
  space was freed counts its checkpoints as present, not as still to write).

A claimed directory is also locked for the run (:mod:`rewardlab.core.ownership`): a second writer is refused naming the
holder's pid.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

from rewardlab.core.errors import RewardlabError
from rewardlab.core.integrity import SCORING_FILES
from rewardlab.core.ownership import LOCK_NAMES, acquire, is_main_process

MODEL_FILE = "rewardlab.json"
MODEL_FILES = (MODEL_FILE, *SCORING_FILES)  # the names a model directory reads: the contract and its scoring files
Inputs = Mapping[str, "str | os.PathLike | Iterable[str | os.PathLike] | None"]


class OutputClaimError(RewardlabError):
    """An output path the command must not (or cannot) write."""


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISREG, "a file"),
        (stat.S_ISLNK, "a symbolic link"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _entries(path: Path) -> list[Path]:
    return [p for p in path.iterdir() if p.name not in LOCK_NAMES]


def _listing(path: Path, limit: int = 4) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in _entries(path))
    return ", ".join(names[:limit]) + (f", … ({len(names)} entries)" if len(names) > limit else "")


def _within(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def _input_paths(inputs: Inputs | None) -> list[tuple[str, Path]]:
    """``(flag, resolved path)`` of every input that exists here (hub ids and missing paths are not files)."""
    out = []
    for flag, value in (inputs or {}).items():
        if value is None or value == "":
            continue
        values = [value] if isinstance(value, (str, os.PathLike)) else list(value)
        for v in values:
            if v is None or v == "":
                continue
            p = Path(v)
            if os.path.lexists(p):
                out.append((flag, p.resolve()))
    return out


def _holds_model(path: Path) -> bool:
    return (path / MODEL_FILE).is_file()


def _existing_ancestor(path: Path) -> Path:
    p = path.absolute()
    while not os.path.lexists(p) and p != p.parent:
        p = p.parent
    return p


def _check_writable(path: Path, flag: str) -> None:
    """``path`` (a directory, or where one will be created) can be written: a probe file is created and removed in
    its nearest existing ancestor (root is refused by a read-only file system too, where permission bits are not)."""
    base = _existing_ancestor(path)
    if not base.is_dir():
        raise OutputClaimError(f"{flag} {path}: {base} is {_kind(os.stat(base).st_mode)}, not a directory")
    probe = base / f".rewardlab-write-test-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise OutputClaimError(f"{flag} {path} is not writable: {e.strerror or e} ({base})") from None


def disk_bytes(paths: Iterable[Path]) -> int:
    """Bytes the files under ``paths`` take (what a run already has on disk)."""
    total = 0
    for p in paths:
        if p.is_symlink() or not p.exists():
            continue
        if p.is_file():
            total += p.stat().st_size
            continue
        for root, _, files in os.walk(p):
            for name in files:
                q = Path(root) / name
                if not q.is_symlink():
                    try:
                        total += q.stat().st_size
                    except OSError:
                        pass
    return total


def check_free_space(path: Path, need: int, flag: str, *, have: int = 0, what: str = "") -> None:
    """Refuse when the disk of ``path`` cannot take ``need`` bytes more than the ``have`` bytes the output already
    holds there (its own files, which the command replaces or continues)."""
    short = max(0, need - have)
    if short == 0:
        return
    free = shutil.disk_usage(_existing_ancestor(path)).free
    if free < short:
        detail = f" ({what})" if what else ""
        raise OutputClaimError(
            f"{flag} {path}: only {free / 2**20:.0f} MiB free, and this writes about {short / 2**20:.0f} MiB more"
            f"{detail} than is already there ({have / 2**20:.0f} MiB); free space or choose another {flag}"
        )


def _check_inputs_file(target: Path, inputs: Inputs | None, flag: str) -> None:
    resolved = target.resolve()
    for in_flag, src in _input_paths(inputs):
        if resolved == src:
            raise OutputClaimError(f"{flag} {target} is the input of {in_flag}: writing it would destroy what is read")
        if (
            src.is_dir()
            and _within(resolved, src)
            and (resolved.exists() or any(fnmatch.fnmatch(resolved.name, pat) for pat in MODEL_FILES))
        ):
            raise OutputClaimError(
                f"{flag} {target} is inside {in_flag} {src}, which this command reads: writing it would change it"
            )


def claim_output_file(
    path: str | os.PathLike,
    *,
    overwrite: bool,
    flag: str = "--output",
    inputs: Inputs | None = None,
    need_bytes: int = 0,
) -> Path:
    """The path to write (a symbolic link inside the output's directory resolved to its target) when ``path`` may
    be written: missing, or an existing regular file with ``overwrite``. ``inputs``: ``{flag: path(s)}`` the command
    reads; ``need_bytes``: about what it writes. See the module docstring for what is refused."""
    path = Path(path)
    target = path
    if path.is_symlink():
        resolved = path.resolve()
        home = path.absolute().parent.resolve()
        if not _within(resolved, home):
            raise OutputClaimError(
                f"{flag} {path} is a symbolic link to {resolved}, outside {home}: refusing to write through it "
                f"(give the target itself, or remove the link)"
            )
        target = resolved
    if os.path.lexists(target):
        mode = os.lstat(target).st_mode
        if stat.S_ISDIR(mode):
            raise OutputClaimError(f"{flag} {path} is a directory; give a file name")
        if not stat.S_ISREG(mode):
            raise OutputClaimError(
                f"{flag} {path} is {_kind(mode)}, not a regular file: refusing to replace it (even with --overwrite)"
            )
        if not overwrite:
            raise OutputClaimError(f"{flag} {path} exists: pass --overwrite to replace it, or choose another {flag}")
    _check_inputs_file(target, inputs, flag)
    _check_writable(target.parent, flag)
    have = target.stat().st_size if target.is_file() else 0
    check_free_space(target.parent, need_bytes, flag, have=have)
    return target


def claim_output_dir(
    path: str | os.PathLike,
    *,
    overwrite: bool,
    written: tuple[str, ...] = (),
    resume: bool | None = None,
    flag: str = "--output-dir",
    inputs: Inputs | None = None,
    need_bytes: int = 0,
    may_hold_model: bool = False,
    command: str = "rewardlab",
    lock: bool = True,
) -> Path:
    """``path`` if it is missing or empty; with ``overwrite`` the entries matching ``written`` are removed first;
    with ``resume`` (True) it is taken as it is. ``resume`` is None for commands without ``--resume``.

    The directory is locked for this process's run (:func:`rewardlab.core.ownership.acquire`; a process of a launch
    other than the main one only joins the main process's lock, and checks nothing else). ``may_hold_model``: the
    command writes a model into the directory itself (export), so a model there is the one it replaces. Raises
    :class:`OutputClaimError` (or :class:`rewardlab.core.ownership.OwnershipError`) naming the directory and reason."""
    path = Path(path)
    if not is_main_process():
        acquire(path, command)  # a torchrun worker: the main process claimed; this one holds the run's lock too
        return path
    if os.path.lexists(path):
        if not path.is_dir():
            mode = os.stat(path).st_mode if path.exists() else os.lstat(path).st_mode
            raise OutputClaimError(f"{flag} {path} is {_kind(mode)}, not a directory")
    resolved = path.resolve()
    for in_flag, src in _input_paths(inputs):
        if resolved == src:
            raise OutputClaimError(
                f"{flag} {path} is the input of {in_flag}: writing into it would change what is read"
            )
        if _within(src, resolved) and src != resolved:
            top = src.relative_to(resolved).parts[0]
            if any(fnmatch.fnmatch(top, pat) for pat in written) or (
                src.parent == resolved and any(fnmatch.fnmatch(src.name, pat) for pat in MODEL_FILES)
            ):
                raise OutputClaimError(
                    f"{flag} {path} contains the input of {in_flag} ({src}), which this command would replace"
                )
    if path.is_dir() and _holds_model(path) and not may_hold_model:
        raise OutputClaimError(
            f"{flag} {path} holds a model ({MODEL_FILE}): refusing to write a run into it (even with --overwrite); "
            f"choose another {flag}"
        )
    _check_writable(path, flag)
    if path.is_dir() and lock:
        acquire(path, command)  # a live writer is named before anything else is said about its directory
    if path.is_dir() and _entries(path) and not resume:
        if not overwrite:
            choices = (
                "pass --resume to continue that run, --overwrite to replace it"
                if resume is not None
                else "pass --overwrite to replace it"
            )
            raise OutputClaimError(
                f"{flag} {path} is not empty ({_listing(path)}): {choices}, or choose another {flag}"
            )
        doomed = sorted({t for pattern in written for t in path.glob(pattern)})
        for target in doomed:
            mode = os.lstat(target).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
                raise OutputClaimError(
                    f"{flag} {path}: {target.name} is {_kind(mode)}, not a file this command wrote: refusing to "
                    "remove it (even with --overwrite)"
                )
    # what this command's earlier run holds there: kept (--resume) or removed (--overwrite), it is not written again
    have = disk_bytes(t for pattern in written for t in path.glob(pattern)) if path.is_dir() else 0
    check_free_space(path, need_bytes, flag, have=have)
    if lock:
        acquire(path, command)  # (a new directory: created and locked now)
    if path.is_dir() and overwrite and not resume:
        for pattern in written:  # names or glob patterns ("examples-*.jsonl")
            for target in sorted(path.glob(pattern)):
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                else:
                    target.unlink()
    return path


def claim_in_place(path: str | os.PathLike, *, flag: str, command: str = "rewardlab") -> Path:
    """A directory the command rewrites in place (``normalize`` updates the model's ``rewardlab.json``): it must be
    writable, and it is locked for the command (a second writer is refused naming the holder)."""
    path = Path(path)
    if not path.is_dir():
        raise OutputClaimError(f"{flag} {path} is not a directory")
    _check_writable(path, flag)
    acquire(path, command)
    return path


# what `rewardlab train` writes (every objective) into output_dir: --overwrite removes these (and only these) first
TRAIN_WRITES = (
    "model",
    "checkpoints",
    "metrics.jsonl",
    "train_summary.json",
    "tensorboard",
    "mlruns",
    "split.json",
    "report.md",
    "report.html",
    "report.json",
    "examples-trained.jsonl",
)
