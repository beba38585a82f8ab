"""Raw row sources: turn a file, a saved dataset directory or a hub dataset name into plain dict rows.

:func:`iter_rows` yields ``(location, row)`` pairs. ``location`` says where the row came from, in the
shape :class:`~rewardlab.core.errors.DataError` reports:

* ``{"path": str, "line": int}`` — 1-based physical line, for JSONL and CSV (the CSV header is line 1,
  and a CSV record spanning several lines is reported at its first line);
* ``{"path": str, "row": int}`` — 0-based row index, for JSON arrays, Parquet and Hugging Face datasets.

What ``source`` may be, checked in this order:

1. a directory written by ``datasets.Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``;
2. an existing file ending in ``.jsonl``, ``.jsonl.gz``, ``.json``, ``.json.gz``, ``.parquet``, ``.csv`` or
   ``.csv.gz``;
3. anything that *looks* local but does not exist — a clear "not found" error at once, never a hub lookup
   (:func:`looks_local`: it ends in a file extension, starts with ``.``, ``/`` or ``~``, has more than one
   ``/``, or its first path component is an existing directory; ``name.ext`` without a ``/``);
4. otherwise a Hugging Face hub dataset name, read with ``datasets.load_dataset``.

A file that cannot be read as a whole (a truncated or non-gzip ``.gz``, a JSON document nested too deeply,
invalid UTF-8 in a JSON document, a broken Parquet file) raises :class:`DataError` naming the line or row
reached; an empty file is an error, not zero records. A string holding a lone UTF-16 surrogate (``"\\ud800"``
in JSON), which no UTF-8 tokenizer or writer accepts, is a row-level error.

Nothing here knows about preference formats; :mod:`rewardlab.data.formats` turns rows into records.

CSV carries no types, so every cell is a string except in the numeric columns ``label``, ``margin``,
``weight``, ``preference_strength`` and the HelpSteer2 attributes, which are converted to ``int``/``float``
when they parse as numbers (an empty cell there is missing). A CSV header naming a column twice, or a JSON
object giving a key twice, is an error (a reader never keeps one of them silently).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
import zlib
from typing import Any, Callable, Iterator

from rewardlab.core.errors import DataError

Location = dict  # {"path": str, "line": int} or {"path": str, "row": int}
Row = dict
ErrorHandler = Callable[[DataError], None]


def _open_binary(path: str):
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


# what a broken compressed or truncated stream raises while it is read
_STREAM_ERRORS = (OSError, EOFError, zlib.error)


def _lines(path: str) -> Iterator[tuple[int, bytes]]:
    """``(line number, raw line)`` of a (gzipped) text file; a broken stream is a :class:`DataError` saying how
    many lines were read."""
    line_no = 0
    try:
        with _open_binary(path) as f:
            for raw in f:
                line_no += 1
                yield line_no, raw
    except _STREAM_ERRORS as e:
        raise DataError(f"cannot read the file after {line_no} line(s): {e}", path=path, line=line_no + 1) from None


def _lone_surrogate(value: Any) -> str | None:
    """The first string inside ``value`` that holds a lone surrogate (not encodable as UTF-8), else None."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    """A JSON object's dict; a key given twice is an error (``json`` would keep the last one silently)."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise DuplicateKey(f"the key {twice!r} appears twice in one object (which one is meant?)")
    return out


def _decode_json(text: str):
    """``json.loads`` with the failures it raises as other errors turned into ValueError messages (a key given
    twice in an object is one: :func:`_unique_keys`)."""
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if _SURROGATE_ESCAPE.search(text) and _lone_surrogate(value) is not None:
        raise ValueError("a string holds a lone UTF-16 surrogate (\\ud800-\\udfff escape), which is not text")
    return value


def _report(error: DataError, on_error: ErrorHandler | None) -> None:
    """Raise a row-level error, or hand it to ``on_error`` so reading can go on."""
    if on_error is None:
        raise error
    on_error(error)


def _read_jsonl(path: str, on_error: ErrorHandler | None) -> Iterator[tuple[Location, Row]]:
    for line_no, raw in _lines(path):
        try:
            text = raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
        except UnicodeDecodeError as e:
            _report(DataError(f"not valid UTF-8 ({e.reason})", path=path, line=line_no), on_error)
            continue
        if not text.strip():
            continue
        try:
            row = _decode_json(text)
        except json.JSONDecodeError as e:
            _report(DataError(f"invalid JSON: {e.msg} (column {e.colno})", path=path, line=line_no), on_error)
            continue
        except ValueError as e:
            _report(DataError(str(e), path=path, line=line_no), on_error)
            continue
        if not isinstance(row, dict):
            _report(DataError(f"expected a JSON object, got {type(row).__name__}", path=path, line=line_no), on_error)
            continue
        yield {"path": path, "line": line_no}, row


