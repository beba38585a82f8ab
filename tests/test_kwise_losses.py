"""K-wise, margin, scaled, tie and smoothed losses: worked numbers, K = 2 identities, exact unit counts.

Numbers used below (e = 2.7182818):
  -log σ(1) = log(1 + e^-1) = 0.3132617,   -log σ(2) = log(1 + e^-2) = 0.1269280,
  log(e^2 + e^1 + e^0) = log(11.1073379) = 2.4076060,   log(e^1 + e^0) = log(3.7182818) = 1.3132617.
"""

import math

import pytest
import torch

from rewardlab.data.record import Comparison
from rewardlab.training.collate import collate_pairs, preference_pairs, response_tiers
from rewardlab.training.losses import (
    LOSSES,
    PAD_TIER,
    UNRANKED_TIER,
    LossOptions,
    LossType,
    allpairs_loss,
    batch_loss,
    bradley_terry,
    bt_ties_loss,
    check_options,
    count_units,
    davidson_log_probs,
    group_mean,
    llama2_margin,
    pair_loss,
    pair_margins,
    plackett_luce,
    rao_kupper_log_probs,
    scaled_bradley_terry,
    smoothed_logistic,
)

U = UNRANKED_TIER


def t(*values):
    return torch.tensor(values, dtype=torch.float64)


# --- Plackett-Luce ---------------------------------------------------------------------------------------


def test_plackett_luce_worked_numbers():
    """r = (2, 1, 0), ranking 0 > 1 > 2:
    first choice  -[2 - log(e^2 + e^1 + e^0)] = -(2 - 2.4076060) = 0.4076060,
    second choice -[1 - log(e^1 + e^0)]       = -(1 - 1.3132617) = 0.3132617,
    last          -[0 - log e^0]               = 0;  total 0.7208677.
    Top-1 keeps the first choice only: 0.4076060. The reversed ranking 2 > 1 > 0:
    -[0 - 2.4076060] - [1 - log(e^1 + e^2)] = 2.4076060 + (2.3132617 - 1) = 3.7208677."""
    r = t(2, 1, 0)[None].repeat(3, 1)
    tiers = torch.tensor([[0, 1, 2], [0, 1, 2], [2, 1, 0]])
    full = plackett_luce(r, tiers)
    assert full[0].item() == pytest.approx(0.7208677, abs=1e-6)
    assert full[2].item() == pytest.approx(3.7208677, abs=1e-6)
    assert plackett_luce(r[:1], tiers[:1], top_k=1).item() == pytest.approx(0.4076060, abs=1e-6)
    assert plackett_luce(r[:1], tiers[:1], top_k=2).item() == pytest.approx(0.7208677, abs=1e-6)


def test_plackett_luce_ties_partial_rankings_and_padding():
    """Same r = (2, 1, 0).
    Tie (0 ~ 1) above 2, Breslow: each tied response takes the shared denominator log(e^2+e^1+e^0):
      2·2.4076060 − (2 + 1) = 1.8152120.
    Top-1 partial ranking "0 first, 1 and 2 unranked": only the first choice, 0.4076060.
    A padded slot (tier PAD) changes nothing: K = 2 record (2, 1) padded to 3 = BT(2, 1) = 0.3132617."""
    r = t(2, 1, 0)[None].repeat(3, 1)
    tiers = torch.tensor([[0, 0, 1], [0, U, U], [0, 1, PAD_TIER]])
    got = plackett_luce(r, tiers)
    assert got.tolist() == pytest.approx([1.8152120, 0.4076060, 0.3132617], abs=1e-6)


def test_plackett_luce_is_stable_and_has_finite_gradients():
    """r = (500, -500, 0) ranked 1 > 2 > 0 (worst reward first): -[-500 - log(e^500 + ...)] = 1000, then
    -[0 - log(e^0 + e^500)] = 500: 1500, finite (log-sum-exp, no exp overflow), gradients finite."""
    r = t(500.0, -500.0, 0.0)[None].requires_grad_(True)
    loss = plackett_luce(r, torch.tensor([[2, 0, 1]]))
    assert torch.isfinite(loss).all() and loss.item() == pytest.approx(1500.0, rel=1e-9)
    (g,) = torch.autograd.grad(loss.sum(), r)
    assert torch.isfinite(g).all()


