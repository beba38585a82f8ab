"""Progress without a terminal (rewardlab.core.progress.LineBar): every bar of score, eval (and the rest) becomes one
timestamped line per $REWARDLAB_LOG_INTERVAL seconds, or JSON lines with --log-format json, instead of tqdm's
\\r-joined frames that a redirected stderr receives as one unreadable line (issue 28: the quickstart log's `score:`)."""

import json
import re
import subprocess
import sys

import pytest

from rewardlab.cli import main
from rewardlab.core import progress
from rewardlab.core.progress import LineBar

PAIRS = [
    {"prompt": f"Question {i}?", "chosen": f"A good answer {i}.", "rejected": "No."} for i in range(6)
]  # 12 texts to score
SCORE_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ score \d+/12 text \(\d+%\) (\d+\.\d|n/a) text/s ")


class Clock:
    def __init__(self, *times):
        self.times = list(times)

    def __call__(self):
        return self.times.pop(0)


def test_line_bar_worked_numbers(capsys):
    """Started at t=100 s, 1 s delay, 10 s interval, 50 texts. At t=100.5 (10 done) nothing: within the delay.
    At t=102 (20 done) the first line: 20 texts in 2 s = 10.0 text/s, 30 left -> ETA 3 s, 40%. At t=105 (30 done)
    nothing: 3 s since the last line. At t=112 (50 done) a line (50 in 12 s = 4.2/s, nothing left: ETA 0), then the
    closing line at t=113: done in 0:00:13."""
    bar = LineBar(50, "score", unit="text", mode="text", clock=Clock(100.0, 100.5, 102.0, 105.0, 112.0, 113.0),
                  interval=10.0, delay=1.0)  # fmt: skip
    for n in (10, 10, 10, 20):
        bar.update(n)
    bar.close()
    bar.close()  # a second close prints nothing
    assert capsys.readouterr().err.splitlines() == [
        "1970-01-01T00:01:42Z score 20/50 text (40%) 10.0 text/s eta 0:00:03",
        "1970-01-01T00:01:52Z score 50/50 text (100%) 4.2 text/s eta 0:00:00",
        "1970-01-01T00:01:53Z score 50/50 text (100%) 3.8 text/s done in 0:00:13",
    ]


def test_line_bar_json_and_quiet_cases(capsys):
    """JSON mode: the same fields as one object a line. A bar that ends within its delay prints nothing; one left by
    an exception prints no "done" line; a disabled one (--quiet, rank > 0) prints nothing."""
    bar = LineBar(4, "eval", unit="text", mode="json", clock=Clock(0.0, 2.0, 4.0), interval=10.0, delay=1.0)
    bar.update(2)
    bar.close()
    first, last = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert first == {"event": "eval", "time": "1970-01-01T00:00:02Z", "n": 2, "total": 4, "unit": "text",
                     "rate": 1.0, "eta_s": 2.0, "elapsed_s": 2.0, "finished": False}  # fmt: skip
    assert last["finished"] is True and last["eta_s"] == 0.0 and last["elapsed_s"] == 4.0
    quick = LineBar(4, "x", mode="text", clock=Clock(0.0, 0.5, 0.6), interval=10.0, delay=1.0)
    quick.update(4)
    quick.close()
    with pytest.raises(KeyError), LineBar(4, "x", mode="text", clock=Clock(0.0, 2.0, 3.0), interval=10, delay=1) as b:
        b.update(1)  # a line (past the delay)
        raise KeyError
    off = LineBar(4, "x", mode="text", disable=True, clock=Clock(0.0, 5.0), interval=0, delay=0)
    off.update(4)
    off.close()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "x 1/4" in lines[0] and "done" not in lines[0]


