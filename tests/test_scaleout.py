"""Scale-out: the shipped accelerate configs, and `accelerate launch` with DDP on CPU (2 processes, gloo) giving the
single-process loss curve and the same held-out normalisation statistics (scored across processes, gathered)."""

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rewardlab.training.train import TrainConfig, train

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "accelerate"


def test_shipped_accelerate_configs():
    cfgs = {p.stem: yaml.safe_load(p.read_text()) for p in CONFIGS.glob("*.yaml")}
    assert {"ddp_cpu", "ddp", "deepspeed_zero2", "deepspeed_zero3", "fsdp"} <= set(cfgs)
    assert cfgs["ddp_cpu"]["distributed_type"] == "MULTI_GPU" and cfgs["ddp_cpu"]["num_processes"] == 2
    assert cfgs["ddp"]["distributed_type"] == "MULTI_GPU"
    for stage in (2, 3):
        c = cfgs[f"deepspeed_zero{stage}"]
        assert c["distributed_type"] == "DEEPSPEED" and c["deepspeed_config"]["zero_stage"] == stage
    assert cfgs["deepspeed_zero3"]["deepspeed_config"]["zero3_save_16bit_model"] is True
    f = cfgs["fsdp"]
    assert f["distributed_type"] == "FSDP" and f["fsdp_config"]["fsdp_version"] == 2
    assert f["fsdp_config"]["fsdp_state_dict_type"] == "FULL_STATE_DICT"


@pytest.fixture(scope="module")
def pref_files(tmp_path_factory):
    fruits = "apple pear plum fig kiwi lime lemon mango".split()
    rows = [
        {
            "prompt": f"Tell me about {fruits[i % 8]} #{i}",
            "chosen": f"{fruits[i % 8]} is a fruit.",
            "rejected": f"{fruits[(i + 3) % 8]} is a fruit.",
        }
        for i in range(39)
    ]
    d = tmp_path_factory.mktemp("scaleout")
    (d / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:30]))
    (d / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[30:]))  # 9: uneven over 2 processes
    return str(d / "train.jsonl"), str(d / "eval.jsonl")


def test_accelerate_launch_ddp_cpu_matches_one_process(tmp_path, tiny_llama, pref_files):
    common = {
        "data": pref_files[0],
        "eval_data": pref_files[1],
        "backbone": tiny_llama,
        "batch_size": 4,
        "max_steps": 3,
        "max_length": 48,
        "lr": 1e-3,
        "log_every": 1,
    }
    one = train(TrainConfig(output_dir=str(tmp_path / "one"), **common))
    accelerate = shutil.which("accelerate") or str(Path(sys.executable).parent / "accelerate")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in common.items()]
    r = subprocess.run(
        [
            accelerate,
            "launch",
            "--config_file",
            str(CONFIGS / "ddp_cpu.yaml"),
            "--main_process_port",
            str(port),
            "-m",
            "rewardlab.cli",
            "train",
            *flags,
            f"--output-dir={tmp_path / 'two'}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [json.loads(l) for l in open(tmp_path / "two" / "metrics.jsonl")]
    steps = [x for x in rows if "loss" in x]
    assert json.loads((tmp_path / "two" / "train_summary.json").read_text())["world_size"] == 2
    one_steps = [x for x in one.metrics if "loss" in x]
    assert [x["loss"] for x in steps] == pytest.approx([x["loss"] for x in one_steps], abs=1e-6)
    norm_two = json.loads((tmp_path / "two" / "model" / "rewardlab.json").read_text())["normalization"]
    norm_one = json.loads((Path(one.model_dir) / "rewardlab.json").read_text())["normalization"]
    assert norm_two["n"] == norm_one["n"] == 2 * 9  # every held-out response scored once, not once per process
    assert norm_two["mean"] == pytest.approx(norm_one["mean"], abs=1e-5)
    assert norm_two["std"] == pytest.approx(norm_one["std"], abs=1e-5)
