"""The reward server over real HTTP on 127.0.0.1 (uvicorn in a thread, tiny model): batching correctness,
OpenRLHF compatibility, limits and malformed input, auth, metrics, graceful shutdown; plus the batcher and the
OpenRLHF query splitter on their own. Every loop is bounded; nothing leaves loopback."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from rewardlab.models.reward_model import RewardModel
from rewardlab.serve.app import make_server
from rewardlab.serve.batcher import Batcher
from rewardlab.serve.client import RewardClient, RewardServerError
from rewardlab.serve.config import ServeConfig
from rewardlab.serve.openrlhf import SplitError, split_query

TOKEN = "s3cret"
PROMPTS = [
    "What is 2 plus 3?",
    "Name a fruit.",
    "Say hi.",
    "Write one word about apples, please.",
    "Count to three.",
    "Is the sky blue?",
]
RESPONSES = [
    "It is 5.",
    "Apple.",
    "Hi!",
    "Crunchy.",
    "One, two, three.",
    "Yes, usually.",
    "No.",
    "I cannot help with that request.",
]


class Running:
    def __init__(self, cfg, rm=None):
        self.server = make_server(cfg, rm)
        self.app = self.server.config.app
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "server did not start"
            time.sleep(0.01)

    def stop(self, timeout=30):
        self.server.should_exit = True
        self.thread.join(timeout)
        assert not self.thread.is_alive()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_llama):
    # seeded, not the RNG the earlier tests left: white space moves this head's rewards by > 1e-3
    rm = RewardModel.from_backbone(tiny_llama, max_length=64, seed=3)
    rm.spec.normalization = {"mean": 0.01, "std": 0.5, "n": 10, "source": "test"}
    d = tmp_path_factory.mktemp("served") / "model"
    rm.save(d)
    return str(d)


@pytest.fixture(scope="module")
def offline(model_dir):
    return RewardModel.load(model_dir)


@pytest.fixture(scope="module")
def served(model_dir):
    cfg = ServeConfig(
        model=model_dir,
        token=TOKEN,
        max_wait_ms=20,
        max_texts=8,
        max_text_chars=2000,
        max_request_bytes=20000,
        max_batch_texts=32,
    )
    run = Running(cfg)
    yield run
    run.stop()


def auth():
    return {"Authorization": f"Bearer {TOKEN}"}


def test_concurrent_requests_each_get_their_own_offline_rewards(served, offline):
    jobs = []
    for i in range(24):
        prompt = (
            PROMPTS[i % len(PROMPTS)]
            if i % 3
            else ({"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPTS[i % len(PROMPTS)]})
        )
        jobs.append((prompt, [RESPONSES[(i + j) % len(RESPONSES)] for j in range(1 + i % 4)]))
    client = RewardClient(served.url, token=TOKEN)

    def one(job):
        p, rs = job
        return client.score(list(p) if isinstance(p, tuple) else p, rs)

    with ThreadPoolExecutor(12) as pool:
        got = list(pool.map(one, jobs))
    for (p, rs), rewards in zip(jobs, got):
        assert rewards == pytest.approx(offline.score([(p, r) for r in rs]), abs=1e-5)
    normed = client.score(PROMPTS[0], RESPONSES[:3], normalize=True)
    assert normed == pytest.approx(offline.score([(PROMPTS[0], r) for r in RESPONSES[:3]], normalize=True), abs=1e-5)
    body = httpx.post(served.url + "/v1/score", json={"prompt": "hi", "responses": ["a", "bb"]}, headers=auth()).json()
    assert (
        body["normalized"] is False
        and len(body["tokens"]) == 2
        and body["model"] == os.path.normpath(served.app.state.config.model)
    )


def test_packed_server_matches_offline(model_dir, offline):
    """--packing: the batcher runs rewardlab.models.packing's padding-free forward; rewards equal the padded offline ones."""
    run = Running(ServeConfig(model=model_dir, packing=True, max_wait_ms=20))
    try:
        client = RewardClient(run.url)
        jobs = [
            (PROMPTS[i % len(PROMPTS)], [RESPONSES[(i + j) % len(RESPONSES)] for j in range(1 + i % 3)])
            for i in range(8)
        ]
        with ThreadPoolExecutor(8) as pool:
            got = list(pool.map(lambda job: client.score(*job), jobs))
        for (p, rs), rewards in zip(jobs, got):
            assert rewards == pytest.approx(offline.score([(p, r) for r in rs]), abs=1e-5)
    finally:
        run.stop()


