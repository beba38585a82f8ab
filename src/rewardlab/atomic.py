"""Atomic file writes: a temporary file in the same directory, then ``os.replace``.

A reader (or a crash) sees either the old file whole or the new one whole, never a half-written one.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def atomic_write_text(path: str | os.PathLike, text: str, *, fsync: bool = True) -> None:
    """Write ``text`` (UTF-8, ``\\n`` line ends) to ``path`` atomically.

    The temporary file's name is unique per process and call, so threads and processes writing the same path
    do not collide; it is removed when the write fails. ``fsync=False`` skips flushing to disk, for files whose
    loss on a power cut is harmless (a cache)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def fsync_tree(path: str | os.PathLike, *, files: bool = True) -> None:
    """Flush directory ``path`` to disk: each file directly in it (``files=True``), then the directory entry
    itself, so a rename that follows publishes complete files even after a power cut."""
    path = Path(path)
    if files:
        for p in path.iterdir():
            if p.is_file():
                fd = os.open(p, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
