"""docs/model-contract.md, checked: plain transformers fed all of ``encode()``'s inputs gives ``RewardModel.score``'s
number; for an encoder that includes ``token_type_ids`` (with ``input_ids`` alone the score moves)."""

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from rewardlab.models.reward_model import RewardModel

PROMPT, RESPONSE = 'Write a sentence that uses the word "ocean".', "The ocean is calm today."


def _unit_head(rm):
    """N(0, 1) head weights, so the scores are of order 1 and a changed input shows."""
    head = rm.model.score if hasattr(rm.model, "score") else rm.model.classifier
    with torch.no_grad():
        head.weight.copy_(torch.randn(head.weight.shape, generator=torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("arch", ["bert", "llama"])
def test_plain_transformers_fed_encode_gives_the_score(tmp_path, tiny_bert, tiny_llama, arch):
    rm = RewardModel.from_backbone({"bert": tiny_bert, "llama": tiny_llama}[arch], max_length=64, seed=0)
    _unit_head(rm)
    rm.save(tmp_path / "m")
    rm = RewardModel.load(tmp_path / "m")
    enc = rm.encoder.encode(PROMPT, RESPONSE)
    plain = AutoModelForSequenceClassification.from_pretrained(tmp_path / "m").eval()
    with torch.no_grad():
        full = plain(**{k: torch.tensor([v]) for k, v in enc.items()}).logits[0, 0].item()
        ids_only = plain(input_ids=torch.tensor([enc["input_ids"]])).logits[0, 0].item()
    assert full == pytest.approx(rm.score([(PROMPT, RESPONSE)])[0], abs=1e-5)
    if arch == "bert":  # the response is segment 1: without token_type_ids the encoder reads it as segment 0
        assert set(enc) == {"input_ids", "token_type_ids"} and 1 in enc["token_type_ids"]
        assert abs(ids_only - full) > 1e-3
    else:  # a causal LM's encode() holds only the ids
        assert set(enc) == {"input_ids"} and ids_only == pytest.approx(full, abs=1e-5)
