"""The training core's units on a two-parameter model, numbers by hand."""

from __future__ import annotations

import pytest
import torch

from rewardlab.core.finite import NonFiniteError
from rewardlab.training.recipe import NonFiniteGuard, lr_factor, make_optimizer, make_scheduler, update


def _model():
    torch.manual_seed(0)
    return torch.nn.Linear(3, 1)  # weight (1, 3): decays; bias (1,): does not


def test_optimizer_groups_decay_matrices_only():
    m = _model()
    opt = make_optimizer(m.named_parameters(), 0.1, 0.5)
    (decay, no_decay) = opt.param_groups
    assert decay["weight_decay"] == 0.5 and [p.shape for p in decay["params"]] == [torch.Size([1, 3])]
    assert no_decay["weight_decay"] == 0.0 and [p.shape for p in no_decay["params"]] == [torch.Size([1])]
    assert not any(g.get("fused") for g in opt.param_groups)  # CPU: torch's default kernel


def test_update_clips_steps_and_reports_the_norm_before_clipping():
    """Gradient (3, 4, 0 | 0): norm 5, clipped to 1 → (0.6, 0.8, 0). One AdamW step at lr 0.1 moves each
    parameter with a gradient by −lr·sign (first step, bias-corrected: m̂/√v̂ = ±1), the zero-gradient ones not."""
    m = _model()
    opt = make_optimizer(m.named_parameters(), 0.1, 0.0)
    sched = make_scheduler(opt, 10, 0.0, "constant")
    before = m.weight.detach().clone()
    m.weight.grad = torch.tensor([[3.0, 4.0, 0.0]])
    m.bias.grad = torch.tensor([0.0])
    result = update(opt, sched, m.parameters(), step=1, loss_sum=1.0, max_grad_norm=1.0, guard=NonFiniteGuard())
    assert result.applied and result.grad_norm == pytest.approx(5.0) and result.problem is None
    assert torch.allclose(m.weight.detach() - before, torch.tensor([[-0.1, -0.1, 0.0]]), atol=1e-6)
    assert m.weight.grad is None  # zeroed (set to None) for the next step


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")  # the skipped step, on purpose
def test_a_nonfinite_step_is_skipped_within_the_allowance_then_stops():
    """--skip-nonfinite 1: the first NaN step leaves the weights as they were but moves the schedule on (step 0
    of the warmup → step 1); the second stops with the step named."""
    m = _model()
    opt = make_optimizer(m.named_parameters(), 0.1, 0.0)
    sched = make_scheduler(opt, 10, 0.2, "linear")  # warmup 2: factors 1/3, 2/3, 1, ...
    guard = NonFiniteGuard(allowed=1, main=False)
    before = [p.detach().clone() for p in m.parameters()]
    m.weight.grad, m.bias.grad = torch.ones(1, 3), torch.ones(1)
    result = update(opt, sched, m.parameters(), step=1, loss_sum=float("nan"), max_grad_norm=1.0, guard=guard)
    assert not result.applied and result.problem == "loss nan" and result.grad_norm is None
    assert all(torch.equal(a, b) for a, b in zip(before, m.parameters()))
    assert sched.get_last_lr()[0] == pytest.approx(0.1 * lr_factor(1, 10, 0.2)) == pytest.approx(0.1 * 2 / 3)
    assert guard.skipped == 1
    m.weight.grad, m.bias.grad = torch.full((1, 3), float("inf")), torch.ones(1)
    with pytest.raises(NonFiniteError, match="diverged at step 2: non-finite gradient norm inf"):
        update(opt, sched, m.parameters(), step=2, loss_sum=1.0, max_grad_norm=1.0, guard=guard)
    assert all(torch.equal(a, b) for a, b in zip(before, m.parameters()))


def test_another_process_problem_stops_this_one_too():
    m = _model()
    opt = make_optimizer(m.named_parameters(), 0.1, 0.0)
    sched = make_scheduler(opt, 10, 0.0)
    m.weight.grad, m.bias.grad = torch.ones(1, 3), torch.ones(1)
    with pytest.raises(NonFiniteError, match="on another process"):
        update(
            opt,
            sched,
            m.parameters(),
            step=1,
            loss_sum=1.0,
            max_grad_norm=1.0,
            guard=NonFiniteGuard(),
            any_process=lambda flag: True,
        )
