"""Judge parsers, position-bias logic, templates and judge specs: pure functions on fixtures (no models)."""

import json
import math

import pytest

from rewardlab.core.errors import RewardlabError
from rewardlab.data import Comparison
from rewardlab.judges.backends import Backend, Sampling, candidate_logprobs, two_way
from rewardlab.judges.judge import PairwiseJudge, RatingJudge, VerifierJudge, _agreement_from_rewards
from rewardlab.judges.parsers import get_pairwise_parser, make_rating_parser, parse_yes_no
from rewardlab.judges.position import OrderResult, combine, orders_for, position_summary, rewards_from_pairs, swap_coin
from rewardlab.judges.run import JudgeConfig, parse_judge_spec, summary_path
from rewardlab.judges.templates import TEMPLATES, fill, load_template, render_question

# ---- verdict parsers --------------------------------------------------------------------------------
VERDICTS = [
    # text, strict, mtbench, last, lenient
    ("Assistant A is more helpful. [[A]]", "A", "A", "A", "A"),
    ("Both are fine. Final verdict: [[C]]", "tie", "tie", "tie", "tie"),
    ("[[ B ]]", "B", None, "B", "B"),
    ('Format: "[[A]]" if A is better, "[[B]]" if B... My verdict: [[B]]', None, "A", "B", None),
    ("I think B is better.", None, None, None, None),
    ("Verdict: B", None, None, None, "B"),
    ("[B]", None, None, None, "B"),
    ("Assistant A is better than B.", None, None, None, "A"),
    ("B.", None, None, None, "B"),
    ("", None, None, None, None),
    ("[[D]]", None, None, None, None),
    ("[[a]]", None, None, None, "A"),  # lenient: a lone letter in any case
    ("[[A]] and again [[A]]", "A", "A", "A", "A"),
]


@pytest.mark.parametrize("text,strict,mtbench,last,lenient", VERDICTS)
def test_pairwise_parsers(text, strict, mtbench, last, lenient):
    for name, want in (("strict", strict), ("mtbench", mtbench), ("last", last), ("lenient", lenient)):
        got = get_pairwise_parser(name)(text)
        assert got.value == want, (name, text, got)
        assert got.ok == (want is not None)
        if want is None:
            assert got.error  # every failure says why


def test_parser_errors_say_why():
    strict = get_pairwise_parser("strict")
    assert strict(None).error == "no output (backend error)"
    assert strict("   ").error == "empty output"
    assert strict("[[A]] no wait [[B]]").error == "conflicting verdicts A, B"
    assert "no [[A]]" in strict("A is better").error


def test_letter_and_regex_parsers():
    letter = get_pairwise_parser("letter")
    assert [letter(t).value for t in ("A", " b ", "[[C]]", "(A)", "tie", "AB", "A is better")] == [
        "A",
        "B",
        "tie",
        "A",
        "tie",
        None,
        None,
    ]
    rx = get_pairwise_parser(r"regex:winner\s*=\s*(\w+)")
    assert rx("winner = 2").value == "B"
    assert rx("winner=a ... winner = tie").value == "tie"
    assert rx("winner = zebra").error.startswith("matched 'zebra'")
    assert rx("nothing").error.startswith("no match")
    with pytest.raises(RewardlabError):
        get_pairwise_parser("regex:no groups")
    with pytest.raises(RewardlabError):
        get_pairwise_parser("nonsense")


def test_rating_parsers():
    mt = make_rating_parser("mtbench")
    assert mt("Good answer. Rating: [[8]]").value == 8.0
    assert mt("Rating: [[7.5]]").value == 7.5
    assert mt("Rating: [6]").value == 6.0  # FastChat's backup pattern
    assert mt("[[3]] then [[9]]").value == 3.0  # first match, as FastChat
    assert make_rating_parser("last")("[[3]] then [[9]]").value == 9.0
    assert mt("Rating: [[11]]").error == "rating 11 outside [1, 10]"
    assert mt("Rating: [[0]]").value is None
    assert mt("It is an 8 out of 10").error == "no [[rating]]"
    assert make_rating_parser("number")("It is an 8 out of 10").value == 8.0
    assert mt("").error == "empty output"
    assert make_rating_parser(r"regex:score=(\d+)")("score=4").value == 4.0
    with pytest.raises(RewardlabError):
        make_rating_parser("bogus")


