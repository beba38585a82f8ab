"""MasterAdamW (``--precision bf16-pure``): fp32 masters for bf16 parameters."""

import copy

import pytest
import torch

from rewardlab.training.optim import MasterAdamW


def _step(opt, params, grad=1.0):
    for p in params:
        p.grad = torch.full_like(p, grad)
    opt.step()


def test_small_updates_accumulate_in_the_master():
    """AdamW with a constant gradient moves a weight by lr per step (m̂/√v̂ = 1): 20 steps of lr 1e-4 take 1.0 to
    0.998. In bf16 that update is below half the spacing of numbers near 1 (2⁻⁸ = 0.0039 below 1), so plain AdamW
    on a bf16 weight never moves; the master does, and the weight is the master rounded to bf16: 0.998 lies
    between 0.99609375 and 1.0 and is nearer the former."""
    w = torch.nn.Parameter(torch.ones(3, dtype=torch.bfloat16))
    plain = torch.nn.Parameter(torch.ones(3, dtype=torch.bfloat16))
    opt, opt_plain = MasterAdamW([w], lr=1e-4, weight_decay=0.0), torch.optim.AdamW([plain], lr=1e-4, weight_decay=0.0)
    for _ in range(20):
        _step(opt, [w])
        _step(opt_plain, [plain])
    assert torch.equal(plain, torch.ones(3, dtype=torch.bfloat16))
    master = opt.masters()[w]
    assert master.dtype == torch.float32 and torch.allclose(master, torch.full((3,), 0.998), atol=1e-6)
    assert w.dtype == torch.bfloat16 and torch.equal(w.float(), torch.full((3,), 0.99609375))
    assert w.grad.dtype == torch.bfloat16  # the parameter's own gradient is left as it was


def test_fp32_parameters_are_plain_adamw():
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(5))
    b = torch.nn.Parameter(a.detach().clone())
    oa, ob = MasterAdamW([a], lr=1e-2, weight_decay=0.1), torch.optim.AdamW([b], lr=1e-2, weight_decay=0.1)
    for _ in range(5):
        g = torch.randn(5)
        a.grad, b.grad = g.clone(), g.clone()
        oa.step()
        ob.step()
    assert torch.equal(a, b) and oa.masters() == {}


def test_state_dict_keeps_masters_and_moments_in_fp32():
    """torch's Optimizer.load_state_dict casts floating-point state to the parameter's dtype; a resumed run must
    keep the fp32 masters and moments, and then continue exactly as the uninterrupted one."""
    w = torch.nn.Parameter(torch.ones(4, dtype=torch.bfloat16))
    opt = MasterAdamW([w], lr=1e-4)
    for _ in range(3):
        _step(opt, [w])
    saved = copy.deepcopy(opt.state_dict())
    w2 = torch.nn.Parameter(w.detach().clone())
    opt2 = MasterAdamW([w2], lr=1e-4)
    opt2.load_state_dict(saved)
    assert all(v.dtype == torch.float32 for k, v in opt2.state[w2].items() if k != "step")
    for o, p in ((opt, w), (opt2, w2)):
        _step(o, [p], grad=0.5)
    assert torch.equal(opt.masters()[w], opt2.masters()[w2]) and torch.equal(w, w2)


@pytest.mark.parametrize("resume", [False, True])
def test_bf16_pure_training(tmp_path, tiny_bert, resume):
    """bf16 weights train (the loss goes down), the saved model holds the fp32 masters, and resume is exact."""
    import json
    from pathlib import Path

    from safetensors.torch import load_file

    from rewardlab.data import Comparison, write_jsonl
    from rewardlab.training.train import TrainConfig, train

    words = "apple pear plum fig kiwi lime lemon mango grape melon peach berry".split()
    records = [
        Comparison(
            prompt=f"Say something about {w} number {i}",
            id=f"r{i}",
            chosen=i % 2,
            margin=float(i % 3),
            responses=(f"I like {w} a lot.", f"I like {words[(i * 5 + 3) % 12]} a lot.")[:: 1 - 2 * (i % 2)],
        )
        for i, w in enumerate(words * 4)
    ]
    data = str(tmp_path / "prefs.jsonl")
    write_jsonl(records, data)

    def run(name, **kw):
        cfg = TrainConfig(
            data=data,
            backbone=tiny_bert,
            output_dir=str(tmp_path / name),
            precision="bf16-pure",
            max_length=64,
            batch_size=8,
            lr=3e-3,
            loss="margin",
            log_every=1,
            seed=0,
            eval_fraction=0.25,
            **kw,
        )
        return cfg, train(cfg)

    if not resume:
        cfg, res = run("pure", epochs=3)
        losses = [json.loads(l)["loss"] for l in open(Path(cfg.output_dir) / "metrics.jsonl") if '"loss"' in l]
        assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3
        weights = load_file(str(Path(res.model_dir) / "model.safetensors"))
        assert {v.dtype for v in weights.values()} == {torch.float32}
        assert any((v.float() != v.bfloat16().float()).any() for v in weights.values())  # not just bf16 values
        return
    _, full = run("full", max_steps=6)
    run("part", max_steps=6, stop_after=3)
    _, resumed = run("part", max_steps=6, resume=True)
    wf = load_file(str(Path(full.model_dir) / "model.safetensors"))
    wr = load_file(str(Path(resumed.model_dir) / "model.safetensors"))
    assert all(torch.equal(wf[k], wr[k]) for k in wf)
