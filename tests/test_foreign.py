"""Reward models trained elsewhere (no rewardlab.json), saved as plain transformers directories by the fixtures:
a Llama classifier with a chat template, a GPT-2 one without, a BERT text-pair classifier, a TRL-style save, an
OpenRLHF-style save. Each is scored, evaluated and served, and its scores equal plain transformers' (or, for
OpenRLHF, a hand-written re-statement of OpenRLHF's forward) on the same rendered text to <= 1e-5 in fp32."""

import json
from pathlib import Path

import pytest
import torch

from rewardlab.cli import main
from rewardlab.core.contract_options import ContractOptions
from rewardlab.core.errors import ModelContractError
from rewardlab.models.foreign import ForeignRewardModel, infer_contract
from rewardlab.scoring.loader import load_reward_model

PAIRS = [
    ("What is 2 plus 3?", "It is 5.", "It is 7."),
    ("Name a fruit.", "Apple.", "A chair."),
    ("Say hi.", "Hi!", "No."),
    ("Count to three.", "One, two, three.", "Three, two."),
]
ITEMS = [(p, r) for p, c, j in PAIRS for r in (c, j)]


def _seqcls_from_lm(lm_dir, out, num_labels=1, seed=1, id2label=None):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(lm_dir)
    torch.manual_seed(seed)
    kw = {"id2label": id2label, "label2id": {v: k for k, v in id2label.items()}} if id2label else {}
    model = AutoModelForSequenceClassification.from_pretrained(lm_dir, num_labels=num_labels, **kw)
    torch.nn.init.normal_(model.score.weight, std=0.5) if hasattr(model, "score") else None
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


@pytest.fixture(scope="module")
def llama_rm(tmp_path_factory, tiny_llama):
    """A Llama classifier with the ChatML template; pad == eos == <|im_end|> as the tiny tokenizer ships it."""
    return _seqcls_from_lm(tiny_llama, tmp_path_factory.mktemp("llama-rm"))


@pytest.fixture(scope="module")
def gpt2_rm(tmp_path_factory):
    from transformers import AutoTokenizer

    from rewardlab.models.tiny import make_tiny_decoder

    lm = make_tiny_decoder(tmp_path_factory.mktemp("gpt2-lm"), "gpt2")
    tok = AutoTokenizer.from_pretrained(lm)
    tok.chat_template = None
    tok.pad_token = None  # GPT-2 ships no pad token
    for f in lm.glob("chat_template*"):
        f.unlink()
    tok.save_pretrained(lm)
    cfg = json.loads((lm / "config.json").read_text())
    cfg.pop("pad_token_id", None)
    (lm / "config.json").write_text(json.dumps(cfg))
    return _seqcls_from_lm(lm, tmp_path_factory.mktemp("gpt2-rm"))


@pytest.fixture(scope="module")
def bert_rm(tmp_path_factory, tiny_bert):
    return _seqcls_from_lm(tiny_bert, tmp_path_factory.mktemp("bert-rm"))


