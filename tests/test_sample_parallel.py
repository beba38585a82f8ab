"""``rewardlab sample`` data-parallel (2 real processes over gloo): prompt groups dealt out in rounds, each under its
own seed, so the cache equals one process's byte for byte; process 0 alone writes; a process failing mid-run stops
both (exit 2, one line naming it) with the rounds already written kept, and resuming with 2 processes ends with
one process's file."""

from __future__ import annotations

import json

import pytest
from tests.launch import spawn_ranks, torchrun_train

from rewardlab.scoring.sharding import FAULT_ENV


@pytest.mark.slow
def test_two_processes_equal_one_and_a_failure_mid_run_loses_nothing(tmp_path, tiny_llama):
    """5 prompts, N = 3, batch 3 → one prompt a group, 5 groups; 2 processes take them in rounds {0, 1}, {2, 3},
    {4}. Each process's parts: 1 = prompts/tokenizer/cache, 2 = the model, 3 = round 1, 4 = round 2. Process 1
    runs out of memory in its part 4 (round 2, prompts 2..3): both stop with exit 2 naming process 1; round 1's
    two rows are on disk, equal to one process's first two rows. Resumed with 2 processes: the whole file equals
    one process's (OMP_NUM_THREADS=1 in every process, so the float arithmetic is the same)."""
    args = ["--policy", tiny_llama, "--limit", "5", "--n", "3", "--batch-size", "3", "--max-new-tokens", "6"]
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    (res,), _ = spawn_ranks([*args, "--output", str(one)], "sample", nproc=1)
    assert res[0] == 0, res[2][-3000:]
    results, seconds = spawn_ranks([*args, "--output", str(two)], "sample", env={FAULT_ENV: "1:oom@4"})
    assert seconds < 240
    for rc, _, err in results:
        assert rc == 2 and "Traceback" not in err, err[-3000:]
        assert err.strip().splitlines()[-1] == (
            "rewardlab sample: error: process 1 of 2 failed in sampling (prompts 2..3): out of memory "
            "(MemoryError: injected: cannot allocate memory)"
        )
    reference = one.read_bytes().splitlines(keepends=True)
    assert len(reference) == 5
    assert two.read_bytes() == b"".join(reference[:2])  # round 1 kept, nothing of the failed round
    results, _ = spawn_ranks([*args, "--output", str(two)], "sample")
    assert [r[0] for r in results] == [0, 0], [r[2][-3000:] for r in results]
    assert two.read_bytes() == one.read_bytes()
    rows = [json.loads(x) for x in reference]
    assert [len(r["responses"]) for r in rows] == [3] * 5


@pytest.mark.slow
def test_two_processes_uneven_groups_equal_one(tmp_path, tiny_llama):
    """7 prompts, N = 2, batch 4 → 2 prompts a group: groups [0,2) [2,4) [4,6) [6,7); rounds {0,1}, {2,3}: the last
    round's second group is the single-prompt one. Under torchrun with 2 and with 3 processes (which deals the groups
    otherwise: {0,1,2}, {3}): the same file as one process."""
    # --num-return-sequences: the alias of --n that torchrun's own parser does not take for its --nnodes & co.
    args = ["--policy", tiny_llama, "--limit", "7", "--num-return-sequences", "2", "--batch-size", "4"]
    args += ["--max-new-tokens", "5"]
    one, two, three = tmp_path / "one.jsonl", tmp_path / "two.jsonl", tmp_path / "three.jsonl"
    (res,), _ = spawn_ranks([*args, "--output", str(one)], "sample", nproc=1)
    assert res[0] == 0, res[2][-3000:]
    for out, nproc in ((two, 2), (three, 3)):
        r = torchrun_train([*args, "--output", str(out)], nproc=nproc, command="sample")  # under torchrun
        assert r.returncode == 0, r.stderr[-3000:]
        assert out.read_bytes() == one.read_bytes()
