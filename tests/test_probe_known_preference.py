"""The length probe against models whose length preference is known because they were trained for it.

Two tiny BERT reward models (random init, CPU, a few seconds each) are trained on synthetic pairs whose only
difference is length: random words from one small vocabulary, the shorter response chosen for one model and
the longer for the other. Each must come out of the ``length`` probe with the sign it was trained to have:
the mean reward shift r(worse response twice) − r(worse response) below 0 for the short-preferring model and
above 0 for the long-preferring one, and the share of pairs the doubled answer wins moving the same way
(``effect`` = biased_preferred − control_rate)."""

from __future__ import annotations

import json
import random

import pytest

from rewardlab.data.record import Comparison

WORDS = "river stone cloud apple table window garden paper music light north quiet green simple".split()


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)) + "."


def _length_pairs(prefer: str, n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        short, long = sorted(rng.sample(range(2, 25), 2))
        a, b = _sentence(rng, short), _sentence(rng, long)
        chosen, rejected = (a, b) if prefer == "short" else (b, a)
        rows.append({"prompt": f"Question {i}: say something.", "chosen": chosen, "rejected": rejected})
    return rows


@pytest.fixture(scope="module")
def length_models(tmp_path_factory, tiny_bert):
    from rewardlab.training.train import TrainConfig, train

    out = {}
    for prefer in ("short", "long"):
        d = tmp_path_factory.mktemp(f"prefers-{prefer}")
        (d / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _length_pairs(prefer, 400, 1)))
        cfg = TrainConfig(
            data=str(d / "train.jsonl"),
            backbone=tiny_bert,
            output_dir=str(d / "run"),
            max_length=64,
            epochs=2,
            batch_size=16,
            lr=1e-3,
            eval_fraction=0.1,
        )
        train(cfg)
        out[prefer] = str(d / "run" / "model")
    return out


@pytest.mark.slow
@pytest.mark.parametrize("prefer,sign", [("short", -1), ("long", 1)])
def test_length_probe_reports_the_trained_sign(length_models, prefer, sign):
    from rewardlab.probes.profile import bias_profile
    from rewardlab.scoring.loader import load_reward_model

    rm = load_reward_model(length_models[prefer], say=None)
    rng = random.Random(7)
    # probe records: held-out prompts, responses of 3-10 words, the chosen one drawn at random (not by length)
    records = [
        Comparison(f"Probe question {i}?", (_sentence(rng, rng.randint(3, 10)), _sentence(rng, rng.randint(3, 10))))
        for i in range(40)
    ]
    # the model has the preference it was trained for: on fresh pairs the shorter (longer) one wins
    fresh = _length_pairs(prefer, 30, 99)
    chosen = rm.score([(r["prompt"], r["chosen"]) for r in fresh])
    rejected = rm.score([(r["prompt"], r["rejected"]) for r in fresh])
    assert sum(c > j for c, j in zip(chosen, rejected)) >= 27
    got = bias_profile(rm, records, ["length"], n_boot=200)["probes"]["length"]
    print(f"prefers {prefer}: length shift {got['shift']:+.4f} {got['shift_ci95']}, effect {got['effect']:+.3f}")
    assert sign * got["shift"] > 0 and sign * got["shift_ci95"][0] > 0 and sign * got["shift_ci95"][1] > 0
    assert sign * got["effect"] > 0
