"""``rewardlab bon``: the analysis on hand-made scores, and the command end to end on tiny real reward models
(refusals before work, gold failures counted, non-finite scores stopped with the sample id, the report files)."""

from __future__ import annotations

import json

import pytest
import torch

from rewardlab.bon import analysis as analysis_mod
from rewardlab.bon.analysis import BonConfig, analyse, check_ns, default_ns
from rewardlab.bon.candidates import read_candidates
from rewardlab.cli import main
from rewardlab.core.errors import RewardlabError
from rewardlab.models.reward_model import RewardModel


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_default_ns():
    assert default_ns(12) == [1, 2, 4, 8, 12]
    assert default_ns(8) == [1, 2, 4, 8]
    assert default_ns(1) == [1]


def test_candidate_reader_both_shapes(tmp_path):
    """Per prompt and per sample rows give the same sets; per-sample rows group consecutive equal prompts."""
    a = write_jsonl(tmp_path / "a.jsonl", [{"id": "p", "prompt": "q", "responses": ["x", "y"], "gold": [1, None]}])
    b = write_jsonl(
        tmp_path / "b.jsonl",
        [{"prompt": "q", "response": "x", "gold": 1}, {"prompt": "q", "response": "y", "gold": None}],
    )
    sa, sb = read_candidates(a), read_candidates(b)
    assert sa[0].responses == sb[0].responses == ["x", "y"] and sa[0].gold == sb[0].gold == [1.0, None]
    bad = write_jsonl(tmp_path / "c.jsonl", [{"prompt": "q", "responses": ["x"], "gold": [1, 2]}])
    with pytest.raises(RewardlabError, match=r"c.jsonl, line 1, field 'gold': expected a list of 1 values"):
        read_candidates(bad)


def test_analyse_hand_worked(tmp_path):
    """Two prompts of N = 3, labels gold, two proxies.
    P0: gold [0, 1, 0]; proxy A [1, 2, 3] (the top sample is wrong), proxy B [3, 2, 1].
    P1: gold [1, 0, 0]; A [3, 1, 2], B [1, 3, 2].
    Weights N = 3: n = 1 → [1/3]·3; n = 3 → the top sample only.
    A, n = 3: P0 top = sample 2 (gold 0), P1 top = sample 0 (gold 1) → mean gold 0.5; n = 1 → (1/3 + 1/3)/2 = 1/3.
    B, n = 3: P0 top = sample 0 (0), P1 top = sample 1 (0) → 0.
    Ensemble min (no standardizing): P0 [1, 2, 1] → the top is sample 1 (gold 1); P1 [1, 1, 2] → sample 2 (gold 0)
    → 0.5 at n = 3."""
    f = write_jsonl(
        tmp_path / "c.jsonl",
        [
            {"id": "p0", "prompt": "a", "responses": ["x", "y", "z"], "gold": [0, 1, 0]},
            {"id": "p1", "prompt": "b", "responses": ["x", "y", "z"], "gold": [1, 0, 0]},
        ],
    )
    sets = read_candidates(f)
    cfg = BonConfig(samples=str(f), proxy=["A", "B"], gold="labels", standardize=False, n_boot=0, ensemble=["min"])
    proxies = {"A": [[1, 2, 3], [3, 1, 2]], "B": [[3, 2, 1], [1, 3, 2]]}
    res = analyse(cfg, sets, [1, 2, 3], proxies, [s.gold for s in sets], "labels", [])
    a, b, m = (res["scorers"][k]["curve"]["gold"] for k in ("A", "B", "ensemble-min"))
    assert a[0] == pytest.approx(1 / 3) and a[-1] == pytest.approx(0.5)
    assert b[-1] == pytest.approx(0.0)
    assert m[-1] == pytest.approx(0.5)
    assert res["scorers"]["ensemble-min"]["made_by"].startswith("ensemble of A, B: worst case")
    assert res["scorers"]["A"]["gao"]["kl"] == "bound"


