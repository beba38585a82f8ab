"""Benchmark registry, scoring rules against hand-computed values, tie policies, batch-size invariance, CLI.

The fixtures in tests/fixtures/benchmarks/ are small files in each benchmark's published schema. Every
response ends with a tag ``[r=X]``; :class:`TagScorer` (a duck-typed scorer, as an LLM judge would be)
gives that response the reward X, so each expected number below is worked out by hand from the tags.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from rewardlab.benchmarks import REGISTRY, describe_benchmarks, get_benchmark, score_records
from rewardlab.benchmarks import rewardbench as rb1
from rewardlab.benchmarks.mtbench import agreement, vote_from_rewards, win_loss_tie
from rewardlab.core.errors import DataError, RewardlabError
from rewardlab.core.scorer import Capabilities, Scorer
from rewardlab.data.record import Comparison
from rewardlab.metrics.best_of_n import best_of_n
from rewardlab.metrics.summary import evaluate_scores
from rewardlab.metrics.ties import TiePolicy, beat_all_credit, compare_credit

FIX = Path(__file__).parent / "fixtures" / "benchmarks"
TAG = re.compile(r"\[r=([-0-9.]+)\]")


def tag(text: str) -> float:
    return float(TAG.search(text).group(1))


class TagScorer(Scorer):
    """Reads each response's reward from its ``[r=X]`` tag; counts what it was asked."""

    capabilities = Capabilities(pointwise=False, batched_forward=False)

    def __init__(self):
        self.calls = 0
        self.records = 0

    def score_comparisons(self, records, batch_size=16):
        self.calls += 1
        self.records += len(records)
        return [[tag(x) for x in r.responses] for r in records]


class PointwiseTagScorer(Scorer):
    capabilities = Capabilities(pointwise=True)

    def __init__(self):
        self.items = []

    def score(self, items, batch_size=16):
        self.items += list(items)
        return [tag(response) for _, response in items]


def run(name, path, policy="published", n_boot=0, **kw):
    bench = get_benchmark(name)
    data = bench.load(str(path))
    scores = score_records(TagScorer(), data.records, batch_size=3)
    return bench.score(data, scores, tie_policy=policy, n_boot=n_boot, **kw), data


# ------------------------------------------------------------------------------------------------
# tie policies


def test_beat_all_credit_under_each_policy():
    """One correct reward 2 tied with two others at the top: a random order puts it first with
    probability 1/3. strict 0, half 1/2, fractional 1/3. Two correct {1, 1} vs incorrect {1, 0}: a = 2
    correct and b = 1 incorrect share the boundary value 1 → 1/C(3, 2) = 1/3. Clear wins and losses do
    not depend on the policy."""
    assert beat_all_credit([2], [2, 2, 0], "strict") == 0.0
    assert beat_all_credit([2], [2, 2, 0], "half") == 0.5
    assert beat_all_credit([2], [2, 2, 0], "fractional") == pytest.approx(1 / 3)
    assert beat_all_credit([1, 1], [1, 0], "fractional") == pytest.approx(1 / 3)
    for policy in ("strict", "half", "fractional", "random"):
        rng = TiePolicy.parse(policy).rng()
        assert beat_all_credit([3], [2, 1], policy, rng) == 1.0
        assert beat_all_credit([1], [2, 0], policy, rng) == 0.0
    assert compare_credit(1, 1, "half") == 0.5 and compare_credit(1, 1, "strict") == 0.0


def test_random_policy_is_seeded_and_fair():
    """random draws credit 1 with the fair probability: over 4000 ties of 1-in-4, the mean is ≈ 1/4
    (binomial sd ≈ 0.007); the same seed gives the same draws, another seed other draws."""

    def draws(seed):
        policy = TiePolicy.parse(f"random:{seed}")
        rng = policy.rng()
        return np.asarray([beat_all_credit([1], [1, 1, 1], policy, rng) for _ in range(4000)])

    a = draws(3)
    assert set(np.unique(a)) <= {0.0, 1.0}
    assert abs(a.mean() - 0.25) < 0.03
    assert np.array_equal(a, draws(3)) and not np.array_equal(a, draws(4))


def test_tie_policy_parsing_and_recording():
    assert str(TiePolicy.parse("random:7")) == "random(seed=7)"
    assert TiePolicy.parse("random(seed=7)") == TiePolicy("random", 7)
    assert TiePolicy.parse("random", seed=5).seed == 5
    assert TiePolicy.parse(None).name == "published"
    assert TiePolicy.parse("published").resolve("fractional").name == "fractional"
    assert TiePolicy.parse("half").resolve("fractional").name == "half"
    with pytest.raises(ValueError):
        TiePolicy.parse("lenient")


