"""Tests for the data readers, format parsers, loading, fingerprinting and prompt splits.

Every file is written into ``tmp_path``; nothing touches the network (the hub path is monkeypatched).
"""

from __future__ import annotations

import csv
import gzip
import json
import os
from pathlib import Path
from typing import Callable

import pytest

from rewardlab.core.errors import DataError
from rewardlab.data import FORMATS, Comparison, LoadResult, fingerprint, load_comparisons, split_by_prompt, write_jsonl
from rewardlab.data.formats import detect_format
from rewardlab.data.readers import iter_rows

HH_FILE = "/work/shared/data/hh-rlhf-harmless-base-test.jsonl.gz"


# --- file writers ----------------------------------------------------------------------------------------


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    text = "".join(json.dumps(row) + "\n" for row in rows)
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")


def _write_json(path: Path, document) -> None:
    text = json.dumps(document)
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")


def _write_parquet(path: Path, rows: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _write_dataset(path: Path, rows: list[dict]) -> None:
    import datasets

    datasets.Dataset.from_list(rows).save_to_disk(str(path))


def _csv_line(i: int, rows: list[dict]) -> int:
    """The physical line where CSV record ``i`` starts: after the header and the earlier records' lines."""
    return 2 + sum(1 + sum(str(v).count("\n") for v in row.values() if v is not None) for row in rows[:i])


def _write_dataset_dict(path: Path, rows: list[dict]) -> None:
    import datasets

    datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(rows), "test": datasets.Dataset.from_list(rows[:1])}
    ).save_to_disk(str(path))


# kind -> (file name, writer, position(i, rows) of row i in its location, text-only?)
FILE_KINDS: dict[str, tuple[str, Callable[[Path, list[dict]], None], Callable[[int, list], int], bool]] = {
    "jsonl": ("pairs.jsonl", _write_jsonl, lambda i, rows: i + 1, False),
    "jsonl.gz": ("pairs.jsonl.gz", _write_jsonl, lambda i, rows: i + 1, False),
    "json": ("pairs.json", _write_json, lambda i, rows: i, False),
    "json-wrapped": (
        "pairs.json",
        lambda p, rows: _write_json(p, {"version": 1, "data": rows}),
        lambda i, rows: i,
        False,
    ),
    "json.gz": ("pairs.json.gz", _write_json, lambda i, rows: i, False),
    "parquet": ("pairs.parquet", _write_parquet, lambda i, rows: i, False),
    "csv": ("pairs.csv", _write_csv, _csv_line, True),  # the header is line 1
    "hf-dataset": ("pairs_ds", _write_dataset, lambda i, rows: i, False),
    "hf-datasetdict": ("pairs_dd", _write_dataset_dict, lambda i, rows: i, False),
}


def write_rows(tmp_path: Path, kind: str, rows: list[dict]) -> str:
    name, writer, _, _ = FILE_KINDS[kind]
    path = tmp_path / name
    writer(path, rows)
    return str(path)


def write_lines(tmp_path: Path, lines: list, name: str = "bad.jsonl") -> str:
    """A JSONL file from rows (dicts, dumped) and raw strings (written as they are)."""
    path = tmp_path / name
    path.write_text("".join((ln if isinstance(ln, str) else json.dumps(ln)) + "\n" for ln in lines), encoding="utf-8")
    return str(path)


# --- every format, every file type ----------------------------------------------------------------------


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


def system(text: str) -> dict:
    return {"role": "system", "content": text}


HH_PROMPT = "\n\nHuman: Hi there\n\nAssistant: Hello! How can I help?\n\nHuman: Tell me a joke."

