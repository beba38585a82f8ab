"""Training logs without a terminal (rewardlab.core.progress.StepLog): one timestamped line per --log-every steps, or
JSON lines with --log-format json, instead of a progress bar that a file receives as one \\r-joined line."""

import json
import os
import re
import subprocess
import sys

import pytest

from rewardlab.cli import main
from rewardlab.core.progress import StepLog, log_mode
from rewardlab.data import Comparison, write_jsonl

LINE = re.compile(
    r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) train step (\d+)/20 loss (\d+\.\d{4}) accuracy (\d\.\d{3}) "
    r"lr (\S+) pairs/s (\d+\.\d) eta (\d+:\d\d:\d\d)$"
)


@pytest.fixture(scope="module")
def pref_file(tmp_path_factory):
    records = [
        Comparison(prompt=f"Say something about item {i}", responses=(f"Item {i} is fine.", "No."), chosen=0, id=str(i))
        for i in range(40)
    ]
    path = tmp_path_factory.mktemp("data") / "prefs.jsonl"
    write_jsonl(records, str(path))
    return str(path)


def _args(backbone, data, out):
    return [
        "train",
        "--backbone",
        backbone,
        "--data",
        data,
        "--output-dir",
        str(out),
        "--max-steps",
        "20",
        "--batch-size",
        "2",
        "--max-length",
        "32",
        "--log-every",
        "5",
        "--eval-fraction",
        "0.2",
        "--report-to",
        "none",
    ]


def test_step_log_line_worked_numbers():
    """Started at t=100 s (step 0 of 20); at t=110 s step 5 is done: 2 s per step, 15 steps left -> ETA 30 s."""
    clock = iter([100.0, 110.0]).__next__
    log = StepLog("text", total=20, clock=clock)
    rec = {"step": 5, "loss": 0.693147, "accuracy": 0.5, "lr": 1e-4, "pairs_per_s": 12.34}
    assert log.line(rec) == (
        "1970-01-01T00:01:50Z train step 5/20 loss 0.6931 accuracy 0.500 lr 1.00e-04 pairs/s 12.3 eta 0:00:30"
    )
    clock = iter([100.0, 110.0]).__next__
    as_json = json.loads(StepLog("json", total=20, clock=clock).line(rec))
    assert as_json == {
        "event": "train",
        "time": "1970-01-01T00:01:50Z",
        "step": 5,
        "total": 20,
        "loss": 0.693147,
        "accuracy": 0.5,
        "lr": 1e-4,
        "pairs_per_s": 12.34,
        "eta_s": 30.0,
    }
    assert StepLog("bar", total=20).line(rec) is None  # the bar shows it


def test_log_mode_auto_follows_the_terminal():
    class Tty:
        def isatty(self):
            return True

    assert log_mode("auto", Tty()) == "bar"
    assert log_mode("auto", open(os.devnull, "w")) == "text"
    assert log_mode("json", Tty()) == "json"
    with pytest.raises(ValueError, match="log_format must be one of"):
        log_mode("xml")


def _check_text_log(err: str):
    lines = [m for m in (LINE.match(line) for line in err.splitlines()) if m]
    assert [int(m.group(2)) for m in lines] == [5, 10, 15, 20], err
    assert "\r" not in err  # no bar
    assert all(0 <= float(m.group(3)) < 10 for m in lines)


def test_a_20_step_run_without_a_terminal_logs_timestamped_lines(tmp_path, tiny_llama, pref_file, capsys):
    assert main(_args(tiny_llama, pref_file, tmp_path / "r")) == 0
    _check_text_log(capsys.readouterr().err)


def test_log_format_json_gives_the_same_as_json_lines(tmp_path, tiny_llama, pref_file, capsys):
    assert main([*_args(tiny_llama, pref_file, tmp_path / "r"), "--log-format", "json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith('{"event": "train"')]
    assert [r["step"] for r in rows] == [5, 10, 15, 20]
    metrics = [json.loads(line) for line in open(tmp_path / "r" / "metrics.jsonl") if '"loss"' in line]
    by_step = {m["step"]: m for m in metrics}
    for r in rows:  # the numbers metrics.jsonl has for those steps
        assert r["loss"] == by_step[r["step"]]["loss"] and r["lr"] == by_step[r["step"]]["lr"]
        assert r["total"] == 20 and r["eta_s"] >= 0 and r["time"].endswith("Z")


@pytest.mark.slow
def test_a_real_process_redirected_to_a_file(tmp_path, tiny_llama, pref_file):
    """The user's cluster case: `rewardlab train ... 2> train.log` (stderr a file, not a terminal)."""
    log = tmp_path / "train.log"
    with open(log, "w") as f:
        proc = subprocess.run(
            [sys.executable, "-m", "rewardlab.cli", *_args(tiny_llama, pref_file, tmp_path / "r")], stderr=f
        )
    assert proc.returncode == 0
    _check_text_log(log.read_text())
