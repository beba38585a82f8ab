"""Parity with TRL's ``PRMTrainer`` (``--head two_class``), and TRL's documented traps shown, one test each.

TRL source read: ``trl/experimental/prm/prm_trainer.py`` of trl 1.13.0, the newest release that has it (1.14 removed
the experimental PRM trainer, huggingface/trl#7133): ``PRMTrainer.tokenize_row`` tokenizes the prompt and each step
separately (``add_special_tokens=False``), appends ``step_separator`` (default ``"\\n"``) to every step, puts
``int(label)`` on each step's last token, prepends ``tokenizer.bos_token_id`` when the tokenizer has one, joins
prompt + steps **with no separator after the prompt**, and cuts ``input_ids`` / ``labels`` at ``max_length``
silently; ``PRMTrainer.__init__`` maps it over the rows and uses ``DataCollatorForTokenClassification``; the loss is
the model's own (``LlamaForTokenClassification`` → the mean CE over the batch's labelled tokens). ``PRMConfig``
(``prm_config.py``) defaults ``disable_dropout=True`` and, like TRL's other configs, ``bf16=True`` — mixed
precision even on a CPU, which alone moves the step-1 loss by ~1e-5 here; the parity run sets ``bf16=False``
(rewardlab trains in fp32).

Where the two agree by construction (rows built for it): every row has the same number of labelled steps (TRL's
mean over labelled tokens = rewardlab's mean per solution then over solutions), hard labels, TRL's prompt carries
rewardlab's prompt separator at its end, and the tokenizer adds its BOS itself (a Llama-style post-processor), so
both encode the same ids — asserted, not assumed.
"""

import json
import os
import shutil
import warnings

import pytest
import torch

pytest.importorskip("trl.experimental.prm", reason="trl with the experimental PRMTrainer (trl<1.14) not installed")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

from datasets import Dataset  # noqa: E402
from tokenizers import processors  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402
from trl.experimental.prm import PRMConfig, PRMTrainer  # noqa: E402

from rewardlab.cli import main  # noqa: E402
from rewardlab.verifiers.losses import prm_two_class_ce  # noqa: E402
from rewardlab.verifiers.synthetic import make_problems  # noqa: E402
from rewardlab.verifiers.train import TrainVerifierConfig, build_model  # noqa: E402

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


@pytest.fixture(scope="module")
def bos_llama(tiny_llama, tmp_path_factory):
    """The tiny Llama with a tokenizer that adds its BOS itself (as Llama's do), so TRL's prepended BOS and the
    tokenizer's own special tokens (what rewardlab adds) are the same single token."""
    path = tmp_path_factory.mktemp("bos-llama") / "m"
    shutil.copytree(tiny_llama, path)
    tok = AutoTokenizer.from_pretrained(path)
    bos = tok.bos_token
    tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, tok.bos_token_id)]
    )
    tok.save_pretrained(path)
    return str(path)


def _rows(n=8, k=3, seed=3):
    """TRL stepwise rows of the embedded arithmetic task with exactly ``k`` steps each (hard labels)."""
    rows = []
    for p in make_problems(60, seed=seed):
        for s in p.solutions:
            if len(s.steps) == k and len(rows) < n:
                rows.append(
                    {"prompt": s.prompt, "completions": list(s.steps), "labels": [bool(v) for v in s.step_labels]}
                )
    assert len(rows) == n and (n < 4 or {False, True} <= {v for r in rows for v in r["labels"]})
    return rows


def _model(path):
    """rewardlab's model for ``--head two_class`` (seeded: the same weights every call, as train-verifier builds)."""
    return build_model(TrainVerifierConfig(backbone=path, head="two_class", head_dropout=0.0), "two_class", "binary")


def _tokenize_trl(row, tok, max_length=None):
    return PRMTrainer.tokenize_row(row, tok, "\n", max_length, None, False, False)


def _trl_step1_loss(model, tok, rows, out):
    """TRL PRMTrainer, one optimizer step over all ``rows`` in one batch; the loss its ``compute_loss`` returned."""
    args = PRMConfig(
        output_dir=str(out), per_device_train_batch_size=len(rows), max_steps=1, learning_rate=5e-5, report_to=[],
        save_strategy="no", use_cpu=True, seed=0, bf16=False, logging_steps=1,
    )  # fmt: skip
    trainer = PRMTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok)
    seen, compute = [], trainer.compute_loss

    def recorded(*a, **k):
        loss = compute(*a, **k)
        seen.append((loss[0] if isinstance(loss, tuple) else loss).item())
        return loss

    trainer.compute_loss = recorded
    trainer.train()
    return seen[0], trainer.train_dataset


