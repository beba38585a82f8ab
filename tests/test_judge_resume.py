"""GenRM and CLoud training (``rewardlab train-judge``) on the training core: a run stopped and resumed equals an
uninterrupted one bit for bit, a changed config or data is refused on resume, the non-finite guard stops or skips,
and 2 processes (torchrun, gloo) give the per-step losses of 1."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from launch import torchrun_train
from rewardlab.cli import main
from rewardlab.data import Comparison, write_jsonl
from rewardlab.training.recipe import StepPlan


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("judge-resume") / "pairs.jsonl"
    recs = [
        Comparison(f"Question {i}: what is {i} plus {i}?", (f"It is {2 * i}.", f"Maybe {i}, or not."), chosen=0)
        for i in range(20)
    ]
    write_jsonl(recs, str(path))
    return str(path)


def _args(tiny_llama, data_file, out, method: str, *extra) -> list[str]:
    common = [
        "train-judge",
        "--data",
        data_file,
        "--backbone",
        tiny_llama,
        "--output-dir",
        str(out),
        "--method",
        method,
        "--eval-fraction",
        "0.3",
        "--max-eval",
        "3",
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--max-question-tokens",
        "24",
        "--max-answer-tokens",
        "12",
        "--no-eval-before",
    ]
    if method == "genrm":
        common += ["--lr", "1e-2", "--batch-size", "4", "--micro-batch-size", "2"]
    else:
        common += ["--lr", "1e-3", "--batch-size", "2", "--max-train", "6", "--max-critique-tokens", "4"]
    return [*common, *extra]


def _steps(out) -> list[dict]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows if "step" in r]


def _weights(out, method: str) -> dict:
    return load_file(str(out / "model" / "model.safetensors"))


def run_cli(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def test_step_plan_slices_each_epoch_and_is_a_function_of_the_step():
    """Two epochs of 5 items in batches of 2: 3 steps an epoch (the last one short), 6 in all."""
    plan = StepPlan([[4, 0, 3, 1, 2], [2, 1, 0, 4, 3]], 2)
    assert (plan.steps_per_epoch, plan.total) == (3, 6)
    assert [plan.step(s) for s in range(6)] == [
        (0, [4, 0]),
        (0, [3, 1]),
        (0, [2]),
        (1, [2, 1]),
        (1, [0, 4]),
        (1, [3]),
    ]


@pytest.mark.parametrize("method", ["genrm", "cloud"])
def test_stopped_and_resumed_equals_uninterrupted(method, tiny_llama, data_file, tmp_path, capsys, monkeypatch):
    """Stop after step 3 (a checkpoint is written there), resume: every step's loss, lr and grad norm, the
    saved weights and the held-out scores equal an uninterrupted run's exactly. CLoud's critiques are read
    back from critiques.json, not generated again."""
    full, cut = tmp_path / "full", tmp_path / "cut"
    assert run_cli(capsys, _args(tiny_llama, data_file, full, method, "--save-every", "2"))[0] == 0
    code, err = run_cli(capsys, _args(tiny_llama, data_file, cut, method, "--stop-after", "3"))
    assert code == 0 and (cut / "checkpoints" / "step-00000003").is_dir() and not (cut / "model").exists()
    assert len(_steps(cut)) == 3
    if method == "cloud":
        import rewardlab.judges.train as judge_train

        def no_generation(*a, **kw):
            raise AssertionError("critiques generated again on resume")

        monkeypatch.setattr(judge_train, "generate_critiques", no_generation)
    code, err = run_cli(capsys, _args(tiny_llama, data_file, cut, method, "--resume"))
    assert code == 0 and "resumed from" in err and "step 3" in err
    want, got = _steps(full), _steps(cut)
    assert len(want) == len(got) > 3 and [r["step"] for r in got] == list(range(1, len(want) + 1))
    assert got == want
    if method == "genrm":
        a, b = _weights(full, method), _weights(cut, method)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    else:
        a = load_file(str(full / "model" / "reward_head.safetensors"))
        b = load_file(str(cut / "model" / "reward_head.safetensors"))
        assert all(torch.equal(a[k], b[k]) for k in a)
    ex_full = (full / "examples.jsonl").read_text()
    assert ex_full == (cut / "examples.jsonl").read_text() and ex_full.count("\n") == 3
    # a finished run has nothing to resume: refused, nothing touched
    before = (full / "metrics.jsonl").read_text()
    code, err = run_cli(capsys, _args(tiny_llama, data_file, full, method, "--resume"))
    assert code != 0 and "finished run" in err and (full / "metrics.jsonl").read_text() == before
    # the file has no step twice and one row per phase of the resumed run
    rows = [json.loads(line) for line in (cut / "metrics.jsonl").read_text().splitlines()]
    assert sum("phase" in r and r["phase"] == "eval_trained" for r in rows) == 1


def test_resume_refuses_another_config_and_a_run_dir_needs_resume_or_overwrite(tiny_llama, data_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli(capsys, _args(tiny_llama, data_file, out, "genrm", "--stop-after", "2"))[0] == 0
    before = (out / "metrics.jsonl").read_text()
    code, err = run_cli(capsys, _args(tiny_llama, data_file, out, "genrm", "--resume", "--lr", "2e-2"))
    assert code != 0 and "config differs in ['lr']" in err
    code, err = run_cli(capsys, _args(tiny_llama, data_file, out, "genrm"))
    assert code != 0 and "--resume" in err and "--overwrite" in err and str(out) in err
    assert (out / "metrics.jsonl").read_text() == before and (out / "checkpoints" / "step-00000002").is_dir()
    # --overwrite starts again from step 0 (the old checkpoints go)
    assert run_cli(capsys, _args(tiny_llama, data_file, out, "genrm", "--overwrite"))[0] == 0
    assert not (out / "checkpoints").exists() and _steps(out)[0]["step"] == 1


def test_nonfinite_step_stops_genrm_or_is_skipped(tiny_llama, data_file, tmp_path, capsys, monkeypatch):
    """A NaN loss at step 2 stops the run there (the checkpoint of step 1 named); with --skip-nonfinite 1 the
    update is skipped, the run finishes and the row says so."""
    import rewardlab.judges.train as judge_train

    real, calls = judge_train.F.cross_entropy, {"n": 0}

    def nan_at_step_2(*a, **kw):  # 2 micro-batches a step: calls 3 and 4 are step 2's
        calls["n"] += 1
        out = real(*a, **kw)
        return out * float("nan") if calls["n"] in (3, 4) else out

    monkeypatch.setattr(judge_train.F, "cross_entropy", nan_at_step_2)
    out = tmp_path / "nan"
    code, err = run_cli(capsys, _args(tiny_llama, data_file, out, "genrm", "--save-every", "1"))
    assert code != 0 and "diverged at step 2" in err and "step-00000001" in err
    assert (out / "checkpoints" / "step-00000001").is_dir() and not (out / "model").exists()
    calls["n"] = 0
    out2 = tmp_path / "skip"
    assert run_cli(capsys, _args(tiny_llama, data_file, out2, "genrm", "--skip-nonfinite", "1"))[0] == 0
    rows = _steps(out2)
    assert rows[1]["grad_norm"] is None and rows[1]["skipped_nonfinite"] == 1 and rows[-1]["skipped_nonfinite"] == 1
    assert (out2 / "model" / "judge.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize("method", ["genrm", "cloud"])
def test_two_processes_give_the_losses_of_one(method, tiny_llama, data_file, tmp_path, capsys):
    """torchrun, 2 processes (gloo): each takes half of a step's examples, the gradients are summed, so every
    step's loss and grad norm equal one process's within 1e-5 and the trained weights within 1e-5."""
    one, two = tmp_path / "one", tmp_path / "two"
    assert run_cli(capsys, _args(tiny_llama, data_file, one, method))[0] == 0
    r = torchrun_train(_args(tiny_llama, data_file, two, method)[1:], command="train-judge", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = _steps(one), _steps(two)
    assert len(a) == len(b) > 3
    for x, y in zip(a, b):
        assert x["loss"] == pytest.approx(y["loss"], abs=1e-5) and x["lr"] == pytest.approx(y["lr"])
        assert x["grad_norm"] == pytest.approx(y["grad_norm"], abs=1e-5)
    name = "model.safetensors" if method == "genrm" else "reward_head.safetensors"
    wa, wb = load_file(str(one / "model" / name)), load_file(str(two / "model" / name))
    assert all(torch.allclose(wa[k], wb[k], atol=1e-5) for k in wa)
    report = json.loads((two / "report.json").read_text())
    assert report["processes"] == 2 and json.loads((one / "report.json").read_text())["processes"] == 1
    assert report["trained_eval"]["n_records"] == 3
