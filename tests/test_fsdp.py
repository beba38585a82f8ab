"""``--fsdp``: PyTorch FSDP2 (fully_shard per layer + root) on CPU with gloo — the per-step losses of 2 processes
equal 1 process's, a run resumed from a sharded checkpoint equals an uninterrupted one, and the saved model is a
plain transformers checkpoint."""

import json
import subprocess

import pytest
import torch

from launch import torchrun_train
from rewardlab.core.errors import RewardlabError
from rewardlab.training.fsdp import SHARDED_DIR
from rewardlab.training.train import TrainConfig, train


@pytest.fixture(scope="module")
def pref_files(tmp_path_factory):
    fruits = "apple pear plum fig kiwi lime lemon mango".split()
    rows = [
        {
            "prompt": f"Tell me about {fruits[i % 8]} #{i}",
            "chosen": f"{fruits[i % 8]} is a fruit.",
            "rejected": f"{fruits[(i + 3) % 8]} is a fruit.",
        }
        for i in range(39)
    ]
    d = tmp_path_factory.mktemp("fsdp")
    (d / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:30]))
    (d / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[30:]))
    return str(d / "train.jsonl"), str(d / "eval.jsonl")


def _common(tiny_llama, pref_files, **kw):
    return {
        "data": pref_files[0],
        "eval_data": pref_files[1],
        "backbone": tiny_llama,
        "batch_size": 4,
        "max_steps": 4,
        "max_length": 48,
        "lr": 1e-3,
        "log_every": 1,
        **kw,
    }


def _losses(metrics):
    return [x["loss"] for x in metrics if "loss" in x]


def test_fsdp_one_process_equals_plain_resumes_exactly_and_saves_a_plain_model(tmp_path, tiny_llama, pref_files):
    """One process under FSDP2 (a gloo world of one, DTensor shards) takes the plain run's steps; stopping after
    step 2 (sharded checkpoint) and resuming gives the uninterrupted run's steps 3-4 and the same weights."""
    common = _common(tiny_llama, pref_files)
    plain = train(TrainConfig(output_dir=str(tmp_path / "plain"), **common))
    full = train(TrainConfig(output_dir=str(tmp_path / "full"), fsdp=True, **common))
    assert _losses(full.metrics) == pytest.approx(_losses(plain.metrics), abs=1e-5)
    assert not torch.distributed.is_initialized()  # the world of one is ended with the run

    part = TrainConfig(output_dir=str(tmp_path / "part"), fsdp=True, stop_after=2, save_every=0, **common)
    first = train(part)
    ck = tmp_path / "part" / "checkpoints" / "step-00000002"
    assert (ck / SHARDED_DIR / ".metadata").exists() and not (ck / "model.safetensors").exists()
    rest = train(TrainConfig(output_dir=str(tmp_path / "part"), fsdp=True, resume=True, **common))
    resumed = _losses(first.metrics) + _losses(rest.metrics)
    assert resumed == pytest.approx(_losses(full.metrics), abs=1e-7)

    from transformers import AutoModelForSequenceClassification

    a = AutoModelForSequenceClassification.from_pretrained(tmp_path / "full" / "model").state_dict()
    b = AutoModelForSequenceClassification.from_pretrained(tmp_path / "part" / "model").state_dict()
    p = AutoModelForSequenceClassification.from_pretrained(tmp_path / "plain" / "model").state_dict()
    assert set(a) == set(p) and all(not isinstance(v, torch.distributed.tensor.DTensor) for v in a.values())
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-6
    assert max((a[k] - p[k]).abs().max().item() for k in a) <= 1e-5


def test_fsdp_checkpoint_with_a_nonfinite_shard_is_refused_and_the_world_ends(
    tmp_path, tiny_llama, pref_files, monkeypatch
):
    """A weight made Inf after step 2's update (the loss and gradient were finite, so the guard let it through):
    the sharded checkpoint of step 2 is refused naming it, step 1's stays the newest, and the world of one that
    --fsdp started is ended although the run stopped with an error. Without the check the shards would be written."""
    import rewardlab.training.train as train_module
    from rewardlab.core.finite import NonFiniteError

    real = train_module.train_step

    def poison_after_step_2(run, step, window):
        result = real(run, step, window)
        if step == 1:
            with torch.no_grad():
                p = next(run.rm.model.parameters())
                (p.to_local() if isinstance(p, torch.distributed.tensor.DTensor) else p).view(-1)[0] = float("inf")
        return result

    monkeypatch.setattr(train_module, "train_step", poison_after_step_2)
    cfg = TrainConfig(output_dir=str(tmp_path / "r"), fsdp=True, save_every=1, **_common(tiny_llama, pref_files))
    with pytest.raises(NonFiniteError, match=r"refusing to write checkpoint .*step-00000002: non-finite"):
        train(cfg)
    assert not torch.distributed.is_initialized()
    ckpts = sorted(p.name for p in (tmp_path / "r" / "checkpoints").glob("step-*"))
    assert ckpts == ["step-00000001"]


