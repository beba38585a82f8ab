"""Gating runs on the training core's guard and final save: a diverging gate stops with a clear error and writes no
model; a crash during the final save never leaves the ungated stage-1 copy as ``OUTPUT/model``; options gating
cannot honour are refused before work starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from rewardlab.cli import main
from rewardlab.multiobjective.model import AttributeRewardModel


@pytest.fixture(scope="module")
def ridge_model(tiny_llama, tmp_path_factory):
    from rewardlab.training.train import TrainConfig, train

    out = tmp_path_factory.mktemp("ridge")
    cfg = TrainConfig(
        objective="regression",
        stage1="ridge",
        backbone=tiny_llama,
        data="embedded",
        embedded_size=30,
        weights="equal",
        output_dir=str(out / "run"),
        eval_batch_size=16,
    )
    return str(train(cfg).model_dir)


def _gating(ridge_model: str, out: Path, *extra: str) -> list[str]:
    return [
        "train",
        "--objective",
        "gating",
        "--init-from",
        ridge_model,
        "--data",
        "embedded",
        "--embedded-size",
        "30",
        "--gate-hidden",
        "8",
        "--gate-layers",
        "1",
        "--gate-steps",
        "20",
        "--eval-batch-size",
        "16",
        "--output-dir",
        str(out),
        *extra,
    ]


def test_a_diverging_gate_stops_with_a_clear_error_and_writes_no_model(ridge_model, tmp_path, capsys):
    """--gate-lr 1e30: the first AdamW step moves every gate weight by ~1e30, so a later loss or gradient norm is
    not finite; the core's guard stops the run (exit 2, one line naming the step, no traceback) and no model is
    written (before the guard, a NaN gate was saved)."""
    out = tmp_path / "gate"
    code = main(_gating(ridge_model, out, "--gate-lr", "1e30"))
    err = capsys.readouterr().err
    assert code == 2, err
    assert "non-finite" in err and "Traceback" not in err
    assert not (out / "model").exists()


def test_a_crash_during_the_final_save_leaves_no_ungated_model(ridge_model, tmp_path, monkeypatch, capsys):
    """The gated model is written beside OUTPUT/model and renamed into place: a crash while writing it (here the
    gate's save raising, as a kill would stop it) leaves no OUTPUT/model — before, the stage-1 files had already
    been copied there, so an ungated model stood as the result."""
    out = tmp_path / "gate"

    def crash(self, path):
        Path(path).mkdir(parents=True, exist_ok=True)
        raise KeyboardInterrupt("killed during the save")

    monkeypatch.setattr(AttributeRewardModel, "save", crash)
    assert main(_gating(ridge_model, out)) == 130  # the CLI ends an interrupt with 130 and one line
    assert "Traceback" not in capsys.readouterr().err
    assert not (out / "model").exists()


def test_a_good_gating_run_saves_a_gated_model(ridge_model, tmp_path):
    out = tmp_path / "gate"
    assert main(_gating(ridge_model, out)) == 0
    assert AttributeRewardModel.load(out / "model").gate is not None
    assert not list(out.glob(".model.tmp*"))  # the temporary directory became the model


@pytest.mark.parametrize("flags", [["--save-every", "5"], ["--stop-after", "3"]])
def test_gating_refuses_checkpoint_options(ridge_model, tmp_path, capsys, flags):
    out = tmp_path / "gate"
    assert main(_gating(ridge_model, out, *flags)) == 2
    err = capsys.readouterr().err
    assert f"{flags[0]} does not apply to --objective gating" in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())
