"""CLoud training on the training core: its BT part is the scalar trainer's (collate_pairs + batch_loss: every
strict pair of a ranking, ties as the loss treats them, record weights), and a step's loss is BT + λ·LM worked
out by hand on a tiny model."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from rewardlab.data.record import Comparison
from rewardlab.judges.cloud import CloudRewardModel, cloud_features, train_cloud
from rewardlab.training.recipe import LoopOptions

CRITIQUES = [["Right and short.", "Close but off.", "Wrong sum."], ["Helpful.", "Also helpful.", "Unhelpful."]]


@pytest.fixture()
def model(tiny_llama):
    return CloudRewardModel.from_base(tiny_llama, seed=0, device="cpu", max_critique_tokens=8)


def _records() -> list[Comparison]:
    """A 3-response ranking 0 > 1 > 2, and a record with 0 and 1 tied above 2, weight 2."""
    return [
        Comparison("What is 2 plus 2?", ("4.", "About 4.", "5."), chosen=0, ranking=(0, 1, 2)),
        Comparison("Say hello.", ("Hello!", "Hi!", "No."), chosen=0, tiers=((0, 1), (2,)), weight=2.0),
    ]


def _by_hand(model, records, critiques):
    """Each row's reward and its critique tokens' log-likelihood, one row per forward (no padding at all)."""
    feats = cloud_features(model, records, critiques)
    rewards, token_nll = [], []
    with torch.no_grad():
        for row in feats:
            r_row = []
            for f in row:
                ids = torch.tensor([f["input_ids"]])
                r, logits = model(input_ids=ids, attention_mask=torch.ones_like(ids))
                r_row.append(float(r[0]))
                logp = torch.log_softmax(logits[0].float(), -1)
                # token t (t >= the critique's start) is predicted at position t - 1
                token_nll += [
                    -float(logp[t - 1, f["input_ids"][t]]) for t in range(f["critique_start"], len(f["input_ids"]))
                ]
            rewards.append(r_row)
    return rewards, token_nll


def _train(model, records, lr: float, lm_coef: float = 0.5, epochs: int = 1) -> list[dict]:
    """CLoud training at a constant ``lr``, 2 records a step; its metrics rows."""
    opts = LoopOptions(lr=lr, lr_schedule="constant")
    return train_cloud(model, records, CRITIQUES, opts=opts, lm_coef=lm_coef, epochs=epochs, batch_size=2).history


def _nls(x: float) -> float:  # -log σ(x)
    return math.log1p(math.exp(-x))


def test_cloud_bt_counts_every_ranked_pair_drops_ties_and_weights_records(model):
    """Record A (ranking 0 > 1 > 2) gives the pairs (0,1), (0,2), (1,2); record B (tiers ((0, 1), (2,)), weight 2)
    gives (0,2), (1,2), its tie (0,1) counting for neither under ``bt``. The scalar trainer's BT is the weighted sum
    over those 5 strict pairs divided by the 5 units:

        bt = [ℓ(a0−a1) + ℓ(a0−a2) + ℓ(a1−a2) + 2·ℓ(b0−b2) + 2·ℓ(b1−b2)] / 5,   ℓ(x) = −log σ(x).

    The old loop took (chosen, other) pairs only — (0,1), (0,2) of A, (0,1), (0,2) of B, unweighted mean — which
    differs here, so the test tells the two apart."""
    records = _records()
    (a, b), _ = _by_hand(model, records, CRITIQUES)
    want = (
        _nls(a[0] - a[1]) + _nls(a[0] - a[2]) + _nls(a[1] - a[2]) + 2 * _nls(b[0] - b[2]) + 2 * _nls(b[1] - b[2])
    ) / 5
    old = (_nls(a[0] - a[1]) + _nls(a[0] - a[2]) + _nls(b[0] - b[1]) + _nls(b[0] - b[2])) / 4
    assert abs(want - old) > 1e-4
    history = _train(model, records, lr=1e-3, lm_coef=0.5, epochs=1)
    assert history[0]["bt_loss"] == pytest.approx(want, abs=1e-5)


def test_cloud_step_loss_is_bt_plus_lm_coef_times_lm_by_hand(model):
    """Step 1's loss = bt + λ·lm with λ = 0.3: bt as above, lm the mean −log p of every critique token (and the
    end of turn after it) over the 6 rows, each row forwarded alone here; the batch forward pads them on the right,
    which changes neither (causal attention, explicit position ids). Step 2's weights have moved (lr 1e-2), so its
    loss differs: the update was applied."""
    records = _records()
    (a, b), nll = _by_hand(model, records, CRITIQUES)
    bt = (_nls(a[0] - a[1]) + _nls(a[0] - a[2]) + _nls(a[1] - a[2]) + 2 * _nls(b[0] - b[2]) + 2 * _nls(b[1] - b[2])) / 5
    lm = sum(nll) / len(nll)
    history = _train(model, records, lr=1e-2, lm_coef=0.3, epochs=2)
    first = history[0]
    assert first["lm_loss"] == pytest.approx(lm, abs=1e-5) and first["bt_loss"] == pytest.approx(bt, abs=1e-5)
    assert first["loss"] == pytest.approx(bt + 0.3 * lm, abs=1e-5)
    assert history[1]["loss"] != pytest.approx(first["loss"], abs=1e-4)
    assert first["lr"] == pytest.approx(1e-2) and first["grad_norm"] is not None and first["grad_norm"] > 0


def test_cloud_nonfinite_loss_stops_the_run(model, monkeypatch):
    """A NaN loss stops CLoud training at that step with the core's message (before, a NaN LM term was replaced
    by 0 and the run went on)."""
    import rewardlab.judges.cloud as cloud
    from rewardlab.core.finite import NonFiniteError

    real = F.cross_entropy
    monkeypatch.setattr(cloud.F, "cross_entropy", lambda *a, **kw: real(*a, **kw) * float("nan"))
    with pytest.raises(NonFiniteError, match="diverged at step 1"):
        _train(model, _records(), lr=1e-3)