# --- identities on K = 2 -----------------------------------------------------------------------------------


def test_every_kwise_variant_equals_bt_on_k2():
    """A K = 2 ranking (w, l) has one pair. PL: -[r_w - log(e^r_w + e^r_l)] - 0 = log(1 + e^(r_l - r_w)) = BT.
    Top-1 PL is the same first choice. All-pairs: 1/C(2,2) = 1 times the one BT term. Davidson with ν = 0 and
    Rao-Kupper with θ = 1 are BT. Scaled BT with |s| = 1, margin loss with m = 0 and label smoothing 0 too."""
    torch.manual_seed(0)
    r_w, r_l = torch.randn(200, dtype=torch.float64) * 4, torch.randn(200, dtype=torch.float64) * 4
    bt = bradley_terry(r_w, r_l)
    pair = torch.stack([r_w, r_l], 1)
    ranks = torch.tensor([[0, 1]]).repeat(200, 1)
    assert torch.allclose(plackett_luce(pair, ranks), bt, atol=1e-10)
    assert torch.allclose(plackett_luce(pair, ranks, top_k=1), bt, atol=1e-10)
    assert torch.allclose(plackett_luce(pair, torch.tensor([[0, U]]).repeat(200, 1)), bt, atol=1e-10)
    assert torch.allclose(allpairs_loss(r_w, r_l, torch.arange(200), 200), bt, atol=1e-10)
    empty = torch.zeros(0, dtype=torch.float64)
    assert torch.allclose(bt_ties_loss(r_w, r_l, empty, empty, "davidson", 0.0), bt, atol=1e-10)
    assert torch.allclose(bt_ties_loss(r_w, r_l, empty, empty, "rao_kupper", 1.0), bt, atol=1e-10)
    assert torch.allclose(scaled_bradley_terry(r_w, r_l, torch.ones_like(r_w)), bt, atol=1e-10)
    assert torch.allclose(pair_loss("margin", r_w, r_l, torch.zeros_like(r_w)), bt, atol=1e-10)


def test_every_loss_on_k2_batches_equals_bt_through_the_collator():
    """The same identity through collate_pairs + batch_loss, the path the trainer takes: K = 2 records, rows
    chosen-first or not, every loss (margin and scaled BT with margin 0 and 1) gives BT per record."""
    records = [Comparison("p", ("a", "b"), chosen=i % 2, margin=1.0) for i in range(6)]
    batch = collate_pairs(records, [_feats(2)] * 6, 0, "right")
    rewards = torch.tensor([0.5, -1.0, 2.0, 0.0, 1.5, 1.5, -3.0, 4.0, 0.0, 0.1, 2.0, -2.0])
    bt = batch_loss("bt", rewards, batch)
    assert torch.allclose(batch_loss("allpairs", rewards, batch), bt, atol=1e-6)
    assert torch.allclose(batch_loss("plackett_luce", rewards, batch), bt, atol=1e-6)
    assert torch.allclose(batch_loss("plackett_luce", rewards, batch, opts=LossOptions(top_k=1)), bt, atol=1e-6)
    assert torch.allclose(batch_loss("scaled_bt", rewards, batch), bt, atol=1e-6)  # |s| = margin = 1
    assert torch.allclose(batch_loss("margin", rewards, batch, opts=LossOptions(margin_scale=0.0)), bt, atol=1e-6)
    rao_kupper_bt = LossOptions(tie_model="rao_kupper", tie_param=1.0)  # θ = 1: no ties possible, BT
    assert torch.allclose(batch_loss("bt_ties", rewards, batch, opts=rao_kupper_bt), bt, atol=1e-6)


# --- all pairs (InstructGPT) ----------------------------------------------------------------------------


