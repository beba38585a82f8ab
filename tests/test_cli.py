"""The real CLI end to end on tiny models: train (YAML config + flag override), score, eval, bad input."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rewardlab.cli import main

HH = Path(__file__).resolve().parents[2] / "shared" / "data" / "hh-rlhf-harmless-base-test.jsonl.gz"


def trl_rows(n):
    fruits = "apple pear plum fig kiwi lime lemon mango".split()
    return [
        {
            "prompt": f"Tell me about {fruits[i % 8]} #{i}",
            "chosen": f"{fruits[i % 8]} is a fruit.",
            "rejected": f"{fruits[(i + 3) % 8]} is a fruit.",
        }
        for i in range(n)
    ]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_train_score_eval_with_yaml_config(tmp_path, tiny_llama, capsys):
    data = write_jsonl(tmp_path / "train.jsonl", trl_rows(24))
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"backbone: {tiny_llama}\ndata: {data}\nbatch_size: 4\nmax_length: 48\nlr: 0.01\nlog_every: 1\n")
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--output-dir", str(out), "--lr", "0.001"]) == 0
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["config"]["lr"] == 0.001 and summary["config"]["batch_size"] == 4  # flag beats YAML
    assert (
        main(["score", "--model", str(out / "model"), "--data", str(data), "--output", str(tmp_path / "s.jsonl")]) == 0
    )
    scores = [json.loads(l) for l in open(tmp_path / "s.jsonl")]
    assert len(scores) == 24 and all(len(s["scores"]) == 2 for s in scores)
    assert (
        main(
            [
                "eval",
                "--model",
                str(out / "model"),
                str(out / "model"),
                "--data",
                str(data),
                "--output-dir",
                str(tmp_path / "ev"),
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert len(report["results"]) == 2 and report["provenance"]["data_fingerprint"]
    first = next(iter(report["results"].values()))
    wins = sum(s["scores"][s["chosen"]] > s["scores"][1 - s["chosen"]] for s in scores)
    assert first["accuracy"] == pytest.approx(wins / 24)
    assert "accuracy" in (tmp_path / "ev" / "report.md").read_text()


def test_single_prompt_response_rows_are_scored(tmp_path, tiny_llama):
    from rewardlab.models.reward_model import RewardModel

    rm = RewardModel.from_backbone(tiny_llama)
    rm.save(tmp_path / "m")
    rows = [{"prompt": "hi", "response": "hello"}, {"prompt": "Name a fruit.", "response": "apple"}]
    data = write_jsonl(tmp_path / "samples.jsonl", rows)
    assert (
        main(["score", "--model", str(tmp_path / "m"), "--data", str(data), "--output", str(tmp_path / "o.jsonl")]) == 0
    )
    got = [json.loads(l)["score"] for l in open(tmp_path / "o.jsonl")]
    assert got == pytest.approx(rm.score([("hi", "hello"), ("Name a fruit.", "apple")]), abs=1e-6)


def test_bad_input_names_file_line_field_and_skip_invalid(tmp_path, tiny_llama, capsys):
    rows = trl_rows(12)
    rows[5]["rejected"] = rows[5]["chosen"]  # identical pair on line 6
    data = write_jsonl(tmp_path / "bad.jsonl", rows)
    args = ["train", "--data", str(data), "--backbone", tiny_llama, "--batch-size", "4", "--max-length", "48"]
    assert main(args + ["--output-dir", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl" in err and "line 6" in err and "rejected" in err and "Traceback" not in err
    assert main(args + ["--output-dir", str(tmp_path / "b"), "--skip-invalid"]) == 0
    summary = json.loads((tmp_path / "b" / "train_summary.json").read_text())
    assert summary["data"]["n_skipped"] == 1 and summary["data"]["n_train"] + summary["data"]["n_eval"] == 11


def test_unknown_yaml_option_is_refused(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("learningrate: 0.1\n")  # (learning_rate is an alias of lr: rewardlab.core.aliases)
    assert main(["train", "--config", str(cfg)]) == 2
    assert "learningrate" in capsys.readouterr().err


def test_help_for_every_command():
    for cmd in (
        "train",
        "score",
        "eval",
        "quickstart",
        "serve",
        "export",
        "normalize",
        "judge",
        "train-judge",
        "probe",
    ):
        r = subprocess.run([sys.executable, "-m", "rewardlab.cli", cmd, "--help"], capture_output=True, text=True)
        assert r.returncode == 0 and "--config" in r.stdout


def test_option_help_is_read_from_the_config_comments():
    """--help text comes from the dataclass source: a field's trailing comment, else the comment block above it,
    but not a one-word section header such as ``# bookkeeping``."""
    from dataclasses import dataclass

    from rewardlab.cli import field_comments
    from rewardlab.training.train import TrainConfig

    @dataclass
    class Demo:
        # section
        a: int = 1  # the first one
        # explained over
        # two lines here
        b: str = "x"
        # bookkeeping
        c: float = 0.5

    assert field_comments(Demo) == {"a": "the first one", "b": "explained over two lines here"}
    docs = field_comments(TrainConfig)
    assert docs["gradient_checkpointing_every"].startswith("with gradient_checkpointing: every n-th layer")
    assert docs["packing"].startswith("padding-free, prefix-shared forward") and "output_dir" in docs
    assert "bookkeeping" not in docs["output_dir"]


