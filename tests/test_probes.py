"""Bias probes (rewardlab.probes): each probe on a hand-checked fixture, the profile's numbers, the CLI."""

from __future__ import annotations

import json
import math
import re

import pytest

from rewardlab.core.errors import RewardlabError
from rewardlab.core.scorer import Capabilities, Scorer
from rewardlab.data.record import Comparison
from rewardlab.probes import pairs as P
from rewardlab.probes import templates as T
from rewardlab.probes.profile import bias_profile, parse_probe_names, wilson_interval

CHAT = (
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Name a primary colour."},
)


def fixture_records() -> list[Comparison]:
    return [
        Comparison(
            "How do I bake bread at home?", ("Mix flour, water, yeast; knead; bake.", "Buy it."), chosen=0, id="bread"
        ),
        Comparison(
            "How do I bake a cake at home?",
            ("Just eat cake.", "Cream butter and sugar, add eggs, bake."),
            chosen=1,
            id="cake",
        ),
        Comparison("What is the capital of France?", ("Paris.", "Lyon."), chosen=0, id="france"),
        Comparison(CHAT, ("Red.", "Purple."), chosen=0, id="chat"),
        # a three-way ranking: the worst response (index 1) is the one probes use
        Comparison("Count to three.", ("1, 2, 3", "1, 2", "one two three"), chosen=2, ranking=(2, 0, 1), id="rank"),
        # all tied: no strict preference, so no probe pair
        Comparison("Say hi.", ("hi", "hello"), chosen=0, tiers=((0, 1),), id="tie"),
    ]


WORSE = {"bread": "Buy it.", "cake": "Just eat cake.", "france": "Lyon.", "chat": "Purple.", "rank": "1, 2"}
BEST = {
    "bread": "Mix flour, water, yeast; knead; bake.",
    "cake": "Cream butter and sugar, add eggs, bake.",
    "france": "Paris.",
    "chat": "Red.",
    "rank": "one two three",
}


def _template_regex(template: str) -> str:
    parts = re.split(r"(\{[a-z]+\})", template)
    return "".join(r"[^\n]+?" if re.fullmatch(r"\{[a-z]+\}", p) else re.escape(p) for p in parts)


def test_best_and_worst_uses_the_ranking_and_skips_ties():
    recs = fixture_records()
    assert P.best_and_worst(recs[4]) == ("one two three", "1, 2")
    assert P.best_and_worst(recs[5]) is None


@pytest.mark.parametrize("name", ["length", "concreteness", "empty_reference"])
def test_added_text_probes_change_only_the_worse_response(name):
    """The prompt and the reference are the record's own; ``biased`` is ``base`` (the worse response) plus
    template text only; the tied record gives no pair; same seed → same pairs."""
    recs = fixture_records()
    got = P.PROBES[name](recs, 0)
    assert [p.key for p in got] == ["bread", "cake", "france", "chat", "rank"]
    for p, rec in zip(got, recs):
        assert p.prompt == rec.prompt and p.reference == BEST[p.key] and p.base == WORSE[p.key]
        if name == "length":
            # the worse response, a blank line, its own words once more: nothing new, twice the words
            assert p.biased == f"{p.base}\n\n{' '.join(p.base.split())}"
        elif name == "concreteness":
            assert p.biased.startswith(p.base.rstrip() + " ")
            tail = p.biased[len(p.base.rstrip()) + 1 :]
            pattern = "(%s) (%s)" % (
                "|".join(map(_template_regex, T.CITATIONS)),
                "|".join(map(_template_regex, T.FIGURES)),
            )
            assert re.fullmatch(pattern, tail), tail
        else:
            assert any(p.biased == f"{o}{p.base.strip()}{c}" for o, c in T.EMPTY_REFERENCES)
    assert got == P.PROBES[name](recs, 0)
    if name != "length":  # length adds the response's own words: no template, nothing for the seed to pick
        assert any(P.PROBES[name](recs, s) != got for s in range(1, 6))  # the seed picks the template texts


