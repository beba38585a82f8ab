"""Evaluation never truncates silently: texts cut to max_length are counted per subset and model, shown in the
terminal summary and the report (json, md, html), and warned about past rewardlab.evaluation.truncation.WARN_RATE."""

from __future__ import annotations

import json

from rewardlab.cli import main
from rewardlab.evaluation.truncation import WARN_RATE


def test_eval_counts_and_reports_truncated_texts(tiny_llama, tmp_path, capsys):
    """Known answer: max_length 32. The "long" subset's responses are 60 words (hundreds of tokens): every one of
    its 3 × 2 texts is cut. The "short" subset's texts ("Hi?" / "Yes." in the ChatML template, about a dozen
    tokens) are not: 0 of 4. Only "long" passes the 5% warning threshold."""
    from rewardlab.models.reward_model import RewardModel

    RewardModel.from_backbone(tiny_llama, max_length=32).save(tmp_path / "m")
    long_answer = " ".join(["the quick brown fox jumps over the lazy dog"] * 7)[:400]
    rows = [
        {"prompt": f"Tell me a story {i}.", "chosen": long_answer + f" {i}", "rejected": long_answer, "source": "long"}
        for i in range(3)
    ] + [{"prompt": "Hi?", "chosen": f"Yes {i}.", "rejected": "No.", "source": "short"} for i in range(2)]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "ev"
    assert (
        main(["eval", "--model", str(tmp_path / "m"), "--data", str(data), "--output-dir", str(out), "--n-boot", "10"])
        == 0
    )
    captured = capsys.readouterr()
    report = json.loads((out / "report.json").read_text())
    cut = report["results"]["m"]["truncation"]
    assert cut["max_length"] == 32 and cut["n_texts"] == 10 and cut["n_truncated"] == 6 and cut["rate"] == 0.6
    assert cut["per_subset"] == {
        "long": {"n_texts": 6, "n_truncated": 6, "rate": 1.0},
        "short": {"n_texts": 4, "n_truncated": 0, "rate": 0.0},
    }
    assert cut["warn_rate"] == WARN_RATE
    assert "truncated: m: 6 of 10 texts (60.0%) longer than max_length 32 were cut" in captured.out
    assert "warning: m cut 6 of 6 long texts (100%) to max_length 32" in captured.err
    assert "short texts" not in captured.err
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    for page in (md, html):
        assert "6 of 10 texts" in page and "m cut 6 of 6 long texts" in page
