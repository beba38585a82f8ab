"""``rewardlab score`` writes how its scores were made next to them: ``<output>.provenance.json`` (the model, the
device and dtype it ran in and why, what was scored and its fingerprint, the command, versions and config), as
``rewardlab select`` does. Before (issue 28): score printed the placement and recorded it nowhere."""

import hashlib
import json

import pytest

from rewardlab.cli import main
from rewardlab.data import fingerprint, load_comparisons

PAIRS = [
    {"prompt": "Name a fruit.", "chosen": "Apple.", "rejected": "A car."},
    {"prompt": "Say hi.", "chosen": "Hi there!", "rejected": "No."},
    {"prompt": "Opposite of hot?", "chosen": "Cold.", "rejected": "Warm, hot, tepid."},
]


@pytest.fixture(scope="module")
def model(tmp_path_factory, tiny_llama):
    from rewardlab.models.reward_model import RewardModel

    out = tmp_path_factory.mktemp("m") / "model"
    RewardModel.from_backbone(tiny_llama, max_length=32, seed=0).save(out)
    return out


@pytest.fixture
def pairs(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in PAIRS))
    return path


def _score(model, data, out, *flags):
    return main(["score", "--model", str(model), "--data", str(data), "--output", str(out), *flags])


def test_the_placement_and_the_data_are_recorded_next_to_the_scores(tmp_path, model, pairs, capsys):
    out = tmp_path / "scores.jsonl"
    assert _score(model, pairs, out, "--device", "cpu", "--dtype", "bfloat16") == 0
    printed = capsys.readouterr().err
    info = json.loads((tmp_path / "scores.jsonl.provenance.json").read_text())
    want = {"device": "cpu", "dtype": "bfloat16", "dtype_reason": "--dtype bfloat16"}
    assert {k: info["placement"][k] for k in want} == want and "model on cpu in bfloat16 (--dtype bfloat16)" in printed
    assert info["model"]["placement"] == info["placement"] and info["model"]["path"] == str(model)
    assert info["model"]["backbone"]  # what rewardlab.json says, as eval's report has it
    assert info["rows"] == "comparisons (every response scored)" and info["n_rows"] == 3
    assert info["n_skipped_invalid"] == 0 and info["normalized"] is False
    assert info["data_fingerprint"] == fingerprint(load_comparisons(str(pairs)).records)
    assert info["provenance"]["data_fingerprint"] == info["data_fingerprint"]
    assert info["provenance"]["config"]["dtype"] == "bfloat16" and info["provenance"]["versions"]["torch"]
    assert info["scores"] == str(out) and len(out.read_text().splitlines()) == 3


def test_single_rows_are_fingerprinted_as_scored(tmp_path, model):
    """Two rows: the fingerprint is sha256 over each row's canonical ``[prompt, response]`` JSON and a newline,
    in file order (so another order or another response gives another fingerprint)."""
    rows = [
        {"prompt": "Say hi.", "response": "Hi!"},
        {"prompt": [{"role": "user", "content": "Yes?"}], "response": "No"},
    ]
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert _score(model, data, tmp_path / "s.jsonl") == 0
    info = json.loads((tmp_path / "s.jsonl.provenance.json").read_text())
    by_hand = hashlib.sha256(b'["Say hi.", "Hi!"]\n' + b'[[{"content": "Yes?", "role": "user"}], "No"]\n').hexdigest()
    assert info["data_fingerprint"] == by_hand and info["n_rows"] == 2 and info["rows"] == "prompt/response rows"
    assert info["placement"]["device"] == "cpu" and info["placement"]["dtype"] == "float32"  # --dtype auto on a CPU


def test_a_provenance_path_that_cannot_be_written_stops_before_scoring(tmp_path, model, pairs, capsys):
    """Exit 2, one line naming it, no traceback; the scores file is not written (nothing done half)."""
    out = tmp_path / "scores.jsonl"
    (tmp_path / "scores.jsonl.provenance.json").mkdir()
    assert _score(model, pairs, out) == 2
    err = capsys.readouterr().err
    assert "--output's provenance file" in err and "is a directory" in err and "Traceback" not in err
    assert not out.exists()


def test_overwrite_replaces_the_provenance_with_the_new_run(tmp_path, model, pairs):
    out = tmp_path / "scores.jsonl"
    assert _score(model, pairs, out, "--dtype", "bfloat16") == 0
    assert _score(model, pairs, out, "--overwrite") == 0
    assert json.loads((tmp_path / "scores.jsonl.provenance.json").read_text())["placement"]["dtype"] == "float32"