def test_yes_no_parser():
    assert parse_yes_no("Yes, it is correct.").value == "Yes"
    assert parse_yes_no("  no.").value == "No"
    assert parse_yes_no("Maybe").value is None
    assert parse_yes_no("Yesterday").value is None


# ---- position logic -----------------------------------------------------------------------------------
def o(swapped, verdict, p=None, error=None):
    pa = p if p is not None else {"A": 1.0, "B": 0.0, "tie": 0.5}.get(verdict)
    return OrderResult(swapped, raw=str(verdict), verdict=verdict, p_a=pa, error=error)


def test_orders_and_seeded_swap():
    assert orders_for("single") == [False]
    assert orders_for("both") == [False, True] == orders_for("average")
    coins = [orders_for("random_swap", seed=3, key=f"r{i}")[0] for i in range(200)]
    assert coins == [swap_coin(3, f"r{i}") for i in range(200)]  # deterministic
    assert 70 < sum(coins) < 130  # both orders happen
    assert coins != [swap_coin(4, f"r{i}") for i in range(200)]  # the seed matters
    with pytest.raises(RewardlabError):
        orders_for("sometimes")


def test_consistency_rule():
    # A in AB = first wins; B in BA = first wins too (first is shown second) → consistent
    pv = combine("both", 0, 1, [o(False, "A"), o(True, "B")])
    assert (pv.verdict, pv.p_first, pv.consistent) == ("first", 1.0, True)
    pv = combine("both", 0, 1, [o(False, "B"), o(True, "A")])
    assert (pv.verdict, pv.p_first, pv.consistent) == ("second", 0.0, True)
    # always "A" = pure position bias: disagreement ⇒ tie
    pv = combine("both", 0, 1, [o(False, "A"), o(True, "A")])
    assert (pv.verdict, pv.p_first, pv.consistent) == ("tie", 0.5, False)
    pv = combine("both", 0, 1, [o(False, "tie"), o(True, "tie")])
    assert (pv.verdict, pv.consistent) == ("tie", True)
    # one order unparseable: the pair is unparseable (reward ½), with the reason, never silently dropped
    pv = combine("both", 0, 1, [o(False, "A"), o(True, None, error="empty output")])
    assert pv.verdict is None and pv.p_first == 0.5 and pv.consistent is None
    assert pv.error == "BA: empty output"
    assert [x.to_json()["order"] for x in pv.orders] == ["AB", "BA"]  # per-order results are kept


def test_average_rule_and_single():
    pv = combine("average", 0, 1, [o(False, "A", p=0.9), o(True, "A", p=0.7)])
    assert pv.p_first == pytest.approx((0.9 + 0.3) / 2) and pv.verdict == "first" and pv.consistent is False
    pv = combine("average", 0, 1, [o(False, "B", p=0.2), o(True, None, error="x")])
    assert pv.p_first == pytest.approx(0.2) and pv.verdict == "second" and pv.error == "BA: x"
    pv = combine("average", 0, 1, [o(False, None, error="x"), o(True, None, error="y")])
    assert pv.verdict is None and pv.p_first == 0.5
    pv = combine("single", 0, 1, [o(False, "B")])
    assert (pv.verdict, pv.p_first) == ("second", 0.0)
    pv = combine("random_swap", 0, 1, [o(True, "B")])  # swapped: B is response 0
    assert (pv.verdict, pv.p_first) == ("first", 1.0)
    with pytest.raises(ValueError):
        combine("both", 0, 1, [o(False, "A")])


def test_rewards_from_pairs_k3():
    pvs = [
        combine("single", 0, 1, [o(False, "A")]),
        combine("single", 0, 2, [o(False, "A")]),
        combine("single", 1, 2, [o(False, "tie")]),
    ]
    assert rewards_from_pairs(3, pvs) == [1.0, 0.25, 0.25]


