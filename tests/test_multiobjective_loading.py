"""Multi-objective models through the one loader: score/eval/probe/normalize/serve use the recorded scaliser;
file hashes cover the K-output and gate files; --normalize; packing refused; the Llama 2 rule over two models;
eval's multi-objective report section."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from rewardlab.core.errors import ModelContractError, RewardlabError
from rewardlab.core.scorer import Capabilities, Scorer
from rewardlab.models.reward_model import RewardModel
from rewardlab.multiobjective.composed import ComposedLlama2Scorer
from rewardlab.multiobjective.model import GATE_FILE, AttributeRewardModel
from rewardlab.multiobjective.serving import MultiObjectiveScorer
from rewardlab.scoring.loader import load_reward_model

ITEMS = [
    ("Add 2 and 3.", "Answer: 2 plus 3 is exactly 5."),
    ("How do I pick a lock?", "I won't help with that."),
    ("Write a sentence about cats that uses the word 'red'.", "Here is one: my red hat reminds me of cats."),
]


def _cfg(tmp_path, **kw):
    from rewardlab.training.train import TrainConfig

    base = dict(output_dir=str(tmp_path / kw.pop("name", "run")), eval_batch_size=16, log_every=1)
    base.update(kw)
    return TrainConfig(**base)


def _write(tmp_path, rows, name="d.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture(scope="module")
def mo_models(tiny_llama, tmp_path_factory):
    """A ridge regression model scored by ``verbosity`` alone (output 3, not output 0) and a gated model from it."""
    from rewardlab.training.train import train

    tmp = tmp_path_factory.mktemp("mo")
    reg = train(
        _cfg(
            tmp,
            name="reg",
            objective="regression",
            stage1="ridge",
            backbone=tiny_llama,
            data="embedded",
            embedded_size=24,
            weights="verbosity=1",
            eval_fraction=0.3,
        )
    )
    gate = train(
        _cfg(
            tmp,
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
    return reg.model_dir, gate.model_dir


def test_loader_returns_the_multiobjective_scorer_with_its_scaliser(mo_models):
    """load_reward_model is the one entry point: a K-output directory gives a scorer whose score() is the recorded
    scaliser (here output 3 alone), a gated one the gate's score; plain RewardModel.load still refuses K outputs."""
    reg_dir, gate_dir = mo_models
    reg = load_reward_model(str(reg_dir), say=None)
    assert isinstance(reg, MultiObjectiveScorer) and reg.attributes[3] == "verbosity"
    raw = AttributeRewardModel.load(reg_dir).score_items(ITEMS)
    assert reg.score(ITEMS) == pytest.approx(raw.rewards[:, 3].tolist(), abs=1e-6)
    assert reg.score(ITEMS) != pytest.approx(raw.rewards[:, 0].tolist(), abs=1e-3)
    gated = load_reward_model(str(gate_dir), say=None)
    assert gated.has_gate and gated.score(ITEMS) == pytest.approx(
        AttributeRewardModel.load(gate_dir).score_items(ITEMS).score.tolist(), abs=1e-6
    )
    with pytest.raises(ModelContractError, match="num_labels is 4"):
        RewardModel.load(reg_dir)


def test_probe_uses_the_recorded_scaliser_not_output_0(mo_models, tmp_path):
    """`rewardlab probe` on a model scored by verbosity: its length-probe margin equals that of a scorer reading
    output 3 and differs from one reading output 0 (which a probe that took ``logits[:, 0]`` would give)."""
    from rewardlab.data import synthetic_attributes as sa
    from rewardlab.data import write_jsonl
    from rewardlab.probes.profile import bias_profile
    from rewardlab.probes.run import ProbeConfig, run_probe

    reg_dir, _ = mo_models
    records = sa.generate_pairs(12, seed=3)
    data = tmp_path / "pairs.jsonl"
    write_jsonl(records, data)
    out = run_probe(
        ProbeConfig(
            model=[str(reg_dir)], data=str(data), probes="length", n_boot=20, output_dir=str(tmp_path / "probe")
        )
    )
    payload = json.loads((Path(out) / "probes.json").read_text() if Path(out).is_dir() else Path(out).read_text())
    got = next(iter(payload["results"].values()))["bias_profile"]["probes"]["length"]["margin"]
    rm = AttributeRewardModel.load(reg_dir)

    class Output(Scorer):
        capabilities = Capabilities(pointwise=True)

        def __init__(self, k):
            self.k = k

        def score(self, items, batch_size=32):
            return rm.score_items(list(items), batch_size=batch_size).rewards[:, self.k].tolist()

    want = bias_profile(Output(3), records, "length", n_boot=20)["probes"]["length"]["margin"]
    wrong = bias_profile(Output(0), records, "length", n_boot=20)["probes"]["length"]["margin"]
    assert got == pytest.approx(want, abs=1e-6) and got != pytest.approx(wrong, abs=1e-4)


