"""The packed prefix-shared verifier path (rewardlab.verifiers.packed): the same token sequences and step-end tokens
as the padded rows (exact tensors), the same per-token logits as one forward per solution (≤ 1e-5), the same training
losses, and a stated fallback where the backbone is not covered."""

import json

import pytest
import torch
from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer

from rewardlab.cli import main
from rewardlab.core.errors import ModelContractError
from rewardlab.verifiers.losses import HEADS
from rewardlab.verifiers.model import VerifierModel, VerifierSpec
from rewardlab.verifiers.packed import pack_solutions, packed_logits
from rewardlab.verifiers.steps import StepFormat
from rewardlab.verifiers.synthetic import make_problems


@pytest.mark.parametrize("module", ["rewardlab.verifiers.packed", "rewardlab.verifiers.train"])
def test_docstring_examples(module):
    import doctest
    import importlib

    assert doctest.testmod(importlib.import_module(module)).failed == 0


def _vm(path, head="bce", attn="sdpa"):
    tok = AutoTokenizer.from_pretrained(path)
    tok.pad_token = tok.pad_token or tok.eos_token
    cfg = AutoConfig.from_pretrained(path, num_labels=HEADS[head][0])
    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_pretrained(path, config=cfg, attn_implementation=attn).eval()
    spec = VerifierSpec(head=head, step_format=StepFormat().to_json(), max_length=256)
    return VerifierModel(model, tok, spec)


def _solutions(n_problems=3):
    return [s for p in make_problems(n_problems, seed=1) for s in p.solutions]


@pytest.mark.parametrize("head,attn", [("bce", "sdpa"), ("two_class", "eager")])
def test_packed_logits_equal_separate_forwards(tiny_llama, head, attn):
    """Three problems × four solutions in one packed batch: every solution's token ids and positions are reproduced
    exactly by the packed rows (so each step label sits on the same marker token), the prompt is laid out once per
    problem, and every real token's logits equal one forward of that solution alone (≤ 1e-5)."""
    vm = _vm(tiny_llama, head, attn)
    sols = _solutions()
    enc = [vm.encode(s.prompt, s.steps) for s in sols]
    keys = [s.prompt for s in sols]
    assert vm.use_packing("on") == ""
    b = vm.batch(enc, [s.step_labels for s in sols], keys=keys)
    pb = b["packed"]
    flat_ids = pb.inputs["input_ids"].flatten()[pb.gather]
    flat_pos = pb.inputs["position_ids"].flatten()[pb.gather]
    for i, e in enumerate(enc):
        n = len(e.ids)
        assert flat_ids[i, :n].tolist() == e.ids
        assert flat_pos[i, :n].tolist() == list(range(n))  # positions restart after the shared prefix
        assert [flat_ids[i, p].item() for p in e.step_positions] == [vm.mid] * len(sols[i].steps)
        labelled = (b["labels"][i] != -100).nonzero().squeeze(1).tolist()
        assert labelled == [p for p, v in zip(e.step_positions, sols[i].step_labels) if v is not None]
    # each problem's 4 solutions share their prompt tokens: packed tokens = Σ over problems (p + Σ own tokens)
    want_tokens = 0
    for g in range(3):
        seqs = [enc[i].ids for i in range(4 * g, 4 * g + 4)]
        p = next(j for j in range(min(map(len, seqs))) if len({s[j] for s in seqs}) > 1)
        want_tokens += p + sum(len(s) - p for s in seqs)
        assert p > len(vm.tok(sols[4 * g].prompt)["input_ids"])  # at least the prompt is shared
    assert pb.tokens == want_tokens < sum(len(e.ids) for e in enc)
    with torch.no_grad():
        packed = vm.batch_logits(b)
        for i, e in enumerate(enc):
            alone = vm(torch.tensor([e.ids]), torch.ones(1, len(e.ids), dtype=torch.long))[0]
            assert (packed[i, : len(e.ids)] - alone).abs().max().item() <= 1e-5
        vm.packing = False
        padded = vm.batch_logits(vm.batch(enc))
    valid = pb.valid if packed.dim() == 2 else pb.valid[..., None].expand_as(packed)
    assert (packed - padded)[valid].abs().max().item() <= 1e-5
    assert pb.inputs["input_ids"].shape[0] == 3  # one problem per row (TOKEN_BUDGET 0)
    shared_rows = pack_solutions(enc, keys, vm.tok.pad_token_id, token_budget=512)  # several problems in a row
    assert shared_rows.inputs["input_ids"].shape[0] < 3
    with torch.no_grad():
        full = packed_logits(vm.model, pb)
        assert (packed_logits(vm.model, shared_rows) - full).abs().max().item() <= 1e-5
        # a PRM's training forward: only the labelled step-end tokens, the last layer at those tokens alone
        reads = b["labels"] != -100
        trimmed = packed_logits(vm.model, pb, reads)
        assert int(reads.sum()) > 0 and (trimmed[reads] - full[reads]).abs().max().item() <= 1e-5
        assert trimmed[~reads].abs().max().item() == 0.0