def test_gold_failure_is_counted_and_its_prompt_left_out(tmp_path):
    """P1's second sample has a null label: it is counted, P1 leaves every curve, P0 alone remains (gold at n = 3
    under A is P0's top sample: 0), never read as gold 0."""
    f = write_jsonl(
        tmp_path / "c.jsonl",
        [
            {"id": "p0", "prompt": "a", "responses": ["x", "y", "z"], "gold": [0, 1, 0]},
            {"id": "p1", "prompt": "b", "responses": ["x", "y", "z"], "gold": [1, None, 0]},
        ],
    )
    sets = read_candidates(f)
    cfg = BonConfig(samples=str(f), proxy=["A"], gold="labels", n_boot=0)
    gold, how, failures = analysis_mod.gold_scores(cfg, sets, [])
    assert failures == [{"sample": "p1#1", "reason": "gold label is null"}]
    res = analyse(cfg, sets, [1, 3], {"A": [[1, 2, 3], [3, 1, 2]]}, gold, how, failures)
    assert res["n_prompts_analysed"] == 1 and res["gold_failures"]["prompts_left_out"] == 1
    assert res["scorers"]["A"]["curve"]["gold"] == pytest.approx([1 / 3, 0.0])


def test_embedded_checker_failure_marked(tmp_path):
    """A prompt whose meta names no embedded task: each of its samples fails the checker with the reason."""
    f = write_jsonl(
        tmp_path / "c.jsonl",
        [
            {
                "id": "ok",
                "prompt": "a",
                "responses": ["4", "5"],
                "meta": {"task": "arithmetic", "a": 2, "b": 2, "answer": 4},
            },
            {"id": "bad", "prompt": "b", "responses": ["x", "y"], "meta": {"task": "poetry"}},
        ],
    )
    sets = read_candidates(f)
    gold, _, failures = analysis_mod.gold_scores(BonConfig(gold="embedded"), sets, [])
    assert gold[0] == [1.0, 0.75]  # 4 is the sum; 5 is off by one: 1 − 0.25
    assert gold[1] == [None, None]
    assert [x["sample"] for x in failures] == ["bad#0", "bad#1"] and "'poetry' is not an embedded task" in failures[0][
        "reason"
    ]


def test_asked_n_above_N_refused(tmp_path):
    f = write_jsonl(
        tmp_path / "c.jsonl",
        [{"id": "big", "prompt": "a", "responses": ["x"] * 8}, {"id": "small", "prompt": "b", "responses": ["x"] * 4}],
    )
    with pytest.raises(RewardlabError, match=r"n=8 but prompt 'small' has only N=4"):
        check_ns(read_candidates(f), [1, 8])
    assert check_ns(read_candidates(f), None) == [1, 2, 4]


@pytest.fixture(scope="module")
def tiny_rms(tmp_path_factory, tiny_llama):
    d = tmp_path_factory.mktemp("rms")
    out = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        RewardModel.from_backbone(tiny_llama, max_length=64).save(d / f"rm{seed}")
        out.append(str(d / f"rm{seed}"))
    return out


