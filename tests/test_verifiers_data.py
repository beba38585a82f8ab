"""Verifier records and readers: every format, soft labels kept as floats, bad rows named (file, line, field)."""

import doctest
import json
import os
from pathlib import Path

import pytest

from rewardlab.core.errors import DataError
from rewardlab.verifiers import aggregate, evaluate, readers, records, synthetic
from rewardlab.verifiers.readers import read_verifier_data

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
if not SHARED.is_dir():
    SHARED = Path("/work/shared/data")


@pytest.mark.parametrize("module", [records, readers, aggregate, evaluate, synthetic])
def test_docstring_examples(module):
    assert doctest.testmod(module).failed == 0


def _jsonl(tmp_path, rows, name="d.jsonl"):
    p = tmp_path / name
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(p)


def test_trl_soft_labels_stay_floats(tmp_path):
    path = _jsonl(
        tmp_path,
        [
            {"prompt": "Q1", "completions": ["a", "b"], "labels": [0.7, 0.25]},
            {"prompt": "Q1", "completions": ["c"], "labels": [1.0]},
            {"prompt": "Q2", "completions": ["d", "e"], "labels": [1, 0]},
        ],
    )
    d = read_verifier_data(path)
    assert d.format == "trl" and d.scheme == "soft"
    assert d.solutions[0].step_labels == (0.7, 0.25)  # not int(0.7) == 0 as in TRL
    assert [len(p.solutions) for p in d.problems] == [2, 1]  # grouped by prompt
    assert [s.outcome for s in d.solutions] == [0.0, 1.0, 0.0]  # every step >= 0.5


def test_trl_bool_labels_binary(tmp_path):
    d = read_verifier_data(_jsonl(tmp_path, [{"prompt": "Q", "completions": ["a", "b"], "labels": [True, False]}]))
    assert d.scheme == "binary" and d.solutions[0].step_labels == (1.0, 0.0) and d.solutions[0].first_error == 1


def test_ternary_detected(tmp_path):
    d = read_verifier_data(_jsonl(tmp_path, [{"prompt": "Q", "completions": ["a", "b", "c"], "labels": [1, 0, -1]}]))
    assert d.scheme == "ternary" and d.solutions[0].first_error == 2  # neutral 0 is not an error


@pytest.mark.parametrize(
    "row, field, words",
    [
        ({"prompt": "Q", "completions": ["a", "b"], "labels": [1]}, "labels", "1 labels for 2 steps"),
        ({"prompt": "Q", "completions": ["a", " "], "labels": [1, 1]}, "completions[1]", "empty step"),
        ({"prompt": "Q", "completions": ["a"], "labels": ["yes"]}, "labels[0]", "expected a number"),
    ],
)
def test_bad_rows_name_file_line_field(tmp_path, row, field, words):
    path = _jsonl(tmp_path, [{"prompt": "Q0", "completions": ["x"], "labels": [1]}, row])
    with pytest.raises(DataError) as e:
        read_verifier_data(path)
    assert e.value.line == 2 and e.value.field == field and words in str(e.value)
    assert os.path.basename(path) in str(e.value)


def test_label_outside_forced_scheme(tmp_path):
    path = _jsonl(tmp_path, [{"prompt": "Q", "completions": ["a"], "labels": [0.7]}])
    with pytest.raises(DataError, match=r"line 1, field 'labels\[0\]': expected 0 or 1 \(binary scheme\), got 0.7"):
        read_verifier_data(path, scheme="binary")


def test_skip_invalid_counts(tmp_path):
    path = _jsonl(
        tmp_path,
        [
            {"prompt": "Q", "completions": ["a"], "labels": [1]},
            {"prompt": "Q", "completions": ["a", "b"], "labels": [1]},
            {"prompt": "Q", "completions": ["a"], "labels": [1]},
        ],
    )
    d = read_verifier_data(path, skip_invalid=True)
    assert len(d.solutions) == 2 and len(d.skipped) == 1 and "line 2" in d.skipped[0]


