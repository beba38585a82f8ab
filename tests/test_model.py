import json

import pytest
import torch

from rewardlab.core.errors import ModelContractError
from rewardlab.models.reward_model import SPEC_FILE, RewardModel

ITEMS = [
    ("What is 12 plus 30?", "The answer is 42."),
    ("hi", "Hello!"),
    ([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a fruit."}], "apple"),
    ("Please write a short sentence that mentions the word apple. " * 3, "I cannot help with that request."),
]


def test_pad_token_is_never_eos_or_in_template(tiny_llama):
    """The tiny tokenizer ships pad == eos == <|im_end|>, which every ChatML turn contains; rewardlab must pick
    another token so the last-non-pad rule finds the real last token."""
    rm = RewardModel.from_backbone(tiny_llama)
    assert rm.spec.pad_token == "<|endoftext|>" and rm.spec.pad_token != rm.spec.eos_token
    assert rm.spec.pad_token not in rm.spec.chat_template
    assert rm.model.config.pad_token_id == rm.spec.pad_token_id
    ids = rm.encoder.encode(*ITEMS[0])["input_ids"]
    assert rm.spec.pad_token_id not in ids
    assert rm.tokenizer.decode(ids).endswith("The answer is 42.<|im_end|>\n")


@pytest.mark.parametrize("side", ["right", "left"])
def test_single_equals_batched_any_padding(tiny_backbone, side):
    rm = RewardModel.from_backbone(tiny_backbone, seed=0)
    if rm.spec.pooling == "cls" and side == "left":
        with pytest.raises(ModelContractError):
            RewardModel.from_backbone(tiny_backbone, padding_side="left")
        return
    torch.nn.init.normal_(next(p for n, p in rm.model.named_parameters() if "score" in n or "classifier" in n), std=1)
    alone = [rm.score([it], batch_size=1)[0] for it in ITEMS]
    batched = rm.score(ITEMS, batch_size=len(ITEMS), padding_side=side)
    assert max(abs(a - b) for a, b in zip(alone, batched)) <= 1e-5
    assert len(set(round(a, 6) for a in alone)) == len(ITEMS)  # the texts really differ


def test_truncation_keeps_response_and_prompt_end(tiny_llama):
    rm = RewardModel.from_backbone(tiny_llama, max_length=40)
    long_prompt = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
    ids = rm.encoder.encode(long_prompt, "The answer is 42.")["input_ids"]
    text = rm.tokenizer.decode(ids)
    assert len(ids) == 40
    assert text.endswith("The answer is 42.<|im_end|>\n")
    assert "fourteen" in text and "one two" not in text
    right = RewardModel.from_backbone(tiny_llama, max_length=40, truncation="right")
    assert "one two" in right.tokenizer.decode(right.encoder.encode(long_prompt, "The answer is 42.")["input_ids"])


def test_encoder_truncation_keeps_response(tiny_bert):
    rm = RewardModel.from_backbone(tiny_bert, max_length=16)
    ids = rm.encoder.encode("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda", "the answer is yes")
    text = rm.tokenizer.decode(ids["input_ids"])
    assert len(ids["input_ids"]) == 16 and text.endswith("[SEP] the answer is yes [SEP]") and "lambda" in text


def test_saved_dir_loads_in_plain_transformers_with_same_scores(tiny_backbone, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    rm = RewardModel.from_backbone(tiny_backbone, seed=1)
    rm.save(tmp_path / "m")
    ours = rm.score(ITEMS, batch_size=2)
    plain = AutoModelForSequenceClassification.from_pretrained(tmp_path / "m").eval()
    tok = AutoTokenizer.from_pretrained(tmp_path / "m")
    assert plain.config.num_labels == 1 and tok.pad_token_id == rm.spec.pad_token_id
    for (prompt, response), expected in zip(ITEMS, ours):
        enc = {k: torch.tensor([v]) for k, v in rm.encoder.encode(prompt, response).items()}
        with torch.no_grad():
            got = plain(**enc).logits[0, 0].item()
        assert got == pytest.approx(expected, abs=1e-5)
    # a right-padded batch through plain transformers: its pad-id rule finds the same last token
    feats = [rm.encoder.encode(p, r) for p, r in ITEMS]
    batch = rm.collate(feats, "right")
    with torch.no_grad():
        got = plain(**batch).logits[:, 0].tolist()
    assert got == pytest.approx(ours, abs=1e-5)
    assert RewardModel.load(tmp_path / "m").score(ITEMS) == pytest.approx(ours, abs=1e-6)


def test_load_refuses_mismatch(tiny_llama, tmp_path):
    rm = RewardModel.from_backbone(tiny_llama)
    rm.save(tmp_path / "m")
    with pytest.raises(ModelContractError, match="max_length|truncation"):
        RewardModel.load(tmp_path / "m", expect={"truncation": "right"})
    spec = json.loads((tmp_path / "m" / SPEC_FILE).read_text())
    spec["pad_token_id"] = 5
    (tmp_path / "m" / SPEC_FILE).write_text(json.dumps(spec))
    with pytest.raises(ModelContractError, match="pad"):
        RewardModel.load(tmp_path / "m")
    (tmp_path / "m" / SPEC_FILE).unlink()
    with pytest.raises(ModelContractError, match="rewardlab.json"):
        RewardModel.load(tmp_path / "m")
