"""Load preference data into :class:`Comparison` records, fingerprint them, split them, write them.

:func:`load_comparisons` reads rows with :func:`~rewardlab.data.readers.iter_rows` and parses each
with a parser from :data:`~rewardlab.data.formats.FORMATS`. With ``format="auto"`` the format is
decided per file: every row's columns are recognised and a row of another format than the first parsed
row's is an error naming its line (:class:`FileFormat`). In a format of
:data:`~rewardlab.data.formats.GROUPED` (HelpSteer2) a row is one response; the rows of one prompt,
wherever they are in the file, become one record, in the order of each prompt's first row.

:func:`load_local_records` is the row loader of the benchmarks: a local copy in a benchmark's published schema,
each row parsed by the benchmark's own function; both loaders report a bad row the same way
(:func:`first_error_counted`).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from rewardlab.core.errors import DataError
from rewardlab.data.fields import ReadOptions, data_error, no_null_text
from rewardlab.data.formats import FORMATS, GROUPED, detect_format
from rewardlab.data.local import iter_local_rows, skipped_summary
from rewardlab.data.readers import iter_rows
from rewardlab.data.record import Comparison


@dataclass
class LoadResult:
    """What :func:`load_comparisons` read.

    ``format`` is the format used; it stays ``"auto"`` when no row could be parsed.
    ``skipped`` holds one :class:`DataError` per row left out (only with ``skip_invalid=True``).
    """

    records: list[Comparison] = field(default_factory=list)
    skipped: list[DataError] = field(default_factory=list)
    source: str = ""
    format: str = "auto"


@dataclass
class FileFormat:
    """The format of one source, decided per file: ``requested`` (a name, or ``"auto"``); with auto every row's
    columns are recognised (:func:`detect_format`) and must name the format the first parsed row named
    (``decided``, at ``where``): a row of another format is an error naming its line, never read as this one."""

    requested: str
    decided: str | None = None
    where: str = ""

    def parse(self, row: dict, location: dict, options: ReadOptions | None) -> Comparison:
        no_null_text(row, location)
        if self.requested != "auto":
            return FORMATS[self.requested](row, location, options)
        try:
            name = detect_format(row, location)
        except DataError:
            if self.decided is None:
                raise
            name = self.decided  # columns no format has: the file's parser names the missing or bad field
        if self.decided is not None and name != self.decided:
            raise data_error(
                location,
                None,
                f"this row's columns {sorted(row)} are the {name!r} format, but the file's rows are {self.decided!r} "
                f"(from {self.where}); a file holds one format (--format {self.decided} reads every row as it)",
            )
        record = FORMATS[name](row, location, options)
        if self.decided is None:
            self.decided = name
            self.where = f"line {location['line']}" if "line" in location else f"row {location.get('row')}"
        return record

    @property
    def name(self) -> str:
        return self.decided or self.requested


def load_comparisons(
    source: str,
    format: str = "auto",
    split: str | None = None,
    skip_invalid: bool = False,
    limit: int | None = None,
    options: ReadOptions | None = None,
) -> LoadResult:
    if skip_invalid:
        return _load_comparisons(source, format, split, True, limit, options)
    return first_error_counted(
        lambda: _load_comparisons(source, format, split, False, limit, options),
        lambda: len(_load_comparisons(source, format, split, True, None, options).skipped),
    )


def first_error_counted(load: Callable[[], Any], count_bad_rows: Callable[[], int]) -> Any:
    """``load()``, which stops at the first bad row; when a row fails, its :class:`DataError` comes back saying
    how many other rows fail too (:func:`with_failure_count`), counted by ``count_bad_rows()`` (a second read that
    skips them). An error of no row (a missing file), or a source with no usable row at all (the count raising
    too), comes back as it was. The one rule of the comparison loader and the benchmarks' (:func:`load_local_records`)."""
    try:
        return load()
    except DataError as error:
        if error.line is None and error.row is None:
            raise
        try:
            others = count_bad_rows() - 1
        except DataError:  # no usable row at all
            raise error from None
        raise with_failure_count(error, max(others, 0)) from None


def with_failure_count(error: DataError, others: int) -> DataError:
    """``error`` saying how its row is numbered and how many other rows of the source fail too."""
    numbering = "line numbers are 1-based" if error.line is not None else "row numbers are 0-based"
    rest = (
        (
            f"{others} other {'rows fail' if others != 1 else 'row fails'} too; --skip-invalid leaves them out and reports them"
        )
        if others
        else "no other row fails"
    )
    return DataError(
        f"{error.reason} ({numbering}; {rest})", path=error.path, line=error.line, row=error.row, field=error.field
    )


