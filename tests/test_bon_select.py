"""``rewardlab select`` (rejection sampling) on a hand-made file: the selection rule, the TRL SFT rows, provenance,
and reading the output back with rewardlab's own reader and TRL."""

from __future__ import annotations

import json

import pytest

from rewardlab.bon.candidates import read_candidates
from rewardlab.bon.rejection import select
from rewardlab.cli import main

SAMPLES = [
    {"id": "p0", "prompt": "Name a fruit.", "responses": ["apple", "car", "pear"]},
    {
        "id": "p1",
        "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}],
        "responses": ["4", "5"],
    },
    {"id": "p2", "prompt": "Say hi.", "responses": ["hi", "hello", "bye"]},
]
# A and B disagree; min over them (no standardizing) picks differently from either
SCORES = [
    {"id": "p0", "proxy": {"A": [1.0, 3.0, 2.0], "B": [2.0, 0.0, 1.5]}, "gold": [1, 0, 1]},
    {"id": "p1", "proxy": {"A": [0.5, 0.2], "B": [0.1, 0.9]}, "gold": [1, 0]},
    {"id": "p2", "proxy": {"A": [5.0, 4.0, 0.0], "B": [1.0, 2.0, 3.0]}, "gold": [1, 1, 0]},
]


def test_select_worked():
    """[[1, 3, 2], [5, 0]]: top 1 per prompt → (0,1), (1,0); top 2 per prompt → all but (0,0); top_k 2 overall →
    5 and 3; a tie goes to the earlier sample."""
    s = [[1, 3, 2], [5, 0]]
    assert select(s) == [(0, 1), (1, 0)]
    assert select(s, per_prompt=2) == [(0, 1), (0, 2), (1, 0), (1, 1)]
    assert select(s, top_k=2) == [(0, 1), (1, 0)]
    assert select([[2, 2, 1]]) == [(0, 0)]


@pytest.fixture
def files(tmp_path):
    s, c = tmp_path / "samples.jsonl", tmp_path / "scores.jsonl"
    s.write_text("".join(json.dumps(r) + "\n" for r in SAMPLES))
    c.write_text("".join(json.dumps(r) + "\n" for r in SCORES))
    return s, c, tmp_path


def _rows(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_select_by_one_proxy_messages(files):
    """By A, top 1 per prompt: p0 → 'car' (3.0), p1 → '4' (0.5), p2 → 'hi' (5.0)."""
    s, c, d = files
    out = d / "sel.jsonl"
    assert main(["select", "--samples", str(s), "--scores", str(c), "--by", "A", "--output", str(out)]) == 0
    rows = _rows(out)
    assert rows[0] == {
        "messages": [{"role": "user", "content": "Name a fruit."}, {"role": "assistant", "content": "car"}],
        "source_id": "p0#1",
        "reward": 3.0,
    }
    assert rows[1]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
    ]
    assert [r["source_id"] for r in rows] == ["p0#1", "p1#0", "p2#0"]
    prov = json.loads((d / "sel.jsonl.provenance.json").read_text())
    assert prov["selected_by"] == "proxy A" and prov["rows_written"] == 3 and prov["samples_read"] == 8
    assert "top 1 response(s) of every prompt" in prov["rule"] and prov["provenance"]["command"]
    back = read_candidates(out)  # rewardlab's own reader takes it unchanged
    assert [(b.prompt, b.responses) for b in back][0] == ([{"role": "user", "content": "Name a fruit."}], ["car"])


def test_select_ensemble_min_top_k_prompt_completion(files):
    """min(A, B) without standardizing: p0 [1, 0, 1.5], p1 [0.1, 0.2], p2 [1, 2, 0]. Top 2 overall: 2.0 (p2#1)
    and 1.5 (p0#2), written in file order."""
    s, c, d = files
    out = d / "sel.jsonl"
    argv = ["select", "--samples", str(s), "--scores", str(c), "--by", "min", "--no-standardize", "--top-k", "2"]
    assert main([*argv, "--format", "prompt-completion", "--output", str(out)]) == 0
    rows = _rows(out)
    assert [r["source_id"] for r in rows] == ["p0#2", "p2#1"]
    assert rows[0]["prompt"] == [{"role": "user", "content": "Name a fruit."}]
    assert rows[0]["completion"] == [{"role": "assistant", "content": "pear"}] and rows[0]["reward"] == 1.5
    assert [b.responses for b in read_candidates(out)] == [["pear"], ["hello"]]


def test_select_refusals(files, capsys):
    s, c, d = files
    assert main(["select", "--samples", str(s), "--scores", str(c), "--by", "C", "--output", str(d / "x.jsonl")]) == 2
    assert "--by 'C': choose a proxy (A, B)" in capsys.readouterr().err
    bad = d / "other.jsonl"
    bad.write_text(json.dumps({"id": "zz", "proxy": {"A": [1, 2, 3]}}) + "\n")
    assert main(["select", "--samples", str(s), "--scores", str(bad), "--output", str(d / "y.jsonl")]) == 2
    assert "is not for --samples" in capsys.readouterr().err
    assert not (d / "x.jsonl").exists() or (d / "x.jsonl").stat().st_size == 0


def test_trl_reads_the_output(files, tiny_llama):
    """TRL's own helpers see conversational rows and render them with a chat template."""
    trl_utils = pytest.importorskip("trl.data_utils")
    from transformers import AutoTokenizer

    s, c, d = files
    for fmt in ("messages", "prompt-completion"):
        out = d / f"{fmt}.jsonl"
        assert (
            main(
                ["select", "--samples", str(s), "--scores", str(c), "--by", "A", "--format", fmt, "--output", str(out)]
            )
            == 0
        )
        tok = AutoTokenizer.from_pretrained(tiny_llama)
        for row in _rows(out):
            assert trl_utils.is_conversational(row)
            text = trl_utils.maybe_apply_chat_template(row, tok)
            assert any("<|im_start|>assistant" in v for v in text.values() if isinstance(v, str))


@pytest.mark.slow
def test_trl_sft_trainer_trains_on_it(files, tiny_llama, fresh_accelerate_state):
    """One SFTTrainer step on the selected file, loaded with datasets as it is."""
    pytest.importorskip("trl")
    from datasets import load_dataset
    from trl import SFTConfig, SFTTrainer

    s, c, d = files
    out = d / "sel.jsonl"
    assert main(["select", "--samples", str(s), "--scores", str(c), "--by", "A", "--output", str(out)]) == 0
    ds = load_dataset("json", data_files=str(out), split="train")
    args = SFTConfig(
        output_dir=str(d / "sft"),
        max_steps=1,
        per_device_train_batch_size=2,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
    )
    trainer = SFTTrainer(model=tiny_llama, args=args, train_dataset=ds)
    result = trainer.train()
    assert result.global_step == 1