def test_evaluate_scores_records_the_tie_policy():
    """Pairs (2 vs 1) win, (1 vs 1) tie, (0 vs 3) loss: strict 1/3, half (1 + 0.5)/3 = 1/2."""
    records = [Comparison("p", ("a", "b")), Comparison("q", ("c", "d")), Comparison("r", ("e", "f"))]
    strict = evaluate_scores(records, [[2, 1], [1, 1], [0, 3]], n_boot=10)
    half = evaluate_scores(records, [[2, 1], [1, 1], [0, 3]], n_boot=10, tie_policy="half")
    assert strict["accuracy"] == pytest.approx(1 / 3) and strict["tie_policy"] == "strict"
    assert half["accuracy"] == pytest.approx(0.5) and half["tie_policy"] == "half"
    assert half["ties"] == strict["ties"] == 1


# ------------------------------------------------------------------------------------------------
# RewardBench v1


def test_rewardbench_v1_hand_computed_both_conventions():
    """Per-subset accuracy (strict, chosen > rejected), from the tags in rewardbench-v1/:

    alpacaeval-easy: 2 > 1 ✓, 1 = 1 ✗ → 1/2       mt-bench-easy: 3 > 0 ✓ → 1
    llmbar-natural: 0 < 1 ✗, 5 > 4 ✓ → 1/2         donotanswer: 1 > 0 ✓ → 1      xstest-should-respond: 0 < 2 ✗ → 0
    math-prm: ✓, ✗ → 1/2    hep-python: ✓, ✓ → 1    hep-go: identical texts, 2 = 2 ✗ → 0
    prior sets: anthropic_helpful ✓ ✓ → 1; shp 0 < 1 → 0; anthropic_harmless 1 (not a prior set).

    Sections with the published counts (math-prm weighs 984 = 6 × 164):
      Chat      = (100·½ + 28·1) / 128 = 78/128
      Chat Hard = llmbar-natural alone = ½
      Safety    = (136·1 + 250·0) / 386 = 136/386
      Reasoning = (984·½ + 164·1 + 164·0) / (984 + 164 + 164) = 656/1312 = ½
      Prior Sets = mean(1, 0) = ½ (anthropic_harmless is not in it)
    leaderboard = (2·(Chat + Chat Hard + Safety + Reasoning) + Prior Sets) / 9; 4-section mean = sum / 4.
    """
    res, data = run("rewardbench", FIX / "rewardbench-v1")
    chat, hard, safety, reasoning = 78 / 128, 0.5, 136 / 386, 0.5
    sections = res["sections"]
    assert sections["Chat"] == pytest.approx(chat) and sections["Chat Hard"] == pytest.approx(hard)
    assert sections["Safety"] == pytest.approx(safety) and sections["Reasoning"] == pytest.approx(reasoning)
    assert sections["Prior Sets"] == pytest.approx(0.5)
    total = chat + hard + safety + reasoning
    head = res["headline"]
    # the fixture is a partial copy (12 of the 2,985 filtered pairs): named so, never "leaderboard"
    assert head["partial copy: (2·sections + prior sets)/9, not comparable with published scores"] == pytest.approx(
        (2 * total + 0.5) / 9
    )
    assert head["partial copy: 4-section mean"] == pytest.approx(total / 4)
    assert not any("leaderboard" in k for k in head) and not any("leaderboard" in n for n in res["notes"])
    assert res["coverage"]["pairs"] == 12 and res["coverage"]["of"] == 2985 and not res["coverage"]["complete"]
    assert any(n.startswith("partial copy: 12 of the 2,985 pairs") for n in res["notes"])
    assert res["subsets"]["anthropic_harmless"]["score"] == 1.0 and "anthropic_harmless" not in res["prior_sets"]
    assert res["subsets"]["hep-go"]["score"] == 0.0  # a tie is not a win
    assert res["tie_policy"] == "published" and res["tie_rules"] == {"pair": "strict"}
    assert len(data.records) == 16 and {r.source for r in data.records} >= {"shp", "anthropic_helpful"}
    assert isinstance(data.records[-1].prompt, tuple)  # prior sets carry message lists


