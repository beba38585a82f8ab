"""A failing process stops every process of a data-parallel run (rewardlab.scoring.sharding.exchange): the outcome of
each process's part is gathered, so one process's error (a non-finite score, out of memory, a bad part) reaches the
others at the same gather instead of leaving them waiting; a process that dies outright closes its connections.
Fault injection: ``REWARDLAB_FAULT_INJECT="RANK:KIND[@STEP]"``; 2 real processes over gloo (tests.launch.spawn_ranks)."""

from __future__ import annotations

import json

import pytest
import torch
from tests.launch import spawn_ranks

from rewardlab.core.errors import RewardlabError
from rewardlab.models.reward_model import RewardModel
from rewardlab.scoring import sharding
from rewardlab.scoring.sharding import FAULT_ENV, _global_index, _reason, exchange


@pytest.fixture
def fresh_steps(monkeypatch):
    monkeypatch.setattr(sharding, "_steps_done", [0])


def test_one_process_exchange_is_the_call_itself(fresh_steps):
    assert exchange(lambda: [1, 2]) == [[1, 2]]
    with pytest.raises(RewardlabError, match="bad row"):
        exchange(lambda: (_ for _ in ()).throw(RewardlabError("bad row")))


def test_fault_injection_names_rank_kind_and_step(fresh_steps, monkeypatch):
    """``0:oom@2``: process 0's second part fails with MemoryError, its first does not; another rank's spec or a
    spec of another step does nothing; a malformed spec does nothing."""
    monkeypatch.setenv(FAULT_ENV, "0:oom@2")
    assert exchange(lambda: 1) == [1]
    with pytest.raises(MemoryError, match="injected"):
        exchange(lambda: 2)
    assert exchange(lambda: 3) == [3]  # step 3: nothing
    monkeypatch.setenv(FAULT_ENV, "1:error")
    assert exchange(lambda: 4) == [4]
    monkeypatch.setenv(FAULT_ENV, "0:nonfinite@5")
    with pytest.raises(RewardlabError, match=r"non-finite reward \(nan\) for text #1"):
        exchange(lambda: 5)


def test_reasons_are_one_line_and_indices_global():
    """A shard starting at item 11: its text #1 is the input's text #12."""
    assert _global_index("x: non-finite reward (nan) for text #1; its weights", 11) == (
        "x: non-finite reward (nan) for text #12; its weights"
    )
    assert _reason(MemoryError("cannot allocate\nmore")) == "out of memory (MemoryError: cannot allocate)"
    assert _reason(ValueError("a\nb")) == "ValueError: a"
    assert _reason(RewardlabError("--data x: bad")) == "--data x: bad"


@pytest.fixture(scope="module")
def scoring_case(tmp_path_factory, tiny_llama):
    d = tmp_path_factory.mktemp("faults")
    torch.manual_seed(0)
    RewardModel.from_backbone(tiny_llama, max_length=64).save(d / "rm")
    rows = [{"id": f"r{i}", "prompt": f"question {i}", "response": f"answer {i} " * (1 + i % 3)} for i in range(21)]
    (d / "singles.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows))
    return d


BOUND_S = 240  # generous: two fresh interpreters importing torch + transformers on a loaded 2-core machine


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind,rank1_code,message",
    [
        # 21 items over 2 processes: process 1 scores items 11..20; its text #1 is the input's text #12
        (
            "nonfinite",
            2,
            "process 1 of 2 failed in scoring (items 11..20): injected: the model gave a non-finite "
            "reward (nan) for text #12",
        ),
        (
            "oom",
            2,
            "process 1 of 2 failed in scoring (items 11..20): out of memory (MemoryError: injected: cannot "
            "allocate memory)",
        ),
        ("error", 2, "process 1 of 2 failed in scoring (items 11..20): injected fault"),
        (
            "exit",
            1,
            "lost process: another of the 2 processes stopped without reporting while this one (rank 0) "
            "was gathering scoring",
        ),
    ],
)
def test_failing_process_stops_every_process(scoring_case, tmp_path, kind, rank1_code, message):
    """Process 1 fails while scoring its shard: every process ends (exit 2; a killed process: its own exit 1)
    within the bound, with one line naming the failing process and why, no traceback, and no scores file."""
    d, out = scoring_case, tmp_path / "scores.jsonl"
    args = ["--model", str(d / "rm"), "--data", str(d / "singles.jsonl"), "--batch-size", "4", "--output", str(out)]
    results, seconds = spawn_ranks(args, "score", env={FAULT_ENV: f"1:{kind}"}, timeout=BOUND_S + 60)
    assert seconds < BOUND_S, [r[2][-500:] for r in results]
    (rc0, _, err0), (rc1, _, err1) = results
    assert rc0 == 2 and rc1 == rank1_code, (rc0, rc1, err0[-2000:], err1[-2000:])
    for rc, err in ((rc0, err0), (rc1, err1)):
        assert "Traceback" not in err, err[-3000:]
        if rc == 2:
            last = err.strip().splitlines()[-1]
            assert last.startswith("rewardlab score: error: " + message), last
    assert not out.exists()
