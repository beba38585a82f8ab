"""Hand-worked tests for rewardlab.metrics, rewardlab.evaluation.report and rewardlab.core.provenance."""

from __future__ import annotations

import hashlib
import json
import math
import re
from types import SimpleNamespace

import numpy as np
import pytest

from rewardlab.core import provenance as provenance_mod
from rewardlab.core.provenance import git_info, provenance, tokenizer_info
from rewardlab.data.record import Comparison
from rewardlab.evaluation.report import render_markdown, write_report
from rewardlab.metrics.accuracy import accuracy_summary
from rewardlab.metrics.calibration import calibration, expected_calibration_error
from rewardlab.metrics.pairs import pair_margins, pairwise_outcomes
from rewardlab.metrics.statistics import bootstrap_ci, length_correlation
from rewardlab.metrics.summary import evaluate_scores

LN3 = math.log(3.0)  # σ(ln 3) = 3 / (3 + 1) = 0.75


# ------------------------------------------------------------------------------------------------
# accuracy


def test_accuracy_with_a_tie_is_strict():
    """scores [[2,1],[1,1],[0,3]], chosen = 0 everywhere.

    Pair 0: 2 > 1 → win.  Pair 1: 1 = 1 → tie (not a win).  Pair 2: 0 < 3 → loss.
    wins = 1, ties = 1, pairs = 3 → accuracy 1/3, tie rate 1/3.
    margins = [2−1, 1−1, 0−3] = [1, 0, −3] → mean margin −2/3.
    """
    wins, ties, record = pairwise_outcomes([[2, 1], [1, 1], [0, 3]], [0, 0, 0])
    assert wins.tolist() == [True, False, False]
    assert ties.tolist() == [False, True, False]
    assert record.tolist() == [0, 1, 2]
    s = accuracy_summary([[2, 1], [1, 1], [0, 3]], [0, 0, 0])
    assert s["n_pairs"] == 3 and s["wins"] == 1 and s["ties"] == 1
    assert s["accuracy"] == pytest.approx(1 / 3)
    assert s["tie_rate"] == pytest.approx(1 / 3)
    assert s["mean_margin"] == pytest.approx(-2 / 3)


def test_all_equal_rewards_score_zero_not_half():
    """A model that gives every response reward 0: every pair is a tie, none a win → accuracy 0, tie rate 1."""
    s = accuracy_summary([[0, 0], [0, 0]], [0, 1])
    assert s["accuracy"] == 0.0 and s["tie_rate"] == 1.0


def test_k3_record_gives_two_pairs():
    """One K = 3 record, rewards [5, 1, 2], chosen 0: pairs (5 vs 1) and (5 vs 2), both wins.

    margins = [5−1, 5−2] = [4, 3]; both pairs belong to record 0.
    """
    wins, ties, record = pairwise_outcomes([[5, 1, 2]], [0])
    assert wins.tolist() == [True, True] and ties.tolist() == [False, False]
    assert record.tolist() == [0, 0]
    margins, rec = pair_margins([[5, 1, 2]], [0])
    assert margins.tolist() == [4.0, 3.0] and rec.tolist() == [0, 0]


def test_k3_accuracy_is_pooled_over_pairs():
    """Record 0: [5, 1, 2], chosen 0 → 2 wins of 2 pairs.  Record 1: [0, 1], chosen 0 → 0 of 1.
    Pooled accuracy = (2 + 0) / (2 + 1) = 2/3 (not the mean of per-record accuracies, (1 + 0)/2).
    Record 2: [0, 1, 2], chosen 1 → 1 > 0 win, 1 < 2 loss: alone, accuracy 1/2.
    """
    s = accuracy_summary([[5, 1, 2], [0, 1]], [0, 0])
    assert s["n_records"] == 2 and s["n_pairs"] == 3
    assert s["accuracy"] == pytest.approx(2 / 3)
    assert accuracy_summary([[0, 1, 2]], [1])["accuracy"] == pytest.approx(0.5)


