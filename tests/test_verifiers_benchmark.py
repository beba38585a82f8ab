"""ProcessBench through the benchmark registry: ``rewardlab eval --benchmark processbench`` and ``rewardlab
eval-verifier`` run the same code (identical numbers), the threshold is chosen on the split the user names and
recorded (with the splits it is in-sample for), the baselines come with it, and what does not apply is refused
before any work (exit 2, one line, nothing written)."""

import doctest
import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer

from rewardlab.benchmarks import describe_benchmarks, get_benchmark, processbench
from rewardlab.cli import main
from rewardlab.models.reward_model import RewardModel
from rewardlab.verifiers.model import VerifierModel, VerifierSpec

SHARED = Path("/work/shared/data/processbench-gsm8k.json")
if not SHARED.exists():
    SHARED = Path(__file__).resolve().parents[2] / "shared/data/processbench-gsm8k.json"


def test_docstring_examples():
    assert doctest.testmod(processbench).failed == 0


@pytest.fixture(scope="module")
def verifier(tmp_path_factory, tiny_llama):
    d = tmp_path_factory.mktemp("pb") / "m"
    tok = AutoTokenizer.from_pretrained(tiny_llama)
    torch.manual_seed(3)
    model = AutoModelForTokenClassification.from_pretrained(tiny_llama, num_labels=1)
    model.config.pad_token_id = tok.pad_token_id
    VerifierModel(model.eval(), tok, VerifierSpec(head="bce", max_length=128)).save(d)
    return str(d)


@pytest.fixture(scope="module")
def rows_file(tmp_path_factory):
    """Eight rows over two splits (toy, other): erroneous rows at steps 0-2, all-correct rows (label -1)."""
    rows = [
        {"id": f"{split}-{i}", "generator": "hand", "problem": f"What is {i} plus {i}?",
         "steps": [f"{i} plus {i} is {2 * i + d}.", f"So it is {2 * i + d}.", f"A: {2 * i + d}"],
         "label": label, "final_answer_correct": label == -1}
        for split in ("toy", "other")
        for i, (d, label) in enumerate([(0, -1), (1, 0), (0, -1), (2, 2)])
    ]  # fmt: skip
    path = tmp_path_factory.mktemp("pb") / "pb.json"
    path.write_text(json.dumps(rows))
    return str(path)


def test_registry_entry_reads_steps():
    bench = get_benchmark("process-bench")
    assert bench.name == "processbench" and bench.scores == "steps" and bench.rule is processbench.processbench_report
    assert "processbench" in describe_benchmarks() and "ProcessBench" in describe_benchmarks()
    assert all(b.scores == "responses" for name, b in __import__("rewardlab.benchmarks").benchmarks.REGISTRY.items()
               if name != "processbench")  # fmt: skip


