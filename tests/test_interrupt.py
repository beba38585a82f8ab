"""Ctrl-C (SIGINT) and SIGTERM in training (rewardlab.core.interrupt): the step finishes, a checkpoint is written, the
exact ``--resume`` command is printed, the exit code is 130, no traceback; resuming gives the uninterrupted
weights bit for bit."""

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import rewardlab.training.train as train_module
from rewardlab.cli import main
from rewardlab.core.interrupt import EXIT_CODE, StopSignals, resume_command, set_command_line
from rewardlab.data import Comparison, write_jsonl

WORDS = "apple pear plum fig kiwi lime lemon mango grape melon peach berry".split()


@pytest.fixture(scope="module")
def pref_file(tmp_path_factory):
    records = []
    for i in range(40):
        w, other = WORDS[i % len(WORDS)], WORDS[(i * 5 + 3) % len(WORDS)]
        other = other if other != w else WORDS[(i + 1) % len(WORDS)]
        resp = (f"I like {w} a lot.", f"I like {other} a lot.")
        records.append(Comparison(prompt=f"Say something about {w} number {i}", responses=resp, chosen=0, id=f"r{i}"))
    path = tmp_path_factory.mktemp("data") / "prefs.jsonl"
    write_jsonl(records, str(path))
    return str(path)


def _args(backbone, data, out, steps):
    return [
        "train",
        "--backbone",
        backbone,
        "--data",
        data,
        "--output-dir",
        str(out),
        "--max-steps",
        str(steps),
        "--batch-size",
        "4",
        "--max-length",
        "48",
        "--lr",
        "1e-3",
        "--log-every",
        "1",
        "--eval-fraction",
        "0.2",
        "--report-to",
        "none",
    ]


def _weights(out):
    return load_file(str(Path(out) / "model" / "model.safetensors"))


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("sig", [signal.SIGINT, pytest.param(signal.SIGTERM, marks=pytest.mark.slow)])
def test_a_signal_mid_run_checkpoints_says_how_to_resume_and_resume_is_exact(
    tmp_path, tiny_llama, pref_file, capsys, monkeypatch, sig
):
    """The signal is delivered to this process (the real handler runs) in the middle of step 3 of 6: step 3
    finishes, checkpoints/step-00000003 is written, exit 130 with the printed command; that command finishes the
    run, and its weights equal a run never interrupted (torch.equal)."""
    assert main(_args(tiny_llama, pref_file, tmp_path / "full", 6)) == 0
    capsys.readouterr()

    real_step = train_module.train_step

    def step_with_a_signal(run, step, window):
        if step == 2:  # the third step: the signal lands while it runs
            os.kill(os.getpid(), sig)
        return real_step(run, step, window)

    monkeypatch.setattr(train_module, "train_step", step_with_a_signal)
    args = _args(tiny_llama, pref_file, tmp_path / "part", 6)
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)  # SIG_IGN when run in the background
    assert main(args) == EXIT_CODE
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"{sig.name} received: finishing this step" in err
    assert "stopped by " + sig.name + " after step 3 of 6" in err
    assert (tmp_path / "part" / "checkpoints" / "step-00000003" / "model.safetensors").exists()
    assert not (tmp_path / "part" / "model").exists()
    command = err.strip().splitlines()[-1].strip()
    assert command == shlex.join(["rewardlab", *args, "--resume"])
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before  # the handlers given back

    monkeypatch.setattr(train_module, "train_step", real_step)
    assert main(shlex.split(command)[1:]) == 0
    _same(_weights(tmp_path / "full"), _weights(tmp_path / "part"))


def test_a_second_signal_stops_at_once(monkeypatch):
    """The first SIGINT only sets the flag; the second raises KeyboardInterrupt (the CLI: exit 130, no traceback)."""
    with StopSignals(say=lambda text: None) as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.received == "SIGINT" and stop.agreed()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)


def test_resume_command_adds_resume_once():
    set_command_line(["train", "--data", "a b.jsonl", "--resume"])
    try:
        assert resume_command("train", "runs/x") == "rewardlab train --data 'a b.jsonl' --resume"
    finally:
        set_command_line(None)
    assert resume_command("train-judge", "runs/j") == "rewardlab train-judge --output-dir runs/j --resume"


@pytest.mark.slow
def test_ctrl_c_to_a_real_train_process_then_resume_equals_uninterrupted(tmp_path, tiny_llama, pref_file):
    """A real ``rewardlab train`` subprocess gets SIGINT once its metrics.jsonl has a row (log every step; 100
    steps, so it is mid-run), exits 130 without a traceback, printing the command; running that command finishes
    the run with the weights of an uninterrupted one, bit for bit."""
    steps = 100
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cli = [sys.executable, "-m", "rewardlab.cli"]
    full = subprocess.run([*cli, *_args(tiny_llama, pref_file, tmp_path / "full", steps)], env=env, capture_output=True)
    assert full.returncode == 0, full.stderr.decode()[-2000:]

    args = _args(tiny_llama, pref_file, tmp_path / "part", steps)
    proc = subprocess.Popen([*cli, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    metrics = tmp_path / "part" / "metrics.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if metrics.exists() and metrics.read_text().count("\n") >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before the signal"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    err = err.decode()
    assert proc.returncode == EXIT_CODE, err[-2000:]
    assert "Traceback" not in err and "stopped by SIGINT after step" in err
    stopped_at = int(err.split("stopped by SIGINT after step ")[1].split()[0])
    assert 2 <= stopped_at < steps
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert rows[-1]["step"] == stopped_at  # no half step logged
    command = err.strip().splitlines()[-1].strip()
    assert command == shlex.join(["rewardlab", *args, "--resume"])
    resumed = subprocess.run([*cli, *shlex.split(command)[1:]], env=env, capture_output=True)
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]
    _same(_weights(tmp_path / "full"), _weights(tmp_path / "part"))
