"""Run ownership (rewardlab.core.ownership, taken by rewardlab.core.outputs.claim_output_dir): one run writes an output
directory at a time; a second writer, a second --overwrite or a concurrent --resume is refused naming the holder's
pid; a lock of a killed process is detected as stale and named; workers left by a killed torchrun launcher keep
the directory theirs (issue 23, item 2). Holders are real processes (``kill -9`` included)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.test_faults import rows, snapshot, write_jsonl

from rewardlab.cli import main
from rewardlab.core.ownership import DOOR, LOCK_NAMES, OwnershipError, acquire, owning

HOLD = """
import sys, time
from rewardlab.core.ownership import acquire
acquire(sys.argv[1], "rewardlab train")
print("ready", flush=True)
time.sleep(120)
"""


def hold(out: Path, **env) -> subprocess.Popen:
    """A process that holds ``out`` the way a run does (env: its place in a torchrun launch)."""
    p = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )
    line = p.stdout.readline()
    assert line.strip() == "ready", p.stderr.read()
    return p


def stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        p.kill()
    p.wait()


def run_cli(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return code, err


def _train(tiny, data, out, *extra):
    return [
        "train", "--data", str(data), "--backbone", tiny, "--max-steps", "2", "--batch-size", "2",
        "--max-length", "48", "--eval-fraction", "0", "--save-every", "1", "--output-dir", str(out), *extra,
    ]  # fmt: skip


@pytest.mark.parametrize("flag", ["--overwrite", "--resume"])
def test_a_second_writer_is_refused_naming_the_holder(tmp_path, tiny_llama, capsys, flag):
    """Before: a second `train --overwrite` deleted the running run's checkpoints (both exited 0), and a
    `--resume` ran alongside the live run."""
    data = write_jsonl(tmp_path / "d.jsonl", rows(4))
    out = tmp_path / "run"
    assert run_cli(capsys, _train(tiny_llama, data, out, "--stop-after", "1"))[0] == 0
    before = snapshot(out)
    holder = hold(out)
    try:
        code, err = run_cli(capsys, _train(tiny_llama, data, out, flag))
    finally:
        stop(holder)
    assert code == 2 and f"pid {holder.pid}" in err and "a second run into the same output directory" in err, err
    after = snapshot(out)
    assert all(after.get(k) == v for k, v in before.items())  # nothing of the live run removed or changed
    assert run_cli(capsys, _train(tiny_llama, data, out, "--resume"))[0] == 0  # the holder gone: it is free


def test_every_writing_command_that_claims_a_directory_is_refused_while_it_is_held(tmp_path, tiny_llama, capsys):
    from rewardlab.models.reward_model import RewardModel

    model_dir = tmp_path / "m"
    RewardModel.from_backbone(tiny_llama, max_length=32).save(model_dir)
    out = tmp_path / "ev"
    holder = hold(out)
    try:
        code, err = run_cli(
            capsys,
            [
                "eval",
                "--model",
                str(model_dir),
                "--data",
                str(write_jsonl(tmp_path / "d.jsonl", rows(2))),
                "--output-dir",
                str(out),
            ],
        )
        assert code == 2 and f"pid {holder.pid}" in err
        code, err = run_cli(capsys, ["probe", "--model", str(model_dir), "--data", "x", "--output-dir", str(out)])
        assert code == 2  # probe reads its data first: that error or the holder, never a second writer
    finally:
        stop(holder)


def test_a_stale_lock_of_a_killed_process_is_named_and_taken_over(tmp_path, capsys):
    out = tmp_path / "run"
    holder = hold(out)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert json.loads((out / DOOR).read_text())["pid"] == holder.pid  # its text stays; the kernel lock went
    with owning():
        lock = acquire(out, "rewardlab train")
        assert lock.stale["pid"] == holder.pid
    err = capsys.readouterr().err
    assert f"took over the stale lock of pid {holder.pid}" in err and "no longer running" in err
    assert not any((out / n).exists() for n in LOCK_NAMES)  # a clean end leaves nothing behind


def test_workers_left_by_a_killed_launcher_keep_the_directory(tmp_path):
    """torchrun: rank 0 holds the door, every worker the shared lock. With rank 0 killed (its launcher gone), a
    worker that runs on still owns the directory: a --resume would be a second writer, and is refused naming it."""
    out = tmp_path / "run"
    launch = {"TORCHELASTIC_RUN_ID": "t1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29999", "WORLD_SIZE": "2"}
    rank0 = hold(out, **launch, RANK="0", LOCAL_RANK="0")
    rank1 = hold(out, **launch, RANK="1", LOCAL_RANK="1")
    try:
        with pytest.raises(OwnershipError, match=f"pid {rank0.pid}"):  # the whole run holds it
            with owning():
                acquire(out, "rewardlab train")
        os.kill(rank0.pid, signal.SIGKILL)
        rank0.wait()
        with pytest.raises(OwnershipError, match=rf"earlier run .*pid {rank1.pid}"):
            with owning():
                acquire(out, "rewardlab train")
    finally:
        stop(rank0)
        stop(rank1)
    with owning():  # every process of the old run gone: free again
        acquire(out, "rewardlab train")


def test_a_worker_waits_for_its_own_main_process(tmp_path, monkeypatch):
    """A rank > 0 joins only a door naming its own launch (not a stale one of another)."""
    from rewardlab.core import ownership

    out = tmp_path / "run"
    out.mkdir()
    (out / DOOR).write_text(json.dumps({"pid": 1, "run": "torchrun:other::"}))
    monkeypatch.setattr(ownership, "JOIN_TIMEOUT_S", 0.5)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    t = time.monotonic()
    with pytest.raises(OwnershipError, match="did not take the output directory"):
        acquire(out, "rewardlab train", main=False)
    assert time.monotonic() - t >= 0.5


def test_claims_are_reentrant_in_one_process_and_released_with_the_command(tmp_path):
    from rewardlab.core.outputs import claim_output_dir

    out = tmp_path / "run"
    with owning():
        claim_output_dir(out, overwrite=False)
        claim_output_dir(out, overwrite=False)  # quickstart claims, then train claims the same directory
        assert (out / DOOR).exists()
        (out / "x").write_text("1")
    assert not any((out / n).exists() for n in LOCK_NAMES) and (out / "x").exists()
    with owning():  # a command that fails before writing leaves no directory it created
        claim_output_dir(tmp_path / "new", overwrite=False)
    assert not (tmp_path / "new").exists()


@pytest.mark.slow
def test_a_live_train_process_refuses_a_concurrent_resume(tmp_path, tiny_llama, capsys):
    """The issue's repro with two real trainers: a --resume during a live run is refused naming its pid."""
    data = write_jsonl(tmp_path / "d.jsonl", rows(64))
    out = tmp_path / "run"
    argv = _train(tiny_llama, data, out)
    argv[argv.index("--max-steps") + 1] = "100000"
    live = subprocess.Popen([sys.executable, "-m", "rewardlab.cli", *argv, "-q"], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "checkpoints").exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        code, err = run_cli(capsys, _train(tiny_llama, data, out, "--resume"))
        assert code == 2 and f"pid {live.pid}" in err, err
    finally:
        stop(live)