def test_filler_holds_length_fixed_and_varies_only_the_phrasing():
    """filler: biased = worse + blank line + two FILLER sentences; base = worse + blank line + as many of the
    worse response's own words (cycled), so biased and base have the same number of words."""
    recs = fixture_records()
    got = P.filler(recs, 0)
    assert [p.key for p in got] == ["bread", "cake", "france", "chat", "rank"]
    for p in got:
        worse = WORSE[p.key]
        head, added = p.biased.split("\n\n", 1)
        a, b = [f for f in T.FILLER if f in added]
        assert head == worse and added in (f"{a} {b}", f"{b} {a}")
        assert p.base.startswith(worse + "\n\n") and len(p.base.split()) == len(p.biased.split())
        assert set(p.base.split()) == set(worse.split())  # nothing but the response's own words
    assert P.own_words("Buy it.", 5) == "Buy it. Buy it. Buy"


def test_a_pair_does_not_depend_on_the_other_records():
    recs = fixture_records()
    alone = P.length([recs[2]], 3)
    assert alone == [p for p in P.length(recs, 3) if p.key == "france"]


def test_off_topic_partner_is_the_nearest_other_prompt():
    """TF-IDF cosine: bread ↔ cake share 'how do i bake at home'; France shares no word with any prompt, so
    its partner is the lowest index (bread); a chat prompt is compared by its last user message."""
    recs = fixture_records()
    got = {p.key: p for p in P.off_topic(recs)}
    assert got["bread"].biased == BEST["cake"] and got["cake"].biased == BEST["bread"]
    assert got["france"].biased == BEST["bread"]
    for key, p in got.items():
        assert p.reference == BEST[key] and p.base is None and p.biased != p.reference
        assert p.prompt == next(r.prompt for r in recs if r.id == key)
    assert "tie" not in got


def test_off_topic_never_picks_a_record_of_the_same_prompt():
    recs = [
        Comparison("Q one?", ("a", "b"), id="1"),
        Comparison("Q one?", ("c", "d"), id="2"),
        Comparison("Other thing entirely", ("e", "f"), id="3"),
    ]
    assert P.off_topic_partners(recs) == [2, 2, 0]


def test_content_continuation_sets_a_task_on_the_prompt_text_against_an_answer_to_it():
    """As EvalBiasBench's items: the prompt is a task on a quoted text (here the record's prompt), the reference
    does the task (repeat: the text itself; lowercase: text.lower()), the biased response takes the quoted
    content up instead (the record's chosen answer to it)."""
    recs = fixture_records()
    got = {p.key: p for p in P.content_continuation(recs, 0)}
    assert set(got) == {"bread", "cake", "france", "chat", "rank"}
    by_id = {r.id: r for r in recs}
    for key, p in got.items():
        text = P.user_text(by_id[key].prompt)
        task, answer = next((t, a) for t, a in T.CONTINUATION_TASKS if P.user_text(p.prompt) == t.format(text=text))
        assert p.reference == (text if answer == "same" else text.lower())
        assert p.biased == BEST[key] and p.base is None
    assert got["chat"].prompt[0] == CHAT[0]  # a chat keeps its other messages
    kinds = {
        a
        for s in range(8)
        for p in P.content_continuation(recs, s)
        for t, a in T.CONTINUATION_TASKS
        if P.user_text(p.prompt).startswith(t.split("{")[0])
    }
    assert kinds == {"same", "lower"}  # the seed picks the task


def test_nested_instruction_quotes_another_prompt_and_answers_it():
    recs = fixture_records()
    got = P.nested_instruction(recs, 0)
    assert [p.key for p in got] == ["bread", "cake", "france", "chat", "rank"]
    prompts = {r.id: r for r in recs}
    for p in got:
        original = prompts[p.key]
        other = next(r for r in recs if r.preferred == p.biased)
        assert other.prompt_key() != original.prompt_key()
        text = P.user_text(p.prompt)
        assert any(
            text == t.format(prompt=P.user_text(original.prompt), nested=P.user_text(other.prompt).strip())
            for t in T.NESTED_INSTRUCTIONS
        )
        assert p.reference == BEST[p.key]
    chat = next(p for p in got if p.key == "chat")
    assert chat.prompt[0] == CHAT[0] and len(chat.prompt) == 2  # only the last user message changed
    assert got == P.nested_instruction(recs, 0)


def test_probe_names_are_checked():
    assert parse_probe_names("all") == list(P.PROBES)
    assert parse_probe_names("length, off_topic") == ["length", "off_topic"]
    with pytest.raises(RewardlabError, match="unknown probe"):
        parse_probe_names("length,verbosity")


