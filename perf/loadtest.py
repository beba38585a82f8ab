"""Load test for ``rewardlab serve``: N concurrent clients on loopback, batching on vs off.

Starts one ``rewardlab serve`` process per mode (same model, same settings except ``--no-batching``) on
127.0.0.1, warms each up, then runs the measured requests in interleaved rounds (A B, then B A, ...) so both
modes see the same background load on a shared machine. Every client loop is bounded by a request count and
a time limit; the servers are stopped with SIGTERM at the end. Writes ``NAME.json`` and ``NAME.md`` (a table of
throughput, p50/p90/p99 latency, errors, mean texts per forward) to ``--output-dir``.

    python perf/loadtest.py --backbone minilm --clients 32 --requests 2000 --name loadtest-minilm-cpu
    python perf/loadtest.py --scenario mixed --backbone minilm --name mixed-minilm-cpu   # small vs large requests

Traffic goes only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_model(args, workdir: Path) -> str:
    if args.model:
        return args.model
    from rewardlab.model import RewardModel

    backbone = args.backbone
    if backbone.startswith("tiny"):  # tiny:hidden=H,layers=L (Llama) or tiny-bert:hidden=H,layers=L (BERT)
        from rewardlab.models.tiny import make_tiny_causal_lm, make_tiny_encoder

        make = make_tiny_encoder if backbone.startswith("tiny-bert") else make_tiny_causal_lm
        opts = dict(kv.split("=") for kv in backbone.partition(":")[2].split(",") if kv)
        backbone = str(
            make(workdir / "tiny-backbone", hidden=int(opts.get("hidden", 32)), layers=int(opts.get("layers", 2)))
        )
    rm = RewardModel.from_backbone(backbone, max_length=args.max_length, seed=0)
    out = workdir / "model"
    rm.save(out)
    return str(out)


def items(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """(prompt, response) pairs from the embedded synthetic data: realistic, varied lengths."""
    from rewardlab.data import synthetic

    recs = synthetic.generate(max(50, n // 2 + 1), seed=seed)
    pairs = [(c.prompt if isinstance(c.prompt, str) else c.prompt[-1]["content"], r) for c in recs for r in c.responses]
    return pairs[:n]


def auth_headers(token: str | None) -> dict:
    """The bearer-token header for a server started with ``--token`` (none without one)."""
    return {"Authorization": f"Bearer {token}"} if token else {}


class Server:
    def __init__(self, model: str, batching: bool, extra: list[str], token: str | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token
        cmd = [
            sys.executable,
            "-m",
            "rewardlab.cli",
            "serve",
            "--model",
            model,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--batching" if batching else "--no-batching",
            *extra,
            *(["--token", token] if token else []),
        ]
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def wait_ready(self, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stdout.read()[-2000:]}")
            try:
                r = httpx.get(self.url + "/health", timeout=2)
                if r.status_code == 200:
                    return r.json()
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise TimeoutError("server did not become ready")

    def metrics(self) -> dict:
        text = httpx.get(self.url + "/metrics", timeout=10, headers=auth_headers(self.token)).text
        vals = {}
        for name in (
            "rewardlab_batch_texts_sum",
            "rewardlab_batch_texts_count",
            "rewardlab_batch_requests_sum",
            "rewardlab_forward_seconds_sum",
            "rewardlab_texts_scored_total",
        ):
            m = re.search(rf"^{name} ([0-9.e+-]+)$", text, re.M)
            vals[name] = float(m.group(1)) if m else None
        return vals

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


class RawConnection:
    """A minimal HTTP/1.1 keep-alive client for one connection (POST JSON, read a Content-Length response).

    httpx costs a few milliseconds of CPU per request; on a 2-core machine that the client shares with the server
    that would be measured as server time. This client costs a fraction of that. ``--client httpx`` uses httpx."""

    def __init__(self, host: str, port: int, token: str | None = None):
        self.host, self.port = host, port
        self.auth = "".join(f"{k}: {v}\r\n" for k, v in auth_headers(token).items())
        self.reader = self.writer = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
            f"{self.auth}Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("connection closed by the server")
        status = int(status_line.split()[1])
        length, close = 0, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
            elif name.strip().lower() == "connection" and value.strip().lower() == "close":
                close = True
        data = await self.reader.readexactly(length)
        if close:
            await self.close()
        return status, data

    async def close(self):
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except Exception:
                pass
            self.reader = self.writer = None


async def run_clients(
    url: str,
    pairs,
    n_requests: int,
    clients: int,
    per_request: int,
    max_seconds: float,
    offset: int = 0,
    client_kind: str = "raw",
    token: str | None = None,
) -> dict:
    latencies, errors, sent = [], [], [0]
    deadline = time.perf_counter() + max_seconds
    host, port = url.split("//")[1].split(":")
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits, headers=auth_headers(token)) as http:

        async def client():
            conn = RawConnection(host, int(port), token)
            try:
                while sent[0] < n_requests and time.perf_counter() < deadline:
                    i = offset + sent[0]
                    sent[0] += 1
                    p = pairs[i % len(pairs)][0]
                    rs = [pairs[(i + j) % len(pairs)][1] for j in range(per_request)]
                    body = {"prompt": p, "responses": rs}
                    t0 = time.perf_counter()
                    try:
                        if client_kind == "raw":
                            status, data = await asyncio.wait_for(
                                conn.post("/v1/score", json.dumps(body).encode()), 120
                            )
                        else:
                            r = await http.post("/v1/score", json=body)
                            status, data = r.status_code, r.content
                        ok = status == 200 and len(json.loads(data)["rewards"]) == per_request
                        if not ok:
                            errors.append(f"{status}: {data[:200]!r}")
                    except Exception as e:  # counted, never retried
                        errors.append(f"{type(e).__name__}: {e}"[:200])
                        await conn.close()
                        ok = False
                    if ok:
                        latencies.append(time.perf_counter() - t0)
            finally:
                await conn.close()

        t0 = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        wall = time.perf_counter() - t0
    return {
        "sent": sent[0],
        "ok": len(latencies),
        "errors": len(errors),
        "error_samples": errors[:5],
        "wall_s": wall,
        "latencies": latencies,
    }


def pct(xs, q):
    xs = sorted(xs)
    if not xs:
        return None
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summarize(rounds: list[dict], per_request: int, metrics: dict) -> dict:
    lat = [x for r in rounds for x in r["latencies"]]
    wall = sum(r["wall_s"] for r in rounds)
    ok = sum(r["ok"] for r in rounds)
    out = {
        "requests_sent": sum(r["sent"] for r in rounds),
        "requests_ok": ok,
        "errors": sum(r["errors"] for r in rounds),
        "error_samples": [e for r in rounds for e in r["error_samples"]][:5],
        "wall_s": round(wall, 3),
        "throughput_rps": round(ok / wall, 2) if wall else None,
        "texts_per_s": round(ok * per_request / wall, 2) if wall else None,
        "latency_ms": {
            k: round(1000 * pct(lat, q), 2) for k, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))
        }
        if lat
        else None,
        "latency_mean_ms": round(1000 * statistics.mean(lat), 2) if lat else None,
        "rounds": [
            {
                "sent": r["sent"],
                "ok": r["ok"],
                "errors": r["errors"],
                "wall_s": round(r["wall_s"], 3),
                "throughput_rps": round(r["ok"] / r["wall_s"], 2) if r["wall_s"] else None,
                "loadavg_before": r["loadavg_before"],
                "loadavg_after": r["loadavg_after"],
            }
            for r in rounds
        ],
    }
    if metrics.get("rewardlab_batch_texts_count"):
        out["server_forwards"] = int(metrics["rewardlab_batch_texts_count"])
        out["mean_texts_per_forward"] = round(
            metrics["rewardlab_batch_texts_sum"] / metrics["rewardlab_batch_texts_count"], 2
        )
        out["mean_requests_per_forward"] = round(
            metrics["rewardlab_batch_requests_sum"] / metrics["rewardlab_batch_texts_count"], 2
        )
    return out


def environment() -> dict:
    import importlib.metadata as md

    cpu = "?"
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except Exception:
        pass
    mem = "?"
    try:
        mem = next(l.split(":", 1)[1].strip() for l in open("/proc/meminfo") if l.startswith("MemTotal"))
    except Exception:
        pass
    versions = {}
    for pkg in (
        "rewardlab",
        "torch",
        "transformers",
        "fastapi",
        "starlette",
        "uvicorn",
        "httptools",
        "uvloop",
        "pydantic",
        "httpx",
        "prometheus-client",
    ):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    versions["python"] = platform.python_version()
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "memory": mem,
        "platform": platform.platform(),
        "versions": versions,
    }


def markdown(result: dict) -> str:
    a = result["args"]
    lines = [
        f"# Load test: `rewardlab serve`, batching on vs off ({result['name']})",
        "",
        f"- command: `{result['command']}`",
        f"- model: {result['model_desc']}",
        f"- load: {a['clients']} concurrent clients on 127.0.0.1, {a['requests']} measured requests per mode "
        f"in {a['rounds']} interleaved rounds, {a['responses_per_request']} response(s) per request, "
        f"{a['warmup']} warm-up requests per mode; {a['client']} client; "
        f"server settings: {' '.join(a['server_args']) or 'defaults'}",
        f"- hardware: {result['env']['cpu']}, {result['env']['cpu_count']} CPUs, {result['env']['memory']}; "
        f"{result['note']}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in result["env"]["versions"].items()),
        f"- date: {result['date']}",
        "",
        "| mode | requests ok | errors | throughput (req/s) | p50 ms | p90 ms | p99 ms | max ms | texts/forward |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for mode, r in result["modes"].items():
        l = r["latency_ms"] or {}
        lines.append(
            f"| {mode} | {r['requests_ok']} | {r['errors']} | {r['throughput_rps']} | {l.get('p50')} | "
            f"{l.get('p90')} | {l.get('p99')} | {l.get('max')} | {r.get('mean_texts_per_forward')} |"
        )
    if result.get("speedup") is not None:
        lines += ["", f"**Batched / unbatched throughput: {result['speedup']:.2f}x.**"]
    lines += ["", "Per round (throughput req/s; 1-minute load average before -> after):", ""]
    for mode, r in result["modes"].items():
        rs = "; ".join(f"{x['throughput_rps']} ({x['loadavg_before']} -> {x['loadavg_after']})" for x in r["rounds"])
        lines.append(f"- {mode}: {rs}")
    return "\n".join(lines) + "\n"


# ---- the mixed scenario: small-request latency while large requests stream --------------------------------------
LARGE_WORDS = "apple pear plum fig kiwi lime lemon mango".split()


def large_body(n_texts: int, n_chars: int, seed: int) -> dict:
    """One large request: ``n_texts`` responses of about ``n_chars`` characters (cut to max_length by the server)."""
    return {
        "prompt": "Describe the fruit in detail.",
        "responses": [" ".join(LARGE_WORDS[(seed + i + j) % 8] for j in range(n_chars // 6)) for i in range(n_texts)],
    }


async def mixed_phase(
    url: str,
    pairs,
    seconds: float,
    small_clients: int,
    large_streams: int,
    large_texts: int,
    large_chars: int,
    token: str | None,
) -> dict:
    """``small_clients`` closed-loop clients of one-response requests for ``seconds``, alongside ``large_streams``
    clients sending large requests back to back (0: unloaded). Small requests are timed; large ones counted."""
    host, port = url.split("//")[1].split(":")
    stop = time.perf_counter() + seconds
    small, large, errors = [], [], []

    async def small_client(k: int):
        conn, i = RawConnection(host, int(port), token), k
        try:
            while time.perf_counter() < stop:
                p, r = pairs[i % len(pairs)]
                i += small_clients
                t0 = time.perf_counter()
                status, data = await conn.post("/v1/score", json.dumps({"prompt": p, "responses": [r]}).encode())
                if status == 200:
                    small.append(time.perf_counter() - t0)
                else:
                    errors.append(f"small {status}: {data[:120]!r}")
        finally:
            await conn.close()

    async def large_client(k: int):
        conn, n = RawConnection(host, int(port), token), 0
        try:
            while time.perf_counter() < stop:
                body = json.dumps(large_body(large_texts, large_chars, k * 1000 + n)).encode()
                n += 1
                t0 = time.perf_counter()
                status, data = await asyncio.wait_for(conn.post("/v1/score", body), 600)
                if status == 200:
                    large.append(time.perf_counter() - t0)
                else:
                    errors.append(f"large {status}: {data[:120]!r}")
        finally:
            await conn.close()

    before = round(os.getloadavg()[0], 2)
    await asyncio.gather(
        *(small_client(k) for k in range(small_clients)), *(large_client(k) for k in range(large_streams))
    )
    return {
        "small": small,
        "large": large,
        "errors": errors,
        "loadavg_before": before,
        "loadavg_after": round(os.getloadavg()[0], 2),
    }


def run_mixed(args, model: str, pairs) -> dict:
    """Unloaded and loaded phases in interleaved rounds on one batched server; small-request p50/p99 of each."""
    server = Server(model, True, args.server_args, args.token)
    phases = {"unloaded": [], "loaded": []}
    try:
        health = server.wait_ready()
        asyncio.run(
            mixed_phase(
                server.url,
                pairs,
                5,
                args.small_clients,
                args.large_streams,
                args.large_texts,
                args.large_chars,
                args.token,
            )
        )  # warm-up, both kinds of requests
        for rnd in range(args.rounds):
            order = ["unloaded", "loaded"] if rnd % 2 == 0 else ["loaded", "unloaded"]
            for phase in order:
                r = asyncio.run(
                    mixed_phase(
                        server.url,
                        pairs,
                        args.phase_seconds,
                        args.small_clients,
                        args.large_streams if phase == "loaded" else 0,
                        args.large_texts,
                        args.large_chars,
                        args.token,
                    )
                )
                phases[phase].append(r)
                print(
                    f"round {rnd + 1} {phase}: {len(r['small'])} small, {len(r['large'])} large, "
                    f"{len(r['errors'])} errors, load {r['loadavg_before']} -> {r['loadavg_after']}",
                    flush=True,
                )
    finally:
        code = server.stop()
    out = {"server_health": health, "server_exit_code": code}
    for phase, rounds in phases.items():
        lat = [x for r in rounds for x in r["small"]]
        big = [x for r in rounds for x in r["large"]]
        out[phase] = {
            "small_requests": len(lat),
            "large_requests": len(big),
            "errors": sum(len(r["errors"]) for r in rounds),
            "error_samples": [e for r in rounds for e in r["errors"]][:5],
            "small_latency_ms": {
                k: round(1000 * pct(lat, q), 2) for k, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))
            }
            if lat
            else None,
            "large_latency_s_mean": round(statistics.mean(big), 3) if big else None,
            "large_texts_per_s": round(len(big) * args.large_texts / (args.phase_seconds * len(rounds)), 1),
            "loadavg": [(r["loadavg_before"], r["loadavg_after"]) for r in rounds],
        }
    u, l = out["unloaded"]["small_latency_ms"], out["loaded"]["small_latency_ms"]
    out["p99_ratio"] = round(l["p99"] / u["p99"], 3) if u and l else None
    return out


def mixed_markdown(result: dict) -> str:
    m, a = result["mixed"], result["args"]
    lines = [
        f"# Load test: small-request latency while large requests stream ({result['name']})",
        "",
        f"- command: `{result['command']}`",
        f"- model: {result['model_desc']}",
        f"- small: {a['small_clients']} closed-loop clients, one response each; large: {a['large_streams']} "
        f"clients sending {a['large_texts']} responses of ~{a['large_chars']} characters back to back (loaded "
        f"phase only); {a['rounds']} interleaved rounds of {a['phase_seconds']} s per phase; server settings: "
        f"{' '.join(a['server_args']) or 'defaults'}",
        f"- hardware: {result['env']['cpu']}, {result['env']['cpu_count']} CPUs, {result['env']['memory']}; "
        f"machine load (uptime before the run): {result['uptime_before']}; {result['note']}",
        f"- date: {result['date']}",
        "",
        "| phase | small requests | small p50 ms | small p90 ms | small p99 ms | small max ms | large requests "
        "| large mean s | large texts/s | errors | 1-min load (before -> after, per round) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for phase in ("unloaded", "loaded"):
        r = m[phase]
        lat = r["small_latency_ms"] or {}
        loads = "; ".join(f"{b} -> {e}" for b, e in r["loadavg"])
        lines.append(
            f"| {phase} | {r['small_requests']} | {lat.get('p50')} | {lat.get('p90')} | {lat.get('p99')} | "
            f"{lat.get('max')} | {r['large_requests']} | {r['large_latency_s_mean']} | "
            f"{r['large_texts_per_s']} | {r['errors']} | {loads} |"
        )
    lines += ["", f"**Small-request p99 loaded / unloaded: {m['p99_ratio']}x** (target: at most 2x)."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="a saved rewardlab model directory (default: build one from --backbone)")
    ap.add_argument(
        "--backbone",
        default="minilm",
        help="minilm, smollm2-135m, a directory, tiny:hidden=H,layers=L or tiny-bert:hidden=H,layers=L "
        "(random tiny Llama / BERT with the MiniLM tokenizer)",
    )
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--requests", type=int, default=2000, help="measured requests per mode (over all rounds)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=64)
    ap.add_argument("--responses-per-request", type=int, default=1)
    ap.add_argument("--max-seconds", type=float, default=600, help="time limit per mode and round")
    ap.add_argument(
        "--client",
        choices=["raw", "httpx"],
        default="raw",
        help="raw: a minimal keep-alive HTTP/1.1 client (little CPU); httpx: the httpx AsyncClient",
    )
    ap.add_argument("--modes", nargs="+", default=["batched", "unbatched"], choices=["batched", "unbatched"])
    ap.add_argument(
        "--server-arg",
        action="append",
        default=[],
        dest="server_args",
        help="extra `rewardlab serve` flag, e.g. --server-arg=--max-wait-ms=5 (repeatable)",
    )
    ap.add_argument("--token", default=None, help="start the servers with this bearer token and send it")
    ap.add_argument("--output-dir", default=str(HERE / "results"))
    ap.add_argument("--name", default="loadtest")
    ap.add_argument("--note", default="")
    ap.add_argument(
        "--scenario",
        choices=["batching", "mixed"],
        default="batching",
        help="batching: batching on vs off (the default); mixed: small-request latency unloaded vs while "
        "--large-streams clients send large requests",
    )
    ap.add_argument("--small-clients", type=int, default=2, help="mixed: closed-loop clients of small requests")
    ap.add_argument("--large-streams", type=int, default=2, help="mixed: clients sending large requests")
    ap.add_argument("--large-texts", type=int, default=64, help="mixed: responses per large request")
    ap.add_argument("--large-chars", type=int, default=2000, help="mixed: characters per large response")
    ap.add_argument("--phase-seconds", type=float, default=20, help="mixed: seconds per phase and round")
    args = ap.parse_args(argv)

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    workdir = Path(tempfile.mkdtemp(prefix="rewardlab-loadtest-"))
    model = build_model(args, workdir)
    pairs = items(max(200, args.clients * 4))
    if args.scenario == "mixed":
        uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
        mixed = run_mixed(args, model, pairs)
        desc = args.model or f"{args.backbone} (untrained head), max_length {args.max_length}"
        result = {
            "name": args.name,
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "command": "python perf/loadtest.py " + " ".join(sys.argv[1:] if argv is None else argv),
            "args": vars(args),
            "model_desc": desc,
            "env": environment(),
            "note": args.note,
            "uptime_before": uptime,
            "uptime_after": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
            "mixed": mixed,
        }
        out = Path(args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
        (out / f"{args.name}.md").write_text(mixed_markdown(result))
        print(mixed_markdown(result))
        return 0 if not mixed["unloaded"]["errors"] and not mixed["loaded"]["errors"] else 1
    servers = {m: Server(model, m == "batched", args.server_args, args.token) for m in args.modes}
    results = {m: [] for m in args.modes}
    health = {}
    try:
        for m, s in servers.items():
            health[m] = s.wait_ready()
        for m, s in servers.items():  # warm-up, not measured
            asyncio.run(
                run_clients(
                    s.url,
                    pairs,
                    args.warmup,
                    args.clients,
                    args.responses_per_request,
                    120,
                    client_kind=args.client,
                    token=args.token,
                )
            )
        per_round = [
            args.requests // args.rounds + (1 if i < args.requests % args.rounds else 0) for i in range(args.rounds)
        ]
        for rnd, n in enumerate(per_round):
            order = args.modes if rnd % 2 == 0 else args.modes[::-1]
            for m in order:
                before = round(os.getloadavg()[0], 2)
                r = asyncio.run(
                    run_clients(
                        servers[m].url,
                        pairs,
                        n,
                        args.clients,
                        args.responses_per_request,
                        args.max_seconds,
                        offset=sum(per_round[:rnd]),
                        client_kind=args.client,
                        token=args.token,
                    )
                )
                r["loadavg_before"], r["loadavg_after"] = before, round(os.getloadavg()[0], 2)
                results[m].append(r)
                print(
                    f"round {rnd + 1} {m}: {r['ok']}/{r['sent']} ok, {r['errors']} errors, "
                    f"{r['ok'] / r['wall_s']:.1f} req/s",
                    flush=True,
                )
        metrics = {m: s.metrics() for m, s in servers.items()}
    finally:
        codes = {m: s.stop() for m, s in servers.items()}
    modes = {m: summarize(results[m], args.responses_per_request, metrics[m]) for m in args.modes}
    speedup = None
    if "batched" in modes and "unbatched" in modes and modes["unbatched"]["throughput_rps"]:
        speedup = modes["batched"]["throughput_rps"] / modes["unbatched"]["throughput_rps"]
    desc = args.model or (
        f"{args.backbone} (untrained head; weights do not change the cost), max_length {args.max_length}"
    )
    result = {
        "name": args.name,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": "python perf/loadtest.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "args": vars(args),
        "model_desc": desc,
        "server_health": health,
        "server_exit_codes": codes,
        "env": environment(),
        "note": args.note,
        "modes": modes,
        "speedup": round(speedup, 3) if speedup else None,
    }
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / f"{args.name}.md").write_text(markdown(result))
    print(markdown(result))
    return 0 if all(m["errors"] == 0 for m in modes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