def test_per_source_accuracy():
    """Sources a, a, b with rewards [[2,1],[1,1],[0,3]], chosen 0.

    a: records 0 and 1 → win, tie → accuracy 1/2, 1 tie, n = 2.   b: record 2 → loss → accuracy 0, n = 1.
    A source with one record has a degenerate bootstrap interval [acc, acc].
    """
    s = accuracy_summary([[2, 1], [1, 1], [0, 3]], [0, 0, 0], ["a", "a", "b"], seed=0, n_boot=200)
    assert list(s["per_source"]) == ["a", "b"]
    a, b = s["per_source"]["a"], s["per_source"]["b"]
    assert (a["n"], a["n_pairs"], a["ties"]) == (2, 2, 1) and a["accuracy"] == pytest.approx(0.5)
    assert (b["n"], b["n_pairs"], b["ties"]) == (1, 1, 0) and b["accuracy"] == 0.0
    assert b["ci95"] == [0.0, 0.0]


def test_bad_input_raises():
    """Mismatched lengths, a chosen index out of range, a single reward or a NaN reward are errors."""
    with pytest.raises(ValueError):
        pairwise_outcomes([[1, 2]], [0, 0])
    with pytest.raises(ValueError):
        pairwise_outcomes([[1, 2]], [2])
    with pytest.raises(ValueError):
        pairwise_outcomes([[1]], [0])
    with pytest.raises(ValueError):
        pairwise_outcomes([[1, float("nan")]], [0])


# ------------------------------------------------------------------------------------------------
# calibration


def test_log_loss_and_brier_at_zero_margin():
    """Δ = 0 → P = σ(0) = 1/2.  log-loss = −log(1/2) = log 2 ≈ 0.6931;  Brier = (1 − 1/2)² = 0.25."""
    c = calibration([0.0, 0.0, 0.0])
    assert c["log_loss"] == pytest.approx(math.log(2))
    assert c["brier"] == pytest.approx(0.25)


def test_log_loss_and_brier_at_large_margin_are_finite():
    """Δ = 50 → 1 − P = σ(−50) ≈ e^−50 ≈ 1.9e−22.
    log-loss = log(1 + e^−50) ≈ e^−50 (finite, ≈ 0, never log(0)); Brier = (e^−50)² ≈ 3.7e−44 ≈ 0.
    Δ = −1000 (confidently wrong) → log-loss = log(1 + e^1000) ≈ 1000, finite (naive log σ gives inf).
    """
    c = calibration([50.0])
    assert math.isfinite(c["log_loss"]) and 0 <= c["log_loss"] < 1e-20
    assert c["log_loss"] == pytest.approx(math.exp(-50), rel=1e-6)
    assert 0 <= c["brier"] < 1e-40
    wrong = calibration([-1000.0])
    assert wrong["log_loss"] == pytest.approx(1000.0)
    assert wrong["brier"] == pytest.approx(1.0)


def test_ece_on_constructed_probabilities():
    """p = [0.25, 0.25, 0.75, 0.75], labels [0, 0, 1, 1], 10 bins of width 0.1.

    Bin 2 ([0.2, 0.3)): n = 2, mean p 0.25, mean label 0 → |0 − 0.25| = 0.25.
    Bin 7 ([0.7, 0.8)): n = 2, mean p 0.75, mean label 1 → |1 − 0.75| = 0.25.
    ECE = 2/4 · 0.25 + 2/4 · 0.25 = 0.25.
    Second case: p = [0.25] * 4 with labels [1, 0, 0, 0] → mean label 0.25 = mean p → ECE = 0.
    p = 1.0 falls in the last bin ([0.9, 1.0]).
    """
    ece, bins = expected_calibration_error([0.25, 0.25, 0.75, 0.75], [0, 0, 1, 1])
    assert ece == pytest.approx(0.25)
    assert len(bins) == 10 and [b["count"] for b in bins] == [0, 0, 2, 0, 0, 0, 0, 2, 0, 0]
    assert bins[2]["mean_p"] == pytest.approx(0.25) and bins[2]["mean_label"] == 0.0
    assert bins[0]["mean_p"] is None and bins[0]["mean_label"] is None
    assert expected_calibration_error([0.25] * 4, [1, 0, 0, 0])[0] == pytest.approx(0.0)
    _, bins = expected_calibration_error([1.0], [1])
    assert bins[9]["count"] == 1


