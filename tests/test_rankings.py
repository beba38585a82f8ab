"""Rankings in the record (tiers, ties, weights) and the readers for ratings, HelpSteer2(-Preference), ranked lists."""

from __future__ import annotations

import csv
import json

import pytest

from rewardlab.core.errors import DataError
from rewardlab.data import Comparison, ReadOptions, load_comparisons, parse_score_weights, write_jsonl
from rewardlab.data.formats import detect_format
from rewardlab.data.record import tiers_from_scores


def write(tmp_path, rows, name="data.jsonl"):
    path = tmp_path / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return str(path)


# --- the record ----------------------------------------------------------------------------------------------


def test_strict_and_tied_pairs_of_tiers():
    """Tiers ((2,), (0, 3), (1,)): 2 beats 0, 3 and 1; 0 and 3 beat 1; 0 ~ 3 tied. C(4,2) = 6 = 5 strict + 1 tie."""
    c = Comparison("p", ("a", "b", "c", "d"), chosen=2, tiers=((2,), (0, 3), (1,)))
    assert c.strict_pairs() == [(2, 0), (2, 3), (2, 1), (0, 1), (3, 1)]
    assert c.tied_pairs() == [(0, 3)]
    assert c.order() == (2, 0, 3, 1) and c.unranked() == ()


def test_partial_ranking_and_the_defaults():
    """Top-1 tiers ((1,),) of K = 3: 1 beats 0 and 2, which are unranked (no pair between them). Without
    ranking or tiers the chosen response beats every other (as before rankings existed); a full ranking gives
    all C(K,2) pairs."""
    top1 = Comparison("p", ("a", "b", "c"), chosen=1, tiers=((1,),))
    assert top1.strict_pairs() == [(1, 0), (1, 2)] and top1.unranked() == (0, 2) and top1.tied_pairs() == []
    plain = Comparison("p", ("a", "b", "c"), chosen=1)
    assert plain.preference_tiers() == ((1,),) and plain.strict_pairs() == [(1, 0), (1, 2)]
    full = Comparison("p", ("a", "b", "c"), chosen=2, ranking=(2, 0, 1))
    assert full.strict_pairs() == [(2, 0), (2, 1), (0, 1)]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"tiers": ((0,), (0, 1))}, "more than one tier"),
        ({"tiers": ((0,), (5,))}, "not a response index"),
        ({"tiers": ((1,), (0,))}, "first tier"),
        ({"tiers": ()}, "at least one tier"),
        ({"tiers": ((0,),), "ranking": (0, 1, 2)}, "not both"),
        ({"weight": -1.0}, "weight"),
        ({"weight": float("nan")}, "weight"),
    ],
)
def test_bad_tiers_and_weights_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Comparison("p", ("a", "b", "c"), chosen=0, **kwargs)


def test_scores_become_rankings_with_ties():
    """(3, 5, 3) → 5 first, then the two 3s tied: tiers ((1,), (0, 2)), chosen 1. (1, 2, 3) → strict ranking
    (2, 1, 0) stored as ``ranking``. Scores are kept, so the pair (1, 0) has margin 5 - 3 = 2."""
    assert tiers_from_scores((3, 5, 3)) == ((1,), (0, 2))
    tied = Comparison.from_scores("p", ("a", "b", "c"), (3, 5, 3))
    assert (tied.chosen, tied.tiers, tied.ranking, tied.scores) == (1, ((1,), (0, 2)), None, (3.0, 5.0, 3.0))
    strict = Comparison.from_scores("p", ("a", "b", "c"), (1, 2, 3))
    assert (strict.chosen, strict.ranking, strict.tiers) == (2, (2, 1, 0), None)
    from rewardlab.training.collate import preference_pairs

    assert preference_pairs(tied) == [(1, 0, 2.0), (1, 2, 2.0)]


def test_native_round_trip_of_tiers_and_weights(tmp_path):
    records = [
        Comparison("p", ("a", "b", "c", "d"), chosen=2, tiers=((2,), (0, 3)), weight=0.5, id="x", source="s"),
        Comparison("q", ("a", "b"), chosen=0, id="y", source="s"),
    ]
    path = str(tmp_path / "out.jsonl")
    write_jsonl(records, path)
    assert "weight" not in open(path).read().splitlines()[1]  # defaults stay out: old fingerprints unchanged
    assert load_comparisons(path).records == records


