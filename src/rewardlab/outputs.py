"""Output paths are claimed before any work starts: a finished run is never overwritten or mixed with another.

A non-empty output directory (or an existing output file) is refused unless the user says what they want:
``--resume`` (continue the run that is there) or ``--overwrite`` (replace it: the files the command writes are
removed first, so nothing of the old run mixes with the new one; other files are left alone).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from rewardlab.errors import RewardlabError


def _listing(path: Path, limit: int = 4) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())
    return ", ".join(names[:limit]) + (f", … ({len(names)} entries)" if len(names) > limit else "")


def claim_output_dir(
    path: str | os.PathLike,
    *,
    overwrite: bool,
    written: tuple[str, ...] = (),
    resume: bool | None = None,
    flag: str = "--output-dir",
) -> Path:
    """``path`` if it is missing or empty; with ``overwrite`` the entries matching ``written`` are removed first.

    ``resume`` is None for commands without ``--resume``; True accepts the directory as it is. Raises
    :class:`RewardlabError` naming the directory, a few of its entries and the choices."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RewardlabError(f"{flag} {path} is a file, not a directory")
    if resume or not path.exists() or not any(path.iterdir()):
        return path
    if not overwrite:
        choices = (
            "pass --resume to continue that run, --overwrite to replace it"
            if resume is not None
            else "pass --overwrite to replace it"
        )
        raise RewardlabError(f"{flag} {path} is not empty ({_listing(path)}): {choices}, or choose another {flag}")
    for pattern in written:  # names or glob patterns ("examples-*.jsonl")
        for target in sorted(path.glob(pattern)):
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink()
    return path


def claim_output_file(path: str | os.PathLike, *, overwrite: bool, flag: str = "--output") -> Path:
    """``path`` if no file is there yet, or ``overwrite``; a directory there is always an error."""
    path = Path(path)
    if path.is_dir():
        raise RewardlabError(f"{flag} {path} is a directory; give a file name")
    if path.exists() and not overwrite:
        raise RewardlabError(f"{flag} {path} exists: pass --overwrite to replace it, or choose another {flag}")
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