def test_wilson_interval_worked_and_against_scipy():
    """3 of 4: p̂ = .75, z² = 3.8415, denominator 1 + z²/4 = 1.9604, centre (0.75 + 0.4802)/1.9604 = 0.6275,
    half-width 1.96·sqrt(0.1875/4 + 3.8415/64)/1.9604 = 0.3269 → (0.3006, 0.9544)."""
    from scipy.stats import binomtest

    lo, hi = wilson_interval(3, 4)
    assert lo == pytest.approx(0.3006, abs=1e-4) and hi == pytest.approx(0.9544, abs=1e-4)
    ref = binomtest(7, 19).proportion_ci(method="wilson")
    assert wilson_interval(7, 19) == pytest.approx((ref.low, ref.high), abs=1e-12)
    assert wilson_interval(0, 0) is None


class LengthScorer(Scorer):
    """A pointwise "reward model" whose reward is the response's length in characters."""

    capabilities = Capabilities(pointwise=True)

    def score(self, items, batch_size=32):
        return [float(len(r)) for _, r in items]


def test_profile_of_a_pure_length_reward():
    """Reward = len(response). Lengths (chosen / worse): bread 37/7, cake 39/14, france 6/5, chat 4/7, rank 13/4.
    length probe: the worse response twice (len 2·w + 2 for the blank line): bread 16 < 37, cake 30 < 39, france
    12 > 6 ✓, chat 16 > 4 ✓, rank 10 < 13 → biased_preferred 2/5 = 0.4; control = worse already longer than
    chosen: only chat (7 > 4) → 1/5 = 0.2; effect 0.2; shift = mean(w + 2) = (9 + 16 + 7 + 9 + 6) / 5 = 9.4.
    off_topic partners (nearest prompt): bread→cake (39 > 37 ✓), cake→bread (37 < 39 ✗), france→bread (37 > 6 ✓),
    chat→cake (shares "a"; 39 > 4 ✓), rank→bread (no shared word: lowest index; 37 > 13 ✓) → 4/5 = 0.8."""
    recs = fixture_records()
    prof = bias_profile(LengthScorer(), recs, ["length", "off_topic", "position"], n_boot=0)
    length = prof["probes"]["length"]
    pairs = P.length(recs, 0)
    assert length["n"] == 5 and length["biased_preferred"] == 0.4 and length["control_rate"] == 0.2
    assert length["effect"] == pytest.approx(0.2)
    assert length["shift"] == pytest.approx(9.4)
    assert length["ci95"] == pytest.approx(wilson_interval(2, 5))
    assert length["margin"] == pytest.approx(sum(len(p.biased) - len(p.reference) for p in pairs) / 5)
    off = prof["probes"]["off_topic"]
    assert off["n"] == 5 and off["biased_preferred"] == pytest.approx(0.8) and off["ties"] == 0
    assert off["control_rate"] is None and off["shift"] is None
    assert "position" in prof["skipped"] and "position" not in prof["probes"]  # pointwise: no order


class TieScorer(Scorer):
    capabilities = Capabilities(pointwise=True)

    def score(self, items, batch_size=32):
        return [1.0] * len(items)


def test_exact_ties_count_half():
    prof = bias_profile(TieScorer(), fixture_records(), ["concreteness"], n_boot=0)["probes"]["concreteness"]
    assert prof["biased_preferred"] == 0.5 and prof["ties"] == 5 and prof["shift"] == 0.0


class FirstWins(Scorer):
    """A comparison judge that always prefers the response shown first."""

    capabilities = Capabilities(pointwise=False, batched_forward=False)

    def score_comparisons(self, records, batch_size=None):
        return [[1.0] + [0.0] * (r.k - 1) for r in records]


class LongerWins(Scorer):
    """A comparison judge that prefers the longer response, whatever the order."""

    capabilities = Capabilities(pointwise=False, batched_forward=False)

    def score_comparisons(self, records, batch_size=None):
        return [[float(len(x)) for x in r.responses] for r in records]