@pytest.mark.parametrize(
    "tiers,message",
    [
        ([[0], [0]], "more than one tier"),
        ([[1], [0]], "first tier"),
        ([[0], []], "non-empty"),
        ("0,1", "non-empty lists"),
    ],
)
def test_native_bad_tiers_name_the_field(tmp_path, tiers, message):
    row = {"prompt": "p", "responses": ["a", "b", "c"], "chosen": 0, "tiers": tiers}
    with pytest.raises(DataError, match=message) as info:
        load_comparisons(write(tmp_path, [row]))
    assert (info.value.line, info.value.field) == (1, "tiers")


# --- ratings (UltraFeedback style) -----------------------------------------------------------------------------


def _uf(*ratings_per_completion, **extra):
    """A raw UltraFeedback row: one completion per {aspect: "rating"} dict."""
    return {
        "source": "evol",
        "instruction": "Say hi",
        **extra,
        "completions": [
            {
                "model": f"m{i}",
                "response": f"answer {i}",
                "overall_score": 9.0,
                "annotations": {a: {"Rating": r, "Rationale": "..."} for a, r in rs.items()},
            }
            for i, rs in enumerate(ratings_per_completion)
        ],
    }


def test_ultrafeedback_aspects_mean_weights_and_na(tmp_path):
    """Means of aspect ratings: (4+5)/2 = 4.5, (5+4)/2 = 4.5 (a tie), (3 + N/A)/1 = 3 → tiers ((0, 1), (2,)).
    With weights helpfulness=1: 4, 5, 3 → strict ranking 1 > 0 > 2."""
    row = _uf(
        {"helpfulness": "4", "honesty": "5"},
        {"helpfulness": "5", "honesty": "4"},
        {"helpfulness": "3", "honesty": "N/A"},
    )
    path = write(tmp_path, [row])
    (c,) = load_comparisons(path).records
    assert c.prompt == "Say hi" and c.source == "evol" and c.responses == ("answer 0", "answer 1", "answer 2")
    assert (c.scores, c.tiers, c.chosen) == ((4.5, 4.5, 3.0), ((0, 1), (2,)), 0)
    (w,) = load_comparisons(path, options=ReadOptions({"helpfulness": 1.0})).records
    assert (w.scores, w.ranking, w.chosen) == ((4.0, 5.0, 3.0), (1, 0, 2), 1)
    with pytest.raises(DataError, match="no rating for honesty") as info:
        load_comparisons(path, options=ReadOptions({"honesty": 1.0}))  # completion 2's honesty is N/A
    assert (info.value.line, info.value.field) == (1, "completions")


def test_ratings_single_scores_and_flat_rows(tmp_path):
    rows = [
        {"prompt": "P", "completions": [{"response": "a", "score": 2}, {"response": "b", "score": 7.5}]},
        {"prompt": "Q", "responses": ["x", "y", "z"], "scores": [1, 1, 0]},
        {"prompt": "R", "responses": ["x", "y"], "scores": [{"help": 1, "safe": 3}, {"help": 2, "safe": 0}]},
    ]
    got = load_comparisons(write(tmp_path, rows)).records
    # R: aspect means (1 + 3)/2 = 2 and (2 + 0)/2 = 1
    assert [(c.chosen, c.ranking, c.tiers) for c in got] == [
        (1, (1, 0), None),
        (0, None, ((0, 1), (2,))),
        (0, (0, 1), None),
    ]
    assert [c.scores for c in got] == [(2.0, 7.5), (1.0, 1.0, 0.0), (2.0, 1.0)]


@pytest.mark.parametrize(
    "row,field,message",
    [
        ({"prompt": "P", "completions": [{"response": "a", "score": 1}]}, "completions", "at least two"),
        (
            {"prompt": "P", "completions": [{"response": "a", "score": 1}, {"response": "a", "score": 2}]},
            "completions",
            "identical",
        ),
        (
            {"prompt": "P", "completions": [{"response": "a", "score": 1}, {"response": "b"}]},
            "completions",
            "no 'score'",
        ),
        (
            {"prompt": "P", "completions": [{"response": "a", "score": 1}, {"response": "b", "score": "x"}]},
            "completions",
            "finite number",
        ),
        (
            {"prompt": "P", "completions": [{"response": "a", "score": 1}, {"response": "", "score": 2}]},
            "completions",
            "empty",
        ),
        (
            {"prompt": "P", "completions": [{"response": "a", "ratings": {"h": "bad"}}, {"response": "b", "score": 2}]},
            "completions",
            "not a number",
        ),
        ({"prompt": "P", "responses": ["a", "b"], "scores": [1]}, "scores", "expected 2 scores"),
        (
            {"instruction": "", "completions": [{"response": "a", "score": 1}, {"response": "b", "score": 2}]},
            "instruction",
            "empty",
        ),
    ],
)
def test_bad_ratings_rows_name_line_and_field(tmp_path, row, field, message):
    good = {"prompt": "G", "completions": [{"response": "a", "score": 1}, {"response": "b", "score": 2}]}
    with pytest.raises(DataError, match=message) as info:
        load_comparisons(write(tmp_path, [good, row], name="uf.jsonl"))
    assert (info.value.line, info.value.field) == (2, field) and "uf.jsonl" in str(info.value)