def test_bar_is_a_line_bar_without_a_terminal_and_tqdm_with_bar(monkeypatch):
    monkeypatch.setattr(sys, "stderr", open("/dev/null", "w"))  # not a terminal
    monkeypatch.delenv(progress.LOG_FORMAT_ENV, raising=False)
    assert isinstance(progress.bar(3, "score"), LineBar)  # auto, no terminal
    with progress.logging_as("bar"):
        assert not isinstance(progress.bar(3, "score"), LineBar)  # asked for: tqdm
        assert (
            isinstance(progress.bar(3, "score", mode="json"), LineBar)
            and progress.bar(3, "s", mode="json").mode == "json"
        )
    assert progress.LOG_FORMAT_ENV not in __import__("os").environ  # restored
    monkeypatch.setenv(progress.LOG_INTERVAL_ENV, "2.5")
    assert progress.log_interval() == 2.5
    for bad in ("-1", "soon", "nan"):
        monkeypatch.setenv(progress.LOG_INTERVAL_ENV, bad)
        assert progress.log_interval() == progress.LOG_INTERVAL_S


@pytest.fixture(scope="module")
def scored_inputs(tmp_path_factory, tiny_llama):
    from rewardlab.models.reward_model import RewardModel

    root = tmp_path_factory.mktemp("progress")
    RewardModel.from_backbone(tiny_llama, max_length=32, seed=0).save(root / "model")
    data = root / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in PAIRS))
    return root / "model", data


def _score(model, data, out, *flags):
    return ["score", "--model", str(model), "--data", str(data), "--output", str(out), "--batch-size", "4", *flags]


def test_score_without_a_terminal_writes_timestamped_lines(tmp_path, scored_inputs, capsys, monkeypatch):
    """capsys's stderr is not a terminal, as a redirected one: lines, no \\r frames (before: tqdm's frames)."""
    monkeypatch.setenv(progress.LOG_INTERVAL_ENV, "0")  # a line at every update: the tiny model scores in < 1 s
    model, data = scored_inputs
    assert main(_score(model, data, tmp_path / "s.jsonl")) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if SCORE_LINE.match(line)]
    assert "\r" not in err
    assert len(lines) >= 2 and " 12/12 text (100%) " in lines[-1]
    assert lines[-1].endswith(tuple(f"done in 0:00:0{s}" for s in range(10)))


def test_score_log_format_json(tmp_path, scored_inputs, capsys, monkeypatch):
    monkeypatch.setenv(progress.LOG_INTERVAL_ENV, "0")
    model, data = scored_inputs
    assert main(_score(model, data, tmp_path / "s.jsonl", "--log-format", "json")) == 0
    rows = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith('{"event": "score"')]
    assert [r["n"] for r in rows][-1] == 12 and rows[-1]["finished"] is True and rows[-1]["total"] == 12
    assert all(r["time"].endswith("Z") and r["unit"] == "text" for r in rows)
    assert progress.LOG_FORMAT_ENV not in __import__("os").environ  # the command's setting ends with it


def test_a_bad_log_format_is_refused_before_the_model_loads(tmp_path, scored_inputs, capsys):
    model, data = scored_inputs
    assert main(_score(model, data, tmp_path / "s.jsonl", "--log-format", "xml")) == 2
    err = capsys.readouterr().err
    assert "--log-format xml: expected one of auto, bar, text, json" in err and "Traceback" not in err
    assert not (tmp_path / "s.jsonl").exists()


def test_eval_without_a_terminal_writes_timestamped_lines(tmp_path, scored_inputs, capsys, monkeypatch):
    monkeypatch.setenv(progress.LOG_INTERVAL_ENV, "0")
    model, data = scored_inputs
    args = ["eval", "--model", str(model), "--data", str(data), "--output-dir", str(tmp_path / "e"), "--n-boot", "10"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "\r" not in err
    assert any(SCORE_LINE.match(line) and "done in" in line for line in err.splitlines()), err


@pytest.mark.slow
def test_score_in_a_real_process_with_stderr_redirected_to_a_file(tmp_path, scored_inputs):
    """The user's case: `rewardlab score ... 2> score.log` (stderr a file, not a terminal)."""
    model, data = scored_inputs
    log = tmp_path / "score.log"
    with open(log, "w") as f:
        proc = subprocess.run(
            [sys.executable, "-m", "rewardlab.cli", *_score(model, data, tmp_path / "s.jsonl")],
            stderr=f,
            env={**__import__("os").environ, progress.LOG_INTERVAL_ENV: "0"},
        )
    assert proc.returncode == 0
    text = log.read_text()
    assert "\r" not in text
    assert sum(bool(SCORE_LINE.match(line)) for line in text.splitlines()) >= 2, text