def test_normalize_uses_the_recorded_scaliser_and_score_applies_it(mo_models, tmp_path):
    """`rewardlab normalize` stores mean/std of the scaliser's scalar (verbosity output), not output 0's; then
    `score --normalize` returns (s − mean)/std. The trainer already recorded held-out stats of that scalar."""
    import shutil

    from rewardlab.commands.normalize import NormalizeConfig, run_normalize
    from rewardlab.commands.score import ScoreConfig, run_score
    from rewardlab.multiobjective.train import load_rated_split
    from rewardlab.training.train import TrainConfig

    reg_dir, _ = mo_models
    spec = json.loads((reg_dir / "rewardlab.json").read_text())
    saved = json.loads((reg_dir.parent / "train_summary.json").read_text())["config"]
    held = load_rated_split(
        TrainConfig(**{k: saved[k] for k in ("data", "embedded_size", "eval_fraction", "split_seed", "objective")})
    )[3]
    scalar = AttributeRewardModel.load(reg_dir).score_items([(t.prompt, t.response) for t in held]).rewards[:, 3]
    assert spec["normalization"]["source"] == "held-out split responses" and spec["normalization"]["n"] == len(held)
    assert spec["normalization"]["mean"] == pytest.approx(float(scalar.double().mean()), abs=1e-6)
    assert spec["normalization"]["std"] == pytest.approx(float(scalar.double().std(unbiased=False)), abs=1e-6)
    model = tmp_path / "model"
    shutil.copytree(reg_dir, model)
    data = _write(tmp_path, [{"prompt": p, "response": r} for p, r in ITEMS])
    stats = run_normalize(NormalizeConfig(model=str(model), data=data))
    raw = AttributeRewardModel.load(model).score_items(ITEMS).rewards
    v, o0 = raw[:, 3].double(), raw[:, 0].double()
    assert stats["mean"] == pytest.approx(float(v.mean()), abs=1e-6)
    assert stats["std"] == pytest.approx(float(v.std(unbiased=False)), abs=1e-6)
    assert stats["mean"] != pytest.approx(float(o0.mean()), abs=1e-3)
    out = run_score(ScoreConfig(model=str(model), data=data, normalize=True, output=str(tmp_path / "s.jsonl")))
    rows = [json.loads(x) for x in Path(out).read_text().splitlines()]
    want = [(float(x) - stats["mean"]) / stats["std"] for x in v]
    assert [r["score"] for r in rows] == pytest.approx(want, abs=1e-5)
    assert rows[0]["attributes"]["verbosity"] == pytest.approx(float(v[0]), abs=1e-6)  # the parts stay raw


def test_serve_normalizes_the_scalar_and_keeps_the_parts(mo_models):
    """/v1/score with normalize: rewards are (score − mean)/std with the held-out stats the trainer stored; the
    attributes are the raw outputs; /get_reward answers the same normalised scalar."""
    from fastapi.testclient import TestClient

    from rewardlab.serve.app import create_app
    from rewardlab.serve.config import ServeConfig

    _, gate_dir = mo_models
    stats = json.loads((gate_dir / "rewardlab.json").read_text())["normalization"]
    offline = AttributeRewardModel.load(gate_dir).score_items([(ITEMS[0][0], ITEMS[0][1])])
    with TestClient(create_app(ServeConfig(model=str(gate_dir), max_wait_ms=1))) as client:
        body = client.post(
            "/v1/score", json={"prompt": ITEMS[0][0], "responses": [ITEMS[0][1]], "normalize": True}
        ).json()
        plain = client.post("/v1/score", json={"prompt": ITEMS[0][0], "responses": [ITEMS[0][1]]}).json()
    want = (float(offline.score[0]) - stats["mean"]) / stats["std"]
    assert body["normalized"] and body["rewards"] == pytest.approx([want], abs=1e-5)
    assert plain["rewards"] == pytest.approx([float(offline.score[0])], abs=1e-5)
    assert list(body["attributes"][0].values()) == pytest.approx(offline.rewards[0].tolist(), abs=1e-5)


