"""`rewardlab normalize`: reference-policy statistics stored atomically in rewardlab.json and applied by the scorer."""

import json

import numpy as np
import pytest

from rewardlab.cli import main
from rewardlab.models.reward_model import RewardModel

SAMPLES = [
    {"prompt": "What is 2 plus 3?", "response": "It is 5."},
    {"prompt": "Name a fruit.", "response": "Apple."},
    {"prompt": [{"role": "user", "content": "Say hi."}], "response": "Hi!"},
    {"prompt": "Count to three.", "response": "One, two, three."},
]


def test_normalize_stores_mean_std_and_score_applies_them(tmp_path, tiny_llama):
    rm = RewardModel.from_backbone(tiny_llama, max_length=64, seed=3)
    rm.save(tmp_path / "m")
    before = json.loads((tmp_path / "m" / "rewardlab.json").read_text())
    data = tmp_path / "samples.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in SAMPLES))
    items = [(r["prompt"] if isinstance(r["prompt"], str) else tuple(r["prompt"]), r["response"]) for r in SAMPLES]
    raw = np.array(rm.score(items))

    assert main(["normalize", "--model", str(tmp_path / "m"), "--data", str(data), "--dry-run"]) == 0
    assert json.loads((tmp_path / "m" / "rewardlab.json").read_text()) == before
    assert main(["normalize", "--model", str(tmp_path / "m"), "--data", str(data)]) == 0
    after = json.loads((tmp_path / "m" / "rewardlab.json").read_text())
    stats = after.pop("normalization")
    before.pop("normalization")
    seal_after, seal_before = after.pop("contract_hashes"), before.pop("contract_hashes")
    assert after == before  # nothing else changed
    assert {k for k in seal_after if seal_after[k] != seal_before.get(k)} == {"normalization"}  # sealed again
    assert stats["mean"] == pytest.approx(raw.mean(), abs=1e-6) and stats["std"] == pytest.approx(raw.std(), abs=1e-6)
    assert stats["n"] == 4 and "samples.jsonl" in stats["source"]
    assert sorted(p.name for p in (tmp_path / "m").iterdir() if p.name.startswith(".")) == []  # no temp files left

    out = tmp_path / "scores.jsonl"
    assert (
        main(["score", "--model", str(tmp_path / "m"), "--data", str(data), "--output", str(out), "--normalize"]) == 0
    )
    got = [json.loads(l)["score"] for l in open(out)]
    assert got == pytest.approx(list((raw - raw.mean()) / raw.std()), abs=1e-5)
    assert abs(np.mean(got)) < 1e-5  # the reference policy now scores 0 on average
    assert RewardModel.load(tmp_path / "m").score(items, normalize=True) == pytest.approx(got, abs=1e-5)


def test_normalize_refuses_a_non_model_directory(tmp_path, capsys):
    data = tmp_path / "s.jsonl"
    data.write_text(json.dumps(SAMPLES[0]) + "\n")
    assert main(["normalize", "--model", str(tmp_path), "--data", str(data)]) == 2
    assert "rewardlab.json" in capsys.readouterr().err


@pytest.mark.parametrize(
    "cmd,flag",
    [
        ("serve", "--max-batch-tokens"),
        ("export", "--merge"),
        ("normalize", "--dry-run"),
        ("train", "--lora-target-modules"),
    ],
)
def test_new_commands_have_help(cmd, flag, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0 and flag in capsys.readouterr().out
