"""A custom-code multi-output model (ArmoRM-style `rewards`, `gating_output`, `score`; the modeling file is
tests/fixtures/custom_code/modeling_tiny_armo.py) loads with --trust-remote-code only; the scalar is its `score`;
`--score-index`/`--attribute` pick one of its `rewards`; `score` writes the per-attribute rewards; scored,
evaluated and served equal to the model's own forward (<= 1e-5, fp32)."""

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import torch

from rewardlab.cli import main
from rewardlab.core.contract_options import ContractOptions
from rewardlab.core.errors import ModelContractError
from rewardlab.scoring.loader import load_reward_model

FIXTURE = Path(__file__).parent / "fixtures" / "custom_code" / "modeling_tiny_armo.py"
NAMES = ["helpfulness", "correctness", "verbosity"]
ITEMS = [("What is 2 plus 3?", "It is 5."), ("What is 2 plus 3?", "It is 7."), ("Name a fruit.", "Apple.")]
TRUST = ContractOptions(trust_remote_code=True)


def _module():
    spec = importlib.util.spec_from_file_location("modeling_tiny_armo_fixture", FIXTURE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def armo(tmp_path_factory, tiny_llama):
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(tiny_llama)
    config.num_labels = 3
    config.id2label = dict(enumerate(NAMES))
    config.label2id = {n: i for i, n in enumerate(NAMES)}
    torch.manual_seed(9)
    model = _module().TinyArmoRewardModel(config)
    out = tmp_path_factory.mktemp("armo")
    model.save_pretrained(out)
    shutil.copy(FIXTURE, out / FIXTURE.name)
    cfg = json.loads((out / "config.json").read_text())
    cfg["auto_map"] = {"AutoModelForSequenceClassification": "modeling_tiny_armo.TinyArmoRewardModel"}
    cfg["architectures"] = ["TinyArmoRewardModel"]
    (out / "config.json").write_text(json.dumps(cfg))
    AutoTokenizer.from_pretrained(tiny_llama).save_pretrained(out)
    return str(out)


def _own_forward(model_dir):
    """The model's own code, one text at a time: (score, rewards) per item."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    m = _module().TinyArmoRewardModel.from_pretrained(model_dir).eval()
    out = []
    with torch.no_grad():
        for p, r in ITEMS:
            text = tok.apply_chat_template(
                [{"role": "user", "content": p}, {"role": "assistant", "content": r}], tokenize=False
            )
            o = m(**tok(text, return_tensors="pt"))
            out.append((o.score[0, 0].item(), o.rewards[0].tolist()))
    return out


def test_needs_trust_remote_code(armo):
    with pytest.raises(ModelContractError, match="--trust-remote-code"):
        load_reward_model(armo, say=None)


def test_score_output_by_default_and_attributes_on_request(armo):
    want = _own_forward(armo)
    rm = load_reward_model(armo, TRUST, say=None)
    assert rm.contract.kind == "custom-code" and rm.contract.value("output") == "score"
    assert rm.score(ITEMS, batch_size=2) == pytest.approx([s for s, _ in want], abs=1e-5)
    attrs = rm.attribute_scores(ITEMS, batch_size=2)
    assert [list(a) for a in attrs] == [NAMES] * 3
    assert [list(a.values()) for a in attrs] == [pytest.approx(r, abs=1e-5) for _, r in want]
    by_name = load_reward_model(armo, ContractOptions(trust_remote_code=True, attribute="correctness"), say=None)
    assert by_name.score(ITEMS) == pytest.approx([r[1] for _, r in want], abs=1e-5)
    by_index = load_reward_model(armo, ContractOptions(trust_remote_code=True, score_index=2), say=None)
    assert by_index.score(ITEMS) == pytest.approx([r[2] for _, r in want], abs=1e-5)


def test_cli_score_eval_serve(armo, tmp_path):
    want = _own_forward(armo)
    data = tmp_path / "pairs.jsonl"
    data.write_text(json.dumps({"prompt": ITEMS[0][0], "chosen": ITEMS[0][1], "rejected": ITEMS[1][1]}) + "\n")
    assert (
        main(
            [
                "score",
                "--model",
                armo,
                "--trust-remote-code",
                "--data",
                str(data),
                "--output",
                str(tmp_path / "s.jsonl"),
            ]
        )
        == 0
    )
    row = json.loads((tmp_path / "s.jsonl").read_text())
    assert row["scores"] == pytest.approx([want[0][0], want[1][0]], abs=1e-5)
    assert row["attributes"][1]["verbosity"] == pytest.approx(want[1][1][2], abs=1e-5)
    assert (
        main(
            [
                "eval",
                "--model",
                armo,
                "--trust-remote-code",
                "--data",
                str(data),
                "--output-dir",
                str(tmp_path / "ev"),
                "--n-boot",
                "10",
            ]
        )
        == 0
    )
    col = next(iter(json.loads((tmp_path / "ev" / "report.json").read_text())["results"].values()))
    assert col["accuracy"] == (1.0 if want[0][0] > want[1][0] else 0.0)
    assert col["model"]["describe"]["contract"]["parts"]["attributes"]["value"] == NAMES

    from fastapi.testclient import TestClient

    from rewardlab.serve.app import create_app
    from rewardlab.serve.config import ServeConfig

    with TestClient(create_app(ServeConfig(model=armo, trust_remote_code=True, max_wait_ms=1))) as client:
        r = client.post("/v1/score", json={"prompt": ITEMS[0][0], "responses": [ITEMS[0][1], ITEMS[1][1]]})
        assert r.status_code == 200, r.text
        assert r.json()["rewards"] == pytest.approx([want[0][0], want[1][0]], abs=1e-5)
