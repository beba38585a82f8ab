"""train-verifier on the core: resume = uninterrupted, refusals before training (exit 2, no traceback), eval."""

import json

import pytest
import torch
from safetensors.torch import load_file

from rewardlab.cli import main
from rewardlab.verifiers.evaluate import candidates_report, processbench_report


def _train(tiny, out, *extra):
    return main(
        ["train-verifier", "--backbone", tiny, "--synthetic-problems", "12", "--eval-fraction", "0.5",
         "--batch-size", "4", "--lr", "1e-3", "--output-dir", str(out), "-q", *extra]
    )  # fmt: skip


def _steps(path):
    return [r for r in map(json.loads, (path / "metrics.jsonl").read_text().splitlines()) if "step" in r]


@pytest.mark.parametrize("objective", ["prm", "orm"])
def test_resume_equals_uninterrupted(tiny_llama, tmp_path, objective):
    assert _train(tiny_llama, tmp_path / "a", "--objective", objective) == 0
    assert _train(tiny_llama, tmp_path / "b", "--objective", objective, "--stop-after", "3") == 0
    assert not (tmp_path / "b" / "model").exists() and (tmp_path / "b" / "checkpoints").is_dir()
    assert _train(tiny_llama, tmp_path / "b", "--objective", objective, "--resume") == 0
    a, b = _steps(tmp_path / "a"), _steps(tmp_path / "b")
    assert len(a) == len(b) > 3
    assert [r["loss"] for r in a] == [r["loss"] for r in b]
    wa, wb = (
        load_file(str(tmp_path / "a/model/model.safetensors")),
        load_file(str(tmp_path / "b/model/model.safetensors")),
    )
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    spec = json.loads((tmp_path / "a" / "model" / "rewardlab.json").read_text())
    assert spec["objective"] == objective and spec["aggregation"] == ("min" if objective == "prm" else "last_token")
    assert report["held_out_problems"] > 0 and report["held_out"]["candidates"]["top1"]["ci95"] is not None


def test_first_step_loss_worked_by_hand(tiny_llama, tmp_path):
    """The first row's loss is the mean over the step's solutions of prm_bce on the untrained model, recomputed
    here from the same initial weights (seeded head) and the same first-step solutions."""
    from rewardlab.verifiers.losses import prm_bce
    from rewardlab.verifiers.train import (
        TrainVerifierConfig,
        build_model,
        load_problems,
        plan_for,
        problem_groups,
        trainable_solutions,
    )

    assert _train(tiny_llama, tmp_path / "r", "--stop-after", "1", "--head-dropout", "0") == 0
    cfg = TrainVerifierConfig(
        backbone=tiny_llama, synthetic_problems=12, eval_fraction=0.5, batch_size=4, head_dropout=0
    )
    train, _, info = load_problems(cfg)
    sols, _ = trainable_solutions(train, "prm")
    vm = build_model(cfg, "bce", "binary")
    _, items = plan_for(problem_groups(sols), 1, 4, 0).step(0)
    enc = [vm.encode(sols[i].prompt, sols[i].steps) for i in items]
    b = vm.batch(enc, [sols[i].step_labels for i in items])
    with torch.no_grad():
        want = prm_bce(vm(b["input_ids"], b["attention_mask"]), b["labels"]).mean().item()
    assert _steps(tmp_path / "r")[0]["loss"] == pytest.approx(want, abs=1e-6)


def test_marker_refused_before_training(tiny_llama, tmp_path, capsys):
    rc = _train(tiny_llama, tmp_path / "m", "--marker", "<step>")
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert "step marker '<step>' tokenizes to" in err and "--marker-special" in err
    assert not (tmp_path / "m" / "metrics.jsonl").exists()  # refused before any step
    assert _train(tiny_llama, tmp_path / "s", "--marker", "<step>", "--marker-special", "--stop-after", "1") == 0


def test_truncation_refused_or_reported(tiny_llama, tmp_path, capsys):
    rc = _train(tiny_llama, tmp_path / "t", "--max-length", "30", "--on-truncation", "refuse")
    err = capsys.readouterr().err
    assert rc == 2 and "--max-length 30 cuts off steps of" in err and "Traceback" not in err
    assert _train(tiny_llama, tmp_path / "u", "--max-length", "30") == 0
    r = json.loads((tmp_path / "u" / "report.json").read_text())
    assert r["truncation"]["step_labels_dropped"] > 0 and r["truncation"]["solutions_cut"] > 0