def test_openrlhf_get_reward(served, offline):
    prompt = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nSay hi.<|im_end|>\n<|im_start|>assistant\n"
    queries = [prompt + "Hi!<|im_end|>", prompt + "Hello there.<|im_end|><|endoftext|>"]
    msgs = ({"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi."})
    expected = offline.score([(msgs, "Hi!"), (msgs, "Hello there.")])
    r = httpx.post(served.url + "/get_reward", json={"query": queries}, headers=auth())
    assert r.status_code == 200 and r.json()["rewards"] == pytest.approx(expected, abs=1e-5)
    assert r.json()["scores"] == r.json()["rewards"]  # newer OpenRLHF reads "scores" first
    # newer OpenRLHF also sends the prompts (and labels, ignored)
    r = httpx.post(
        served.url + "/get_reward",
        json={"query": queries, "prompts": [prompt, prompt], "labels": ["x", "y"]},
        headers=auth(),
    )
    assert r.json()["rewards"] == pytest.approx(expected, abs=1e-5)
    r = httpx.post(served.url + "/get_reward", json={"query": ["no markers here"]}, headers=auth())
    assert r.status_code == 422 and "query[0]" in r.json()["detail"] and "prompts" in r.json()["detail"]
    # the Llama 2 unsafe tag: a plain model refuses it (422), and an all-false list is the untagged answer
    r = httpx.post(served.url + "/get_reward", json={"query": queries, "unsafe": [False, True]}, headers=auth())
    assert r.status_code == 422 and "reads no unsafe tag" in r.json()["detail"]
    r = httpx.post(served.url + "/get_reward", json={"query": queries, "unsafe": [False, False]}, headers=auth())
    assert r.status_code == 200 and r.json()["rewards"] == pytest.approx(expected, abs=1e-5)


def test_every_endpoint_scores_the_same_response_text(served, offline):
    """Known answer: a response with white space at either end (' Paris…', '…\n') is a different text from the
    stripped one, and the tiny model gives it a different reward (checked below). /v1/score, RewardClient.score,
    RewardModel.score, /get_reward (with and without `prompts`) and RewardClient.get_reward must all give the
    reward of the text as sent, not of a stripped copy."""
    question = "What is the capital of France?"
    responses = [" Paris is the capital.", "Paris is the capital.\n", "Paris is the capital."]
    want = offline.score([(question, r) for r in responses])
    assert abs(want[0] - want[2]) > 1e-4 and abs(want[1] - want[2]) > 1e-4  # the white space changes the reward
    client = RewardClient(served.url, token=TOKEN)
    body = httpx.post(served.url + "/v1/score", json={"prompt": question, "responses": responses}, headers=auth())
    prompt = f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"
    queries = [prompt + r + "<|im_end|>\n" for r in responses]
    got = {
        "/v1/score": body.json()["rewards"],
        "RewardClient.score": client.score(question, responses),
        "/get_reward": httpx.post(served.url + "/get_reward", json={"query": queries}, headers=auth()).json()[
            "rewards"
        ],
        "/get_reward + prompts": httpx.post(
            served.url + "/get_reward", json={"query": queries, "prompts": [prompt] * 3}, headers=auth()
        ).json()["rewards"],
        "RewardClient.get_reward": client.get_reward(queries),
    }
    for name, rewards in got.items():
        assert rewards == pytest.approx(want, abs=1e-5), name