# name -> (rows, text-only?, expected(source, positions) -> records, format name)
FORMAT_CASES = {
    "rewardlab-text": (
        [
            {
                "prompt": "Rank these",
                "responses": ["a", "b", "c"],
                "chosen": 1,
                "ranking": [1, 0, 2],
                "margin": 0.5,
                "scores": [0.25, 0.75, 0.5],
                "source": "mine",
                "id": "n1",
            },
            {
                "prompt": "Pick one",
                "responses": ["x", "y"],
                "chosen": 0,
                "ranking": None,
                "margin": None,
                "scores": None,
                "source": "",
                "id": "",
            },
        ],
        False,
        lambda src, pos: [
            Comparison(
                "Rank these",
                ("a", "b", "c"),
                1,
                ranking=(1, 0, 2),
                margin=0.5,
                scores=(0.25, 0.75, 0.5),
                source="mine",
                id="n1",
            ),
            Comparison("Pick one", ("x", "y"), 0, source=src, id=f"{src}:{pos[1]}"),
        ],
        "rewardlab",
    ),
    "rewardlab-messages": (
        [
            {"prompt": [system("Be brief."), user("Hi")], "responses": ["Hello", "Go away"], "chosen": 0},
            {"prompt": [user("Bye")], "responses": ["Goodbye", "What?"], "chosen": 1},
        ],
        False,
        lambda src, pos: [
            Comparison((system("Be brief."), user("Hi")), ("Hello", "Go away"), 0, source=src, id=f"{src}:{pos[0]}"),
            Comparison((user("Bye"),), ("Goodbye", "What?"), 1, source=src, id=f"{src}:{pos[1]}"),
        ],
        "rewardlab",
    ),
    "trl-text-explicit": (
        [
            {"prompt": "What is 2+2?", "chosen": "4", "rejected": "5", "margin": 1.5, "id": "a"},
            {"prompt": "Capital of France?", "chosen": "Paris", "rejected": "Lyon", "margin": 0.0, "id": "b"},
        ],
        True,
        lambda src, pos: [
            Comparison("What is 2+2?", ("4", "5"), 0, margin=1.5, source=src, id="a"),
            Comparison("Capital of France?", ("Paris", "Lyon"), 0, margin=0.0, source=src, id="b"),
        ],
        "trl",
    ),
    "trl-text-implicit": (
        [
            # texts that share no word: no prompt (texts sharing a prompt are refused: tests/test_readers_strict.py)
            {"chosen": "Hello!", "rejected": "go away"},
            {"chosen": "4", "rejected": "5"},
        ],
        True,
        lambda src, pos: [
            Comparison("", ("Hello!", "go away"), 0, source=src, id=f"{src}:{pos[0]}"),
            Comparison("", ("4", "5"), 0, source=src, id=f"{src}:{pos[1]}"),
        ],
        "trl",
    ),
    "trl-conversational-explicit": (
        [
            {
                "prompt": [system("Be kind."), user("Hi")],
                "chosen": [assistant("Hello!")],
                "rejected": [assistant("Go away.")],
            },
            {"prompt": [user("2+2?")], "chosen": [assistant("4")], "rejected": [assistant("5")]},
        ],
        False,
        lambda src, pos: [
            Comparison((system("Be kind."), user("Hi")), ("Hello!", "Go away."), 0, source=src, id=f"{src}:{pos[0]}"),
            Comparison((user("2+2?"),), ("4", "5"), 0, source=src, id=f"{src}:{pos[1]}"),
        ],
        "trl",
    ),
    "trl-conversational-implicit": (
        [
            {
                "chosen": [user("Hi"), assistant("Hello"), user("Joke?"), assistant("Knock knock.")],
                "rejected": [user("Hi"), assistant("Hello"), user("Joke?"), assistant("No.")],
                "margin": 2.0,
            },
            {"chosen": [user("2+2?"), assistant("4")], "rejected": [user("2+2?"), assistant("5")], "margin": 1.0},
        ],
        False,
        lambda src, pos: [
            Comparison(
                (user("Hi"), assistant("Hello"), user("Joke?")),
                ("Knock knock.", "No."),
                0,
                margin=2.0,
                source=src,
                id=f"{src}:{pos[0]}",
            ),
            Comparison((user("2+2?"),), ("4", "5"), 0, margin=1.0, source=src, id=f"{src}:{pos[1]}"),
        ],
        "trl",
    ),
    "hh": (
        [
            {
                "chosen": HH_PROMPT + "\n\nAssistant:  Why did the chicken cross the road? ",
                "rejected": HH_PROMPT + "\n\nAssistant: No.",
            },
            {"chosen": "\n\nHuman: 2+2?\n\nAssistant: 4", "rejected": "\n\nHuman: 2+2?\n\nAssistant: 5"},
        ],
        True,
        lambda src, pos: [
            Comparison(
                (user("Hi there"), assistant("Hello! How can I help?"), user("Tell me a joke.")),
                ("Why did the chicken cross the road?", "No."),
                0,
                source=src,
                id=f"{src}:{pos[0]}",
            ),
            Comparison((user("2+2?"),), ("4", "5"), 0, source=src, id=f"{src}:{pos[1]}"),
        ],
        "hh",
    ),
    "pairwise": (
        [
            {"input": "Translate 'chat' to English", "output_1": "chat", "output_2": "cat", "label": 2},
            {"input": "Say hi", "output_1": "hi", "output_2": "bye", "label": 1, "id": "p2"},
        ],
        True,
        lambda src, pos: [
            Comparison("Translate 'chat' to English", ("chat", "cat"), 1, source=src, id=f"{src}:{pos[0]}"),
            Comparison("Say hi", ("hi", "bye"), 0, source=src, id="p2"),
        ],
        "pairwise",
    ),
}