def test_ece_with_random_orientation_has_known_answer():
    """Every pair has Δ = ln 3, so the model gives the preferred response P = 0.75 and is right every time.

    Oriented (preferred, other): p = 0.75, label 1 → bin 7, error |1 − 0.75| = 0.25.
    Oriented (other, preferred): p = 0.25, label 0 → bin 2, error |0 − 0.25| = 0.25.
    Whatever the coin says, ECE = 0.25 = 1 − P.  With Δ = −ln 3 (P = 0.25 on the preferred one):
    p = 0.25 with label 1 or p = 0.75 with label 0 → error 0.75 either way → ECE = 0.75.
    With 200 pairs both orientations occur (labels are not all 1), and the same seed gives the same table.
    """
    for seed in (0, 1, 7):
        right = calibration([LN3] * 200, seed=seed)
        assert right["ece"] == pytest.approx(0.25)
        assert calibration([-LN3] * 200, seed=seed)["ece"] == pytest.approx(0.75)
    counts = [b["count"] for b in right["bins"]]
    assert counts[2] > 0 and counts[7] > 0 and counts[2] + counts[7] == 200
    assert right["bins"][7]["mean_label"] == 1.0 and right["bins"][2]["mean_label"] == 0.0
    assert calibration([LN3] * 200, seed=7)["bins"] == right["bins"]
    # confident and right → ECE ≈ 0; confident and wrong → ECE ≈ 1
    assert calibration([50.0] * 20)["ece"] == pytest.approx(0.0, abs=1e-12)
    assert calibration([-50.0] * 20)["ece"] == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------------
# length correlation


def test_length_correlation_perfect_and_degenerate():
    """rewards [1, 2, 3, 4] vs lengths [10, 20, 30, 40]: lengths = 10·rewards, an exact line → Pearson 1,
    Spearman 1.  Reversed lengths → −1.  lengths [1, 4, 9, 100]: monotone but not linear → Spearman 1,
    Pearson < 1.  Constant rewards (zero variance) or one point → both None, no NaN, no warning.
    """
    c = length_correlation([1, 2, 3, 4], [10, 20, 30, 40])
    assert c["pearson"] == pytest.approx(1.0) and c["spearman"] == pytest.approx(1.0)
    c = length_correlation([1, 2, 3, 4], [40, 30, 20, 10])
    assert c["pearson"] == pytest.approx(-1.0) and c["spearman"] == pytest.approx(-1.0)
    c = length_correlation([1, 2, 3, 4], [1, 4, 9, 100])
    assert c["spearman"] == pytest.approx(1.0) and c["pearson"] < 0.99
    assert length_correlation([0.1] * 5, [1, 2, 3, 4, 5]) == {"pearson": None, "spearman": None}
    assert length_correlation([1, 2, 3], [7, 7, 7]) == {"pearson": None, "spearman": None}
    assert length_correlation([1.0], [3.0]) == {"pearson": None, "spearman": None}


def test_spearman_uses_average_ranks_for_ties():
    """rewards [1, 1, 2] rank to [1.5, 1.5, 3]; lengths [1, 2, 3] rank to [1, 2, 3].
    Centred: x = [−0.5, −0.5, 1], y = [−1, 0, 1]; Σxy = 0.5 + 0 + 1 = 1.5;
    Σx² = 0.25 + 0.25 + 1 = 1.5; Σy² = 2 → ρ = 1.5 / √(1.5 · 2) = 1.5 / √3 ≈ 0.8660.
    """
    c = length_correlation([1, 1, 2], [1, 2, 3])
    assert c["spearman"] == pytest.approx(1.5 / math.sqrt(3))


# ------------------------------------------------------------------------------------------------
# bootstrap


def test_bootstrap_ci_contains_estimate_and_is_deterministic():
    """values = seven 1s and three 0s → mean 0.7.  Resampled means spread around 0.7 (sd ≈ √(0.21/10)
    ≈ 0.145), so the 95% percentile interval is roughly [0.4, 1.0] and contains 0.7. The same seed
    draws the same resamples → the same interval; constant values → the degenerate interval [c, c].
    """
    values = [1, 0, 1, 1, 0, 1, 0, 1, 1, 1]
    low, high = bootstrap_ci(values, n=1000, seed=0)
    assert low <= 0.7 <= high and low < high
    assert 0.3 <= low <= 0.6 and high >= 0.9
    assert bootstrap_ci(values, n=1000, seed=0) == (low, high)
    assert bootstrap_ci([2.5] * 4, seed=3) == (2.5, 2.5)
    with pytest.raises(ValueError):
        bootstrap_ci([])