# --- HelpSteer2 (rows grouped by prompt) ---------------------------------------------------------------------------


def _hs(prompt, response, h, c=3, coh=4, cx=1, v=2, **extra):
    return {
        "prompt": prompt,
        "response": response,
        "helpfulness": h,
        "correctness": c,
        "coherence": coh,
        "complexity": cx,
        "verbosity": v,
        **extra,
    }


def test_helpsteer2_groups_rows_by_prompt_and_weights_attributes(tmp_path):
    """Rows of prompt A are lines 1 and 3 (not adjacent): one record, in the order of first appearance.
    Default score = helpfulness: A: 3 vs 1 → 0 first; B: 2 vs 2 → tie. Weights helpfulness=1, verbosity=-1:
    A: 3-2 = 1 vs 1-0 = 1 → tie; B: 2-4 = -2 vs 2-1 = 1 → response 1 first, margin 3."""
    rows = [_hs("A", "a1", 3), _hs("B", "b1", 2, v=4), _hs("A", "a2", 1, v=0), _hs("B", "b2", 2, v=1)]
    path = write(tmp_path, rows, name="hs.jsonl")
    a, b = load_comparisons(path).records
    assert (a.prompt, a.responses, a.scores, a.ranking, a.id) == ("A", ("a1", "a2"), (3.0, 1.0), (0, 1), "hs.jsonl:1")
    assert (b.responses, b.tiers, b.chosen) == (("b1", "b2"), ((0, 1),), 0)
    weights = parse_score_weights("helpfulness=1, verbosity=-1")
    assert weights == {"helpfulness": 1.0, "verbosity": -1.0}
    a, b = load_comparisons(path, options=ReadOptions(weights)).records
    assert a.tiers == ((0, 1),) and (b.scores, b.ranking) == ((-2.0, 1.0), (1, 0))
    assert load_comparisons(path, limit=1).records == [load_comparisons(path).records[0]]


def test_helpsteer2_csv_with_typed_attribute_columns(tmp_path):
    path = tmp_path / "hs.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(_hs("A", "a", 1)))
        w.writeheader()
        w.writerows([_hs("A", "a", 4), _hs("A", "b", 0)])
    (c,) = load_comparisons(str(path)).records
    assert c.scores == (4.0, 0.0) and c.chosen == 0


@pytest.mark.parametrize(
    "rows,line,field,message",
    [
        ([_hs("A", "a", 3), _hs("B", "b", 2), _hs("A", "c", 1)], 2, "response", "only response"),
        ([_hs("A", "a", 3), _hs("A", "a", 1)], 2, "response", "identical to another response to this prompt \\(line 1"),
        ([_hs("A", "a", 3), _hs("A", "b", 5)], 2, "helpfulness", "0 to 4"),
        ([_hs("A", "a", 3), _hs("A", "b", "3")], 2, "helpfulness", "finite number"),
        (
            [_hs("A", "a", 3), {"prompt": "A", "response": "b", "helpfulness": None, "correctness": 1}],
            2,
            "helpfulness",
            "missing attribute",
        ),
        ([_hs("A", "a", 3, weight=1.0), _hs("A", "b", 1, weight=2.0)], 2, "weight", "differs"),
    ],
)
def test_bad_helpsteer2_rows_name_line_and_field(tmp_path, rows, line, field, message):
    path = write(tmp_path, rows, name="hs.jsonl")
    with pytest.raises(DataError, match=message) as info:
        load_comparisons(path)
    assert (info.value.line, info.value.field) == (line, field)