def test_fsdp_refuses_what_it_does_not_shard():
    with pytest.raises(RewardlabError, match="bf16-pure"):
        TrainConfig(fsdp=True, precision="bf16-pure")
    with pytest.raises(RewardlabError, match="LoRA"):
        TrainConfig(fsdp=True, lora_r=4)


def _torchrun(tmp_path, out: str, cfg: dict, *extra: str) -> subprocess.CompletedProcess:
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in cfg.items()]
    r = torchrun_train(["--fsdp", *flags, f"--output-dir={out}", *extra], cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def test_fsdp_two_processes_match_one(tmp_path, tiny_llama, pref_files):
    """2 gloo processes, batch 5 in micro-batches of 1: one process has 3 micro-batches, the other 2 (and runs
    one gradient-free repeat to stay in step with the all-gathers). Losses, held-out statistics and the saved
    weights equal one process's."""
    common = _common(tiny_llama, pref_files, batch_size=5, max_steps=3, micro_batch_size=1)
    one = train(TrainConfig(output_dir=str(tmp_path / "one"), fsdp=True, **common))
    _torchrun(tmp_path, str(tmp_path / "two"), common)
    rows = [json.loads(line) for line in open(tmp_path / "two" / "metrics.jsonl")]
    assert _losses(rows) == pytest.approx(_losses(one.metrics), abs=1e-5)
    assert json.loads((tmp_path / "two" / "train_summary.json").read_text())["world_size"] == 2
    norm_two = json.loads((tmp_path / "two" / "model" / "rewardlab.json").read_text())["normalization"]
    norm_one = json.loads((tmp_path / "one" / "model" / "rewardlab.json").read_text())["normalization"]
    assert norm_two["n"] == norm_one["n"] == 18
    assert norm_two["mean"] == pytest.approx(norm_one["mean"], abs=1e-5)

    from transformers import AutoModelForSequenceClassification

    a = AutoModelForSequenceClassification.from_pretrained(tmp_path / "two" / "model").state_dict()
    b = AutoModelForSequenceClassification.from_pretrained(tmp_path / "one" / "model").state_dict()
    assert set(a) == set(b) and max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-5


@pytest.mark.slow
def test_fsdp_two_processes_resume_equals_uninterrupted(tmp_path, tiny_llama, pref_files):
    common = _common(tiny_llama, pref_files, micro_batch_size=1)
    _torchrun(tmp_path, str(tmp_path / "full"), common)
    _torchrun(tmp_path, str(tmp_path / "part"), common, "--stop-after=2")
    assert len(list((tmp_path / "part" / "checkpoints" / "step-00000002" / SHARDED_DIR).glob("*.distcp"))) == 2
    r = _torchrun(tmp_path, str(tmp_path / "part"), common, "--resume")
    assert "resumed from" in r.stderr
    full = [json.loads(line) for line in open(tmp_path / "full" / "metrics.jsonl")]
    part = [json.loads(line) for line in open(tmp_path / "part" / "metrics.jsonl")]
    assert _losses(part) == pytest.approx(_losses(full), abs=1e-7) and len(_losses(full)) == 4


def test_packed_forward_detects_sharded_layers_and_stays_exact(tiny_llama):
    """Under fully_shard the packed forward runs whole layers (their forward gathers the weights) instead of reading
    the last layer's weights itself; packed rewards still equal the padded ones, through the model's forward."""
    from rewardlab.data.record import Comparison
    from rewardlab.models.packing import last_layer_trimmable
    from rewardlab.models.reward_model import RewardModel
    from rewardlab.training.collate import collate_packed
    from rewardlab.training.fsdp import ensure_process_group, shard

    rm = RewardModel.from_backbone(tiny_llama, seed=0, max_length=48)
    torch.nn.init.normal_(rm.model.score.weight, std=1.0)
    assert last_layer_trimmable(rm.model) == ""
    recs = [
        Comparison(prompt="Tell me about figs", responses=("Figs are sweet.", "Figs are blue.")),
        Comparison(prompt="Say yes", responses=("Yes", "No", "Maybe")),
    ]
    feats = [[rm.encoder.encode(c.prompt, r) for r in c.responses] for c in recs]
    with torch.no_grad():
        before = rm(**collate_packed(recs, feats, rm).inputs)
    own = ensure_process_group()
    try:
        shard(rm, torch.device("cpu"), bf16=False)
        assert last_layer_trimmable(rm.model) == "FSDP-wrapped layers"
        with torch.no_grad():
            packed = rm(**collate_packed(recs, feats, rm).inputs)
        items = [(c.prompt, r) for c in recs for r in c.responses]
        scored = rm.score(items, packing=True)
        padded = rm.score(items, packing=False)
    finally:
        if own:
            torch.distributed.destroy_process_group()
    assert (packed - before).abs().max().item() <= 1e-5
    assert max(abs(a - b) for a, b in zip(scored, padded)) <= 1e-5
    assert scored == pytest.approx(before.tolist(), abs=1e-5)
