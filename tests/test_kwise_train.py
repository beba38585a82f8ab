"""`rewardlab train --loss …` on the formats each loss is for, tiny models; exactness of K-wise normalisation."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rewardlab.cli import main

WORDS = "apple pear plum fig kiwi lime lemon mango grape melon peach berry".split()


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Three files on one theme (the prompt names a fruit; answers naming it are better):
    ranked — K = 4 lists, some with a tie or only a top-2; hs2pref — HelpSteer2-Preference pairs, strengths
    -3..3 (every 7th a tie); hs2 — HelpSteer2 rows, two or three per prompt, not adjacent."""
    root = tmp_path_factory.mktemp("kwise")
    ranked, pref, hs2 = [], [], []
    for i in range(32):
        w, o1, o2, o3 = (WORDS[(i + s) % 12] for s in (0, 3, 5, 7))
        responses = [f"I like {o1}.", f"I like {w} a lot.", f"{w} is fine.", f"Maybe {o2} or {o3}."]
        ranking = [[1, 2], 3, 0] if i % 3 == 0 else ([1, 2] if i % 3 == 1 else [1, 2, 3, 0])
        ranked.append({"prompt": f"Say something about {w} (#{i})", "responses": responses, "ranking": ranking})
        strength = 0 if i % 7 == 0 else (-1) ** i * (1 + i % 3)  # negative: response_1 better
        good, bad = f"I like {w} a lot.", f"I like {o1} a lot."
        r1, r2 = (good, bad) if strength <= 0 else (bad, good)
        pref.append(
            {"prompt": f"Tell me about {w} #{i}", "response_1": r1, "response_2": r2, "preference_strength": strength}
        )
    for i in range(16):
        w = WORDS[i % 12]
        hs2.append(
            {
                "prompt": f"Describe {w} #{i}",
                "response": f"{w} is sweet.",
                "helpfulness": 3 + i % 2,
                "correctness": 4,
                "coherence": 4,
                "complexity": 1,
                "verbosity": 1,
            }
        )
    for i in range(16):
        w, o = WORDS[i % 12], WORDS[(i + 4) % 12]
        hs2.append(
            {
                "prompt": f"Describe {w} #{i}",
                "response": f"{o} is sweet.",
                "helpfulness": 1,
                "correctness": 1,
                "coherence": 4,
                "complexity": 1,
                "verbosity": i % 4,
            }
        )
    return {
        "ranked": write_jsonl(root / "ranked.jsonl", ranked),
        "hs2pref": write_jsonl(root / "pref.jsonl", pref),
        "hs2": write_jsonl(root / "hs2.jsonl", hs2),
    }


def train_args(data_file, backbone, out, *extra):
    return [
        "train",
        "--data",
        data_file,
        "--backbone",
        backbone,
        "--output-dir",
        str(out),
        "--batch-size",
        "4",
        "--max-length",
        "48",
        "--lr",
        "1e-3",
        "--log-every",
        "1",
        "--eval-fraction",
        "0.25",
        *extra,
    ]


def metrics(out):
    return [json.loads(l) for l in open(Path(out) / "metrics.jsonl")]


@pytest.mark.parametrize(
    "loss,fmt,extra",
    [
        ("bt", "ranked", []),
        ("margin", "hs2pref", ["--margin-table", "llama2_small"]),
        ("scaled_bt", "hs2pref", ["--label-smoothing", "0.1"]),
        ("allpairs", "ranked", ["--sampler", "grouped"]),
        ("plackett_luce", "ranked", ["--top-k", "2"]),
        ("bt_ties", "hs2pref", ["--tie-model", "rao_kupper", "--tie-param", "1.5"]),
        ("plackett_luce", "hs2", ["--score-weights", "helpfulness=1,correctness=1,verbosity=-0.5"]),
    ],
)
def test_train_each_loss_on_its_format(tmp_path, tiny_bert, data, loss, fmt, extra, capsys):
    out = tmp_path / "run"
    assert main(train_args(data[fmt], tiny_bert, out, "--loss", loss, "--max-steps", "3", *extra)) == 0
    rows = [r for r in metrics(out) if "loss" in r]
    assert len(rows) == 3 and all(r["loss"] == r["loss"] and r["loss"] > 0 for r in rows)
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["config"]["loss"] == loss and summary["final_eval"] is not None
    assert "model:" in capsys.readouterr().out


