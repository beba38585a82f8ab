"""Data-parallel scoring (rewardlab.scoring.sharding): blocks, order, and 2 processes (torchrun, gloo) = 1 process for
``rewardlab score`` and ``rewardlab bon``."""

from __future__ import annotations

import json

import pytest
import torch
from tests.launch import torchrun_train

from rewardlab.cli import main
from rewardlab.models.reward_model import RewardModel
from rewardlab.scoring.sharding import gather_in_order, map_sharded, shard_bounds


def test_shard_bounds_cover_in_order():
    """5 items over 2 processes: ⌈5/2⌉ = 3 → [0, 3) and [3, 5); 1 item over 3 → [0, 1), [1, 1), [1, 1)."""
    assert [shard_bounds(5, r, 2) for r in range(2)] == [(0, 3), (3, 5)]
    assert [shard_bounds(1, r, 3) for r in range(3)] == [(0, 1), (1, 1), (1, 1)]
    for m in range(0, 12):
        for size in (1, 2, 3, 5):
            blocks = [list(range(m))[slice(*shard_bounds(m, r, size))] for r in range(size)]
            assert [x for b in blocks for x in b] == list(range(m))


def test_one_process_is_a_plain_call():
    assert map_sharded(lambda a, b: [x + y for x, y in zip(a, b)], [1, 2], [10, 20]) == [11, 22]
    assert gather_in_order([3, 4], 0, 1) == [3, 4]


@pytest.fixture(scope="module")
def rm_and_data(tmp_path_factory, tiny_llama):
    d = tmp_path_factory.mktemp("dp")
    torch.manual_seed(0)
    RewardModel.from_backbone(tiny_llama, max_length=64).save(d / "rm")
    from rewardlab.data.synthetic import generate

    rows = []
    for r in generate(7, seed=0):  # 7 prompts × 3 responses = 21 texts: the blocks are uneven (11 + 10)
        rows.append({"id": r.id, "prompt": r.prompt, "meta": r.meta, "responses": [*r.responses, r.responses[0] + "!"]})
    (d / "samples.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows))
    singles = [
        {"id": f"{x['id']}-{j}", "prompt": x["prompt"], "response": y}
        for x in rows
        for j, y in enumerate(x["responses"])
    ]
    (d / "singles.jsonl").write_text("".join(json.dumps(x) + "\n" for x in singles))
    return d


@pytest.mark.slow
def test_score_two_processes_equal_one(rm_and_data, tmp_path):
    d = rm_and_data
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    args = ["--model", str(d / "rm"), "--data", str(d / "singles.jsonl"), "--batch-size", "4"]
    assert main(["score", *args, "--output", str(one)]) == 0
    r = torchrun_train([*args, "--output", str(two)], nproc=2, command="score")
    assert r.returncode == 0, r.stderr[-3000:]
    a = [json.loads(x) for x in one.read_text().splitlines()]
    b = [json.loads(x) for x in two.read_text().splitlines()]
    assert [x["id"] for x in a] == [x["id"] for x in b] and len(a) == 21
    assert [x["score"] for x in b] == pytest.approx([x["score"] for x in a], abs=1e-6)


@pytest.mark.slow
def test_bon_two_processes_equal_one(rm_and_data, tmp_path):
    d = rm_and_data
    args = ["--samples", str(d / "samples.jsonl"), "--proxy", str(d / "rm"), "--n-boot", "20", "--batch-size", "4"]
    assert main(["bon", *args, "--output-dir", str(tmp_path / "one")]) == 0
    r = torchrun_train([*args, "--output-dir", str(tmp_path / "two")], nproc=2, command="bon")
    assert r.returncode == 0, r.stderr[-3000:]
    a = [json.loads(x) for x in (tmp_path / "one" / "scores.jsonl").read_text().splitlines()]
    b = [json.loads(x) for x in (tmp_path / "two" / "scores.jsonl").read_text().splitlines()]
    assert [x["id"] for x in a] == [x["id"] for x in b] and [x["gold"] for x in a] == [x["gold"] for x in b]
    for x, y in zip(a, b):
        assert y["proxy"]["rm"] == pytest.approx(x["proxy"]["rm"], abs=1e-6)


@pytest.mark.slow
def test_score_under_accelerate_launch_equals_one_process(rm_and_data, tmp_path):
    """``accelerate launch`` with the shipped CPU config (configs/accelerate/ddp_cpu.yaml: 2 processes started
    torchrun-style, gloo): ``rewardlab score`` shards over them as under torchrun, the same rows in input order as
    one process, written once by process 0. (``accelerate launch --num_processes 2 --cpu`` starts ONE process in
    accelerate 1.x: its multi-CPU launch goes through mpirun; docs/best-of-n.md says so.)"""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from tests.launch import free_port

    d = rm_and_data
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    args = ["--model", str(d / "rm"), "--data", str(d / "singles.jsonl"), "--batch-size", "4"]
    assert main(["score", *args, "--output", str(one)]) == 0
    accelerate = shutil.which("accelerate") or str(Path(sys.executable).parent / "accelerate")
    config = Path(__file__).resolve().parents[1] / "configs" / "accelerate" / "ddp_cpu.yaml"
    launch = [accelerate, "launch", "--config_file", str(config), "--num_processes", "2"]
    launch += ["--main_process_port", str(free_port())]
    r = subprocess.run(
        [*launch, "-m", "rewardlab.cli", "score", *args, "--output", str(two)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "scoring: 21 items over 2 processes (data-parallel)" in r.stderr  # 2 processes ran, not 1
    a = [json.loads(x) for x in one.read_text().splitlines()]
    b = [json.loads(x) for x in two.read_text().splitlines()]
    assert [x["id"] for x in a] == [x["id"] for x in b] and len(a) == 21
    assert [x["score"] for x in b] == pytest.approx([x["score"] for x in a], abs=1e-6)
