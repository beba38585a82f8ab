"""Benchmarks read rows and check fields with the data stage's one library (rewardlab.data.loading.load_local_records,
rewardlab.data.fields, rewardlab.data.messages.message_list): a bad benchmark row is reported exactly as a bad
training row is — file, line, field, what is wrong, and how many other rows fail."""

from __future__ import annotations

import json

import pytest

from rewardlab.benchmarks import get_benchmark
from rewardlab.core.errors import DataError
from rewardlab.data import load_comparisons


def _jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_a_bad_benchmark_row_names_file_line_field_and_the_other_failures(tmp_path):
    """Four RewardBench rows: line 2 has a null ``rejected``, line 3 a numeric ``chosen``, line 4 is fine. The
    first failure is reported (line 2, field 'rejected', null) with the count of the others: 1 (line 3) — the
    comparison loader's wording, since both loaders share one rule (first_error_counted)."""
    good = {"prompt": "p", "chosen": "a", "rejected": "b", "subset": "shp"}
    path = _jsonl(
        tmp_path / "rb.jsonl",
        [good, {**good, "rejected": None}, {**good, "chosen": 3}, good],
    )
    with pytest.raises(DataError) as e:
        get_benchmark("rewardbench").load(path)
    text = str(e.value)
    assert "rb.jsonl, line 2, field 'rejected'" in text
    assert "null where a value is required" in text
    assert "1 other row fails too" in text
    skipped = get_benchmark("rewardbench").load(path, skip_invalid=True).skipped
    assert [(s.line, s.field) for s in skipped] == [(2, "rejected"), (3, "chosen")]
    assert "expected text, got int" in str(skipped[1])
    # the training loader says the same about the same kind of fault
    train = _jsonl(tmp_path / "train.jsonl", [{"prompt": "p", "chosen": "a", "rejected": "b"}] * 2 + [{"prompt": "p"}])
    with pytest.raises(DataError, match=r"train\.jsonl, line 3, .*no other row fails"):
        load_comparisons(train)


def test_benchmark_typed_fields_from_the_data_library(tmp_path):
    """RewardBench 2's ``num_correct`` (data.fields.int_field): the CSV-style text "2" is read as 2, a bool is
    refused naming the field; its ``chosen`` (data.fields.text_list) must be texts; MT-Bench's conversations
    (data.messages.message_list) must be role/content objects."""
    row = {"id": "1", "prompt": "p", "chosen": ["a", "b"], "rejected": ["c"], "subset": "Math", "num_correct": "2"}
    data = get_benchmark("rewardbench-2").load(_jsonl(tmp_path / "ok.jsonl", [row]))
    assert data.records[0].meta["num_correct"] == 2
    with pytest.raises(DataError, match=r"line 1, field 'num_correct'.*expected an integer, got True"):
        get_benchmark("rewardbench-2").load(_jsonl(tmp_path / "b.jsonl", [{**row, "num_correct": True}]))
    with pytest.raises(DataError, match=r"field 'chosen'.*item 1: expected text, got int"):
        get_benchmark("rewardbench-2").load(_jsonl(tmp_path / "c.jsonl", [{**row, "chosen": ["a", 5]}]))
    mt = {
        "question_id": 1,
        "model_a": "x",
        "model_b": "y",
        "winner": "model_a",
        "turn": 1,
        "conversation_a": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
        "conversation_b": [{"role": "user", "content": "q"}, "not a message"],
    }
    with pytest.raises(DataError, match=r"field 'conversation_b'.*message 1: expected"):
        get_benchmark("mt-bench-human").load(_jsonl(tmp_path / "mt.jsonl", [mt]))