def test_tampered_gate_file_stops_the_load_naming_it(mo_models, tmp_path, capsys):
    """rewardlab.json records sha256 of every scoring file of a gated model, gate.safetensors included: an edited
    gate stops score with an error naming it (no traceback); --trust-modified loads it and says so."""
    import shutil

    from rewardlab.cli import main

    _, gate_dir = mo_models
    model = tmp_path / "model"
    shutil.copytree(gate_dir, model)
    hashes = json.loads((model / "rewardlab.json").read_text())["file_hashes"]
    assert {GATE_FILE, "model.safetensors", "config.json"} <= set(hashes)
    blob = bytearray((model / GATE_FILE).read_bytes())
    blob[-1] ^= 0x01  # one bit of the last weight
    (model / GATE_FILE).write_bytes(bytes(blob))
    with pytest.raises(ModelContractError, match=r"gate\.safetensors was modified"):
        load_reward_model(str(model), say=None)
    data = _write(tmp_path, [{"prompt": "hi", "response": "Hello!"}])
    rc = main(["score", "--model", str(model), "--data", data, "--output", str(tmp_path / "s.jsonl")])
    err = capsys.readouterr().err
    assert rc == 2 and "gate.safetensors was modified" in err and "Traceback" not in err
    rm = load_reward_model(str(model), say=None, trust_modified=True)
    assert any("gate.safetensors" in m for m in rm.modified_files)
    (model / GATE_FILE).unlink()
    with pytest.raises(ModelContractError, match=r"gate\.safetensors is missing"):
        load_reward_model(str(model), say=None)


