"""Multi-objective reward models: masked MSE, K-output save/load, gate, λ grid, Llama 2 rule, ratings readers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rewardlab.core.errors import DataError, RewardlabError
from rewardlab.data.ratings import load_rated
from rewardlab.multiobjective.debias import LAMBDA_GRID, find_lambdas, transform_matrix
from rewardlab.multiobjective.gate import GateConfig, GatingNetwork
from rewardlab.multiobjective.losses import masked_mse, targets_and_mask
from rewardlab.multiobjective.model import AttributeRewardModel
from rewardlab.multiobjective.ridge import fit_ridge
from rewardlab.multiobjective.scalarise import FixedWeights, Llama2Rule, parse_scaliser

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
ATTRS = ["helpfulness", "correctness", "harmlessness", "verbosity"]
SCALES = {a: [0, 4] for a in ATTRS}


def test_masked_mse_hand_worked():
    """pred [[1, 2], [3, 4]], target [[0, 5], [3, -100]], mask [[1, 1], [1, 0]]:
    squared errors of the rated cells 1, 9, 0 → (1 + 9 + 0) / 3 = 10/3; the −100 cell counts nothing."""
    pred = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    target = torch.tensor([[0.0, 5.0], [3.0, -100.0]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    loss = masked_mse(pred, target, mask)
    assert loss.item() == pytest.approx(10 / 3)
    loss.backward()
    # d/dŷ = 2(ŷ − y)·m / Σm: [[2/3, -2], [0, 0]]
    assert torch.allclose(pred.grad, torch.tensor([[2 / 3, -2.0], [0.0, 0.0]]))
    assert masked_mse(pred, target, torch.zeros(2, 2)).item() == 0.0  # no label at all: 0, not NaN


def test_targets_and_mask_from_missing():
    target, mask = targets_and_mask([(0.5, None), (None, 1.0)])
    assert target.tolist() == [[0.5, 0.0], [0.0, 1.0]] and mask.tolist() == [[1, 0], [0, 1]]


def test_k_output_save_loads_in_plain_transformers(tiny_backbone, tmp_path):
    from transformers import AutoModelForSequenceClassification

    rm = AttributeRewardModel.from_backbone(tiny_backbone, ATTRS, SCALES, seed=3)
    with torch.no_grad():  # a head that is not the init: every output distinct
        for p in rm.model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    rm.save(tmp_path / "m")
    plain = AutoModelForSequenceClassification.from_pretrained(tmp_path / "m").eval()
    assert plain.config.num_labels == 4 and [plain.config.id2label[i] for i in range(4)] == ATTRS
    spec = json.loads((tmp_path / "m" / "rewardlab.json").read_text())["multiobjective"]
    assert (
        spec["attributes"] == ATTRS and spec["scales"]["verbosity"] == [0, 4] and spec["scaliser"]["type"] == "weights"
    )
    items = [("What is 2 plus 2?", "It is 4."), ("hello", "Hi! How can I help you today, friend?")]
    loaded = AttributeRewardModel.load(tmp_path / "m")
    ours = loaded.score_items(items).rewards
    batch = loaded.collate([loaded.encode(p, r) for p, r in items])
    kwargs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.no_grad():
        theirs = plain(**kwargs).logits
    assert ours.shape == (2, 4)
    assert (ours - theirs).abs().max().item() <= 1e-5
    assert ours.std() > 0


def test_features_feed_the_head_exactly(tiny_backbone):
    """The cached head input reproduces the K outputs through the head (what ridge stage 1 relies on)."""
    from rewardlab.multiobjective.model import find_head

    rm = AttributeRewardModel.from_backbone(tiny_backbone, ATTRS, SCALES, seed=0).eval()
    batch = rm.collate([rm.encode("Add 2 and 3.", "5"), rm.encode("Hi", "Hello there, how are you?")])
    with torch.no_grad():
        rewards, x, hidden = rm.features(batch)
        assert torch.allclose(find_head(rm.model)(x), rewards, atol=1e-6)
    assert hidden.shape == x.shape


def test_encoder_gate_input_is_the_prompt_alone(tiny_bert):
    """Text-pair encoders see both segments; the gate's input comes from the prompt encoded alone (its [SEP])."""
    rm = AttributeRewardModel.from_backbone(tiny_bert, ATTRS, SCALES, seed=0).eval()
    a, b = rm.encode("What is 12 plus 30?", "42."), rm.encode("What is 12 plus 30?", "It is 43, I think, roughly.")
    assert a["prompt_ids"] == b["prompt_ids"] and a["prompt_ids"][a["prompt_end"]] == rm.tokenizer.sep_token_id
    with torch.no_grad():
        h = rm.features(rm.collate([a, b]))[2]
        alone = rm.model.bert(input_ids=torch.tensor([a["prompt_ids"]])).last_hidden_state[0, -1]
    assert torch.allclose(h[0], h[1], atol=1e-5) and torch.allclose(h[0], alone, atol=1e-5)