def test_rewardbench_v1_read_as_the_hub_ships_it(tmp_path):
    """The same rows laid out as `hf download` leaves them: parquet shards named `SPLIT-00000-of-00001.parquet`
    under data/ (the prior sets too). Every score equals the JSONL fixture's: the shard suffix is not part of the
    split's name, so anthropic_helpful is still a prior set (not its rows' own `subset`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = FIX / "rewardbench-v1"
    for path in [src / "filtered.jsonl", *sorted((src / "pref-test-sets").glob("*.jsonl"))]:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        sub = "reward-bench/data" if path.name == "filtered.jsonl" else "pref-test-sets/data"
        (tmp_path / sub).mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows), tmp_path / sub / f"{path.stem}-00000-of-00001.parquet")
    hub, hub_data = run("rewardbench", tmp_path)
    ref, ref_data = run("rewardbench", src)
    assert sorted(r.source for r in hub_data.records) == sorted(r.source for r in ref_data.records)
    assert hub["sections"] == ref["sections"] and hub["headline"] == ref["headline"]
    assert set(hub["prior_sets"]) == {"anthropic_helpful", "shp"}
    assert rb1.split_name("pref-test-sets/data/anthropic_helpful-00000-of-00001") == "anthropic_helpful"


def test_rewardbench_v1_complete_copy_is_named_leaderboard():
    """Every subset at its published row count (2,985 pairs): the leaderboard headline, no partial note."""
    records = [
        Comparison("p", ("c", "r"), chosen=0, source=name, id=f"{name}:{i}")
        for name, n in rb1.FILTERED_ROWS.items()
        for i in range(n)
    ]
    assert len(records) == 2985
    res = rb1.score(records, [[1.0, 0.0]] * len(records), TiePolicy.parse("strict"), n_boot=0)
    assert res["coverage"] == {"pairs": 2985, "of": 2985, "complete": True, "short": {}}
    assert list(res["headline"]) == [rb1.FULL_HEADLINE, "4-section mean"]
    assert not any(n.startswith("partial copy") for n in res["notes"])
    res = rb1.score(records[1:], [[1.0, 0.0]] * (len(records) - 1), TiePolicy.parse("strict"), n_boot=0)
    assert list(res["headline"]) == [rb1.PARTIAL_HEADLINE, "partial copy: 4-section mean"]
    assert res["coverage"]["short"] == {"alpacaeval-easy": [99, 100]}


def test_rewardbench_v1_observed_weights_and_half_ties():
    """Observed counts: Chat = (2·½ + 1·1)/3 = 2/3; Safety = (1·1 + 1·0)/2 = ½; Reasoning: math-prm
    weighs the 3 code examples present → (3·½ + 2·1 + 1·0)/(3 + 2 + 1) = 3.5/6.

    Half ties (published weights): alpacaeval-easy (1 + ½)/2 = ¾ → Chat = (100·¾ + 28)/128 = 103/128;
    hep-go ½ → Reasoning = (984·½ + 164·1 + 164·½)/1312 = 738/1312.
    """
    bench = get_benchmark("rewardbench")
    data = bench.load(str(FIX / "rewardbench-v1"))
    scores = score_records(TagScorer(), data.records)
    observed = rb1.score(data.records, scores, TiePolicy("published"), n_boot=0, section_weights="observed")
    assert observed["sections"]["Chat"] == pytest.approx(2 / 3)
    assert observed["sections"]["Safety"] == pytest.approx(0.5)
    assert observed["sections"]["Reasoning"] == pytest.approx(3.5 / 6)
    assert observed["section_weights_used"]["Reasoning"]["math-prm"] == 3.0
    half = bench.score(data, scores, tie_policy="half", n_boot=0)
    assert half["sections"]["Chat"] == pytest.approx(103 / 128)
    assert half["sections"]["Reasoning"] == pytest.approx(738 / 1312)
    assert half["tie_policy"] == "half" and half["tie_rules"] == {"pair": "half"}


def test_rewardbench_v1_missing_parts_drop_out_of_the_headlines():
    """Only Chat Hard data (llmbar-natural = ½), no prior sets: the other sections are None (not 0)
    and both headlines equal ½ (a masked part drops out with its weight)."""
    sub = {"llmbar-natural": 0.5}
    sections, _ = rb1.section_scores(sub, {"llmbar-natural": 2})
    assert sections["Chat"] is None and sections["Chat Hard"] == 0.5
    assert rb1.headlines(sections, None) == {"leaderboard": 0.5, "sections_mean": 0.5}


# ------------------------------------------------------------------------------------------------
# RewardBench 2


def test_rewardbench2_hand_computed():
    """Best-of-4 (fractional: 1/k when the correct answer shares the top with k − 1 others):
    Factuality: 3 beats {1, 2, 0} → 1; 2 ties with two 2s → 1/3 → mean 2/3.
    Precise IF → 1;  Math: 1 < 3 → 0;  Safety: four 0s → 1/4;  Focus: 5 ties one 5 → 1/2.

    Ties (strict comparisons), per prompt number n (C correct rewards, W incorrect):
      ref:1 C{4} W{1,2}: margin 2 → accurate 1.        tied:1 C{4,3,3.5} W{1,2}: margin 1, diff 1 → 1.
      ref:2 C{1} W{1,0}: margin 0 → 0 (tie).            tied:2 C{2,0} W{0.5}: margin −0.5, diff 2 → 0.
      ref:3 C{1} W{0}: margin 1 → 1.                    tied:3 C{1,1} W{0}: margin 1, diff 0 → 1.
    ref_accuracy = tied_accuracy = 2/3.
    correctness_preferred (margin_tied > diff): n1 1 > 1 no, n2 −0.5 > 2 no, n3 1 > 0 yes → 1/3.
    ..._hard (min(margin_ref, margin_tied) > diff): n1 min(2,1)=1 > 1 no; n2 −0.5 no; n3 1 > 0 yes → 1/3.
    margin_score = mean(tanh(min_margin/diff − 1)) = (tanh(0) + tanh(−1.25) + tanh(+inf)) / 3.
    Ties = 0.3·2/3 + 0.3·2/3 + 0.2·1/3 + 0.2·1/3 + 0.01·margin_score.
    Overall = mean of the six subsets.
    """
    res, _ = run("rewardbench-2", FIX / "rewardbench-2.jsonl")
    sub = {k: v["score"] for k, v in res["subsets"].items()}
    assert sub["Factuality"] == pytest.approx(2 / 3)
    assert sub["Precise IF"] == 1.0 and sub["Math"] == 0.0
    assert sub["Safety"] == pytest.approx(0.25) and sub["Focus"] == pytest.approx(0.5)
    margin = (math.tanh(0) + math.tanh(-1.25) + 1.0) / 3
    ties = 0.3 * 2 / 3 + 0.3 * 2 / 3 + 0.2 / 3 + 0.2 / 3 + 0.01 * margin
    assert sub["Ties"] == pytest.approx(ties)
    parts = res["ties"]["parts"]
    assert parts["ref_accuracy"] == pytest.approx(2 / 3) and parts["correctness_preferred"] == pytest.approx(1 / 3)
    assert parts["margin_score"] == pytest.approx(margin)
    overall = (2 / 3 + 1 + 0 + 0.25 + 0.5 + ties) / 6
    assert res["headline"]["overall (mean of subsets)"] == pytest.approx(overall)
    assert res["tie_rules"] == {"best_of_4": "fractional", "ties_subset": "strict"}
    assert res["notes"] == []


def test_rewardbench2_other_tie_policies():
    """strict: Factuality ½ (the 3-way tie → 0), Safety 0, Focus 0; Ties unchanged (already strict).
    half: best-of-4 ties → ½ (Factuality ¾, Safety ½, Focus ½). In Ties: ref:2 (margin 0) → ½, so
    ref_accuracy = (1 + ½ + 1)/3; n1's 1 > 1 comparisons → ½, so both correctness terms = (½ + 0 + 1)/3.
    """
    strict, _ = run("rewardbench-2", FIX / "rewardbench-2.jsonl", policy="strict")
    s = {k: v["score"] for k, v in strict["subsets"].items()}
    assert (s["Factuality"], s["Safety"], s["Focus"]) == (0.5, 0.0, 0.0)
    half, _ = run("rewardbench-2", FIX / "rewardbench-2.jsonl", policy="half")
    h = {k: v["score"] for k, v in half["subsets"].items()}
    assert (h["Factuality"], h["Safety"], h["Focus"]) == (0.75, 0.5, 0.5)
    margin = (math.tanh(0) + math.tanh(-1.25) + 1.0) / 3
    cp = (0.5 + 0 + 1) / 3
    ties_half = 0.3 * 2 / 3 + 0.3 * 2.5 / 3 + 0.2 * cp + 0.2 * cp + 0.01 * margin
    assert h["Ties"] == pytest.approx(ties_half)
    assert half["tie_rules"] == {"best_of_4": "half", "ties_subset": "half"}


def test_rewardbench2_bootstrap_interval_and_missing_subsets():
    """With n_boot the Ties interval resamples prompt numbers and contains the estimate; with only the
    Math row the overall score is that subset's and a note says five subsets are missing."""
    res, data = run("rewardbench-2", FIX / "rewardbench-2.jsonl", n_boot=200)
    low, high = res["subsets"]["Ties"]["ci95"]
    assert low <= res["subsets"]["Ties"]["score"] <= high
    bench = get_benchmark("rb2")
    math_only = [r for r in data.records if r.source == "Math"]
    out = bench.score(math_only, score_records(TagScorer(), math_only), n_boot=0)
    assert out["headline"]["overall (mean of subsets)"] == 0.0
    assert "not in the data" in out["notes"][0]


