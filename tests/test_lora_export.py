"""LoRA training (peft) with the head always trained and saved, loading the adapter directory, and
`rewardlab export --merge` -> a plain transformers directory whose scores equal the unmerged model's."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rewardlab.cli import main
from rewardlab.core.errors import RewardlabError
from rewardlab.data import Comparison, write_jsonl
from rewardlab.models.reward_model import RewardModel
from rewardlab.training.train import TrainConfig, train

ITEMS = [
    ("Say something about apple", "I like apple a lot."),
    ("Name a fruit.", "A pear."),
    (({"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi."}), "Hi!"),
]


@pytest.fixture(scope="module")
def prefs(tmp_path_factory):
    words = "apple pear plum fig kiwi lime lemon mango".split()
    recs = [
        Comparison(
            prompt=f"Say something about {w} #{i}",
            responses=(f"I like {w}.", f"I like {words[(i + 3) % 8]}."),
            chosen=0,
            id=f"r{i}",
        )
        for i, w in enumerate(words * 3)
    ]
    path = tmp_path_factory.mktemp("lora-data") / "prefs.jsonl"
    write_jsonl(recs, str(path))
    return str(path)


@pytest.fixture(scope="module", params=["llama", "bert"])
def lora_run(request, tmp_path_factory, tiny_llama, tiny_bert, prefs):
    backbone = {"llama": tiny_llama, "bert": tiny_bert}[request.param]
    out = tmp_path_factory.mktemp(f"lora-{request.param}")
    cfg = TrainConfig(
        data=prefs,
        backbone=backbone,
        output_dir=str(out / "run"),
        max_length=64,
        batch_size=4,
        max_steps=3,
        lr=1e-2,
        lora_r=4,
        lora_alpha=8,
        log_every=1,
        eval_fraction=0.25,
        seed=0,
    )
    res = train(cfg)
    return request.param, backbone, Path(res.model_dir), out


def test_lora_trains_adapters_and_head_only_and_saves_both(lora_run):
    kind, backbone, model_dir, _ = lora_run
    files = {p.name for p in model_dir.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "rewardlab.json"} <= files
    assert "model.safetensors" not in files  # only the adapter (and the head) is stored
    saved = load_file(str(model_dir / "adapter_model.safetensors"))
    head = "score" if kind == "llama" else "classifier"
    head_keys = [k for k in saved if f".{head}." in k]
    assert head_keys and any("lora_A" in k for k in saved)
    fresh = RewardModel.from_backbone(backbone, max_length=64, seed=0)  # the head as initialised before training
    init_head = fresh.model.get_submodule(head).weight
    trained_head = next(v for k, v in saved.items() if f".{head}." in k and k.endswith("weight"))
    assert not torch.allclose(init_head, trained_head)  # the head was trained
    rm = RewardModel.load(model_dir)
    base_lin = next(m for n, m in rm.model.named_modules() if hasattr(m, "base_layer") and hasattr(m, "lora_A"))
    name = next(n for n, m in rm.model.named_modules() if m is base_lin)
    plain_name = name.replace("base_model.model.", "")
    assert torch.equal(base_lin.base_layer.weight, fresh.model.get_submodule(plain_name).weight)  # backbone frozen
    spec = json.loads((model_dir / "rewardlab.json").read_text())
    assert spec["normalization"]["n"] > 0


def test_export_merge_loads_in_plain_transformers_and_matches(lora_run):
    from transformers import AutoModelForSequenceClassification

    _, _, model_dir, out = lora_run
    unmerged = RewardModel.load(model_dir)
    expected = unmerged.score(ITEMS)
    dest = out / "exported"
    assert main(["export", "--model", str(model_dir), "--output", str(dest), "--merge"]) == 0
    assert not (dest / "adapter_config.json").exists() and (dest / "model.safetensors").exists()
    plain = AutoModelForSequenceClassification.from_pretrained(dest).eval()
    assert plain.config.num_labels == 1 and type(plain).__name__.endswith("ForSequenceClassification")
    with torch.no_grad():
        for (p, r), want in zip(ITEMS, expected):
            enc = {k: torch.tensor([v]) for k, v in unmerged.encoder.encode(p, r).items()}
            assert plain(**enc).logits[0, 0].item() == pytest.approx(want, abs=1e-5)
    again = RewardModel.load(dest)  # still a rewardlab model (rewardlab.json travels along)
    assert again.score(ITEMS) == pytest.approx(expected, abs=1e-5)


def test_export_refuses_lora_without_merge_and_existing_output(lora_run):
    from rewardlab.commands.export import ExportConfig, run_export

    _, _, model_dir, out = lora_run
    with pytest.raises(RewardlabError, match="--merge"):
        run_export(ExportConfig(model=str(model_dir), output=str(out / "nomerge")))
    (out / "taken").mkdir()
    with pytest.raises(RewardlabError, match="--overwrite"):
        run_export(ExportConfig(model=str(model_dir), output=str(out / "taken"), merge=True))


def test_export_of_a_full_model_is_a_copy(tmp_path, tiny_llama):
    rm = RewardModel.from_backbone(tiny_llama, max_length=64, seed=1)
    rm.save(tmp_path / "full")
    assert main(["export", "--model", str(tmp_path / "full"), "--output", str(tmp_path / "copy")]) == 0
    assert RewardModel.load(tmp_path / "copy").score(ITEMS) == pytest.approx(rm.score(ITEMS), abs=1e-6)