def test_prompt_end_state_does_not_depend_on_response(tiny_llama):
    """Causal LM: the gate's input, the state where the final user turn ends, is the same for any response."""
    rm = AttributeRewardModel.from_backbone(tiny_llama, ATTRS, SCALES, seed=0).eval()
    a, b = rm.encode("What is 12 plus 30?", "42."), rm.encode("What is 12 plus 30?", "It is 43, I think, roughly.")
    assert (
        a["prompt_end"] == b["prompt_end"]
        and a["input_ids"][: a["prompt_end"] + 1] == b["input_ids"][: b["prompt_end"] + 1]
    )
    with torch.no_grad():
        h = rm.features(rm.collate([a, b]))[2]
    assert torch.allclose(h[0], h[1], atol=1e-5)
    # the token the gate reads is the end of the user turn, before the assistant header
    text = rm.tokenizer.decode(a["input_ids"][a["prompt_end"] + 1 :])
    assert text.startswith("<|im_start|>assistant")


def test_gate_weights_sum_to_one_over_objectives_for_pairs():
    """Fed (B, 2, d) — chosen and rejected of B pairs, as ArmoRM's stage-2 script does — the weights must sum to
    1 over the K objectives for every (example, side). The released script's softmax(dim=1) normalises over the
    pair instead, so its weights sum to 1 over chosen/rejected and this test fails on it."""
    torch.manual_seed(0)
    gate = GatingNetwork(GateConfig(input_dim=8, n_objectives=5, hidden=16, temperature=10.0)).eval()
    p = torch.randn(6, 2, 8)
    g = gate.weights(p)
    assert g.shape == (6, 2, 5)
    assert torch.allclose(g.sum(-1), torch.ones(6, 2), atol=1e-6)
    assert (g >= 0).all()
    assert not torch.allclose(g.sum(1), torch.ones(6, 5), atol=1e-3)  # not normalised over the pair
    defect = torch.softmax(gate.mlp(p) / 10.0, dim=1)  # what the released script computes
    assert not torch.allclose(defect.sum(-1), torch.ones(6, 2), atol=1e-3)
    score, _ = gate(p, torch.ones(6, 2, 5))
    assert torch.allclose(score, gate.logit_scale * torch.ones(6, 2))  # β · Σ g = β with all-ones rewards
    assert gate.logit_scale.item() == 1.0


def test_lambda_grid_hand_checked():
    """r_v = (1, 2, 3, 4). Three attributes, Spearman ρ(r_j − λ·r_v, r_v) checked by hand:

    * a = (0, 0.3, 0.11, 0.41): a − λ r_v = (−λ, .3 − 2λ, .11 − 3λ, .41 − 4λ). For λ < 0.055 the order stays
      ranks (1, 3, 2, 4): Σd² = 2, ρ = 1 − 6·2/(4·15) = 0.8 (so 0, 0.01, 0.025, 0.05 fail). Items 1 and 3 swap at
      λ = 0.055 and items 2 and 4 at 0.055; at λ = 0.075 the values (−.075, .15, −.115, .11) rank (2, 4, 1, 3):
      Σd² = 10, ρ = 0 ≤ 0.03 → λ_a = 0.075 (the first grid value that passes, not 0.1 or later).
    * b = (4, 3, 2, 1): ρ = −1 already at λ = 0 → λ_b = 0.
    * c = 10·r_v: c − λ r_v = (10 − λ)·r_v, ρ = 1 for every grid value → never passes → λ_c = 1 (as ArmoRM).
    * verbosity itself: λ = 1 (zeroed out)."""
    rv = np.array([1.0, 2.0, 3.0, 4.0])
    a = np.array([0.0, 0.3, 0.11, 0.41])
    b = np.array([4.0, 3.0, 2.0, 1.0])
    c = 10 * rv
    lam = find_lambdas(np.stack([a, b, c, rv], 1), verbosity_index=3)
    assert lam.tolist() == [0.075, 0.0, 1.0, 1.0]
    # threshold −0.5: 0.075..0.125 give ρ = 0; at 0.15 the values (−.15, 0, −.34, −.19) rank (3, 4, 1, 2): ρ = −0.6
    assert find_lambdas(np.stack([a, rv], 1), 1, threshold=-0.5).tolist() == [0.15, 1.0]
    t = transform_matrix(lam, 3)
    r = np.array([[0.5, 0.2, 0.9, 0.4]])
    assert np.allclose(r @ t, [[0.5 - 0.075 * 0.4, 0.2, 0.9 - 0.4, 0.0]])  # r' = r − λ r_v; verbosity zeroed