def test_bootstrap_resamples_rows_whole():
    """Rows [wins, pairs] = [2, 2] and [0, 1]: any resample is a mix of those two records, so the
    pooled accuracy Σwins / Σpairs is in [0, 1]; an interval over records never splits a record."""
    rows = np.array([[2.0, 2.0], [0.0, 1.0]])
    low, high = bootstrap_ci(rows, stat=lambda r: r[:, 0].sum() / r[:, 1].sum(), n=200, seed=0)
    assert 0.0 <= low <= 2 / 3 <= high <= 1.0


# ------------------------------------------------------------------------------------------------
# evaluate_scores


def _records():
    return [
        Comparison("p0", ("aa", "b"), chosen=0, source="hh", id="r0"),
        Comparison("p1", ("c", "ddd"), chosen=1, source="hh", id="r1"),
        Comparison("p2", ("eeee", "ff", "g"), chosen=0, source="shp", id="r2"),
    ]


def test_evaluate_scores_hand_worked():
    """r0: [2, 1], chosen 0 → 2 > 1 win, margin 1.       r1: [1, 1], chosen 1 → tie, margin 0.
    r2: [3, 4, 0], chosen 0 → 3 < 4 loss (margin −1), 3 > 0 win (margin 3).
    Pairs 4, wins 2, ties 1 → accuracy 0.5, tie rate 0.25, mean margin (1 + 0 − 1 + 3)/4 = 0.75.
    hh: 1 win of 2 → 0.5 (n 2);  shp: 1 win of 2 → 0.5 (n 1).
    Rewards [2, 1, 1, 1, 3, 4, 0]: mean 12/7; chosen [2, 1, 3] → mean 2; rejected [1, 1, 4, 0] → mean 1.5.
    Lengths [2, 1, 1, 3, 4, 2, 1] against those rewards: both vary, so Pearson is a number.
    """
    out = evaluate_scores(_records(), [[2, 1], [1, 1], [3, 4, 0]], seed=0)
    json.dumps(out, allow_nan=False)  # JSON-serialisable, no NaN
    assert out["n_records"] == 3 and out["n_pairs"] == 4
    assert out["accuracy"] == 0.5 and out["ties"] == 1 and out["tie_rate"] == 0.25
    assert out["mean_margin"] == pytest.approx(0.75)
    low, high = out["accuracy_ci95"]
    assert low <= 0.5 <= high
    assert out["per_source"]["hh"]["n"] == 2 and out["per_source"]["hh"]["accuracy"] == 0.5
    assert out["per_source"]["shp"]["n"] == 1 and out["per_source"]["shp"]["accuracy"] == 0.5
    rs = out["reward_stats"]
    assert rs["mean"] == pytest.approx(12 / 7) and rs["mean_chosen"] == pytest.approx(2.0)
    assert rs["mean_rejected"] == pytest.approx(1.5) and rs["n_responses"] == 7
    assert rs["std"] == pytest.approx(np.std([2, 1, 1, 1, 3, 4, 0]))
    expected = np.corrcoef([2, 1, 1, 1, 3, 4, 0], [2, 1, 1, 3, 4, 2, 1])[0, 1]
    assert out["length_correlation"]["pearson"] == pytest.approx(expected)
    assert set(out["calibration"]) >= {"log_loss", "brier", "ece", "bins"}
    assert evaluate_scores(_records(), [[2, 1], [1, 1], [3, 4, 0]], seed=0) == out
    with pytest.raises(ValueError):
        evaluate_scores(_records(), [[2, 1], [1, 1], [3, 4]])  # r2 has 3 responses


# ------------------------------------------------------------------------------------------------
# report


