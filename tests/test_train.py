"""Recipe tests: the real training loop on tiny models, compared across batching, interruption and resume."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from launch import torchrun_train
from rewardlab.data import Comparison, write_jsonl
from rewardlab.training.train import TrainConfig, train

WORDS = "apple pear plum fig kiwi lime lemon mango grape melon peach berry".split()


@pytest.fixture(scope="module")
def pref_file(tmp_path_factory):
    """Prompts ask for a word; the preferred response contains it, the other a different word."""
    records = []
    for i in range(48):
        w, other = WORDS[i % len(WORDS)], WORDS[(i * 5 + 3) % len(WORDS)]
        other = other if other != w else WORDS[(i + 1) % len(WORDS)]
        resp = (f"I like {w} a lot.", f"I like {other} a lot.")
        chosen = i % 2
        records.append(
            Comparison(
                prompt=f"Say something about {w} number {i}",
                responses=resp if chosen == 0 else resp[::-1],
                chosen=chosen,
                margin=float(i % 3),
                id=f"r{i}",
            )
        )
    path = tmp_path_factory.mktemp("data") / "prefs.jsonl"
    write_jsonl(records, str(path))
    return str(path)


def run(tmp_path, name, backbone, data, **kw):
    kw = {"max_length": 64, "lr": 1e-3, "log_every": 1, "seed": 0, "eval_fraction": 0.25, **kw}
    cfg = TrainConfig(data=data, backbone=backbone, output_dir=str(tmp_path / name), **kw)
    return cfg, train(cfg)


def weights(result):
    return load_file(str(Path(result.model_dir) / "model.safetensors"))


def losses(cfg):
    rows = [json.loads(l) for l in open(Path(cfg.output_dir) / "metrics.jsonl")]
    return [r["loss"] for r in rows if "loss" in r]


def test_accumulation_4x1_equals_1x4(tmp_path, tiny_llama, pref_file):
    """Same data, same update: only float summation order differs. After 3 AdamW steps of lr 1e-3 the weights
    agree to 2e-5 (Adam's normalised step amplifies round-off in near-zero gradients; measured 3.4e-6)."""
    ca, a = run(tmp_path, "a", tiny_llama, pref_file, batch_size=4, micro_batch_size=1, max_steps=3)
    cb, b = run(tmp_path, "b", tiny_llama, pref_file, batch_size=4, max_steps=3)
    assert losses(ca) == pytest.approx(losses(cb), abs=1e-6)
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.allclose(wa[k], wb[k], atol=2e-5), (k, (wa[k] - wb[k]).abs().max())


def test_micro_batches_by_records_and_tokens():
    """tokens 5, 3, 9, 2, 2 with at most 2 records and 8 tokens: [5, 3] (8), [9] (alone: over the cap), [2, 2]."""
    from rewardlab.training.train import micro_batches

    recs = list("abcde")
    assert micro_batches(recs, [5, 3, 9, 2, 2], 2, 8) == [["a", "b"], ["c"], ["d", "e"]]
    assert micro_batches(recs, [5, 3, 9, 2, 2], 2) == [["a", "b"], ["c", "d"], ["e"]]
    assert micro_batches(recs, [5, 3, 9, 2, 2], 5, 7) == [["a"], ["b"], ["c"], ["d", "e"]]
    assert micro_batches([], [], 4, 10) == []


def test_token_capped_micro_batches_give_the_same_update(tmp_path, tiny_llama, pref_file):
    """Splitting each step into forwards of ≤ 230 tokens (2 comparisons of 107-114 tokens) is accumulation: same
    losses and, after 3 AdamW steps, the same weights up to float summation order (as 4x1 vs 1x4 above)."""
    ca, a = run(tmp_path, "whole", tiny_llama, pref_file, batch_size=4, max_steps=3)
    cb, b = run(tmp_path, "split", tiny_llama, pref_file, batch_size=4, max_steps=3, micro_batch_tokens=230)
    assert losses(ca) == pytest.approx(losses(cb), abs=1e-6)
    wa, wb = weights(a), weights(b)
    assert all(torch.allclose(wa[k], wb[k], atol=2e-5) for k in wa)


@pytest.mark.parametrize("backbone", ["llama", "bert"])
def test_resume_equals_uninterrupted(tmp_path, tiny_llama, tiny_bert, pref_file, backbone):
    bb = {"llama": tiny_llama, "bert": tiny_bert}[backbone]
    full_cfg, full = run(tmp_path, "full", bb, pref_file, batch_size=4, max_steps=6)
    part_cfg, part = run(tmp_path, "part", bb, pref_file, batch_size=4, max_steps=6, stop_after=3)
    assert part.steps == 3 and not Path(part.model_dir).exists()
    assert (Path(part_cfg.output_dir) / "checkpoints" / "step-00000003" / "model.safetensors").exists()
    _, resumed = run(tmp_path, "part", bb, pref_file, batch_size=4, max_steps=6, resume=True)
    wf, wr = weights(full), weights(resumed)
    for k in wf:
        assert torch.equal(wf[k], wr[k]), k
    assert losses(full_cfg) == pytest.approx(losses(part_cfg), abs=0)


def test_refuses_to_overwrite_and_to_resume_changed_config(tmp_path, tiny_llama, pref_file):
    from rewardlab.core.errors import RewardlabError

    run(tmp_path, "x", tiny_llama, pref_file, batch_size=4, max_steps=4, stop_after=2)
    with pytest.raises(RewardlabError, match="--resume"):
        run(tmp_path, "x", tiny_llama, pref_file, batch_size=4, max_steps=4)
    with pytest.raises(RewardlabError, match="lr"):
        cfg = TrainConfig(
            data=pref_file,
            backbone=tiny_llama,
            output_dir=str(tmp_path / "x"),
            max_length=64,
            lr=5e-4,
            log_every=1,
            eval_fraction=0.25,
            batch_size=4,
            max_steps=4,
            resume=True,
        )
        train(cfg)


def test_resumes_a_checkpoint_written_before_a_config_field_existed(tmp_path, tiny_llama, pref_file):
    """A field missing from the checkpoint's saved config was added to TrainConfig later: the run that wrote it
    behaved as the field's default, so resuming with the default is allowed and with another value refused."""
    from rewardlab.core.errors import RewardlabError

    run(tmp_path, "old", tiny_llama, pref_file, batch_size=4, max_steps=4, stop_after=2)
    state_path = tmp_path / "old" / "checkpoints" / "step-00000002" / "state.json"
    state = json.loads(state_path.read_text())
    del state["config"]["gradient_checkpointing_every"]
    state_path.write_text(json.dumps(state))
    with pytest.raises(RewardlabError, match="gradient_checkpointing_every"):
        run(
            tmp_path,
            "old",
            tiny_llama,
            pref_file,
            batch_size=4,
            max_steps=4,
            resume=True,
            gradient_checkpointing_every=2,
        )
    _, res = run(tmp_path, "old", tiny_llama, pref_file, batch_size=4, max_steps=4, resume=True)
    assert res.steps == 4 and Path(res.model_dir).exists()


@pytest.mark.parametrize("every", [1, 2])
def test_selective_checkpointing_gives_the_same_training(tmp_path, tiny_llama, pref_file, every):
    """Checkpointing recomputes activations in the backward; the update is unchanged (every layer, or layers 0, 2, ..)."""
    from transformers import AutoModelForSequenceClassification

    from rewardlab.training.train import enable_checkpointing

    model = AutoModelForSequenceClassification.from_pretrained(tiny_llama)
    n_layers = model.config.num_hidden_layers
    assert enable_checkpointing(model, every) == list(range(0, n_layers, every))
    base_cfg, base = run(tmp_path, "plain", tiny_llama, pref_file, batch_size=4, max_steps=2)
    cfg, ckpt = run(
        tmp_path,
        f"ckpt{every}",
        tiny_llama,
        pref_file,
        batch_size=4,
        max_steps=2,
        gradient_checkpointing=True,
        gradient_checkpointing_every=every,
    )
    assert losses(cfg) == pytest.approx(losses(base_cfg), abs=1e-6)
    wa, wb = weights(base), weights(ckpt)
    assert all(torch.allclose(wa[k], wb[k], atol=1e-5) for k in wa)


def test_training_learns_and_reports(tmp_path, tiny_bert, pref_file):
    cfg, res = run(tmp_path, "learn", tiny_bert, pref_file, batch_size=8, epochs=3, lr=3e-3, loss="margin")
    ls = losses(cfg)
    assert len(ls) == res.steps and all(l == l for l in ls)
    assert sum(ls[-3:]) / 3 < sum(ls[:3]) / 3  # the loss goes down
    summary = json.loads((Path(cfg.output_dir) / "train_summary.json").read_text())
    assert summary["data"]["n_train"] + summary["data"]["n_eval"] == 48
    spec = json.loads((Path(res.model_dir) / "rewardlab.json").read_text())
    assert spec["data_fingerprint"] == summary["data_fingerprint"] and spec["normalization"]["n"] > 0


def test_two_process_ddp_equals_one_process(tmp_path, tiny_llama, pref_file):
    """torchrun --nproc_per_node 2 (gloo, real DDP): same global batch, same per-step losses and weights."""
    single_cfg, single = run(tmp_path, "one", tiny_llama, pref_file, batch_size=4, max_steps=4)
    args = [
        "--data",
        pref_file,
        "--backbone",
        tiny_llama,
        "--batch-size",
        "4",
        "--max-steps",
        "4",
        "--log-every",
        "1",
        "--lr",
        "1e-3",
        "--max-length",
        "64",
        "--eval-fraction",
        "0.25",
        "--output-dir",
        str(tmp_path / "two"),
    ]
    r = torchrun_train(args)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("model:") == 1  # only rank 0 reports
    two_losses = [json.loads(l)["loss"] for l in open(tmp_path / "two" / "metrics.jsonl") if '"loss"' in l]
    assert len(two_losses) == 4  # one writer, not two independent runs
    assert two_losses == pytest.approx(losses(single_cfg), abs=1e-6)
    w1, w2 = weights(single), load_file(str(tmp_path / "two" / "model" / "model.safetensors"))
    for k in w1:
        assert torch.allclose(w1[k], w2[k], atol=2e-5), k


# Per-step training losses of the tiny Llama on `pref_file` (batch 4, lr 1e-3, seed 0), recorded with torch 2.13.0
# and transformers 5.24 on CPU. A change to the data order, collation, loss or optimiser shows up here.
RECORDED_LOSSES = [0.6929611, 0.6940008, 0.6985267, 0.6883737, 0.6963948, 0.6936922]


def test_per_step_losses_match_recorded(tmp_path, tiny_llama, pref_file):
    cfg, _ = run(tmp_path, "rec", tiny_llama, pref_file, batch_size=4, max_steps=6)
    got = losses(cfg)
    assert len(got) == len(RECORDED_LOSSES) == 6, f"record these: {got}"
    assert got == pytest.approx(RECORDED_LOSSES, abs=1e-4)