def test_packing_is_refused_clearly_and_bf16_loads(mo_models, tmp_path, capsys):
    from rewardlab.commands.score import ScoreConfig, run_score
    from rewardlab.serve.app import create_app
    from rewardlab.serve.config import ServeConfig

    _, gate_dir = mo_models
    data = _write(tmp_path, [{"prompt": "hi", "response": "Hello!"}])
    with pytest.raises(ModelContractError, match="--packing does not cover multi-objective models"):
        run_score(ScoreConfig(model=str(gate_dir), data=data, packing=True, output=str(tmp_path / "s.jsonl")))
    with pytest.raises(RewardlabError, match="--packing does not cover multi-objective models"):
        create_app(ServeConfig(model=str(gate_dir), packing=True))
    from rewardlab.cli import main

    pairs = _write(tmp_path, [{"prompt": "hi", "chosen": "Hello!", "rejected": "Go."}], "pairs.jsonl")
    argv = ["eval", "--model", str(gate_dir), "--data", pairs, "--output-dir", str(tmp_path / "e"), "--packing"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "eval: error: --packing does not cover multi-objective models" in err and "Traceback" not in err
    from rewardlab.training.train import TrainConfig

    with pytest.raises(RewardlabError, match="--packing does not cover --objective regression"):
        TrainConfig(objective="regression", data="embedded", packing=True)
    bf16 = load_reward_model(str(gate_dir), say=None, torch_dtype=torch.bfloat16)
    fp32 = load_reward_model(str(gate_dir), say=None)
    assert bf16.model.dtype == torch.bfloat16
    assert bf16.score(ITEMS) == pytest.approx(fp32.score(ITEMS), abs=0.05)


def test_eval_reports_per_attribute_fit_scalisers_length_and_gate_plot(mo_models, tmp_path):
    """On eval data that carries ratings (columns rows of the model's attributes) and comparisons, report.json has
    per-attribute MSE/Pearson/Spearman equal to attribute_metrics on those rows, accuracy under every scaliser with
    CIs and the length correlations; report.md has the section; report.html embeds the gate plot."""
    from rewardlab.commands.evaluate import EvalConfig, run_eval
    from rewardlab.data import synthetic_attributes as sa
    from rewardlab.data import write_jsonl
    from rewardlab.multiobjective.losses import targets_and_mask
    from rewardlab.multiobjective.metrics import attribute_metrics

    _, gate_dir = mo_models
    pairs = tmp_path / "pairs.jsonl"
    write_jsonl(sa.generate_pairs(12, seed=5), pairs)
    out = run_eval(EvalConfig(model=[str(gate_dir)], data=str(pairs), output_dir=str(tmp_path / "e1"), n_boot=20))
    mo = next(iter(json.loads((out / "report.json").read_text())["results"].values()))["multiobjective"]
    assert mo["attributes"] == {} and "no ratings" in mo["attributes_note"]
    rated = sa.generate_rated(8, seed=9)
    scale = {a: sa.SCALES[a] for a in sa.ATTRIBUTES}
    rows = [
        {
            "prompt": t.prompt,
            "response": t.response,
            "unsafe": t.unsafe,
            **{a: scale[a].denormalise(r) for a, r in zip(sa.ATTRIBUTES, t.ratings)},
        }
        for t in rated
    ]
    rated_path = _write(tmp_path, rows, "rated.jsonl")
    out = run_eval(
        EvalConfig(model=[str(gate_dir)], data=[str(pairs), rated_path], output_dir=str(tmp_path / "e2"), n_boot=20)
    )
    mo = next(iter(json.loads((out / "report.json").read_text())["results"].values()))["multiobjective"]
    rm = AttributeRewardModel.load(gate_dir)
    pred = rm.score_items([(t.prompt, t.response) for t in rated]).rewards
    target, mask = targets_and_mask([t.ratings for t in rated])
    want = attribute_metrics(pred, target, mask, rm.attributes)
    for a in rm.attributes:
        assert mo["attributes"][a]["n"] == 16
        for k in ("mse", "pearson", "spearman"):
            assert mo["attributes"][a][k] == pytest.approx(want[a][k], abs=1e-6)
    assert {"equal_weights", "equal_weights_debiased", "gate", "gate_without_debiasing"} <= set(mo["accuracy"])
    assert set(mo["abs_spearman_score_vs_length_within_pairs"]) == set(mo["accuracy"])
    md = (out / "report.md").read_text()
    assert "## Multi-objective: per-attribute fit" in md and "verbosity pearson" in md
    assert "## Multi-objective: length correlation before and after debiasing" in md
    assert "## Multi-objective: mean gate weight by prompt source" in md
    html = (out / "report.html").read_text()
    assert 'data-plot="gate"' in html and list(out.glob("gate-*.png"))


# ---- the Llama 2 rule over two separate models --------------------------------------------------------------


@pytest.fixture(scope="module")
def two_models(tiny_llama, tmp_path_factory):
    """Two real tiny scalar reward models (random heads, different seeds): "safety" and "helpfulness"."""
    tmp = tmp_path_factory.mktemp("members")
    out = []
    for name, seed in (("safety", 1), ("helpfulness", 2)):
        rm = RewardModel.from_backbone(tiny_llama, max_length=64, seed=seed)
        with torch.no_grad():
            rm.model.score.weight.mul_(50.0)  # spread the rewards so σ(r) is not ≈ 0.5 for every text
        rm.save(tmp / name)
        out.append(tmp / name)
    return out


def _logit(p: float) -> float:
    return math.log(p) - math.log1p(-p)


def test_composed_llama2_rule_over_two_models_hand_worked(two_models, tmp_path):
    """R_s = σ(r_safety), R_h = σ(r_helpfulness) from the two members; the threshold is put between the R_s of items
    0 and 1, so item 0 (R_s below it) takes R_s, item 1 takes R_h, and item 1 tagged unsafe takes R_s again; the score
    is logit(R), whitened with the mean/std of logit(R) over the reference rows (worked out here by hand)."""
    from rewardlab.commands.compose import ComposeConfig, run_compose
    from rewardlab.commands.score import ScoreConfig, run_score

    safety, helpful = two_models
    items = ITEMS[:2]
    r_s = [1 / (1 + math.exp(-x)) for x in RewardModel.load(safety).score(items)]
    r_h = [1 / (1 + math.exp(-x)) for x in RewardModel.load(helpful).score(items)]
    lo, hi = sorted(range(2), key=lambda i: r_s[i])
    assert r_s[hi] - r_s[lo] > 1e-3, (r_s, "members too alike for the test")
    threshold = (r_s[lo] + r_s[hi]) / 2
    ref = _write(tmp_path, [{"prompt": p, "response": r} for p, r in items], "ref.jsonl")
    out = run_compose(
        ComposeConfig(
            safety=str(safety),
            helpfulness=str(helpful),
            output_dir=str(tmp_path / "c"),
            threshold=threshold,
            reference_data=ref,
        )
    )
    spec = json.loads((out / "rewardlab.json").read_text())
    assert spec["kind"] == "llama2-composed" and spec["safety"]["rewardlab_json_sha256"]
    # by hand: R = R_s on the low-safety item, R_h on the other; whitening over these two reference rows
    z = {lo: _logit(r_s[lo]), hi: _logit(r_h[hi])}
    mean = (z[0] + z[1]) / 2
    std = math.sqrt(((z[0] - mean) ** 2 + (z[1] - mean) ** 2) / 1)  # torch.std: n − 1 = 1
    assert spec["scaliser"]["whiten_mean"] == pytest.approx(mean, abs=1e-6)
    assert spec["scaliser"]["whiten_std"] == pytest.approx(std, abs=1e-6)
    scorer = load_reward_model(str(out), say=None)
    assert isinstance(scorer, ComposedLlama2Scorer)
    got = scorer.score(items)
    assert got[lo] == pytest.approx((z[lo] - mean) / std, abs=1e-5)
    assert got[hi] == pytest.approx((z[hi] - mean) / std, abs=1e-5)
    tagged = scorer.score(items, unsafe=[True, True])
    assert tagged[hi] == pytest.approx((_logit(r_s[hi]) - mean) / std, abs=1e-5)  # unsafe tag: R_s whatever R_s is
    data = _write(tmp_path, [{"prompt": p, "response": r, "unsafe": i == hi} for i, (p, r) in enumerate(items)])
    rows = [
        json.loads(x)
        for x in Path(run_score(ScoreConfig(model=str(out), data=data, output=str(tmp_path / "s.jsonl"))))
        .read_text()
        .splitlines()
    ]
    assert rows[hi]["score"] == pytest.approx(tagged[hi], abs=1e-5)
    assert rows[lo]["attributes"]["safety"] == pytest.approx(r_s[lo], abs=1e-6)
    # eval and inspect load it through the same loader
    from rewardlab.commands.evaluate import EvalConfig, run_eval
    from rewardlab.commands.inspect import InspectConfig, run_inspect
    from rewardlab.data import write_jsonl
    from rewardlab.data.record import Comparison

    pairs = tmp_path / "pairs.jsonl"
    write_jsonl([Comparison(items[0][0], (items[0][1], items[1][1]), chosen=0, id="p0")], pairs)
    report = json.loads(
        (
            run_eval(EvalConfig(model=[str(out)], data=str(pairs), output_dir=str(tmp_path / "ev"), n_boot=10))
            / "report.json"
        ).read_text()
    )
    column = next(iter(report["results"].values()))
    pair = [(items[0][0], items[0][1]), (items[0][0], items[1][1])]
    plain = scorer.score(pair)
    assert column["n_pairs"] == 1 and column["accuracy"] == float(plain[0] > plain[1])
    assert "composed Llama 2 model" in run_inspect(InspectConfig(model=str(out)))
    with pytest.raises(ModelContractError, match="--packing does not cover a composed Llama 2 model"):
        run_eval(EvalConfig(model=[str(out)], data=str(pairs), output_dir=str(tmp_path / "evp"), packing=True))
    # a record tagged unsafe is scored with the tag (R = R_s for both responses), not as if untagged
    write_jsonl([Comparison(items[0][0], (items[0][1], items[1][1]), chosen=0, id="p0", meta={"unsafe": True})], pairs)
    ev = run_eval(EvalConfig(model=[str(out)], data=str(pairs), output_dir=str(tmp_path / "ev2"), n_boot=10))
    example = json.loads(next(ev.glob("examples-*.jsonl")).read_text().splitlines()[0])
    want = scorer.score(pair, unsafe=[True, True])
    assert example["scores"] == pytest.approx(want, abs=1e-5)
    assert want != pytest.approx(plain, abs=1e-4)  # the tag changed the score of at least one response


def test_composed_model_serves_and_refuses_a_changed_member(two_models, mo_models, tmp_path):
    """The server batches a composed model (a scalar safety member, a K-output helpfulness member read at its
    `correctness` output): /v1/score equals offline scoring, with {safety, helpfulness} per response."""
    import shutil

    from fastapi.testclient import TestClient

    from rewardlab.commands.compose import ComposeConfig, run_compose
    from rewardlab.serve.app import create_app
    from rewardlab.serve.config import ServeConfig

    safety, _ = two_models
    reg_dir, _ = mo_models
    member = tmp_path / "safety"
    shutil.copytree(safety, member)
    out = run_compose(
        ComposeConfig(
            safety=str(member),
            helpfulness=str(reg_dir),
            helpfulness_attribute="correctness",
            output_dir=str(tmp_path / "c"),
            threshold=0.5,
        )
    )
    with pytest.raises(RewardlabError, match="exists; pass --overwrite"):
        run_compose(ComposeConfig(safety=str(member), helpfulness=str(reg_dir), output_dir=str(out)))
    offline = load_reward_model(str(out), say=None)
    items = [(ITEMS[0][0], r) for r in (ITEMS[0][1], ITEMS[1][1], ITEMS[2][1])]
    want = offline.score_rows(items)
    with TestClient(create_app(ServeConfig(model=str(out), max_wait_ms=1))) as client:
        body = client.post("/v1/score", json={"prompt": ITEMS[0][0], "responses": [r for _, r in items]}).json()
    assert body["rewards"] == pytest.approx([w["score"] for w in want], abs=1e-4)
    assert [a["helpfulness"] for a in body["attributes"]] == pytest.approx(
        [w["attributes"]["helpfulness"] for w in want], abs=1e-5
    )
    from rewardlab.commands.normalize import NormalizeConfig, run_normalize

    samples = _write(tmp_path, [{"prompt": p, "response": r} for p, r in items], "samples.jsonl")
    stats = run_normalize(NormalizeConfig(model=str(out), data=samples))  # the composed rewardlab.json is updated
    again = load_reward_model(str(out), say=None)
    assert again.spec.normalization["mean"] == pytest.approx(stats["mean"])
    assert again.score(items, normalize=True) == pytest.approx(
        [(w["score"] - stats["mean"]) / stats["std"] for w in want], abs=1e-5
    )
    spec = json.loads((member / "rewardlab.json").read_text())
    spec["normalization"] = {"mean": 1.0, "std": 2.0}
    (member / "rewardlab.json").write_text(json.dumps(spec))
    with pytest.raises(ModelContractError, match="safety model .* differs from the one composed"):
        load_reward_model(str(out), say=None)
    assert load_reward_model(str(out), say=None, trust_modified=True).modified_files


def test_comparison_rows_carry_the_unsafe_tag(tmp_path):
    """A comparison row's boolean ``unsafe`` reaches ``meta`` (and is written back by ``to_json``); anything else
    stops with the file, line and field."""
    from rewardlab.core.errors import DataError
    from rewardlab.data import load_comparisons, write_jsonl

    path = _write(
        tmp_path,
        [
            {"prompt": "p", "chosen": "a", "rejected": "b", "unsafe": True},
            {"prompt": "q", "chosen": "a", "rejected": "b"},
        ],
    )
    records = load_comparisons(path).records
    assert records[0].meta["unsafe"] is True and "unsafe" not in records[1].meta
    write_jsonl(records, str(tmp_path / "back.jsonl"))
    assert [r.meta.get("unsafe") for r in load_comparisons(str(tmp_path / "back.jsonl")).records] == [True, None]
    bad = _write(tmp_path, [{"prompt": "p", "chosen": "a", "rejected": "b", "unsafe": "yes"}], "bad.jsonl")
    with pytest.raises(DataError, match=r"line 1, field 'unsafe'.*true or false"):
        load_comparisons(bad)


def test_gate_training_stops_early_and_keeps_the_best_validation_gate():
    """Early stopping on a validation tenth of the pairs. (a) Rewards equal within every pair: Δ = 0 whatever the
    gate, the validation loss is log 2 at every check, never better than the first by 1e-4 → training stops after
    the first check + PATIENCE checks = 20·(1 + 3) = 80 of 500 steps. (b) Random rewards: the gate returned is the
    one of the best check (a check counts as better when it beats the best so far by 1e-4), not the last one; its
    validation loss is recomputed here on the same validation pairs."""
    from rewardlab.multiobjective import train as mt
    from rewardlab.multiobjective.gate import GateConfig

    g = torch.Generator().manual_seed(0)
    n = 300
    hidden = torch.randn(2 * n, 6, generator=g)
    hidden[1::2] = hidden[0::2]  # a pair shares its prompt
    pairs = torch.tensor([[2 * i, 2 * i + 1] for i in range(n)])
    flat = torch.rand(2 * n, 3, generator=g)
    flat[1::2] = flat[0::2]
    _, history = mt.train_gate(hidden, flat, pairs, GateConfig(6, 3, hidden=8, n_hidden=1), 500, 64, 1e-2, 0.0, 0)
    assert history[-1] == {"step": 80, "stopped_early": True, "best_val_loss": pytest.approx(math.log(2), abs=1e-6)}
    rewards = torch.rand(2 * n, 3, generator=g)
    gate, history = mt.train_gate(
        hidden, rewards, pairs, GateConfig(6, 3, hidden=16, n_hidden=1), 200, 64, 1e-2, 0.0, 0
    )
    checks = [r["val_loss"] for r in history if "val_loss" in r]
    best = math.inf
    for c in checks:
        best = c if c < best - 1e-4 else best
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(1))
    val = pairs[perm[: max(mt.MIN_VAL_PAIRS, int(mt.VAL_FRACTION * n))]]
    with torch.no_grad():
        delta = gate(hidden[val[:, 0]], rewards[val[:, 0]] - rewards[val[:, 1]])[0]
    assert float(torch.nn.functional.softplus(-delta).mean()) == pytest.approx(best, abs=1e-6)
    assert best != pytest.approx(checks[-1], abs=1e-7)  # so returning the last gate would fail this test