@pytest.mark.parametrize(
    "body,status,words",
    [
        (b"{not json", 400, "not valid JSON"),
        ({"responses": ["a"]}, 422, "exactly one of 'prompt'"),
        ({"prompt": "x", "messages": [{"role": "user", "content": "x"}], "responses": ["a"]}, 422, "exactly one"),
        ({"prompt": "x"}, 422, "responses"),
        ({"prompt": "x", "responses": []}, 422, "responses"),
        ({"prompt": "x", "responses": [3]}, 422, "responses.0"),
        ({"messages": [{"role": "wizard", "content": "x"}], "responses": ["a"]}, 422, "role"),
        ({"prompt": "x", "responses": ["a"], "temperature": 1}, 422, "temperature"),
        ({"prompt": "x", "responses": ["a"], "unsafe": True}, 422, "this model reads no unsafe tag"),
        ({"prompt": "x", "responses": ["a"], "unsafe": "maybe"}, 422, "unsafe"),
        ({"prompt": "x", "responses": ["a"] * 9}, 413, "9 responses in one request; the limit is 8"),
        ({"prompt": "x" * 2001, "responses": ["a"]}, 413, "prompt[0] has 2001 characters"),
        ({"prompt": "x", "responses": ["a", "y" * 2500]}, 413, "responses[1] has 2500 characters"),
        ({"prompt": "x", "responses": ["a" * 1000] * 8, "pad": "z" * 15000}, 413, "over the limit of 20000 bytes"),
    ],
)
def test_malformed_and_oversized_requests_get_4xx_with_a_message(served, body, status, words):
    kw = {"content": body} if isinstance(body, bytes) else {"json": body}
    r = httpx.post(served.url + "/v1/score", headers={**auth(), "content-type": "application/json"}, **kw)
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]


def test_chunked_body_over_the_limit_is_refused(served):
    def chunks():
        for _ in range(30):
            yield b" " * 1000

    r = httpx.post(served.url + "/v1/score", content=chunks(), headers={**auth(), "content-type": "application/json"})
    assert r.status_code == 413 and "limit" in r.json()["detail"]


def test_bearer_token_is_enforced(served):
    body = {"prompt": "x", "responses": ["a"]}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        for path, kw in (("/v1/score", {"json": body}), ("/get_reward", {"json": {"query": ["q"]}})):
            r = httpx.post(served.url + path, headers=headers, **kw)
            assert r.status_code == 401 and "bearer token" in r.json()["detail"]
        assert httpx.get(served.url + "/metrics", headers=headers).status_code == 401
    assert httpx.get(served.url + "/health").json()["status"] == "ok"  # health needs no token
    with pytest.raises(RewardServerError) as e:
        RewardClient(served.url).score("x", ["a"])
    assert e.value.status == 401


def test_metrics_are_prometheus_text(served):
    RewardClient(served.url, token=TOKEN).score("x", ["a", "b"])
    httpx.post(served.url + "/v1/score", json={"prompt": "x", "responses": ["a"]})  # a 401
    text = httpx.get(served.url + "/metrics", headers=auth()).text
    for name in (
        'rewardlab_requests_total{endpoint="/v1/score",status="200"}',
        "rewardlab_batch_texts_bucket",
        "rewardlab_batch_requests_count",
        "rewardlab_request_latency_seconds_bucket",
        "rewardlab_queue_wait_seconds_sum",
        "rewardlab_forward_seconds_count",
        "rewardlab_queued_texts",
        "rewardlab_texts_scored_total",
        'status="401"',
    ):
        assert name in text, name