def _format_file_params():
    for case, (_, text_only, _, _) in FORMAT_CASES.items():
        for kind, (_, _, _, kind_text_only) in FILE_KINDS.items():
            if kind_text_only and not text_only:
                continue
            yield pytest.param(case, kind, id=f"{case}-{kind}")


@pytest.mark.parametrize("case,kind", list(_format_file_params()))
def test_every_format_and_file_type_parses_exactly(tmp_path, case, kind):
    rows, _, expected, format_name = FORMAT_CASES[case]
    if kind in ("csv", "parquet", "hf-dataset", "hf-datasetdict"):
        # tabular writers take their columns from the first row: give every row every column (None/empty)
        columns = {column for row in rows for column in row}
        rows = [{column: row.get(column) for column in columns} for row in rows]
    source = write_rows(tmp_path, kind, rows)
    position = FILE_KINDS[kind][2]
    result = load_comparisons(source)
    assert result.format == format_name
    assert result.skipped == []
    assert result.source == source
    want = expected(os.path.basename(source), [position(i, rows) for i in range(len(rows))])
    assert result.records == want
    # messages are plain dicts holding only role and content, in a tuple
    for record in result.records:
        if not isinstance(record.prompt, str):
            assert isinstance(record.prompt, tuple)
            assert all(type(m) is dict and set(m) == {"role", "content"} for m in record.prompt)
    # the explicit format name gives the same records
    assert load_comparisons(source, format=format_name).records == want


def test_formats_registry_names():
    assert set(FORMATS) == {
        "rewardlab",
        "trl",
        "hh",
        "pairwise",
        "ratings",
        "helpsteer2",
        "helpsteer2_pref",
        "ranked",
        "nemo_regression",
    }


@pytest.mark.parametrize(
    "row,expected",
    [
        ({"prompt": "p", "responses": ["a", "b"], "chosen": 0}, "rewardlab"),
        ({"input": "i", "output_1": "a", "output_2": "b", "label": 1}, "pairwise"),
        ({"chosen": "\n\nHuman: hi\n\nAssistant: a", "rejected": "\n\nHuman: hi\n\nAssistant: b"}, "hh"),
        ({"chosen": "Human: hi\n\nAssistant: a", "rejected": "Human: hi\n\nAssistant: b"}, "hh"),
        ({"chosen": "a", "rejected": "b"}, "trl"),
        ({"prompt": "p", "chosen": "a", "rejected": "b"}, "trl"),
        ({"prompt": "p", "chosen": "\n\nHuman: a", "rejected": "\n\nHuman: b"}, "trl"),
        ({"chosen": [assistant("a")], "rejected": [assistant("b")]}, "trl"),
    ],
)
def test_detect_format(row, expected):
    assert detect_format(row) == expected


def test_undetectable_columns_name_the_columns_and_the_formats(tmp_path):
    source = write_lines(tmp_path, [{"question": "q", "answer": "a"}], name="odd.jsonl")
    with pytest.raises(DataError) as info:
        load_comparisons(source)
    message = str(info.value)
    for text in ("odd.jsonl", "line 1", "question", "answer", "rewardlab", "trl", "hh", "pairwise"):
        assert text in message


# --- malformed rows ------------------------------------------------------------------------------------