def test_ties_are_dropped_or_modelled(tmp_path, tiny_bert, data):
    """hs2pref has 5 ties (i = 0, 7, 14, 21, 28). bt drops them: records with no strict pair are left out of
    training (n_without_units); bt_ties keeps them as tie observations."""
    for loss in ("bt", "bt_ties"):
        out = tmp_path / loss
        assert main(train_args(data["hs2pref"], tiny_bert, out, "--loss", loss, "--max-steps", "1")) == 0
        info = json.loads((out / "train_summary.json").read_text())["data"]
        if loss == "bt":
            assert info["n_without_units"] > 0
        else:
            assert info["n_without_units"] == 0
        assert info["n_train"] + info["n_without_units"] + info["n_eval"] == 32


@pytest.mark.parametrize("loss", ["allpairs", "plackett_luce", "bt_ties"])
def test_accumulation_is_exact_for_kwise_losses(tmp_path, tiny_llama, data, loss):
    """Micro-batches of 1 record vs the whole batch of 4: count_units normalises by the global batch, so the
    per-step losses agree (only float summation order differs)."""
    fmt = "hs2pref" if loss == "bt_ties" else "ranked"
    a, b = tmp_path / "a", tmp_path / "b"
    assert (
        main(train_args(data[fmt], tiny_llama, a, "--loss", loss, "--max-steps", "2", "--micro-batch-size", "1")) == 0
    )
    assert main(train_args(data[fmt], tiny_llama, b, "--loss", loss, "--max-steps", "2")) == 0
    la = [r["loss"] for r in metrics(a) if "loss" in r]
    lb = [r["loss"] for r in metrics(b) if "loss" in r]
    assert la == pytest.approx(lb, abs=1e-6)
    wa, wb = load_file(str(a / "model" / "model.safetensors")), load_file(str(b / "model" / "model.safetensors"))
    for k in wa:
        assert torch.allclose(wa[k], wb[k], atol=2e-5), k


@pytest.mark.parametrize("sampler", ["grouped", "tokens"])
def test_resume_is_exact_with_the_new_samplers(tmp_path, tiny_bert, data, sampler):
    extra = ["--loss", "plackett_luce", "--sampler", sampler, "--max-steps", "4", "--max-tokens", "200"]
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(train_args(data["ranked"], tiny_bert, full, *extra)) == 0
    assert main(train_args(data["ranked"], tiny_bert, part, *extra, "--stop-after", "2")) == 0
    assert main(train_args(data["ranked"], tiny_bert, part, *extra, "--resume")) == 0
    wf, wp = load_file(str(full / "model" / "model.safetensors")), load_file(str(part / "model" / "model.safetensors"))
    for k in wf:
        assert torch.equal(wf[k], wp[k]), k


@pytest.mark.parametrize(
    "args,message",
    [
        (["--loss", "nope"], "loss must be one of"),
        (["--loss", "plackett_luce", "--label-smoothing", "0.1"], "label_smoothing applies"),
        (["--sampler", "tokens"], "--max-tokens"),
        (["--loss", "bt_ties", "--tie-model", "rao_kupper", "--tie-param", "0.5"], "tie_param"),
        (["--score-weights", "helpfulness"], "name=number"),
    ],
)
def test_bad_objective_options_are_refused(tmp_path, capsys, args, message):
    assert main(["train", "--output-dir", str(tmp_path / "x"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
