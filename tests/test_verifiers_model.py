"""Step markers, the collator, the losses on a model, one-forward scoring, save → plain transformers, loader."""

import doctest
import json
import math

import pytest
import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer

from rewardlab.core.errors import ModelContractError
from rewardlab.verifiers import losses, steps
from rewardlab.verifiers.losses import IGNORE
from rewardlab.verifiers.model import VerifierModel, VerifierSpec, collate
from rewardlab.verifiers.steps import MarkerError, StepFormat, add_special_marker, encode, marker_id


@pytest.mark.parametrize("module", [losses, steps])
def test_docstring_examples(module):
    assert doctest.testmod(module).failed == 0


def _verifier(path, head="bce", fmt=StepFormat(), aggregation="min", max_length=256, special=False):
    tok = AutoTokenizer.from_pretrained(path)
    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_pretrained(path, num_labels=losses.HEADS[head][0])
    model.config.pad_token_id = tok.pad_token_id
    if special:
        add_special_marker(tok, model, fmt)
    spec = VerifierSpec(head=head, step_format=fmt.to_json(), aggregation=aggregation, max_length=max_length)
    return VerifierModel(model.eval(), tok, spec)


def test_labels_exactly_on_step_end_tokens(tiny_llama):
    """Exact tensors: with the special marker <step>, prompt "Q" + separator " |" + steps "ab", "c": the labels
    sit on the two <step> tokens only; the separator and step 1's first token are unlabelled; the ORM's
    completion mask starts at step 1's first token (after the separator) and ends at the last marker."""
    fmt = StepFormat("<step>", " |", special=True)
    vm = _verifier(tiny_llama, fmt=fmt, special=True)
    tok = vm.tok
    e = vm.encode("Q", ["ab", "c"])
    pieces = tok.convert_ids_to_tokens(e.ids)
    mid = tok.convert_tokens_to_ids("<step>")
    # the tokens, by hand: Q | Ġ| | ab... | <step> | c | <step>
    assert "".join(p for p in pieces).replace("Ġ", " ") == "Q |ab<step>c<step>"
    positions = [i for i, t in enumerate(e.ids) if t == mid]
    assert e.step_positions == positions and len(positions) == 2
    b = collate([e], [(1.0, 0.7)], [0.0], tok.pad_token_id)
    expected = torch.full((1, len(e.ids)), IGNORE)
    expected[0, positions[0]], expected[0, positions[1]] = 1.0, 0.7
    assert torch.equal(b["labels"], expected)
    first_step = len(tok("Q |", add_special_tokens=True)["input_ids"])  # prompt + separator tokens
    assert e.completion_start == first_step and pieces[first_step - 1] in ("|", "Ġ|")
    comp = torch.zeros(1, len(e.ids), dtype=torch.bool)
    comp[0, first_step : positions[1] + 1] = True
    assert torch.equal(b["completion_mask"], comp)
    assert b["outcome"].tolist() == [0.0]


def test_collate_pads_and_keeps_unlabelled_steps(tiny_llama):
    vm = _verifier(tiny_llama)
    e1, e2 = vm.encode("What is 1 plus 2?", ["1 plus 2 is 3.", "A: 3"]), vm.encode("Hi", ["x"])
    b = collate([e1, e2], [(1.0, None), None], [1.0, None], vm.tok.pad_token_id)
    assert b["input_ids"].shape == (2, len(e1.ids))
    assert b["attention_mask"][1].sum() == len(e2.ids)
    assert (b["labels"] != IGNORE).sum() == 1 and b["labels"][0, e1.step_positions[0]] == 1.0
    assert math.isnan(b["outcome"][1])


def test_newline_marker_checked_standalone(tiny_llama):
    tok = AutoTokenizer.from_pretrained(tiny_llama)
    fmt = StepFormat("\n", "\n")
    mid = marker_id(tok, fmt)
    e = encode(tok, fmt, mid, "What is 1 plus 2?", ["1 plus 2 is 3.", "A: 3"])
    assert [e.ids[p] for p in e.step_positions] == [mid, mid]


def test_marker_that_is_several_tokens_refused(tiny_llama):
    tok = AutoTokenizer.from_pretrained(tiny_llama)
    with pytest.raises(MarkerError, match=r"step marker '<step>' tokenizes to \d+ tokens"):
        marker_id(tok, StepFormat("<step>"))