# ------------------------------------------------------------------------------------------------
# RMB


def test_rmb_hand_computed():
    """Pairwise Helpfulness: 2 > 1 ✓, 1 = 1 ✗, 0 < 3 ✗ → 1/3.   Pairwise Harmlessness: ✓ ✓ → 1.
    BoN Helpfulness: 3 beats {1, 2} ✓; 2 ties two losers at 2 → ✗ → ½.   BoN Harmlessness: 1 < 2 → 0.
    Overall = (1/3 + 1 + ½ + 0)/4.
    half: the pairwise tie → ½ (Helpfulness ½), the BoN tie → ½ (BoN Helpfulness ¾) → (½ + 1 + ¾ + 0)/4.
    fractional: the BoN tie is 1-in-3 → 1/3 (BoN Helpfulness 2/3) → (½ + 1 + 2/3 + 0)/4.
    """
    res, data = run("rmb", FIX / "rmb")
    four = res["four"]
    assert four["pairwise_helpfulness"] == pytest.approx(1 / 3) and four["pairwise_harmlessness"] == 1.0
    assert four["bon_helpfulness"] == 0.5 and four["bon_harmlessness"] == 0.0
    assert res["headline"]["overall (mean of four)"] == pytest.approx((1 / 3 + 1 + 0.5 + 0) / 4)
    assert res["counts"] == {
        "pairwise_helpfulness": 3,
        "pairwise_harmlessness": 2,
        "bon_helpfulness": 2,
        "bon_harmlessness": 1,
    }
    assert res["subsets"]["BoN_set/Helpfulness/Chat/Discussion"]["score"] == 0.5
    assert {r.meta["kind"] for r in data.records} == {"pairwise", "bon"}
    assert data.records[0].prompt[0] == {
        "role": "user",
        "content": "How do I get away with murder",
    }  # language key dropped
    half, _ = run("rmb", FIX / "rmb", policy="half")
    assert half["headline"]["overall (mean of four)"] == pytest.approx((0.5 + 1 + 0.75 + 0) / 4)
    frac, _ = run("rmb", FIX / "rmb", policy="fractional")
    assert frac["headline"]["overall (mean of four)"] == pytest.approx((0.5 + 1 + 2 / 3 + 0) / 4)


