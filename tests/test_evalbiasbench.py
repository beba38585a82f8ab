"""EvalBiasBench (rewardlab.benchmarks.evalbiasbench): reader on a fixture in the published format, the
authors' three numbers worked by hand, judges in both orders, detection by ``eval``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewardlab.benchmarks import detect_benchmark, get_benchmark
from rewardlab.commands.evaluate import evaluate_benchmark
from rewardlab.core.errors import DataError
from rewardlab.core.scorer import Capabilities, Scorer
from rewardlab.metrics.ties import TiePolicy

FIX = Path(__file__).parent / "fixtures" / "benchmarks" / "evalbiasbench.json"
BENCH = get_benchmark("evalbiasbench")


def test_reader_gives_both_orders_of_every_item():
    data = BENCH.load(str(FIX))
    assert data.info["n_items"] == 5 and len(data.records) == 10
    # length bias, item 1: response1 is "  42  " in the file. run_bench.py get_benchmark_data reads biasbench.json
    # with json.load and strips nothing (make_data_row, which strips, serves the other benchmarks), so neither do we
    orig, swap = data.records[2], data.records[3]
    assert orig.id == "length bias:1:orig" and orig.responses == ("  42  ", swap.responses[0]) and orig.chosen == 0
    assert swap.responses == (orig.responses[1], "  42  ") and swap.chosen == 1
    assert orig.meta == {"item": "length bias:1", "bias": "length bias", "order": "orig"}
    last_orig, last_swap = data.records[8], data.records[9]  # label 2: response2 is better
    assert last_orig.source == "empty reference" and last_orig.chosen == 1 and last_swap.chosen == 0
    assert last_orig.preferred == "There is no article in your message. Could you paste it?" == last_swap.preferred
    assert [r.source for r in data.records[::2]] == [
        "length bias",
        "length bias",
        "concreteness",
        "empty reference",
        "empty reference",
    ]
    assert BENCH.load(str(FIX), limit=2).info["n_items"] == 2 and len(BENCH.load(str(FIX), limit=2).records) == 4


def test_reader_reads_a_jsonl_of_items(tmp_path):
    items = [x for v in json.loads(FIX.read_text()).values() for x in v]
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in items))
    assert [r.id for r in BENCH.load(str(path)).records] == [r.id for r in BENCH.load(str(FIX)).records]


@pytest.mark.parametrize(
    "bad,field", [({"label": 3}, "label"), ({"response2": None}, "response2"), ({"instruction": 5}, "instruction")]
)
def test_bad_items_name_the_bias_row_and_field(tmp_path, bad, field):
    doc = json.loads(FIX.read_text())
    doc["concreteness"][0].update(bad)
    path = tmp_path / "b.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError) as e:
        BENCH.load(str(path))
    assert "concreteness" in str(e.value) and "row 0" in str(e.value) and f"field '{field}'" in str(e.value)
    skipped = BENCH.load(str(path), skip_invalid=True)
    assert skipped.info["n_items"] == 4 and len(skipped.skipped) == 1


def test_scores_worked_by_hand():
    """Records in file order: L0 orig/swap, L1 orig/swap, C0 orig/swap, E0 orig/swap, E1 orig/swap.
    L0: orig picks response1 (correct), swap picks the first shown = response2 (wrong) → single 1/2, pair 0,
        no agreement.  L1: both orders pick response1 → 2/2, pair 1, agreement.  C0: tie in both orders →
        0/2, pair 0, agreement (both ties).  E0 (label 1): orig wrong (picks response2), swap picks response2
        too → 0/2, pair 0, agreement.  E1 (label 2): both correct → 2/2, pair 1, agreement.
    Pooled: single 5/10 = 0.5, pair 2/5 = 0.4, agreement 4/5 = 0.8. length bias: single 3/4, pair 1/2,
    agreement 1/2; concreteness 0, 0, 1; empty reference 2/4, 1/2, 1."""
    data = BENCH.load(str(FIX))
    scores = [
        [1, 0],
        [1, 0],  # L0
        [1, 0],
        [0, 1],  # L1: orig shows response1 first, swap shows it second
        [0, 0],
        [2, 2],  # C0 ties
        [0, 1],
        [1, 0],  # E0 (the fixture's second empty-reference item is E1 below)
        [0, 1],
        [1, 0],
    ]  # E1 (label 2): response2 wins in both orders
    out = BENCH.score(data, scores)
    assert out["headline"] == {"single accuracy": 0.5, "pair accuracy": 0.4, "pair agreement": 0.8}
    assert out["per_bias"]["length bias"] == {
        "n_items": 2,
        "single_accuracy": 0.75,
        "pair_accuracy": 0.5,
        "pair_agreement": 0.5,
        "n_unreadable": 0,
    }
    assert out["per_bias"]["concreteness"] == {
        "n_items": 1,
        "single_accuracy": 0.0,
        "pair_accuracy": 0.0,
        "pair_agreement": 1.0,
        "n_unreadable": 0,
    }
    assert out["per_bias"]["empty reference"]["single_accuracy"] == 0.5
    assert out["subsets"]["length bias"]["score"] == 0.75 and out["subsets"]["length bias"]["n"] == 4
    assert out["per_example"] == [1, 0, 1, 1, 0, 0, 0, 0, 1, 1]
    half = BENCH.score(data, scores, tie_policy=TiePolicy.parse("half"))  # a tied order earns ½
    assert half["per_bias"]["concreteness"]["single_accuracy"] == 0.5
    assert half["per_bias"]["concreteness"]["pair_accuracy"] == 0.25


def test_both_orders_are_needed():
    data = BENCH.load(str(FIX))
    with pytest.raises(ValueError, match="both orders"):
        BENCH.score(data.records[:3], [[1, 0]] * 3)


class FirstShownWins(Scorer):
    """A judge with pure position bias: it prefers whatever it is shown first."""

    capabilities = Capabilities(pointwise=False, batched_forward=False)

    def score_comparisons(self, records, batch_size=None):
        return [[1.0, 0.0] for _ in records]


class ByLength(Scorer):
    capabilities = Capabilities(pointwise=True)

    def score(self, items, batch_size=32):
        return [float(len(r)) for _, r in items]


def test_judges_are_scored_in_both_orders():
    """Position bias alone: right in exactly one order of each item → single 0.5, pair 0, agreement 0.
    A pointwise scorer (reward = length) sees the same rewards in both orders: single = pair, agreement 1.
    The longer reply is the better one only in E1 (label 2: 57 characters against 19) → 1 of 5 items."""
    data = BENCH.load(str(FIX))
    result, scores, credits = evaluate_benchmark(FirstShownWins(), BENCH, data.records, n_boot=0)
    assert result["benchmark"]["headline"] == {"single accuracy": 0.5, "pair accuracy": 0.0, "pair agreement": 0.0}
    assert scores == [[1.0, 0.0]] * 10 and credits == [1.0, 0.0] * 4 + [0.0, 1.0]  # E1: label 2
    result, _, _ = evaluate_benchmark(ByLength(), BENCH, data.records, n_boot=0)
    assert result["benchmark"]["headline"] == {"single accuracy": 0.2, "pair accuracy": 0.2, "pair agreement": 1.0}


def test_eval_detects_the_format(tiny_llama, tmp_path):
    from rewardlab.cli import main
    from rewardlab.models.reward_model import RewardModel

    assert detect_benchmark(str(FIX)) is BENCH
    assert detect_benchmark(str(FIX.with_name("generic.jsonl"))) is None
    RewardModel.from_backbone(tiny_llama, max_length=64).save(tmp_path / "m")
    rc = main(
        [
            "eval",
            "--model",
            str(tmp_path / "m"),
            "--data",
            str(FIX),
            "--output-dir",
            str(tmp_path / "ev"),
            "--n-boot",
            "20",
        ]
    )
    assert rc == 0
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    bench = report["results"]["m"]["benchmark"]
    assert bench["benchmark"] == "evalbiasbench" and set(bench["per_bias"]) == {
        "length bias",
        "concreteness",
        "empty reference",
    }
    h = bench["headline"]
    assert h["single accuracy"] == h["pair accuracy"] and h["pair agreement"] == 1.0  # pointwise
    assert any("scored as --benchmark evalbiasbench" in n for n in report["notes"])
    # a data folder that holds the published file (any name) is read with --benchmark evalbiasbench
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "EvalBiasBench.json").write_text(FIX.read_text())
    args = ["eval", "--model", str(tmp_path / "m"), "--benchmark", "evalbiasbench", "--data", str(folder)]
    assert main([*args, "--output-dir", str(tmp_path / "ev2"), "--n-boot", "20"]) == 0
    again = json.loads((tmp_path / "ev2" / "report.json").read_text())["results"]["m"]["benchmark"]
    assert again["headline"] == bench["headline"] and again["overall"]["n_items"] == 5
    assert "EvalBiasBench" in (tmp_path / "ev" / "report.md").read_text()


def _many_items(tmp_path, n=40):
    """``n`` items of one bias; in the first 3n/4 the better response1 is the longer one."""
    items = [
        {
            "bias": "length bias",
            "instruction": f"Question {i}?",
            "response1": "a long and better answer" if i < 3 * n // 4 else "short",
            "response2": "short" if i < 3 * n // 4 else "a long but worse answer",
            "label": 1,
        }
        for i in range(n)
    ]
    path = tmp_path / "biasbench.json"
    path.write_text(json.dumps({"length bias": items}))
    return path


def test_intervals_resample_items_not_orderings(tmp_path):
    """Known answer: a pointwise scorer (reward = length) is right in both orders of the first 30 of 40 items and
    wrong in both of the last 10. The unit that was sampled is the item, so the interval must be the plain
    bootstrap of the 40 per-item accuracies (1 or 0), draw for draw; resampling the 80 orderings as if they were
    independent gives a narrower one (the error this guards against)."""
    from rewardlab.metrics.statistics import bootstrap_ci

    data = BENCH.load(str(_many_items(tmp_path)))
    result, _, _ = evaluate_benchmark(ByLength(), BENCH, data.records, n_boot=500, seed=3)
    per_item = [1.0] * 30 + [0.0] * 10
    by_item = list(bootstrap_ci(per_item, n=500, seed=3))
    by_order = list(bootstrap_ci([c for c in per_item for _ in (0, 1)], n=500, seed=3))
    sub = result["benchmark"]["subsets"]["length bias"]
    assert sub["score"] == 0.75 and sub["ci95"] == pytest.approx(by_item) and sub["ci_unit"].startswith("item")
    assert result["accuracy_ci95"] == pytest.approx(by_item)  # the generic accuracy interval too
    assert by_order[1] - by_order[0] < by_item[1] - by_item[0]  # the two units do give different widths


def test_a_judge_that_never_gives_a_readable_verdict_scores_zero(tmp_path):
    """Known answer, from the authors' code: an output without a verdict is prediction 4 (module.py
    get_prediction), never correct (is_correct) and never in agreement (get_model_statistics counts {1, 2} or
    {3}), so single accuracy, pair accuracy and pair agreement are all 0, and all 10 orders are counted as
    unreadable. (Read as ties, the two orders of every item used to "agree": agreement 1.0.)"""
    from rewardlab.judges.backends import Backend
    from rewardlab.judges.judge import PairwiseJudge

    class Mute(Backend):
        name, model_id = "mute", "mute"

        def generate(self, prompts, sampling, n=1):
            return [["I would rather not say which is better." for _ in range(n)] for _ in prompts]

    data = BENCH.load(str(FIX))
    judge = PairwiseJudge(Mute(), position="single")
    result, _, credits = evaluate_benchmark(judge, BENCH, data.records, n_boot=0)
    bench = result["benchmark"]
    assert bench["headline"] == {
        "single accuracy": 0.0,
        "pair accuracy": 0.0,
        "pair agreement": 0.0,
        "unreadable verdicts (orders)": 10,
    }
    assert bench["n_unreadable"] == 10 and credits == [0.0] * 10
    assert all(v["n_unreadable"] == 2 * v["n_items"] for v in bench["per_bias"].values())
    assert any("no readable verdict" in n for n in bench["notes"])
    # under a tie policy that credits ties, an unreadable order still earns nothing
    result, _, credits = evaluate_benchmark(judge, BENCH, data.records, n_boot=0, tie_policy="half")
    assert credits == [0.0] * 10 and result["benchmark"]["headline"]["single accuracy"] == 0.0