def test_position_summary_counts():
    pvs = [
        combine("both", 0, 1, [o(False, "A"), o(True, "B")]),  # consistent
        combine("both", 0, 1, [o(False, "A"), o(True, "A")]),  # inconsistent
        combine("both", 0, 1, [o(False, "A"), o(True, None, error="empty output")]),  # unparseable
        combine("both", 0, 1, [o(False, "B"), o(True, "A")]),
    ]  # consistent
    s = position_summary(pvs)
    assert s["n_pairs"] == 4 and s["n_outputs"] == 8 and s["n_unparseable_outputs"] == 1
    assert s["unparseable_reasons"] == {"empty output": 1}
    assert s["n_pairs_both_parsed"] == 3 and s["position_consistency"] == pytest.approx(2 / 3)
    assert s["position_consistency_all"] == pytest.approx(2 / 4)
    assert s["first_position_rate"] == pytest.approx(5 / 7)
    assert s["n_unparseable_pairs"] == 1 and s["tie_verdicts"] == 1


# ---- token probabilities ----------------------------------------------------------------------------
def test_two_way_and_candidates():
    lp = candidate_logprobs(
        [("A", math.log(0.3)), (" A", math.log(0.1)), ("B", math.log(0.2)), ("x", -0.1)], ("A", "B")
    )
    assert math.exp(lp["A"]) == pytest.approx(0.4)
    assert two_way(lp, "A", "B") == pytest.approx(0.4 / 0.6)
    assert two_way({"A": -1.0, "B": float("-inf")}, "A", "B") == 1.0
    assert two_way({"A": float("-inf"), "B": float("-inf")}, "A", "B") is None
    assert two_way(None, "A", "B") is None


# ---- judges over a scripted backend ----------------------------------------------------------------------
class Scripted(Backend):
    """Answers from a function of the prompt text; counts calls."""

    name, model_id = "scripted", "scripted"

    def __init__(self, reply=None, logprobs=None):
        self.reply, self.lp, self.prompts = reply, logprobs, []

    def generate(self, prompts, sampling, n=1):
        self.prompts += prompts
        return [[self.reply(p[-1]["content"], s) for s in range(n)] for p in prompts]

    def next_token_logprobs(self, prompts, candidates, assistant_prefix=""):
        self.prompts += prompts
        return [self.lp(p[-1]["content"]) for p in prompts]


def answer_a(text):
    return text.split("[The Start of Assistant A's Answer]\n")[1].split("\n[The End")[0]


RECORDS = [
    Comparison("q1", ("good answer", "bad answer"), chosen=0, id="a"),
    Comparison("q2", ("bad", "good one"), chosen=1, id="b"),
    Comparison("q3", ("good x", "bad y"), chosen=1, id="c"),
]  # the "human" disagrees with the judge here


def test_pairwise_generate_judge_with_malformed_outputs():
    def reply(text, s):
        if "q3" in text:
            return "I cannot decide."  # unparseable in both orders
        return "Explanation... [[A]]" if "good" in answer_a(text) else "[[B]]"

    judge = PairwiseJudge(Scripted(reply), position="both")
    scores = judge.score_comparisons(RECORDS)
    assert scores == [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]
    s = judge.last_summary
    assert s["n_outputs"] == 6 and s["n_unparseable_outputs"] == 2
    assert s["unparseable_reasons"] == {"no [[A]]/[[B]]/[[C]] verdict": 2}
    assert s["position_consistency"] == 1.0 and s["n_pairs_both_parsed"] == 2
    assert s["agreement_with_chosen"]["accuracy"] == pytest.approx(2 / 3)
    row = judge.last_rows[0]
    assert [o["order"] for o in row["pairs"][0]["orders"]] == ["AB", "BA"]
    assert row["pairs"][0]["orders"][1]["raw"] == "[[B]]"
    json.dumps(judge.last_rows)  # JSON-serialisable


