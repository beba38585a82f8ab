"""Per-step scoring of the ProcessBench gsm8k solutions: one forward per solution vs one forward per step prefix.

The per-prefix loop is TRL's documented PRM inference (a forward over prompt + steps[:k] for every k); rewardlab's
``VerifierModel.score_steps`` reads every step's score from one forward over the whole solution, which for a
causal model gives the same numbers. Both run on the same model, the same 400 solutions, one process, in this
invocation; the anchor (per-prefix) is measured in the same run, interleaved with the measured method chunk by
chunk (``--chunk``), so the shared machine's changing load falls on both. Writes JSON and a Markdown table.

    python perf/verifier_scoring.py --out perf/results/verifier-scoring        # tiny-causal (4 x 128 Llama)
    python perf/verifier_scoring.py --backbone DIR --limit 50 --out /tmp/vs    # any token-classification backbone
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/processbench-gsm8k.json"))
    ap.add_argument("--backbone", default="tiny-causal")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--max-length", type=int, default=2048)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--chunk", type=int, default=40)  # solutions scored both ways back to back
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if not Path(args.data).exists():
        args.data = "/work/shared/data/processbench-gsm8k.json"

    from rewardlab.verifiers.readers import read_verifier_data
    from rewardlab.verifiers.train import TrainVerifierConfig, build_model

    torch.set_num_threads(2)
    sols = read_verifier_data(args.data, limit=args.limit).solutions
    cfg = TrainVerifierConfig(backbone=args.backbone, max_length=args.max_length)
    vm = build_model(cfg, "bce", "binary")
    vm.model.eval()
    items = [(s.prompt, list(s.steps)) for s in sols]
    n_steps = sum(len(s) for _, s in items)
    vm.score_steps(items[:4], batch_size=args.batch_size)  # warm-up

    # interleaved: each chunk of solutions is scored both ways back to back, so a change in the machine's load
    # during the run (it is shared) falls on both methods alike
    load_before = os.getloadavg()
    t_one = t_loop = 0.0
    one, loop = [], []
    for start in range(0, len(items), args.chunk):
        chunk = items[start : start + args.chunk]
        t = time.perf_counter()
        one += vm.score_steps(chunk, batch_size=args.batch_size)
        t_one += time.perf_counter() - t
        t = time.perf_counter()
        loop += [vm.score_per_prefix(p, s) for p, s in chunk]
        t_loop += time.perf_counter() - t
        print(f"{start + len(chunk)}/{len(items)}: one forward {t_one:.1f} s, per prefix {t_loop:.1f} s", flush=True)
    load_after = os.getloadavg()

    diffs = [abs(a - b) for r, ref in zip(one, loop) for a, b in zip(r["step_scores"], ref) if a is not None]
    assert all((a is None) == (b is None) for r, ref in zip(one, loop) for a, b in zip(r["step_scores"], ref))
    cut = sum(v is None for r in one for v in r["step_scores"])
    res = {
        "data": args.data,
        "solutions": len(items),
        "steps": n_steps,
        "backbone": args.backbone,
        "parameters": sum(p.numel() for p in vm.model.parameters()),
        "max_length": args.max_length,
        "steps_cut_by_max_length": cut,
        "one_forward_seconds": t_one,
        "one_forward_batch_size": args.batch_size,
        "per_prefix_seconds": t_loop,
        "per_prefix_batch_size": 1,
        "speedup": t_loop / t_one,
        "max_abs_score_difference": max(diffs),
        "threads": torch.get_num_threads(),
        "timing": f"interleaved in chunks of {args.chunk} solutions (each chunk both ways back to back)",
        "load_average_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "machine": platform.processor() or platform.machine(),
        "command": " ".join(["python", *sys.argv]),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(res, indent=2) + "\n")
    md = [
        f"# Per-step scoring of {res['solutions']} ProcessBench gsm8k solutions ({res['steps']} steps)",
        "",
        f"backbone {res['backbone']} ({res['parameters']:,} parameters), CPU, {res['threads']} threads, one process; "
        f"{res['timing']}; 1-min load average {res['load_average_before_after'][0]} before, "
        f"{res['load_average_before_after'][1]} after (the machine is shared)",
        "",
        "| method | seconds | solutions/s |",
        "|---|---|---|",
        f"| per-prefix loop (TRL's inference; batch 1) | {t_loop:.1f} | {len(items) / t_loop:.1f} |",
        f"| one forward per solution (batch {args.batch_size}, length-sorted) | {t_one:.1f} | {len(items) / t_one:.1f} |",
        "",
        f"speed-up {res['speedup']:.1f}x; max |score difference| {res['max_abs_score_difference']:.2e}; "
        f"steps cut by max_length: {cut}",
        "",
        f"command: `{res['command']}`",
    ]
    (out / "bench.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
