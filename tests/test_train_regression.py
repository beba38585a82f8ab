"""Multi-objective regression (``--objective regression --stage1 gradient``) on the training core: exact resume,
2 processes equal 1, the non-finite guard, metrics.jsonl like the scalar run, held-out rows at ``--eval-every``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from launch import torchrun_train
from rewardlab.core.errors import RewardlabError
from rewardlab.core.finite import NonFiniteError
from rewardlab.multiobjective.losses import masked_mse, targets_and_mask
from rewardlab.multiobjective.model import AttributeRewardModel
from rewardlab.multiobjective.train import _regression_eval, load_rated_split
from rewardlab.training.samplers import random_plan
from rewardlab.training.train import TrainConfig, train


def _cfg(tmp_path, name, backbone, **kw) -> TrainConfig:
    base = dict(
        objective="regression",
        stage1="gradient",
        backbone=backbone,
        data="embedded",
        embedded_size=16,
        batch_size=4,
        max_steps=6,
        lr=1e-3,
        log_every=1,
        max_length=64,
        eval_fraction=0.0,
        warmup_ratio=0.0,
        report_to="none",
        output_dir=str(tmp_path / name),
    )
    return TrainConfig(**{**base, **kw})


def _rows(cfg) -> list[dict]:
    return [json.loads(line) for line in open(Path(cfg.output_dir) / "metrics.jsonl")]


def _weights(cfg) -> dict:
    return load_file(str(Path(cfg.output_dir) / "model" / "model.safetensors"))


def test_regression_resume_equals_uninterrupted(tmp_path, tiny_llama, capsys):
    """Stopped after step 3 (a checkpoint) and resumed: the same per-step losses and bit-identical weights as
    the run that was never stopped; metrics.jsonl holds each step once, and steps 1-3 were not run again (their
    rows, throughput included, are the stopped run's)."""
    whole = _cfg(tmp_path, "whole", tiny_llama)
    train(whole)
    part = _cfg(tmp_path, "part", tiny_llama, stop_after=3)
    stopped = train(part)
    assert stopped.steps == 3 and not (Path(part.output_dir) / "model").exists()
    assert (Path(part.output_dir) / "checkpoints" / "step-00000003" / "model.safetensors").is_file()
    first_three = _rows(part)
    capsys.readouterr()
    train(_cfg(tmp_path, "part", tiny_llama, resume=True))
    err = capsys.readouterr().err
    assert "resumed from" in err and "(step 3)" in err
    got, want = _rows(part), _rows(whole)
    assert got[:3] == first_three
    assert [r["step"] for r in got] == [1, 2, 3, 4, 5, 6]
    assert [r["loss"] for r in got] == [r["loss"] for r in want]
    w1, w2 = _weights(whole), _weights(part)
    assert w1.keys() == w2.keys() and all(torch.equal(w1[k], w2[k]) for k in w1)


def test_regression_first_step_loss_is_the_masked_mse_of_the_first_batch(tmp_path, tiny_llama):
    """The logged loss of step 1 is the masked MSE of the untrained model on the records ``random_plan`` gives
    step 1 (seed 0, epoch 0), computed here from the same initial model: the data order and the loss are the
    core's, not a private loop's."""
    cfg = _cfg(tmp_path, "one", tiny_llama, max_steps=1)
    names, scales, items, _, _ = load_rated_split(cfg)
    rm = AttributeRewardModel.from_backbone(tiny_llama, names, scales, max_length=64, seed=0)
    idx = random_plan(len(items), 4, 1, 0, 0)[0]
    target, mask = targets_and_mask([items[i].ratings for i in idx])
    with torch.no_grad():
        want = float(
            masked_mse(rm(**rm.collate([rm.encode(items[i].prompt, items[i].response) for i in idx])), target, mask)
        )
    train(cfg)
    (row,) = _rows(cfg)
    assert row["step"] == 1 and row["loss"] == pytest.approx(want, rel=1e-5)
    assert set(row) >= {"epoch", "lr", "grad_norm", "rows_per_s"}


def test_regression_nonfinite_loss_stops_or_is_skipped(tmp_path, tiny_llama, monkeypatch):
    """A NaN loss at step 2 stops the run naming the step (no model written); with --skip-nonfinite 1 the step is
    skipped and counted and the run finishes."""
    import rewardlab.multiobjective.train as mo_train

    calls = {"n": 0}
    real = mo_train.masked_mse

    def poisoned(pred, target, mask):
        calls["n"] += 1
        out = real(pred, target, mask)
        return out * float("nan") if calls["n"] == 2 else out

    monkeypatch.setattr(mo_train, "masked_mse", poisoned)
    cfg = _cfg(tmp_path, "nan", tiny_llama, max_steps=3)
    with pytest.raises(NonFiniteError, match="diverged at step 2"):
        train(cfg)
    assert not (Path(cfg.output_dir) / "model").exists()
    calls["n"] = 0
    cfg = _cfg(tmp_path, "skip", tiny_llama, max_steps=3, skip_nonfinite=1)
    train(cfg)
    rows = _rows(cfg)
    assert rows[1]["loss"] is None and rows[1]["skipped_nonfinite"] == 1 and rows[2]["loss"] is not None


def _train_rows(rows) -> list[dict]:
    return [r for r in rows if "loss" in r]


def _eval_rows(rows) -> list[dict]:
    return [r for r in rows if "eval_loss" in r]


def _summary(cfg) -> dict:
    return json.loads((Path(cfg.output_dir) / "train_summary.json").read_text())


def test_regression_eval_every_scores_the_held_out_split_at_those_steps(tmp_path, tiny_llama, monkeypatch):
    """--eval-every 3 of 6 steps: a held-out row after steps 3 and 6; the one of step 3 is ``_regression_eval`` of
    the model at step 3 (its checkpoint) on the split's held-out rows, the one of step 6 is the final summary's
    ``held_out``; the training losses and the weights are those of the run without --eval-every (scoring draws no
    random number and moves no data), which logs no held-out row."""
    plain = _cfg(tmp_path, "plain", tiny_llama, eval_fraction=0.3)
    train(plain)
    cfg = _cfg(tmp_path, "every", tiny_llama, eval_fraction=0.3, eval_every=3, save_every=3)
    modes = []
    real_forward = AttributeRewardModel.forward

    def forward(self, *a, **k):
        if torch.is_grad_enabled():  # a training step's forward (scoring runs under no_grad)
            modes.append(self.training)
        return real_forward(self, *a, **k)

    monkeypatch.setattr(AttributeRewardModel, "forward", forward)
    train(cfg)
    monkeypatch.undo()
    assert modes == [True] * 6  # back in training mode after each evaluation
    rows = _rows(cfg)
    evals = _eval_rows(rows)
    assert [r["step"] for r in evals] == [3, 6] and not _eval_rows(_rows(plain))
    assert [r["step"] for r in rows] == [1, 2, 3, 3, 4, 5, 6, 6]  # each after its step's training row
    assert [r["loss"] for r in _train_rows(rows)] == [r["loss"] for r in _rows(plain)]
    w1, w2 = _weights(plain), _weights(cfg)
    assert all(torch.equal(w1[k], w2[k]) for k in w1)

    summary = _summary(cfg)
    assert evals[-1]["eval_attributes"] == summary["held_out"] == _summary(plain)["held_out"]
    names, scales, _, held, _ = load_rated_split(cfg)
    assert evals[0]["eval_n"] == len(held) == summary["n_eval"] > 1
    rm = AttributeRewardModel.from_backbone(tiny_llama, names, scales, max_length=64, seed=0)
    rm.model.load_state_dict(
        load_file(str(Path(cfg.output_dir) / "checkpoints" / "step-00000003" / "model.safetensors"))
    )
    want = _regression_eval(rm, held, cfg.eval_batch_size)[0]
    assert evals[0]["eval_attributes"] == want != summary["held_out"]
    rated = [m for m in want.values() if m["n"]]
    assert evals[0]["eval_mse"] == pytest.approx(sum(m["mse"] for m in rated) / len(rated))
    assert evals[0]["eval_loss"] == pytest.approx(sum(m["n"] * m["mse"] for m in rated) / sum(m["n"] for m in rated))
    pearson = [m["pearson"] for m in want.values() if m["pearson"] is not None]
    assert pearson and evals[0]["eval_pearson_mean"] == pytest.approx(sum(pearson) / len(pearson))


def test_regression_eval_every_without_a_held_out_split_logs_no_eval_row(tmp_path, tiny_llama):
    """As the scalar trainer: --eval-every with --eval-fraction 0 (no held-out rows) is no error and logs nothing."""
    cfg = _cfg(tmp_path, "none", tiny_llama, max_steps=2, eval_every=1)
    train(cfg)
    assert [r["step"] for r in _rows(cfg)] == [1, 2] and not _eval_rows(_rows(cfg))
    assert _summary(cfg)["held_out"] == {}


def test_regression_resume_with_eval_every_equals_uninterrupted(tmp_path, tiny_llama):
    """Checkpoints at steps 2 and 4, stopped after step 4 (held-out row at step 3 written), the step-4 checkpoint
    lost: --resume continues from step 2, cuts the rows after it (the step-3 held-out row with them) and runs steps
    3-6 again; the training losses, the held-out rows and the weights are those of the uninterrupted run, each
    step's rows once."""
    kw = dict(eval_fraction=0.3, eval_every=3, save_every=2)
    whole = _cfg(tmp_path, "whole", tiny_llama, **kw)
    train(whole)
    part = _cfg(tmp_path, "part", tiny_llama, stop_after=4, **kw)
    train(part)
    assert [r["step"] for r in _eval_rows(_rows(part))] == [3]
    ckpts = Path(part.output_dir) / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["step-00000002", "step-00000004"]
    shutil.rmtree(ckpts / "step-00000004")
    train(_cfg(tmp_path, "part", tiny_llama, resume=True, **kw))
    got, want = _rows(part), _rows(whole)
    assert [r["step"] for r in got] == [r["step"] for r in want] == [1, 2, 3, 3, 4, 5, 6, 6]
    assert [r["loss"] for r in _train_rows(got)] == [r["loss"] for r in _train_rows(want)]
    assert _eval_rows(got) == _eval_rows(want)
    w1, w2 = _weights(whole), _weights(part)
    assert all(torch.equal(w1[k], w2[k]) for k in w1)


def test_resume_of_a_run_without_checkpoints_is_refused(tmp_path, tiny_llama):
    with pytest.raises(RewardlabError, match="has no checkpoints"):
        train(_cfg(tmp_path, "ridge", tiny_llama, stage1="ridge", resume=True))


def _rated_file(tmp_path, name: str = "rated.jsonl", first: int = 0) -> str:
    """HelpSteer2 rows ``first`` to ``first + 15`` with ratings missing unevenly (row i lacks helpfulness when
    i % 3 == 0, verbosity when i % 4 == 1): the two processes' slices of a batch hold different numbers of labels."""
    path = tmp_path / name
    rows = []
    for i in range(first, first + 16):
        row = {
            "prompt": f"Question {i}: add {i} and {i}.",
            "response": f"It is {2 * i}." if i % 2 else f"Maybe {i}.",
            "helpfulness": None if i % 3 == 0 else i % 5,
            "correctness": (i * 3) % 5,
            "coherence": 4 - i % 5,
            "complexity": i % 2,
            "verbosity": None if i % 4 == 1 else (i * 7) % 5,
        }
        rows.append(json.dumps(row))
    path.write_text("\n".join(rows) + "\n")
    return str(path)


@pytest.mark.slow
def test_two_process_regression_equals_one_process(tmp_path, tiny_llama):
    """torchrun --nproc_per_node 2 (gloo, real DDP) on ratings missing unevenly: the same global batches, per-step
    losses within 1e-5 and the same weights as one process (each process's backward is scaled by the labels of the
    whole global batch, not its own); --eval-every 2 on --eval-data does not hang (every process scores the held-out
    rows, rank 0 writes) and its rows are those of one process."""
    data, held = _rated_file(tmp_path), _rated_file(tmp_path, "held.jsonl", first=16)
    one = _cfg(tmp_path, "one", tiny_llama, max_steps=4, data=data, eval_data=held, eval_every=2)
    train(one)
    args = [
        "--objective",
        "regression",
        "--stage1",
        "gradient",
        "--backbone",
        tiny_llama,
        "--data",
        data,
        "--batch-size",
        "4",
        "--max-steps",
        "4",
        "--lr",
        "1e-3",
        "--log-every",
        "1",
        "--max-length",
        "64",
        "--eval-data",
        held,
        "--eval-every",
        "2",
        "--warmup-ratio",
        "0",
        "--report-to",
        "none",
        "--output-dir",
        str(tmp_path / "two"),
    ]
    r = torchrun_train(args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    two = [json.loads(line) for line in open(tmp_path / "two" / "metrics.jsonl")]
    assert [row["step"] for row in two] == [1, 2, 2, 3, 4, 4]  # one writer
    assert [row["loss"] for row in _train_rows(two)] == pytest.approx(
        [row["loss"] for row in _train_rows(_rows(one))], abs=1e-5
    )
    evals_one, evals_two = _eval_rows(_rows(one)), _eval_rows(two)
    assert [r["step"] for r in evals_two] == [2, 4] and evals_two[0]["eval_n"] == 16
    for a, b in zip(evals_one, evals_two):
        assert b["eval_loss"] == pytest.approx(a["eval_loss"], rel=1e-4)
        for name, m in a["eval_attributes"].items():
            assert b["eval_attributes"][name]["mse"] == pytest.approx(m["mse"], rel=1e-4), name
    w1, w2 = _weights(one), load_file(str(tmp_path / "two" / "model" / "model.safetensors"))
    for k in w1:
        assert torch.allclose(w1[k], w2[k], atol=2e-5), k