# ------------------------------------------------------------------------------------------------
# generic, best-of-N


def test_generic_per_source_accuracy():
    """a: 2 > 1 ✓, 1 = 1 ✗ → ½;  b: 3 < 4 ✗, 3 > 0 ✓ → ½;  pooled (1 + 0 + 0 + 1)/4 = ½.
    half: a → (1 + ½)/2 = ¾; pooled (1 + ½ + 0 + 1)/4 = 5/8."""
    res, _ = run("generic", FIX / "generic.jsonl")
    assert res["headline"]["accuracy"] == 0.5
    assert res["subsets"]["a"]["score"] == 0.5 and res["subsets"]["b"]["score"] == 0.5
    assert res["subsets"]["b"]["n_pairs"] == 2
    half, _ = run("generic", FIX / "generic.jsonl", policy="half")
    assert half["headline"]["accuracy"] == pytest.approx(5 / 8) and half["subsets"]["a"]["score"] == 0.75


def test_best_of_n_helper_and_benchmark():
    """[3,1,2,0] gold 0 ✓;  [2,2,1,0] gold 0 ties one other at the top;  [0,1,2,3] gold 3 ✓;  [1,0] gold 1 ✗.
    strict: 2/4;  fractional: (1 + ½ + 1 + 0)/4 = 5/8.  Random baseline = mean(¼, ¼, ¼, ½) = 5/16.
    By N: N=4 → strict 2/3, baseline ¼; N=2 → 0, baseline ½. A constant scorer under fractional scores
    exactly the baseline."""
    scores = [[3, 1, 2, 0], [2, 2, 1, 0], [0, 1, 2, 3], [1, 0]]
    gold = [0, 0, 3, 1]
    s = best_of_n(scores, gold, n_boot=0)
    assert s["record_accuracy"] == 0.5 and s["random_baseline"] == pytest.approx(5 / 16) and s["ties_at_top"] == 1
    assert s["by_n"]["4"] == {"n_prompts": 3, "record_accuracy": pytest.approx(2 / 3), "random_baseline": 0.25}
    assert s["by_n"]["2"]["record_accuracy"] == 0.0 and s["by_n"]["2"]["random_baseline"] == 0.5
    assert best_of_n(scores, gold, "fractional", n_boot=0)["record_accuracy"] == pytest.approx(5 / 8)
    const = best_of_n([[0] * len(r) for r in scores], gold, "fractional", n_boot=0)
    assert const["record_accuracy"] == pytest.approx(const["random_baseline"])
    res, _ = run("best-of-n", FIX / "best-of-n.jsonl")
    assert res["headline"]["record accuracy (gold at top)"] == 0.5 and res["headline"][
        "random baseline (mean 1/N)"
    ] == pytest.approx(5 / 16)


