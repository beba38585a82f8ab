"""The packed, prefix-shared fast path (rewardlab.models.packing) equals the padded forward: rewards, gradients, scoring,
training; and models it does not cover take the padded path explicitly."""

import json
import os
import re
from pathlib import Path

import pytest
import torch

from launch import torchrun_train
from rewardlab.data import Comparison, write_jsonl
from rewardlab.models.packing import (
    block_mask,
    build_inputs,
    common_prefix_len,
    layout_group,
    pack_rows,
    packing_support,
    width_buckets,
)
from rewardlab.models.reward_model import RewardModel
from rewardlab.training.collate import collate_packed, collate_pairs
from rewardlab.training.losses import LossType, batch_loss

TOL = 1e-4  # the bound for fp32; measured ≤ 1e-6 for rewards, ≤ 1e-6 relative for gradients
# The equality tests run on this device: `REWARDLAB_TEST_DEVICE=cuda pytest tests/test_packing.py` checks the fast
# path's GPU kernels (SDPA with a boolean block mask) on a GPU machine; CI runs them on the CPU.
DEVICE = os.environ.get("REWARDLAB_TEST_DEVICE", "cpu")

RECORDS = [
    Comparison(
        prompt="What is 12 plus 30?", responses=("The answer is 42.", "The answer is 43."), chosen=0, margin=1.0
    ),
    Comparison(prompt="hi", responses=("Hello!", "Go away.", "Hello! How can I help?"), chosen=2, margin=None),
    Comparison(
        prompt=({"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a fruit."}),
        responses=("apple", "apple pie is not a fruit"),
        chosen=0,
    ),  # one response is a token prefix
    Comparison(
        prompt="Please write a short sentence that mentions the word apple. " * 4,  # truncated: prompt_left
        responses=("I cannot help with that request.", "Sure! Here is a list: one, two, three, four, five."),
        chosen=1,
    ),
    Comparison(prompt="Say yes", responses=("Yes", "Yes"), chosen=0),  # identical responses
]


@pytest.fixture(scope="module")
def decoders(tmp_path_factory):
    from rewardlab.models.tiny import make_tiny_decoder

    return {arch: str(make_tiny_decoder(tmp_path_factory.mktemp(arch), arch)) for arch in ("qwen3", "mistral", "gpt2")}


def _backbone(name, tiny_llama, tiny_bert, tiny_qwen2, decoders):
    return {"llama": tiny_llama, "bert": tiny_bert, "qwen2": tiny_qwen2, "llama-eager": tiny_llama}.get(
        name
    ) or decoders[name]


def _model(path, attn=None, max_length=48, device="cpu"):
    rm = RewardModel.from_backbone(path, seed=0, max_length=max_length)
    if attn:
        rm.model.set_attn_implementation(attn)
    head = next(p for n, p in rm.model.named_parameters() if n.startswith(("score", "classifier")))
    torch.nn.init.normal_(head, std=1.0)  # a random head that spreads the rewards
    return rm.to(device)


def _features(rm, records):
    return [[rm.encoder.encode(c.prompt, r) for r in c.responses] for c in records]


# ---- layout -------------------------------------------------------------------------------------------------------
def test_layout_shares_the_common_token_prefix_and_restarts_positions():
    feats = [{"input_ids": [1, 2, 3, 4, 5]}, {"input_ids": [1, 2, 3, 7]}, {"input_ids": [1, 2, 3]}]
    g = layout_group(feats, "causal")
    # LCP is 3 but capped at 2 so the third response keeps its last token
    assert common_prefix_len([f["input_ids"] for f in feats]) == 3
    assert g.ids == [1, 2, 3, 4, 5, 3, 7, 3]
    assert g.pos == [0, 1, 2, 3, 4, 2, 3, 2]
    assert g.member == [-1, -1, 0, 0, 0, 1, 1, 2]
    assert [g.ids[i] for i in g.reads] == [5, 7, 3] and g.reads == [4, 6, 7]
    enc = layout_group(
        [{"input_ids": [9, 8], "token_type_ids": [0, 1]}, {"input_ids": [9, 7, 6], "token_type_ids": [0, 1, 1]}],
        "encoder",
    )
    assert enc.ids == [9, 8, 9, 7, 6] and enc.pos == [0, 1, 0, 1, 2] and enc.reads == [0, 2]
    assert enc.token_type == [0, 1, 0, 1, 1] and enc.member == [0, 0, 1, 1, 1]