def _md_tables(text: str) -> dict[str, list[list[str]]]:
    """Markdown → {section heading: rows of the first table under it (header first, rule dropped)}."""
    tables, heading = {}, None
    for line in text.splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        elif line.startswith("|") and heading is not None:
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if all(re.fullmatch(r":?-+:?", c) for c in cells):
                continue
            tables.setdefault(heading, []).append(cells)
    return tables


def test_write_report_writes_both_files(tmp_path):
    """Two columns, "untrained" and "trained", over the three records of the hand-worked case.

    untrained: every reward 0 → all 4 pairs tie → accuracy 0.0000, ties "4 (1.0000)", mean margin
    0.0000, log-loss log 2 = 0.6931, Brier 0.2500, Pearson "—" (constant rewards). trained: the hand-worked case above → accuracy 0.5000, ties "1 (0.2500)",
    mean margin 0.7500. Per-source rows: hh and shp, one cell per column.
    """
    records = _records()
    results = {
        "untrained": evaluate_scores(records, [[0, 0], [0, 0], [0, 0, 0]], n_boot=100),
        "trained": evaluate_scores(records, [[2, 1], [1, 1], [3, 4, 0]], n_boot=100),
    }
    prov = provenance({"lr": 1e-5, "out": tmp_path}, data_fingerprint="abc123")
    json_path, md_path = write_report(tmp_path / "out", results, "Tiny eval", prov, notes=["a note | with pipe"])
    assert json_path.name == "report.json" and md_path.name == "report.md"
    assert sorted(p.name for p in json_path.parent.iterdir()) == [
        "report.html",
        "report.json",
        "report.md",
    ]  # no temp left

    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert data["title"] == "Tiny eval" and list(data["results"]) == ["untrained", "trained"]
    assert data["provenance"]["data_fingerprint"] == "abc123"
    assert data["results"]["trained"]["accuracy"] == 0.5

    text = md_path.read_text(encoding="utf-8")
    assert text.startswith("# Tiny eval\n")
    tables = _md_tables(text)
    summary = {row[0]: row[1:] for row in tables["Summary"]}
    assert summary["metric"] == ["untrained", "trained"]
    for label in (
        "accuracy [95% CI]",
        "ties (rate)",
        "mean margin",
        "log-loss",
        "Brier",
        "ECE",
        "reward–length Pearson",
    ):
        assert label in summary and len(summary[label]) == 2
    assert summary["accuracy [95% CI]"][0].startswith("0.0000 [")
    assert re.fullmatch(r"0\.5000 \[\d\.\d{4}, \d\.\d{4}\]", summary["accuracy [95% CI]"][1])
    assert summary["ties (rate)"] == ["4 (1.0000)", "1 (0.2500)"]
    assert summary["mean margin"] == ["0.0000", "0.7500"]
    assert summary["log-loss"][0] == f"{math.log(2):.4f}" and summary["Brier"][0] == "0.2500"
    assert summary["reward–length Pearson"][0] == "—"
    assert summary["records"] == ["3", "3"] and summary["pairs"] == ["4", "4"]

    per_source = {row[0]: row[1:] for row in tables["Per-source accuracy"]}
    assert per_source["source"] == ["untrained", "trained"]
    assert set(per_source) == {"source", "hh", "shp"}
    assert per_source["hh"][1].startswith("0.5000") and per_source["hh"][1].endswith("(n=2)")
    assert per_source["shp"][0].startswith("0.0000") and per_source["shp"][0].endswith("(n=1)")

    assert "- a note | with pipe" in text
    assert "## Provenance" in text and "abc123" in text
    versions = {row[0]: row[1] for row in tables["Provenance"][1:]}
    assert versions["numpy"] == np.__version__
    if prov["git"] is not None:
        assert prov["git"]["commit"] in text


def test_write_report_replaces_existing_files(tmp_path):
    """Writing twice replaces the files whole (os.replace), with the second title."""
    result = {"r": evaluate_scores(_records(), [[2, 1], [1, 1], [3, 4, 0]], n_boot=10)}
    write_report(tmp_path, result, "first", {})
    json_path, md_path = write_report(tmp_path, result, "second", {})
    assert md_path.read_text(encoding="utf-8").startswith("# second\n")
    assert json.loads(json_path.read_text(encoding="utf-8"))["title"] == "second"
    assert "Provenance" in render_markdown(result, "x", {})