def test_aspect_rating_and_helpsteer2_rows_read_the_unsafe_tag(tmp_path):
    """The Llama 2 rule's `unsafe` column reaches record.meta as in the pairwise formats: aspect-rating rows
    (completions or flat responses + scores) and grouped HelpSteer2 rows (a tag of the prompt: all its rows agree)."""
    rated = [
        {"prompt": "P", "completions": [{"response": "a", "score": 1}, {"response": "b", "score": 2}], "unsafe": True},
        {"prompt": "Q", "responses": ["a", "b"], "scores": [{"h": 1}, {"h": 3}], "unsafe": False},
        {"prompt": "R", "responses": ["a", "b"], "scores": [1, 2]},
    ]
    assert [c.meta for c in load_comparisons(write(tmp_path, rated, "uf.jsonl")).records] == [
        {"unsafe": True},
        {"unsafe": False},
        {},
    ]
    rows = [_hs("A", "a1", 3, unsafe=True), _hs("B", "b1", 2), _hs("A", "a2", 1, unsafe=True), _hs("B", "b2", 1)]
    a, b = load_comparisons(write(tmp_path, rows, "hs.jsonl")).records
    assert (a.meta, b.meta) == ({"unsafe": True}, {})
    assert json.loads(json.dumps(a.to_json()))["unsafe"] is True  # and written back out
    for second in (_hs("A", "a2", 1, unsafe=False), _hs("A", "a2", 1)):
        with pytest.raises(DataError, match="differs from the unsafe tag of the first row") as info:
            load_comparisons(write(tmp_path, [rows[0], second], "mixed.jsonl"))
        assert (info.value.line, info.value.field) == (2, "unsafe")
    for bad in ([{**rated[2], "unsafe": "yes"}], [_hs("A", "a", 3, unsafe=1), _hs("A", "b", 1, unsafe=1)]):
        with pytest.raises(DataError, match="expected true or false") as info:
            load_comparisons(write(tmp_path, bad, "bad.jsonl"))
        assert (info.value.line, info.value.field) == (1, "unsafe")


def test_helpsteer2_skip_invalid_skips_the_group(tmp_path):
    rows = [_hs("A", "a", 3), _hs("B", "b", 2), _hs("A", "c", 1), _hs("C", "x", 9), _hs("C", "y", 1)]
    result = load_comparisons(write(tmp_path, rows), skip_invalid=True)
    assert [c.prompt for c in result.records] == ["A"]  # B has one response; C's row 4 is out of range → C alone
    assert sorted((e.line, e.field) for e in result.skipped) == [(2, "response"), (4, "helpfulness"), (5, "response")]


def test_score_weights_syntax():
    assert parse_score_weights(None) is None and parse_score_weights(" ") is None
    for bad in ("helpfulness", "helpfulness=x", "=1", "a=1,,b=2", "a=inf"):
        with pytest.raises(DataError, match="name=number"):
            parse_score_weights(bad)


# --- HelpSteer2-Preference --------------------------------------------------------------------------------------


def test_helpsteer2_preference_strengths(tmp_path):
    """-3: response 1 much better (chosen 0, margin 3); 2: response 2 better (chosen 1, margin 2); 0: a tie."""
    rows = [
        {"prompt": "P", "response_1": "a", "response_2": "b", "preference_strength": s, "split": "train"}
        for s in (-3, 2, 0)
    ]
    got = load_comparisons(write(tmp_path, rows)).records
    assert [(c.chosen, c.margin, c.tiers) for c in got] == [(0, 3.0, None), (1, 2.0, None), (0, 0.0, ((0, 1),))]
    assert got[2].strict_pairs() == [] and got[2].tied_pairs() == [(0, 1)]


@pytest.mark.parametrize("value", [4, -4, "2", 1.5, True, None])
def test_helpsteer2_preference_bad_strength(tmp_path, value):
    good = {"prompt": "P", "response_1": "a", "response_2": "b", "preference_strength": 1}
    with pytest.raises(DataError) as info:
        load_comparisons(write(tmp_path, [good, {**good, "preference_strength": value}]))
    assert (info.value.line, info.value.field) == (2, "preference_strength")


# --- ranked lists -------------------------------------------------------------------------------------------------


