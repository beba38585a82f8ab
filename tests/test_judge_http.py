"""The OpenAI-compatible HTTP backend against real servers on 127.0.0.1 (FastAPI + uvicorn, started here).

One server answers with canned judge outputs and misbehaves on request (slow answers, HTTP 500, flaky 500s,
HTTP 400); another serves the tiny Llama through :func:`rewardlab.judges.server.make_openai_app`.
"""

import asyncio
import json
import re
import socket
import threading
import time

import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("httpx")

from rewardlab.data import Comparison, write_jsonl  # noqa: E402
from rewardlab.judges.backends import BackendError, Sampling  # noqa: E402
from rewardlab.judges.judge import PairwiseJudge, VerifierJudge  # noqa: E402
from rewardlab.judges.openai_compat import OpenAIBackend  # noqa: E402


def start(app):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    return server, thread, f"http://127.0.0.1:{port}/v1"


def stop(server, thread):
    server.should_exit = True
    thread.join(10)


def answer_a(text):
    m = re.search(r"\[The Start of Assistant A's Answer\]\n(.*?)\n\[The End", text, re.S)
    return m.group(1) if m else ""


@pytest.fixture(scope="module")
def canned():
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    app = FastAPI()
    state = {"calls": 0, "seen": {}, "bodies": []}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        state["calls"] += 1
        state["bodies"].append(body)
        text = body["messages"][-1]["content"]
        state["seen"][text] = state["seen"].get(text, 0) + 1
        if "TRIGGER500" in text:
            return JSONResponse({"error": "boom"}, status_code=500)
        if "FLAKY" in text and state["seen"][text] <= 2:
            return JSONResponse({"error": "overloaded"}, status_code=503)
        if "BAD400" in text:
            return JSONResponse({"error": "bad request"}, status_code=400)
        if "SLOW" in text:
            await asyncio.sleep(1.5)
        good_first = "good" in answer_a(text)
        if body.get("logprobs"):
            p = 0.85 if good_first else 0.25
            import math

            top = [
                {"token": "A", "logprob": math.log(p)},
                {"token": "B", "logprob": math.log(1 - p) - 0.01},
                {"token": " B", "logprob": -8.0},
            ]
            return {
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "A"},
                        "logprobs": {"content": [{"token": "A", "logprob": math.log(p), "top_logprobs": top}]},
                    }
                ]
            }
        verdict = "[[A]]" if good_first else "[[B]]"
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": f"Reasoning... {verdict}"}}]}

    server, thread, url = start(app)
    yield url, state
    stop(server, thread)


RECORDS = [
    Comparison("q1", ("good answer", "bad answer"), chosen=0, id="a"),
    Comparison("q2", ("bad", "good one"), chosen=1, id="b"),
    Comparison("q3", ("so-so", "good!"), chosen=0, id="c"),
]


def backend(url, **kw):
    kw.setdefault("backoff", 0.01)
    return OpenAIBackend(url, "canned-judge", **kw)