@pytest.fixture(scope="module")
def trl_rm(tmp_path_factory, tiny_llama):
    """As TRL's RewardTrainer leaves a model: SeqCls num_labels=1, the tokenizer's pad token set to a token
    other than EOS and config.pad_token_id = tokenizer.pad_token_id."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama)
    tok.pad_token = "<|endoftext|>"
    torch.manual_seed(2)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_llama, num_labels=1)
    model.config.pad_token_id = tok.pad_token_id
    out = tmp_path_factory.mktemp("trl-rm")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


@pytest.fixture(scope="module")
def openrlhf_rm(tmp_path_factory, tiny_llama):
    """OpenRLHF's save layout (openrlhf/models/model.py, _get_reward_model): the base model's weights under
    its base_model_prefix (``model.``), a ``score.weight`` value head without bias, and ``normalize_reward``,
    ``mean``, ``std``, ``value_head_prefix`` in config.json; architectures names its RewardModel class."""
    from safetensors.torch import save_file
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    config = AutoConfig.from_pretrained(tiny_llama)
    torch.manual_seed(3)
    base = AutoModel.from_config(config)
    state = {f"model.{k}": v.contiguous() for k, v in base.state_dict().items()}
    state["score.weight"] = torch.randn(1, config.hidden_size) * 0.5
    out = tmp_path_factory.mktemp("openrlhf-rm")
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    config.normalize_reward, config.mean, config.std, config.value_head_prefix = True, 0.25, 2.0, "score"
    config.architectures = ["RewardModel"]
    config.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_llama).save_pretrained(out)
    return str(out)


def _plain_scores(model_dir, texts, add_special_tokens=True):
    """transformers' own forward, one text at a time (no padding at all)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    out = []
    with torch.no_grad():
        for t in texts:
            enc = (
                tok(*t, return_tensors="pt")
                if isinstance(t, tuple)
                else tok(t, return_tensors="pt", add_special_tokens=add_special_tokens)
            )
            out.append(model(**enc).logits[0, 0].item())
    return out


