"""--report-to / --run-name through Accelerate's trackers, all local: TRL's tag names under train/ and eval/, reward
statistics, and no counts as curves. TensorBoard (in the dev extra) always runs here; MLflow's file store when
mlflow is installed (optional)."""

from __future__ import annotations

import json
import math

import pytest

from rewardlab.cli import main
from rewardlab.core.errors import RewardlabError
from rewardlab.core.trackers import TAGS, tagged, tracker_names


def test_tagged_keeps_known_numbers_and_drops_counts():
    rec = {
        "step": 5,
        "loss": 0.5,
        "accuracy": 0.75,
        "eval_n": 40,
        "eval_accuracy": 0.8,
        "units": 16,
        "grad_norm": None,
        "lr": 1e-4,
    }
    assert tagged(rec) == {"train/loss": 0.5, "train/accuracy": 0.75, "eval/accuracy": 0.8, "train/learning_rate": 1e-4}
    assert all(t.startswith(("train/", "eval/")) for t in TAGS.values())


def test_tracker_names():
    assert tracker_names("none") == []
    assert tracker_names("tensorboard") == ["tensorboard"]
    with pytest.raises(RewardlabError, match="unknown tracker 'tensorbord'"):
        tracker_names("tensorbord")


def _run(tmp_path, tiny_llama, report_to, name="tb"):
    out = tmp_path / name
    assert (
        main(
            [
                "train",
                "--backbone",
                tiny_llama,
                "--embedded-size",
                "80",
                "--max-steps",
                "3",
                "--batch-size",
                "8",
                "--max-length",
                "48",
                "--log-every",
                "1",
                "--output-dir",
                str(out),
                "--report-to",
                report_to,
                "--run-name",
                "my-run",
                "-q",
            ]
        )
        == 0
    )
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return out, rows


def test_tensorboard_gets_trl_tags_and_reward_statistics(tmp_path, tiny_llama):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, rows = _run(tmp_path, tiny_llama, "tensorboard")
    events = sorted((out / "tensorboard" / "my-run").glob("events.out.tfevents.*"))
    acc = EventAccumulator(str(events[0]))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {
        "train/loss",
        "train/accuracy",
        "train/learning_rate",
        "train/mean_reward",
        "train/min_reward",
        "train/max_reward",
        "train/margin",
        "eval/accuracy",
        "eval/loss",
        "eval/mean_reward",
    } <= tags
    assert not any("eval_n" in t or t == "step" for t in tags)
    loss = [(e.step, e.value) for e in acc.Scalars("train/loss")]
    assert loss == [(r["step"], pytest.approx(r["loss"], rel=1e-6)) for r in rows if "loss" in r]
    final = rows[-1]  # the held-out row: BT loss = mean -log σ(Δ) ≥ 0, reward extremes bracket the mean
    assert final["eval_loss"] > 0 and final["eval_min_reward"] <= final["eval_mean_reward"] <= final["eval_max_reward"]
    first = rows[0]
    assert first["min_reward"] <= first["mean_reward"] <= first["max_reward"] and math.isfinite(first["margin"])


def test_report_to_none_writes_no_tracker_files(tmp_path, tiny_llama):
    out, rows = _run(tmp_path, tiny_llama, "none", "none")
    assert not (out / "tensorboard").exists() and rows


def test_mlflow_file_store_offline(tmp_path, tiny_llama, monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out, rows = _run(tmp_path, tiny_llama, "mlflow", "ml")
    loss = sorted((out / "mlruns").rglob("metrics/train/loss"))
    assert len(loss) == 1  # one run, train/loss stored as a file under metrics/train/
    steps = [int(line.split()[2]) for line in loss[0].read_text().splitlines()]
    assert steps == [r["step"] for r in rows if "loss" in r]
    assert not list((out / "mlruns").rglob("metrics/eval_n")) and list((out / "mlruns").rglob("metrics/eval/accuracy"))
    run_name = sorted((out / "mlruns").rglob("tags/mlflow.runName"))
    assert run_name and run_name[0].read_text() == "my-run"
