"""Shutdown with 60 idle keep-alive connections and 5 half-sent request bodies: how long the server takes to
stop after it is told to, and what the half-sent requests get. Runs against whichever rewardlab is on the path
(the original code: PYTHONPATH=<old checkout>/src). Tiny random Llama model; CPU.

    PYTHONPATH=src python perf/shutdown_idle.py --grace 5 --output perf/results/shutdown_after.json
"""

import argparse
import dataclasses
import json
import socket
import sys
import tempfile
import threading
import time

from rewardlab.model import RewardModel
from rewardlab.models.tiny import make_tiny_causal_lm
from rewardlab.serve.app import make_server
from rewardlab.serve.config import ServeConfig


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--grace", type=float, default=5.0, help="--shutdown-timeout")
    ap.add_argument("--idle", type=int, default=60)
    ap.add_argument("--half", type=int, default=5)
    ap.add_argument("--output", default="")
    args = ap.parse_args()
    rm = RewardModel.from_backbone(str(make_tiny_causal_lm(tempfile.mkdtemp())), max_length=48)
    fields = {f.name for f in dataclasses.fields(ServeConfig)}
    extra = {k: v for k, v in {"body_timeout": 2.0}.items() if k in fields}  # absent in the original code
    server = make_server(ServeConfig(max_wait_ms=0, shutdown_timeout=args.grace, **extra), rm)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(args.idle)]
    half = []
    for _ in range(args.half):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(
            b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n"
            b'{"prompt": "hi",'
        )
        half.append(s)
    time.sleep(0.5)
    t0 = time.monotonic()
    server.should_exit = True
    thread.join(120)
    took = time.monotonic() - t0
    answers = []
    for s in half:
        s.settimeout(1)
        try:
            answers.append(s.recv(200).split(b"\r\n")[0].decode(errors="replace"))
        except OSError as e:
            answers.append(f"no answer ({type(e).__name__})")
    out = {
        "idle_connections": args.idle,
        "half_sent_bodies": args.half,
        "grace_s": args.grace,
        "shutdown_s": round(took, 2),
        "within_grace": took <= args.grace + 0.5,
        "half_sent_answers": answers,
        "server_options": extra,
        "python": sys.version.split()[0],
    }
    print(json.dumps(out, indent=2))
    if args.output:
        with open(args.output, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