GOOD = {
    "trl": {"prompt": "P", "chosen": "A", "rejected": "B"},
    "conv": {"prompt": [user("Hi")], "chosen": [assistant("Hello")], "rejected": [assistant("Bye")]},
    "implicit": {"chosen": [user("Hi"), assistant("Hello")], "rejected": [user("Hi"), assistant("Bye")]},
    "hh": {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello", "rejected": "\n\nHuman: Hi\n\nAssistant: Bye"},
    "pairwise": {"input": "I", "output_1": "A", "output_2": "B", "label": 1},
    "rewardlab": {"prompt": "P", "responses": ["A", "B"], "chosen": 0},
}


def bad(base: str, **changes) -> dict:
    """GOOD[base] with ``changes`` applied; a change to ``...`` removes the field."""
    row = {**GOOD[base], **changes}
    return {k: v for k, v in row.items() if v is not ...}


MALFORMED = [
    # missing field
    ("trl", bad("trl", rejected=...), "rejected"),
    ("trl", bad("trl", chosen=None), "chosen"),
    ("pairwise", bad("pairwise", label=...), "label"),
    ("pairwise", bad("pairwise", output_2=...), "output_2"),
    ("rewardlab", bad("rewardlab", responses=...), "responses"),
    ("rewardlab", bad("rewardlab", chosen=...), "chosen"),
    # empty or whitespace-only text
    ("trl", bad("trl", chosen="   "), "chosen"),
    ("trl", bad("trl", prompt=""), "prompt"),
    ("trl", bad("trl", prompt=..., rejected="\n\t "), "rejected"),
    ("pairwise", bad("pairwise", input=""), "input"),
    ("rewardlab", bad("rewardlab", responses=["A", " "]), "responses"),
    ("rewardlab", bad("rewardlab", prompt="  "), "prompt"),
    ("conv", bad("conv", chosen=[assistant("  ")]), "chosen"),
    ("hh", bad("hh", chosen="\n\nHuman: Hi\n\nAssistant: "), "chosen"),
    ("hh", bad("hh", rejected="\n\nHuman:  \n\nAssistant: Bye"), "rejected"),
    # wrong type
    ("trl", bad("trl", chosen=5), "chosen"),
    ("trl", bad("trl", prompt=7), "prompt"),
    ("trl", bad("trl", rejected=["B"]), "rejected"),
    ("conv", bad("conv", prompt=[{"content": "Hi"}]), "prompt"),
    ("conv", bad("conv", prompt=[{"role": "user"}]), "prompt"),
    ("conv", bad("conv", prompt=["Hi"]), "prompt"),
    ("conv", bad("conv", prompt=[]), "prompt"),
    ("conv", bad("conv", prompt="Hi"), "prompt"),
    ("conv", bad("conv", chosen=[{"role": "assistant", "content": 3}]), "chosen"),
    ("conv", bad("conv", rejected=[{"role": "assistant", "content": ["Bye"]}]), "rejected"),
    ("conv", bad("conv", prompt=[{"role": "bot", "content": "Hi"}]), "prompt"),
    ("conv", bad("conv", chosen=[user("Hello")]), "chosen"),
    ("conv", bad("conv", rejected=[assistant("Bye"), assistant("Again")]), "rejected"),
    ("implicit", bad("implicit", chosen=[user("Hi"), assistant("Hello"), user("More")]), "chosen"),
    ("implicit", bad("implicit", chosen=[assistant("Hello")], rejected=[assistant("Bye")]), "rejected"),
    ("rewardlab", bad("rewardlab", responses=["A"]), "responses"),
    ("rewardlab", bad("rewardlab", responses="AB"), "responses"),
    ("rewardlab", bad("rewardlab", responses=[1, "B"]), "responses"),
    ("rewardlab", bad("rewardlab", prompt=3), "prompt"),
    ("rewardlab", bad("rewardlab", ranking=[0, 0]), "ranking"),
    ("rewardlab", bad("rewardlab", ranking=[1, 0]), "ranking"),
    ("rewardlab", bad("rewardlab", scores=[1.0]), "scores"),
    ("rewardlab", bad("rewardlab", scores=[1.0, "x"]), "scores"),
    ("trl", bad("trl", id=[1]), "id"),
    ("hh", bad("hh", chosen=["\n\nHuman: Hi"]), "chosen"),
    ("hh", bad("hh", chosen="Hi\n\nAssistant: Hello"), "chosen"),
    ("hh", bad("hh", rejected="\n\nAssistant: Bye"), "rejected"),
    ("hh", bad("hh", chosen="\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: More?"), "chosen"),
    # identical chosen and rejected
    ("trl", bad("trl", rejected="A"), "rejected"),
    ("conv", bad("conv", rejected=[assistant("Hello")]), "rejected"),
    ("implicit", bad("implicit", rejected=[user("Hi"), assistant("Hello")]), "rejected"),
    ("hh", bad("hh", rejected="\n\nHuman: Hi\n\nAssistant: Hello"), "rejected"),
    ("hh", bad("hh", rejected="\n\nHuman: Hi\n\nAssistant:  Hello "), "rejected"),
    ("pairwise", bad("pairwise", output_2="A"), "output_2"),
    ("rewardlab", bad("rewardlab", responses=["A", "A"]), "responses"),
    # HH conversations that differ before the final turn
    ("hh", bad("hh", rejected="\n\nHuman: Hello?\n\nAssistant: Bye"), "rejected"),
    ("hh", bad("hh", rejected="\n\nHuman: Hi\n\nAssistant: Hello\n\nAssistant: Bye"), "rejected"),
    # label out of range or of the wrong type
    ("pairwise", bad("pairwise", label=3), "label"),
    ("pairwise", bad("pairwise", label=0), "label"),
    ("pairwise", bad("pairwise", label="1"), "label"),
    ("pairwise", bad("pairwise", label=True), "label"),
    ("pairwise", bad("pairwise", label=1.0), "label"),
    # chosen index out of range
    ("rewardlab", bad("rewardlab", chosen=2), "chosen"),
    ("rewardlab", bad("rewardlab", chosen=-1), "chosen"),
    ("rewardlab", bad("rewardlab", chosen=True), "chosen"),
    ("rewardlab", bad("rewardlab", chosen="0"), "chosen"),
    # margin not a finite (non-negative) number
    ("trl", bad("trl", margin=float("nan")), "margin"),
    ("trl", bad("trl", margin=float("inf")), "margin"),
    ("trl", bad("trl", margin="1.0"), "margin"),
    ("trl", bad("trl", margin=True), "margin"),
    ("trl", bad("trl", margin=-1.0), "margin"),
    ("rewardlab", bad("rewardlab", margin=float("-inf")), "margin"),
]


@pytest.mark.parametrize(
    "base,row,field", MALFORMED, ids=[f"{i}-{base}-{field}" for i, (base, _, field) in enumerate(MALFORMED)]
)
def test_malformed_row_names_file_line_and_field(tmp_path, base, row, field):
    # good row on line 1 (fixes the auto-detected format), a blank line, the bad row on line 3
    source = write_lines(tmp_path, [GOOD[base], "", row], name="broken.jsonl")
    with pytest.raises(DataError) as info:
        load_comparisons(source)
    error = info.value
    assert (error.line, error.field, error.path) == (3, field, source)
    message = str(error)
    assert "broken.jsonl" in message and "line 3" in message and f"field '{field}'" in message
    # it is the same with the format named explicitly, and alone on the first line
    format_name = {"conv": "trl", "implicit": "trl"}.get(base, base)
    alone = write_lines(tmp_path, [row], name="alone.jsonl")
    with pytest.raises(DataError) as info:
        load_comparisons(alone, format=format_name)
    assert (info.value.line, info.value.field) == (1, field)


@pytest.mark.parametrize(
    "line,reason",
    [
        ('{"prompt": "P", "chosen": "A"', "invalid JSON"),
        ("not json at all", "invalid JSON"),
        ('["P", "A", "B"]', "expected a JSON object"),
        ("42", "expected a JSON object"),
    ],
)
def test_bad_jsonl_line_names_file_and_line(tmp_path, line, reason):
    source = write_lines(tmp_path, [GOOD["trl"], line, GOOD["trl"]], name="lines.jsonl")
    with pytest.raises(DataError) as info:
        load_comparisons(source)
    assert info.value.line == 2
    assert "lines.jsonl" in str(info.value) and "line 2" in str(info.value) and reason in str(info.value)


def test_bad_row_in_json_array_names_the_row(tmp_path):
    path = tmp_path / "arr.json"
    path.write_text(json.dumps([GOOD["trl"], GOOD["trl"], "oops"]))
    with pytest.raises(DataError) as info:
        load_comparisons(str(path))
    assert info.value.row == 2 and "arr.json, row 2" in str(info.value)


def test_invalid_json_document_names_the_line(tmp_path):
    path = tmp_path / "doc.json"
    path.write_text('[\n{"chosen": "a",\n "rejected": }\n]')
    with pytest.raises(DataError, match=r"doc\.json, line 3: invalid JSON"):
        load_comparisons(str(path))


def test_json_object_without_one_list_is_rejected(tmp_path):
    path = tmp_path / "two.json"
    path.write_text(json.dumps({"a": [GOOD["trl"]], "b": [GOOD["trl"]]}))
    with pytest.raises(DataError, match="single list value"):
        load_comparisons(str(path))


def test_bad_row_in_parquet_names_the_row(tmp_path):
    source = write_rows(tmp_path, "parquet", [GOOD["trl"], bad("trl", rejected="A"), GOOD["trl"]])
    with pytest.raises(DataError) as info:
        load_comparisons(source)
    assert (info.value.row, info.value.field) == (1, "rejected")
    assert "pairs.parquet, row 1, field 'rejected'" in str(info.value)


def test_bad_row_in_csv_names_the_physical_line(tmp_path):
    source = write_rows(tmp_path, "csv", [GOOD["pairwise"], GOOD["pairwise"], bad("pairwise", label=5)])
    with pytest.raises(DataError) as info:
        load_comparisons(source)
    assert "pairs.csv, line 4, field 'label'" in str(info.value)


def test_csv_label_that_is_not_a_number_is_a_label_error(tmp_path):
    source = write_rows(tmp_path, "csv", [bad("pairwise", label="first")])
    with pytest.raises(DataError, match="line 2, field 'label'"):
        load_comparisons(source)


def test_explicit_format_that_does_not_fit(tmp_path):
    source = write_lines(tmp_path, [GOOD["hh"]], name="hh.jsonl")
    with pytest.raises(DataError, match="hh.jsonl, line 1, field 'input': missing field"):
        load_comparisons(source, format="pairwise")


def test_unknown_format_name(tmp_path):
    source = write_lines(tmp_path, [GOOD["trl"]])
    with pytest.raises(DataError, match="unknown format 'dpo'"):
        load_comparisons(source, format="dpo")


# --- skip_invalid and limit ----------------------------------------------------------------------------


def test_skip_invalid_collects_bad_rows_and_keeps_good_ones(tmp_path):
    lines = [
        {"prompt": "P1", "chosen": "A", "rejected": "B"},  # 1 good
        "{oops",  # 2 invalid JSON
        {"prompt": "P3", "chosen": "A", "rejected": "A"},  # 3 identical
        "",  # 4 blank: ignored, not skipped
        "[1, 2]",  # 5 not an object
        {"prompt": "P6", "chosen": "A", "rejected": "B", "margin": "big"},  # 6 bad margin
        {"prompt": "P7", "chosen": "C", "rejected": "D"},  # 7 good
    ]
    source = write_lines(tmp_path, lines, name="mixed.jsonl")
    result = load_comparisons(source, skip_invalid=True)
    assert isinstance(result, LoadResult)
    assert [r.prompt for r in result.records] == ["P1", "P7"]
    assert [r.id for r in result.records] == ["mixed.jsonl:1", "mixed.jsonl:7"]
    assert [(e.line, e.field) for e in result.skipped] == [(2, None), (3, "rejected"), (5, None), (6, "margin")]
    assert all(isinstance(e, DataError) and "mixed.jsonl" in str(e) for e in result.skipped)
    assert result.format == "trl"
    with pytest.raises(DataError, match="line 2"):
        load_comparisons(source)


def test_auto_detects_from_the_first_valid_row(tmp_path):
    lines = [{"question": "?"}, "{oops", GOOD["pairwise"], GOOD["pairwise"]]
    result = load_comparisons(write_lines(tmp_path, lines), skip_invalid=True)
    assert result.format == "pairwise"
    assert len(result.records) == 2 and [e.line for e in result.skipped] == [1, 2]


def test_no_valid_rows_leaves_format_auto(tmp_path):
    result = load_comparisons(write_lines(tmp_path, ["{oops"]), skip_invalid=True)
    assert (result.records, result.format, len(result.skipped)) == ([], "auto", 1)


def test_limit(tmp_path):
    rows = [{"prompt": f"P{i}", "chosen": "A", "rejected": "B"} for i in range(10)]
    source = write_lines(tmp_path, rows)
    assert [r.prompt for r in load_comparisons(source, limit=3).records] == ["P0", "P1", "P2"]
    assert load_comparisons(source, limit=0).records == []
    assert len(load_comparisons(source, limit=100).records) == 10


# --- readers: locations, sources -----------------------------------------------------------------------


def test_iter_rows_locations(tmp_path):
    jsonl = write_lines(tmp_path, [{"a": 1}, "", "   ", {"a": 2}], name="x.jsonl")
    assert [loc for loc, _ in iter_rows(jsonl)] == [{"path": jsonl, "line": 1}, {"path": jsonl, "line": 4}]
    source = write_rows(tmp_path, "csv", [{"a": "1", "b": "x"}, {"a": "2", "b": "y"}])
    assert list(iter_rows(source)) == [
        ({"path": source, "line": 2}, {"a": "1", "b": "x"}),
        ({"path": source, "line": 3}, {"a": "2", "b": "y"}),
    ]
    source = write_rows(tmp_path, "parquet", [{"a": 1}, {"a": 2}])
    assert [loc for loc, _ in iter_rows(source)] == [{"path": source, "row": 0}, {"path": source, "row": 1}]


def test_iter_rows_on_error_keeps_going(tmp_path):
    source = write_lines(tmp_path, [{"a": 1}, "nope", {"a": 2}])
    errors: list[DataError] = []
    assert [row for _, row in iter_rows(source, on_error=errors.append)] == [{"a": 1}, {"a": 2}]
    assert [e.line for e in errors] == [2]


def test_jsonl_with_crlf_and_bom(tmp_path):
    path = tmp_path / "win.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf"
        + json.dumps(GOOD["trl"]).encode()
        + b"\r\n\r\n"
        + json.dumps(GOOD["pairwise"]).encode()
        + b"\r\n"
    )
    assert [loc["line"] for loc, _ in iter_rows(str(path))] == [1, 3]


