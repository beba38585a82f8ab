"""Per-step scoring of the ProcessBench gsm8k solutions: one forward per solution vs one forward per step prefix.

The per-prefix loop is TRL's documented PRM inference (a forward over prompt + steps[:k] for every k); rewardlab's
``VerifierModel.score_steps`` reads every step's score from one forward over the whole solution, which for a
causal model gives the same numbers. Both run on the same model, the same 400 solutions, one process, in this
invocation; the anchor (per-prefix) is measured in the same run. Writes JSON and a Markdown table.

    python perf/verifier_scoring.py --out perf/results/verifier-scoring        # tiny-causal (4 x 128 Llama)
    python perf/verifier_scoring.py --backbone DIR --limit 50 --out /tmp/vs    # any token-classification backbone
"""

from __future__ import annotations

import argparse
import json
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

    t = time.perf_counter()
    one = vm.score_steps(items, batch_size=args.batch_size)
    t_one = time.perf_counter() - t
    t = time.perf_counter()
    loop = [vm.score_per_prefix(p, s) for p, s in items]
    t_loop = time.perf_counter() - t

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
        "machine": platform.processor() or platform.machine(),
        "command": " ".join(["python", *sys.argv]),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(res, indent=2) + "\n")
    md = [
        f"# Per-step scoring of {res['solutions']} ProcessBench gsm8k solutions ({res['steps']} steps)",
        "",
        f"backbone {res['backbone']} ({res['parameters']:,} parameters), CPU, {res['threads']} threads, one process",
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