@pytest.mark.skipif(not HH.exists(), reason="shared hh-rlhf data not present")
def test_real_hh_pairs_train_eval_and_plain_transformers_agree(tmp_path):
    """A few real MiniLM steps on the Anthropic HH harmless pairs, then eval, then plain transformers."""
    from transformers import AutoModelForSequenceClassification

    from rewardlab.models.reward_model import RewardModel

    out = tmp_path / "hh"
    assert (
        main(
            [
                "train",
                "--data",
                str(HH),
                "--backbone",
                "minilm",
                "--limit",
                "80",
                "--skip-invalid",
                "--max-steps",
                "2",
                "--batch-size",
                "4",
                "--max-length",
                "128",
                "--eval-fraction",
                "0.2",
                "--output-dir",
                str(out),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "eval",
                "--model",
                str(out / "model"),
                "--data",
                str(HH),
                "--limit",
                "24",
                "--skip-invalid",
                "--output-dir",
                str(tmp_path / "ev"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "score",
                "--model",
                str(out / "model"),
                "--data",
                str(HH),
                "--limit",
                "3",
                "--output",
                str(tmp_path / "s.jsonl"),
            ]
        )
        == 0
    )
    scored = [json.loads(l) for l in open(tmp_path / "s.jsonl")]
    rm = RewardModel.load(out / "model")
    plain = AutoModelForSequenceClassification.from_pretrained(out / "model").eval()
    from rewardlab.data import load_comparisons

    recs = load_comparisons(str(HH), limit=3).records
    assert [r["id"] for r in scored] == [c.id for c in recs]
    for c, row in zip(recs, scored):
        for resp, expected in zip(c.responses, row["scores"]):
            enc = {k: torch.tensor([v]) for k, v in rm.encoder.encode(c.prompt, resp).items()}
            with torch.no_grad():
                assert plain(**enc).logits[0, 0].item() == pytest.approx(expected, abs=1e-5)


def test_score_weights_change_the_chosen_response_in_eval_and_score(tmp_path, tiny_llama):
    """HelpSteer2 rows, 3 prompts × 2 responses. Default score = helpfulness: response 0 (3) beats 1 (1).
    --score-weights helpfulness=1,verbosity=1: response 0 scores 3 + 0 = 3, response 1 scores 1 + 4 = 5 → 1 wins.
    The model's rewards do not depend on the weights, so with 3 records (no reward ties) the weighted accuracy is
    1 − the default one, and the two differ (k/3 ≠ 1 − k/3). `score` reads an auto-format HelpSteer2 file as
    single rows unless weights are given, so the unweighted run names --format helpsteer2."""
    from rewardlab.models.reward_model import RewardModel

    RewardModel.from_backbone(tiny_llama).save(tmp_path / "m")
    rows = [
        {
            "prompt": f"Question {p}?",
            "response": f"answer {p}.{j} " + "word " * (3 * j),
            "helpfulness": h,
            "correctness": 3,
            "coherence": 4,
            "complexity": 1,
            "verbosity": v,
        }
        for p in range(3)
        for j, (h, v) in enumerate([(3, 0), (1, 4)])
    ]
    data = write_jsonl(tmp_path / "hs.jsonl", rows)
    accuracy, chosen = {}, {}
    for name, extra, fmt in (
        ("default", [], ["--format", "helpsteer2"]),
        ("weighted", ["--score-weights", "helpfulness=1,verbosity=1"], []),
    ):
        out = tmp_path / name
        assert (
            main(
                [
                    "eval",
                    "--model",
                    str(tmp_path / "m"),
                    "--data",
                    str(data),
                    "--output-dir",
                    str(out),
                    "--n-boot",
                    "0",
                    *extra,
                ]
            )
            == 0
        )
        accuracy[name] = next(iter(json.loads((out / "report.json").read_text())["results"].values()))["accuracy"]
        examples = [json.loads(l) for l in open(next(out.glob("examples-*.jsonl")))]
        chosen[name] = [e["chosen"] for e in examples]
        assert accuracy[name] == pytest.approx(
            sum(e["scores"][e["chosen"]] > e["scores"][1 - e["chosen"]] for e in examples) / 3
        )
        assert (
            main(
                [
                    "score",
                    "--model",
                    str(tmp_path / "m"),
                    "--data",
                    str(data),
                    "--output",
                    str(tmp_path / f"{name}.jsonl"),
                    *extra,
                    *fmt,
                ]
            )
            == 0
        )
        assert [json.loads(l)["chosen"] for l in open(tmp_path / f"{name}.jsonl")] == chosen[name]
    assert chosen == {"default": [0, 0, 0], "weighted": [1, 1, 1]}
    assert (
        accuracy["weighted"] == pytest.approx(1 - accuracy["default"]) and accuracy["weighted"] != accuracy["default"]
    )
    assert main(["eval", "--model", str(tmp_path / "m"), "--data", str(data), "--score-weights", "helpfulness"]) == 2


def test_every_option_of_every_command_has_help_text():
    """The help is each field's comment; a formatter that wraps a long field in parentheses must not lose it."""
    import dataclasses

    from rewardlab.cli import COMMANDS, _config_class
    from rewardlab.core.cli_help import field_comments

    missing = []
    for name, (_, path, _) in COMMANDS.items():
        if path:
            cls = _config_class(path, True)
            docs = field_comments(cls)
            missing += [f"{name} --{f.name}" for f in dataclasses.fields(cls) if not docs.get(f.name)]
    assert not missing


def test_a_comment_inside_a_wrapped_field_documents_it(tmp_path):
    import dataclasses

    from rewardlab.core.cli_help import field_comments

    # fmt: off
    @dataclasses.dataclass
    class Config:
        long_name: str = (
            "x"  # the comment the formatter moved inside the parentheses
        )
        # the block above the next field
        other: int = 1
    # fmt: on

    assert field_comments(Config) == {
        "long_name": "the comment the formatter moved inside the parentheses",
        "other": "the block above the next field",
    }
