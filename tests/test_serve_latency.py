"""The server's small-request latency while large requests stream (issue 23 item 9) and its token checks.

* tokenization runs in one worker thread (rewardlab.serve.tokenizing), never on the event loop: a small request
  queued behind a large one is tokenized after at most one chunk of it;
* the batcher serves single-piece requests first and caps a forward's tokens by ``max_forward_ms`` and the measured
  seconds per token (the load test: perf/loadtest.py --scenario mixed, perf/results/mixed-*.md);
* a blank token is refused (never a server left open) and two Authorization headers are a 401.
"""

import time

import pytest

from rewardlab.core.errors import RewardlabError
from rewardlab.serve.app import TOKEN_ENV, serve_token
from rewardlab.serve.config import ServeConfig
from rewardlab.serve.tokenizing import TokenizerWorker


def test_a_small_request_is_tokenized_before_a_large_one_queued_ahead_of_it():
    """Before: the whole large request was tokenized under a lock that the event loop's inline tokenization of the
    small request waited on (the loop blocked: every request stalled, /health too)."""
    order = []

    def encode(p, r):
        time.sleep(0.002)
        order.append(p)
        return {"input_ids": [len(r)]}

    worker = TokenizerWorker(encode, chunk=4)
    large = worker.submit([("large", f"r{i}") for i in range(40)])
    small = worker.submit([("small", "r")])
    worker.start()
    assert small.result(10) == [{"input_ids": [1]}]
    assert order.index("small") == 0 and not large.done()  # queued second, tokenized first
    assert large.result(10) == [{"input_ids": [len(f"r{i}")]} for i in range(40)]
    worker.stop(5)


def test_two_large_requests_take_turns_by_chunks_and_an_error_fails_only_its_request():
    seen = []

    def encode(p, r):
        if r == "boom":
            raise ValueError("bad text")
        seen.append(p)
        return {"input_ids": [0]}

    worker = TokenizerWorker(encode, chunk=2)
    a = worker.submit([("a", "x")] * 6)
    b = worker.submit([("b", "x")] * 6)
    bad = worker.submit([("c", "boom")] * 3)
    worker.start()
    assert len(a.result(10)) == 6 and len(b.result(10)) == 6
    with pytest.raises(ValueError, match="bad text"):
        bad.result(10)
    assert "".join(seen[:6]) == "aabbaa"  # round-robin, two at a time
    worker.stop(5)


def test_the_forward_cap_follows_the_measured_seconds_per_token():
    from rewardlab.serve.batcher import Batcher

    class Fake:
        model = type("M", (), {"parameters": lambda self: iter([__import__("torch").zeros(1)])})()

    b = Batcher(Fake(), max_batch_tokens=16384, max_forward_ms=25)
    assert b.forward_tokens() == 16384  # nothing measured yet
    b._s_per_token = 1e-4  # 0.1 ms per token: 25 ms is 250 tokens
    assert b.forward_tokens() == 250
    feats = [{"input_ids": [0] * 100} for _ in range(10)]
    assert b._pieces(feats) == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]
    assert Batcher(Fake(), max_batch_tokens=16384, max_forward_ms=0).forward_tokens() == 16384  # 0: no cap


@pytest.mark.parametrize("token, env, ok", [("", None, False), ("  ", None, False), (" t ", None, False),
                                            (None, "", False), (None, "s3", True), ("s3", "", True)])  # fmt: skip
def test_a_blank_token_is_refused_never_an_open_server(token, env, ok):
    """Before: --token "" (an unset shell variable) or an empty $REWARDLAB_SERVE_TOKEN served with no token."""
    environ = {} if env is None else {TOKEN_ENV: env}
    cfg = ServeConfig(model="m", token=token)
    if ok:
        assert serve_token(cfg, environ) == (token or env)
    else:
        with pytest.raises(RewardlabError, match="empty or has surrounding blanks"):
            serve_token(cfg, environ)


def test_missing_wrong_and_doubled_tokens_are_401_the_right_one_200(tiny_llama):
    from fastapi.testclient import TestClient

    from rewardlab.models.reward_model import RewardModel
    from rewardlab.serve.app import create_app

    rm = RewardModel.from_backbone(tiny_llama, max_length=32)
    app = create_app(ServeConfig(token="s3cret", max_wait_ms=0), rm)
    body = {"prompt": "hi", "responses": ["a", "b"]}
    with TestClient(app) as client:
        assert client.post("/v1/score", json=body).status_code == 401
        assert client.post("/v1/score", json=body, headers={"Authorization": "Bearer nope"}).status_code == 401
        assert client.post("/v1/score", json=body, headers={"Authorization": "Basic s3cret"}).status_code == 401
        doubled = [("Authorization", "Bearer nope"), ("Authorization", "Bearer s3cret")]
        assert client.post("/v1/score", json=body, headers=doubled).status_code == 401
        r = client.post("/v1/score", json=body, headers={"Authorization": "Bearer s3cret"})
        assert r.status_code == 200 and len(r.json()["rewards"]) == 2
        assert r.json()["rewards"] == pytest.approx(rm.score([("hi", "a"), ("hi", "b")]), abs=1e-5)


def test_a_key_given_twice_and_a_string_for_a_boolean_are_refused(tiny_llama):
    """Found by scripts/faultsearch: {"prompt": "hi", "prompt": "ho"} was scored as "ho" and "unsafe": "no" was
    read as false (200); now 400 / 422 naming the key."""
    from fastapi.testclient import TestClient

    from rewardlab.models.reward_model import RewardModel
    from rewardlab.serve.app import create_app

    rm = RewardModel.from_backbone(tiny_llama, max_length=32)
    with TestClient(create_app(ServeConfig(max_wait_ms=0), rm)) as client:
        json_header = {"content-type": "application/json"}
        r = client.post(
            "/v1/score", content=b'{"prompt": "hi", "prompt": "ho", "responses": ["a"]}', headers=json_header
        )
        assert r.status_code == 400 and "'prompt' appears twice" in r.json()["detail"]
        for field in ("unsafe", "normalize"):
            r = client.post("/v1/score", json={"prompt": "hi", "responses": ["a"], field: "no"})
            assert r.status_code == 422 and field in r.json()["detail"]
        assert client.post("/get_reward", json={"query": ["hi a"], "unsafe": ["no"]}).status_code == 422