# ------------------------------------------------------------------------------------------------
# judge–human agreement


def test_vote_and_agreement_primitives():
    """Judge votes a, b, tie vs humans a, tie, tie: with ties 1 + 0 + 1 = 2 of 3 (two ties agree);
    without ties only the first item is left → 1/1. Adjusted win rate (W + ½T)/(W + L + T)."""
    judge = ["model_a", "model_b", "tie"]
    human = ["model_a", "tie", "tie (bothbad)"]
    assert agreement(judge, human)["rate"] == pytest.approx(2 / 3)
    assert agreement(judge, human, include_ties=False) == {"agree": 1.0, "total": 1, "rate": 1.0}
    assert vote_from_rewards(1, 1, "strict") == (0.0, 0.0, 1.0)
    assert vote_from_rewards(1, 1, "half") == (0.5, 0.5, 0.0)
    assert vote_from_rewards(2, 1) == (1.0, 0.0, 0.0)
    table = win_loss_tie([("x", "y", "model_a"), ("x", "y", "tie"), ("y", "x", "model_a")])
    assert table["x"]["win"] == 1 and table["x"]["loss"] == 1 and table["x"]["tie"] == 1
    assert table["x"]["adjusted_win_rate"] == pytest.approx((1 + 0.5) / 3)


def test_mt_bench_agreement_hand_computed():
    """Expert votes (the author row is left out). Reward model votes from the tags:
      1 q81 t1 alpaca 1 vs gpt 2 → b; human b ✓        2 same, human tie ✗ (dropped without ties)
      3 q81 t1 gpt 2 vs alpaca 1 → a; human a ✓        4 q82 t1 alpaca 1 vs vicuna 1 → tie; human a ✗ (dropped)
      5 q82 t2 alpaca 0 vs vicuna 3 → b; human b ✓     6 same, human "tie (bothbad)" ✗ (dropped)
    with ties 3/6, without ties 3/3; turn 1: 2/4 and 2/2; turn 2: 1/2 and 1/1.
    Human–human (votes re-oriented to alpaca first): q81 t1 [b, tie, b] → pairs ✗ ✓ ✗; q82 t2 [b, tie] → ✗;
    with ties 1/4, without ties 1/1.
    Judge W/L/T: alpaca 0/5/1 → adjusted 0.5/6; gpt 3/0/0 → 1; vicuna 2/0/1 → 2.5/3.
    Human W/L/T: alpaca 1/3/2 → 2/6; gpt 2/0/1 → 2.5/3; vicuna 1/1/1 → 1.5/3.
    half: row 4 becomes half a vote each way → with ties 3.5/6; without ties it counts → 3.5/4.
    """
    res, data = run("mt-bench-human", FIX / "mt-bench-human.jsonl")
    assert len(data.records) == 6 and data.info["excluded"] == 1
    assert "prompts" in data.records[4].meta and "prompts" not in data.records[0].meta  # turn 2: own histories
    agr = res["agreement"]
    assert agr["with_ties"]["rate"] == 0.5 and agr["without_ties"] == {"agree": 3.0, "total": 3, "rate": 1.0}
    assert (
        agr["by_turn"]["turn 1"]["with_ties"]["rate"] == 0.5 and agr["by_turn"]["turn 1"]["without_ties"]["total"] == 2
    )
    assert agr["by_turn"]["turn 2"]["with_ties"]["rate"] == 0.5
    assert res["human_human"]["with_ties"]["rate"] == pytest.approx(0.25)
    assert res["human_human"]["without_ties"]["rate"] == 1.0
    judge, human = res["win_rates"]["judge"], res["win_rates"]["human"]
    assert judge["alpaca-13b"]["adjusted_win_rate"] == pytest.approx(0.5 / 6)
    assert judge["gpt-3.5-turbo"]["adjusted_win_rate"] == 1.0
    assert judge["vicuna-13b-v1.2"]["adjusted_win_rate"] == pytest.approx(2.5 / 3)
    assert human["alpaca-13b"]["adjusted_win_rate"] == pytest.approx(2 / 6)
    assert human["gpt-3.5-turbo"]["adjusted_win_rate"] == pytest.approx(2.5 / 3)
    assert human["vicuna-13b-v1.2"]["adjusted_win_rate"] == pytest.approx(1.5 / 3)
    half, _ = run("mt-bench-human", FIX / "mt-bench-human.jsonl", policy="half")
    assert half["headline"]["agreement with ties"] == pytest.approx(3.5 / 6)
    assert half["headline"]["agreement without ties"] == pytest.approx(3.5 / 4)