def test_ranked_lists_with_ties_partial_rankings_and_ranks(tmp_path):
    rows = [
        {"prompt": "P", "responses": ["a", "b", "c", "d"], "ranking": [2, [0, 3], 1]},
        {"prompt": "P", "responses": ["a", "b", "c", "d"], "ranking": [3, 1]},
        {"prompt": "P", "responses": ["a", "b", "c"], "ranking": [1, 2, 0]},
        {"prompt": "P", "responses": ["a", "b", "c"], "ranks": [2, 1, None]},
        {"prompt": "P", "responses": ["a", "b", "c"], "ranks": [1, 1, 2], "weight": 3},
    ]
    got = load_comparisons(write(tmp_path, rows)).records
    assert [(c.chosen, c.ranking, c.tiers) for c in got] == [
        (2, None, ((2,), (0, 3), (1,))),
        (3, None, ((3,), (1,))),
        (1, (1, 2, 0), None),
        (1, None, ((1,), (0,))),
        (0, None, ((0, 1), (2,))),
    ]
    assert got[1].unranked() == (0, 2) and got[4].weight == 3.0


def test_nectar_answers_and_hh_prompt(tmp_path):
    row = {
        "prompt": "\n\nHuman: Name a fruit.\n\nAssistant:",
        "good_natured": True,
        "source": "nectar",
        "answers": [
            {"answer": "Stone.", "model": "m1", "rank": 3},
            {"answer": "Apple.", "model": "m2", "rank": 1},
            {"answer": "A pear.", "model": "m3", "rank": 2},
        ],
    }
    (c,) = load_comparisons(write(tmp_path, [row])).records
    assert c.prompt == ({"role": "user", "content": "Name a fruit."},)
    assert (c.responses, c.ranking, c.chosen, c.source) == (("Stone.", "Apple.", "A pear."), (1, 2, 0), 1, "nectar")


@pytest.mark.parametrize(
    "row,field,message",
    [
        ({"prompt": "P", "responses": ["a", "b"], "ranking": [0, 0]}, "ranking", "more than one tier"),
        ({"prompt": "P", "responses": ["a", "b"], "ranking": [0, 2]}, "ranking", "not a response index"),
        ({"prompt": "P", "responses": ["a", "b"], "ranking": [[]]}, "ranking", "indices"),
        ({"prompt": "P", "responses": ["a", "b"], "ranking": "0,1"}, "ranking", "non-empty list"),
        ({"prompt": "P", "responses": ["a", "b"], "ranks": [1]}, "ranks", "expected 2 ranks"),
        ({"prompt": "P", "responses": ["a", "b"], "ranks": [None, None]}, "ranks", "no response has a rank"),
        ({"prompt": "P", "responses": ["a", "a"], "ranking": [0, 1]}, "responses", "identical"),
        ({"prompt": "P", "answers": [{"answer": "a", "rank": 1}, {"answer": "b", "rank": "x"}]}, "answers", "rank 1"),
        ({"prompt": "P", "answers": [{"answer": "a", "rank": 1}]}, "answers", "at least two"),
    ],
)
def test_bad_ranked_rows_name_line_and_field(tmp_path, row, field, message):
    good = {"prompt": "G", "responses": ["a", "b"], "ranking": [1, 0]}
    with pytest.raises(DataError, match=message) as info:
        load_comparisons(write(tmp_path, [good, row]), format="ranked")
    assert (info.value.line, info.value.field) == (2, field)


@pytest.mark.parametrize(
    "row,expected",
    [
        ({"prompt": "p", "responses": ["a", "b"], "ranking": [1, 0]}, "ranked"),
        ({"prompt": "p", "responses": ["a", "b"], "ranks": [2, 1]}, "ranked"),
        ({"prompt": "p", "answers": [{"answer": "a", "rank": 1}]}, "ranked"),
        ({"prompt": "p", "responses": ["a", "b"], "chosen": 0, "ranking": [0, 1]}, "rewardlab"),
        ({"prompt": "p", "responses": ["a", "b"], "scores": [1, 2]}, "ratings"),
        ({"prompt": "p", "responses": ["a", "b"], "chosen": 1, "scores": [1, 2]}, "rewardlab"),
        ({"instruction": "p", "completions": []}, "ratings"),
        ({"prompt": "p", "response": "r", "helpfulness": 3}, "helpsteer2"),
        ({"prompt": "p", "response_1": "a", "response_2": "b", "preference_strength": 1}, "helpsteer2_pref"),
        # tabular files give every row every column, with nulls
        ({"prompt": "p", "responses": ["a", "b"], "chosen": None, "ranking": [1, 0], "scores": None}, "ranked"),
    ],
)
def test_detect_new_formats(row, expected):
    assert detect_format(row) == expected