def test_score_steps_packed_equals_padded(tiny_llama):
    """score_steps with packing (solutions grouped by prompt) gives the padded path's step scores (≤ 1e-5), in
    input order."""
    vm = _vm(tiny_llama)
    sols = _solutions(2)[::-1]  # input order not grouped by problem
    items = [(s.prompt, list(s.steps)) for s in sols]
    padded = vm.score_steps(items, batch_size=3)
    vm.use_packing("on")
    packed = vm.score_steps(items, batch_size=3)
    for a, b in zip(padded, packed):
        assert len(a["step_scores"]) == len(b["step_scores"])
        assert max(abs(x - y) for x, y in zip(a["step_scores"], b["step_scores"])) <= 1e-5
        assert abs(a["score"] - b["score"]) <= 1e-5


def test_packing_refused_or_off_where_not_covered(tiny_llama, tiny_bert):
    """An encoder (bidirectional: the prompt's states depend on the solution) and an attention implementation the
    block mask does not cover: ``auto`` falls back and says why, ``on`` refuses naming it."""
    enc_tok = AutoTokenizer.from_pretrained(tiny_bert)
    bert = AutoModelForTokenClassification.from_pretrained(tiny_bert, num_labels=1)
    spec = VerifierSpec(step_format=StepFormat(";", ";").to_json(), causal=False)
    vm = VerifierModel(bert, enc_tok, spec)
    assert "bidirectional encoder" in vm.use_packing("auto") and vm.packing is False
    with pytest.raises(ModelContractError, match="--packing on: .*bidirectional encoder"):
        vm.use_packing("on")
    llama = _vm(tiny_llama)
    llama.model.config._attn_implementation = "flex_attention"
    assert "attention implementation 'flex_attention'" in llama.use_packing("auto")
    assert "--packing off" == _vm(tiny_llama).use_packing("off")


def _train(tiny, out, *extra):
    return main(
        ["train-verifier", "--backbone", tiny, "--synthetic-problems", "8", "--eval-fraction", "0.25",
         "--batch-size", "8", "--lr", "1e-3", "--head-dropout", "0", "--output-dir", str(out), "-q", *extra]
    )  # fmt: skip


@pytest.mark.parametrize("objective", ["prm", "orm"])
def test_training_loss_packed_equals_padded(tiny_llama, tmp_path, objective):
    """train-verifier with --packing on and off: the same steps (a problem's solutions kept together), the same
    losses (≤ 1e-5 at every step, the weights differing only by float rounding), and the report says which path
    ran."""
    assert _train(tiny_llama, tmp_path / "p", "--objective", objective, "--packing", "on") == 0
    assert _train(tiny_llama, tmp_path / "u", "--objective", objective, "--packing", "off") == 0

    def losses(d):
        rows = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]
        return [r["loss"] for r in rows if "step" in r]

    lp, lu = losses(tmp_path / "p"), losses(tmp_path / "u")
    assert len(lp) == len(lu) >= 2
    assert max(abs(a - b) for a, b in zip(lp, lu)) <= 1e-5
    reports = [json.loads((tmp_path / d / "report.json").read_text())["packing"] for d in "pu"]
    assert reports == [
        {"mode": "on", "used": True, "reason_off": None},
        {"mode": "off", "used": False, "reason_off": "--packing off"},
    ]


def test_packing_on_refused_before_training(tiny_bert, tmp_path, capsys):
    rc = _train(tiny_bert, tmp_path / "b", "--packing", "on", "--marker", "<step>", "--marker-special")
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and "--packing on: " in err and "bidirectional encoder" in err
    assert not (tmp_path / "b" / "metrics.jsonl").exists()