def test_allpairs_worked_numbers_and_balance():
    """r = (2, 1, 0), ranking 0 > 1 > 2: pairs (0,1) Δ=1, (0,2) Δ=2, (1,2) Δ=1;
    1/C(3,2)·(0.3132617 + 0.1269280 + 0.3132617) = 0.7534514 / 3 = 0.2511505. One unit per prompt:
    a K = 2 prompt with Δ = 1 in the same batch is its own unit 0.3132617, whatever the other's size."""
    r_w, r_l = t(2, 2, 1, 5), t(1, 0, 0, 4)
    got = allpairs_loss(r_w, r_l, torch.tensor([0, 0, 0, 1]), 2)
    assert got.tolist() == pytest.approx([0.2511505, 0.3132617], abs=1e-6)


def test_group_mean_skips_empty_groups():
    """values (1, 3, 5), groups (0, 0, 2): group 0 → 2, group 1 has nothing, group 2 → 5."""
    assert group_mean(t(1, 3, 5), torch.tensor([0, 0, 2]), 3).tolist() == [2.0, 5.0]


# --- margins, scaled BT, label smoothing -------------------------------------------------------------------


def test_llama2_margin_tables():
    """Levels 0, 1, 2, 3 → small 0, 1/3, 2/3, 1 and large 0, 1, 2, 3; 5 clips to 3, −1 to 0, 1.4 rounds to 1."""
    levels = t(0, 1, 2, 3, 5, -1, 1.4)
    assert llama2_margin(levels, "llama2_small").tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1, 1, 0, 1 / 3])
    assert llama2_margin(levels, "llama2_large").tolist() == pytest.approx([0, 1, 2, 3, 3, 0, 1])
    assert pair_margins(t(2), LossOptions(margin_table="llama2_large")).item() == 2.0
    assert pair_margins(t(3), LossOptions(margin_scale=0.5)).item() == 1.5
    assert pair_margins(None, LossOptions()) is None


def test_margin_from_table_in_the_loss():
    """r_w = 3, r_l = 1, level 3: large margin 3 → -log σ(2 - 3) = log(1 + e^1) = 1.3132617;
    small margin 1 → -log σ(1) = 0.3132617."""
    records = [Comparison("p", ("a", "b"), 0, margin=3.0)]
    batch = collate_pairs(records, [_feats(2)], 0, "right")
    r = torch.tensor([3.0, 1.0])
    assert batch_loss("margin", r, batch, opts=LossOptions(margin_table="llama2_large")).item() == pytest.approx(
        1.3132617, abs=1e-6
    )
    assert batch_loss("margin", r, batch, opts=LossOptions(margin_table="llama2_small")).item() == pytest.approx(
        0.3132617, abs=1e-6
    )


def test_scaled_bt_worked_numbers():
    """-|s|·log σ(Δ): s = 3, Δ = 1 → 3·0.3132617 = 0.9397851; s = -2 (strength of the other side), Δ = 2 →
    2·0.1269280 = 0.2538560; s = 0 → 0."""
    got = scaled_bradley_terry(t(1, 2, 1), t(0, 0, 0), t(3, -2, 0))
    assert got.tolist() == pytest.approx([0.9397851, 0.2538560, 0.0], abs=1e-6)


def test_label_smoothing_worked_numbers():
    """ε = 0.1, Δ = 2: 0.9·(-log σ(2)) + 0.1·(-log σ(-2)) = 0.9·0.1269280 + 0.1·2.1269280 = 0.3269280.
    At Δ = 0 smoothing changes nothing (log 2). The smoothed loss is minimal at Δ = log(0.9/0.1) = 2.1972,
    not at +∞ as BT."""
    assert smoothed_logistic(t(2.0), 0.1).item() == pytest.approx(0.3269280, abs=1e-6)
    assert smoothed_logistic(t(0.0), 0.1).item() == pytest.approx(math.log(2), abs=1e-9)
    d = t(math.log(9)).requires_grad_(True)
    (g,) = torch.autograd.grad(smoothed_logistic(d, 0.1).sum(), d)
    assert abs(g.item()) < 1e-9
    assert pair_loss("bt", t(2.0), t(0.0), label_smoothing=0.1).item() == pytest.approx(0.3269280, abs=1e-6)


# --- ties -------------------------------------------------------------------------------------------------