def test_merging_separator_refused_naming_it(tiny_llama):
    """A marker that is one id alone but merges with the end of a step: marker "e" after the step "an appl"
    becomes part of the BPE token "le" (tokens 'Ġapp', 'le'), so no token is the marker there: refused, naming
    the marker, the step and what the step's end tokenized to."""
    tok = AutoTokenizer.from_pretrained(tiny_llama)
    fmt = StepFormat("e", "\n")
    mid = marker_id(tok, fmt)  # one id on its own
    encode(tok, fmt, mid, "Q", ["ok", "B"])  # stands alone after these steps
    with pytest.raises(MarkerError) as e:
        encode(tok, fmt, mid, "Q", ["ok", "an appl"], name="solution 'x'")
    msg = str(e.value)
    assert "step marker 'e' does not end step 2 of solution 'x'" in msg and "tokenized to ['le']" in msg


def test_truncation_counts_dropped_labels(tiny_llama):
    tok = AutoTokenizer.from_pretrained(tiny_llama)
    fmt = StepFormat("\n", "\n")
    mid = marker_id(tok, fmt)
    full = encode(tok, fmt, mid, "Q", ["a b c", "d e f", "g h i"])
    cut = encode(tok, fmt, mid, "Q", ["a b c", "d e f", "g h i"], [1, None, 0], max_length=full.step_positions[1])
    assert cut.step_positions == [full.step_positions[0], None, None]
    assert cut.dropped_labels == 1  # step 2 was unlabelled, step 3's label is lost
    assert len(cut.ids) == full.step_positions[1]


@pytest.mark.parametrize("head", ["bce", "two_class", "ternary"])
def test_one_forward_equals_per_prefix_loop(tiny_llama, head):
    vm = _verifier(tiny_llama, head=head)
    sols = [("What is 12 plus 30?", ["12 plus 30 is 42.", "So the answer is 42.", "A: 42"]), ("Hi", ["one", "two"])]
    one = vm.score_steps(sols, aggregation="min", batch_size=2)
    for (p, s), r in zip(sols, one):
        loop = vm.score_per_prefix(p, s)
        assert max(abs(a - b) for a, b in zip(r["step_scores"], loop)) <= 1e-5
        assert r["score"] == pytest.approx(min(loop), abs=1e-5) and r["aggregation"] == "min"


def test_loss_on_model_outputs_matches_hand_formula(tiny_llama):
    vm = _verifier(tiny_llama)
    e = vm.encode("Q", ["a", "b"])
    b = vm.batch([e], [(1.0, 0.7)], [1.0])
    z = vm(b["input_ids"], b["attention_mask"])
    p1, p2 = e.step_positions
    s1, s2 = torch.sigmoid(z[0, p1]), torch.sigmoid(z[0, p2])
    by_hand = -(torch.log(s1) + 0.7 * torch.log(s2) + 0.3 * torch.log(1 - s2)) / 2
    assert losses.prm_bce(z, b["labels"]).item() == pytest.approx(by_hand.item(), abs=1e-6)


def test_saved_model_plain_transformers_same_outputs(tiny_llama, tmp_path):
    from rewardlab.scoring.loader import load_reward_model

    vm = _verifier(tiny_llama, head="two_class", aggregation="prod")
    vm.save(tmp_path / "m")
    spec = json.loads((tmp_path / "m" / "rewardlab.json").read_text())
    assert spec["kind"] == "verifier" and spec["head"] == "two_class" and spec["step_format"]["marker"] == "\n"
    assert spec["aggregation"] == "prod" and "model.safetensors" in spec["file_hashes"]
    text = "What is 1 plus 2?\n1 plus 2 is 3.\nA: 3\n"
    plain_tok = AutoTokenizer.from_pretrained(tmp_path / "m")
    plain = AutoModelForTokenClassification.from_pretrained(tmp_path / "m").eval()
    ids = plain_tok(text, return_tensors="pt")
    with torch.no_grad():
        want = plain(**ids).logits
        got = vm(ids["input_ids"], ids["attention_mask"])
    assert torch.allclose(want, got, atol=1e-6)
    loaded = load_reward_model(str(tmp_path / "m"))
    assert isinstance(loaded, VerifierModel)
    rows = loaded.score_rows([("What is 1 plus 2?", "1 plus 2 is 3.\n\nA: 3")])
    probs = torch.softmax(want[0], -1)[:, 1]
    e = loaded.encode("What is 1 plus 2?", ["1 plus 2 is 3.", "A: 3"])
    assert rows[0]["steps"] == pytest.approx([float(probs[p]) for p in e.step_positions], abs=1e-6)
    assert rows[0]["score"] == pytest.approx(math.prod(rows[0]["steps"]), abs=1e-6)
    assert rows[0]["aggregation"] == "prod" and rows[0]["step_rule"] == "lines"
    (tmp_path / "m" / "tokenizer.json").write_text("{}")  # integrity: an edited tokenizer is refused, named
    with pytest.raises(ModelContractError, match="tokenizer.json was modified"):
        load_reward_model(str(tmp_path / "m"))