def test_position_biased_judge_is_caught():
    judge = PairwiseJudge(Scripted(lambda text, s: "[[A]]"), position="both")
    assert judge.score_comparisons(RECORDS) == [[0.5, 0.5]] * 3
    assert judge.last_summary["position_consistency"] == 0.0
    assert judge.last_summary["first_position_rate"] == 1.0
    single = PairwiseJudge(Scripted(lambda text, s: "[[A]]"), position="single")
    assert single.score_comparisons(RECORDS) == [[1.0, 0.0]] * 3
    assert single.last_summary["position_consistency"] is None


def test_random_swap_is_seeded():
    def run(seed):
        b = Scripted(lambda text, s: "[[A]]" if "good" in answer_a(text) else "[[B]]")
        judge = PairwiseJudge(b, position="random_swap", seed=seed)
        assert judge.score_comparisons(RECORDS)[:2] == [[1.0, 0.0], [0.0, 1.0]]  # a fair judge: swap-invariant
        return [answer_a(p[-1]["content"]) for p in b.prompts]

    assert run(0) == run(0)
    assert len({tuple(run(s)) for s in range(8)}) > 1


def test_logprob_judge_averages_orders():
    def lp(text):  # biased toward A by +0.1 on top of the truth
        p = (0.8 if "good" in answer_a(text) else 0.2) + 0.1
        return {"A": math.log(p), "B": math.log(1 - p)}

    judge = PairwiseJudge(Scripted(logprobs=lp), mode="logprob")
    assert judge.position == "average" and judge.template.name == "pair-token"
    scores = judge.score_comparisons(RECORDS[:1])
    assert scores[0][0] == pytest.approx((0.9 + (1 - 0.3)) / 2)
    orders = judge.last_rows[0]["pairs"][0]["orders"]
    assert orders[0]["p_a"] == pytest.approx(0.9) and orders[1]["p_a"] == pytest.approx(0.3)
    assert set(orders[0]["logprobs"]) == {"A", "B"}
    missing = PairwiseJudge(Scripted(logprobs=lambda t: {"A": float("-inf"), "B": float("-inf")}), mode="logprob")
    assert missing.score_comparisons(RECORDS[:1]) == [[0.5, 0.5]]
    assert missing.last_summary["n_unparseable_outputs"] == 2


def test_rating_judge_samples_and_failures():
    replies = {0: "Rating: [[8]]", 1: "Rating: [[6]]"}
    judge = RatingJudge(
        Scripted(lambda text, s: replies[s] if "good" in text else "meh"), samples=2, sampling=Sampling(temperature=0.7)
    )
    assert judge.score_comparisons(RECORDS[:1]) == [[7.0, 5.5]]
    s = judge.last_summary
    assert s["n_outputs"] == 4 and s["n_unparseable_outputs"] == 2 and s["n_unrated_responses"] == 1
    assert s["mean_rating"] == 7.0


def test_verifier_direct_and_cot():
    def lp(text):
        good = "good" in text.split("[The Start of Assistant's Answer]")[-1]
        return {"Yes": math.log(0.9 if good else 0.3), "No": math.log(0.1 if good else 0.7)}

    judge = VerifierJudge(Scripted(logprobs=lp))
    assert judge.score_comparisons(RECORDS[:1])[0] == pytest.approx([0.9, 0.3])

    b = Scripted(
        reply=lambda text, s: f"rationale {s}", logprobs=lambda text: {"Yes": math.log(0.8), "No": math.log(0.2)}
    )
    b_lp = b.next_token_logprobs
    seen = []

    def spy(prompts, candidates, assistant_prefix=""):
        seen.extend(prompts)
        out = b_lp(prompts, candidates)
        # the second sample's p(Yes) is lower: the reward is the mean over rationales
        return [
            ({"Yes": math.log(0.4), "No": math.log(0.6)} if p[-2]["content"] == "rationale 1" else x)
            for p, x in zip(prompts, out)
        ]

    b.next_token_logprobs = spy
    cot = VerifierJudge(b, cot=True, samples=3, sampling=Sampling(temperature=0.8))
    scores = cot.score_comparisons(RECORDS[:1])
    assert scores[0] == pytest.approx([(0.8 + 0.4 + 0.8) / 3] * 2)
    assert cot.last_rows[0]["responses"][0]["votes_yes"] == 2
    assert seen[0][-1]["content"] == TEMPLATES["genrm-cot"].followup and seen[0][-2]["role"] == "assistant"


