"""Evaluation data as it comes: several files or a directory of them, identical answers as ties, bad rows skipped.

For *evaluation* (not training):

* ``--data`` may name several files, or a directory (walked recursively, sorted; a ``datasets.save_to_disk``
  directory stays one source). Each file is a subset: its records keep the file's name as their ``source``
  (unless rows carry their own), so the report's per-source table has one row per file with its 95% CI,
  under one combined summary.
* a comparison whose responses are identical is read as an exact tie, credited by ``--tie-policy``
  (training refuses such rows: :func:`rewardlab.data.fields.identical_responses_are_ties`);
* with ``skip_invalid`` (the evaluation default) a row that cannot be scored (an empty answer, a missing
  field) is skipped and reported, with counts per reason; without it the first bad row stops the run and the
  error says how its rows are numbered and how many other rows fail.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from rewardlab.core.errors import DataError, RewardlabError
from rewardlab.data.fields import ReadOptions, identical_responses_are_ties
from rewardlab.data.loading import load_comparisons
from rewardlab.data.local import data_files, is_saved_dataset, skipped_summary
from rewardlab.data.readers import looks_local
from rewardlab.data.record import Comparison


@dataclass
class EvalData:
    records: list[Comparison] = field(default_factory=list)
    skipped: list[DataError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def as_paths(data) -> list[str]:
    """``--data`` as a list: one path (a str, e.g. from YAML) or several."""
    if isinstance(data, (list, tuple)):
        return [str(d) for d in data if str(d)]
    return [str(data)] if data else []


def expand(paths: list[str]) -> list[str]:
    """Every data file named by ``paths``: files as given, plain directories walked (sorted)."""
    out: list[str] = []
    for p in paths:
        path = Path(os.path.expanduser(p))
        if path.is_dir() and not is_saved_dataset(path):
            out += [str(f) for f in data_files(path, p)]
        elif not path.exists() and looks_local(p):
            raise DataError("no such file or directory", path=p)
        else:
            out.append(p)
    return out


def load_eval_comparisons(
    data, format: str = "auto", skip_invalid: bool = True, limit: int | None = None, options: ReadOptions | None = None
) -> EvalData:
    """Read every file of ``data`` for evaluation (see the module docstring)."""
    paths = as_paths(data)
    if not paths:
        raise RewardlabError("give the data with --data PATH [PATH ...]")
    out = EvalData(files=expand(paths))
    with identical_responses_are_ties():
        for path in out.files:
            left = None if limit is None else limit - len(out.records)
            if left is not None and left <= 0:
                break
            loaded = load_comparisons(path, format=format, skip_invalid=skip_invalid, limit=left, options=options)
            out.records += loaded.records
            out.skipped += loaded.skipped
    ties = sum(1 for r in out.records if len(set(r.responses)) < len(r.responses))
    if ties:
        out.notes.append(
            f"{ties} record(s) have identical responses: scored as exact ties (credited by the tie policy)"
        )
    if len(out.files) > 1:
        out.notes.append(
            f"{len(out.files)} files, each a subset (per-source rows): " + ", ".join(Path(f).name for f in out.files)
        )
    if not out.records:
        raise DataError("no usable examples" + skipped_summary(out.skipped), path=", ".join(paths))
    return out