def test_score_comparisons_write_the_parts_per_response(mo_models, tmp_path):
    """Comparison rows: ``scores`` and, per response in order, ``attributes``, ``transformed`` and ``gate``, equal to
    offline scoring of those (prompt, response) items."""
    from rewardlab.commands.score import ScoreConfig, run_score

    _, gate_dir = mo_models
    data = _write(tmp_path, [{"prompt": ITEMS[0][0], "chosen": ITEMS[0][1], "rejected": "It is 7, roughly."}])
    out = run_score(ScoreConfig(model=str(gate_dir), data=data, output=str(tmp_path / "s.jsonl")))
    row = json.loads(Path(out).read_text())
    offline = AttributeRewardModel.load(gate_dir).score_items(
        [(ITEMS[0][0], ITEMS[0][1]), (ITEMS[0][0], "It is 7, roughly.")]
    )
    assert row["scores"] == pytest.approx(offline.score.tolist(), abs=1e-6)
    assert torch.allclose(torch.tensor([list(a.values()) for a in row["attributes"]]), offline.rewards, atol=1e-6)
    assert torch.allclose(torch.tensor([list(g.values()) for g in row["gate"]]), offline.gate, atol=1e-6)
    assert len(row["transformed"]) == 2


def test_eval_on_real_helpsteer2_rows_reports_each_attribute(tiny_llama, tmp_path):
    """The real HelpSteer2 sample (../shared) as eval data: read as comparisons for the accuracy columns and as rated
    rows for the per-attribute fit of a regression model trained a few steps on it (skipped without ../shared)."""
    path = Path(__file__).resolve().parents[2] / "shared" / "data" / "helpsteer2-sample.jsonl"
    if not path.exists():
        pytest.skip(f"{path} not present")
    from rewardlab.commands.evaluate import EvalConfig, run_eval
    from rewardlab.training.train import train

    result = train(
        _cfg(
            tmp_path,
            objective="regression",
            backbone=tiny_llama,
            data=str(path),
            max_steps=2,
            batch_size=4,
            eval_fraction=0.0,
            max_length=128,
            weights="nemotron",
        )
    )
    out = run_eval(
        EvalConfig(model=[str(result.model_dir)], data=str(path), output_dir=str(tmp_path / "ev"), n_boot=10)
    )
    column = next(iter(json.loads((out / "report.json").read_text())["results"].values()))
    attrs = column["multiobjective"]["attributes"]
    assert set(attrs) == {"helpfulness", "correctness", "coherence", "complexity", "verbosity"}
    assert all(a["n"] == 8 and a["mse"] is not None for a in attrs.values())
    assert column["n_pairs"] >= 1 and "model" in column["multiobjective"]["accuracy"]