# ---- templates and specs --------------------------------------------------------------------------------
def test_templates_fill_safely(tmp_path):
    msgs = TEMPLATES["mtbench-pair"].messages(question="x = {answer_b} {json: 1}", answer_a="{question}", answer_b="B!")
    assert msgs[0]["role"] == "system" and "[[C]]" in msgs[0]["content"]
    assert "x = {answer_b} {json: 1}" in msgs[1]["content"] and "{question}" in msgs[1]["content"]
    with pytest.raises(RewardlabError):
        fill("{answer}", {})
    path = tmp_path / "t.yaml"
    path.write_text("kind: pairwise\nuser: 'Q: {question}\\nA: {answer_a}\\nB: {answer_b}\\nWinner?'\n")
    t = load_template(str(path))
    assert t.name == "t" and t.messages(question="q", answer_a="a", answer_b="b")[0]["content"].endswith("Winner?")
    (tmp_path / "bad.yaml").write_text("kind: pairwise\nuser: x\ncolour: red\n")
    with pytest.raises(RewardlabError, match="colour"):
        load_template(str(tmp_path / "bad.yaml"))
    with pytest.raises(RewardlabError):
        load_template("no-such-template")
    with pytest.raises(RewardlabError):
        PairwiseJudge(Scripted(), template="mtbench-single")


def test_render_question():
    assert render_question("hi") == "hi"
    convo = ({"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"})
    assert render_question(convo) == "User: a\n\nAssistant: b\n\nUser: c"


def test_judge_specs(tmp_path):
    assert parse_judge_spec("smollm2-135m") == JudgeConfig(model="smollm2-135m")
    cfg = parse_judge_spec("mode=logprob,model=runs/j/model,position=average,max_answer_tokens=64,timeout=2.5")
    assert (cfg.mode, cfg.model, cfg.position, cfg.max_answer_tokens, cfg.timeout) == (
        "logprob",
        "runs/j/model",
        "average",
        64,
        2.5,
    )
    assert (
        parse_judge_spec("backend=openai,base_url=http://127.0.0.1:8000/v1,model=m").base_url
        == "http://127.0.0.1:8000/v1"
    )
    (tmp_path / "j.yaml").write_text("mode: rating\nsamples: 3\n")
    assert parse_judge_spec(str(tmp_path / "j.yaml")).samples == 3
    with pytest.raises(RewardlabError, match="unknown"):
        parse_judge_spec("colour=red")
    with pytest.raises(RewardlabError):
        parse_judge_spec("mode=telepathy")
    with pytest.raises(RewardlabError):
        parse_judge_spec("samples=many")
    assert summary_path("runs/x/j.jsonl").name == "j.summary.json"
    assert summary_path("runs/x/j.jsonl.gz").name == "j.summary.json"


def test_a_calls_batch_size_reaches_the_backend_without_changing_the_judge():
    """score_comparisons(records, batch_size=2) runs on a backend whose batch_size is 2 for that call only; the
    judge and its backend keep 5 (no attribute swapped during the call); the backend counters and the last
    summary are the judge's. A backend that does not batch (batch_size None) is used as it is."""

    class Batching(Scripted):
        def __init__(self, reply):
            super().__init__(reply)
            self.batch_size, self.seen = 5, []

        def generate(self, prompts, sampling, n=1):
            self.seen.append((self.batch_size, backend.batch_size))  # this call's, and the judge's backend's
            return super().generate(prompts, sampling, n)

    backend = Batching(lambda text, s: "[[A]]" if "good" in answer_a(text) else "[[B]]")
    judge = PairwiseJudge(backend, position="single")
    assert judge.score_comparisons(RECORDS, batch_size=2) == [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]
    assert backend.seen == [(2, 5)] and backend.batch_size == 5 and judge.backend is backend
    assert judge.last_summary["n_outputs"] == 3
    judge.score_comparisons(RECORDS)
    assert backend.seen == [(2, 5), (5, 5)]
    plain = PairwiseJudge(Scripted(lambda text, s: "[[A]]"), position="single")
    assert plain.with_batch_size(2) is plain and plain.backend.batch_size is None


