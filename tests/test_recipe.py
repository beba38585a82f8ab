"""The training core's units on a two-parameter model, numbers by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from rewardlab.core.errors import RewardlabError
from rewardlab.core.finite import NonFiniteError
from rewardlab.training.recipe import (
    Checkpointing,
    LoopOptions,
    MetricsLog,
    NonFiniteGuard,
    StepPlan,
    load_checkpoint,
    lr_factor,
    make_optimizer,
    make_scheduler,
    run_steps,
    save_checkpoint,
    update,
)


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


# ---- the checkpoint half of the core: retention, resume checks, metrics truncation, the step plan (issue 29) ----
class _OneProcess:
    """What save_checkpoint asks of an Accelerator, for a single process."""

    is_main_process = True

    def wait_for_everyone(self):
        pass


def _ckpt(root, key, fingerprint="fp", defaults=None, keep=2):
    return Checkpointing(root=root, key=key, defaults=defaults or {}, data_fingerprint=fingerprint, keep=keep)


def _trainer_state(m):
    opt = make_optimizer(m.named_parameters(), 0.1, 0.0)
    return opt, make_scheduler(opt, 10, 0.0, "constant")


def test_only_the_newest_keep_checkpoints_remain_and_resume_takes_the_newest(tmp_path):
    """R8. keep = 2 and saves at steps 1, 2, 3 (the weight's first entry set to the step): step-00000002 and
    step-00000003 remain; resuming restores step 3's weights and returns 3. keep = 3 would leave three."""
    m = _model()
    opt, sched = _trainer_state(m)
    ck = _ckpt(tmp_path / "ck", {"lr": 0.1})
    for step in (1, 2, 3):
        with torch.no_grad():
            m.weight[0, 0] = float(step)
        save_checkpoint(ck, step, _OneProcess(), m, opt, sched)
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["step-00000002", "step-00000003"]
    fresh = _model()
    opt2, sched2 = _trainer_state(fresh)
    assert load_checkpoint(ck, fresh, opt2, sched2) == 3
    assert fresh.weight[0, 0].item() == 3.0


def test_resume_refuses_another_config_or_data_and_fills_a_field_an_older_checkpoint_lacks(tmp_path):
    """R10. A checkpoint saved with key {lr: 0.1}: resuming with lr 0.2 is refused naming ['lr']; other data
    (fingerprint) is refused; a field added later (center_coef, absent from the saved key) is compared through
    its default: default 0.0 and asked 0.0 resumes, asked 0.01 is refused naming it."""
    m = _model()
    opt, sched = _trainer_state(m)
    save_checkpoint(_ckpt(tmp_path, {"lr": 0.1}), 1, _OneProcess(), m, opt, sched)
    with pytest.raises(RewardlabError, match=r"config differs in \['lr'\]"):
        load_checkpoint(_ckpt(tmp_path, {"lr": 0.2}), m, opt, sched)
    with pytest.raises(RewardlabError, match="training data changed"):
        load_checkpoint(_ckpt(tmp_path, {"lr": 0.1}, fingerprint="other"), m, opt, sched)
    later = {"lr": 0.1, "center_coef": 0.0}
    assert load_checkpoint(_ckpt(tmp_path, later, defaults={"center_coef": 0.0}), m, opt, sched) == 1
    with pytest.raises(RewardlabError, match=r"config differs in \['center_coef'\]"):
        load_checkpoint(_ckpt(tmp_path, {**later, "center_coef": 0.01}, defaults={"center_coef": 0.0}), m, opt, sched)


def test_metrics_truncate_keeps_rows_up_to_the_resumed_step(tmp_path):
    """R9. Rows: a header without a step, steps 1..5. truncate(3) keeps the header and steps 1, 2, 3 (step 3
    is the checkpoint, so it is not logged again); keep_unstepped=False also drops the header; None keeps
    every step."""
    path = tmp_path / "metrics.jsonl"
    rows = [{"base": 0.5}] + [{"step": s, "loss": 1.0 / s} for s in range(1, 6)]

    def written(step, keep_unstepped=True):
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        MetricsLog(path).truncate(step, keep_unstepped)
        return [json.loads(line).get("step") for line in path.read_text().splitlines()]

    assert written(3) == [None, 1, 2, 3]
    assert written(3, keep_unstepped=False) == [1, 2, 3]
    assert written(None) == [None, 1, 2, 3, 4, 5]
    assert written(0) == [None]


def test_step_plan_cuts_each_epoch_into_batches_with_a_short_last_one():
    """R12. Two epochs of 10 items, batch 4: ceil(10 / 4) = 3 steps per epoch, 6 in all; step 2 is epoch 0's
    last (short) slice [8, 9 of its order]; step 3 starts epoch 1 with its own order; every item once per epoch."""
    orders = [list(range(10)), [9, 7, 5, 3, 1, 0, 2, 4, 6, 8]]
    plan = StepPlan(orders, batch_size=4)
    assert (plan.steps_per_epoch, plan.total) == (3, 6)
    assert plan.step(2) == (0, [8, 9])
    assert plan.step(3) == (1, [9, 7, 5, 3])
    assert plan.step(5) == (1, [6, 8])
    for epoch in (0, 1):
        items = [i for s in range(plan.total) if plan.step(s)[0] == epoch for i in plan.step(s)[1]]
        assert sorted(items) == list(range(10))


class _GlooAccelerator:
    """What run_steps asks of an Accelerator, over a real gloo process group (one per spawned process)."""

    def __init__(self, rank: int, world: int):
        self.num_processes, self.process_index, self.is_main_process = world, rank, rank == 0
        self.device = torch.device("cpu")

    def wait_for_everyone(self):
        torch.distributed.barrier()

    def reduce(self, t, reduction="sum"):
        torch.distributed.all_reduce(t)
        return t


def _two_process_steps(rank: int, world: int, port: int, out: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        m = torch.nn.Linear(1, 1, bias=False)
        with torch.no_grad():
            m.weight.fill_(0.0)
        xs = [1.0, 2.0, 3.0, 4.0]

        def step_loss(share, items):  # loss = Σ (w·x − 1)² / |items| over this process's share
            loss = sum((m(torch.tensor([[xs[i]]])) - 1.0).pow(2).sum() for i in share) / len(items)
            loss.backward()
            return {"loss": float(loss), "n": float(len(share))}

        result = run_steps(
            StepPlan([list(range(4))], batch_size=4),
            step_loss,
            lambda sums, items: {"loss": sums["loss"], "n": sums["n"]},
            module=m,
            trainable=list(m.named_parameters()),
            opts=LoopOptions(lr=0.1),
            accelerator=_GlooAccelerator(rank, world),
        )
        if rank == 0:
            (Path(out) / "row.json").write_text(json.dumps(result.history[0]))
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow  # two spawned processes
def test_a_two_process_step_logs_the_whole_steps_loss(tmp_path):
    """run_steps with world = 2 (real gloo): step 0 takes items 0–3, rank 0 the share (0, 2), rank 1 (1, 3). With
    w = 0, each item's loss is (0·x − 1)² = 1, divided by the 4 items of the step: rank 0's sum is 0.5 and rank
    1's 0.5. The logged row is the sum over the processes: loss 1.0 over n = 4 items (not one process's 0.5/2)."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_two_process_steps, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    row = json.loads((tmp_path / "row.json").read_text())
    assert row["loss"] == pytest.approx(1.0) and row["n"] == 4.0 and row["step"] == 1
