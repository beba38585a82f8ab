"""The embedded synthetic data set: deterministic, checkable, and without surface give-aways."""

from __future__ import annotations

import collections
import random

import pytest

from rewardlab.data import split_by_prompt, synthetic
from rewardlab.data.record import Comparison
from rewardlab.data.synthetic import TASKS, Task, describe, generate, ground_truth_reward

N = 2000


@pytest.fixture(scope="module")
def records() -> list[Comparison]:
    return generate(N, seed=0)


def test_deterministic_per_seed():
    a, b = generate(300, seed=3), generate(300, seed=3)
    assert a == b
    assert [r.meta for r in a] == [r.meta for r in b]
    other = generate(300, seed=4)
    assert sum(x.prompt != y.prompt for x, y in zip(a, other)) > 250
    assert [r.id for r in other[:2]] == ["synthetic-4-0", "synthetic-4-1"]


def test_prefix_stable():
    assert generate(50, seed=1) == generate(120, seed=1)[:50]


def test_record_shape(records):
    for i, r in enumerate(records):
        assert isinstance(r.prompt, str) and r.prompt
        assert r.k == 2 and r.chosen in (0, 1)
        assert r.responses[0] != r.responses[1]
        assert r.id == f"synthetic-0-{i}"
        assert r.source in TASKS and r.meta["task"] == r.source
        assert r.scores is not None and len(r.scores) == 2


def test_checker_ranks_chosen_above_rejected(records):
    for r in records:
        chosen, other = r.responses[r.chosen], r.responses[1 - r.chosen]
        good, bad = ground_truth_reward(r.meta, chosen), ground_truth_reward(r.meta, other)
        assert good > bad, (r.prompt, r.responses, r.chosen)
        assert r.scores == tuple(TASKS[r.source].reward(r.meta, x) for x in r.responses)
        assert ground_truth_reward(r, chosen) == good  # a record works in place of its meta


def test_task_shares_roughly_balanced(records):
    counts = collections.Counter(r.source for r in records)
    assert set(counts) == set(TASKS)
    assert 4 <= len(TASKS) <= 6
    total_weight = sum(t.weight for t in TASKS.values())
    for name, task in TASKS.items():
        expected = task.weight / total_weight
        assert abs(counts[name] / N - expected) < 0.04, (name, counts[name] / N, expected)


def test_chosen_position_balanced(records):
    first = sum(r.chosen == 0 for r in records) / N
    assert 0.46 < first < 0.54
    for name in TASKS:  # and within each task, so position is no cue per task either
        sub = [r for r in records if r.source == name]
        assert 0.4 < sum(r.chosen == 0 for r in sub) / len(sub) < 0.6, name


def test_length_does_not_predict_chosen(records):
    longer_chosen = sum(len(r.responses[r.chosen]) > len(r.responses[1 - r.chosen]) for r in records) / N
    assert 0.35 <= longer_chosen <= 0.65
    for name in TASKS:
        sub = [r for r in records if r.source == name]
        share = sum(len(r.responses[r.chosen]) > len(r.responses[1 - r.chosen]) for r in sub) / len(sub)
        assert 0.3 <= share <= 0.7, (name, share)


def test_prompts_mostly_unique(records):
    assert len({r.prompt for r in records}) / N > 0.95


def test_held_out_prompts_are_new(records):
    train, held = split_by_prompt(records, 0.1, seed=0)
    seen = {r.prompt for r in train}
    assert held and not any(r.prompt in seen for r in held)


def test_wording_varies_on_both_sides(records):
    # The same response text turns up on the chosen side and on the rejected side: memorising strings fails.
    chosen = collections.Counter(r.responses[r.chosen] for r in records)
    rejected = collections.Counter(r.responses[1 - r.chosen] for r in records)
    assert len(set(chosen) & set(rejected)) > 20


def test_task_api():
    rng = random.Random(0)
    for name, task in TASKS.items():
        assert isinstance(task, Task) and task.name == name and task.description
        prompt, good, bad, meta = task.make(rng)
        meta = {"task": name, **meta}
        assert task.reward(meta, good) > task.reward(meta, bad)
        assert ground_truth_reward(meta, good) == task.reward(meta, good)


def test_checkers_on_hand_written_responses():
    kw = {"task": "keyword", "topic": "the ocean", "word": "lantern"}
    assert ground_truth_reward(kw, "At sea, a Lantern glowed.") == 1.0
    assert ground_truth_reward(kw, "At sea, a lamp glowed.") == 0.0

    cat = {"task": "category", "thing": "hammer", "category": "fruit", "true_category": "tool", "answer": "no"}
    assert ground_truth_reward(cat, "No, a hammer is a tool.") == pytest.approx(1.0)
    assert ground_truth_reward(cat, "Yes. A hammer is a fruit.") == 0.0

    lst = {"task": "list_count", "category": "fruit", "n": 3}
    assert ground_truth_reward(lst, "Here you go: apple, pear and plum.") == 1.0
    assert ground_truth_reward(lst, "1. apple\n2. pear\n3. plum\n4. kiwi") == 0.75
    assert ground_truth_reward(lst, "- apple\n- hammer\n- plum") == pytest.approx(2 / 3)

    harmful, benign = {"task": "refusal", "harmful": True}, {"task": "refusal", "harmful": False}
    refusal = "I'm sorry, but I can\u2019t help with that."
    assert ground_truth_reward(harmful, refusal) == 1.0 and ground_truth_reward(benign, refusal) == 0.0
    assert ground_truth_reward(benign, synthetic.HELPFUL_ANSWERS[0]) == 1.0

    add = {"task": "arithmetic", "a": 7, "b": 8, "answer": 15}
    assert ground_truth_reward(add, "7 + 8 = 15.") == 1.0
    assert ground_truth_reward(add, "The answer is 13.") == 0.5


def test_templates_do_not_leak_keywords_or_refusals():
    for template in synthetic.KEYWORD_SENTENCES:
        text = template.format(topic="", Topic="", word="")
        assert not any(synthetic._has_word(text, w) for w in synthetic.KEYWORDS), template
    for topic in synthetic.TOPICS:
        assert not any(synthetic._has_word(topic, w) for w in synthetic.KEYWORDS), topic
    assert all(synthetic.is_refusal(r) for r in synthetic.REFUSALS)
    assert not any(synthetic.is_refusal(h) for h in synthetic.HELPFUL_ANSWERS)


def test_describe_mentions_every_task():
    text = describe()
    assert "\n" not in text
    assert all(name in text for name in TASKS)