def test_pairwise_over_http_with_concurrency(canned):
    url, state = canned
    b = backend(url, concurrency=4)
    judge = PairwiseJudge(b, position="both")
    assert judge.score_comparisons(RECORDS) == [[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]
    s = judge.last_summary
    assert s["position_consistency"] == 1.0 and s["n_unparseable_outputs"] == 0
    assert s["agreement_with_chosen"]["accuracy"] == pytest.approx(2 / 3)
    assert s["backend_stats"]["requests"] == 6 and s["backend_stats"]["cache_hits"] == 0
    body = state["bodies"][-1]
    assert body["model"] == "canned-judge" and body["temperature"] == 0.0 and "seed" not in body


def test_token_probabilities_over_http(canned):
    url, _ = canned
    judge = PairwiseJudge(backend(url), mode="logprob")
    scores = judge.score_comparisons(RECORDS[:1])
    import math

    pa_ab = 0.85 / (0.85 + 0.15 * math.exp(-0.01) + math.exp(-8.0))  # "B" and " B" both count as B
    pa_ba = 0.25 / (0.25 + 0.75 * math.exp(-0.01) + math.exp(-8.0))
    assert scores[0][0] == pytest.approx((pa_ab + 1 - pa_ba) / 2, rel=1e-6)


def test_timeout_is_retried_then_reported(canned):
    url, _ = canned
    b = backend(url, timeout=0.3, max_retries=1)
    prompt = [[{"role": "user", "content": "SLOW please"}]]
    with pytest.raises(BackendError, match="timeout"):
        b.generate(prompt, Sampling())
    assert b.stats()["http_calls"] == 2 and b.stats()["retries"] == 1 and b.stats()["failures"] == 1
    # recorded instead of raised: the judge counts the pair as unparseable, with the reason
    lenient = backend(url, timeout=0.3, max_retries=0, raise_errors=False)
    judge = PairwiseJudge(lenient, position="single")
    assert judge.score_comparisons([Comparison("SLOW q", ("good", "bad"), chosen=0)]) == [[0.5, 0.5]]
    assert judge.last_summary["unparseable_reasons"] == {"no output (backend error)": 1}
    assert "timeout" in judge.last_summary["backend_stats"]["errors"][0]


def test_http_500_is_retried_then_fails(canned):
    url, state = canned
    before = state["calls"]
    b = backend(url, max_retries=2)
    with pytest.raises(BackendError, match="HTTP 500"):
        b.generate([[{"role": "user", "content": "TRIGGER500"}]], Sampling())
    assert state["calls"] - before == 3 and b.stats()["retries"] == 2
    flaky = backend(url, max_retries=3)
    assert flaky.generate(
        [[{"role": "user", "content": "FLAKY [The Start of Assistant A's Answer]\ngood\n[The End"}]], Sampling()
    ) == [["Reasoning... [[A]]"]]
    assert flaky.stats()["retries"] == 2
    before = state["calls"]
    with pytest.raises(BackendError, match="HTTP 400"):
        backend(url, max_retries=3).generate([[{"role": "user", "content": "BAD400"}]], Sampling())
    assert state["calls"] - before == 1  # a client error is not retried


def test_disk_cache_hits(canned, tmp_path):
    url, state = canned
    cache = tmp_path / "cache"
    first = PairwiseJudge(backend(url, cache_dir=cache), position="both")
    s1 = first.score_comparisons(RECORDS)
    calls = state["calls"]
    b2 = backend(url, cache_dir=cache)
    second = PairwiseJudge(b2, position="both")
    assert second.score_comparisons(RECORDS) == s1
    assert state["calls"] == calls  # answered from disk
    assert b2.stats()["cache_hits"] == 6 and b2.stats()["http_calls"] == 0
    # other sampling settings are another key: a miss
    b3 = backend(url, cache_dir=cache)
    PairwiseJudge(b3, position="both", sampling=Sampling(max_new_tokens=17)).score_comparisons(RECORDS)
    assert b3.stats()["cache_hits"] == 0 and state["calls"] == calls + 6
    # sampled requests: one entry per (seed + sample index)
    b4 = backend(url, cache_dir=cache)
    b4.generate([[{"role": "user", "content": "hello"}]], Sampling(temperature=0.7, seed=5), n=3)
    seeds = [b["seed"] for b in state["bodies"][-3:]]
    assert sorted(seeds) == [5, 6, 7]
    b4.generate([[{"role": "user", "content": "hello"}]], Sampling(temperature=0.7, seed=5), n=3)
    assert b4.stats()["cache_hits"] == 3


def test_cli_judge_over_http(canned, tmp_path):
    from rewardlab.cli import main

    url, _ = canned
    data = tmp_path / "pairs.jsonl"
    write_jsonl(RECORDS + [Comparison("TRIGGER500 never works", ("good", "bad"), chosen=0, id="d")], str(data))
    out = tmp_path / "judged.jsonl"
    rc = main(
        [
            "judge",
            "--backend",
            "openai",
            "--base-url",
            url,
            "--model",
            "canned-judge",
            "--data",
            str(data),
            "--output",
            str(out),
            "--max-retries",
            "1",
            "--cache-dir",
            str(tmp_path / "c"),
        ]
    )
    assert rc == 0
    rows = [json.loads(line) for line in open(out)]
    assert len(rows) == 4 and rows[3]["pairs"][0]["orders"][0]["error"] == "no output (backend error)"
    summary = json.loads(out.with_name("judged.summary.json").read_text())
    assert summary["n_unparseable_outputs"] == 2 and summary["position_consistency"] == 1.0
    assert summary["backend_stats"]["failures"] == 2


def test_cli_judge_refuses_an_existing_output_without_overwrite(canned, tmp_path, capsys):
    """An existing --output file: exit 2 before any request, the message names the file and --overwrite, no
    traceback, the file untouched; with --overwrite it is replaced."""
    from rewardlab.cli import main

    url, state = canned
    data = tmp_path / "pairs.jsonl"
    write_jsonl(RECORDS, str(data))
    out = tmp_path / "judged.jsonl"
    out.write_text("precious\n")
    argv = ["judge", "--backend", "openai", "--base-url", url, "--model", "canned-judge", "--data", str(data)]
    calls = state["calls"]
    capsys.readouterr()
    assert main([*argv, "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"--output {out} exists" in err and "--overwrite" in err and "Traceback" not in err
    assert out.read_text() == "precious\n" and state["calls"] == calls
    assert not out.with_name("judged.summary.json").exists()
    assert main([*argv, "--output", str(out), "--overwrite"]) == 0
    assert len(out.read_text().splitlines()) == len(RECORDS)


@pytest.fixture(scope="module")
def tiny_server(tiny_llama):
    from rewardlab.judges.hf import HFBackend
    from rewardlab.judges.server import make_openai_app

    local = HFBackend(tiny_llama, batch_size=4, device="cpu")
    server, thread, url = start(make_openai_app(local, model_name="tiny"))
    yield url, local
    stop(server, thread)


def test_server_with_tiny_model_matches_local(tiny_server):
    url, local = tiny_server
    remote = OpenAIBackend(url, "tiny", top_logprobs=400, concurrency=2)
    prompts = [[{"role": "user", "content": "What is 12 plus 30?"}], [{"role": "user", "content": "hello there"}]]
    assert remote.generate(prompts, Sampling(max_new_tokens=5)) == local.generate(prompts, Sampling(max_new_tokens=5))
    r = remote.next_token_logprobs(prompts, ("A", "B"))
    loc = local.next_token_logprobs(prompts, ("A", "B"))
    for x, y in zip(r, loc):
        assert x["A"] == pytest.approx(y["A"], abs=1e-5) and x["B"] == pytest.approx(y["B"], abs=1e-5)
    remote_judge = PairwiseJudge(remote, mode="logprob")
    local_judge = PairwiseJudge(local, mode="logprob")
    flat = lambda rows: [x for row in rows for x in row]  # noqa: E731
    assert flat(remote_judge.score_comparisons(RECORDS)) == pytest.approx(
        flat(local_judge.score_comparisons(RECORDS)), abs=1e-6
    )
    # "Yes"/"No" are not single tokens of the tiny vocabulary: over HTTP (token texts only) nothing matches, and
    # the verifier says so in its summary instead of inventing a probability
    verifier = VerifierJudge(OpenAIBackend(url, "tiny", top_logprobs=400))
    assert verifier.score_comparisons(RECORDS[:1]) == [[0.5, 0.5]]
    assert verifier.last_summary["unparseable_reasons"] == {"no probability for 'Yes' or 'No'": 2}
    remote.close()
