"""DPO implicit reward: --model POLICY --ref-model REF (sum over response tokens of log pi - log pi_ref) and
--ref-free, against a plain transformers forward on the same rendered text (<= 1e-5 in fp32)."""

import json

import pytest
import torch

from rewardlab.cli import main
from rewardlab.core.contract_options import ContractOptions
from rewardlab.core.errors import ModelContractError
from rewardlab.scoring.loader import load_reward_model

ITEMS = [
    ("What is 2 plus 3?", "It is 5."),
    ("What is 2 plus 3?", "It is 7."),
    ("Name a fruit.", "Apple."),
    ("Say hi.", "Hi there, friend!"),
]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    from rewardlab.models.tiny import make_tiny_causal_lm

    policy = make_tiny_causal_lm(tmp_path_factory.mktemp("policy"), seed=5)
    ref = make_tiny_causal_lm(tmp_path_factory.mktemp("ref"), seed=6)
    return str(policy), str(ref)


def _plain_logps(model_dir, items):
    """Σ log p over the tokens from the response's first token to the end, one text at a time, no padding:
    the text is the chat template over [user, assistant]; the response starts after the rendered prefix."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    m = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    out = []
    for p, r in items:
        full = tok.apply_chat_template(
            [{"role": "user", "content": p}, {"role": "assistant", "content": r}], tokenize=False
        )
        prefix = full[: full.index(r)]
        ids = tok(full, return_tensors="pt")["input_ids"]
        start = len(tok(prefix)["input_ids"])
        assert tok(prefix)["input_ids"] == ids[0, :start].tolist()  # no token straddles the boundary here
        with torch.no_grad():
            logp = torch.log_softmax(m(ids).logits[0, :-1], -1).gather(-1, ids[0, 1:, None])[:, 0]
        out.append(logp[start - 1 :].sum().item())
    return out


def test_implicit_reward_equals_plain_forward(pair):
    policy, ref = pair
    rm = load_reward_model(policy, ContractOptions(ref_model=ref), say=None)
    got = rm.score(ITEMS, batch_size=3)  # padded batches of different lengths
    want = [a - b for a, b in zip(_plain_logps(policy, ITEMS), _plain_logps(ref, ITEMS))]
    # each model's sum is within 1e-5 (the two ref-free checks below); the reward is the difference of two sums of
    # magnitude up to ~80, where one fp32 ulp is 7.6e-6, so one ulp each way (measured) already gives 1.5e-5
    assert got == pytest.approx(want, abs=2e-5)
    assert rm.contract.kind == "dpo-implicit" and "log pi_ref" in rm.contract.value("reward")
    free = load_reward_model(policy, ContractOptions(ref_free=True), say=None).score(ITEMS, batch_size=2)
    assert free == pytest.approx(_plain_logps(policy, ITEMS), abs=1e-5)
    ref_free = load_reward_model(ref, ContractOptions(ref_free=True), say=None).score(ITEMS, batch_size=3)
    assert ref_free == pytest.approx(_plain_logps(ref, ITEMS), abs=1e-5)
    left = load_reward_model(policy, ContractOptions(ref_model=ref, padding_side="left"), say=None)
    assert left.score(ITEMS, batch_size=4) == pytest.approx(want, abs=2e-5)


def test_beta_scales_but_never_reorders(pair):
    policy, ref = pair
    base = load_reward_model(policy, ContractOptions(ref_model=ref), say=None).score(ITEMS)
    scaled = load_reward_model(policy, ContractOptions(ref_model=ref, beta=0.1), say=None)
    got = scaled.score(ITEMS)
    assert got == pytest.approx([0.1 * x for x in base], abs=1e-6)
    assert sorted(range(4), key=got.__getitem__) == sorted(range(4), key=base.__getitem__)
    assert scaled.contract.value("beta") == 0.1 and scaled.contract.parts["beta"].source == "given"


def test_bad_combinations_are_refused(pair, tmp_path):
    policy, ref = pair
    with pytest.raises(ModelContractError, match="not both"):
        load_reward_model(policy, ContractOptions(ref_model=ref, ref_free=True), say=None)
    with pytest.raises(ModelContractError, match="reward heads"):
        load_reward_model(policy, ContractOptions(ref_free=True, score_index=0), say=None)


def test_packing_is_refused_for_the_implicit_reward(pair, tmp_path, capsys):
    """eval --packing with --ref-model: exit 2, no traceback, the message names --packing and the reward."""
    policy, ref = pair
    data = tmp_path / "pairs.jsonl"
    data.write_text(json.dumps({"prompt": "Say hi.", "chosen": "Hi!", "rejected": "No."}) + "\n")
    argv = ["eval", "--model", policy, "--ref-model", ref, "--data", str(data), "--output-dir", str(tmp_path / "ev")]
    assert main([*argv, "--packing"]) == 2
    err = capsys.readouterr().err
    assert "--packing does not cover the DPO implicit reward" in err and "Traceback" not in err
    with pytest.raises(ModelContractError, match="--packing does not cover the DPO implicit reward"):
        load_reward_model(policy, ContractOptions(ref_free=True), say=None, packing=True)


def test_cli_eval_score_and_serve_with_a_reference(pair, tmp_path, capsys):
    policy, ref = pair
    rows = [
        {"prompt": "What is 2 plus 3?", "chosen": "It is 5.", "rejected": "It is 7."},
        {"prompt": "Name a fruit.", "chosen": "Apple.", "rejected": "Apple."},
    ]  # identical: an exact tie
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert (
        main(
            [
                "eval",
                "--model",
                policy,
                "--ref-model",
                ref,
                "--beta",
                "0.5",
                "--data",
                str(data),
                "--output-dir",
                str(tmp_path / "ev"),
                "--n-boot",
                "20",
                "--tie-policy",
                "half",
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    col = next(iter(report["results"].values()))
    contract = col["model"]["describe"]["contract"]
    assert contract["kind"] == "dpo-implicit" and contract["parts"]["beta"]["value"] == 0.5
    md = (tmp_path / "ev" / "report.md").read_text()
    assert "dpo-implicit, reward: sum over response tokens of log pi - log pi_ref" in md  # which reward was used
    want = [0.5 * (a - b) for a, b in zip(_plain_logps(policy, ITEMS[:2]), _plain_logps(ref, ITEMS[:2]))]
    acc = (1.0 if want[0] > want[1] else 0.0) + 0.5  # row 2 ties: half credit
    assert col["accuracy"] == pytest.approx(acc / 2)
    assert (
        main(
            [
                "score",
                "--model",
                policy,
                "--ref-model",
                ref,
                "--beta",
                "0.5",
                "--data",
                str(data),
                "--output",
                str(tmp_path / "s.jsonl"),
            ]
        )
        == 0
    )
    first = json.loads((tmp_path / "s.jsonl").read_text().splitlines()[0])
    assert first["scores"] == pytest.approx(want, abs=1e-5)
    assert json.loads((tmp_path / "s.contract.json").read_text())["kind"] == "dpo-implicit"

    from fastapi.testclient import TestClient

    from rewardlab.serve.app import create_app
    from rewardlab.serve.config import ServeConfig

    with TestClient(create_app(ServeConfig(model=policy, ref_model=ref, beta=0.5, max_wait_ms=1))) as client:
        r = client.post("/v1/score", json={"prompt": ITEMS[0][0], "responses": [ITEMS[0][1], ITEMS[1][1]]})
        assert r.status_code == 200, r.text
        assert r.json()["rewards"] == pytest.approx(want, abs=1e-5)
    capsys.readouterr()
    assert main(["inspect", policy, "--ref-free"]) == 0
    assert "dpo-implicit" in capsys.readouterr().out