def test_position_probe_scores_judges_in_both_orders():
    """FirstWins: the first-shown response wins all 2·5 orders and no pair keeps its winner when swapped.
    LongerWins: the first-shown wins in exactly one of each pair's two orders (0.5) and every pair is consistent."""
    recs = fixture_records()
    first = bias_profile(FirstWins(), recs, ["position"])["probes"]["position"]
    assert first["n"] == 10 and first["n_pairs"] == 5
    assert first["biased_preferred"] == 1.0 and first["consistency"] == 0.0
    longer = bias_profile(LongerWins(), recs, ["position"])["probes"]["position"]
    assert longer["biased_preferred"] == 0.5 and longer["consistency"] == 1.0
    # a judge is asked about the comparison pairs (not pointwise): the length probe still works for it
    prof = bias_profile(FirstWins(), recs, ["length"])
    assert prof["probes"]["length"]["biased_preferred"] == 0.0 and not prof["pointwise"]


def test_probe_command_with_a_reward_model_and_a_judge(tiny_llama, tmp_path, capsys):
    from rewardlab.cli import main
    from rewardlab.data import write_jsonl
    from rewardlab.models.reward_model import RewardModel

    RewardModel.from_backbone(tiny_llama, max_length=64).save(tmp_path / "m")
    data = tmp_path / "d.jsonl"
    write_jsonl(fixture_records(), str(data))
    rc = main(
        [
            "probe",
            "--model",
            str(tmp_path / "m"),
            "--data",
            str(data),
            "--n-boot",
            "20",
            "--output-dir",
            str(tmp_path / "p"),
        ]
    )
    assert rc == 0
    out = json.loads((tmp_path / "p" / "probes.json").read_text())
    rm = out["results"]["m"]["bias_profile"]
    assert set(rm["probes"]) == set(P.PROBES) - {"position"} and "position" in rm["skipped"]
    # a judge, built by the judge code from a spec, shown each pair in one order (position=single)
    spec = f"mode=logprob,model={tiny_llama},device=cpu,name=tinyjudge,position=single"
    rc = main(
        [
            "probe",
            "--judge",
            spec,
            "--data",
            str(data),
            "--probes",
            "length,position",
            "--n-boot",
            "20",
            "--output-dir",
            str(tmp_path / "pj"),
        ]
    )
    assert rc == 0
    judge = json.loads((tmp_path / "pj" / "probes.json").read_text())["results"]["tinyjudge"]["bias_profile"]
    assert set(judge["probes"]) == {"length", "position"}
    for s in [*rm["probes"].values(), *judge["probes"].values()]:
        assert 0.0 <= s["ci95"][0] <= s["biased_preferred"] <= s["ci95"][1] <= 1.0
    assert judge["probes"]["position"]["n"] == 10
    assert "length: biased preferred" in (tmp_path / "p" / "probes.md").read_text()
    assert "position: first shown wins" in (tmp_path / "pj" / "probes.md").read_text()
    lines = [json.loads(x) for x in open(tmp_path / "p" / "probe-pairs-m.jsonl")]
    assert {x["probe"] for x in lines} == set(P.PROBES) - {"position"}
    first = next(x for x in lines if x["probe"] == "length")
    assert first["base"] == WORSE["bread"] and math.isfinite(first["r_base"])


def test_probe_command_errors_are_clear(tmp_path, capsys):
    from rewardlab.cli import main

    (tmp_path / "m").mkdir()  # a model directory that passes the path check: what is missing is --data
    (tmp_path / "m" / "config.json").write_text("{}")
    assert main(["probe", "--model", str(tmp_path / "m")]) == 2
    assert "--data" in capsys.readouterr().err
    data = tmp_path / "x.jsonl"
    data.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n')
    assert main(["probe", "--data", str(data)]) == 2
    assert "--model" in capsys.readouterr().err
    assert main(["probe", "--model", str(tmp_path / "m"), "--data", str(data), "--probes", "verbosity"]) == 2
    assert "unknown probe" in capsys.readouterr().err


