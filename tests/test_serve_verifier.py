"""Serving a verifier over real HTTP (uvicorn on 127.0.0.1, tiny token-classification models built here):
vLLM's ``/pooling`` with ``task: token_classify`` (per-token rows equal plain transformers', per-step rows equal
the Python scorer's ``score_steps``), the aggregate on ``/v1/score`` and ``/get_reward`` with its aggregation
named, and the refusals (unknown task, steps missing, a model that is not a verifier, too long, bad aggregation)."""

import math

import httpx
import pytest
import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer

from rewardlab.core.errors import RewardlabError
from rewardlab.models.reward_model import RewardModel
from rewardlab.scoring.loader import load_reward_model
from rewardlab.serve.app import create_app
from rewardlab.serve.config import ServeConfig
from rewardlab.verifiers.losses import HEADS
from rewardlab.verifiers.model import VerifierModel, VerifierSpec
from test_serve import Running

PROMPT = "What is 2 plus 3 times 4?"
STEPS = ["3 times 4 is 12.", "2 plus 12 is 14.", "A: 14"]


def _save_verifier(backbone, path, head, aggregation="min", max_length=96):
    tok = AutoTokenizer.from_pretrained(backbone)
    torch.manual_seed(1)
    model = AutoModelForTokenClassification.from_pretrained(backbone, num_labels=HEADS[head][0])
    model.config.pad_token_id = tok.pad_token_id
    VerifierModel(model.eval(), tok, VerifierSpec(head=head, aggregation=aggregation, max_length=max_length)).save(path)
    return str(path)


@pytest.fixture(scope="module")
def bce_dir(tmp_path_factory, tiny_llama):
    """A rewardlab verifier (kind verifier) with a one-output head: σ rows of one value."""
    return _save_verifier(tiny_llama, tmp_path_factory.mktemp("v") / "bce", "bce")


@pytest.fixture(scope="module")
def plain_prm_dir(tmp_path_factory, tiny_llama):
    """A 2-class token-classification PRM trained elsewhere (no rewardlab.json: kind token-classification-prm)."""
    d = tmp_path_factory.mktemp("v") / "plain"
    torch.manual_seed(2)
    model = AutoModelForTokenClassification.from_pretrained(tiny_llama, num_labels=2)
    tok = AutoTokenizer.from_pretrained(tiny_llama)
    model.config.pad_token_id = tok.pad_token_id
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return str(d)


@pytest.fixture(scope="module")
def served_bce(bce_dir):
    run = Running(ServeConfig(model=bce_dir, max_wait_ms=5, max_texts=4))
    yield run
    run.stop()


@pytest.fixture(scope="module")
def served_plain(plain_prm_dir):
    run = Running(ServeConfig(model=plain_prm_dir, max_wait_ms=5))
    yield run
    run.stop()


def _plain_rows(path, text, activation=True):
    """Plain transformers on the text: per-token logits [T, C], σ for one output, softmax otherwise."""
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForTokenClassification.from_pretrained(path).eval()
    ids = tok(text, return_tensors="pt")
    with torch.no_grad():
        logits = model(**ids).logits[0]
    if not activation:
        return logits, ids["input_ids"][0].tolist()
    rows = torch.sigmoid(logits) if logits.shape[-1] == 1 else torch.softmax(logits, -1)
    return rows, ids["input_ids"][0].tolist()


def pool(run, body):
    return httpx.post(run.url + "/pooling", json=body, timeout=60)


