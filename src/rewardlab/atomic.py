"""Atomic file and directory writes (a temporary name in the same directory, then ``os.replace``), and the one
JSON cleaner every report and summary goes through.

A reader (or a crash) sees either the old file whole or the new one whole, never a half-written one.
"""

from __future__ import annotations

import math
import os
import shutil
import uuid
from pathlib import Path
from typing import Any


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
                    os.fsync(fd)
                finally:
                    os.close(fd)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
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
        os.replace(tmp, target)
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