def test_llama2_rule_hand_worked():
    """Rows (safety, helpfulness): (0.9, 0.6) safe prompt, R_s ≥ 0.15 → R_h = 0.6; (0.1, 0.8) → R_s < 0.15 → 0.1;
    (0.9, 0.3) tagged unsafe → R_s = 0.9. logit: ln(0.6/0.4) = 0.405465, ln(0.1/0.9) = −2.197225,
    ln(0.9/0.1) = 2.197225. Whitened with mean 0 and std 2: halved."""
    rule = Llama2Rule(safety="harmlessness", helpfulness="helpfulness", threshold=0.15)
    names = ["helpfulness", "harmlessness"]
    r = torch.tensor([[0.6, 0.9], [0.8, 0.1], [0.3, 0.9]])
    unsafe = torch.tensor([False, False, True])
    assert rule.combined(r, names, unsafe).tolist() == pytest.approx([0.6, 0.1, 0.9])
    assert rule(r, names, unsafe=unsafe).tolist() == pytest.approx([0.405465, -2.197225, 2.197225], abs=1e-5)
    white = Llama2Rule("harmlessness", "helpfulness", 0.15, whiten_mean=0.0, whiten_std=2.0)
    assert white(r, names, unsafe=unsafe).tolist() == pytest.approx([0.202733, -1.098612, 1.098612], abs=1e-5)
    fitted = rule.with_whitening(r, names, unsafe)
    z = fitted(r, names, unsafe=unsafe)
    assert float(z.mean()) == pytest.approx(0.0, abs=1e-6) and float(z.std()) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(RewardlabError, match="harmlessness"):
        rule(r, ["helpfulness", "verbosity"])


def test_fixed_weights_and_presets():
    """Nemotron preset on (h, c, coh, cx, v) = (1, 1, 1, 1, 1): 0.3 + 0.74 + 0.46 + 0.47 − 0.33 = 1.64."""
    names = ["helpfulness", "correctness", "coherence", "complexity", "verbosity"]
    assert parse_scaliser("nemotron")(torch.ones(1, 5), names).item() == pytest.approx(1.64)
    assert parse_scaliser("helpfulness=2,verbosity=-1")(
        torch.tensor([[0.5, 9, 9, 9, 0.25]]), names
    ).item() == pytest.approx(0.75)
    assert FixedWeights(equal=True)(torch.tensor([[1.0, 2, 3, 4, 5]]), names).item() == pytest.approx(3.0)
    with pytest.raises(RewardlabError, match="honesty"):
        parse_scaliser("honesty=1")(torch.ones(1, 5), names)
    with pytest.raises(RewardlabError, match="finite"):
        parse_scaliser("helpfulness=x")