def test_judge_specs_and_templates_are_validated_like_command_options(tmp_path):
    """A judge spec and a template file go through rewardlab.core.settings, as flags and --config do: declared ranges
    (samples >= 1), real booleans, a did-you-mean for a misspelt key, each error naming the spec and the option.
    The old spec parser took samples=0, read skip_invalid=maybe as False and ignored a YAML spec's batch_size."""
    with pytest.raises(
        RewardlabError, match=r"judge spec 'samples=0': samples: should be greater than or equal to 1, got '0'"
    ):
        parse_judge_spec("samples=0")
    with pytest.raises(RewardlabError, match=r"judge spec 'skip_invalid=maybe': skip_invalid: .*bool"):
        parse_judge_spec("skip_invalid=maybe")
    with pytest.raises(
        RewardlabError, match=r"judge spec 'temprature=1': temprature: unknown option \(did you mean 'temperature'\?\)"
    ):
        parse_judge_spec("temprature=1")
    with pytest.raises(RewardlabError, match=r"expected key=value, got 'mode'"):
        parse_judge_spec("model=m,mode")
    assert parse_judge_spec("skip_invalid=yes,limit=none,max_answer_tokens=8").skip_invalid is True
    (tmp_path / "j.yaml").write_text("model: m\nbatch_size: 3\n")
    assert parse_judge_spec(str(tmp_path / "j.yaml"), {"batch_size": 16}).batch_size == 3  # the spec's own wins
    assert parse_judge_spec("model=m", {"batch_size": 16}).batch_size == 16
    (tmp_path / "j.json").write_text('{"mode": "rating", "samples": 0}')
    with pytest.raises(RewardlabError, match=r"j.json: samples: should be greater than or equal to 1, got 0"):
        parse_judge_spec(str(tmp_path / "j.json"))
    (tmp_path / "t.json").write_text('{"kind": "pairwise", "user": "x", "candidates": ["A", "B"]}')
    assert load_template(str(tmp_path / "t.json")).candidates == ("A", "B")
    (tmp_path / "t.yaml").write_text("kind: pairwise\nuser: x\nsytem: hi\n")
    with pytest.raises(RewardlabError, match=r"t.yaml: sytem: unknown option \(did you mean 'system'\?\)"):
        load_template(str(tmp_path / "t.yaml"))
    (tmp_path / "k.yaml").write_text("kind: verdict\nuser: x\n")
    with pytest.raises(RewardlabError, match="kind must be one of"):
        load_template(str(tmp_path / "k.yaml"))


def test_agreement_with_chosen_is_pair_accuracy_over_strict_pairs():
    """Tiers ((2,), (0, 3), (1,)) give the strict pairs (2,0) (2,3) (2,1) (0,1) (3,1); (0, 3) is a judge tie and no
    pair. Rewards [1, 0, 3, 1]: 3 > 1, 3 > 1, 3 > 0, 1 > 0, 1 > 0 → 5 wins of 5 (the old chosen-vs-others count
    read (2,0) (2,1) (2,3) only). Rewards [1, 1, 3, 0]: (2,·) three wins, (0,1) a reward tie, (3,1) a loss →
    accuracy 3/5, ties as half 3.5/5."""
    rec = Comparison("q", ("a", "b", "c", "d"), chosen=2, tiers=((2,), (0, 3), (1,)))
    assert _agreement_from_rewards([rec], [[1, 0, 3, 1]]) == {
        "n_pairs": 5,
        "agree": 5,
        "ties": 0,
        "disagree": 0,
        "accuracy": 1.0,
        "accuracy_ties_half": 1.0,
    }
    got = _agreement_from_rewards([rec], [[1, 1, 3, 0]])
    assert (got["agree"], got["ties"], got["disagree"]) == (3, 1, 1)
    assert got["accuracy"] == pytest.approx(3 / 5) and got["accuracy_ties_half"] == pytest.approx(3.5 / 5)
