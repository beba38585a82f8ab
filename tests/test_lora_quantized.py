"""``train --quantize 4bit|8bit`` (QLoRA; issue 28, Found 1): the backbone loaded quantized with bitsandbytes, LoRA
adapters and a float32 head trained over it, the run recorded, the saved adapter loading with ``score``.

Refusals (exit 2, one line, no traceback, before torch loads) run everywhere. The real runs need bitsandbytes
(CPU backend from 0.50; tested with 0.50.2) and skip cleanly without it (CI does not install it)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rewardlab.cli import main
from rewardlab.commands import preflight
from rewardlab.core import device as dev
from rewardlab.core.errors import RewardlabError

SRC = str(Path(__file__).resolve().parents[1] / "src")
HAS_BNB = dev.importlib.util.find_spec("bitsandbytes") is not None
needs_bnb = pytest.mark.skipif(not HAS_BNB, reason="bitsandbytes is not installed (pip install bitsandbytes)")

_PROBE = """
import contextlib, io, json, sys
from rewardlab.cli import main
out = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code
    out.append({"argv": argv, "code": code, "err": err.getvalue()})
print(json.dumps({"cases": out, "torch_imported": "torch" in sys.modules}))
"""


def _fresh(cases: list[list[str]]) -> dict:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), "HF_HUB_OFFLINE": "1"}
    for k in preflight.DISTRIBUTED_ENV:
        env.pop(k, None)
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(cases)], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _pairs(path: Path, n: int = 24) -> Path:
    rows = [{"prompt": f"q{i}", "chosen": f"good answer {i}", "rejected": f"bad {i}"} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_quantize_without_lora_with_fsdp_or_another_objective_is_refused_before_torch_loads(tmp_path):
    """Each combination QLoRA cannot run: exit 2, one line naming the options, no traceback, torch never imported
    (whether or not bitsandbytes is installed: these checks come before the package's)."""
    data = str(_pairs(tmp_path / "d.jsonl"))
    base = ["train", "--data", data, "--output-dir", str(tmp_path / "run")]
    cases = {
        "--quantize 4bit trains LoRA adapters over the frozen quantized backbone (QLoRA): it needs --lora-r > 0": [
            *base,
            "--quantize",
            "4bit",
        ],
        "--quantize 8bit and --fsdp do not go together": [*base, "--quantize", "8bit", "--lora-r", "4", "--fsdp"],
        "--quantize 4bit applies to --objective preference, not regression": [
            *base,
            "--quantize",
            "4bit",
            "--lora-r",
            "4",
            "--objective",
            "regression",
        ],
        "--quantize 4bit keeps the adapters and the head in float32": [
            *base,
            "--quantize",
            "4bit",
            "--lora-r",
            "4",
            "--precision",
            "bf16-pure",
        ],
        "--quantize 2bit: expected one of 4bit, 8bit": [*base, "--quantize", "2bit", "--lora-r", "4"],
    }
    if not HAS_BNB:
        cases["--quantize 4bit: the bitsandbytes package is not installed"] = [
            *base,
            "--quantize",
            "4bit",
            "--lora-r",
            "4",
        ]
    got = _fresh(list(cases.values()))
    for needle, case in zip(cases, got["cases"]):
        assert case["code"] == 2, case
        assert needle in case["err"], (needle, case)
        assert "Traceback" not in case["err"] and len(case["err"].strip().splitlines()) == 1, case
    assert not got["torch_imported"]
    assert not (tmp_path / "run").exists()


def test_quantize_without_bitsandbytes_is_refused_with_the_install_line(tmp_path, monkeypatch, capsys):
    """bitsandbytes made absent for rewardlab's check only (so this runs where it is installed too): one line, exit 2,
    nothing written."""
    real = dev.importlib.util.find_spec

    class Util:
        @staticmethod
        def find_spec(name, *a):
            return None if name == "bitsandbytes" else real(name, *a)

    monkeypatch.setattr(dev, "importlib", type("I", (), {"util": Util}))
    out = tmp_path / "run"
    code = main(["train", "--data", str(_pairs(tmp_path / "d.jsonl")), "--quantize", "4bit", "--lora-r", "4",
                 "--output-dir", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "--quantize 4bit: the bitsandbytes package is not installed (pip install bitsandbytes)" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    with pytest.raises(RewardlabError, match="bitsandbytes package is not installed"):  # the Python API: the same check
        from rewardlab.training.train import TrainConfig

        TrainConfig(quantize="4bit", lora_r=4)


def test_the_device_check_names_where_bitsandbytes_runs(monkeypatch):
    """CUDA always; the CPU from bitsandbytes 0.50 (its CPU backend), with the installed version named otherwise;
    never MPS."""
    monkeypatch.setattr("importlib.metadata.version", lambda name: "0.45.5")  # an older bitsandbytes
    dev.check_quantize_device("4bit", "cuda:0")
    with pytest.raises(
        RewardlabError, match=r"bitsandbytes 0\.45\.5 runs quantized weights only on a CUDA GPU; its CPU"
    ):
        dev.check_quantize_device("4bit", "cpu")
    monkeypatch.setattr("importlib.metadata.version", lambda name: "0.50.2")
    dev.check_quantize_device("8bit", "cpu")
    with pytest.raises(RewardlabError, match="run on a CUDA GPU or the CPU, not mps"):
        dev.check_quantize_device("4bit", "mps")


def test_the_training_compute_dtype_and_the_4bit_config():
    """QLoRA's recipe: NF4, double quantization, bf16 matmuls where the device has bfloat16 (the CPU does)."""
    pytest.importorskip("bitsandbytes")
    import torch

    assert dev.training_compute_dtype("cpu") == "bfloat16"
    cfg = dev.quantization_config("4bit", "bfloat16")
    assert cfg.load_in_4bit and cfg.bnb_4bit_quant_type == "nf4" and cfg.bnb_4bit_use_double_quant
    assert cfg.bnb_4bit_compute_dtype == torch.bfloat16
    assert dev.quantization_config("8bit", "bfloat16").load_in_8bit


# ---- real QLoRA steps on the CPU (bitsandbytes >= 0.50) -------------------------------------------------------
def _train(tiny_llama, data, out, *extra):
    return ["train", "--data", str(data), "--backbone", tiny_llama, "--batch-size", "4", "--max-length", "32",
            "--eval-fraction", "0.25", "--max-steps", "4", "--lr", "1e-2", "--lora-r", "4", "--log-every", "1",
            "--output-dir", str(out), *extra]  # fmt: skip


@needs_bnb
@pytest.mark.slow
def test_the_backbone_is_quantized_frozen_and_the_head_float32(tmp_path, tiny_llama):
    """After setup: every projection of the backbone is a bitsandbytes 4-bit layer (NF4, bf16 compute), only LoRA
    matrices and the head copy train, and the head copy is float32."""
    import bitsandbytes as bnb
    import torch

    from rewardlab.training.train import TrainConfig, _end, setup

    data = _pairs(tmp_path / "d.jsonl")
    cfg = TrainConfig(data=str(data), backbone=tiny_llama, batch_size=4, max_length=32, max_steps=1, lora_r=4,
                      quantize="4bit", output_dir=str(tmp_path / "run"), report_to="none")  # fmt: skip
    run = setup(cfg)
    try:
        layers = [m for m in run.rm.model.modules() if isinstance(m, bnb.nn.Linear4bit)]
        assert len(layers) == 2 * 7  # 2 layers x (q, k, v, o, gate, up, down)
        assert {m.weight.quant_type for m in layers} == {"nf4"} and {m.compute_dtype for m in layers} == {
            torch.bfloat16
        }
        trainable = {n: p for n, p in run.rm.model.named_parameters() if p.requires_grad}
        assert trainable and all("lora_" in n or "modules_to_save" in n for n in trainable)
        head = [p for n, p in trainable.items() if "modules_to_save" in n]
        assert head and {p.dtype for p in head} == {torch.float32}
    finally:
        _end(run.accelerator, run.own_group)


@needs_bnb
@pytest.mark.slow
@pytest.mark.parametrize("bits", ["4bit", "8bit"])
def test_qlora_trains_on_the_cpu_records_it_and_the_adapter_scores(tmp_path, tiny_llama, bits, capsys):
    """Four real steps: the loss is finite, the LoRA B matrices (zero at the start) moved, the setting is in the
    summary and the report, and the saved directory (adapter + base path) loads with ``score``."""
    from safetensors.torch import load_file

    out = tmp_path / "run"
    assert main(_train(tiny_llama, _pairs(tmp_path / "d.jsonl"), out, "--quantize", bits)) == 0
    err = capsys.readouterr().err
    assert f"loading the backbone in {bits} on cpu" in err
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert len(losses) == 4 and all(x == x and abs(x) < 1e3 for x in losses)
    adapter = load_file(str(out / "model" / "adapter_model.safetensors"))
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]
    assert lora_b and any(float(v.abs().max()) > 0 for v in lora_b)
    assert json.loads((out / "model" / "adapter_config.json").read_text())["base_model_name_or_path"] == tiny_llama
    assert json.loads((out / "train_summary.json").read_text())["config"]["quantize"] == bits
    assert f"QLoRA: the backbone loaded {bits}" in (out / "report.md").read_text()
    scores = tmp_path / "s.jsonl"
    assert main(["score", "--model", str(out / "model"), "--data", str(tmp_path / "d.jsonl"), "--output",
                 str(scores)]) == 0  # fmt: skip
    first = json.loads(scores.read_text().splitlines()[0])["scores"]
    assert len(first) == 2 and all(s == s for s in first)


@needs_bnb
@pytest.mark.slow
def test_a_quantized_run_resumes_exactly(tmp_path, tiny_llama):
    """Stopped after 2 of 4 steps and resumed equals 4 uninterrupted steps, tensor for tensor: the checkpoint holds
    the trainable weights and the frozen 4-bit backbone is rebuilt from the base (before: resuming failed with
    "its weights or optimizer state do not fit this model")."""
    from safetensors.torch import load_file

    data = _pairs(tmp_path / "d.jsonl")
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert main(_train(tiny_llama, data, whole, "--quantize", "4bit")) == 0
    assert main(_train(tiny_llama, data, parts, "--quantize", "4bit", "--stop-after", "2")) == 0
    assert main(_train(tiny_llama, data, parts, "--quantize", "4bit", "--resume")) == 0
    a = load_file(str(whole / "model" / "adapter_model.safetensors"))
    b = load_file(str(parts / "model" / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert bool((a[k] == b[k]).all()), k