def test_shutdown_drains_in_flight_requests(model_dir, offline):
    """Requests sit in the batch queue (max_wait 3 s) when shutdown starts; every one is still answered."""
    run = Running(ServeConfig(model=model_dir, max_wait_ms=3000, max_batch_texts=64))
    n = 6
    results: list = [None] * n

    def one(i):
        with httpx.Client(timeout=30) as c:
            results[i] = c.post(run.url + "/v1/score", json={"prompt": PROMPTS[i], "responses": [RESPONSES[i]]})

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    batcher = run.app.state.batcher
    deadline = time.monotonic() + 20
    while batcher.queued_texts() < n and time.monotonic() < deadline:
        time.sleep(0.005)
    assert batcher.queued_texts() == n  # all waiting in the queue, none answered yet
    run.stop()
    for t in threads:
        t.join(30)
    for i, r in enumerate(results):
        assert r is not None and r.status_code == 200
        assert r.json()["rewards"] == pytest.approx(offline.score([(PROMPTS[i], RESPONSES[i])]), abs=1e-5)
    assert not batcher.alive()
    with pytest.raises(httpx.ConnectError):
        httpx.get(run.url + "/health", timeout=2)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_drains_the_cli_server(model_dir, tmp_path, sig):
    """`rewardlab serve` as a process: SIGTERM (or Ctrl-C's SIGINT) while requests wait in the queue; all are
    answered, then it exits: killed by the re-raised SIGTERM, or 130 with one line and no traceback for SIGINT."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rewardlab.cli",
            "serve",
            "--model",
            model_dir,
            "--port",
            str(port),
            "--max-wait-ms",
            "3000",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # as from a terminal: a shell's background job inherits SIGINT ignored, and then Ctrl-C cannot reach it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        results: list = [None] * 4

        def one(i):
            results[i] = httpx.post(url + "/v1/score", json={"prompt": PROMPTS[i], "responses": ["ok"]}, timeout=30)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        deadline, queued = time.monotonic() + 20, 0.0  # wait until all 4 are queued (the 3 s batching window)
        while time.monotonic() < deadline and queued < 4:
            text = httpx.get(url + "/metrics", timeout=5).text
            queued = float(re.search(r"^rewardlab_queued_texts (\S+)$", text, re.M).group(1))
            time.sleep(0.02)
        assert queued >= 1  # requests are in flight when SIGTERM arrives
        proc.send_signal(sig)
        for t in threads:
            t.join(30)
        assert all(r is not None and r.status_code == 200 for r in results)
        if sig == signal.SIGTERM:  # uvicorn re-raises the signal once it has shut down gracefully
            assert proc.wait(30) in (0, -signal.SIGTERM)
        else:
            assert proc.wait(30) == 130
            out = proc.stdout.read()
            assert "Traceback" not in out and "rewardlab serve: stopped (SIGINT)" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


# ---- the batcher on its own ----------------------------------------------------------------------
def _feats(rm, n, offset=0):
    return [
        rm.encoder.encode(PROMPTS[(offset + i) % len(PROMPTS)], RESPONSES[(offset + i) % len(RESPONSES)])
        for i in range(n)
    ]


@pytest.mark.parametrize(
    "batching,max_texts,expected_batches", [(True, 64, [3]), (False, 64, [1, 1, 1]), (True, 4, [2, 1])]
)
def test_batcher_merges_queued_jobs_within_the_budget(offline, batching, max_texts, expected_batches):
    seen = []
    b = Batcher(offline, batching=batching, max_batch_texts=max_texts, max_wait_ms=0, on_batch=seen.append)
    jobs = [_feats(offline, 2, 0), _feats(offline, 1, 2), _feats(offline, 3, 3)]
    futs = [b.submit(f) for f in jobs]  # queued before the worker starts: it finds them all at once
    b.start()
    for f, offset, n in zip(futs, (0, 2, 3), (2, 1, 3)):
        items = [(PROMPTS[(offset + i) % len(PROMPTS)], RESPONSES[(offset + i) % len(RESPONSES)]) for i in range(n)]
        assert f.result(timeout=30) == pytest.approx(offline.score(items), abs=1e-5)
    b.stop(10)
    assert [s.n_jobs for s in seen] == expected_batches
    assert not b.alive()


def test_batcher_token_budget_splits_forwards_and_stop_drains(offline):
    seen = []
    b = Batcher(offline, max_batch_tokens=40, max_batch_texts=64, max_wait_ms=0, on_batch=seen.append)
    feats = _feats(offline, 6)
    fut = b.submit(feats)  # one request over the budget: split into pieces within it, scored in turn
    b.stop(0)  # stopping before the worker ran: it still drains the queue
    b.start()
    b._thread.join(30)
    items = [(PROMPTS[i % len(PROMPTS)], RESPONSES[i % len(RESPONSES)]) for i in range(6)]
    assert fut.result(timeout=1) == pytest.approx(offline.score(items), abs=1e-5)
    assert len(seen) > 1 and sum(s.n_texts for s in seen) == 6
    assert all(s.n_tokens <= 40 for s in seen if s.n_texts > 1)  # a piece of several texts fits the budget


def test_batcher_interleaves_a_small_request_with_a_large_one(offline):
    """Round-robin over requests: a one-text request queued after a six-piece request is answered after the
    second forward, not after all six (issue 16: a large request held the worker while a small one waited)."""
    done_at = []
    b = Batcher(
        offline,
        max_batch_tokens=30,
        max_batch_texts=64,
        max_wait_ms=0,
        on_batch=lambda s: done_at.append((big.done(), small.done())),
    )
    big = b.submit(_feats(offline, 6))
    small = b.submit(_feats(offline, 1))
    b.stop(0)
    b.start()
    b._thread.join(30)
    assert len(done_at) == 7
    assert done_at[0] == (False, True)  # the small (single-piece) request was scored first
    assert done_at[-1] == (True, True)


# ---- OpenRLHF query splitting ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "query,prompt,messages,response",
    [
        ("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>", None, [("user", "Hi")], "Hello!"),
        (
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nA<|im_end|>\n<|im_start|>assistant\nB<|im_end|>\n"
            "<|im_start|>user\nC<|im_end|>\n<|im_start|>assistant\nD<|im_end|>",
            None,
            [("system", "S"), ("user", "A"), ("assistant", "B"), ("user", "C")],
            "D",
        ),
        (
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant"
            "<|end_header_id|>\n\nYo<|eot_id|>",
            None,
            [("user", "Hi")],
            "Yo",
        ),
        (
            "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nYo<end_of_turn>",
            None,
            [("user", "Hi")],
            "Yo",
        ),
        (
            "\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: Bye\n\nAssistant: Later",
            None,
            [("user", "Hi"), ("assistant", "Hello"), ("user", "Bye")],
            "Later",
        ),
        ("<s>[INST] Hi [/INST] Yo</s>", None, [("user", "Hi")], "Yo"),
        # the policy wrote " 4": that is the response, scored as /v1/score would score " 4"
        ("Question: 2+2? Answer: 4", "Question: 2+2? Answer:", [("user", "Question: 2+2? Answer:")], " 4"),
        ("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n Yo\n<|im_end|>\n", None, [("user", "Hi")], " Yo\n"),
    ],
)
def test_split_query(query, prompt, messages, response):
    msgs, resp = split_query(query, prompt)
    assert [(m["role"], m["content"]) for m in msgs] == messages and resp == response


def test_split_query_errors():
    with pytest.raises(SplitError, match="prompts"):
        split_query("just some text")
    with pytest.raises(SplitError, match="does not start with its prompt"):
        split_query("abc", "xyz")


@pytest.mark.slow
def test_loadtest_script_smoke(tmp_path):
    """perf/loadtest.py end to end on a tiny model: both servers, bounded rounds, JSON + Markdown, no errors."""
    script = Path(__file__).resolve().parents[1] / "perf" / "loadtest.py"
    r = subprocess.run(
        [
            sys.executable,
            str(script),
            "--backbone",
            "tiny-bert:hidden=32,layers=2",
            "--clients",
            "4",
            "--requests",
            "24",
            "--rounds",
            "2",
            "--warmup",
            "4",
            "--max-seconds",
            "60",
            "--output-dir",
            str(tmp_path),
            "--name",
            "smoke",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    result = json.loads((tmp_path / "smoke.json").read_text())
    for mode in ("batched", "unbatched"):
        m = result["modes"][mode]
        assert m["requests_ok"] == 24 and m["errors"] == 0 and m["latency_ms"]["p99"] > 0
    assert result["modes"]["unbatched"]["mean_texts_per_forward"] == 1.0
    assert result["server_exit_codes"] and "| batched |" in (tmp_path / "smoke.md").read_text()
