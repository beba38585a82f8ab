"""``rewardlab eval --run`` on multi-objective runs: a gating run's held-out pairs (its ``split.json``, read again
with the gating trainer's own reader) are scored exactly; a regression run is refused with what to do instead."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewardlab.cli import main
from rewardlab.data import load_comparisons, write_jsonl
from rewardlab.data import synthetic_attributes as sa
from rewardlab.multiobjective.train import _load_pairs
from rewardlab.training.train import TrainConfig, load_train_eval, train

GATE = ["--gate-hidden", "8", "--gate-layers", "1", "--gate-steps", "5"]


@pytest.fixture(scope="module")
def regression_run(tiny_llama, tmp_path_factory) -> Path:
    """A ridge regression run on the embedded attributes (read, never changed)."""
    out = tmp_path_factory.mktemp("reg") / "run"
    train(
        TrainConfig(
            objective="regression",
            stage1="ridge",
            backbone=tiny_llama,
            data="embedded",
            embedded_size=24,
            eval_batch_size=16,
            output_dir=str(out),
        )
    )
    return out


def _gating(regression_run: Path, out: Path, *data_args: str) -> Path:
    args = ["train", "--objective", "gating", "--init-from", str(regression_run / "model"), *data_args, *GATE]
    assert main([*args, "--output-dir", str(out)]) == 0
    return out


def _examples(eval_dir: Path) -> list[dict]:
    (path,) = eval_dir.glob("examples-*.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


def _accuracy(eval_dir: Path) -> float:
    (result,) = json.loads((eval_dir / "report.json").read_text())["results"].values()
    return result["accuracy"]


def test_eval_run_on_a_gating_run_scores_its_held_out_pairs(regression_run, tmp_path, capsys):
    """Embedded pairs (the gating reader's generator, not the scalar one's): the ids are those of split.json and of
    ``_load_pairs``; the accuracy equals the run's own held-out gate accuracy and ``eval --data`` on those pairs."""
    run = _gating(
        regression_run, tmp_path / "gate", "--data", "embedded", "--embedded-size", "40", "--eval-fraction", "0.3"
    )
    split = json.loads((run / "split.json").read_text())
    summary = json.loads((run / "train_summary.json").read_text())
    cfg = TrainConfig(**summary["config"])
    held = _load_pairs(cfg)[1]
    assert split["held_out_ids"] == [c.id for c in held] and split["n_eval"] == len(held) >= 4
    assert split["n_train"] == len(_load_pairs(cfg)[0]) and split["rule"]["kind"] == "prompt_hash"
    # the scalar reader gives other records for data=embedded: re-reading with it would be a different split
    assert [c.id for c in load_train_eval(cfg)[1]] != split["held_out_ids"]
    capsys.readouterr()

    assert main(["eval", "--run", str(run), "--output-dir", str(tmp_path / "ev"), "--n-boot", "10"]) == 0
    err = capsys.readouterr().err
    assert "warning" not in err  # held-out pairs: none of their prompts was trained on
    assert [r["id"] for r in _examples(tmp_path / "ev")] == split["held_out_ids"]
    (result,) = json.loads((tmp_path / "ev" / "report.json").read_text())["results"].values()
    assert Path(result["model"]["path"]).resolve() == (run / "model").resolve()
    by_run = result["accuracy"]
    assert by_run == summary["held_out"]["accuracy"]["gate"]["accuracy"]  # the same pairs, the same gated score

    pairs = tmp_path / "held.jsonl"
    write_jsonl(held, str(pairs))
    args = ["eval", "--model", str(run / "model"), "--data", str(pairs), "--output-dir", str(tmp_path / "ev2")]
    assert main([*args, "--n-boot", "10"]) == 0
    assert _accuracy(tmp_path / "ev2") == by_run
    # a training pair's prompt is flagged by every eval (split.json's train prompt hashes)
    train_pairs = tmp_path / "train.jsonl"
    write_jsonl(_load_pairs(cfg)[0][:3], str(train_pairs))
    capsys.readouterr()
    args = ["eval", "--model", str(run / "model"), "--data", str(train_pairs), "--output-dir", str(tmp_path / "ev3")]
    assert main([*args, "--n-boot", "10"]) == 0
    assert "warning: 3 of 3 records have a prompt" in capsys.readouterr().err