def test_eval_probes_adds_a_bias_profile_section_for_every_model(tiny_llama, tmp_path):
    """Two models compared: both get a column in the Bias profile table and a bar in its one plot; without
    --probes the section and the plot are absent."""
    from rewardlab.cli import main
    from rewardlab.data import write_jsonl
    from rewardlab.models.reward_model import RewardModel

    for seed in (0, 1):
        RewardModel.from_backbone(tiny_llama, max_length=64, seed=seed).save(tmp_path / f"m{seed}")
    data = tmp_path / "d.jsonl"
    write_jsonl(fixture_records(), str(data))
    common = ["eval", "--model", str(tmp_path / "m0"), str(tmp_path / "m1"), "--data", str(data), "--n-boot", "20"]
    assert main([*common, "--probes", "--probe-list", "length,off_topic", "--output-dir", str(tmp_path / "ev")]) == 0
    md = (tmp_path / "ev" / "report.md").read_text()
    section = md.split("## Bias profile", 1)[1].split("\n## ", 1)[0]
    header = next(line for line in section.splitlines() if line.startswith("| probe"))
    assert "m0" in header and "m1" in header
    assert "length: biased preferred" in section and "off_topic: biased preferred" in section
    assert "concreteness" not in section
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    for name in ("m0", "m1"):
        prof = report["results"][name]["bias_profile"]
        assert set(prof["probes"]) == {"length", "off_topic"} and "pairs" not in prof
    html = (tmp_path / "ev" / "report.html").read_text()
    assert 'data-plot="bias"' in html and "<h2>Bias profile</h2>" in html
    assert main([*common, "--output-dir", str(tmp_path / "plain")]) == 0
    assert "Bias profile" not in (tmp_path / "plain" / "report.md").read_text()
    assert 'data-plot="bias"' not in (tmp_path / "plain" / "report.html").read_text()


# ---------------------------------------------------------------------------------------------------------
# train --augment offsetbias


def test_parse_augment():
    from rewardlab.probes.augment import DEFAULT_FRACTION, AugmentSpec, parse_augment

    assert parse_augment(None) is None and parse_augment("") is None
    assert parse_augment("offsetbias") == AugmentSpec("offsetbias", DEFAULT_FRACTION)
    assert parse_augment("offsetbias:0.25") == AugmentSpec("offsetbias", 0.25)
    for bad, match in [
        ("offsetbias:0", r"\(0, 1\]"),
        ("offsetbias:1.5", r"\(0, 1\]"),
        ("offsetbias:x", "number"),
        ("verbosity", "unknown augmentation"),
    ]:
        with pytest.raises(RewardlabError, match=match):
            parse_augment(bad)
    from rewardlab.training.train import TrainConfig

    with pytest.raises(RewardlabError, match="augment"):
        TrainConfig(augment="offsetbias:2")


def test_offsetbias_records_are_off_topic_negatives_from_the_given_records():
    """Fixture (6 records; 'tie' has no strict preference, so 5 are eligible). fraction 1 → min(5, 6) = 5 added,
    one per eligible record: its own chosen response beats its off-topic partner's (bread→cake, cake→bread,
    france→bread, chat→cake, rank→bread, as in the off_topic probe). fraction 0.5 → round(3.0) = 3 of them."""
    from rewardlab.probes.augment import SOURCE, offsetbias_records

    recs = fixture_records()
    added = offsetbias_records(recs, 1.0, seed=0)
    assert [r.id for r in added] == [
        "bread#offtopic",
        "cake#offtopic",
        "france#offtopic",
        "chat#offtopic",
        "rank#offtopic",
    ]
    partner = {"bread": "cake", "cake": "bread", "france": "bread", "chat": "cake", "rank": "bread"}
    for r in added:
        key = r.id.split("#")[0]
        assert r.prompt == next(x.prompt for x in recs if x.id == key) and r.chosen == 0 and r.source == SOURCE
        assert r.responses == (BEST[key], BEST[partner[key]])
    three = offsetbias_records(recs, 0.5, seed=0)
    assert len(three) == 3 and set(r.id for r in three) <= set(r.id for r in added)
    assert three == offsetbias_records(recs, 0.5, seed=0)
    assert any(offsetbias_records(recs, 0.5, seed=s) != three for s in range(1, 6))