def test_datasetdict_split_selection(tmp_path):
    import datasets

    rows = FORMAT_CASES["pairwise"][0]
    both = tmp_path / "both"
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(rows), "test": datasets.Dataset.from_list(rows[:1])}
    ).save_to_disk(str(both))
    assert len(load_comparisons(str(both)).records) == 2
    assert len(load_comparisons(str(both), split="test").records) == 1
    with pytest.raises(DataError, match="no split 'validation'; available splits: train, test"):
        load_comparisons(str(both), split="validation")
    only = tmp_path / "only"
    datasets.DatasetDict({"dev": datasets.Dataset.from_list(rows)}).save_to_disk(str(only))
    assert len(load_comparisons(str(only)).records) == 2
    several = tmp_path / "several"
    datasets.DatasetDict({"a": datasets.Dataset.from_list(rows), "b": datasets.Dataset.from_list(rows)}).save_to_disk(
        str(several)
    )
    with pytest.raises(DataError, match="no split 'train'"):
        load_comparisons(str(several))


@pytest.mark.parametrize(
    "name", ["./nope.jsonl", "nope.jsonl", "data/nope.parquet", "/no/such/dir", "../elsewhere", "nope.csv"]
)
def test_missing_local_path_is_not_looked_up_on_the_hub(monkeypatch, name):
    import datasets

    def no_hub(*args, **kwargs):
        raise AssertionError("must not query the hub")

    monkeypatch.setattr(datasets, "load_dataset", no_hub)
    with pytest.raises(DataError) as info:
        load_comparisons(name)
    assert str(info.value) == f"{name}: no such file or directory"


