"""The whole contract is sealed (rewardlab.core.integrity), malformed rewardlab.json is an error naming the field
(rewardlab.core.specfields), and normalisation / whitening statistics are checked where written and where read
(rewardlab.core.normstats): issue 23, items 3 and 4. Every case goes through the one loader the commands use."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from tests.test_faults import rows, snapshot, write_jsonl

from rewardlab.cli import main

SAMPLES = [{"prompt": f"Question {i}?", "response": "Answer " * (i + 1)} for i in range(6)]


def run_cli(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return code, err


def spec_of(d: Path) -> dict:
    return json.loads((d / "rewardlab.json").read_text())


def edit(d: Path, change) -> None:
    spec = spec_of(d)
    change(spec)
    (d / "rewardlab.json").write_text(json.dumps(spec))


@pytest.fixture(scope="module")
def built(tiny_llama, tmp_path_factory):
    """A scalar model (with statistics), a K-output model with a gate, a transform and fixed weights, and a
    composition over two scalar models, whitened on reference rows: each as rewardlab writes it."""
    from rewardlab.commands.compose import ComposeConfig, run_compose
    from rewardlab.commands.normalize import NormalizeConfig, run_normalize
    from rewardlab.models.reward_model import RewardModel
    from rewardlab.multiobjective.gate import GateConfig, GatingNetwork
    from rewardlab.multiobjective.model import AttributeRewardModel
    from rewardlab.multiobjective.scalarise import FixedWeights

    tmp = tmp_path_factory.mktemp("contract")
    samples = write_jsonl(tmp / "samples.jsonl", SAMPLES)
    scalar = tmp / "scalar"
    rm = RewardModel.from_backbone(tiny_llama, max_length=48, seed=0)
    with torch.no_grad():
        rm.model.score.weight.mul_(50.0)  # spread the rewards
    rm.save(scalar)
    run_normalize(NormalizeConfig(model=str(scalar), data=str(samples)))
    mo = tmp / "mo"
    arm = AttributeRewardModel.from_backbone(
        tiny_llama, ["helpfulness", "verbosity"], {"helpfulness": [0, 4], "verbosity": [0, 4]}, max_length=48, seed=0
    )
    arm.gate = GatingNetwork(GateConfig(arm.model.config.hidden_size, 2, hidden=4, n_hidden=1))
    arm.mo.transform = [[1.0, 0.0], [-0.5, 1.0]]
    arm.mo.scaliser = FixedWeights({"helpfulness": 1.0, "verbosity": -0.5}).to_json()
    arm.save(mo)
    composed = tmp / "composed"
    run_compose(
        ComposeConfig(
            safety=str(scalar), helpfulness=str(scalar), output_dir=str(composed), reference_data=str(samples)
        )
    )
    return {"scalar": scalar, "mo": mo, "composed": composed, "samples": samples, "tmp": tmp}


@pytest.fixture
def copy(built, tmp_path):
    def make(kind: str) -> Path:
        if kind == "composed":  # the members are referenced by relative path: copy them along
            shutil.copytree(built["scalar"], tmp_path / "scalar")
            shutil.copytree(built["composed"], tmp_path / "composed")
            return tmp_path / "composed"
        return Path(shutil.copytree(built[kind], tmp_path / kind))

    return make


def _score(model: Path, tmp: Path, *extra) -> list[str]:
    data = tmp / "rows.jsonl"
    if not data.exists():
        write_jsonl(data, rows(3))
    out = tmp / "s.jsonl"
    return ["score", "--model", str(model), "--data", str(data), "--output", str(out), "--overwrite", *extra]


def _set(path: str, value):
    def change(spec):
        *parents, last = path.split(".")
        node = spec
        for p in parents:
            node = node[p]
        node[last] = value

    return change


SCORE_CHANGING_EDITS = [
    ("scalar", "template", _set("template", "plain")),
    ("scalar", "max_length", _set("max_length", 8)),
    ("scalar", "truncation", _set("truncation", "right")),
    ("scalar", "normalization", _set("normalization.std", 123.0)),
    ("scalar", "pad_token_id", lambda s: s.update(pad_token_id=s["pad_token_id"] + 1)),
    ("mo", "multiobjective", _set("multiobjective.scaliser.weights.verbosity", 2.0)),
    ("mo", "multiobjective", _set("multiobjective.gate.temperature", 0.5)),
    ("mo", "multiobjective", _set("multiobjective.transform", [[1.0, 0.0], [0.0, 1.0]])),
    ("composed", "scaliser", _set("scaliser.threshold", 0.9)),
    ("composed", "scaliser", _set("scaliser.whiten_mean", 0.0)),
    ("composed", "safety", lambda s: s["safety"].update(attribute="helpfulness", squash="none")),  # roles
    ("composed", "helpfulness", _set("helpfulness.squash", "none")),
]


@pytest.mark.parametrize(
    "kind, field, change",
    SCORE_CHANGING_EDITS,
    ids=[f"{k}-{f}-{i}" for i, (k, f, _) in enumerate(SCORE_CHANGING_EDITS)],
)
def test_an_edited_score_changing_field_is_refused_naming_it(copy, tmp_path, capsys, kind, field, change):
    """Before: template, max_length, truncation, the scaliser weights, the gate temperature, the transform, the
    composed threshold and roles could be edited and the scores changed silently (exit 0)."""
    model = copy(kind)
    edit(model, change)
    before = snapshot(tmp_path)
    code, err = run_cli(capsys, _score(model, tmp_path))
    assert code == 2 and f"field '{field}' was modified" in err and "--trust-modified" in err, err
    assert str(model / "rewardlab.json") in err
    after = snapshot(tmp_path)
    assert all(after.get(k) == v for k, v in before.items())


def test_truncation_right_would_have_tied_the_pairs_the_seal_refuses_it(copy, tmp_path, capsys):
    """The tester's case: truncation → right turns long-prompt pairs into exact ties. Loaded anyway with
    --trust-modified it does (the reason the seal exists), and the warning and the report say so."""
    model = copy("scalar")
    long_prompt = "word " * 200
    data = write_jsonl(tmp_path / "long.jsonl", [{"prompt": long_prompt, "chosen": "yes good", "rejected": "no bad"}])
    argv = ["score", "--model", str(model), "--data", str(data), "--output", str(tmp_path / "a.jsonl")]
    assert run_cli(capsys, argv)[0] == 0
    honest = json.loads((tmp_path / "a.jsonl").read_text())["scores"]
    edit(model, _set("truncation", "right"))
    argv[-1] = str(tmp_path / "b.jsonl")
    code, err = run_cli(capsys, argv)
    assert code == 2 and "field 'truncation' was modified" in err
    code, err = run_cli(capsys, [*argv, "--trust-modified"])
    assert code == 0 and "warning" in err and "truncation" in err
    tied = json.loads((tmp_path / "b.jsonl").read_text())["scores"]
    assert honest[0] != honest[1] and tied[0] == tied[1]


def test_deleting_file_hashes_is_refused_unless_trusted(copy, tmp_path, capsys):
    """Before: deleting file_hashes turned every file check off."""
    model = copy("scalar")
    edit(model, lambda s: s.pop("file_hashes"))
    (model / "tokenizer.json").write_text((model / "tokenizer.json").read_text().replace('"[UNK]"', '"[UNK2]"'))
    code, err = run_cli(capsys, _score(model, tmp_path))
    assert code == 2 and "field 'file_hashes' was removed" in err
    edit(model, lambda s: s.pop("contract_hashes"))  # and the seal too: still refused
    code, err = run_cli(capsys, _score(model, tmp_path))
    assert code == 2 and "carries no contract_hashes" in err and "without file_hashes" in err
    code, err = run_cli(capsys, _score(model, tmp_path, "--trust-modified"))
    assert code == 0 and "warning" in err and "contract_hashes" in err


def test_every_writer_seals_what_it_writes(built):
    from rewardlab.core.integrity import seal_problems

    for kind in ("scalar", "mo", "composed"):
        spec = spec_of(built[kind])
        assert spec["contract_hashes"] and seal_problems(spec) == [], kind
        assert set(spec["contract_hashes"]) == set(spec) - {"contract_hashes"}


MALFORMED = [
    ("scalar", lambda s: [], "the file must be a JSON object, got a list"),
    ("scalar", lambda s: None, "the file must be a JSON object, got null"),
    ("scalar", lambda s: {k: v for k, v in s.items() if k != "pooling"}, "pooling is missing"),
    ("scalar", lambda s: {**s, "max_length": "48"}, 'max_length must be a whole number, got "48"'),
    ("scalar", lambda s: {**s, "normalization": [1, 2]}, "normalization must be an object or null"),
    ("mo", lambda s: {**s, "multiobjective": {"scales": {}}}, "multiobjective.attributes is missing"),
    ("mo", lambda s: {**s, "multiobjective": None} | {"x": 1}, "unknown field"),
    (
        "mo",
        lambda s: {**s, "multiobjective": {**s["multiobjective"], "gate": {"n_objectives": 2}}},
        "multiobjective.gate.input_dim is missing",
    ),
    (
        "mo",
        lambda s: {
            **s,
            "multiobjective": {**s["multiobjective"], "scaliser": {"type": "weights", "weights": {"a": "x"}}},
        },
        "multiobjective.scaliser.weights must be an object of a number",
    ),
    (
        "mo",
        lambda s: {**s, "multiobjective": {**s["multiobjective"], "transform": [[1.0]]}},
        "multiobjective.transform must be a finite 2×2 matrix",
    ),
    ("composed", lambda s: {k: v for k, v in s.items() if k != "scaliser"}, "scaliser is missing"),
    ("composed", lambda s: {**s, "safety": "m"}, "safety must be an object"),
    ("composed", lambda s: {**s, "safety": {"squash": "sigmoid"}}, "safety.path is missing"),
]


@pytest.mark.parametrize("kind, change, needle", MALFORMED, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(MALFORMED)])
def test_a_malformed_rewardlab_json_is_an_error_naming_the_field(copy, tmp_path, capsys, kind, change, needle):
    """Before: `[]`, `null` or a section missing a key gave a traceback (TypeError/AttributeError)."""
    model = copy(kind)
    (model / "rewardlab.json").write_text(json.dumps(change(spec_of(model))))
    code, err = run_cli(capsys, _score(model, tmp_path, "--trust-modified"))
    last = err.strip().splitlines()[-1]
    assert code == 2 and needle in last and "rewardlab.json" in last, err


# ---- statistics -----------------------------------------------------------------------------------------------
BAD_STATS = [
    ({"std": -0.5}, "normalization.std", "negative"),
    ({"std": 0.0}, "normalization.std", "floor"),
    ({"std": 1e-9}, "normalization.std", "floor"),
    ({"std": math.inf}, "normalization.std", "finite"),
    ({"mean": math.nan}, "normalization.mean", "finite"),
    ({"n": 1}, "normalization.n", "≥ 2"),
]


@pytest.mark.parametrize("change, field, needle", BAD_STATS, ids=[f"{f}-{i}" for i, (_, f, _) in enumerate(BAD_STATS)])
def test_score_never_answers_with_statistics_that_cannot_normalise(copy, tmp_path, capsys, change, field, needle):
    """Before: a negative std reversed the ranking, std 0 or ∞ returned raw rewards as normalised, a NaN mean gave
    null rewards, all with exit 0. Edited, the seal refuses them; trusted, the statistics' own check does, before
    any scoring."""
    model = copy("scalar")
    edit(model, lambda s: s["normalization"].update(change))
    code, err = run_cli(capsys, _score(model, tmp_path, "--normalize"))
    assert code == 2 and "field 'normalization' was modified" in err
    code, err = run_cli(capsys, _score(model, tmp_path, "--normalize", "--trust-modified"))
    assert code == 2 and field in err and needle in err, err
    assert not (tmp_path / "s.jsonl").exists()
    code, _ = run_cli(capsys, _score(model, tmp_path, "--trust-modified"))  # raw scores stay available
    assert code == 0


def test_the_server_never_says_normalized_without_normalising(copy, capsys):
    from fastapi.testclient import TestClient

    from rewardlab.core.errors import RewardlabError
    from rewardlab.serve.app import create_app
    from rewardlab.serve.config import ServeConfig

    model = copy("scalar")
    edit(model, lambda s: s["normalization"].update(std=-1.0))
    with pytest.raises(RewardlabError, match="normalization.std"):  # --normalize: refused before serving
        create_app(ServeConfig(model=str(model), normalize=True, trust_modified=True))
    with TestClient(create_app(ServeConfig(model=str(model), trust_modified=True, max_wait_ms=1))) as client:
        asked = client.post("/v1/score", json={"prompt": "Hi", "responses": ["Hello"], "normalize": True})
        plain = client.post("/v1/score", json={"prompt": "Hi", "responses": ["Hello"]})
    assert asked.status_code == 422 and "normalization.std" in asked.json()["detail"]
    assert plain.status_code == 200 and plain.json()["normalized"] is False


def test_normalize_on_identical_rows_stores_nothing(copy, tmp_path, capsys):
    """Before: 5 identical rows stored std 6e-9 (float noise), and scores then came out near −1.9e6."""
    model = copy("scalar")
    before = (model / "rewardlab.json").read_bytes()
    same = write_jsonl(tmp_path / "same.jsonl", [{"prompt": "Same?", "response": "Same."}] * 5)
    code, err = run_cli(capsys, ["normalize", "--model", str(model), "--data", str(same)])
    assert code == 2 and "cannot normalise" in err and "std" in err
    assert (model / "rewardlab.json").read_bytes() == before


def test_measured_statistics_worked_by_hand():
    """rewards 1, 2, 3, 4: mean 10/4 = 2.5; squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5, /4 = 1.25, std
    √1.25 = 1.118034. Five times 0.3 plus float32 noise of 1e-8: std ≈ 4e-9 ≤ the floor 1e-6 · max(1e-6/1e-6, |r|)
    = 1e-6: refused. One score: n = 1 < 2, refused."""
    from rewardlab.core.errors import RewardlabError
    from rewardlab.core.normstats import measured, stats_problem

    got = measured([1.0, 2.0, 3.0, 4.0], "x")
    assert got["mean"] == 2.5 and got["std"] == pytest.approx(1.118034, abs=1e-6) and got["n"] == 4
    with pytest.raises(RewardlabError, match="floor"):
        measured([0.3, 0.3 + 1e-8, 0.3, 0.3 - 1e-8, 0.3], "x")
    with pytest.raises(RewardlabError, match="n must be"):
        measured([0.5], "x")
    assert stats_problem(1e4, 5e-3) is not None and stats_problem(1e4, 2e-2) is None  # relative: 1e-6 · 1e4 = 1e-2


@pytest.mark.parametrize(
    "change, needle",
    [
        (_set("scaliser.whiten_std", -1.0), "whiten_std -1.0 is negative"),
        (_set("scaliser.whiten_std", 0.0), "whiten_std 0.0 is at or below the floor"),
        (_set("scaliser.threshold", math.nan), "threshold must lie in (0, 1)"),
        (_set("scaliser.whiten_mean", None), "given together"),
        (_set("scaliser.safety", "helpfulness"), "scaliser must be the llama2 rule with safety 'safety'"),
    ],
)
def test_composed_whitening_and_threshold_are_checked_where_read(copy, tmp_path, capsys, change, needle):
    """Before: whiten_std −1 reversed the ranking and threshold NaN always picked one member, exit 0."""
    model = copy("composed")
    edit(model, change)
    code, err = run_cli(capsys, _score(model, tmp_path, "--trust-modified"))
    assert code == 2 and needle in err, err


def test_whitening_is_checked_where_written(tmp_path):
    from rewardlab.core.errors import RewardlabError
    from rewardlab.multiobjective.scalarise import Llama2Rule

    rule = Llama2Rule("safety", "helpfulness")
    same = torch.full((4, 2), 0.7)
    with pytest.raises(RewardlabError, match="cannot whiten"):
        rule.with_whitening(same, ["safety", "helpfulness"])
    with pytest.raises(RewardlabError, match="at least two"):
        rule.with_whitening(same[:1], ["safety", "helpfulness"])
    spread = torch.tensor([[0.9, 0.2], [0.9, 0.8], [0.1, 0.5]], dtype=torch.float64)
    w = rule.with_whitening(spread, ["safety", "helpfulness"])
    z = torch.logit(torch.tensor([0.2, 0.8, 0.1], dtype=torch.float64))  # R_s < 0.15 only in the last row
    assert w.whiten_mean == pytest.approx(float(z.mean())) and w.whiten_std == pytest.approx(float(z.std()))


def test_the_trainer_records_no_statistics_it_could_not_normalise_with(capsys):
    """Held-out rewards that are all equal (a model that scores every text the same) give no statistics."""
    from rewardlab.core.errors import RewardlabError
    from rewardlab.core.normstats import measured

    with pytest.raises(RewardlabError):
        measured([0.25] * 6, "the held-out rewards")