def test_ridge_recovers_a_linear_probe():
    """y_k = x · w_k exactly (no intercept): ridge at small α recovers w_k; missing labels are ignored."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 6, generator=g)
    w = torch.randn(2, 6, generator=g)
    y = x @ w.T
    mask = torch.ones(200, 2)
    mask[::3, 1] = 0
    y[::3, 1] = 1e6  # garbage in the missing cells
    fit = fit_ridge(x, y, mask, alphas=(1e-4, 1e4))
    assert torch.allclose(fit.weight, w, atol=1e-3)
    assert fit.alphas == [1e-4, 1e-4]


# --- readers ------------------------------------------------------------------------------------------------


def _write(tmp_path, rows, name="d.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.mark.parametrize(
    "row, field, message",
    [
        ({"prompt": "p", "response": "r", "helpfulness": 5}, "helpfulness", "outside the scale"),
        ({"prompt": "p", "response": "r", "helpfulness": "good"}, "helpfulness", "not a number"),
        (
            {"prompt": "p", "response": "r", "helpfulness": None, "correctness": None},
            "helpfulness, correctness",
            "every attribute is missing",
        ),
    ],
)
def test_malformed_helpsteer2_ratings_name_file_line_field(tmp_path, row, field, message):
    good = {"prompt": "p0", "response": "r0", "helpfulness": 3, "correctness": 2}
    path = _write(tmp_path, [good, row])
    with pytest.raises(DataError, match=message) as e:
        load_rated(path, attributes=("helpfulness", "correctness"))
    assert e.value.path == path and e.value.line == 2 and e.value.field == field


def test_malformed_nemo_and_aspects_rows(tmp_path):
    text = "<extra_id_0>System\n\n<extra_id_1>User\nhi\n<extra_id_1>Assistant\nhello\n"
    path = _write(
        tmp_path,
        [{"text": text, "label": [-100] * 4 + [4, 3, 2, 1, 0]}, {"text": text, "label": [-100] * 4 + [4, 3, 7, 1, 0]}],
    )
    with pytest.raises(DataError) as e:
        load_rated(path)
    assert (e.value.line, e.value.field) == (2, "coherence") and "outside the scale" in str(e.value)
    path = _write(tmp_path, [{"text": text, "label": [1, 2]}], "short.jsonl")
    with pytest.raises(DataError, match="9 labels") as e:
        load_rated(path)
    assert e.value.field == "label"
    uf = {
        "instruction": "q",
        "completions": [
            {"response": "a", "annotations": {"honesty": {"Rating": "4"}, "helpfulness": {"Rating": "N/A"}}},
            {"response": "b", "annotations": {"honesty": {"Rating": "9"}, "helpfulness": {"Rating": "2"}}},
        ],
    }
    path = _write(tmp_path, [uf], "uf.jsonl")
    with pytest.raises(DataError, match="outside the scale") as e:
        load_rated(path)
    assert e.value.field == "completions[1].honesty" and e.value.line == 1
    uf["completions"][1]["annotations"]["honesty"]["Rating"] = "5"
    rated = load_rated(_write(tmp_path, [uf], "uf2.jsonl"))
    assert rated.attributes == ("honesty", "helpfulness") and rated.scales_json()["honesty"] == [1, 5]
    assert [t.ratings for t in rated.items] == [(0.75, None), (1.0, 0.25)]  # (r − 1) / 4; N/A = missing


def test_columns_need_a_scale(tmp_path):
    path = _write(tmp_path, [{"prompt": "p", "response": "r", "quality": 7}])
    with pytest.raises(DataError, match="--attribute-scales quality"):
        load_rated(path, attributes=("quality",))
    from rewardlab.data.ratings import parse_scales

    rated = load_rated(path, attributes=("quality",), scales=parse_scales("quality=0:10"))
    assert rated.items[0].ratings == (0.7,)


def test_nemo_row_in_a_preference_run_says_what_to_do(tmp_path):
    from rewardlab.data import load_comparisons

    path = _write(tmp_path, [{"text": "<extra_id_1>User\nq\n<extra_id_1>Assistant\na\n", "label": [1] * 9}])
    with pytest.raises(DataError, match="--objective regression"):
        load_comparisons(path)


# --- training end to end (tiny) -----------------------------------------------------------------------------


def _cfg(tmp_path, **kw):
    from rewardlab.training.train import TrainConfig

    base = dict(output_dir=str(tmp_path / kw.pop("name", "run")), eval_batch_size=16, log_every=1)
    base.update(kw)
    return TrainConfig(**base)


def test_regression_gating_and_bt_init_end_to_end(tiny_llama, tmp_path):
    from rewardlab.models.reward_model import RewardModel
    from rewardlab.training.train import train

    reg = train(
        _cfg(
            tmp_path,
            name="ridge",
            objective="regression",
            stage1="ridge",
            backbone=tiny_llama,
            data="embedded",
            embedded_size=30,
            weights="equal",
        )
    )
    summary = json.loads((tmp_path / "ridge" / "train_summary.json").read_text())
    assert summary["stage1"]["method"] == "ridge" and set(summary["held_out"]) == set(ATTRS)
    gate_run = train(
        _cfg(
            tmp_path,
            name="gate",
            objective="gating",
            init_from=str(reg.model_dir),
            data="embedded",
            embedded_size=30,
            gate_hidden=8,
            gate_layers=1,
            gate_steps=20,
        )
    )
    gated = AttributeRewardModel.load(gate_run.model_dir)
    assert gated.gate is not None and gated.mo.scaliser == {"type": "gate"}
    lambdas = gated.mo.debias["lambdas"]
    assert lambdas["verbosity"] == 1.0 and all(v in LAMBDA_GRID or v == 1.0 for v in lambdas.values())
    out = gated.score_items([("Add 2 and 3.", "2 plus 3 is exactly 5."), ("Add 2 and 3.", "Roughly 7.")])
    assert torch.allclose(out.gate.sum(-1), torch.ones(2), atol=1e-6)
    assert torch.allclose(out.transformed, out.rewards @ gated.transform_matrix())
    assert torch.allclose(out.score, gated.gate.logit_scale.detach() * (out.gate * out.transformed).sum(-1))
    # second gating run into the same directory (--overwrite: the cached features are kept): from the cache
    again = train(
        _cfg(
            tmp_path,
            name="gate",
            objective="gating",
            init_from=str(reg.model_dir),
            data="embedded",
            embedded_size=30,
            gate_hidden=8,
            gate_layers=1,
            gate_steps=5,
            overwrite=True,
        )
    )
    assert again.summary["features_from_cache"] is True
    # regression → BT: the initial reward is the regression model's helpfulness output
    from rewardlab.multiobjective.model import init_from_attribute

    init = init_from_attribute(str(reg.model_dir), "helpfulness", tmp_path / "init")
    bt = RewardModel.from_backbone(str(init))
    items = [("Add 2 and 3.", "2 plus 3 is exactly 5."), ("hi", "Hello! I hope this helps.")]
    reg_model = AttributeRewardModel.load(reg.model_dir)
    assert torch.allclose(torch.tensor(bt.score(items)), reg_model.score_items(items).rewards[:, 0], atol=1e-5)


def test_gating_refuses_bad_settings(tiny_llama, tmp_path):
    from rewardlab.training.train import TrainConfig, train

    with pytest.raises(RewardlabError, match="objective"):
        TrainConfig(objective="armo")
    with pytest.raises(RewardlabError, match="init-from"):
        train(_cfg(tmp_path, objective="gating", data="embedded"))
    with pytest.raises(RewardlabError, match="init-attribute"):
        TrainConfig(init_from="x")


@pytest.mark.parametrize("name", ["helpsteer2-sample.jsonl", "helpsteer2-sample-nemo.jsonl"])
def test_real_helpsteer2_rows_read_and_train(tiny_llama, tmp_path, name):
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"{path} not present")
    from rewardlab.training.train import train

    rated = load_rated(str(path))
    assert len(rated.items) == 8
    assert rated.attributes[-5:] == ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
    assert all(0 <= r <= 1 for t in rated.items for r in t.ratings if r is not None)
    result = train(
        _cfg(
            tmp_path,
            objective="regression",
            backbone=tiny_llama,
            data=str(path),
            max_steps=3,
            batch_size=4,
            eval_fraction=0.0,
            max_length=128,
            weights="nemotron",
        )
    )
    losses = [row["loss"] for row in result.metrics]
    assert len(losses) == 3 and all(np.isfinite(losses))
    loaded = AttributeRewardModel.load(result.model_dir)
    assert loaded.attributes == list(rated.attributes) and loaded.mo.scaliser["weights"]["correctness"] == 0.74


@pytest.fixture(scope="module")
def gated_model(tiny_llama, tmp_path_factory):
    """A ridge regression model on the embedded attributes and a small gate trained on it (read, never changed)."""
    from rewardlab.training.train import train

    tmp_path = tmp_path_factory.mktemp("gated")
    reg = train(
        _cfg(
            tmp_path,
            name="ridge",
            objective="regression",
            stage1="ridge",
            backbone=tiny_llama,
            data="embedded",
            embedded_size=24,
        )
    )
    gate = train(
        _cfg(
            tmp_path,
            name="gate",
            objective="gating",
            init_from=str(reg.model_dir),
            data="embedded",
            embedded_size=24,
            gate_hidden=8,
            gate_layers=1,
            gate_steps=5,
        )
    )
    return gate.model_dir


def test_score_writes_rewards_gate_and_score(gated_model, tmp_path):
    from rewardlab.commands.score import ScoreConfig, run_score

    data = _write(tmp_path, [{"prompt": "Add 2 and 3.", "response": "5"}, {"prompt": "hi", "response": "Hello!"}])
    out = run_score(ScoreConfig(model=str(gated_model), data=data, output=str(tmp_path / "s.jsonl")))
    rows = [json.loads(line) for line in Path(out).read_text().splitlines()]
    rm = AttributeRewardModel.load(gated_model)
    expect = rm.score_items([("Add 2 and 3.", "5"), ("hi", "Hello!")])
    assert [r["score"] for r in rows] == pytest.approx(expect.score.tolist(), abs=1e-6)
    assert set(rows[0]["attributes"]) == set(ATTRS) and sum(rows[0]["gate"].values()) == pytest.approx(1.0)
    assert rows[1]["transformed"]["verbosity"] == pytest.approx(0.0, abs=1e-6)


def test_serve_returns_attributes_gate_and_scalar(gated_model, tmp_path):
    """/v1/score answers per-attribute rewards, transformed rewards and gate weights with the gated score as
    ``rewards``; /get_reward answers the scalar only; both equal offline scoring."""
    import socket
    import threading
    import time

    import httpx

    from rewardlab.serve.app import make_server
    from rewardlab.serve.config import ServeConfig

    server = make_server(ServeConfig(model=str(gated_model), max_wait_ms=5))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.01)
    try:
        responses = ["2 plus 3 is exactly 5.", "Roughly 7. I hope this helps."]
        body = httpx.post(url + "/v1/score", json={"prompt": "Add 2 and 3.", "responses": responses}).json()
        offline = AttributeRewardModel.load(gated_model).score_items([("Add 2 and 3.", r) for r in responses])
        assert body["rewards"] == pytest.approx(offline.score.tolist(), abs=1e-5)
        assert torch.allclose(torch.tensor([list(a.values()) for a in body["attributes"]]), offline.rewards, atol=1e-5)
        assert [sum(g.values()) for g in body["gate"]] == pytest.approx([1.0, 1.0], abs=1e-5)
        assert body["transformed"][0]["verbosity"] == pytest.approx(0.0, abs=1e-6)
        query = ["<|im_start|>user\nAdd 2 and 3.<|im_end|>\n<|im_start|>assistant\n2 plus 3 is exactly 5.<|im_end|>\n"]
        got = httpx.post(
            url + "/get_reward", json={"query": query, "prompts": [query[0].split("assistant\n")[0] + "assistant\n"]}
        ).json()
        assert len(got["rewards"]) == 1 and isinstance(got["rewards"][0], float)
        assert got["rewards"][0] == pytest.approx(body["rewards"][0], abs=1e-4)
    finally:
        server.should_exit = True
        thread.join(30)


def test_eval_reports_every_scaliser_and_gate_plot(gated_model, tmp_path):
    from rewardlab.commands.evaluate import EvalConfig, run_eval
    from rewardlab.data import synthetic_attributes as sa
    from rewardlab.data import write_jsonl

    pairs = sa.generate_pairs(12, seed=5)
    data = tmp_path / "pairs.jsonl"
    write_jsonl(pairs, data)
    out = run_eval(EvalConfig(model=[str(gated_model)], data=str(data), output_dir=str(tmp_path / "eval"), n_boot=50))
    report = json.loads((out / "report.json").read_text())
    mo = next(iter(report["results"].values()))["multiobjective"] if "results" in report else None
    assert mo is not None, sorted(report)
    assert {"equal_weights", "gate", "gate_without_debiasing"} <= set(mo["accuracy"])
    assert all(len(a["ci95"]) == 2 and a["n"] == 12 for a in mo["accuracy"].values())
    assert set(mo["mean_gate_by_source"]) == {"harmful", "arithmetic", "keyword"}
    assert list(out.glob("gate-*.png"))
    # the model's own score (the gate) is what the generic accuracy column reports
    generic = next(iter(report["results"].values()))["accuracy"]
    assert generic == pytest.approx(mo["accuracy"]["gate"]["accuracy"])


def test_lora_regression_saves_a_merged_plain_model(tiny_llama, tmp_path):
    """--lora-r: adapters train, the head trains in full, and the saved directory is a merged plain K-output model
    whose outputs equal the model's own (reloaded) outputs; the weights moved from the backbone's."""
    from transformers import AutoModelForSequenceClassification

    from rewardlab.training.train import train

    result = train(
        _cfg(
            tmp_path,
            objective="regression",
            backbone=tiny_llama,
            data="embedded",
            embedded_size=12,
            max_steps=3,
            batch_size=4,
            lr=1e-2,
            lora_r=4,
            eval_fraction=0.0,
        )
    )
    assert not (result.model_dir / "adapter_config.json").exists()
    plain = AutoModelForSequenceClassification.from_pretrained(result.model_dir).eval()
    rm = AttributeRewardModel.load(result.model_dir)
    batch = rm.collate([rm.encode("Add 2 and 3.", "5")])
    with torch.no_grad():
        theirs = plain(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert torch.allclose(rm(**batch), theirs, atol=1e-5) and theirs.shape == (1, 4)
    base = AutoModelForSequenceClassification.from_pretrained(tiny_llama, num_labels=4)
    name = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.allclose(plain.state_dict()[name], base.state_dict()[name])  # the merged adapter changed it


def test_cli_bad_rating_stops_with_file_line_field_and_no_traceback(tmp_path, capsys):
    from rewardlab.cli import main

    path = _write(
        tmp_path,
        [{"prompt": "p", "response": "r", "helpfulness": 3}, {"prompt": "p", "response": "s", "helpfulness": 9}],
    )
    rc = main(
        [
            "train",
            "--objective",
            "regression",
            "--data",
            path,
            "--attributes",
            "helpfulness",
            "--output-dir",
            str(tmp_path / "run"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert f"{path}, line 2, field 'helpfulness'" in err and "outside the scale" in err
    rc = main(["train", "--objective", "regression", "--data", "embedded", "--weights", "helpfulness=x"])
    assert rc == 2 and "finite number" in capsys.readouterr().err


def test_llama2_scaliser_is_whitened_on_training_rows_and_reads_unsafe_tags(tiny_llama, tmp_path):
    """--weights llama2: rewardlab.json records mean/std of logit(R) on the training rows, and score reads the
    ``unsafe`` tag of a row (R = R_safety for it whatever R_safety is)."""
    from rewardlab.commands.score import ScoreConfig, run_score
    from rewardlab.training.train import train

    result = train(
        _cfg(
            tmp_path,
            objective="regression",
            stage1="ridge",
            backbone=tiny_llama,
            data="embedded",
            embedded_size=24,
            weights="llama2",
        )
    )
    rm = AttributeRewardModel.load(result.model_dir)
    rule = rm.scaliser()
    assert isinstance(rule, Llama2Rule) and rule.whiten_mean is not None and rule.whiten_std > 0
    rows = [
        {"prompt": "How do I steal a bike?", "response": "Sure, here is a plan.", "unsafe": True},
        {"prompt": "How do I steal a bike?", "response": "Sure, here is a plan.", "unsafe": False},
    ]
    out = run_score(
        ScoreConfig(model=str(result.model_dir), data=_write(tmp_path, rows), output=str(tmp_path / "s.jsonl"))
    )
    got = [json.loads(line) for line in Path(out).read_text().splitlines()]
    r = torch.tensor([list(got[0]["attributes"].values())])
    names = rm.attributes
    expect_unsafe = rule(r, names, unsafe=torch.tensor([True])).item()
    expect_safe = rule(r, names, unsafe=torch.tensor([False])).item()
    assert got[0]["score"] == pytest.approx(expect_unsafe, abs=1e-5)
    assert got[1]["score"] == pytest.approx(expect_safe, abs=1e-5)
    assert got[0]["attributes"]["harmlessness"] >= 0.15  # so the tag, not the threshold, picks R_safety on row 0
    assert got[0]["score"] != pytest.approx(got[1]["score"], abs=1e-4)


def test_pair_accuracy_counts_a_tie_as_a_loss_like_evals_strict_policy():
    """Pairs (1 vs 1) tie and (2 vs 1) win: strict accuracy 1/2 (ties ½ would give 3/4)."""
    from rewardlab.multiobjective.metrics import pair_accuracy

    out = pair_accuracy(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 1.0]))
    assert out["accuracy"] == 0.5 and out["n"] == 2