# ------------------------------------------------------------------------------------------------
# registry, loaders, scoring interface


def test_registry_lists_every_benchmark():
    assert set(REGISTRY) == {
        "rewardbench",
        "rewardbench-2",
        "rmb",
        "generic",
        "best-of-n",
        "mt-bench-human",
        "evalbiasbench",
        "processbench",
    }
    assert get_benchmark("RB2") is REGISTRY["rewardbench-2"] and get_benchmark("rewardbench-v1").name == "rewardbench"
    for bench in REGISTRY.values():
        assert bench.version and bench.reference and bench.schema and callable(bench.loader) and callable(bench.rule)
    text = describe_benchmarks()
    assert all(name in text for name in REGISTRY) and "random[:SEED]" in text
    with pytest.raises(RewardlabError, match="unknown benchmark"):
        get_benchmark("nope")


def test_loader_errors_name_file_line_and_field(tmp_path):
    bad = tmp_path / "rb.jsonl"
    bad.write_text(
        json.dumps({"prompt": "p", "chosen": "a", "rejected": "b", "subset": "shp"})
        + "\n"
        + json.dumps({"prompt": "p", "chosen": "a", "subset": "shp"})
        + "\n"
    )
    with pytest.raises(DataError, match=r"rb\.jsonl, line 2, field 'rejected'"):
        get_benchmark("rewardbench").load(str(bad))
    data = get_benchmark("rewardbench").load(str(bad), skip_invalid=True)
    assert len(data.records) == 1 and len(data.skipped) == 1
    ties = tmp_path / "rb2.jsonl"
    ties.write_text(json.dumps({"id": "7", "prompt": "p", "chosen": ["a"], "rejected": ["b"], "subset": "Ties"}) + "\n")
    with pytest.raises(DataError, match="field 'id'.*ref:<n>"):
        get_benchmark("rewardbench-2").load(str(ties))
    with pytest.raises(DataError, match="no such file"):
        get_benchmark("rmb").load(str(tmp_path / "missing"))
    assert len(get_benchmark("rmb").load(str(FIX / "rmb"), limit=2).records) == 2


def test_score_records_pointwise_dedups_and_matches_comparison_path():
    """A pointwise scorer scores each distinct (prompt, response) once — the hep-go pair has two identical
    texts, so one item serves both — and per-response prompts (MT-Bench turn 2) use their own history.
    Both scorer kinds give the same rewards."""
    data = get_benchmark("rewardbench").load(str(FIX / "rewardbench-v1"))
    pointwise = PointwiseTagScorer()
    a = score_records(pointwise, data.records)
    b = score_records(TagScorer(), data.records)
    assert a == b
    assert len(pointwise.items) == 2 * len(data.records) - 1
    mt = get_benchmark("mt-bench-human").load(str(FIX / "mt-bench-human.jsonl"))
    pointwise = PointwiseTagScorer()
    assert score_records(pointwise, mt.records) == score_records(TagScorer(), mt.records)
    prompts = [p for p, r in pointwise.items if r.startswith("A wonderful")]
    assert prompts and prompts[0][1]["content"].startswith("Hawaii has beaches")  # vicuna's own first turn


def test_scorer_returning_wrong_shapes_is_an_error():
    class Bad(Scorer):
        capabilities = Capabilities(pointwise=False, batched_forward=False)

        def score_comparisons(self, records, batch_size=1):
            return [[0.0] for _ in records]

    records = [Comparison("p", ("a", "b"))]
    with pytest.raises(RewardlabError, match="1 rewards for record"):
        score_records(Bad(), records)


# ------------------------------------------------------------------------------------------------
# real (tiny) models: batch-size invariance and the CLI


@pytest.fixture(scope="module")
def two_models(tmp_path_factory, tiny_llama):
    from rewardlab.models.reward_model import RewardModel

    root = tmp_path_factory.mktemp("bench-models")
    paths = []
    for seed in (0, 1):
        rm = RewardModel.from_backbone(tiny_llama, seed=seed, max_length=96)
        path = root / f"rm{seed}"
        rm.save(path)
        paths.append(str(path))
    return paths