def test_processbench_rows(tmp_path):
    rows = [
        {"id": "gsm8k-0", "problem": "P", "steps": ["s1", "s2", "s3"], "label": 1, "final_answer_correct": False},
        {"id": "gsm8k-1", "problem": "P2", "steps": ["s1", "s2"], "label": -1, "final_answer_correct": True},
    ]
    p = tmp_path / "pb.json"
    p.write_text(json.dumps(rows))
    d = read_verifier_data(str(p))
    assert d.format == "processbench" and d.scheme == "binary"
    assert d.solutions[0].step_labels == (1.0, 0.0, None)  # after the first error: unlabelled
    assert d.solutions[0].first_error == 1 and d.solutions[1].first_error == -1
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"problem": "P", "steps": ["a"], "label": 3}]))
    with pytest.raises(DataError, match=r"row 0, field 'label': expected -1 or a step index 0..0, got 3"):
        read_verifier_data(str(bad))


def test_gsm8k_solutions_and_missing_solution(tmp_path):
    row = {
        "question": "Q?",
        "ground_truth": "x\nA: 18",
        "m1": {"is_correct": True, "solution": "a = 1\n\nb = 2\nA: 18"},
        "m2": {"is_correct": False, "solution": "c\nA: 3"},
    }
    d = read_verifier_data(_jsonl(tmp_path, [row]))
    (prob,) = d.problems
    assert d.format == "gsm8k_solutions" and prob.reference == "A: 18"
    assert [s.steps for s in prob.solutions] == [("a = 1", "b = 2", "A: 18"), ("c", "A: 3")]
    assert [s.outcome for s in prob.solutions] == [1.0, 0.0] and prob.solutions[0].step_labels is None
    with pytest.raises(DataError, match="line 1, field 'solutions': a problem with no solution"):
        read_verifier_data(_jsonl(tmp_path, [{"question": "Q", "ground_truth": "A: 1"}], "e.jsonl"), "gsm8k_solutions")


def test_math_shepherd(tmp_path):
    row = {
        "input": "Janet has 3 apples. How many? Step 1: 3 + 1 = 4 ки\nStep 2: The answer is 4 ки",
        "label": "Janet has 3 apples. How many? Step 1: 3 + 1 = 4 +\nStep 2: The answer is 4 -",
    }
    d = read_verifier_data(_jsonl(tmp_path, [row]))
    (s,) = d.solutions
    assert d.format == "math_shepherd" and s.prompt == "Janet has 3 apples. How many?"
    assert s.steps == ("Step 1: 3 + 1 = 4", "Step 2: The answer is 4") and s.step_labels == (1.0, 0.0)
    row["label"] = row["label"].replace("4 -", "4 ?")
    with pytest.raises(DataError, match="field 'label': expected '\\+' or '-' in place of tag 2"):
        read_verifier_data(_jsonl(tmp_path, [row], "b.jsonl"))


@pytest.mark.skipif(not (SHARED / "processbench-gsm8k.json").exists(), reason="shared data absent")
def test_shared_files_read():
    pb = read_verifier_data(str(SHARED / "processbench-gsm8k.json"))
    assert len(pb.solutions) == 400 and pb.format == "processbench"
    assert sum(s.first_error == -1 for s in pb.solutions) == 193
    g = read_verifier_data(str(SHARED / "gsm8k-model-solutions-dev.jsonl"))
    assert len(g.problems) == 660 and all(len(p.solutions) == 4 for p in g.problems)
    assert sum(not s.steps[-1].startswith("A:") for s in g.solutions) == 7  # generations cut off mid-step


def test_synthetic_labels_agree_with_checker():
    probs = synthetic.make_problems(50, seed=3)
    for p in probs:
        for s in p.solutions:
            assert s.outcome == synthetic.check(p.prompt, "\n".join(s.steps))
            assert (s.first_error == -1) == (s.outcome == 1.0)
    firsts = {s.first_error for p in probs for s in p.solutions}
    assert {-1, 0, 1} <= firsts  # correct chains and errors at several steps
