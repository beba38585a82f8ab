"""An LLM judge on fixed candidates, side by side with the other models (issue 25: "any loadable model (BT, ORM,
PRM under each aggregation, a judge) on the same candidates"). A judge scores a record's responses together, so
eval-verifier gives it each problem's solutions as one record; the rewards it reports are the judge's own."""

import json

from rewardlab.cli import main
from rewardlab.data.record import Comparison
from rewardlab.judges.run import judge_from_spec

QUESTIONS = [
    {"question": "What is 2 plus 2?", "a": {"solution": "2 plus 2 is 4.\nA: 4", "is_correct": True},
     "b": {"solution": "2 plus 2 is 5.\nA: 5", "is_correct": False}},
    {"question": "What is 3 times 3?", "a": {"solution": "3 times 3 is 6.\nA: 6", "is_correct": False},
     "b": {"solution": "3 times 3 is 9.\nA: 9", "is_correct": True},
     "c": {"solution": "It is 9.\nA: 9", "is_correct": True}},
]  # fmt: skip


def test_a_judge_on_candidates_reports_its_own_rewards(tiny_llama, tmp_path):
    data = tmp_path / "g.jsonl"
    data.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    spec = f"mode=verifier,model={tiny_llama}"
    out = tmp_path / "c.json"
    assert main(["eval-verifier", "--benchmark", "candidates", "--model", f"judge:{spec}", "--data", str(data),
                 "--output", str(out), "-q"]) == 0  # fmt: skip
    res = json.loads(out.read_text())["results"][f"judge:{spec}"]
    assert "judged as one record" in res["aggregation"]
    # the same judge called directly on the same records (the solution text: its steps joined by newlines)
    records = [Comparison(q["question"], tuple(q[k]["solution"] for k in q if k != "question")) for q in QUESTIONS]
    rewards = judge_from_spec(spec).score_comparisons(records)
    correct = [[q[k]["is_correct"] for k in q if k != "question"] for q in QUESTIONS]

    # top-1: the credit of each problem's highest-reward solution (ties averaged), mean over problems
    def top1(r, c):
        best = max(r)
        tied = [ok for x, ok in zip(r, c) if x == best]
        return sum(tied) / len(tied)

    want = sum(top1(r, c) for r, c in zip(rewards, correct)) / len(QUESTIONS)
    assert abs(res["top1"]["value"] - want) < 1e-9


def test_candidates_html_puts_every_model_side_by_side_with_the_figure(tiny_llama, tmp_path, capsys):
    """The .html beside the JSON: every model's row with the JSON's own numbers, the baselines, the best-of-n figure;
    claimed like the JSON (an existing page is not replaced without --overwrite)."""
    import pytest

    pytest.importorskip("matplotlib")
    data = tmp_path / "g.jsonl"
    data.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    out = tmp_path / "c.json"
    args = ["eval-verifier", "--benchmark", "candidates", "--model", f"judge:mode=verifier,model={tiny_llama}",
            "--data", str(data), "--output", str(out), "-q"]  # fmt: skip
    assert main(args) == 0
    page = out.with_suffix(".html").read_text()
    ((name, r),) = json.loads(out.read_text())["results"].items()
    top1 = r["top1"]
    assert name in page and f"{top1['value']:.3f} [{top1['ci95'][0]:.3f}, {top1['ci95'][1]:.3f}]" in page
    assert "majority_vote" in page and "data:image/png;base64," in page
    out.unlink()
    out.with_suffix(".md").unlink()
    capsys.readouterr()
    assert main(args) == 2  # the page is still there
    err = capsys.readouterr().err
    assert "c.html" in err and "Traceback" not in err and not out.exists()
