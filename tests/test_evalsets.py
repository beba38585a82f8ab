"""Evaluation on files as they come (LLMBar-style input/output_1/output_2/label): a directory or several files,
each a subset; identical answers are ties; unscorable rows are skipped and reported; errors say how rows are
numbered and how many others fail. Training still refuses identical answers."""

import json

import pytest

from rewardlab.cli import main
from rewardlab.core.errors import DataError
from rewardlab.data import load_comparisons
from rewardlab.data.evalsets import load_eval_comparisons


def _llmbar(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _rows(n, tag):
    return [
        {
            "input": f"{tag} question {i}?",
            "output_1": f"answer {i} from {tag}",
            "output_2": f"other {i} {tag}",
            "label": 1 + i % 2,
        }
        for i in range(n)
    ]


@pytest.fixture
def llmbar_dir(tmp_path):
    d = tmp_path / "llmbar"
    (d / "Adversarial").mkdir(parents=True)
    _llmbar(d / "Natural.jsonl", _rows(4, "nat"))
    same = _rows(3, "neigh")
    same[1]["output_2"] = same[1]["output_1"]  # line 2: two identical answers
    _llmbar(d / "Adversarial" / "Neighbor.jsonl", same)
    empty = _rows(3, "gpt")
    empty[2]["output_1"] = ""  # line 3: an empty answer, cannot be scored
    _llmbar(d / "Adversarial" / "GPTOut.jsonl", empty)
    return d


def test_directory_is_read_file_by_file_with_ties_and_skips(llmbar_dir):
    got = load_eval_comparisons(str(llmbar_dir))
    assert len(got.files) == 3 and len(got.records) == 4 + 3 + 2
    assert {r.source for r in got.records} == {"Natural.jsonl", "Neighbor.jsonl", "GPTOut.jsonl"}
    tie = [r for r in got.records if r.responses[0] == r.responses[1]]
    assert len(tie) == 1 and tie[0].source == "Neighbor.jsonl"
    assert len(got.skipped) == 1 and got.skipped[0].line == 3 and "empty" in str(got.skipped[0])
    assert any("identical responses" in n for n in got.notes)
    # training reads the same file strictly: the identical pair is refused, and the error counts the rest
    with pytest.raises(DataError, match=r"line 2, field 'output_2'.*1-based; no other row fails"):
        load_comparisons(str(llmbar_dir / "Adversarial" / "Neighbor.jsonl"))


def test_error_counts_the_other_failing_rows(tmp_path):
    rows = _rows(5, "x")
    for i in (1, 3, 4):
        rows[i]["output_1"] = ""
    path = _llmbar(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError, match=r"bad\.jsonl, line 2, field 'output_1'.*1-based; 2 other rows fail too"):
        load_eval_comparisons(str(path), skip_invalid=False)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_llama):
    from rewardlab.models.reward_model import RewardModel

    rm = RewardModel.from_backbone(tiny_llama, max_length=48, seed=0)
    d = tmp_path_factory.mktemp("evalsets") / "model"
    rm.save(d)
    return str(d)


def test_eval_cli_directory_per_file_rows_and_tie_policy(model_dir, llmbar_dir, tmp_path, capsys):
    """Worked: the identical pair has equal rewards; strict credits it 0, half 1/2, so Neighbor's accuracy
    under half minus under strict is exactly 0.5 / 3 (its 3 records), and the overall one 0.5 / 9."""
    acc = {}
    for policy in ("strict", "half"):
        out = tmp_path / policy
        assert (
            main(
                [
                    "eval",
                    "--model",
                    model_dir,
                    "--data",
                    str(llmbar_dir),
                    "--output-dir",
                    str(out),
                    "--tie-policy",
                    policy,
                    "--n-boot",
                    "50",
                ]
            )
            == 0
        )
        report = json.loads((out / "report.json").read_text())
        res = next(iter(report["results"].values()))
        assert set(res["per_source"]) == {"Natural.jsonl", "Neighbor.jsonl", "GPTOut.jsonl"}
        assert all(len(v["ci95"]) == 2 for v in res["per_source"].values())
        acc[policy] = (res["accuracy"], res["per_source"]["Neighbor.jsonl"]["accuracy"])
        md = (out / "report.md").read_text()
        assert "skipped" in md and "GPTOut.jsonl, line 3" in md and "exact ties" in md
    assert acc["half"][1] - acc["strict"][1] == pytest.approx(0.5 / 3)
    assert acc["half"][0] - acc["strict"][0] == pytest.approx(0.5 / 9)
    # several files, named one by one
    files = [str(llmbar_dir / "Natural.jsonl"), str(llmbar_dir / "Adversarial" / "Neighbor.jsonl")]
    assert (
        main(["eval", "--model", model_dir, "--data", *files, "--output-dir", str(tmp_path / "two"), "--n-boot", "20"])
        == 0
    )
    res = next(iter(json.loads((tmp_path / "two" / "report.json").read_text())["results"].values()))
    assert res["n_records"] == 7 and set(res["per_source"]) == {"Natural.jsonl", "Neighbor.jsonl"}
    # --no-skip-invalid stops at the first bad row and says how many others fail
    capsys.readouterr()
    assert (
        main(
            [
                "eval",
                "--model",
                model_dir,
                "--data",
                str(llmbar_dir),
                "--no-skip-invalid",
                "--output-dir",
                str(tmp_path / "strict-rows"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "GPTOut.jsonl, line 3" in err and "1-based" in err and "no other row fails" in err


def test_benchmark_with_no_usable_example_says_how_many_and_why(model_dir, tmp_path, capsys):
    rows = [{"prompt": "q", "chosen": "a", "subset": "hep-go"}, {"prompt": "q", "rejected": "b", "subset": "hep-go"}]
    path = _llmbar(tmp_path / "rb.jsonl", rows)
    assert (
        main(
            [
                "eval",
                "--model",
                model_dir,
                "--data",
                str(path),
                "--benchmark",
                "rewardbench",
                "--skip-invalid",
                "--output-dir",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "no usable examples: 2 rows skipped as invalid" in err and "missing" in err and "rb.jsonl, line 1" in err