def test_loader_takes_plain_token_classifier(tiny_llama, tmp_path, capsys):
    from rewardlab.scoring.loader import load_reward_model

    model = AutoModelForTokenClassification.from_pretrained(tiny_llama, num_labels=2)
    model.config.pad_token_id = 0
    model.save_pretrained(tmp_path / "trl")
    AutoTokenizer.from_pretrained(tiny_llama).save_pretrained(tmp_path / "trl")
    vm = load_reward_model(str(tmp_path / "trl"))
    assert isinstance(vm, VerifierModel) and vm.spec.head == "two_class" and vm.spec.trained_elsewhere
    assert vm.kind == "token-classification-prm" and "without rewardlab.json" in capsys.readouterr().err
    assert len(vm.score([("Q", "a\nb"), ("Q", "c")])) == 2


def test_score_command_writes_step_scores(tiny_llama, tmp_path, capsys):
    from rewardlab.cli import main

    vm = _verifier(tiny_llama)
    vm.save(tmp_path / "m")
    data = tmp_path / "s.jsonl"
    data.write_text(json.dumps({"prompt": "What is 1 plus 2?", "response": "1 plus 2 is 3.\n\nA: 3"}) + "\n")
    out = tmp_path / "out.jsonl"
    assert main(["score", "--model", str(tmp_path / "m"), "--data", str(data), "--output", str(out), "-q"]) == 0
    row = json.loads(out.read_text())
    want = vm.score_steps([("What is 1 plus 2?", ["1 plus 2 is 3.", "A: 3"])])[0]
    assert row["steps"] == pytest.approx(want["step_scores"], abs=1e-6) and row["aggregation"] == "min"
    assert row["score"] == pytest.approx(min(want["step_scores"]), abs=1e-6) and row["step_rule"] == "lines"
    rc = main(["score", "--model", str(tmp_path / "m"), "--data", str(data), "--output", str(out), "--overwrite",
               "--normalize", "-q"])  # fmt: skip
    assert rc == 2 and "--normalize does not apply" in capsys.readouterr().err


def test_eval_verifier_command(tiny_llama, tmp_path, capsys):
    """processbench: the threshold chosen on the named split and recorded, per split model + baselines;
    candidates: one entry per aggregation, each equal to aggregating the same one-forward step scores."""
    from rewardlab.cli import main

    vm = _verifier(tiny_llama)
    vm.save(tmp_path / "m")
    rows = [
        {"id": f"toy-{i}", "problem": f"What is {i} plus 1?", "steps": [f"{i} plus 1 is {i + 1}.", f"A: {i + d}"],
         "label": -1 if d == 1 else 1, "final_answer_correct": d == 1}
        for i, d in [(1, 1), (2, 2), (3, 1), (4, 3)]
    ]  # fmt: skip
    pb = tmp_path / "pb.json"
    pb.write_text(json.dumps(rows))
    out = tmp_path / "pb-eval.json"
    args = ["eval-verifier", "--model", str(tmp_path / "m"), "--data", str(pb), "-q"]
    assert main([*args, "--threshold-split", "toy", "--output", str(out)]) == 0
    r = json.loads(out.read_text())["results"][str(tmp_path / "m")]
    assert "chosen on split 'toy'" in r["threshold_rule"] and set(r["splits"]) == {"toy"}
    assert r["splits"]["toy"]["never_wrong"]["f1"] == 0.0 and r["splits"]["toy"]["n"] == 4
    capsys.readouterr()
    assert main([*args, "--threshold-split", "gsm8k", "--output", str(tmp_path / "x.json")]) == 2  # before scoring
    err = capsys.readouterr().err
    assert "--threshold-split 'gsm8k' is not a split of" in err and "toy" in err and "Traceback" not in err
    assert not (tmp_path / "x.json").exists()
    gs = tmp_path / "g.jsonl"
    gs.write_text(
        json.dumps({"question": "Q?", "a": {"solution": "x\nA: 1", "is_correct": True},
                    "b": {"solution": "y\nA: 2", "is_correct": False}}) + "\n"
    )  # fmt: skip
    out2 = tmp_path / "c.json"
    assert main(["eval-verifier", "--benchmark", "candidates", "--model", str(tmp_path / "m"), "--data", str(gs),
                 "--aggregation", "min", "--aggregation", "prod", "--output", str(out2), "-q"]) == 0  # fmt: skip
    res = json.loads(out2.read_text())["results"]
    steps = vm.score_steps([("Q?", ["x", "A: 1"]), ("Q?", ["y", "A: 2"])])
    top = max(range(2), key=lambda i: min(steps[i]["step_scores"]))
    assert res[f"{tmp_path / 'm'} [min]"]["top1"]["value"] == [1.0, 0.0][top]
    assert set(res) == {f"{tmp_path / 'm'} [min]", f"{tmp_path / 'm'} [prod]"}
    # the Markdown report carries the best-of-n curve (n = 1 … N) of every model next to its top-1: with one
    # question of two candidates, n=1 is the mean correctness 0.5 and n=2 the top-1 credit
    md = out2.with_suffix(".md").read_text()
    top1 = res[f"{tmp_path / 'm'} [min]"]["top1"]["value"]
    assert "| model (aggregation) | n=1 | n=2 |" in md
    assert f"| {tmp_path / 'm'} [min] | 0.500 (" in md and f") | {top1:.3f} (" in md


