"""PRM training throughput: rewardlab ``train-verifier --head two_class`` (packed, prefix-shared / padded) vs TRL's
``PRMTrainer`` on the same model, rows, batch size and steps.

One invocation writes one small Llama-shaped model from local files (``rewardlab.models.tiny``: random weights,
rewardlab's byte-level BPE with a post-processor that adds BOS, so TRL's prepended BOS and the tokenizer's own are the
same one token) and the embedded arithmetic-chain rows (``rewardlab.verifiers.synthetic``: 4 solutions per problem,
binary step labels; nothing downloaded), then runs every configuration in its **own process**, the configurations
interleaved over ``--rounds`` rounds, and writes ``bench.json`` and ``bench.md`` to ``--out``.

    python perf/bench_prm_train.py --out perf/results/prm-train-cpu          # ~10 min on the shared 2-core CPU

Configurations:

* ``rewardlab-packed`` — ``train-verifier --packing on``: a step's solutions of one problem share their prompt's
  forward (the problems of a step packed into rows under a block mask)
* ``rewardlab-padded`` — ``train-verifier --packing off``: one padded row per solution
* ``trl`` — TRL ``PRMTrainer`` (trl 1.13) with ``bf16=False`` and ``gradient_checkpointing=False`` (rewardlab's
  precision and no recomputation: the like-for-like anchor)
* ``trl-defaults`` — ``PRMTrainer`` with ``PRMConfig``'s defaults (``bf16=True`` autocast, gradient checkpointing on)

Both sides see the same token ids: TRL's rows carry rewardlab's prompt separator at the end of the prompt (TRL
adds none). Every run: ``--batch-size`` solutions per optimizer step, ``--steps`` steps, AdamW at ``--lr``, fp32
weights, dropout off, ``torch.set_num_threads(--threads)``. Measured over the steps after ``--warmup-steps``, from
a hook at each step's end (rewardlab: ``run_steps``' per-step callback; TRL: a ``TrainerCallback``): **solutions per
CPU-second** (process CPU time, all threads: the figure least moved by other load on a shared machine) and
solutions per wall-second; the median over rounds, with every round listed in the JSON. TRL shuffles the rows
itself, rewardlab keeps a problem's solutions together, so a step's solutions differ between the two; the real
token count per solution is the same on average (reported).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import rewardlab  # noqa: F401  (OMP settings before torch loads, identical for every configuration)

CONFIGS = ("rewardlab-packed", "rewardlab-padded", "trl", "trl-defaults")


def prepare(args, work: Path) -> dict:
    from tokenizers import processors
    from transformers import AutoTokenizer

    from rewardlab.models.tiny import make_tiny_causal_lm
    from rewardlab.verifiers.synthetic import make_problems

    model = work / "model"
    if not (model / "config.json").exists():
        make_tiny_causal_lm(model, seed=0, hidden=args.hidden, layers=args.layers)
        tok = AutoTokenizer.from_pretrained(model)
        bos = tok.bos_token
        tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, tok.bos_token_id)]
        )
        tok.save_pretrained(model)
    rows = [
        {"prompt": s.prompt, "completions": list(s.steps), "labels": [bool(v) for v in s.step_labels]}
        for p in make_problems(args.problems, seed=0)
        for s in p.solutions
    ]
    data = work / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"model": str(model), "data": str(data), "solutions": len(rows), "problems": args.problems}


class StepClock:
    """(process CPU seconds, wall seconds) at the start and at each step's end."""

    def __init__(self):
        self.marks = [(time.process_time(), time.perf_counter())]

    def tick(self):
        self.marks.append((time.process_time(), time.perf_counter()))

    def summary(self, warmup: int, batch: int) -> dict:
        steps = len(self.marks) - 1
        (c0, w0), (c1, w1) = self.marks[warmup], self.marks[-1]
        n = (steps - warmup) * batch
        return {
            "steps": steps,
            "measured_steps": steps - warmup,
            "cpu_seconds": c1 - c0,
            "wall_seconds": w1 - w0,
            "solutions_per_cpu_second": n / (c1 - c0),
            "solutions_per_wall_second": n / (w1 - w0),
        }


