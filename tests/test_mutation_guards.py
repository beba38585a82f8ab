"""Tests that fail when one guarded line of the training or evaluation maths changes (issue 16, item 8).

Each was checked by applying the mutation named in its docstring to the source and seeing it fail:
warmup removed, cosine replaced by linear, gradient clipping removed, weight decay dropped, the stored
normalisation std replaced by the mean, record accuracy replaced by pair accuracy.
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from rewardlab.data import write_jsonl
from rewardlab.data.record import Comparison
from rewardlab.models.reward_model import RewardModel
from rewardlab.training.recipe import lr_factor
from rewardlab.training.train import TrainConfig, eval_accuracies, train

WORDS = "apple pear plum fig kiwi lime lemon mango".split()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("mg")
    recs = [
        Comparison(
            prompt=f"Say {WORDS[i % 8]} #{i}",
            responses=(f"I like {WORDS[i % 8]}.", f"I like {WORDS[(i + 3) % 8]}."),
            chosen=0,
        )
        for i in range(24)
    ]
    write_jsonl(recs[:16], str(root / "train.jsonl"))
    write_jsonl(recs[16:], str(root / "eval.jsonl"))
    return root


def _train(tmp_path, name, tiny_llama, data, **kw):
    kw = {
        "max_length": 48,
        "lr": 1e-3,
        "log_every": 1,
        "seed": 0,
        "batch_size": 4,
        "eval_data": None,
        "eval_fraction": 0.0,
        **kw,
    }
    cfg = TrainConfig(data=str(data / "train.jsonl"), backbone=tiny_llama, output_dir=str(tmp_path / name), **kw)
    result = train(cfg)
    return cfg, result


def _metrics(cfg):
    return [json.loads(line) for line in open(Path(cfg.output_dir) / "metrics.jsonl")]


# ---- schedule ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "schedule, expected",
    [
        # total 8 steps, warmup_ratio 0.25: warmup = int(0.25 * 8) = 2 steps of (step + 1) / (warmup + 1);
        # then progress p = (step - 2) / (8 - 2): linear 1 - p, cosine (1 + cos(pi p)) / 2, constant 1
        ("linear", [1 / 3, 2 / 3, 1.0, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6]),
        (
            "cosine",
            [1 / 3, 2 / 3, 1.0, (1 + math.cos(math.pi / 6)) / 2, 0.75, 0.5, 0.25, (1 + math.cos(5 * math.pi / 6)) / 2],
        ),
        ("constant", [1 / 3, 2 / 3, 1, 1, 1, 1, 1, 1]),
    ],
)
def test_lr_schedule_values_by_hand(schedule, expected):
    """Catches: warmup removed (step 0 would be 1.0, not 1/3); cosine replaced by linear (step 4: 0.75 vs 4/6)."""
    assert [lr_factor(s, 8, 0.25, schedule) for s in range(8)] == pytest.approx(expected, abs=1e-12)


def test_the_trainer_applies_the_schedule(tmp_path, tiny_llama, data):
    """The ``lr`` logged after step d is lr · f(d) with f the cosine schedule above (8 steps, warmup 2): the
    schedule is wired into the optimizer, not only defined. Catches the same mutations inside ``train``."""
    cfg, _ = _train(tmp_path, "sched", tiny_llama, data, max_steps=8, lr_schedule="cosine", warmup_ratio=0.25, lr=1e-3)
    lrs = [r["lr"] for r in _metrics(cfg) if "loss" in r]
    assert lrs[:7] == pytest.approx([1e-3 * lr_factor(d, 8, 0.25, "cosine") for d in range(1, 8)], rel=1e-9)
    assert lrs[3] == pytest.approx(1e-3 * 0.75)  # the row of step 4 logs f(4): p = (4 - 2) / 6, (1 + cos(pi/3)) / 2


# ---- one AdamW step ---------------------------------------------------------------------------------
def _one_step(tmp_path, name, tiny_llama, data, **kw):
    cfg, res = _train(tmp_path, name, tiny_llama, data, max_steps=1, warmup_ratio=0.0, lr_schedule="constant", **kw)
    return load_file(str(Path(res.model_dir) / "model.safetensors")), _metrics(cfg)


def test_weight_decay_one_step_by_hand(tmp_path, tiny_llama, data):
    """AdamW decouples the decay: w1 = w0 - lr·wd·w0 - lr·adam(g), and g is the same in both runs (it is
    taken at w0). So w1(wd) - w1(0) = -lr·wd·w0 exactly for every matrix, and 0 for biases and norms
    (ndim < 2 are not decayed). lr 1e-3, wd 0.5: the difference is -5e-4·w0. Catches: weight decay dropped."""
    w0 = RewardModel.from_backbone(tiny_llama, max_length=48, seed=0).model.state_dict()
    plain, _ = _one_step(tmp_path, "wd0", tiny_llama, data, weight_decay=0.0)
    decayed, _ = _one_step(tmp_path, "wd", tiny_llama, data, weight_decay=0.5)
    checked = 0
    for k, v in plain.items():
        diff = decayed[k] - v
        if v.ndim >= 2:
            torch.testing.assert_close(diff, -5e-4 * w0[k], atol=2e-7, rtol=1e-3)
            checked += 1
        else:
            assert torch.equal(diff, torch.zeros_like(diff)), k
    assert checked >= 3


def test_gradient_clipping_shrinks_the_first_adam_step(tmp_path, tiny_llama, data):
    """Adam's first step is lr·g/(|g| + eps) per weight (m̂ = g, v̂ = g²): about lr wherever |g| >> eps = 1e-8.
    Clipping the global norm G to c = 1e-7·G scales every g by 1e-7, to |g| ≲ eps, so the step becomes
    lr·|g'|/(|g'| + eps) < lr/2 for every weight. Unclipped the largest step is ≈ lr. The logged grad_norm is
    G before clipping either way. Catches: gradient clipping removed."""
    w0 = RewardModel.from_backbone(tiny_llama, max_length=48, seed=0).model.state_dict()
    free, m_free = _one_step(tmp_path, "free", tiny_llama, data, max_grad_norm=0.0)
    G = m_free[0]["grad_norm"]
    clipped, m_clip = _one_step(tmp_path, "clip", tiny_llama, data, max_grad_norm=1e-7 * G)
    assert m_clip[0]["grad_norm"] == pytest.approx(G, rel=1e-5)
    step_free = max(float((free[k] - w0[k]).abs().max()) for k in free)
    step_clip = max(float((clipped[k] - w0[k]).abs().max()) for k in clipped)
    assert step_free == pytest.approx(1e-3, rel=0.01)
    assert step_clip < 0.5e-3


# ---- normalisation ----------------------------------------------------------------------------------
def test_saved_normalisation_is_the_held_out_mean_and_population_std(tmp_path, tiny_llama, data):
    """spec.normalization = mean and std (numpy's population std, ddof 0) of the trained model's rewards on
    every held-out response; recomputed here from the saved model. Catches: std replaced by the mean."""
    cfg, res = _train(tmp_path, "norm", tiny_llama, data, max_steps=2, eval_data=str(data / "eval.jsonl"))
    rm = RewardModel.load(res.model_dir)
    from rewardlab.data import load_comparisons

    held = load_comparisons(str(data / "eval.jsonl")).records
    flat = np.array([s for row in rm.score_comparisons(held) for s in row])
    stats = rm.spec.normalization
    assert stats["n"] == 16 and stats["mean"] == pytest.approx(flat.mean(), abs=1e-6)
    assert stats["std"] == pytest.approx(flat.std(), abs=1e-6)
    assert abs(stats["std"] - stats["mean"]) > 1e-4  # the two differ, so the test can tell them apart


def test_normalize_arithmetic(tiny_llama):
    """(r - mean) / std with mean 1, std 2: 5 -> 2, -1 -> -1, 1 -> 0 (the mean in place of the std: 4, -2, 0)."""
    rm = RewardModel.from_backbone(tiny_llama, max_length=48)
    rm.spec.normalization = {"mean": 1.0, "std": 2.0}
    assert rm.normalize([5.0, -1.0, 1.0]) == [2.0, -1.0, 0.0]


# ---- record vs pair accuracy --------------------------------------------------------------------
def test_eval_accuracy_is_pair_accuracy_and_record_accuracy_is_named_so():
    """Two 3-response records ranked 0 > 1 > 2. Record A scores (3, 1, 2): pairs 0>1 won, 0>2 won, 1>2 lost:
    2 of 3 pairs, the record is not won. Record B scores (3, 2, 1): all 3 pairs, record won.
    Record accuracy 1/2, pair accuracy 5/6. Catches: eval_accuracy switched to record accuracy (or the two swapped)."""
    recs = [Comparison(prompt=f"p{i}", responses=("a", "b", "c"), chosen=0, ranking=(0, 1, 2)) for i in range(2)]
    got = eval_accuracies(recs, [[3.0, 1.0, 2.0], [3.0, 2.0, 1.0]])
    assert got["eval_accuracy"] == pytest.approx(5 / 6) and got["eval_record_accuracy"] == pytest.approx(0.5)
    assert "eval_pair_accuracy" not in got
    from rewardlab.metrics.summary import evaluate_scores

    full = evaluate_scores(recs, [[3.0, 1.0, 2.0], [3.0, 2.0, 1.0]], n_boot=0)
    assert full["record_accuracy"] == pytest.approx(0.5) and full["accuracy"] == pytest.approx(5 / 6)


def test_the_trainer_logs_pair_accuracy_as_eval_accuracy(tmp_path, tiny_llama, data):
    """The final metrics row's eval_accuracy is the share of strict pairs won over 3-response held-out records,
    recomputed here from the saved model's scores; eval_record_accuracy is the share of records with every pair
    of the ranking won. The data are chosen so the two differ. Catches: the final row's keys swapped."""
    held = [
        Comparison(
            prompt=f"Say {WORDS[i % 8]} #{i}",
            responses=(
                f"I like {WORDS[i % 8]}.",
                f"{WORDS[(i + 1) % 8]} is fine.",
                f"No {WORDS[(i + 5) % 8]} here, sorry.",
            ),
            chosen=0,
            ranking=(0, 1, 2),
        )
        for i in range(12)
    ]
    write_jsonl(held, str(tmp_path / "held3.jsonl"))
    cfg, res = _train(tmp_path, "acc", tiny_llama, data, max_steps=1, eval_data=str(tmp_path / "held3.jsonl"))
    scores = RewardModel.load(res.model_dir).score_comparisons(held)
    pairs_won = [[s[0] > s[1], s[0] > s[2], s[1] > s[2]] for s in scores]
    record_acc = sum(all(p) for p in pairs_won) / 12
    pair_acc = sum(sum(p) for p in pairs_won) / 36
    assert record_acc != pytest.approx(pair_acc)  # else the test could not tell them apart
    final = [r for r in _metrics(cfg) if "eval_accuracy" in r][-1]
    assert final["eval_accuracy"] == pytest.approx(pair_acc)
    assert final["eval_record_accuracy"] == pytest.approx(record_acc)
    summary = json.loads((Path(cfg.output_dir) / "train_summary.json").read_text())["final_eval"]
    assert summary["accuracy"] == pytest.approx(pair_acc) and summary["record_accuracy"] == pytest.approx(record_acc)