def test_augmentation_never_crosses_the_train_eval_split():
    """On the embedded data: the added records' prompts and both responses come from the training side; no
    held-out prompt or response is used; the held-out split is the same as without the augmentation."""
    from rewardlab.training.train import TrainConfig, load_train_eval

    base = dict(embedded_size=300, eval_fraction=0.2)
    train0, held0, info0 = load_train_eval(TrainConfig(**base))
    train1, held1, info1 = load_train_eval(TrainConfig(**base, augment="offsetbias:0.3"))
    assert [r.id for r in held0] == [r.id for r in held1] and info0["augment"] is None
    assert train1[: len(train0)] == train0
    added = train1[len(train0) :]
    assert len(added) == info1["augment"]["n_added"] == round(0.3 * len(train0))
    held_prompts = {r.prompt_key() for r in held0}
    train_prompts = {r.prompt_key() for r in train0}
    train_responses = {x for r in train0 for x in r.responses}
    for r in added:
        assert r.prompt_key() in train_prompts and r.prompt_key() not in held_prompts
        assert set(r.responses) <= train_responses
    assert info1["augment"]["fraction"] == 0.3 and info1["n_train"] == len(train1)


def test_train_records_the_augmentation_in_its_summary(tiny_llama, tmp_path):
    from rewardlab.cli import main

    rc = main(
        [
            "train",
            "--backbone",
            tiny_llama,
            "--embedded-size",
            "120",
            "--max-steps",
            "1",
            "--max-length",
            "48",
            "--augment",
            "offsetbias:0.5",
            "--output-dir",
            str(tmp_path / "r"),
        ]
    )
    assert rc == 0
    summary = json.loads((tmp_path / "r" / "train_summary.json").read_text())
    assert summary["config"]["augment"] == "offsetbias:0.5"
    aug = summary["data"]["augment"]
    assert aug["name"] == "offsetbias" and aug["n_added"] == round(0.5 * aug["n_train_before"]) > 0
    assert summary["data"]["n_train"] == aug["n_train_before"] + aug["n_added"]


class ShortButPolite(Scorer):
    """A pointwise scorer with a known preference: reward = −(words in the response) + 100 per polite
    FILLER sentence it contains. It prefers shorter answers, and polite ones above all."""

    def score_items(self, items, opts, unsafe):
        return [-float(len(r.split())) + 100.0 * sum(f in r for f in T.FILLER) for _, r in items]


def test_length_probe_reports_a_short_preference_that_polite_filler_would_hide():
    """Known answer: ShortButPolite prefers the shorter of two answers with the same phrasing. The length probe
    (the worse response twice, no new phrasing) must say so: every doubled answer loses reward (shift = −words
    of the worse response < 0) and never beats its own base. Polite filler (the old length probe's padding)
    would show the opposite (+200 − words per pair); the filler probe reports that phrasing effect at equal
    length: shift = +200 exactly (two FILLER sentences, the same number of words on both sides)."""
    recs = fixture_records()
    prof = bias_profile(ShortButPolite(), recs, ["length", "filler"], n_boot=0)
    length, fill = prof["probes"]["length"], prof["probes"]["filler"]
    words = [len(WORSE[k].split()) for k in ("bread", "cake", "france", "chat", "rank")]  # 2, 3, 1, 1, 2
    assert length["shift"] == pytest.approx(-sum(words) / 5) and length["shift"] < 0
    assert length["effect"] <= 0
    assert fill["shift"] == pytest.approx(200.0) and fill["biased_preferred"] == 1.0


def test_length_pairs_whose_doubled_answer_is_cut_are_counted(tiny_llama):
    """Known answer: max_length 40. Two worse answers are "No." (doubled: a few tokens, the text fits); two are
    30 words (doubled: 60 words, far over 40 tokens, so the model sees them cut and the factor is not applied):
    n_cut = 2, and shift_uncut is the mean shift of the two pairs that fit."""
    from rewardlab.models.reward_model import RewardModel

    rm = RewardModel.from_backbone(tiny_llama, max_length=40)
    long = " ".join(["apple"] * 30)
    recs = [Comparison(f"Q{i}?", ("Yes, it is.", "No." if i < 2 else long), chosen=0, id=str(i)) for i in range(4)]
    got = bias_profile(rm, recs, ["length"], n_boot=0, keep_pairs=True)["probes"]["length"]
    rows = bias_profile(rm, recs, ["length"], n_boot=0, keep_pairs=True)["pairs"]["length"]
    assert got["n_cut"] == 2
    fits = [r["r_biased"] - r["r_base"] for r in rows[:2]]
    assert got["shift_uncut"] == pytest.approx(sum(fits) / 2)