def run_rewardlab(args, prep: dict, packing: str) -> dict:
    import rewardlab.verifiers.train as tv

    clock: StepClock | None = None
    run_steps = tv.run_steps

    def timed(*a, on_row=None, **k):  # the core loop, with a clock at every step's end
        nonlocal clock
        clock = StepClock()

        def row(rec, last):
            clock.tick()
            on_row(rec, last)

        return run_steps(*a, on_row=row, **k)

    tv.run_steps = timed
    cfg = tv.TrainVerifierConfig(
        data=prep["data"], format="trl", backbone=prep["model"], head="two_class", head_dropout=0.0,
        batch_size=args.batch_size, lr=args.lr, warmup_ratio=0.0, lr_schedule="constant", max_length=512,
        eval_fraction=0.0, stop_after=args.steps, packing=packing, output_dir=str(Path(args.out) / "work" / "runs" / packing),
        overwrite=True, save_model=False, device="cpu", log_every=10**6,
    )  # fmt: skip
    result = tv.run_train_verifier(cfg)
    out = clock.summary(args.warmup_steps, args.batch_size)
    out["first_loss"] = json.loads((Path(cfg.output_dir) / "metrics.jsonl").read_text().splitlines()[0])["loss"]
    out["packing"] = packing
    out["stopped_after"] = result.get("stopped_after")
    return out


def run_trl(args, prep: dict, defaults: bool) -> dict:
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    import trl
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl.experimental.prm import PRMConfig, PRMTrainer

    from rewardlab.verifiers.train import TrainVerifierConfig, build_model

    vm = build_model(
        TrainVerifierConfig(backbone=prep["model"], head="two_class", head_dropout=0.0), "two_class", "binary"
    )
    rows = [json.loads(x) for x in Path(prep["data"]).read_text().splitlines()]
    rows = [{**r, "prompt": r["prompt"] + "\n"} for r in rows]  # rewardlab's prompt separator: the same token ids
    extra = {} if defaults else {"bf16": False, "gradient_checkpointing": False}
    cfg = PRMConfig(
        output_dir=str(Path(args.out) / "work" / "runs" / ("trl-defaults" if defaults else "trl")), max_steps=args.steps,
        per_device_train_batch_size=args.batch_size, learning_rate=args.lr, lr_scheduler_type="constant",
        report_to=[], save_strategy="no", use_cpu=True, seed=0, logging_steps=10**6, dataloader_num_workers=0,
        disable_tqdm=True, **extra,
    )  # fmt: skip
    trainer = PRMTrainer(model=vm.model, args=cfg, train_dataset=Dataset.from_list(rows), processing_class=vm.tok)
    clock: dict = {}
    losses: list[float] = []

    class Clock(TrainerCallback):
        def on_train_begin(self, *a, **k):
            clock["c"] = StepClock()

        def on_step_end(self, *a, **k):
            clock["c"].tick()

    compute = trainer.compute_loss

    def recorded(*a, **k):
        loss = compute(*a, **k)
        losses.append((loss[0] if isinstance(loss, tuple) else loss).item())
        return loss

    trainer.compute_loss = recorded
    trainer.add_callback(Clock())
    trainer.train()
    out = clock["c"].summary(args.warmup_steps, args.batch_size)
    out.update(first_loss=losses[0], trl_version=trl.__version__, bf16=cfg.bf16, grad_ckpt=cfg.gradient_checkpointing)
    return out