def test_rows_respect_the_budget_and_the_mask_is_a_tree():
    lengths = [300, 200, 150, 120, 90, 60, 700]
    rows = pack_rows(lengths, 512)
    assert sorted(i for r in rows for i in r) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in r) <= 512 or len(r) == 1 for r in rows)  # a longer group: a row of its own
    assert width_buckets([700, 510, 500, 400, 90]) == [[0], [1, 2, 3], [4]]
    g = layout_group([{"input_ids": [1, 2, 3]}, {"input_ids": [1, 2, 4, 5]}], "causal")
    inp = build_inputs([g], [[0]], pad_id=0)
    m = block_mask(inp["packed_seg"], inp["packed_member"], causal=True)[0, 0]
    # tokens: [1 2 | 3 | 4 5]; response 1 (4, 5) sees the prompt and itself, never response 0's token 3
    expect = torch.tensor([[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [1, 1, 0, 1, 0], [1, 1, 0, 1, 1]]).bool()
    assert torch.equal(m, expect)
    assert inp["packed_read"].tolist() == [2, 4]


# ---- equality with the padded forward ------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["llama", "qwen2", "qwen3", "mistral", "bert", "llama-eager"])
def test_packed_rewards_and_gradients_equal_padded(arch, tiny_llama, tiny_bert, tiny_qwen2, decoders):
    rm = _model(
        _backbone(arch, tiny_llama, tiny_bert, tiny_qwen2, decoders),
        attn="eager" if arch == "llama-eager" else None,
        device=DEVICE,
    )
    assert packing_support(rm.model, rm.spec)[0] == ("encoder" if arch == "bert" else "causal")
    feats = _features(rm, RECORDS)
    results = {}
    for name in ("padded", "packed"):
        rm.zero_grad(set_to_none=True)
        if name == "padded":
            batch = collate_pairs(RECORDS, feats, rm.spec.pad_token_id, rm.spec.padding_side).to(DEVICE)
        else:
            batch = collate_packed(RECORDS, feats, rm, token_budget=64).to(DEVICE)
            assert "packed_read" in batch.inputs and batch.inputs["input_ids"].shape[0] > 1  # several rows
        rewards = rm(**batch.inputs)
        batch_loss("bt", rewards, batch).sum().backward()
        grads = {n: p.grad.detach().clone() for n, p in rm.named_parameters() if p.grad is not None}
        results[name] = (rewards.detach(), grads, batch)
    (r0, g0, b0), (r1, g1, b1) = results["padded"], results["packed"]
    assert r0.shape == r1.shape == (sum(c.k for c in RECORDS),)
    assert (r0 - r1).abs().max().item() <= TOL
    assert len(set(round(x, 4) for x in r0.tolist())) >= len(r0) - 1  # texts differ (two are identical)
    assert b0.n_tokens == b1.n_tokens and torch.equal(b0.chosen_idx, b1.chosen_idx)
    assert g0.keys() == g1.keys() and g0
    for k in g0:
        scale = max(1.0, g0[k].abs().max().item())
        assert (g0[k] - g1[k]).abs().max().item() <= TOL * scale, k
    if arch != "bert":  # the prompt is computed once: fewer tokens than the padded rows hold
        assert int((b1.inputs["packed_seg"] >= 0).sum()) < b0.n_tokens


@pytest.mark.parametrize("order", ["ascending", "descending", "one_row_each"])
def test_rows_in_any_order_and_width(order, tiny_llama):
    """Rows are run in runs of similar width, reordered inside; the rewards must come back in collate order."""
    from rewardlab.models.packing import packed_forward

    rm = _model(tiny_llama)
    feats = _features(rm, RECORDS)
    groups = [layout_group(f, "causal") for f in feats]
    assert [len(g) for g in groups] == [33, 42, 91, 96, 25]  # the tiny tokenizer is trained deterministically
    rows = {
        "ascending": [[2], [3], [0, 1, 4]],
        "descending": [[0, 1, 4], [3], [2]],  # widths 91, 96, 100: one run
        "one_row_each": [[4], [0], [1], [2], [3]],
    }[order]  # several runs
    widths = [sum(len(groups[g]) for g in row) for row in rows]
    assert len(width_buckets(widths)) == (1 if order != "one_row_each" else 3)
    with torch.no_grad():
        packed = packed_forward(rm.model, "causal", **build_inputs(groups, rows, rm.spec.pad_token_id))
        padded = rm(**collate_pairs(RECORDS, feats, rm.spec.pad_token_id, "right").inputs)
    assert (packed - padded).abs().max().item() <= TOL


def test_every_loss_sees_the_same_rewards(tiny_llama):
    rm = _model(tiny_llama)
    feats = _features(rm, RECORDS)
    padded = collate_pairs(RECORDS, feats, rm.spec.pad_token_id, rm.spec.padding_side)
    packed = collate_packed(RECORDS, feats, rm)
    with torch.no_grad():
        r0, r1 = rm(**padded.inputs), rm(**packed.inputs)
    checked = 0
    for loss in LossType:
        try:
            l0 = batch_loss(loss.value, r0, padded)
        except (ValueError, TypeError):
            continue  # e.g. margin needs a margin on every pair
        l1 = batch_loss(loss.value, r1, packed)
        assert torch.allclose(l0, l1, atol=TOL), loss
        checked += 1
    assert checked >= 2


@pytest.mark.parametrize("arch", ["llama", "qwen2", "bert"])
def test_score_packing_equals_padded(arch, tiny_llama, tiny_bert, tiny_qwen2, decoders):
    rm = _model(_backbone(arch, tiny_llama, tiny_bert, tiny_qwen2, decoders), device=DEVICE)
    items = [(c.prompt, r) for c in RECORDS for r in c.responses]
    items = items[::2] + items[1::2]  # responses to one prompt are not adjacent
    padded = rm.score(items, batch_size=4)
    packed = rm.score(items, packing=True, token_budget=96)
    assert max(abs(a - b) for a, b in zip(padded, packed)) <= TOL
    by_record = zip(rm.score_comparisons(RECORDS, packing=True), rm.score_comparisons(RECORDS))
    assert all(a == pytest.approx(b, abs=TOL) for a, b in by_record)


# ---- the explicit fallback ------------------------------------------------------------------------------------------
def test_uncovered_architecture_falls_back_to_padded(decoders):
    rm = _model(decoders["gpt2"])
    mode, why = packing_support(rm.model, rm.spec)
    assert mode is None and "gpt2" in why
    feats = _features(rm, RECORDS)
    batch = collate_packed(RECORDS, feats, rm)
    assert "attention_mask" in batch.inputs and "packed_read" not in batch.inputs  # the padded batch, unchanged
    padded = collate_pairs(RECORDS, feats, rm.spec.pad_token_id, rm.spec.padding_side)
    assert torch.equal(batch.inputs["input_ids"], padded.inputs["input_ids"])
    items = [(c.prompt, r) for c in RECORDS for r in c.responses]
    assert rm.score(items, packing=True) == rm.score(items)
    llama_inputs = build_inputs([layout_group(f, "causal") for f in feats], [[i] for i in range(len(feats))], 0)
    from rewardlab.core.errors import ModelContractError

    with pytest.raises(ModelContractError, match="packing does not cover"):
        rm(**llama_inputs)


def test_short_sliding_window_is_not_packed(tiny_qwen2):
    rm = _model(tiny_qwen2)
    rm.model.config.use_sliding_window, rm.model.config.sliding_window = True, 16
    mode, why = packing_support(rm.model, rm.spec)
    assert mode is None and "sliding window" in why


def test_lora_model_packs(tiny_llama):
    pytest.importorskip("peft")
    from rewardlab.models.lora import apply_lora

    rm = _model(tiny_llama)
    apply_lora(rm, r=4, alpha=8)
    for n, p in rm.model.named_parameters():
        if "lora_B" in n:
            torch.nn.init.normal_(p, std=0.1)  # non-zero adapters
    feats = _features(rm, RECORDS)
    assert packing_support(rm.model, rm.spec)[0] == "causal"
    with torch.no_grad():
        r0 = rm(**collate_pairs(RECORDS, feats, rm.spec.pad_token_id, rm.spec.padding_side).inputs)
        r1 = rm(**collate_packed(RECORDS, feats, rm).inputs)
    assert (r0 - r1).abs().max().item() <= TOL


# ---- training and the command line ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pref_file(tmp_path_factory):
    words = "apple pear plum fig kiwi lime lemon mango".split()
    records = [
        Comparison(
            prompt=f"Tell me about {words[i % 8]}, item {i}",
            chosen=i % 2,
            responses=(f"I like {words[i % 8]}.", f"I like {words[(i + 3) % 8]} a lot.")[:: 1 - 2 * (i % 2)],
            id=f"r{i}",
        )
        for i in range(24)
    ]
    path = tmp_path_factory.mktemp("packdata") / "prefs.jsonl"
    write_jsonl(records, str(path))
    return str(path)


def _train(tmp_path, name, backbone, data, **kw):
    from rewardlab.training.train import TrainConfig, train

    cfg = TrainConfig(
        data=data,
        backbone=backbone,
        output_dir=str(tmp_path / name),
        max_length=64,
        lr=1e-3,
        log_every=1,
        seed=0,
        eval_fraction=0.25,
        batch_size=4,
        max_steps=3,
        **kw,
    )
    res = train(cfg)
    losses = [json.loads(l)["loss"] for l in open(Path(cfg.output_dir) / "metrics.jsonl") if '"loss"' in l]
    return res, losses


def test_packed_training_equals_padded_training(tmp_path, tiny_llama, pref_file):
    from safetensors.torch import load_file

    a, la = _train(tmp_path, "padded", tiny_llama, pref_file)
    b, lb = _train(tmp_path, "packed", tiny_llama, pref_file, packing=True, token_budget=128)
    assert la == pytest.approx(lb, abs=1e-5)
    assert a.final_eval["accuracy"] == b.final_eval["accuracy"]
    wa, wb = load_file(str(a.model_dir / "model.safetensors")), load_file(str(b.model_dir / "model.safetensors"))
    for k in wa:
        assert torch.allclose(wa[k], wb[k], atol=2e-5), k


def test_packed_resume_is_exact(tmp_path, tiny_bert, pref_file):
    from safetensors.torch import load_file

    full, lf = _train(tmp_path, "full", tiny_bert, pref_file, packing=True)
    _train(tmp_path, "part", tiny_bert, pref_file, packing=True, stop_after=2)
    resumed, lr_ = _train(tmp_path, "part", tiny_bert, pref_file, packing=True, resume=True)
    wf, wr = (
        load_file(str(full.model_dir / "model.safetensors")),
        load_file(str(resumed.model_dir / "model.safetensors")),
    )
    assert all(torch.equal(wf[k], wr[k]) for k in wf)
    assert lf == lr_


def test_cli_score_packing(tmp_path, tiny_llama, pref_file, monkeypatch):
    """score --packing takes the packed path (the load option reaches the model: score_packed is counted)."""
    import rewardlab.models.reward_model as model_module
    from rewardlab.cli import main

    rm = _model(tiny_llama)
    rm.save(tmp_path / "m")
    calls = []
    real = model_module.score_packed
    monkeypatch.setattr(model_module, "score_packed", lambda *a, **k: calls.append(1) or real(*a, **k))
    outs = {}
    for flag in ("--no-packing", "--packing"):
        out = tmp_path / f"scores{flag}.jsonl"
        calls.clear()
        assert main(["score", "--model", str(tmp_path / "m"), "--data", pref_file, "--output", str(out), flag]) == 0
        assert bool(calls) is (flag == "--packing"), flag
        outs[flag] = [json.loads(l)["scores"] for l in open(out)]
    flat = lambda rows: [s for r in rows for s in r]  # noqa: E731
    assert flat(outs["--packing"]) == pytest.approx(flat(outs["--no-packing"]), abs=TOL)


def test_cli_eval_packing(tmp_path, tiny_llama, pref_file):
    from rewardlab.cli import main

    rm = _model(tiny_llama)
    rm.save(tmp_path / "m")
    scores = {}
    for flag in ("--no-packing", "--packing"):
        out = tmp_path / f"eval{flag}"
        assert (
            main(
                [
                    "eval",
                    "--model",
                    str(tmp_path / "m"),
                    "--data",
                    pref_file,
                    "--output-dir",
                    str(out),
                    "--n-boot",
                    "10",
                    flag,
                ]
            )
            == 0
        )
        (examples,) = out.glob("examples-*.jsonl")
        scores[flag] = [s for l in open(examples) for s in json.loads(l)["scores"]]
    assert len(scores["--packing"]) == 48
    assert scores["--packing"] == pytest.approx(scores["--no-packing"], abs=TOL)


def test_eval_packing_is_a_load_option_that_takes_the_packed_path(tmp_path, tiny_llama, pref_file, monkeypatch):
    """--packing reaches the scorer when it is built (the loader's ``packing``), not by an attribute set on it
    afterwards: eval --packing runs rewardlab.models.packing.score_packed (counted), eval without it never does; the
    scores agree. Fails if evaluate stops passing ``packing`` to the loader, or the loader to RewardModel.load."""
    import rewardlab.models.reward_model as model_module
    from rewardlab.commands.evaluate import EvalConfig, run_eval
    from rewardlab.scoring.loader import load_reward_model

    rm = _model(tiny_llama)
    rm.save(tmp_path / "m")
    assert load_reward_model(str(tmp_path / "m"), say=None).packing is False
    assert load_reward_model(str(tmp_path / "m"), say=None, packing=True).packing is True
    calls = []
    real = model_module.score_packed
    monkeypatch.setattr(model_module, "score_packed", lambda *a, **k: calls.append(len(a[1])) or real(*a, **k))
    scores = {}
    for packing in (False, True):
        calls.clear()
        out = run_eval(
            EvalConfig(
                model=[str(tmp_path / "m")],
                data=[pref_file],
                output_dir=str(tmp_path / f"eval-{packing}"),
                n_boot=10,
                packing=packing,
            )
        )
        assert bool(calls) is packing and (not packing or sum(calls) == 48), calls  # 24 records x 2 responses
        (examples,) = out.glob("examples-*.jsonl")
        scores[packing] = [s for l in open(examples) for s in json.loads(l)["scores"]]
    assert scores[True] == pytest.approx(scores[False], abs=TOL)


@pytest.mark.slow
def test_two_process_ddp_packed_equals_one_process(tmp_path, tiny_llama, pref_file):
    """torchrun --nproc_per_node 2 with --packing: same per-step losses and weights as one process."""
    from safetensors.torch import load_file

    one, l1 = _train(tmp_path, "one", tiny_llama, pref_file, packing=True)
    args = [
        "--data",
        pref_file,
        "--backbone",
        tiny_llama,
        "--batch-size",
        "4",
        "--max-steps",
        "3",
        "--log-every",
        "1",
        "--lr",
        "1e-3",
        "--max-length",
        "64",
        "--eval-fraction",
        "0.25",
        "--packing",
        "--output-dir",
        str(tmp_path / "two"),
    ]
    r = torchrun_train(args)
    assert r.returncode == 0, r.stderr[-3000:]
    l2 = [json.loads(l)["loss"] for l in open(tmp_path / "two" / "metrics.jsonl") if '"loss"' in l]
    assert l2 == pytest.approx(l1, abs=1e-5)
    w1, w2 = (
        load_file(str(one.model_dir / "model.safetensors")),
        load_file(str(tmp_path / "two" / "model" / "model.safetensors")),
    )
    for k in w1:
        assert torch.allclose(w1[k], w2[k], atol=2e-5), k


# ---- the last layer at the read tokens only --------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["llama", "qwen2", "qwen3", "mistral", "llama-eager", "bert"])
def test_trimmed_last_layer_equals_the_full_forward(arch, tiny_llama, tiny_bert, tiny_qwen2, decoders, monkeypatch):
    """The fast path runs the last layer with queries at the read tokens only; rewards and gradients equal
    running it over every token (the same packed rows through the base model's own forward), with and without
    gradient checkpointing."""
    from rewardlab.models import packing

    rm = _model(
        _backbone(arch, tiny_llama, tiny_bert, tiny_qwen2, decoders),
        attn="eager" if arch == "llama-eager" else None,
        device=DEVICE,
    )
    assert packing.last_layer_trimmable(rm.model) == ""
    feats = _features(rm, RECORDS)
    batch = collate_packed(RECORDS, feats, rm, token_budget=64).to(DEVICE)
    for checkpointing in (False, True):
        if checkpointing:
            rm.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        results = []
        for trim in (True, False):
            monkeypatch.setattr(packing, "last_layer_trimmable", (lambda m: "") if trim else (lambda m: "off"))
            rm.zero_grad(set_to_none=True)
            rewards = rm(**batch.inputs)
            batch_loss("bt", rewards, batch).sum().backward()
            results.append(
                (rewards.detach(), {n: p.grad.clone() for n, p in rm.named_parameters() if p.grad is not None})
            )
        (r0, g0), (r1, g1) = results
        assert (r0 - r1).abs().max().item() <= 1e-5
        assert g0.keys() == g1.keys() and any(re.search(r"layers?\.1\.", k) for k in g0)  # the last layer learns
        for k in g0:
            assert (g0[k] - g1[k]).abs().max().item() <= 1e-5 * max(1.0, g1[k].abs().max().item()), k


def test_sharded_or_uncovered_layers_keep_the_full_forward(tiny_llama, decoders):
    from rewardlab.models import packing

    rm = _model(tiny_llama)
    assert packing.last_layer_trimmable(rm.model) == ""
    for p in rm.model.model.layers[-1].parameters():
        p.ds_id = 0  # what DeepSpeed ZeRO-3 marks its partitioned parameters with
    assert "ZeRO-3" in packing.last_layer_trimmable(rm.model)
    assert "gpt2" in packing.last_layer_trimmable(_model(decoders["gpt2"]).model)