def test_served_unsafe_tag_takes_the_safety_path_and_the_threshold_decides_without_it(two_models, tmp_path):
    """`"unsafe": true` on /v1/score (every response) and /get_reward (per query) scores R_s, as offline
    score(unsafe=[True]); untagged (or `false`) the threshold decides. The threshold is put below every R_s, so
    untagged texts take R_h and the tag alone changes the answer."""
    from fastapi.testclient import TestClient

    from rewardlab.commands.compose import ComposeConfig, run_compose
    from rewardlab.serve.app import create_app
    from rewardlab.serve.client import RewardClient
    from rewardlab.serve.config import ServeConfig

    safety, helpful = two_models
    prompt = ITEMS[0][0]
    items = [(prompt, r) for _, r in ITEMS]
    r_s = [1 / (1 + math.exp(-x)) for x in RewardModel.load(safety).score(items)]
    out = run_compose(
        ComposeConfig(
            safety=str(safety), helpfulness=str(helpful), output_dir=str(tmp_path / "c"), threshold=min(r_s) / 2
        )
    )
    scorer = load_reward_model(str(out), say=None)
    tagged, plain = scorer.score(items, unsafe=[True] * len(items)), scorer.score(items)
    assert tagged == pytest.approx([_logit(r) for r in r_s], abs=1e-4)  # R_s: the tag, not the threshold
    assert all(abs(a - b) > 1e-3 for a, b in zip(tagged, plain)), "members too alike for the test"
    responses = [r for _, r in items]
    with TestClient(create_app(ServeConfig(model=str(out), max_wait_ms=1))) as client:
        got = client.post("/v1/score", json={"prompt": prompt, "responses": responses, "unsafe": True}).json()
        untagged = client.post("/v1/score", json={"prompt": prompt, "responses": responses}).json()
        false = client.post("/v1/score", json={"prompt": prompt, "responses": responses, "unsafe": False}).json()
        one = client.post("/v1/score", json={"prompt": prompt, "responses": responses[:1], "unsafe": True}).json()
        queries = [f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n{r}<|im_end|>" for r in responses]
        rl = client.post("/get_reward", json={"query": queries[:2], "unsafe": [True, False]})
        bad = client.post("/get_reward", json={"query": queries[:2], "unsafe": [True]})
        rc = RewardClient(client=client)
        via_client = (rc.score(prompt, responses[:1], unsafe=True), rc.get_reward(queries[:2], unsafe=[True, False]))
    assert got["rewards"] == pytest.approx(tagged, abs=1e-4)
    assert one["rewards"] == pytest.approx(scorer.score(items[:1], unsafe=[True]), abs=1e-4)
    assert untagged["rewards"] == pytest.approx(plain, abs=1e-4) and false["rewards"] == untagged["rewards"]
    assert [a["safety"] for a in got["attributes"]] == pytest.approx(r_s, abs=1e-5)  # the parts stay untagged
    msgs = ({"role": "user", "content": prompt},)
    want = scorer.score([(msgs, responses[0]), (msgs, responses[1])], unsafe=[True, False])
    assert rl.status_code == 200 and rl.json()["rewards"] == pytest.approx(want, abs=1e-4)
    assert bad.status_code == 422 and "'unsafe' has 1 items but 'query' has 2" in bad.json()["detail"]
    assert via_client[0] == pytest.approx(one["rewards"], abs=1e-6) and via_client[1] == pytest.approx(want, abs=1e-4)


def test_served_unsafe_tag_reaches_a_llama2_scaliser_and_is_refused_by_other_scalisers(mo_models, tmp_path):
    """A K-output model whose recorded scaliser is the llama2 rule reads `"unsafe": true` in the server's batched
    forward (= score(unsafe=[True])); the same model with fixed weights answers 422 naming the field."""
    import shutil

    from fastapi.testclient import TestClient

    from rewardlab.serve.app import create_app
    from rewardlab.serve.config import ServeConfig

    reg_dir, _ = mo_models
    body = {"prompt": ITEMS[0][0], "responses": [ITEMS[0][1], ITEMS[2][1]]}
    with TestClient(create_app(ServeConfig(model=str(reg_dir), max_wait_ms=1))) as client:
        refused = client.post("/v1/score", json={**body, "unsafe": True})
        fine = client.post("/v1/score", json={**body, "unsafe": False})
        rl = client.post(
            "/get_reward", json={"query": ["<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\ny"], "unsafe": [True]}
        )
    assert refused.status_code == 422 and "reads no unsafe tag" in refused.json()["detail"]
    assert "'unsafe'" in refused.json()["detail"] and fine.status_code == 200
    assert rl.status_code == 422 and "reads no unsafe tag" in rl.json()["detail"]
    model = tmp_path / "llama2"
    shutil.copytree(reg_dir, model)
    spec = json.loads((model / "rewardlab.json").read_text())
    spec["multiobjective"]["scaliser"] = {"type": "llama2", "threshold": 1e-9}  # never below: untagged takes R_h
    spec["normalization"] = None
    from rewardlab.models.reward_model import sealed_json

    (model / "rewardlab.json").write_text(sealed_json(spec))  # sealed as rewardlab writes it (else refused)
    scorer = load_reward_model(str(model), say=None)
    assert scorer.capabilities.reads_unsafe_tags
    items = [(body["prompt"], r) for r in body["responses"]]
    tagged, plain = scorer.score(items, unsafe=[True, True]), scorer.score(items)
    assert tagged != pytest.approx(plain, abs=1e-4), "R_s and R_h too alike for the test"
    with TestClient(create_app(ServeConfig(model=str(model), max_wait_ms=1))) as client:
        got = client.post("/v1/score", json={**body, "unsafe": True}).json()
        untagged = client.post("/v1/score", json=body).json()
    assert got["rewards"] == pytest.approx(tagged, abs=1e-4)
    assert untagged["rewards"] == pytest.approx(plain, abs=1e-4)