# ------------------------------------------------------------------------------------------------
# provenance


def test_provenance_has_versions_and_is_json():
    """Versions of python, torch, transformers, accelerate, datasets, numpy, rewardlab; numpy's equals the
    imported module's. The platform string names no host. The config survives as JSON."""
    import platform
    import sys

    prov = provenance({"lr": 0.1, "nested": {"k": [1, 2]}}, data_fingerprint="fp")
    json.dumps(prov)
    for key in ("python", "torch", "transformers", "accelerate", "datasets", "numpy", "rewardlab"):
        assert key in prov["versions"]
    assert prov["versions"]["numpy"] == np.__version__
    assert prov["versions"]["rewardlab"] is not None
    assert prov["command"] == sys.argv
    assert prov["config"] == {"lr": 0.1, "nested": {"k": [1, 2]}}
    assert prov["data_fingerprint"] == "fp" and prov["tokenizer"] is None
    assert prov["timestamp_utc"].endswith("+00:00")
    node = platform.node()
    if node:
        assert node not in prov["platform"]
    git = prov["git"]
    assert git is None or (re.fullmatch(r"[0-9a-f]{40}", git["commit"]) and isinstance(git["dirty"], bool))


def test_provenance_outside_git_does_not_raise(tmp_path, monkeypatch):
    """A directory outside any checkout → git None; the package outside a checkout → provenance()["git"]
    is None; git not on PATH → None. Nothing raises."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert git_info(tmp_path) is None
    assert git_info(tmp_path / "does-not-exist") is None
    monkeypatch.setattr(provenance_mod, "_package_dir", lambda: tmp_path)
    assert provenance()["git"] is None
    monkeypatch.setenv("PATH", str(tmp_path))  # no git executable here
    monkeypatch.setattr(provenance_mod, "_package_dir", lambda: provenance_mod.Path(provenance_mod.__file__).parent)
    assert git_info() is None
    assert provenance()["git"] is None


def test_provenance_missing_library_is_none(monkeypatch):
    """A library that is neither installed nor importable is reported as None, not an error."""
    monkeypatch.setitem(provenance_mod._LIBRARIES, "no_such_module_xyz", "no-such-dist-xyz")
    assert provenance()["versions"]["no_such_module_xyz"] is None


def test_tokenizer_special_tokens():
    """A duck-typed tokenizer: bos/eos/pad/unk with ids; pad = eos (id 2); no unk → {None, None};
    chat_template sha256 = sha256 of the template text."""
    tok = SimpleNamespace(
        bos_token="<s>",
        bos_token_id=1,
        eos_token="</s>",
        eos_token_id=2,
        pad_token="</s>",
        pad_token_id=2,
        unk_token=None,
        unk_token_id=None,
        chat_template="{{ messages }}",
        name_or_path="toy",
    )
    info = provenance(tokenizer=tok)["tokenizer"]
    assert info["special_tokens"]["bos"] == {"token": "<s>", "id": 1}
    assert info["special_tokens"]["pad"] == {"token": "</s>", "id": 2}
    assert info["special_tokens"]["unk"] == {"token": None, "id": None}
    assert info["chat_template_sha256"] == hashlib.sha256(b"{{ messages }}").hexdigest()
    assert tokenizer_info(object())["chat_template_sha256"] is None


def test_tokenizer_info_on_a_real_tokenizer():
    """The tiny ChatML tokenizer: pad token = eos token = <|im_end|>, with equal ids."""
    pytest.importorskip("tokenizers")
    from rewardlab.models.tiny import CHATML, make_tiny_tokenizer

    info = tokenizer_info(make_tiny_tokenizer())
    json.dumps(info)
    special = info["special_tokens"]
    assert special["eos"]["token"] == special["pad"]["token"] == "<|im_end|>"
    assert special["eos"]["id"] == special["pad"]["id"] is not None
    assert special["bos"]["token"] == "<|im_start|>" and special["unk"]["token"] == "<|endoftext|>"
    assert info["chat_template_sha256"] == hashlib.sha256(CHATML.encode("utf-8")).hexdigest()


# ------------------------------------------------------------------------------------------------
# ranked / tiered records: strict pairs count, judge-tied pairs do not


def _tiered():
    return [
        Comparison("pA", ("a0", "a1", "a2", "a3"), chosen=2, tiers=((2,), (0, 3), (1,)), source="x", id="A"),
        Comparison("pB", ("b0", "b1", "b2"), chosen=0, tiers=((0, 1), (2,)), source="x", id="B"),
        Comparison("pC", ("c0", "c1"), chosen=0, tiers=((0, 1),), source="y", id="C"),
    ]


TIERED_SCORES = [[1, 2, 3, 2], [1, 2, 0], [5, 5]]


def test_tiered_records_count_strict_pairs_only():
    """A: tiers ((2,), (0, 3), (1,)), rewards [1, 2, 3, 2] (chosen 2).
        strict pairs (2,0) 3 > 1 W · (2,3) 3 > 2 W · (2,1) 3 > 2 W · (0,1) 1 < 2 L · (3,1) 2 = 2 reward tie
        judge-tied pair (0,3): rewards 1 vs 2 → not equal, gap 1.  → 3 wins of 5 pairs; record not all won.
        (Chosen-vs-others would count only (2,0) (2,1) (2,3): 3/3 — it misses 0 and 3 both beating 1.)
    B: tiers ((0, 1), (2,)), rewards [1, 2, 0] (chosen 0, tied with 1).
        strict pairs (0,2) 1 > 0 W · (1,2) 2 > 0 W; tied pair (0,1): gap 1.  → 2 of 2; record all won.
        (Chosen-vs-others would count (0,1) 1 < 2 as a loss: 1/2, record failed.)
    C: tiers ((0, 1),), rewards [5, 5]: no strict pair (not scored); tied pair (0,1): equal, gap 0.

    accuracy = (3 + 2) / (5 + 2) = 5/7; half policy: (5 + ½) / 7 = 11/14 (the reward tie (3,1) earns ½).
    record_accuracy = 1 / 2 (A ✗, B ✓; C has no pairs); n_scored_records 2, n_records 3.
    ties (reward ties in the pairs) 1, tie_rate 1/7; margins [2, 1, 1, −1, 0, 1, 2] → mean 6/7.
    n_tied_pairs 3; tie_agreement 1/3 (only C's); tied_mean_abs_gap (1 + 1 + 0) / 3 = 2/3.
    per source: x → 5/7, record 1/2; y → no pairs: accuracy None, record None, ci None.
    reward_stats: mean_chosen (3 + 1 + 5)/3 = 3; mean_rejected over the chosen's losers
    A: 0, 3, 1 → [1, 2, 2]; B: 2 → [0]; C: none → 5/4.
    """
    out = evaluate_scores(_tiered(), TIERED_SCORES, seed=0, n_boot=200)
    json.dumps(out, allow_nan=False)
    assert (out["n_records"], out["n_scored_records"], out["n_pairs"], out["wins"]) == (3, 2, 7, 5)
    assert out["accuracy"] == pytest.approx(5 / 7) and out["record_accuracy"] == 0.5
    assert out["ties"] == 1 and out["tie_rate"] == pytest.approx(1 / 7)
    assert out["mean_margin"] == pytest.approx(6 / 7)
    assert out["n_tied_pairs"] == 3 and out["tie_agreement"] == pytest.approx(1 / 3)
    assert out["tied_mean_abs_gap"] == pytest.approx(2 / 3)
    x, y = out["per_source"]["x"], out["per_source"]["y"]
    assert (x["n"], x["n_pairs"], x["accuracy"], x["record_accuracy"]) == (2, 7, pytest.approx(5 / 7), 0.5)
    assert (y["n"], y["n_pairs"], y["accuracy"], y["record_accuracy"], y["ci95"]) == (1, 0, None, None, None)
    assert out["reward_stats"]["mean_chosen"] == 3.0 and out["reward_stats"]["mean_rejected"] == 1.25
    assert evaluate_scores(_tiered(), TIERED_SCORES, tie_policy="half", n_boot=0)["accuracy"] == pytest.approx(11 / 14)

    wins, ties, record = pairwise_outcomes(TIERED_SCORES[:1], [2], [_tiered()[0].strict_pairs()])
    assert wins.tolist() == [True, True, True, False, False] and ties.tolist() == [False] * 4 + [True]
    margins, _ = pair_margins(TIERED_SCORES[:1], [2], [_tiered()[0].strict_pairs()])
    assert margins.tolist() == [2, 1, 1, -1, 0]
    with pytest.raises(ValueError, match="pair"):
        pairwise_outcomes([[1, 2]], [0], [[(0, 2)]])

    from rewardlab.benchmarks.generic import GENERIC
    from rewardlab.training.train import eval_accuracies

    bench = GENERIC.score(_tiered(), TIERED_SCORES, n_boot=0)
    assert bench["headline"]["accuracy"] == pytest.approx(5 / 7) and list(bench["subsets"]) == ["x"]
    assert bench["per_example"] == [pytest.approx(3 / 5), 1.0, None]
    assert eval_accuracies(_tiered(), TIERED_SCORES) == {
        "eval_accuracy": pytest.approx(5 / 7),
        "eval_record_accuracy": 0.5,
        "eval_n": 3,
    }


def _old_chosen_vs_others(scores, chosen):
    """The pre-tiers definition, written out: accuracy over (chosen, j ≠ chosen) pairs; record = chosen beats all."""
    pairs = [(row[c], row[j]) for row, c in zip(scores, chosen) for j in range(len(row)) if j != c]
    accuracy = sum(a > b for a, b in pairs) / len(pairs)
    record = np.mean([all(row[c] > s for j, s in enumerate(row) if j != c) for row, c in zip(scores, chosen)])
    return accuracy, float(record), sum(a == b for a, b in pairs), float(np.mean([a - b for a, b in pairs]))


def test_plain_data_numbers_are_unchanged():
    """Plain records (chosen only, K = 2..4, integer rewards so reward ties occur): strict_pairs() is the chosen
    response against every other in index order, so every number — accuracy, ties, margins, the bootstrap
    interval, calibration, reward stats — equals the chosen-vs-others computation (the default pairs of the
    low-level functions, i.e. the old code path) and the written-out old definition; record accuracy equals the
    old training ``eval_accuracy`` (chosen beats all others; now ``eval_record_accuracy``); no tied pairs."""
    rng = np.random.default_rng(0)
    ks = rng.integers(2, 5, size=40)
    records = [
        Comparison(
            f"p{i}", tuple(f"r{i}-{j}" * (j + 1) for j in range(k)), chosen=int(rng.integers(k)), source="ab"[i % 2]
        )
        for i, k in enumerate(ks)
    ]
    scores = [rng.integers(0, 4, size=k).astype(float).tolist() for k in ks]
    chosen = [r.chosen for r in records]
    out = evaluate_scores(records, scores, seed=3, n_boot=100)
    old = accuracy_summary(scores, chosen, [r.source for r in records], seed=3, n_boot=100)
    for key in ("n_pairs", "wins", "accuracy", "accuracy_ci95", "ties", "tie_rate", "mean_margin"):
        assert out[key] == old[key], key
    for name in "ab":
        for key in ("n", "n_pairs", "accuracy", "ties", "ci95"):
            assert out["per_source"][name][key] == old["per_source"][name][key]
    margins, _ = pair_margins(scores, chosen)
    assert out["calibration"] == json.loads(json.dumps(calibration(margins, seed=3)))
    accuracy, record, ties, mean_margin = _old_chosen_vs_others(scores, chosen)
    assert out["accuracy"] == pytest.approx(accuracy) and out["record_accuracy"] == pytest.approx(record)
    assert out["ties"] == ties and out["mean_margin"] == pytest.approx(mean_margin)
    assert out["n_tied_pairs"] == 0 and out["tie_agreement"] is None
    rejected = [s for row, c in zip(scores, chosen) for j, s in enumerate(row) if j != c]
    assert out["reward_stats"]["mean_rejected"] == pytest.approx(np.mean(rejected))
    from rewardlab.training.train import eval_accuracies

    assert eval_accuracies(records, scores)["eval_record_accuracy"] == pytest.approx(record)
    assert eval_accuracies(records, scores)["eval_accuracy"] == pytest.approx(accuracy)