@pytest.mark.parametrize("which", ["bce", "plain"])
def test_pooling_per_token_rows_equal_plain_transformers(which, served_bce, served_plain, bce_dir, plain_prm_dir):
    """vLLM's shape: data[i].data is one row of C activated values per token of the text ([T, 1] σ for the
    one-output head, [T, 2] softmax for the 2-class PRM), equal to plain transformers on the same text."""
    run, path = (served_bce, bce_dir) if which == "bce" else (served_plain, plain_prm_dir)
    text = PROMPT + "\n" + "\n".join(STEPS) + "\n"
    r = pool(run, {"input": text, "task": "token_classify"})
    assert r.status_code == 200, r.text
    body = r.json()
    want, ids = _plain_rows(path, text)
    got = torch.tensor(body["data"][0]["data"])
    assert got.shape == want.shape == (len(ids), 1 if which == "bce" else 2)
    assert torch.allclose(got, want, atol=1e-6)
    assert body["object"] == "list" and body["id"].startswith("pool-") and body["data"][0]["object"] == "pooling"
    assert body["data"][0]["index"] == 0 and body["usage"]["prompt_tokens"] == len(ids) == body["usage"]["total_tokens"]
    assert "step_scores" not in body["data"][0]  # a plain text: its prompt's newlines are not step markers
    raw = pool(run, {"input": [text], "task": "token_classify", "use_activation": False}).json()
    assert torch.allclose(torch.tensor(raw["data"][0]["data"]), _plain_rows(path, text, activation=False)[0], atol=1e-6)


@pytest.mark.parametrize("which", ["bce", "plain"])
def test_pooling_step_rows_equal_score_steps(which, served_bce, served_plain, bce_dir, plain_prm_dir):
    """A {prompt, steps} input: the step scores equal the Python scorer's score_steps (one forward, P(correct) at
    each marker); the step rows are the per-token rows at the marker tokens; the score is their minimum (the
    model's aggregation, named); the rendered text's per-token rows equal plain transformers on that text."""
    run, path = (served_bce, bce_dir) if which == "bce" else (served_plain, plain_prm_dir)
    vm = load_reward_model(path)
    other = ["1 plus 1 is 2.", "A: 2"]
    r = pool(run, {"input": [{"prompt": PROMPT, "steps": STEPS}, {"prompt": "What is 1 plus 1?", "steps": other}]})
    assert r.status_code == 200, r.text
    items = r.json()["data"]
    want = vm.score_steps([(PROMPT, STEPS), ("What is 1 plus 1?", other)])
    for item, w, steps in zip(items, want, (STEPS, other)):
        assert item["step_scores"] == pytest.approx(w["step_scores"], abs=1e-6) and len(item["step_scores"]) == len(
            steps
        )
        assert item["score"] == pytest.approx(min(item["step_scores"]), abs=1e-9) and item["aggregation"] == "min"
        assert (
            item["step_token_indices"]
            == vm.encode(PROMPT if steps is STEPS else "What is 1 plus 1?", steps).step_positions
        )
        assert item["step_rows"] == [item["data"][p] for p in item["step_token_indices"]]
        assert item["step_rule"] == "given"
    rows, ids = _plain_rows(path, items[0]["text"])
    assert items[0]["text"] == PROMPT + "\n" + "".join(s + "\n" for s in STEPS)  # separator "\n", marker "\n"
    assert torch.allclose(torch.tensor(items[0]["data"]), rows, atol=1e-6)
    prod = pool(run, {"input": {"prompt": PROMPT, "steps": STEPS}, "aggregation": "prod"}).json()["data"][0]
    assert prod["aggregation"] == "prod" and prod["score"] == pytest.approx(math.prod(prod["step_scores"]), rel=1e-9)