def test_an_edited_verifier_contract_is_refused_naming_the_field(tiny_llama, tmp_path, capsys):
    """The verifier's rewardlab.json is sealed like every rewardlab.json: changing the aggregation (min → max would
    change every solution score) or deleting file_hashes (turning the file checks off) is refused, naming the
    field; --trust-modified loads it and the scorer reports what was modified."""
    from rewardlab.scoring.loader import load_reward_model

    vm = _verifier(tiny_llama, aggregation="min")
    vm.save(tmp_path / "m")
    path = tmp_path / "m" / "rewardlab.json"
    sealed = json.loads(path.read_text())
    assert load_reward_model(str(tmp_path / "m")).spec.aggregation == "min"
    path.write_text(json.dumps({**sealed, "aggregation": "last"}))
    with pytest.raises(ModelContractError, match="aggregation"):
        load_reward_model(str(tmp_path / "m"))
    trusted = load_reward_model(str(tmp_path / "m"), trust_modified=True)
    assert trusted.spec.aggregation == "last" and any("aggregation" in m for m in trusted.modified_files)
    path.write_text(json.dumps({k: v for k, v in sealed.items() if k != "file_hashes"}))
    with pytest.raises(ModelContractError, match="file_hashes"):
        load_reward_model(str(tmp_path / "m"))


def test_eval_verifier_claims_its_output_before_any_work(tiny_llama, tmp_path, capsys):
    """eval-verifier goes through the shared output claim: an existing report needs --overwrite, and the data file
    is never written over, even with --overwrite (exit 2, one line, the data unchanged)."""
    from rewardlab.cli import main

    vm = _verifier(tiny_llama)
    vm.save(tmp_path / "m")
    pb = tmp_path / "pb.json"
    pb.write_text(json.dumps([{"id": "toy-1", "problem": "What is 1 plus 1?", "steps": ["1 plus 1 is 2.", "A: 2"],
                               "label": -1, "final_answer_correct": True}]))  # fmt: skip
    before = pb.read_text()
    args = ["eval-verifier", "--model", str(tmp_path / "m"), "--data", str(pb), "--threshold", "0.5", "-q"]
    (tmp_path / "old.json").write_text("{}")
    assert main([*args, "--output", str(tmp_path / "old.json")]) == 2
    err = capsys.readouterr().err
    assert "exists: pass --overwrite" in err and "Traceback" not in err
    assert (tmp_path / "old.json").read_text() == "{}"
    assert main([*args, "--output", str(pb), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "--data" in err and "Traceback" not in err and pb.read_text() == before
    assert main([*args, "--output", str(tmp_path / "old.json"), "--overwrite"]) == 0
    assert "results" in json.loads((tmp_path / "old.json").read_text())