def test_hub_name_goes_to_load_dataset(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(name, split=None):
        calls.append((name, split))
        return datasets.Dataset.from_list(FORMAT_CASES["trl-text-explicit"][0][:1] + [GOOD["trl"]])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    result = load_comparisons("someone/prefs")
    assert calls == [("someone/prefs", "train")]
    assert [(r.source, r.id) for r in result.records] == [("someone/prefs", "a"), ("someone/prefs", "someone/prefs:1")]
    load_comparisons("someone/prefs", split="test")
    assert calls[-1] == ("someone/prefs", "test")


def test_hub_failure_is_a_data_error(monkeypatch):
    import datasets

    def broken(name, split=None):
        raise ValueError("dataset not found")

    monkeypatch.setattr(datasets, "load_dataset", broken)
    with pytest.raises(DataError, match="someone/missing: cannot load Hugging Face dataset: dataset not found"):
        load_comparisons("someone/missing")


def test_unsupported_file_and_plain_directory(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(DataError, match="unsupported file type"):
        load_comparisons(str(text))
    with pytest.raises(DataError, match="not a dataset saved with"):
        load_comparisons(str(tmp_path))


# --- write_jsonl, fingerprint, split -------------------------------------------------------------------


def _all_case_records(tmp_path: Path) -> list[Comparison]:
    records = []
    for case, (rows, _, _, _) in FORMAT_CASES.items():
        records += load_comparisons(write_lines(tmp_path, rows, name=f"{case}.jsonl")).records
    return records


@pytest.mark.parametrize("name", ["out/native.jsonl", "native.jsonl.gz"])
def test_write_jsonl_round_trips(tmp_path, name):
    records = _all_case_records(tmp_path)
    path = str(tmp_path / name)
    assert write_jsonl(records, path) == len(records)
    result = load_comparisons(path)
    assert result.format == "rewardlab"
    assert result.records == records
    assert fingerprint(result.records) == fingerprint(records)


def test_fingerprint_changes_when_one_record_changes(tmp_path):
    records = _all_case_records(tmp_path)
    base = fingerprint(records)
    assert len(base) == 64 and base == fingerprint(list(records))
    changed = list(records)
    original = changed[3]
    changed[3] = Comparison(
        original.prompt, original.responses, original.chosen, margin=0.25, source=original.source, id=original.id
    )
    assert fingerprint(changed) != base
    assert fingerprint(records[::-1]) != base
    assert fingerprint(records[:-1]) != base


def _synthetic(n_prompts: int) -> list[Comparison]:
    records = []
    for i in range(n_prompts):
        for j in range(1 + i % 3):
            records.append(Comparison(f"prompt {i}", (f"good {j}", f"bad {j}"), id=f"{i}-{j}"))
    return records


def test_split_by_prompt(tmp_path):
    records = _synthetic(1000)
    train, evaluation = split_by_prompt(records, 0.2, seed=0)
    assert len(train) + len(evaluation) == len(records)
    train_prompts = {r.prompt_key() for r in train}
    eval_prompts = {r.prompt_key() for r in evaluation}
    assert not train_prompts & eval_prompts
    assert 150 <= len(eval_prompts) <= 250  # ~20% of 1000 prompts
    # deterministic, and input order kept on each side
    assert split_by_prompt(records, 0.2, seed=0) == (train, evaluation)
    position = {r.id: i for i, r in enumerate(records)}
    assert [position[r.id] for r in train] == sorted(position[r.id] for r in train)
    assert [position[r.id] for r in evaluation] == sorted(position[r.id] for r in evaluation)
    # another seed gives another split; the extremes are all-train and all-eval
    assert split_by_prompt(records, 0.2, seed=1)[1] != evaluation
    assert split_by_prompt(records, 0.0) == (records, [])
    assert split_by_prompt(records, 1.0) == ([], records)
    with pytest.raises(ValueError):
        split_by_prompt(records, 1.5)


def test_split_by_prompt_with_conversations():
    records = [Comparison((user(f"q{i % 50}"),), ("a", "b"), id=str(i)) for i in range(200)]
    train, evaluation = split_by_prompt(records, 0.5, seed=3)
    assert {r.prompt_key() for r in train}.isdisjoint({r.prompt_key() for r in evaluation})
    assert train and evaluation


# --- the real Anthropic HH file ------------------------------------------------------------------------


def test_real_hh_harmless_base_test_file():
    if not os.path.exists(HH_FILE):
        pytest.skip(f"{HH_FILE} not present")
    result = load_comparisons(HH_FILE, skip_invalid=True)
    print(f"\nHH: loaded {len(result.records)}, skipped {len(result.skipped)} as invalid")
    for error in result.skipped:
        print(f"  skipped: {error}")
    assert result.format == "hh"
    assert len(result.records) >= 2250
    assert len(result.records) + len(result.skipped) == 2312
    first = result.records[0]
    assert first.source == "hh-rlhf-harmless-base-test.jsonl.gz" and first.id.endswith(":1")
    assert all(r.prompt[0]["role"] == "user" and r.prompt[-1]["role"] == "user" for r in result.records)
    assert all(r.responses[0] != r.responses[1] for r in result.records)


def test_per_record_cuts_the_flat_response_values_at_each_records_k():
    from rewardlab.data.record import per_record

    two = Comparison(prompt="p", responses=("a", "b"))
    three = Comparison(prompt="q", responses=("c", "d", "e"))
    assert per_record([two, three], [1, 2, 3, 4, 5]) == [[1, 2], [3, 4, 5]]