def test_score_and_get_reward_give_the_named_aggregate(served_bce, bce_dir):
    """/v1/score: each response split one step per non-empty line, the reward = min over its step scores (the
    model's aggregation), named with the step rule; /get_reward (OpenRLHF) returns the same aggregate."""
    vm = load_reward_model(bce_dir)
    responses = ["\n".join(STEPS), "3 times 4 is 7.\n\n2 plus 7 is 9.\nA: 9"]
    r = httpx.post(served_bce.url + "/v1/score", json={"prompt": PROMPT, "responses": responses}, timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    want = vm.score_steps([(PROMPT, STEPS), (PROMPT, ["3 times 4 is 7.", "2 plus 7 is 9.", "A: 9"])])
    assert body["rewards"] == pytest.approx([min(w["step_scores"]) for w in want], abs=1e-6)
    assert body["aggregation"] == "min" and body["step_rule"] == "lines"
    assert body["rewards"] == pytest.approx(
        [row["score"] for row in vm.score_rows([(PROMPT, x) for x in responses])], abs=1e-6
    )
    q = [PROMPT + "\n" + x for x in responses]
    g = httpx.post(served_bce.url + "/get_reward", json={"query": q, "prompts": [PROMPT] * 2}, timeout=60).json()
    assert g["rewards"] == pytest.approx(body["rewards"], abs=1e-6) and g["aggregation"] == "min"


@pytest.mark.parametrize(
    "body, status, words",
    [
        ({"input": "x", "task": "tokenize"}, 400, ["unknown task 'tokenize'", "token_classify"]),
        ({"input": "x", "task": "embed"}, 400, ["'embed' is not served", "/v1/score"]),
        ({"input": [{"prompt": "Q"}]}, 422, ["input[0]", "'steps' is missing"]),
        ({"input": [{"prompt": "Q", "steps": []}]}, 422, ["input[0]", "non-empty list"]),
        ({"input": {"prompt": "Q", "steps": ["a"], "label": 1}}, 422, ["unknown field(s) label"]),
        ({"input": 3}, 422, ["expected a text"]),
        ({"input": "x", "model": "someone/else"}, 404, ["'someone/else' is not served"]),
        (
            {"input": {"prompt": "Q", "steps": ["a"]}, "aggregation": "max"},
            422,
            ["aggregation", "unknown aggregation 'max'"],
        ),
        ({"input": ["x", {"prompt": "Q", "steps": ["word " * 200]}]}, 422, ["input[1]", "max_length 96"]),
        ({"input": "word " * 200}, 422, ["input:", "max_length is 96"]),
        ({"input": ["a", "b", "c", "d", "e"]}, 413, ["5 inputs in one request"]),
        ({"input": "x", "messages": []}, 422, ["messages"]),
    ],
)
def test_bad_pooling_requests_are_named(served_bce, body, status, words):
    r = pool(served_bce, body)
    assert r.status_code == status, r.text
    assert all(w in r.json()["detail"] for w in words), r.json()["detail"]


def test_score_refuses_a_response_cut_by_max_length(served_bce):
    """A minimum over the first steps only would look like the whole solution's score: 422, naming the text."""
    r = httpx.post(served_bce.url + "/v1/score", json={"prompt": "Q", "responses": ["ok", "word " * 200]}, timeout=60)
    assert r.status_code == 422 and "beyond the model's max_length 96" in r.json()["detail"]
    assert "'word word" in r.json()["detail"]
    r = httpx.post(served_bce.url + "/v1/score", json={"prompt": "Q", "responses": ["\n\n"]}, timeout=60)
    assert r.status_code == 422 and "no step to score" in r.json()["detail"]


def test_a_reward_model_answers_pooling_with_why(tmp_path, tiny_llama):
    """Not a verifier: /pooling token_classify is a 400 naming the model's kind, what is served for, and /v1/score."""
    rm = RewardModel.from_backbone(tiny_llama, max_length=64)
    rm.save(tmp_path / "rm")
    run = Running(ServeConfig(model=str(tmp_path / "rm")))
    try:
        r = pool(run, {"input": "Hello", "task": "token_classify"})
        detail = r.json()["detail"]
        assert r.status_code == 400 and "reward-model" in detail and "kind verifier" in detail and "/v1/score" in detail
        assert (
            httpx.post(run.url + "/v1/score", json={"prompt": "Q", "responses": ["a"]}).json().get("aggregation")
            is None
        )
    finally:
        run.stop()


def test_verifier_serving_refuses_packing_and_normalize(bce_dir):
    with pytest.raises(RewardlabError, match="--packing"):
        create_app(ServeConfig(model=bce_dir, packing=True))
    with pytest.raises(RewardlabError, match="--normalize: a verifier's scores are probabilities"):
        create_app(ServeConfig(model=bce_dir, normalize=True))
