"""Latency of small requests while large ones stream: p50/p99 of one-response requests sent at a steady rate
while a client sends back-to-back requests of ``--large-texts`` long responses. Also /health latency (is the
event loop free?). Runs against whichever rewardlab is on the path (the original code:
PYTHONPATH=<old checkout>/src). Tiny random Llama model (hidden 64) at max_length 512; CPU.

    PYTHONPATH=src python perf/interleave_latency.py --output perf/results/interleave_after.json
"""

import argparse
import json
import socket
import statistics
import sys
import tempfile
import threading
import time

import httpx

from rewardlab.model import RewardModel
from rewardlab.models.tiny import make_tiny_causal_lm
from rewardlab.serve.app import make_server
from rewardlab.serve.config import ServeConfig


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--large-texts", type=int, default=256)
    ap.add_argument("--large-chars", type=int, default=2500)
    ap.add_argument("--small-rate", type=float, default=10.0, help="small requests per second")
    ap.add_argument("--output", default="")
    args = ap.parse_args()
    rm = RewardModel.from_backbone(str(make_tiny_causal_lm(tempfile.mkdtemp())), max_length=512)
    server = make_server(
        ServeConfig(max_wait_ms=2, max_texts=args.large_texts, max_text_chars=100_000, max_queue_texts=100_000), rm
    )
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    words = "apple pear plum fig kiwi lime lemon mango".split()
    big_body = {
        "prompt": "Describe the fruit.",
        "responses": [
            " ".join(words[(i + j) % 8] for j in range(args.large_chars // 6)) for i in range(args.large_texts)
        ],
    }
    stop = time.monotonic() + args.seconds
    large_lat, small_lat, health_lat, errors = [], [], [], []

    def large():
        with httpx.Client(timeout=600) as c:
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                r = c.post(url + "/v1/score", json=big_body)
                large_lat.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    errors.append(r.status_code)

    def small():
        with httpx.Client(timeout=600) as c:
            i = 0
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                r = c.post(url + "/v1/score", json={"prompt": f"Name a fruit #{i}", "responses": ["apple"]})
                small_lat.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    errors.append(r.status_code)
                i += 1
                time.sleep(max(0.0, 1 / args.small_rate - (time.perf_counter() - t0)))

    def health():
        with httpx.Client(timeout=600) as c:
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                c.get(url + "/health")
                health_lat.append(time.perf_counter() - t0)
                time.sleep(0.2)

    threads = [threading.Thread(target=f) for f in (large, small, health)]
    time.sleep(0.5)
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    server.should_exit = True
    thread.join(60)
    ms = lambda x: None if x is None else round(1000 * x, 1)  # noqa: E731
    out = {
        "seconds": args.seconds,
        "large_request": f"{args.large_texts} responses of ~{args.large_chars} chars (512 tokens after truncation)",
        "small_rate_per_s": args.small_rate,
        "small": {
            "n": len(small_lat),
            "p50_ms": ms(pct(small_lat, 0.5)),
            "p99_ms": ms(pct(small_lat, 0.99)),
            "max_ms": ms(max(small_lat) if small_lat else None),
        },
        "large": {"n": len(large_lat), "mean_s": round(statistics.mean(large_lat), 2) if large_lat else None},
        "health": {
            "n": len(health_lat),
            "p99_ms": ms(pct(health_lat, 0.99)),
            "max_ms": ms(max(health_lat) if health_lat else None),
        },
        "errors": errors[:10],
        "python": sys.version.split()[0],
    }
    print(json.dumps(out, indent=2))
    if args.output:
        with open(args.output, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