def test_tie_models_worked_numbers():
    """Δ = 0 with the defaults: Davidson ν = 1 gives P(win) = e^0/(e^0 + e^0 + 1) = 1/3 and P(tie) = 1/3;
    Rao-Kupper θ = 2 gives P(win) = 1/(1 + 2) = 1/3 and P(tie) = (4 - 1)·1/(3·3) = 1/3: both losses log 3.
    Δ = 2, Davidson: d = 1, log(e^1 + e^-1 + 1) = log(4.0861613) = 1.4076060; win loss -(1 - 1.4076060) =
    0.4076060, tie loss 1.4076060. Rao-Kupper: win -log σ(2 - log 2) = 0.2395448; tie loss
    -log 3 + 0.2395448 + (-log σ(-2 - log 2) = 2.7586237) = 1.8995562."""
    for fn, p in ((davidson_log_probs, 1.0), (rao_kupper_log_probs, 2.0)):
        win, tie = fn(t(0.0), p)
        assert (-win).item() == pytest.approx(math.log(3)) and (-tie).item() == pytest.approx(math.log(3))
    win, tie = davidson_log_probs(t(2.0), 1.0)
    assert (-win).item() == pytest.approx(0.4076060, abs=1e-6) and (-tie).item() == pytest.approx(1.4076060, abs=1e-6)
    win, tie = rao_kupper_log_probs(t(2.0), 2.0)
    assert (-win).item() == pytest.approx(0.2395448, abs=1e-6) and (-tie).item() == pytest.approx(1.8995562, abs=1e-6)


@pytest.mark.parametrize(
    "model,param", [("davidson", 0.5), ("davidson", 2.0), ("rao_kupper", 1.5), ("rao_kupper", 3.0)]
)
def test_tie_models_are_distributions(model, param):
    """P(i ≻ j) + P(j ≻ i) + P(i ~ j) = 1 for every Δ, and P(tie) is largest at Δ = 0."""
    fn = {"davidson": davidson_log_probs, "rao_kupper": rao_kupper_log_probs}[model]
    delta = torch.linspace(-8, 8, 41, dtype=torch.float64)
    win, tie = fn(delta, param)
    lose, _ = fn(-delta, param)
    assert torch.allclose(win.exp() + lose.exp() + tie.exp(), torch.ones_like(delta), atol=1e-12)
    assert tie.argmax().item() == 20


def test_bt_ties_loss_layout():
    """Strict pairs first, then tied pairs: Davidson ν = 1, strict Δ = 2 → 0.4076060, tie Δ = 0 → log 3."""
    got = bt_ties_loss(t(2.0), t(0.0), t(1.0), t(1.0))
    assert got.tolist() == pytest.approx([0.4076060, math.log(3)], abs=1e-6)


# --- batches: units, weights, the registry -----------------------------------------------------------------


def _feats(k, n=3):
    return [{"input_ids": [1] * (n + i), "attention_mask": [1] * (n + i)} for i in range(k)]


MIXED = [
    Comparison("p0", ("a", "b"), chosen=1, margin=2.0),  # 1 strict pair
    Comparison("p1", ("a", "b", "c", "d"), chosen=2, ranking=(2, 0, 3, 1), scores=(3.0, 1.0, 4.0, 2.0)),  # 6
    Comparison("p2", ("a", "b", "c", "d"), chosen=2, tiers=((2,), (0, 3), (1,)), weight=2.0),  # 5 strict, 1 tie
    Comparison("p3", ("a", "b", "c"), chosen=0, tiers=((0,),)),  # top-1: 2 strict pairs
    Comparison("p4", ("a", "b"), chosen=0, tiers=((0, 1),)),  # all tied: 0 strict, 1 tie
    Comparison("p5", ("a", "b", "c"), chosen=1),  # chosen beats the others: 2 pairs
]


