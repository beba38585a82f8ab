"""Samplers: every epoch covers every record once, plans are pure functions of (seed, epoch), and the number of
steps per epoch never changes (the learning-rate schedule and --resume rely on it)."""

import math
from collections import Counter

import pytest
import torch

from rewardlab.data.record import Comparison
from rewardlab.training.samplers import StepPlan, pack, prompt_groups, random_plan

# 30 records over 12 prompts: prompt j has 1 + (j * 7) % 4 records (1..4)
RECORDS = [
    Comparison(f"prompt {j}", (f"a{j}{i}", f"b{j}{i}"), id=f"{j}-{i}")
    for j in range(12)
    for i in range(1 + (j * 7) % 4)
]
LENGTHS = [10 + (i * 37) % 90 for i in range(len(RECORDS))]


def test_random_plan_is_the_trainers_original_order():
    """The seeded permutation of (seed·100003 + epoch), cut in batch_size chunks, as before samplers existed."""
    perm = torch.randperm(30, generator=torch.Generator().manual_seed(5 * 100003 + 2)).tolist()
    assert random_plan(30, 8, 1, seed=5, epoch=2) == [perm[0:8], perm[8:16], perm[16:24], perm[24:30]]
    assert random_plan(30, 8, 2, seed=5, epoch=2) == [perm[0:8], perm[8:16], perm[16:24]]  # DDP drops the rest


def test_pack_worked_example():
    """Sizes (3, 1, 2, 2), capacity 4, best-fit decreasing: 3 → A (room 1); 2 → B (room 2); 2 → B (room 0);
    1 → A. Bins {0, 1} and {2, 3} for every seed; only their order changes."""
    for seed in range(5):
        assert sorted(sorted(b) for b in pack([3, 1, 2, 2], 4, seed, 0)) == [[0, 1], [2, 3]]
    assert pack([5, 1], 4, 0, 0) in ([[0], [1]], [[1], [0]])  # an item larger than the capacity goes alone


@pytest.mark.parametrize("world", [1, 2])
def test_grouped_sampler_keeps_prompts_together(world):
    s = StepPlan.sampled(RECORDS, "grouped", batch_size=6, world=world, seed=3)
    groups = prompt_groups(RECORDS)
    group_of = {i: g for g, members in enumerate(groups) for i in members}
    for epoch in range(4):
        plan = s.plan(epoch)
        assert len(plan) == s.steps_per_epoch  # the same number of steps every epoch
        seen = [i for step in plan for i in step]
        if world == 1:
            assert sorted(seen) == list(range(len(RECORDS)))  # every record exactly once
        for step in plan:
            assert len(step) <= 6 and len(step) >= world
            for g in {group_of[i] for i in step}:  # a prompt's records are all in this step
                assert set(groups[g]) <= set(step)
    assert s.plan(0) != s.plan(1)  # the composition changes between epochs
    again = StepPlan.sampled(RECORDS, "grouped", batch_size=6, world=world, seed=3)
    assert [again.step(k) for k in range(3 * s.steps_per_epoch)] == [s.step(k) for k in range(3 * s.steps_per_epoch)]
    assert sum(len(g) for g in groups) == 30 and math.ceil(30 / 6) <= s.steps_per_epoch


def test_grouped_sampler_oversized_prompt_gets_its_own_step():
    records = [Comparison("big", (f"a{i}", f"b{i}")) for i in range(5)] + [Comparison("small", ("a", "b"))]
    plan = StepPlan.sampled(records, "grouped", batch_size=3).plan(0)
    assert sorted(map(sorted, plan)) == [[0, 1, 2, 3, 4], [5]]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_token_sampler_respects_the_budget(seed):
    s = StepPlan.sampled(RECORDS, "tokens", batch_size=1, seed=seed, lengths=LENGTHS, max_tokens=200)
    counts = set()
    for epoch in range(3):
        plan = s.plan(epoch)
        counts.add(len(plan))
        assert sorted(i for step in plan for i in step) == list(range(len(RECORDS)))
        for step in plan:
            assert sum(LENGTHS[i] for i in step) <= 200 or len(step) == 1
        # sizes sorted decreasing + best fit: the step sizes depend on the lengths only
        assert sorted(len(step) for step in plan) == sorted(len(step) for step in s.plan(0))
    assert counts == {s.steps_per_epoch}
    assert s.steps_per_epoch >= math.ceil(sum(LENGTHS) / 200)


def test_step_count_does_not_depend_on_the_seed():
    counts = Counter(
        StepPlan.sampled(RECORDS, "tokens", lengths=LENGTHS, max_tokens=150, seed=seed).steps_per_epoch
        for seed in range(10)
    )
    assert len(counts) == 1
    counts = Counter(
        StepPlan.sampled(RECORDS, "grouped", batch_size=5, seed=seed).steps_per_epoch for seed in range(10)
    )
    assert len(counts) == 1


def test_sampler_argument_errors():
    with pytest.raises(ValueError, match="sampler must be"):
        StepPlan.sampled(RECORDS, "bogus")
    with pytest.raises(ValueError, match="max_tokens"):
        StepPlan.sampled(RECORDS, "tokens")
    with pytest.raises(ValueError, match="at least 4 records"):
        StepPlan.sampled(RECORDS[:1], "grouped", batch_size=8, world=4)
