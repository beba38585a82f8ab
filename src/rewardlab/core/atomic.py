"""The one write layer: atomic file and directory writes (a temporary name in the same directory, then
``os.replace``), what a full or read-only disk becomes, and the one JSON cleaner every report and summary goes
through.

A reader (or a crash) sees either the old file whole or the new one whole, never a half-written one. Every byte a
command writes passes :func:`_write_all` (files) or :func:`_flush` (files and the finished directories before they
are renamed into place), and every write runs under :func:`writing`: a full disk (``ENOSPC``, ``EDQUOT``), a
read-only file system (``EROFS``) or a refused permission (``EACCES``, ``EPERM``) becomes an
:class:`OutputWriteError` naming the path, the temporary file or directory is removed, and what was there before
is untouched.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rewardlab.core.errors import RewardlabError

# the OSErrors a write can meet on a healthy machine, and how they are said
WRITE_FAULTS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file is too large for the file system",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a part of the path is a file, not a directory",
    errno.ENAMETOOLONG: "the name is too long",
}


class OutputWriteError(RewardlabError):
    """A write failed for a reason of the disk, not of the program: one line naming the path."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(
            f"cannot write {path}: {reason}; nothing was half-written (free space, or choose another output)"
        )


def write_fault(e: OSError, path: str | os.PathLike) -> OutputWriteError | None:
    """The :class:`OutputWriteError` for ``e`` (writing ``path``) when it is a disk fault, else None."""
    reason = WRITE_FAULTS.get(getattr(e, "errno", None))
    return None if reason is None else OutputWriteError(path, reason)


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()
    except OSError:
        pass


@contextlib.contextmanager
def writing(path: str | os.PathLike, *, temporary: tuple[str | os.PathLike, ...] = ()) -> Iterator[None]:
    """Run a write of ``path``: on any failure the ``temporary`` files/directories are removed; a disk fault
    (:data:`WRITE_FAULTS`) is raised as :class:`OutputWriteError` naming ``path``, anything else as it is."""
    try:
        yield
    except BaseException as e:
        for t in temporary:
            _remove(Path(t))
        if isinstance(e, OutputWriteError) and any(str(t) in e.path for t in temporary):
            raise OutputWriteError(path, e.reason) from None  # named as the output, not its temporary copy
        fault = write_fault(e, path) if isinstance(e, OSError) else None
        if fault is not None:
            raise fault from None
        raise


def _write_all(fd: int, data: bytes) -> None:
    """Every byte of ``data`` to ``fd`` (the one place file contents are written)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _flush(fd: int) -> None:
    """Make what was written to ``fd`` durable (the one place written files are flushed)."""
    os.fsync(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write_text`)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    with writing(path, temporary=(tmp,)):
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            _write_all(fd, data)
            if fsync:
                _flush(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)


def atomic_write_text(path: str | os.PathLike, text: str, *, fsync: bool = True) -> None:
    """Write ``text`` (UTF-8, ``\\n`` line ends) to ``path`` atomically.

    The temporary file's name is unique per process and call, so threads and processes writing the same path
    do not collide; it is removed when the write fails. ``fsync=False`` skips flushing to disk, for files whose
    loss on a power cut is harmless (a cache). A disk fault is an :class:`OutputWriteError` naming ``path``."""
    atomic_write_bytes(path, text.encode("utf-8"), fsync=fsync)


def append_text(path: str | os.PathLike, text: str) -> None:
    """Append ``text`` to ``path`` (a log: ``metrics.jsonl``); a disk fault is an :class:`OutputWriteError`."""
    with writing(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
        try:
            _write_all(fd, text.encode("utf-8"))
        finally:
            os.close(fd)


def publish_dir(target: str | os.PathLike, fill: Callable[[Path], None]) -> Path:
    """Build directory ``target`` atomically: ``fill(tmp)`` writes a fresh temporary directory beside it
    (``.NAME.tmp<pid>``), which is flushed and renamed into place (:func:`replace_dir`). On any failure the
    temporary directory is removed and ``target`` is as it was; a disk fault is an :class:`OutputWriteError`."""
    target = Path(target)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    with writing(target, temporary=(tmp,)):
        shutil.rmtree(tmp, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        fill(tmp)
        readable_like_the_rest(tmp)
        replace_dir(tmp, target)
    return target


def readable_like_the_rest(directory: str | os.PathLike) -> None:
    """Give every file under ``directory`` the mode a plain ``open()`` gives (0666 less the umask, so 0644 under the
    usual 022): some writers (safetensors' shard writer) create files 0600, which another user (a server, a
    colleague) then cannot read. Directories get 0777 less the umask."""
    umask = os.umask(0)
    os.umask(umask)
    for root, _, files in os.walk(directory):
        try:
            Path(root).chmod(0o777 & ~umask)  # tempfile.mkdtemp makes 0700 directories
        except OSError:
            pass
        for name in files:
            p = Path(root) / name
            try:
                if not p.is_symlink():
                    p.chmod(0o666 & ~umask)
            except OSError:
                pass


def fsync_tree(path: str | os.PathLike, *, files: bool = True) -> None:
    """Flush directory ``path`` to disk: each file directly in it (``files=True``), then the directory entry
    itself, so a rename that follows publishes complete files even after a power cut."""
    path = Path(path)
    if files:
        for p in path.iterdir():
            if p.is_file():
                fd = os.open(p, os.O_RDONLY)
                try:
                    _flush(fd)
                finally:
                    os.close(fd)
    fd = os.open(path, os.O_RDONLY)
    try:
        _flush(fd)
    finally:
        os.close(fd)


def replace_dir(tmp: str | os.PathLike, target: str | os.PathLike) -> None:
    """Put the finished directory ``tmp`` at ``target`` by renames: an existing ``target`` is moved aside first and
    removed after, so a crash leaves the old directory or the new one whole, never a mix."""
    tmp, target = Path(tmp), Path(target)
    fsync_tree(tmp)  # the files are on disk before a rename publishes them
    if target.exists():
        old = target.with_name(f".{target.name}.old{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        try:
            os.replace(tmp, target)
        except BaseException:
            os.replace(old, target)  # the old directory back where it was
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)


def json_safe(value: Any) -> Any:
    """A copy JSON can hold: NaN/inf → None, tuples → lists, numpy/torch scalars and arrays → Python, keys → str,
    anything else (a ``Path``, an enum) → ``str``."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        try:
            return json_safe(value.item())
        except Exception:
            pass
    if hasattr(value, "tolist") and callable(value.tolist):
        try:
            return json_safe(value.tolist())
        except Exception:
            pass
    return str(value)
