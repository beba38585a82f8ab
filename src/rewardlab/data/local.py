"""Local copies of data sets: which files a path names, their rows with a location, and how skipped rows are told.

One library for the comparison loaders (:mod:`rewardlab.data.evalsets`) and the benchmarks
(:mod:`rewardlab.benchmarks.base`): a file is read by :func:`rewardlab.data.readers.iter_rows`; a
``datasets.save_to_disk`` directory is one data set; any other directory is walked recursively in sorted order for
files with a :data:`DATA_SUFFIXES` suffix.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator

from rewardlab.core.errors import DataError
from rewardlab.data.readers import iter_rows

DATA_SUFFIXES = (".jsonl.gz", ".json.gz", ".jsonl", ".json", ".parquet", ".csv")


def is_saved_dataset(path: Path) -> bool:
    """A ``datasets.save_to_disk`` directory (read as one data set, not walked)."""
    return any((path / name).exists() for name in ("dataset_info.json", "dataset_dict.json", "state.json"))


def file_stem(path: Path) -> str:
    """The file's name without its data suffix (``a.jsonl.gz`` → ``a``)."""
    name = path.name
    for suffix in DATA_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def data_files(path: Path, source: str) -> list[Path]:
    """The data files under a plain directory, sorted; none is an error naming ``source`` and the suffixes."""
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(DATA_SUFFIXES))
    if not files:
        raise DataError(f"directory holds no data files ({', '.join(DATA_SUFFIXES)})", path=str(source))
    return files


def iter_local_rows(
    source: str, on_error: Callable[[DataError], None] | None = None
) -> Iterator[tuple[dict, dict, str]]:
    """``(location, row, name)`` for every row of a local file or directory.

    A file (any type :func:`rewardlab.data.readers.iter_rows` reads) gives ``name`` = its base name
    without the extension. A ``datasets.save_to_disk`` directory is read as one dataset (name = the
    directory's name). Any other directory is walked recursively in sorted order, and each data file
    gives ``name`` = its path relative to the directory without the extension (e.g.
    ``Pairwise_set/Harmlessness/S1``). Benchmarks never fall back to a hub: a missing path is an error.
    """
    path = Path(os.path.expanduser(str(source)))
    if not path.exists():
        raise DataError("no such file or directory (benchmarks read a local copy of the data)", path=str(source))
    if path.is_dir() and not is_saved_dataset(path):
        for file in data_files(path, str(source)):
            name = file_stem(file)
            rel = file.relative_to(path).with_name(name).as_posix()
            for location, row in iter_rows(str(file), on_error=on_error):
                yield location, row, rel
        return
    name = path.name if path.is_dir() else file_stem(path)
    for location, row in iter_rows(str(path), on_error=on_error):
        yield location, row, name


SHOWN_REASONS = 3  # skipped_summary names this many reasons, then says how many more there are


def skipped_summary(skipped: list, excluded: int = 0) -> str:
    """``": 3 rows skipped as invalid (2× missing; 1× empty ...), first: FILE, line 2 ..."`` ('' when none). The
    :data:`SHOWN_REASONS` most frequent reasons are named; the rest as ``"… and N more reasons (M rows)"``."""
    parts = []
    if skipped:
        reasons: dict[str, int] = {}
        for e in skipped:
            key = getattr(e, "reason", str(e))
            reasons[key] = reasons.get(key, 0) + 1
        ranked = sorted(reasons.items(), key=lambda kv: -kv[1])
        why = "; ".join(f"{n}× {r}" for r, n in ranked[:SHOWN_REASONS])
        hidden = ranked[SHOWN_REASONS:]
        if hidden:  # never let the shown reasons pass for all of them
            rows = sum(n for _, n in hidden)
            why += (
                f"; … and {len(hidden)} more reason{'s' if len(hidden) != 1 else ''} "
                f"({rows} row{'s' if rows != 1 else ''})"
            )
        parts.append(
            f"{len(skipped)} row{'s' if len(skipped) != 1 else ''} skipped as invalid ({why}); first: {skipped[0]}"
        )
    if excluded:
        parts.append(f"{excluded} left out by the benchmark's filter")
    return (": " + "; ".join(parts)) if parts else ""