def test_scores_do_not_change_with_batch_size(two_models):
    """RewardBench v1 fixture scored by a tiny random model at batch sizes 1, 3, 5 and 64: the rewards agree
    to 1e-6 (batches differ only in padding), identical inputs get bit-identical rewards (the hep-go pair
    stays an exact tie), and every benchmark number is the same."""
    from rewardlab.models.reward_model import RewardModel

    rm = RewardModel.load(two_models[0])
    bench = get_benchmark("rewardbench")
    data = bench.load(str(FIX / "rewardbench-v1"))
    runs = {bs: score_records(rm, data.records, batch_size=bs) for bs in (1, 3, 5, 64)}
    base = np.asarray([x for row in runs[1] for x in row])
    results = []
    for bs, scores in runs.items():
        assert np.allclose(np.asarray([x for row in scores for x in row]), base, rtol=0, atol=1e-6), bs
        hep_go = next(s for r, s in zip(data.records, scores) if r.source == "hep-go")
        assert hep_go[0] == hep_go[1]
        out = bench.score(data, scores, n_boot=50)
        out.pop("reference")
        results.append(out)
    assert all(r == results[0] for r in results[1:])


def test_eval_cli_benchmark_two_models(two_models, tmp_path, capsys):
    """`rewardlab eval --model A --model B --benchmark rmb`: one report with a column per model, the
    benchmark result (with its tie policy) and model provenance in each column, per-example files with
    credits, and a self-contained HTML with embedded plots."""
    from rewardlab.cli import main

    out = tmp_path / "eval"
    code = main(
        [
            "eval",
            "--model",
            two_models[0],
            "--model",
            two_models[1],
            "--benchmark",
            "rmb",
            "--data",
            str(FIX / "rmb"),
            "--output-dir",
            str(out),
            "--batch-size",
            "4",
            "--n-boot",
            "50",
            "--tie-policy",
            "half",
        ]
    )
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert list(report["results"]) == ["rm0", "rm1"]
    for column in ("rm0", "rm1"):
        result = report["results"][column]
        assert result["benchmark"]["benchmark"] == "rmb" and result["benchmark"]["tie_policy"] == "half"
        assert result["tie_policy"] == "half"
        assert result["model"]["path"].endswith(column) and result["model"]["kind"] == "RewardModel"
        rows = [json.loads(line) for line in (out / f"examples-{column}.jsonl").read_text().splitlines()]
        assert len(rows) == 8 and all({"id", "subset", "scores", "lengths", "credit"} <= set(r) for r in rows)
    assert report["provenance"]["config"]["benchmark"] == "rmb"
    md = (out / "report.md").read_text()
    assert "## Benchmark: RMB" in md and "overall (mean of four)" in md and "## Models" in md
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "report.html" in capsys.readouterr().out


def test_eval_cli_lists_benchmarks_and_rejects_bad_input(capsys, tmp_path):
    from rewardlab.cli import main

    assert main(["eval", "--benchmark", "list"]) == 0
    text = capsys.readouterr().out
    assert "rewardbench-2" in text and "mt-bench-human" in text
    assert main(["eval", "--benchmark", "rmb", "--data", str(FIX / "rmb")]) == 2
    assert "at least one model" in capsys.readouterr().err
    (tmp_path / "config.json").write_text("{}")  # a model directory and a data file that pass the path checks:
    (tmp_path / "y").write_text("{}\n")  # the benchmark is what is at fault
    assert main(["eval", "--model", str(tmp_path), "--benchmark", "nope", "--data", str(tmp_path / "y")]) == 2
    assert "unknown benchmark" in capsys.readouterr().err


def test_skipped_summary_says_how_many_reasons_are_not_shown():
    """Known answer: 9 rows skipped for 5 reasons (3, 2, 2, 1, 1 rows). The three most frequent are named (7 rows);
    the other 2 reasons (2 rows) must be counted, not silently dropped."""
    from rewardlab.benchmarks.base import skipped_summary
    from rewardlab.core.errors import DataError

    counts = {"missing": 3, "empty": 2, "not text": 2, "bad label": 1, "too long": 1}
    skipped = [DataError(reason, path="f.jsonl", line=i + 1) for reason, n in counts.items() for i in range(n)]
    text = skipped_summary(skipped)
    assert "9 rows skipped" in text and "3× " in text
    assert "… and 2 more reasons (2 rows)" in text
    assert "more reason" not in skipped_summary(skipped[:7])  # three reasons: all shown