def _load_comparisons(
    source: str,
    format: str = "auto",
    split: str | None = None,
    skip_invalid: bool = False,
    limit: int | None = None,
    options: ReadOptions | None = None,
) -> LoadResult:
    """Read ``source`` (a file, a saved dataset directory or a hub name) into records.

    ``format`` is a name in :data:`FORMATS` or ``"auto"``. With ``skip_invalid=False`` the first bad
    row raises :class:`DataError`; with ``True`` bad rows (invalid JSON lines included) are collected
    in ``LoadResult.skipped`` and loading goes on (for a grouped format, a bad group is skipped whole).
    ``limit`` caps the number of records loaded. ``options`` (:class:`ReadOptions`) say how several
    ratings become one score.
    """
    if format != "auto" and format not in FORMATS:
        raise DataError(f"unknown format {format!r}; accepted: auto, {', '.join(FORMATS)}", path=str(source))
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    result = LoadResult(source=str(source), format=format)
    if limit == 0:
        return result
    on_error = result.skipped.append if skip_invalid else None
    groups: dict = {}
    file_format = FileFormat(format)
    for location, row in iter_rows(result.source, split, on_error=on_error):
        try:
            record = file_format.parse(row, location, options)
            result.format = file_format.name
        except DataError as error:
            if not skip_invalid:
                raise
            result.skipped.append(error)
            continue
        if result.format in GROUPED:
            groups.setdefault(GROUPED[result.format][0](record), []).append(record)
            continue
        result.records.append(record)
        if limit is not None and len(result.records) >= limit:
            break
    for rows in groups.values():
        if limit is not None and len(result.records) >= limit:
            break
        try:
            result.records.append(GROUPED[result.format][1](rows))
        except DataError as error:
            if not skip_invalid:
                raise
            result.skipped.append(error)
    return result


@dataclass
class LocalRecords:
    """What :func:`load_local_records` read: the records kept, one :class:`DataError` per row left out (only with
    ``skip_invalid``) and the count of records ``keep`` excluded."""

    records: list = field(default_factory=list)
    skipped: list[DataError] = field(default_factory=list)
    excluded: int = 0


def load_local_records(
    source: str,
    parse: Callable[[dict, dict, str], Any],
    *,
    limit: int | None = None,
    skip_invalid: bool = False,
    keep: Callable[[Any], bool] | None = None,
) -> LocalRecords:
    """Read the local file or directory ``source`` (:func:`rewardlab.data.local.iter_local_rows`) and turn each row
    into a record with ``parse(row, location, name)`` (a benchmark's parser, checking fields with
    :mod:`rewardlab.data.fields`). A bad row raises :class:`DataError` naming file, line/row and field and how many
    other rows fail (:func:`first_error_counted`), or with ``skip_invalid`` is collected in ``skipped``. ``keep``
    filters parsed records (counted in ``excluded``); ``limit`` caps the records kept. No usable record at all is
    an error saying why (:func:`rewardlab.data.local.skipped_summary`)."""
    if skip_invalid:
        return _load_local_records(source, parse, limit, True, keep)
    return first_error_counted(
        lambda: _load_local_records(source, parse, limit, False, keep),
        lambda: len(_load_local_records(source, parse, None, True, keep).skipped),
    )


def _load_local_records(source, parse, limit, skip_invalid, keep) -> LocalRecords:
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    data = LocalRecords()
    if limit == 0:
        return data
    for location, row, name in iter_local_rows(source, on_error=data.skipped.append if skip_invalid else None):
        try:
            record = parse(row, location, name)
        except DataError as error:
            if not skip_invalid:
                raise
            data.skipped.append(error)
            continue
        if keep is not None and not keep(record):
            data.excluded += 1
            continue
        data.records.append(record)
        if limit is not None and len(data.records) >= limit:
            break
    if not data.records:
        raise DataError("no usable examples" + skipped_summary(data.skipped, data.excluded), path=str(source))
    return data


def _canonical_json(record: Comparison) -> str:
    return json.dumps(record.to_json(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def fingerprint(records: Iterable[Comparison]) -> str:
    """sha256 hex of the canonical JSON of every record's ``to_json()``, in order."""
    digest = hashlib.sha256()
    for record in records:
        digest.update(_canonical_json(record).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def _prompt_fraction(prompt_key: str, seed: int) -> float:
    """A deterministic number in [0, 1) for one prompt and seed."""
    digest = hashlib.sha256(f"{seed}\0{prompt_key}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_by_prompt(
    records: Iterable[Comparison], eval_fraction: float, seed: int = 0
) -> tuple[list[Comparison], list[Comparison]]:
    """``(train, eval)``: each prompt goes wholly to one side, chosen by sha256 of (seed, prompt).

    About ``eval_fraction`` of the distinct prompts go to eval; both sides keep the input order.
    """
    if not 0.0 <= eval_fraction <= 1.0:
        raise ValueError(f"eval_fraction must be in [0, 1], got {eval_fraction}")
    train: list[Comparison] = []
    evaluation: list[Comparison] = []
    for record in records:
        side = evaluation if _prompt_fraction(record.prompt_key(), seed) < eval_fraction else train
        side.append(record)
    return train, evaluation


def write_jsonl(records: Iterable[Comparison], path: str) -> int:
    """Write records in the native ``rewardlab`` format (gzip if ``path`` ends in ``.gz``); return the count."""
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    opener = gzip.open if str(path).endswith(".gz") else open
    count = 0
    with opener(path, "wt", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
            count += 1
    return count