def test_eval_run_refuses_a_gating_run_whose_data_changed(regression_run, tmp_path, capsys):
    data = tmp_path / "pairs.jsonl"
    write_jsonl(sa.generate_pairs(40, seed=3), str(data))
    run = _gating(regression_run, tmp_path / "gate", "--data", str(data), "--eval-fraction", "0.3")
    split = json.loads((run / "split.json").read_text())
    assert split["held_out_ids"] == [c.id for c in _load_pairs(TrainConfig(**_config(run)))[1]]
    assert main(["eval", "--run", str(run), "--output-dir", str(tmp_path / "ev"), "--n-boot", "10"]) == 0
    assert [r["id"] for r in _examples(tmp_path / "ev")] == split["held_out_ids"]
    capsys.readouterr()

    rows = [json.loads(line) for line in data.read_text().splitlines()]
    edited = next(r for r in rows if r["id"] == split["held_out_ids"][0])
    edited["responses"][0] += " (edited)"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert load_comparisons(str(data)).records  # still valid data: only the held-out content changed
    assert main(["eval", "--run", str(run), "--output-dir", str(tmp_path / "ev2")]) == 2
    err = capsys.readouterr().err
    assert "no longer gives the held-out records" in err and str(run / "split.json") in err
    assert "Traceback" not in err and not (tmp_path / "ev2").exists()


def _config(run: Path) -> dict:
    return json.loads((run / "train_summary.json").read_text())["config"]


def test_eval_run_refuses_a_regression_run_and_says_what_to_do(regression_run, tmp_path, capsys):
    assert not (regression_run / "split.json").exists()
    assert main(["eval", "--run", str(regression_run), "--output-dir", str(tmp_path / "ev")]) == 2
    err = capsys.readouterr().err
    assert str(regression_run) in err and "--objective regression" in err
    assert "train_summary.json" in err and "--data" in err and "split.json does not exist" not in err
    assert "Traceback" not in err and not (tmp_path / "ev").exists()
    # what it suggests works: the regression model evaluated on pairs
    pairs = tmp_path / "pairs.jsonl"
    write_jsonl(sa.generate_pairs(6, seed=5), str(pairs))
    args = ["eval", "--model", str(regression_run / "model"), "--data", str(pairs), "--output-dir", str(tmp_path / "e")]
    assert main([*args, "--n-boot", "10"]) == 0


def test_eval_run_on_a_gating_run_with_eval_data(regression_run, tmp_path):
    """``--eval-data``: the held-out pairs are that file's, the rule names it."""
    data, held = tmp_path / "pairs.jsonl", tmp_path / "held.jsonl"
    write_jsonl(sa.generate_pairs(20, seed=3), str(data))
    write_jsonl(sa.generate_pairs(5, seed=9), str(held))
    run = _gating(regression_run, tmp_path / "gate", "--data", str(data), "--eval-data", str(held))
    split = json.loads((run / "split.json").read_text())
    assert split["rule"] == {"kind": "eval_data", "path": str(held)}
    assert split["held_out_ids"] == [c.id for c in load_comparisons(str(held)).records]
    assert main(["eval", "--run", str(run), "--output-dir", str(tmp_path / "ev"), "--n-boot", "10"]) == 0
    assert [r["id"] for r in _examples(tmp_path / "ev")] == split["held_out_ids"]
    summary = json.loads((run / "train_summary.json").read_text())
    assert _accuracy(tmp_path / "ev") == summary["held_out"]["accuracy"]["gate"]["accuracy"]


def test_train_prints_the_split_of_multiobjective_runs(regression_run, tmp_path, capsys):
    """What ``rewardlab train`` prints for regression and gating runs names the records read and the split (it
    printed ``read ? records`` and ``split: None training`` before)."""
    common = ["--data", "embedded", "--embedded-size", "24", "--eval-batch-size", "16"]
    reg = ["train", "--objective", "regression", "--stage1", "ridge", "--backbone"]
    capsys.readouterr()
    summary = json.loads((regression_run / "train_summary.json").read_text())
    backbone = summary["config"]["backbone"]
    assert main([*reg, backbone, *common, "--output-dir", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    n_train, n_eval = summary["n_train"], summary["n_eval"]
    assert f"read {n_train + n_eval} records from embedded" in out and "?" not in out.split("\n")[0]
    assert f"split: {n_train} training, {n_eval} held-out records" in out
    _gating(regression_run, tmp_path / "g", "--data", "embedded", "--embedded-size", "40", "--eval-fraction", "0.3")
    out = capsys.readouterr().out
    split = json.loads((tmp_path / "g" / "split.json").read_text())
    assert f"split: {split['n_train']} training, {split['n_eval']} held-out records" in out and "None" not in out