def test_eval_benchmark_processbench_equals_eval_verifier(verifier, rows_file, tmp_path, capsys):
    """Both commands: the same threshold (chosen on 'toy', recorded, in-sample for 'toy' only), the same per-split
    model and baseline numbers, the same mean F1 — equal dicts, not just close numbers."""
    common = ["--model", verifier, "--data", rows_file, "--threshold-split", "toy", "-q"]
    assert main(["eval", "--benchmark", "processbench", *common, "--output-dir", str(tmp_path / "e")]) == 0
    assert main(["eval-verifier", "--benchmark", "processbench", *common, "--output", str(tmp_path / "v.json")]) == 0
    printed = capsys.readouterr().out
    ours = json.loads((tmp_path / "e" / "report.json").read_text())
    theirs = json.loads((tmp_path / "v.json").read_text())
    a, b = ours["results"][verifier], theirs["results"][verifier]
    keys = ("threshold", "threshold_rule", "threshold_in_sample_splits", "splits", "f1_mean", "protocol")
    assert {k: a[k] for k in keys} == {k: b[k] for k in keys}
    assert a["threshold_in_sample_splits"] == ["toy"] and "chosen on split 'toy'" in a["threshold_rule"]
    assert set(a["splits"]) == {"toy", "other"} and a["splits"]["toy"]["n"] == 4
    assert a["splits"]["other"]["never_wrong"]["f1"] == 0.0  # never-wrong: acc_err 0, acc_cor 1
    # random step: 3 steps per row → 1/4 right per row on both sides → F1 1/4
    assert a["splits"]["other"]["random_step"] == {"acc_err": 0.25, "acc_cor": 0.25, "f1": 0.25}
    assert ours["benchmark"] == "processbench" and ours["solutions"] == 8 and "QwenLM/ProcessBench" in ours["reference"]
    md = (tmp_path / "e" / "report.md").read_text()
    assert "| random-step F1 |" in md and "Threshold rule:" in md
    assert "ProcessBench F1 (mean over splits)" in printed and "report.md (and report.json)" in printed
    fixed = ["eval", "--benchmark", "processbench", "--model", verifier, "--data", rows_file, "--threshold", "0.5"]
    assert main([*fixed, "-q", "--output-dir", str(tmp_path / "f")]) == 0
    r = json.loads((tmp_path / "f" / "report.json").read_text())["results"][verifier]
    assert r["threshold"] == 0.5 and r["threshold_rule"] == "given" and r["threshold_in_sample_splits"] == []


@pytest.mark.parametrize(
    "extra, words",
    [
        ([], ["name the split the threshold is chosen on", "--threshold-split"]),
        (["--threshold-split", "gsm8k"], ["--threshold-split 'gsm8k' is not a split of", "other, toy"]),
        (["--threshold-split", "toy", "--judge", "JUDGE"], ["--judge does not apply to --benchmark processbench"]),
        (["--threshold-split", "toy", "--probes"], ["--probes does not apply"]),
    ],
)
def test_eval_processbench_refusals_before_work(verifier, rows_file, tmp_path, capsys, extra, words):
    out = tmp_path / "out"
    extra = [verifier if x == "JUDGE" else x for x in extra]  # a judge the preflight finds (a local directory)
    argv = ["eval", "--benchmark", "processbench", "--model", verifier, "--data", rows_file, *extra]
    assert main([*argv, "--output-dir", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words) and "Traceback" not in err, err
    assert not (out / "report.json").exists()


def test_eval_processbench_refuses_a_model_without_step_scores(rows_file, tmp_path, tiny_llama, capsys):
    rm = RewardModel.from_backbone(tiny_llama, max_length=64)
    rm.save(tmp_path / "rm")
    argv = ["eval", "--benchmark", "processbench", "--model", str(tmp_path / "rm"), "--data", rows_file]
    assert main([*argv, "--threshold-split", "toy", "--output-dir", str(tmp_path / "o"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "needs per-step scores" in err and "(reward-model)" in err and "Traceback" not in err


def test_rows_without_a_first_error_are_refused_naming_one(verifier, tmp_path, capsys):
    """A TRL stepwise row ending unlabelled before any error has no ProcessBench label: refused, named."""
    path = tmp_path / "trl.jsonl"
    path.write_text(json.dumps({"prompt": "Q?", "completions": ["a", "b"], "labels": [True, None]}) + "\n")
    argv = ["eval", "--benchmark", "processbench", "--model", verifier, "--data", str(path), "--threshold", "0.5"]
    assert main([*argv, "--output-dir", str(tmp_path / "o"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "1 solutions have no first-error label" in err and "Traceback" not in err


@pytest.mark.skipif(not SHARED.exists(), reason="the shared ProcessBench gsm8k file is absent")
def test_loader_reads_the_shared_gsm8k_split():
    data = get_benchmark("processbench").load(str(SHARED))
    sols = data.records
    assert len(sols) == 400 and {processbench.split_of(s.id) for s in sols} == {"gsm8k"}
    assert sum(s.first_error == -1 for s in sols) == 193  # the published split: 207 erroneous, 193 correct