def test_processbench_six_rows_by_hand():
    """Six rows, labels (2, 0, 1, −1, −1, −1); step scores with threshold 0.5 predict (2, 1, 1, −1, 0, −1):
    acc_err = 2/3 (rows 1, 3), acc_cor = 2/3 (rows 4, 6), F1 = 2·(2/3)(2/3)/(4/3) = 2/3. Never-wrong: acc_err 0,
    acc_cor 1, F1 0. Random-step (K = 3, 2, 2, 2, 1, 3): erroneous rows 1/4, 1/3, 1/3 → 11/36; correct rows
    1/3, 1/2, 1/4 → 13/36; F1 = 2·(11/36)(13/36)/(24/36) = 143/432 = 0.3310."""
    scores = [[0.9, 0.8, 0.1], [0.9, 0.2], [0.6, 0.4], [0.7, 0.9], [0.3], [0.8, 0.9, 0.7]]
    labels = [2, 0, 1, -1, -1, -1]
    rows = [{"split": "toy", "label": lab, "step_scores": s} for s, lab in zip(scores, labels)]
    r = processbench_report(rows, "toy", threshold=0.5)["splits"]["toy"]
    assert r["model"]["acc_err"] == pytest.approx(2 / 3) and r["model"]["acc_cor"] == pytest.approx(2 / 3)
    assert r["model"]["f1"] == pytest.approx(2 / 3)
    assert r["never_wrong"] == {"acc_err": 0.0, "acc_cor": 1.0, "f1": 0.0, "n_err": 3, "n_cor": 3}
    assert r["random_step"]["f1"] == pytest.approx(143 / 432)
    chosen = processbench_report(rows, "toy")
    assert chosen["f1_mean"] >= 2 / 3 and "chosen on split 'toy'" in chosen["threshold_rule"]


def test_candidates_report_by_hand():
    """Two problems. P1 scores (0.9, 0.5, 0.1), correct (1, 0, 0): top-1 1, pairwise 1, oracle 1, random 1/3,
    majority answers (5, 7, 7) → '7' wins → 0. P2 scores (0.2, 0.2), correct (0, 1): top-1 tie → ½, pairwise ½,
    oracle 1, random ½, majority (4, 3) tied → ½."""
    groups = [
        {"scores": [0.9, 0.5, 0.1], "correct": [1, 0, 0], "answers": ["5", "7", "7"]},
        {"scores": [0.2, 0.2], "correct": [0, 1], "answers": ["4", "3"]},
    ]
    r = candidates_report(groups)
    assert r["top1"]["value"] == 0.75 and r["pairwise"]["value"] == 0.75
    b = r["baselines"]
    assert b["oracle"]["value"] == 1.0 and b["random"]["value"] == pytest.approx(5 / 12)
    assert b["majority_vote"]["value"] == 0.25
    bon = r["best_of_n"]  # n = 1: the mean correctness (5/12); n = 2 = N of the smaller problem: top-1 of P2 (½),
    assert bon["ns"] == [1, 2] and bon["accuracy"][0] == pytest.approx(5 / 12)  # P1: best of 2 of 3 (C(i-1,1)/3)
    assert bon["accuracy"][1] == pytest.approx((1.0 * (2 / 3) + 0.0 * (1 / 3) + 0.5) / 2)


@pytest.mark.slow
def test_two_processes_equal_one(tiny_llama, tmp_path):
    """torchrun, 2 processes (gloo): each takes half of every step's solutions, the gradients are summed; the
    losses per step and the trained weights equal the 1-process run's (head dropout off: it draws per process)."""
    from tests.launch import torchrun_train

    args = ["--backbone", tiny_llama, "--synthetic-problems", "12", "--eval-fraction", "0.5", "--batch-size", "4",
            "--lr", "1e-3", "--head-dropout", "0", "-q"]  # fmt: skip
    assert main(["train-verifier", *args, "--output-dir", str(tmp_path / "one")]) == 0
    run = torchrun_train([*args, "--output-dir", str(tmp_path / "two")], command="train-verifier")
    assert run.returncode == 0, run.stderr[-2000:]
    one, two = _steps(tmp_path / "one"), _steps(tmp_path / "two")
    assert len(one) == len(two) and all(abs(a["loss"] - b["loss"]) <= 1e-5 for a, b in zip(one, two))
    w1, w2 = (load_file(str(tmp_path / d / "model/model.safetensors")) for d in ("one", "two"))
    assert all(torch.allclose(w1[k], w2[k], atol=1e-5) for k in w1)