def _json_rows(document: Any, path: str) -> list:
    """The list of rows in a JSON document: the document itself, or its one list-valued entry."""
    if isinstance(document, list):
        return document
    if isinstance(document, dict):
        lists = [value for value in document.values() if isinstance(value, list)]
        if len(lists) == 1:
            return lists[0]
    raise DataError(
        'expected a JSON list of objects, or an object with a single list value such as {"data": [...]}',
        path=path,
        line=1,
    )


def _read_json(path: str, on_error: ErrorHandler | None) -> Iterator[tuple[Location, Row]]:
    data = b"".join(raw for _, raw in _lines(path))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"not valid UTF-8 ({e.reason})", path=path, line=data.count(b"\n", 0, e.start) + 1) from None
    try:
        document = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as e:
        raise DataError(f"invalid JSON: {e.msg} (column {e.colno})", path=path, line=e.lineno) from None
    except DuplicateKey as e:
        raise DataError(str(e), path=path, line=1) from None
    except RecursionError:
        raise DataError("JSON nested too deeply", path=path, line=1) from None
    for index, row in enumerate(_json_rows(document, path)):
        if not isinstance(row, dict):
            _report(DataError(f"expected a JSON object, got {type(row).__name__}", path=path, row=index), on_error)
            continue
        if _SURROGATE_ESCAPE.search(text) and _lone_surrogate(row) is not None:
            _report(
                DataError(
                    "a string holds a lone UTF-16 surrogate (\\ud800-\\udfff escape), which is not text",
                    path=path,
                    row=index,
                ),
                on_error,
            )
            continue
        yield {"path": path, "row": index}, row