def _chat_texts(model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    return [
        tok.apply_chat_template([{"role": "user", "content": p}, {"role": "assistant", "content": r}], tokenize=False)
        for p, r in ITEMS
    ]


def test_llama_chat_template_scores_equal_plain_transformers(llama_rm):
    rm = load_reward_model(llama_rm, say=None)
    assert isinstance(rm, ForeignRewardModel)
    parts = rm.contract.parts
    assert parts["template"].value == "chat" and parts["template"].source == "inferred"
    assert parts["add_special_tokens"].value is True  # ChatML does not write BOS: the tokenizer adds nothing anyway
    assert any("pad == eos" in w for w in rm.contract.warnings)  # the guess is flagged
    got = rm.score(ITEMS, batch_size=3)  # batched and padded: the rows have different lengths
    want = _plain_scores(llama_rm, _chat_texts(llama_rm))
    assert max(abs(a - b) for a, b in zip(got, want)) <= 1e-5
    assert len(set(round(x, 6) for x in got)) == len(got)  # a real, non-constant model
    left = ContractOptions(padding_side="left")
    assert load_reward_model(llama_rm, left, say=None).score(ITEMS, batch_size=8) == pytest.approx(want, abs=1e-5)


def test_gpt2_without_template_joins_with_eos_and_pads_with_eos(gpt2_rm):
    rm = load_reward_model(gpt2_rm, say=None)
    c = rm.contract
    assert c.value("template") == "join" and c.value("pad_token_id") == rm.tokenizer.eos_token_id
    assert "EOS (as reward-bench" in c.parts["pad_token_id"].why
    assert any("guess" in w for w in c.warnings) and any("pad == eos" in w for w in c.warnings)
    eos = rm.tokenizer.eos_token
    texts = [f"{p}\n{r}{eos}" for p, r in ITEMS]
    got = rm.score(ITEMS, batch_size=4)
    # the trailing EOS equals pad, so transformers reads the token before it: same as the text without EOS
    assert got == pytest.approx(_plain_scores(gpt2_rm, [t[: -len(eos)] for t in texts]), abs=1e-5)
    # absolute positions: left padding is correct only because positions come from the mask
    left = load_reward_model(gpt2_rm, ContractOptions(padding_side="left"), say=None).score(ITEMS, batch_size=4)
    assert left == pytest.approx(got, abs=1e-5)


def test_bert_text_pair_classifier(bert_rm):
    rm = load_reward_model(bert_rm, say=None)
    assert rm.contract.value("template") == "pair" and rm.contract.value("reward_read_at") == "cls"
    got = rm.score(ITEMS, batch_size=3)
    assert got == pytest.approx(_plain_scores(bert_rm, [(p, r) for p, r in ITEMS]), abs=1e-5)
    with pytest.raises(ModelContractError, match="right-padded"):
        load_reward_model(bert_rm, ContractOptions(padding_side="left"), say=None)


def test_trl_save_reads_its_own_pad_token(trl_rm):
    rm = load_reward_model(trl_rm, say=None)
    assert rm.contract.parts["pad_token_id"].source == "model" and rm.spec.pad_token == "<|endoftext|>"
    assert not any("pad == eos" in w for w in rm.contract.warnings)
    assert rm.score(ITEMS, batch_size=8) == pytest.approx(_plain_scores(trl_rm, _chat_texts(trl_rm)), abs=1e-5)


def _openrlhf_reference(model_dir, texts):
    """OpenRLHF's reward forward restated (openrlhf/models/model.py, RewardModel.forward; not imported): base
    model with position ids cumsum-1 (pads set to 1), value head on the last hidden state, value at the last
    attention-mask position, then (r - mean) / std when normalising. Texts tokenized without special tokens."""
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    base = AutoModel.from_pretrained(model_dir).eval()
    w = load_file(str(Path(model_dir) / "model.safetensors"))["score.weight"]
    out = []
    with torch.no_grad():
        for t in texts:
            ids = tok(t, return_tensors="pt", add_special_tokens=False)["input_ids"]
            h = base(input_ids=ids, position_ids=torch.arange(ids.shape[1])[None]).last_hidden_state
            out.append((h[0, -1] @ w[0]).item())
    return out


def test_openrlhf_save_scores_as_openrlhf(openrlhf_rm):
    rm = load_reward_model(openrlhf_rm, say=None)
    assert rm.contract.kind == "openrlhf" and rm.contract.value("add_special_tokens") is False
    assert rm.spec.normalization["mean"] == 0.25 and rm.spec.normalization["std"] == 2.0
    # ChatML text ends "<|im_end|>\n": OpenRLHF strips the newline and, ending in EOS already, adds nothing
    texts = [t.rstrip("\n") for t in _chat_texts(openrlhf_rm)]
    want = _openrlhf_reference(openrlhf_rm, texts)
    got = rm.score(ITEMS, batch_size=3)
    assert got == pytest.approx(want, abs=1e-5)
    normed = rm.score(ITEMS, batch_size=3, normalize=True)
    assert normed == pytest.approx([(r - 0.25) / 2.0 for r in want], abs=1e-5)


def test_overrides_are_recorded_and_bad_ones_refused(llama_rm, tmp_path):
    opts = ContractOptions(max_length=12, truncation="prompt_left", add_special_tokens=False)
    c = infer_contract(llama_rm, opts)[3]
    assert all(c.parts[k].source == "given" for k in ("max_length", "truncation", "add_special_tokens"))
    assert c.parts["template"].source == "inferred"
    for bad, words in (
        (ContractOptions(template="jinja"), "--template"),
        (ContractOptions(truncation="middle"), "--truncation"),
        (ContractOptions(score_index=3), "out of range"),
        (ContractOptions(attribute="x"), "--attribute"),
    ):
        with pytest.raises(ModelContractError, match=words):
            load_reward_model(llama_rm, bad, say=None)
    tmpl = tmp_path / "t.jinja"
    tmpl.write_text("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}")
    rm = load_reward_model(llama_rm, ContractOptions(template=str(tmpl)), say=None)
    assert rm.spec.chat_template == tmpl.read_text() and rm.contract.parts["template"].source == "given"


def test_multi_output_head_needs_a_choice(tmp_path, tiny_llama):
    d = _seqcls_from_lm(tiny_llama, tmp_path / "multi", num_labels=3, id2label={0: "helpful", 1: "safe", 2: "brief"})
    with pytest.raises(ModelContractError, match="--score-index I or --attribute NAME"):
        load_reward_model(d, say=None)
    by_name = load_reward_model(d, ContractOptions(attribute="safe"), say=None).score(ITEMS[:3])
    by_index = load_reward_model(d, ContractOptions(score_index=1), say=None).score(ITEMS[:3])
    assert by_name == by_index
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(d)
    m = AutoModelForSequenceClassification.from_pretrained(d).eval()
    texts = _chat_texts(d)[:3]
    with torch.no_grad():
        want = [m(**tok(t, return_tensors="pt")).logits[0, 1].item() for t in texts]
    assert by_name == pytest.approx(want, abs=1e-5)


def test_rewardlab_models_keep_their_checked_contract(tmp_path, tiny_llama):
    from rewardlab.models.reward_model import RewardModel

    rm = RewardModel.from_backbone(tiny_llama, max_length=32)
    rm.save(tmp_path / "m")
    loaded = load_reward_model(str(tmp_path / "m"), say=None)
    assert type(loaded) is RewardModel
    with pytest.raises(ModelContractError, match="fixed by rewardlab.json"):
        load_reward_model(str(tmp_path / "m"), ContractOptions(max_length=64), say=None)


def test_plain_causal_lm_is_not_mistaken_for_a_reward_model(tiny_llama):
    with pytest.raises(ModelContractError, match="not a reward model.*--ref-model"):
        load_reward_model(tiny_llama, say=None)


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.mark.parametrize("which", ["llama_rm", "gpt2_rm", "bert_rm", "trl_rm", "openrlhf_rm"])
def test_cli_score_eval_inspect_store_the_contract(which, request, tmp_path, capsys):
    model_dir = request.getfixturevalue(which)
    data = _write(tmp_path / "pairs.jsonl", [{"prompt": p, "chosen": c, "rejected": j} for p, c, j in PAIRS])
    out = tmp_path / "s.jsonl"
    assert main(["score", "--model", model_dir, "--data", data, "--output", str(out)]) == 0
    err = capsys.readouterr().err
    assert "scoring contract for" in err and "inferred" in err
    rows = [json.loads(l) for l in out.read_text().splitlines()]
    rm = load_reward_model(model_dir, say=None)
    assert [s for r in rows for s in r["scores"]] == pytest.approx(rm.score(ITEMS), abs=1e-6)
    contract = json.loads((tmp_path / "s.contract.json").read_text())
    assert contract["rewardlab_json"] is False and contract["parts"]["template"]["source"] in ("inferred", "given")
    assert (
        main(["eval", "--model", model_dir, "--data", data, "--output-dir", str(tmp_path / "ev"), "--n-boot", "20"])
        == 0
    )
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    col = next(iter(report["results"].values()))
    assert col["model"]["describe"]["contract"]["kind"] == rm.contract.kind
    wins = sum(r["scores"][0] > r["scores"][1] for r in rows)
    assert col["accuracy"] == pytest.approx(wins / len(rows))
    assert "foreign model" in (tmp_path / "ev" / "report.md").read_text()
    capsys.readouterr()
    assert main(["inspect", model_dir]) == 0
    printed = capsys.readouterr().out
    assert "scoring contract for" in printed and rm.contract.value("template") in printed


def test_serve_foreign_model_matches_offline(llama_rm):
    from fastapi.testclient import TestClient

    from rewardlab.serve.app import create_app
    from rewardlab.serve.config import ServeConfig

    app = create_app(ServeConfig(model=llama_rm, max_wait_ms=1))
    offline = load_reward_model(llama_rm, say=None)
    with TestClient(app) as client:
        r = client.post("/v1/score", json={"prompt": PAIRS[0][0], "responses": [PAIRS[0][1], PAIRS[0][2]]})
        assert r.status_code == 200, r.text
        assert r.json()["rewards"] == pytest.approx(offline.score(ITEMS[:2]), abs=1e-5)
        health = client.get("/health").json()
        assert health["contract"]["kind"] == "sequence-classifier"


def test_docs_commands_use_real_flags():
    """Every command in docs/foreign-models.md's bash blocks parses with the real CLI parser."""
    import re
    import shlex

    from rewardlab.cli import make_parser

    text = (Path(__file__).resolve().parents[1] / "docs" / "foreign-models.md").read_text()
    commands = [
        line for block in re.findall(r"```bash\n(.*?)```", text, re.S) for line in block.splitlines() if line.strip()
    ]
    assert len(commands) >= 15
    parser = make_parser()
    for line in commands:
        argv = shlex.split(line)
        assert argv[0] == "rewardlab", line
        try:
            parser.parse_args(argv[1:])
        except SystemExit:
            pytest.fail(f"docs command does not parse: {line}")


def test_serve_packing_falls_back_and_normalize_dry_run(bert_rm, tmp_path, capsys):
    """A foreign encoder served with --packing takes the padded path (rewardlab's packed rules are not its
    contract); `normalize` prints a foreign model's statistics with --dry-run and refuses to write them."""
    from fastapi.testclient import TestClient

    from rewardlab.serve.app import create_app
    from rewardlab.serve.config import ServeConfig

    offline = load_reward_model(bert_rm, say=None).score(ITEMS[:2])
    with TestClient(create_app(ServeConfig(model=bert_rm, packing=True, max_wait_ms=1))) as client:
        r = client.post("/v1/score", json={"prompt": PAIRS[0][0], "responses": [PAIRS[0][1], PAIRS[0][2]]})
        assert r.status_code == 200 and r.json()["rewards"] == pytest.approx(offline, abs=1e-5)
    data = _write(tmp_path / "samples.jsonl", [{"prompt": p, "response": r} for p, r in ITEMS])
    assert main(["normalize", "--model", bert_rm, "--data", data, "--dry-run"]) == 0
    import statistics

    scores = load_reward_model(bert_rm, say=None).score(ITEMS)
    assert f"mean {statistics.fmean(scores):.6g}" in capsys.readouterr().out
    assert main(["normalize", "--model", bert_rm, "--data", data]) == 2
    assert "no rewardlab.json" in capsys.readouterr().err


def test_packing_is_refused_on_load_naming_the_option_and_the_model(llama_rm, tmp_path, capsys, monkeypatch):
    """eval/score --packing on a foreign model: exit 2, no traceback, the message names --packing and the model;
    the loader refuses the load option before any weights load (the server instead scores padded, above)."""
    data = _write(tmp_path / "pairs.jsonl", [{"prompt": p, "chosen": c, "rejected": j} for p, c, j in PAIRS])
    for argv in (
        ["eval", "--model", llama_rm, "--data", data, "--output-dir", str(tmp_path / "ev"), "--packing"],
        ["score", "--model", llama_rm, "--data", data, "--output", str(tmp_path / "s.jsonl"), "--packing"],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"--packing covers rewardlab-trained models only; drop it for {llama_rm}" in err, err
        assert "Traceback" not in err
    import rewardlab.models.foreign as foreign

    def no_weights(*a, **k):
        raise AssertionError("weights loaded before --packing was refused")

    monkeypatch.setattr(foreign.AutoModelForSequenceClassification, "from_pretrained", no_weights)
    with pytest.raises(ModelContractError, match="--packing covers rewardlab-trained models only"):
        load_reward_model(llama_rm, say=None, packing=True)


def test_openrlhf_text_ending(openrlhf_rm):
    """openrlhf/datasets/reward_dataset.py: (prompt + response).rstrip("\\n"), then " " + eos unless it ends in
    eos; tokenized without special tokens; the last id is eos even when truncated."""
    rm = load_reward_model(openrlhf_rm, ContractOptions(template="join", max_length=6), say=None)
    eos = rm.tokenizer.eos_token
    assert rm.encoder.render("Q?", "A.\n\n") == ("Q?", "A.", " " + eos)
    assert rm.encoder.render("Q?", "A." + eos) == ("Q?", "A." + eos, "")
    ids = rm.encoder.encode("What is 2 plus 3? Tell me in words.", "It is five, of course.")["input_ids"]
    assert len(ids) == 6 and ids[-1] == rm.tokenizer.eos_token_id
    chat = load_reward_model(openrlhf_rm, say=None)
    prefix, resp, suffix = chat.encoder.render("Q?", "A.")
    assert suffix.endswith(eos) and not suffix.endswith("\n")  # ChatML's trailing newline stripped