def test_collated_layout_of_a_mixed_batch():
    batch = collate_pairs(MIXED, [_feats(c.k) for c in MIXED], 0, "right")
    assert batch.inputs["input_ids"].shape[0] == sum(c.k for c in MIXED) == 18  # each response once
    assert len(batch.chosen_idx) == 1 + 6 + 5 + 2 + 0 + 2
    # record 2 starts at row 2 + 4 = 6: tiers ((2,), (0, 3), (1,)) → pairs (8,6) (8,9) (8,7) (6,7) (9,7), tie (6,9)
    p2 = batch.pair_group == 2
    assert list(zip(batch.chosen_idx[p2].tolist(), batch.rejected_idx[p2].tolist())) == [
        (8, 6),
        (8, 9),
        (8, 7),
        (6, 7),
        (9, 7),
    ]
    assert batch.tie_a.tolist() == [6, 13] and batch.tie_b.tolist() == [9, 14]  # record 4 starts at row 13
    assert batch.slot_row[2].tolist() == [6, 7, 8, 9]
    assert batch.slot_tier[2].tolist() == [1, 2, 0, 1]
    assert batch.slot_tier[0].tolist() == [U, 0, PAD_TIER, PAD_TIER]
    assert batch.record_weight.tolist() == [1, 1, 2, 1, 1, 1]
    # margins: record 0's own margin; record 1 (K = 4) the score differences; record 2 has none → None
    assert batch.margin is None
    assert [m for _, _, m in preference_pairs(MIXED[1])] == [4 - 3, 4 - 2, 4 - 1, 3 - 2, 3 - 1, 2 - 1]
    assert response_tiers(MIXED[3]) == [0, U, U]


@pytest.mark.parametrize("loss", [t.value for t in LossType])
def test_count_units_matches_batch_loss_for_every_loss(loss):
    """count_units (known before the forward pass) is exactly the number of units batch_loss returns —
    what makes the trainer's normalisation exact. bt/margin/scaled_bt: 16 strict pairs; allpairs: the 5
    prompts with a strict pair; plackett_luce: 6 prompts; bt_ties: 16 pairs + 2 ties."""
    records = MIXED if loss not in ("margin", "scaled_bt") else [MIXED[0], MIXED[1]]
    batch = collate_pairs(records, [_feats(c.k) for c in records], 0, "right")
    rewards = torch.randn(batch.inputs["input_ids"].shape[0], requires_grad=True)
    out = batch_loss(loss, rewards, batch, center_coef=0.01)
    assert out.shape == (count_units(loss, records),)
    assert torch.isfinite(out).all()
    expected = {"bt": 16, "margin": 7, "scaled_bt": 7, "allpairs": 5, "plackett_luce": 6, "bt_ties": 18}[loss]
    assert count_units(loss, records) == expected
    out.sum().backward()
    assert torch.isfinite(rewards.grad).all()


@pytest.mark.parametrize("loss", [t.value for t in LossType])
def test_weights_multiply_units(loss):
    """A record with weight 2 gives exactly twice the units of the same record with weight 1."""
    base = Comparison("p", ("a", "b", "c"), chosen=0, ranking=(0, 2, 1), scores=(2.0, 0.0, 1.0))
    heavy = Comparison("p", ("a", "b", "c"), chosen=0, ranking=(0, 2, 1), scores=(2.0, 0.0, 1.0), weight=2.0)
    rewards = torch.tensor([0.3, -0.2, 0.9, 0.3, -0.2, 0.9])
    batch = collate_pairs([base, heavy], [_feats(3), _feats(3)], 0, "right")
    out = batch_loss(loss, rewards, batch)
    n = count_units(loss, [base])
    assert torch.allclose(out[n:], 2 * out[:n])


def test_registry_covers_every_loss_type_and_checks_options():
    assert set(LOSSES) == set(LossType)
    check_options("bt", LossOptions(label_smoothing=0.1))
    with pytest.raises(ValueError, match="label_smoothing"):
        check_options("plackett_luce", LossOptions(label_smoothing=0.1))
    with pytest.raises(ValueError, match="tie_param"):
        check_options("bt_ties", LossOptions(tie_model="rao_kupper", tie_param=1.0))
    with pytest.raises(ValueError, match="margin_table"):
        check_options("margin", LossOptions(margin_table="huge"))
    with pytest.raises(ValueError, match="top_k"):
        check_options("plackett_luce", LossOptions(top_k=0))
    with pytest.raises(ValueError, match="not a per-pair loss"):
        pair_loss("plackett_luce", t(1.0), t(0.0))
