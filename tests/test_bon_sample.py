"""``rewardlab sample`` on a tiny random Llama: exact resume, refusals before work, log-probs, seeds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from rewardlab.bon import sample as sample_mod
from rewardlab.bon.candidates import read_candidates
from rewardlab.bon.sample import SampleConfig, groups, run_sample
from rewardlab.cli import main
from rewardlab.core.errors import RewardlabError


def cfg(policy, out, **kw) -> SampleConfig:
    base = dict(policy=policy, limit=5, n=3, batch_size=6, max_new_tokens=6, output=str(out))
    return SampleConfig(**{**base, **kw})


def test_groups_worked():
    """5 prompts, n = 4, batch 8 → 2 prompts a group: [0, 2), [2, 4), [4, 5); n > batch → one prompt a group."""
    assert [list(g) for g in groups(5, 4, 8)] == [[0, 1], [2, 3], [4]]
    assert [list(g) for g in groups(2, 10, 4)] == [[0], [1]]


@pytest.mark.parametrize("n,batch", [(3, 6), pytest.param(5, 2, marks=pytest.mark.slow)])
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, tiny_llama, monkeypatch, n, batch):
    """Uninterrupted run A. Run B stops (KeyboardInterrupt) inside its second prompt group, after the first group's
    rows were written; then its last row is cut in half, as a crash between two rows of one group would leave
    it. Resuming B cuts the half row, samples that group again (seeded per group) writing only its missing
    rows, then the rest: B's file equals A's byte for byte. (n = 5 > batch 2 covers a prompt
    whose samples take several generate calls.)"""
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    run_sample(cfg(tiny_llama, a, n=n, batch_size=batch))
    real, calls = sample_mod.sample_group, []

    def failing(*args, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(sample_mod, "sample_group", failing)
    with pytest.raises(KeyboardInterrupt):
        run_sample(cfg(tiny_llama, b, n=n, batch_size=batch))
    lines = b.read_bytes().splitlines(keepends=True)
    assert 0 < len(lines) < 5
    # as if the crash came between two rows of one group, in the middle of writing the second
    b.write_bytes(b"".join(lines[:-1]) + b'{"id": "synthetic-0-9", "prompt": "half a ro')
    monkeypatch.setattr(sample_mod, "sample_group", real)
    run_sample(cfg(tiny_llama, b, n=n, batch_size=batch))
    assert b.read_bytes() == a.read_bytes()
    rows = [json.loads(x) for x in a.read_text().splitlines()]
    assert [len(r["responses"]) for r in rows] == [n] * 5
    assert rows[0]["sampling"]["temperature"] == 0.7 and rows[0]["sampling"]["n"] == n
    run_sample(cfg(tiny_llama, b, n=n, batch_size=batch))  # complete: nothing to do, nothing changed
    assert b.read_bytes() == a.read_bytes()


def test_resume_with_other_settings_refused_naming_it(tmp_path, tiny_llama, capsys):
    out = tmp_path / "s.jsonl"
    argv = ["sample", "--policy", tiny_llama, "--limit", "2", "--n", "2", "--max-new-tokens", "4", "--output", str(out)]
    assert main(argv) == 0
    before = out.read_bytes()
    assert main([*argv, "--temperature", "1.0"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "temperature=0.7 but this run asks temperature=1.0" in err
    assert out.read_bytes() == before
    assert main([*argv, "--seed", "3"]) == 2
    assert "seed=0 but this run asks seed=3" in capsys.readouterr().err
    assert (
        main(
            [
                "sample",
                "--policy",
                tiny_llama,
                "--limit",
                "2",
                "--prompt-seed",
                "1",
                "--n",
                "2",
                "--max-new-tokens",
                "4",
                "--output",
                str(out),
            ]
        )
        == 2
    )
    assert "holds prompt 'synthetic-0-0' where this run's prompts have 'synthetic-1-0'" in capsys.readouterr().err
    assert out.read_bytes() == before


def _copy_tokenizer(src: str, dst: Path, **changes) -> str:
    tok = AutoTokenizer.from_pretrained(src)
    for k, v in changes.items():
        setattr(tok, k, v)
    AutoModelForCausalLM.from_pretrained(src).save_pretrained(dst)
    tok.save_pretrained(dst)
    return str(dst)


def test_policy_that_cannot_generate_is_refused_before_work(tmp_path, tiny_llama, capsys, monkeypatch):
    no_pad = _copy_tokenizer(tiny_llama, tmp_path / "nopad", pad_token=None)
    loaded = []
    monkeypatch.setattr(sample_mod, "_load_policy", lambda *a: loaded.append(1))
    out = tmp_path / "s.jsonl"
    assert main(["sample", "--policy", no_pad, "--limit", "1", "--output", str(out)]) == 2
    assert "has no pad token" in capsys.readouterr().err and not out.exists() and not loaded
    no_template = _copy_tokenizer(tiny_llama, tmp_path / "notemplate", chat_template=None)
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(
        json.dumps({"id": "a", "prompt": "plain text"})
        + "\n"
        + json.dumps({"id": "b", "prompt": [{"role": "user", "content": "hi"}]})
        + "\n"
    )
    assert main(["sample", "--policy", no_template, "--prompts", str(prompts), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert "prompt 'b' is a list of chat messages but the tokenizer has no chat template" in err
    assert not out.exists() and not loaded


def test_logprobs_are_the_policy_token_logprobs(tmp_path, tiny_llama, monkeypatch):
    """Each recorded log-prob equals log-softmax of the policy's logits (one teacher-forced forward over prompt +
    sampled tokens, no padding) at the sampled token, up to float noise from the batch's left padding; the
    written row holds exactly what the sampler returned."""
    out = tmp_path / "s.jsonl"
    real, seen = sample_mod.sample_group, []
    monkeypatch.setattr(sample_mod, "sample_group", lambda *a, **k: seen.append(real(*a, **k)) or seen[-1])
    run_sample(cfg(tiny_llama, out, limit=2, n=2, max_new_tokens=8))
    tok = AutoTokenizer.from_pretrained(tiny_llama)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    row = json.loads(out.read_text().splitlines()[1])
    text = tok.apply_chat_template(
        [{"role": "user", "content": row["prompt"]}], tokenize=False, add_generation_prompt=True
    )
    p_ids = tok(text, add_special_tokens=False)["input_ids"]
    samples = seen[0][1]  # the group holds both prompts; the second prompt's samples
    assert [s["logprobs"] for s in samples] == row["logprobs"]
    for s in samples:
        assert len(s["token_ids"]) == s["num_tokens"] == len(s["logprobs"])
        assert s["finished"] == (s["token_ids"][-1] == tok.eos_token_id)
        ids = torch.tensor([p_ids + s["token_ids"]])
        with torch.no_grad():
            logits = model(ids).logits[0, len(p_ids) - 1 : -1]
        want = torch.log_softmax(logits, -1).gather(1, torch.tensor(s["token_ids"])[:, None])[:, 0]
        torch.testing.assert_close(torch.tensor(s["logprobs"]), want, atol=1e-4, rtol=1e-4)


def test_seeded_and_read_back_as_candidates(tmp_path, tiny_llama):
    a, b, c = (tmp_path / f"{x}.jsonl" for x in "abc")
    run_sample(cfg(tiny_llama, a, limit=2))
    run_sample(cfg(tiny_llama, b, limit=2))
    run_sample(cfg(tiny_llama, c, limit=2, seed=1))
    assert a.read_bytes() == b.read_bytes() and a.read_bytes() != c.read_bytes()
    sets = read_candidates(a)
    assert [s.id for s in sets] == ["synthetic-0-0", "synthetic-0-1"]
    assert len(sets[0].responses) == 3 and sets[0].meta["task"] and sets[0].gold is None
    assert sets[0].extra["sampling"]["max_new_tokens"] == 6


def test_cache_damaged_in_the_middle_is_an_error(tmp_path, tiny_llama):
    out = tmp_path / "s.jsonl"
    run_sample(cfg(tiny_llama, out, limit=2, n=1))
    lines = out.read_text().splitlines()
    out.write_text("not json\n" + lines[1] + "\n")
    with pytest.raises(RewardlabError, match="line 1.*not a JSON row"):
        run_sample(cfg(tiny_llama, out, limit=2, n=1))


def test_the_cache_is_claimed_like_every_output(tmp_path, capsys):
    """sample goes through the shared output claim before the policy loads: the prompts file itself, a FIFO or a
    directory as --output are refused (exit 2, one line), and the prompts file is untouched."""
    import os

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "What is 1 plus 1?"}\n')
    before = prompts.read_text()
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for output, said in ((prompts, "--prompts"), (fifo, "FIFO"), (tmp_path, "directory")):
        assert (
            main(["sample", "--prompts", str(prompts), "--output", str(output), "--policy", "smollm2-135m", "-q"]) == 2
        )
        err = capsys.readouterr().err
        assert said in err and "Traceback" not in err, err
    assert prompts.read_text() == before


def test_chunks_of_worked():
    """3 texts, n = 2, batch 4 → 2 texts a chunk (4 sequences), then the third; 1 text, n = 5, batch 2 → its
    copies 2, 2, 1 at a time."""
    assert sample_mod.chunks_of(3, 2, 4) == [([0, 1], 2), ([2], 2)]
    assert sample_mod.chunks_of(1, 5, 2) == [([0], 2), ([0], 2), ([0], 1)]
    assert sample_mod.chunks_of(2, 3, 3) == [([0], 3), ([1], 3)]


def test_top_p_filter_worked():
    """Probabilities (0.5, 0.3, 0.2) as log-probs, top-p 0.75: sorted ascending the cumulative mass is 0.2, 0.5,
    1.0; removed while ≤ 1 − 0.75 = 0.25: only the 0.2 token. Top-p 0.4: 0.2 and 0.5 ≤ 0.6 go, the 0.5 token stays.
    A tiny top-p keeps the most likely token (never an empty set)."""
    scores = torch.tensor([[0.5, 0.3, 0.2]]).log()
    inf = float("-inf")
    assert sample_mod.top_p_filter(scores, 0.75)[0, 2] == inf
    assert torch.isfinite(sample_mod.top_p_filter(scores, 0.75)[0, :2]).all()
    assert torch.isfinite(sample_mod.top_p_filter(scores, 0.4)).tolist() == [[True, False, False]]
    assert torch.isfinite(sample_mod.top_p_filter(scores, 1e-6)).tolist() == [[True, False, False]]


@pytest.mark.parametrize("top_p", [1.0, 0.9])
def test_shared_prefill_equals_one_prefill_per_sample(tiny_llama, top_p):
    """Invariance: prefilling 2 prompts once and repeating their KV cache 3× along the batch draws the same tokens
    (same generator seed) as prefilling each of the 6 sequences itself, with the same log-probs up to float noise,
    and none of them left the (B, T) shape."""
    tok = AutoTokenizer.from_pretrained(tiny_llama)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    c = SampleConfig(n=3, temperature=1.3, top_p=top_p, max_new_tokens=7)
    enc = tok(["a short one", "a rather longer prompt than that"], return_tensors="pt", padding=True)
    eos = {tok.eos_token_id}
    with torch.inference_mode():
        shared = sample_mod.decode_chunk(
            model, enc["input_ids"], enc["attention_mask"], 3, c, torch.Generator().manual_seed(5), eos, 0
        )
        rep = {k: v.repeat_interleave(3, 0) for k, v in enc.items()}
        each = sample_mod.decode_chunk(
            model, rep["input_ids"], rep["attention_mask"], 1, c, torch.Generator().manual_seed(5), eos, 0
        )
    assert shared[0].shape == (6, 7)
    assert torch.equal(shared[0], each[0])
    assert len({tuple(r) for r in shared[0].tolist()}) > 2  # the copies really differ: not one sample repeated
    torch.testing.assert_close(shared[1], each[1], atol=1e-5, rtol=1e-5)


def test_cache_of_the_old_sampler_is_refused_naming_why(tmp_path, tiny_llama, capsys):
    """A cache written by the first sampler (model.generate, no 'sampler' in its settings) is not extended with the
    new sampler's samples: exit 2, one line saying which sampler wrote it and why, the file untouched."""
    out = tmp_path / "s.jsonl"
    argv = ["sample", "--policy", tiny_llama, "--limit", "2", "--n", "2", "--max-new-tokens", "4", "--output", str(out)]
    assert main([*argv[:4], "1", *argv[5:]]) == 0  # one prompt of two: the resume would sample the second
    row = json.loads(out.read_text())
    del row["sampling"]["sampler"]
    out.write_text(json.dumps(row) + "\n")
    before = out.read_bytes()
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "written by another version of the sampler (the first one, model.generate" in err
    assert "draws other tokens for the same seed" in err
    assert out.read_bytes() == before