def child(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    prep = json.loads(Path(args.prep).read_text())
    name = args.child
    if name.startswith("rewardlab"):
        out = run_rewardlab(args, prep, "on" if name == "rewardlab-packed" else "off")
    else:
        out = run_trl(args, prep, defaults=(name == "trl-defaults"))
    print("RESULT " + json.dumps(out), flush=True)


def token_stats(prep: dict) -> dict:
    """Real tokens per solution (as rewardlab and TRL encode them, identical ids) and per packed problem."""
    from transformers import AutoTokenizer

    from rewardlab.verifiers.steps import StepFormat, encode, marker_id

    tok = AutoTokenizer.from_pretrained(prep["model"])
    fmt = StepFormat()
    mid = marker_id(tok, fmt)
    rows = [json.loads(x) for x in Path(prep["data"]).read_text().splitlines()]
    enc = [encode(tok, fmt, mid, r["prompt"], r["completions"]) for r in rows]
    prompt = [e.completion_start for e in enc]
    return {
        "tokens_per_solution": statistics.mean(len(e.ids) for e in enc),
        "prompt_tokens_per_solution": statistics.mean(prompt),
        "share_of_tokens_in_prompt": sum(prompt) / sum(len(e.ids) for e in enc),
    }


def markdown(report: dict) -> str:
    a = report["args"]
    lines = [
        "# PRM training throughput: rewardlab vs TRL PRMTrainer",
        "",
        f"Command: `{report['command']}`",
        "",
        f"Model: Llama {a['layers']} layers × hidden {a['hidden']} (random init, local files); rows: "
        f"{report['prep']['solutions']} solutions of the embedded arithmetic task ({report['prep']['problems']} "
        f"problems × 4); batch {a['batch_size']} solutions, {a['steps']} steps (first {a['warmup_steps']} not timed), "
        f"{a['threads']} thread(s), {a['rounds']} interleaved rounds ({a['first_round_only']}: the first only), median shown. Tokens per solution "
        f"{report['tokens']['tokens_per_solution']:.1f}, of which prompt {report['tokens']['prompt_tokens_per_solution']:.1f} "
        f"({100 * report['tokens']['share_of_tokens_in_prompt']:.0f}%). {report['machine']}.",
        "",
        "| configuration | solutions / CPU-s | solutions / wall-s | × TRL (CPU) | × TRL (wall) | step-1 loss |",
        "|---|---|---|---|---|---|",
    ]
    base = report["median"].get("trl")
    for name in CONFIGS:
        m = report["median"].get(name)
        if m is None:
            lines.append(f"| {name} | failed: {report['failed'].get(name, '?')} | | | | |")
            continue
        xc = m["solutions_per_cpu_second"] / base["solutions_per_cpu_second"] if base else float("nan")
        xw = m["solutions_per_wall_second"] / base["solutions_per_wall_second"] if base else float("nan")
        lines.append(
            f"| {name} | {m['solutions_per_cpu_second']:.2f} | {m['solutions_per_wall_second']:.2f} | {xc:.2f} | "
            f"{xw:.2f} | {m['first_loss']:.6f} |"
        )
    lines += [
        "",
        "CPU-s = process CPU time over all threads (`time.process_time`) between the end of the warm-up steps and the "
        "last step; wall-s the same interval on the wall clock. Every round's numbers are in bench.json. The step-1 "
        "losses differ between rewardlab and TRL because the step's solutions differ (TRL shuffles rows, rewardlab "
        "keeps a problem's solutions together) and, for `trl-defaults`, by its bf16 autocast.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--problems", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--warmup-steps", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--first-round-only", default="trl-defaults", help="configurations run in round 1 only (slow)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--prep", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    prep = prepare(args, out / "work")
    (out / "work" / "prep.json").write_text(json.dumps(prep))
    rounds: dict = {c: [] for c in args.configs.split(",")}
    failed: dict = {}
    base = [sys.executable, __file__] + [a for a in sys.argv[1:]]
    for r in range(args.rounds):
        for name in rounds:
            if r > 0 and name in args.first_round_only.split(","):
                continue
            cmd = base + ["--child", name, "--prep", str(out / "work" / "prep.json")]
            p = subprocess.run(cmd, capture_output=True, text=True)
            line = next((x for x in p.stdout.splitlines() if x.startswith("RESULT ")), None)
            if p.returncode != 0 or line is None:
                failed[name] = (p.stderr.strip().splitlines() or ["no output"])[-1][:300]
                print(f"round {r} {name}: FAILED {failed[name]}", flush=True)
                continue
            res = json.loads(line[len("RESULT ") :])
            rounds[name].append(res)
            print(f"round {r} {name}: {res['solutions_per_cpu_second']:.2f} sol/CPU-s, "
                  f"{res['solutions_per_wall_second']:.2f} sol/wall-s", flush=True)  # fmt: skip
    median = {}
    for name, rs in rounds.items():
        if rs:
            median[name] = {
                k: statistics.median(x[k] for x in rs)
                for k in ("solutions_per_cpu_second", "solutions_per_wall_second", "first_loss")
            }
    report = {
        "command": "python perf/bench_prm_train.py " + " ".join(sys.argv[1:]),
        "args": vars(args),
        "prep": prep,
        "tokens": token_stats(prep),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (shared), "
        f"python {platform.python_version()}",
        "rounds": rounds,
        "median": median,
        "failed": failed,
    }
    (out / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "bench.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