def test_step1_loss_equals_trl_prm_trainer(bos_llama, tmp_path):
    """8 rows × 3 labelled steps, one step of batch 8: rewardlab's ``train-verifier --head two_class`` step-1 loss
    equals TRL PRMTrainer's on the same initial weights and rows within 1e-6, and both tokenized every row to the
    same ids with the labels on the same tokens."""
    rows = _rows()
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rc = main(
        ["train-verifier", "--data", str(data), "--format", "trl", "--backbone", bos_llama, "--head", "two_class",
         "--head-dropout", "0", "--batch-size", "8", "--eval-fraction", "0", "--output-dir", str(tmp_path / "rl"), "-q"]
    )  # fmt: skip
    assert rc == 0
    ours = [json.loads(x) for x in (tmp_path / "rl" / "metrics.jsonl").read_text().splitlines()][0]
    assert ours["step"] == 1 and ours["solutions"] == 8

    vm = _model(bos_llama)
    trl_rows = [{**r, "prompt": r["prompt"] + "\n"} for r in rows]  # TRL adds no prompt separator (trap 2)
    theirs, tokenized = _trl_step1_loss(_model(bos_llama).model, vm.tok, trl_rows, tmp_path / "trl")
    for r, t in zip(rows, tokenized):
        e = vm.encode(r["prompt"], r["completions"])
        assert t["input_ids"] == e.ids
        assert [j for j, v in enumerate(t["labels"]) if v != -100] == e.step_positions
    assert abs(ours["loss"] - theirs) <= 1e-6
    assert 0.3 < theirs < 1.5  # a real CE of an untrained 2-class head, not a constant


def test_trap_soft_labels_cast_to_int(bos_llama):
    """TRL casts a soft label with ``int()``: 0.7 → 0 and 0.3 → 0, so its loss is the CE against the hard class 0
    (the model's own loss on TRL's tokenized labels, what PRMTrainer's ``compute_loss`` returns). rewardlab keeps
    0.7 as a target [0.3, 0.7]: its labels tensor holds 0.7 and its loss differs; recomputed with the labels
    cast, rewardlab's loss equals TRL's (≤ 1e-6), so the cast is the whole difference."""
    rows = _rows(4)
    soft = [{**r, "labels": [0.7 if v else 0.3 for v in r["labels"]]} for r in rows]
    vm = _model(bos_llama)
    vm.model.eval()
    trl = [_tokenize_trl({**r, "prompt": r["prompt"] + "\n"}, vm.tok) for r in soft]
    assert {v for t in trl for v in t["labels"] if v != -100} == {0}  # every 0.7 became 0
    enc = [vm.encode(r["prompt"], r["completions"]) for r in soft]
    with torch.no_grad():
        ids = torch.tensor([t["input_ids"] for t in trl])
        theirs = vm.model(input_ids=ids, labels=torch.tensor([t["labels"] for t in trl])).loss.item()
        b = vm.batch(enc, [r["labels"] for r in soft])
        assert sorted({round(v, 6) for v in b["labels"][b["labels"] != -100].tolist()}) == [0.3, 0.7]
        ours = prm_two_class_ce(vm.batch_logits(b), b["labels"]).mean().item()
        cast = vm.batch(enc, [[int(v) for v in r["labels"]] for r in soft])
        ours_cast = prm_two_class_ce(vm.batch_logits(cast), cast["labels"]).mean().item()
    assert abs(ours_cast - theirs) <= 1e-6
    assert abs(ours - theirs) > 1e-3