def _embedded_samples(path, n=6):
    from rewardlab.data.synthetic import generate

    rows = []
    for r in generate(6, seed=0):
        rows.append(
            {
                "id": r.id,
                "prompt": r.prompt,
                "meta": r.meta,
                "responses": [r.responses[k % 2] + " " * (k // 2) for k in range(n)],
            }
        )
    return write_jsonl(path, rows)


@pytest.mark.slow
def test_bon_command_end_to_end(tmp_path, tiny_rms, capsys):
    samples = _embedded_samples(tmp_path / "s.jsonl")
    out = tmp_path / "rep"
    argv = ["bon", "--samples", str(samples), "--proxy", *tiny_rms, "--n-boot", "50", "--output-dir", str(out)]
    assert main(argv) == 0
    rep = json.loads((out / "report.json").read_text())["results"]
    assert rep["ns"] == [1, 2, 4, 6]
    assert set(rep["scorers"]) == {"rm0", "rm1", "ensemble-mean", "ensemble-min", "ensemble-uwo"}
    assert rep["gold_failures"]["samples"] == 0
    html = (out / "report.html").read_text()
    assert html.count('data-plot="') == 3 and "KL = log n − (n−1)/n (bound)" not in html  # the axis label is in the PNG
    assert "bound = analytic bound log n - (n-1)/n" in html
    rows = [json.loads(x) for x in (out / "scores.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and len(rows[0]["proxy"]["rm0"]) == 6 and len(rows[0]["gold"]) == 6
    md = (out / "report.md").read_text()
    assert "## Summary" in md and "n* [95%]" in md


def test_bon_refusals_before_work(tmp_path, tiny_rms, capsys, monkeypatch):
    samples = _embedded_samples(tmp_path / "s.jsonl", n=4)
    out = tmp_path / "rep"
    import rewardlab.scoring.loader

    loads = []
    real = rewardlab.scoring.loader.load_reward_model
    monkeypatch.setattr(rewardlab.scoring.loader, "load_reward_model", lambda *a, **k: loads.append(a) or real(*a, **k))
    code = main(["bon", "--samples", str(samples), "--proxy", tiny_rms[0], "--ns", "1", "8", "--output-dir", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "n=8 but prompt 'synthetic-0-0' has only N=4" in err
    assert not loads and not any(out.glob("*"))


def test_nonfinite_score_stops_with_the_sample_id(tmp_path, tiny_rms, capsys, monkeypatch):
    samples = _embedded_samples(tmp_path / "s.jsonl", n=4)
    real = analysis_mod.score_items

    def poisoned(rm, items, **kw):
        s = real(rm, items, **kw)
        s[5] = float("nan")  # prompt 1 (4 samples each), sample 1
        return s

    monkeypatch.setattr(analysis_mod, "score_items", poisoned)
    out = tmp_path / "rep"
    code = main(["bon", "--samples", str(samples), "--proxy", tiny_rms[0], "--output-dir", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "gave a non-finite score (nan) to sample synthetic-0-1#1" in err
    assert not any(out.glob("*"))


def test_scorer_nonfinite_error_names_the_sample(tmp_path, tiny_rms, capsys, monkeypatch):
    """The scorer's own check (rewardlab.core.finite) names text #5; bon turns it into the sample id: 4 samples a
    prompt, so #5 is prompt 1's sample 1."""
    from rewardlab.core.finite import NonFiniteError

    samples = _embedded_samples(tmp_path / "s.jsonl", n=4)

    def raising(rm, items, **kw):
        raise NonFiniteError("scoring: the model gave a non-finite reward (nan) for text #5; its weights overflow")

    monkeypatch.setattr(analysis_mod, "score_items", raising)
    out = tmp_path / "rep"
    assert main(["bon", "--samples", str(samples), "--proxy", tiny_rms[0], "--output-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "non-finite score to sample synthetic-0-1#1" in err
    assert not any(out.glob("*"))


def test_summary_says_how_many_resamples_the_n_star_interval_covers():
    """The n* interval is taken over the resamples whose fit peaks inside the measured n only; the summary row
    must say what share those are, or a 65%-of-resamples interval reads as a 95% one. Hand-made: n* 3.7 with
    interval [1.3, 6.5] from 654 of 1000 resamples → '65%'; a fit with no peak (β ≤ 0) whose resamples peak inside
    in 20 of 1000 → '2%'; no bootstrap (inside_share None) → nothing added."""
    from rewardlab.bon.report import summary_rows

    def scorer(gao):
        curve = {"gold": [0.1, 0.3, 0.2], "gold_ci": None, "proxy": [0.0, 1.0, 2.0], "proxy_ci": None}
        base = {"alpha": 0.1, "beta": 0.05, "n_star": None, "n_star_ci": None, "shape": "keeps rising"}
        return {"curve": curve, "gao": {**base, **gao}}

    results = {
        "ns": [1, 2, 4],
        "scorers": {
            "peaks": scorer({"n_star": 3.7, "n_star_ci": [1.3, 6.5], "inside_share": 0.654}),
            "rises": scorer({"beta": -0.01, "inside_share": 0.02}),
            "no-boot": scorer({"n_star": 3.7, "inside_share": None}),
        },
    }
    peaks, rises, no_boot = (row[-1] for row in summary_rows(results))
    assert peaks == "3.7000 [1.3000, 6.5000]; 65% of resamples peak inside the measured n"
    assert rises == "keeps rising; 2% of resamples peak inside the measured n"
    assert no_boot == "3.7000"
