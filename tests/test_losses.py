import math

import pytest
import torch

from rewardlab.training.losses import (
    LossType,
    bradley_terry,
    bradley_terry_softplus,
    margin_loss,
    pair_loss,
    reward_centering,
)


def test_bradley_terry_worked_numbers():
    """r_w = 2, r_l = 1: Δ = 1, σ(1) = 1/(1+e^-1) = 0.7310586, -log 0.7310586 = 0.3132617.
    r_w = r_l = 0: σ(0) = 1/2, loss = log 2 = 0.6931472.
    r_w = 0, r_l = 3: Δ = -3, -log σ(-3) = log(1 + e^3) = log(21.0855369) = 3.0485874."""
    got = bradley_terry(torch.tensor([2.0, 0.0, 0.0]), torch.tensor([1.0, 0.0, 3.0]))
    assert torch.allclose(got, torch.tensor([0.3132617, 0.6931472, 3.0485874]), atol=1e-6)


def test_eq4_softplus_form_equals_eq3():
    """Corrected eq. 4: log(1 + exp(r_l - r_w)). With r_w = 2, r_l = 1: log(1 + e^-1) = log(1.3678794) = 0.3132617,
    the same number as eq. 3 above; in general -log σ(d) = -log(1/(1+e^-d)) = log(1 + e^-d), d = r_w - r_l."""
    torch.manual_seed(0)
    r_w, r_l = torch.randn(1000) * 5, torch.randn(1000) * 5
    assert torch.allclose(bradley_terry(r_w, r_l), bradley_terry_softplus(r_w, r_l), atol=1e-6)
    assert bradley_terry_softplus(torch.tensor([2.0]), torch.tensor([1.0])).item() == pytest.approx(0.3132617, abs=1e-6)


def test_printed_eq4_is_not_a_loss():
    """The reference prints log(1 + e^{r_l} - e^{r_w}); at r_w = 2, r_l = 0 the argument is 1 + 1 - e^2 = -5.39 < 0,
    so its log is undefined. This is why rewardlab implements the softplus form instead."""
    assert 1 + math.exp(0.0) - math.exp(2.0) < 0


@pytest.mark.parametrize("delta", [50.0, -50.0, 100.0, -100.0])
def test_large_margins_do_not_overflow(delta):
    """|Δ| = 50: for Δ = +50 the loss is log(1 + e^-50) ≈ e^-50 = 1.9e-22 (≈ 0 in fp32);
    for Δ = -50 it is log(1 + e^50) = 50 + log(1 + e^-50) ≈ 50. Both forms stay finite and agree, gradients too."""
    r_w = torch.tensor([delta], requires_grad=True)
    r_l = torch.tensor([0.0])
    a = bradley_terry(r_w, r_l)
    b = bradley_terry_softplus(r_w, r_l)
    assert torch.isfinite(a).all() and torch.isfinite(b).all()
    expected = max(-delta, 0.0)
    assert a.item() == pytest.approx(expected, abs=1e-6)
    assert b.item() == pytest.approx(expected, abs=1e-6)
    (g,) = torch.autograd.grad(a.sum(), r_w)
    assert torch.isfinite(g).all()


def test_margin_loss_worked_numbers():
    """Eq. 5 with r_w = 3, r_l = 1, m = 2: -log σ(3 - 1 - 2) = -log σ(0) = log 2 = 0.6931472.
    With m = 0 it is plain BT: -log σ(2) = log(1 + e^-2) = 0.1269280."""
    got = margin_loss(torch.tensor([3.0, 3.0]), torch.tensor([1.0, 1.0]), torch.tensor([2.0, 0.0]))
    assert torch.allclose(got, torch.tensor([0.6931472, 0.1269280]), atol=1e-6)


def test_reward_centering_worked_numbers():
    """(r_w + r_l)^2: (2 + 1)^2 = 9; (1 + -1)^2 = 0. pair_loss adds coef · that: BT(2,1) + 0.01·9 = 0.3132617 + 0.09."""
    assert torch.equal(reward_centering(torch.tensor([2.0, 1.0]), torch.tensor([1.0, -1.0])), torch.tensor([9.0, 0.0]))
    got = pair_loss("bt", torch.tensor([2.0]), torch.tensor([1.0]), center_coef=0.01)
    assert got.item() == pytest.approx(0.3132617 + 0.09, abs=1e-6)


def test_dispatcher_names_and_missing_margin():
    assert [t.value for t in LossType] == ["bt", "margin", "scaled_bt", "allpairs", "plackett_luce", "bt_ties"]
    r = torch.tensor([1.0])
    assert pair_loss(LossType.BT, r, r).item() == pytest.approx(math.log(2), abs=1e-6)
    with pytest.raises(ValueError, match="margin"):
        pair_loss("margin", r, r)
    with pytest.raises(ValueError):
        pair_loss("no-such-loss", r, r)