def test_trap_no_separator_after_prompt(bos_llama, tmp_path, capsys):
    """On the same row, TRL's training ids lack the separator token between the prompt and step 1 (its documented
    inference adds one); rewardlab's have it: TRL's ids = rewardlab's with that one token removed, and every TRL
    label sits one token earlier. rewardlab refuses an empty ``--prompt-separator`` (exit 2, before training)."""
    row = _rows(1)[0]
    vm = _model(bos_llama)
    e = vm.encode(row["prompt"], row["completions"])
    t = _tokenize_trl(row, vm.tok)
    sep = e.completion_start - 1
    assert vm.tok.convert_ids_to_tokens([e.ids[sep]]) == vm.tok.convert_ids_to_tokens(vm.tok("\n")["input_ids"][1:])
    assert t["input_ids"] == e.ids[:sep] + e.ids[sep + 1 :]
    assert [j for j, v in enumerate(t["labels"]) if v != -100] == [p - 1 for p in e.step_positions]
    data = tmp_path / "r.jsonl"
    data.write_text(json.dumps(row) + "\n")
    rc = main(["train-verifier", "--data", str(data), "--backbone", bos_llama, "--prompt-separator", "",
               "--output-dir", str(tmp_path / "o"), "-q"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "--prompt-separator must not be empty" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_trap_truncation_drops_trailing_labels_silently(bos_llama):
    """A ``max_length`` that cuts into the last step: TRL keeps fewer labels than steps and warns of nothing;
    rewardlab's encoding at the same length counts exactly those labels (``dropped_labels``; train-verifier reports
    them, or refuses with ``--on-truncation refuse``), and the labels both keep sit on the same tokens."""
    row = _rows(1, k=3)[0]
    vm = _model(bos_llama)
    full = vm.encode(row["prompt"], row["completions"])
    cut = full.step_positions[1] + 2  # step 3's marker (and step 3's end) falls beyond
    trl_row = {**row, "prompt": row["prompt"] + "\n"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # TRL says nothing
        t = _tokenize_trl(trl_row, vm.tok, max_length=cut)
    kept = [j for j, v in enumerate(t["labels"]) if v != -100]
    assert len(kept) == 2 < len(row["completions"])
    vm.spec.max_length = cut
    ours = vm.encode(row["prompt"], row["completions"], row["labels"])
    assert ours.dropped_labels == 1 and ours.step_positions == kept + [None]


def test_loss_normalisation_differs_with_unequal_step_counts(bos_llama):
    """Not a trap but a choice, shown: TRL's loss is the mean CE over the batch's labelled tokens,
    Σ_b K_b·ℓ_b / Σ_b K_b (ℓ_b: row b's mean over its K_b steps); rewardlab's is the mean over solutions, Σ_b ℓ_b / B,
    so a step's loss does not depend on how solutions are grouped. With K = (3, 5): both identities hold (≤ 1e-6),
    and they differ by (ℓ_0 − ℓ_1)/8."""
    rows = [_rows(1, k=3)[0], _rows(1, k=5, seed=4)[0]]
    vm = _model(bos_llama)
    vm.model.eval()
    trl = [_tokenize_trl({**r, "prompt": r["prompt"] + "\n"}, vm.tok) for r in rows]
    per_row = []
    with torch.no_grad():
        for t in trl:
            per_row.append(vm.model(input_ids=torch.tensor([t["input_ids"]]), labels=torch.tensor([t["labels"]])).loss)
        enc = [vm.encode(r["prompt"], r["completions"]) for r in rows]
        b = vm.batch(enc, [r["labels"] for r in rows])
        ours = prm_two_class_ce(vm.batch_logits(b), b["labels"]).mean().item()
        W = max(len(t["input_ids"]) for t in trl)  # TRL's batch: DataCollatorForTokenClassification's right padding
        pad = lambda x, v: x + [v] * (W - len(x))  # noqa: E731
        theirs = vm.model(
            input_ids=torch.tensor([pad(t["input_ids"], vm.tok.pad_token_id) for t in trl]),
            attention_mask=torch.tensor([pad([1] * len(t["input_ids"]), 0) for t in trl]),
            labels=torch.tensor([pad(t["labels"], -100) for t in trl]),
        ).loss.item()
    assert abs(ours - (per_row[0] + per_row[1]).item() / 2) <= 1e-6
    assert abs(theirs - (3 * per_row[0] + 5 * per_row[1]).item() / 8) <= 1e-6
    # the gap is (ℓ_0 − ℓ_1) / 8: zero only when the rows' mean losses happen to be equal
    assert abs((ours - theirs) - (per_row[0] - per_row[1]).item() / 8) <= 1e-6 and ours != theirs