def _read_parquet(path: str, on_error: ErrorHandler | None) -> Iterator[tuple[Location, Row]]:
    import pyarrow as pa  # lazy: pyarrow: only Parquet files need it
    import pyarrow.parquet as pq  # lazy: pyarrow: only Parquet files need it

    index = 0
    try:
        parquet = pq.ParquetFile(path)
        names = parquet.schema_arrow.names
        twice = sorted({c for c in names if names.count(c) > 1})
        if twice:
            raise DataError(f"the column {twice[0]!r} appears more than once", path=path, field=twice[0])
        batches = parquet.iter_batches()
        for batch in batches:
            for row in batch.to_pylist():
                yield {"path": path, "row": index}, row
                index += 1
    except (pa.ArrowException, OSError, ValueError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read Parquet file after {index} row(s): {e}", path=path, row=index) from None


_CSV_NUMERIC: dict[str, type] = {
    "label": int,
    "margin": float,
    "weight": float,
    "preference_strength": int,
    # HelpSteer2 attributes
    "helpfulness": float,
    "correctness": float,
    "coherence": float,
    "complexity": float,
    "verbosity": float,
}


def _csv_cell(column: str, value: str | None) -> Any:
    """Convert the cells of the known numeric columns; everything else stays text."""
    convert = _CSV_NUMERIC.get(column)
    if convert is None or value is None:
        return value
    if not value.strip():
        return None
    try:
        return convert(value)
    except ValueError:
        return value  # left as text so the format parser reports the wrong type


def _read_csv(path: str, on_error: ErrorHandler | None) -> Iterator[tuple[Location, Row]]:
    """Rows keyed by the header; a row's line is the physical line where its record starts.

    (``csv.reader.line_num`` counts lines read so far, so a record's first line is the previous count
    plus one; that is its own number for one-line records and stays right for quoted multi-line cells.)
    """
    binary = _open_binary(path)
    with io.TextIOWrapper(binary, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f, strict=True)
        start = 1
        try:
            header = next(reader, None) or []
            twice = sorted({c for c in header if header.count(c) > 1})
            if twice:
                raise DataError(
                    f"the header names the column {twice[0]!r} more than once (which one is meant?)",
                    path=path,
                    line=1,
                    field=twice[0],
                )
            start = reader.line_num + 1
            for cells in reader:
                if cells and len(cells) != len(header):
                    _report(
                        DataError(
                            f"{len(cells)} fields, but the header has {len(header)} (an unquoted comma "
                            "or a missing cell?)",
                            path=path,
                            line=start,
                        ),
                        on_error,
                    )
                elif cells:  # blank lines come back as [] and are skipped
                    yield {"path": path, "line": start}, {c: _csv_cell(c, v) for c, v in zip(header, cells)}
                start = reader.line_num + 1
        except (csv.Error, UnicodeDecodeError, *_STREAM_ERRORS) as e:
            raise DataError(f"cannot read CSV: {e}", path=path, line=max(start, reader.line_num)) from None


FILE_READERS: dict[str, Callable[[str, ErrorHandler | None], Iterator[tuple[Location, Row]]]] = {
    ".jsonl": _read_jsonl,
    ".jsonl.gz": _read_jsonl,
    ".json": _read_json,
    ".json.gz": _read_json,
    ".parquet": _read_parquet,
    ".csv": _read_csv,
    ".csv.gz": _read_csv,
}


def _file_reader(path: str):
    for suffix, reader in FILE_READERS.items():
        if path.lower().endswith(suffix):
            return reader
    raise DataError(
        f"unsupported file type; accepted: {', '.join(FILE_READERS)} or a directory saved with datasets' save_to_disk",
        path=path,
    )


def looks_local(source: str) -> bool:
    """True when ``source`` names a local path (existing, or shaped like one) rather than a hub dataset."""
    first = source.replace("\\", "/").split("/")[0]
    return (
        os.path.exists(source)
        or source.startswith((".", "/", "~"))
        or source.lower().endswith(tuple(FILE_READERS))
        or ("/" not in source and re.search(r"\.[A-Za-z][A-Za-z0-9]{0,7}$", source) is not None)  # data.txt
        or source.count("/") > 1
        or "\\" in source  # a hub id is at most org/name
        or ("/" in source and os.path.isdir(first))
    )  # data/train where data/ is here


def _pick_split(dataset_dict, split: str | None, path: str):
    names = list(dataset_dict.keys())
    if split is None:
        split = "train" if "train" in names or len(names) != 1 else names[0]
    if split not in names:
        raise DataError(f"no split '{split}'; available splits: {', '.join(names) or 'none'}", path=path)
    return dataset_dict[split]


def _iter_dataset(dataset, path: str) -> Iterator[tuple[Location, Row]]:
    for index, row in enumerate(dataset):
        yield {"path": path, "row": index}, dict(row)


def _read_saved_dataset(path: str, split: str | None) -> Iterator[tuple[Location, Row]]:
    import datasets  # lazy: datasets takes ~1 s to import; only hub and saved datasets need it

    try:
        loaded = datasets.load_from_disk(path)
    except FileNotFoundError as e:
        raise DataError("directory is not a dataset saved with datasets' save_to_disk", path=path) from e
    if isinstance(loaded, datasets.DatasetDict):
        loaded = _pick_split(loaded, split, path)
    yield from _iter_dataset(loaded, path)


def _read_hub_dataset(name: str, split: str | None) -> Iterator[tuple[Location, Row]]:
    import datasets  # lazy: datasets takes ~1 s to import; only hub and saved datasets need it

    try:
        dataset = datasets.load_dataset(name, split=split or "train")
    except Exception as e:  # the hub raises many error types; the user needs the name and the reason
        raise DataError(f"cannot load Hugging Face dataset: {e}", path=name) from e
    yield from _iter_dataset(dataset, name)


def iter_rows(
    source: str, split: str | None = None, *, on_error: ErrorHandler | None = None
) -> Iterator[tuple[Location, Row]]:
    """Yield ``(location, row)`` for every row of ``source`` (see the module docstring).

    ``split`` picks the split of a saved ``DatasetDict`` (default ``"train"``, or the only split) or of a
    hub dataset (default ``"train"``). Row-level problems (invalid JSON on a line, a line that is not an
    object) raise :class:`DataError`, unless ``on_error`` is given: then they are passed to it and the
    row is skipped. Problems with the source as a whole always raise.
    """
    source = str(source)
    n_reported = [0]

    def counted(error: DataError) -> None:
        n_reported[0] += 1
        on_error(error)

    if os.path.isdir(source):
        rows = _read_saved_dataset(source, split)
    elif os.path.isfile(source):
        rows = _file_reader(source)(source, counted if on_error is not None else None)
    elif looks_local(source):
        raise DataError("no such file or directory", path=source)
    else:
        rows = _read_hub_dataset(source, split)
    n = 0
    for item in rows:
        n += 1
        yield item
    if n == 0 and not n_reported[0]:
        raise DataError("no rows: the input is empty", path=source)
