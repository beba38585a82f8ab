"""Reward-model training and scoring throughput: rewardlab padded vs rewardlab packed vs TRL's RewardTrainer.

One invocation prepares one model (random weights of a given shape, or a real backbone), one data split and one
matmul-peak measurement, then runs every configuration in its **own process** on the same model, data, batch
size, sequence cap and hardware, and writes ``bench.json`` and ``bench.md`` to ``--out``.

    python perf/bench_train.py --config cpu --out perf/results/cpu-small     # ~10 min on 2 CPU cores
    python perf/bench_train.py --config gpu --out perf/results/gpu-1.7b      # one GPU (H100/H200)
    python perf/bench_train.py --config smoke --out /tmp/bench-smoke                # seconds; tests use it

Training configurations (``--runs``):

* ``rewardlab-padded``  — ``rewardlab train`` (padded batches, each response a row)
* ``rewardlab-packed``  — ``rewardlab train --packing`` (padding-free rows, each prompt computed once)
* ``rewardlab-packed-ckpt`` — the same with ``--gradient-checkpointing``; ``rewardlab-packed-ckptN`` checkpoints
  every N-th layer only (``--gradient-checkpointing-every N``); a ``-pure`` suffix trains with ``--precision bf16-pure``
* ``trl`` — TRL ``RewardTrainer`` with its defaults (gradient checkpointing on), fed rewardlab's token ids
* ``trl-nockpt`` — the same with gradient checkpointing off

Scoring configurations (``--score-runs``): ``score-hf-loop`` (plain transformers ``AutoModelForSequenceClassification``,
batches of 8 in input order padded to the longest), ``score-rewardlab-padded`` (``RewardModel.score``, length-sorted
batches of 16), ``score-packed`` (``score(packing=True)``), ``score-packed-noshare`` (packed rows without prefix
sharing, to separate the two effects).

Measures: pairs/s and real tokens/s over the training steps after ``--warmup-steps`` (real tokens = the unpadded
length of every response, identical for all configurations), peak memory (process RSS on CPU,
``torch.cuda.max_memory_allocated`` on GPU), useful model TFLOP/s = 6 × non-embedding parameters × real tokens/s
(2 × for scoring), its fraction of a matmul peak measured in the same invocation (fp32 on CPU, bf16 on GPU), and
held-out accuracy after one epoch on the same pairs, every model scored by the same code.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

# Before torch loads: rewardlab sets OMP_WAIT_POLICY=PASSIVE (busy-waiting OpenMP workers make small ops far slower
# on a shared 2-core machine). Every configuration, TRL included, runs with the same setting.
import rewardlab  # noqa: F401,E402

HERE = Path(__file__).resolve().parent
DATA_CANDIDATES = [
    HERE.parent.parent / "shared" / "data" / "hh-rlhf-harmless-base-test.jsonl.gz",
    HERE.parent / "shared" / "data" / "hh-rlhf-harmless-base-test.jsonl.gz",
]
DEFAULT_DATA = next((p for p in DATA_CANDIDATES if p.exists()), DATA_CANDIDATES[0])

# Model shapes. "small": a 4-layer Llama of hidden 256 with SmolLM2's tokenizer, random weights, sized for a CPU.
SHAPES = {
    "tiny": dict(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2
    ),
    "small": dict(
        hidden_size=256, intermediate_size=1024, num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=4
    ),
    # HuggingFaceTB/SmolLM2-1.7B's config
    "smollm2-1.7b": dict(
        hidden_size=2048,
        intermediate_size=8192,
        num_hidden_layers=24,
        num_attention_heads=32,
        num_key_value_heads=32,
        rope_theta=130000.0,
        rms_norm_eps=1e-5,
    ),
}

CONFIGS = {
    "cpu": dict(
        shape="small",
        n_train=320,
        n_eval=128,
        n_score=128,
        batch_size=16,
        max_length=512,
        lr=1e-4,
        runs="rewardlab-padded,rewardlab-packed,trl,trl-nockpt",
        score_runs="score-hf-loop,score-rewardlab-padded,score-packed,score-packed-noshare",
        warmup_steps=2,
        score_rounds=3,
    ),
    "gpu": dict(
        shape="smollm2-1.7b",
        n_train=640,
        n_eval=128,
        n_score=256,
        batch_size=16,
        max_length=1024,
        lr=1e-5,
        # most informative first: a run cut short at a time limit still answers the question
        runs="trl,rewardlab-packed-ckpt,rewardlab-packed-ckpt-pure,rewardlab-packed,trl-nockpt,"
        "rewardlab-packed-ckpt2-pure,rewardlab-padded",
        score_runs="score-hf-loop,score-packed,score-rewardlab-padded",
        warmup_steps=3,
        score_rounds=1,
    ),
    "smoke": dict(
        shape="tiny",
        n_train=32,
        n_eval=16,
        n_score=16,
        batch_size=8,
        max_length=128,
        lr=1e-4,
        runs="rewardlab-padded,rewardlab-packed,trl",
        score_runs="score-hf-loop,score-packed",
        warmup_steps=1,
        score_rounds=1,
    ),
}


# ---- preparation (parent process) ----------------------------------------------------------------------------------
def prepare(args, work: Path) -> dict:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from rewardlab.data import load_comparisons, split_by_prompt, write_jsonl
    from rewardlab.model import RewardModel
    from rewardlab.models.backbones import resolve_backbone

    work.mkdir(parents=True, exist_ok=True)
    tok_src = resolve_backbone(args.tokenizer)
    if args.backbone:
        backbone = resolve_backbone(args.backbone)
    else:
        backbone = str(work / "backbone")
        tok = AutoTokenizer.from_pretrained(tok_src)
        cfg = LlamaConfig(
            vocab_size=len(tok),
            max_position_embeddings=8192,
            tie_word_embeddings=True,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            **SHAPES[args.shape],
        )
        torch.manual_seed(0)
        with torch.device("cuda" if torch.cuda.is_available() else "cpu"):  # a 1.7B init is minutes on a CPU
            model = LlamaForCausalLM(cfg)
        if torch.cuda.is_available():  # half the bytes to write and read back; training upcasts to fp32 anyway
            model.to(torch.bfloat16)
        model.save_pretrained(backbone)
        del model
        tok.save_pretrained(backbone)
    rm = RewardModel.from_backbone(backbone, max_length=args.max_length, seed=0)
    if torch.cuda.is_available():
        rm.model.to(torch.bfloat16)
    rm.save(work / "init")  # every configuration starts from these exact weights (head included)

    loaded = load_comparisons(str(args.data), skip_invalid=True)
    train, held = split_by_prompt(loaded.records, 0.2, seed=0)
    train, held = train[: args.n_train], held[: max(args.n_eval, args.n_score)]
    write_jsonl(train, str(work / "train.jsonl"))
    write_jsonl(held[: args.n_eval], str(work / "eval.jsonl"))
    write_jsonl(held[: args.n_score], str(work / "score.jsonl"))
    lens = [[len(rm.encoder.encode(c.prompt, r)["input_ids"]) for r in c.responses] for c in train]
    params = sum(p.numel() for p in rm.model.parameters())
    emb = sum(p.numel() for n, p in rm.model.named_parameters() if "embed" in n or "wpe" in n or "wte" in n)
    return {
        "backbone": args.backbone or f"random {args.shape} Llama ({json.dumps(SHAPES[args.shape])})",
        "tokenizer": args.tokenizer,
        "params": params,
        "non_embedding_params": params - emb,
        "n_train": len(train),
        "n_eval": min(len(held), args.n_eval),
        "n_score": min(len(held), args.n_score),
        "n_skipped_invalid": len(loaded.skipped),
        "real_tokens_per_pair": sum(map(sum, lens)) / len(lens),
        "max_response_tokens": max(max(x) for x in lens),
    }


def matmul_peak(device: str) -> dict:
    """Best observed dense matmul rate: fp32 on CPU (the training precision there), bf16 on GPU."""
    import torch

    n, dtype = (2048, torch.float32) if device == "cpu" else (8192, torch.bfloat16)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(8 if device == "cpu" else 30):
        if device != "cpu":
            torch.cuda.synchronize()
        t = time.perf_counter()
        (a @ b).sum().item()
        best = min(best, time.perf_counter() - t)
    return {"tflops": 2 * n**3 / best / 1e12, "n": n, "dtype": str(dtype).replace("torch.", "")}


def environment(device: str) -> dict:
    import torch
    import transformers

    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
    }
    try:
        import trl

        env["trl"] = trl.__version__
    except ImportError:
        env["trl"] = None
    try:
        env["cpu"] = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        env["cpu"] = platform.processor()
    if device == "cuda":
        env["gpu"] = torch.cuda.get_device_name(0)
    try:
        env["load_average_at_start"] = os.getloadavg()
    except OSError:
        pass
    return env


# ---- workers (one process each) ------------------------------------------------------------------------------------
def _peak_memory(device: str) -> float:
    import torch

    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB


def _accuracy(rm, records) -> float:
    scores = rm.score_comparisons(records, batch_size=16)
    return sum(all(s[c.chosen] > x for j, x in enumerate(s) if j != c.chosen) for c, s in zip(records, scores)) / len(
        records
    )


def _timed(steps: list[tuple], warmup: int) -> dict:
    """steps: (wall seconds, pairs, real tokens, process CPU seconds) per optimizer step -> rates over the steps after
    the warm-up ones. The CPU-time rate (pairs per CPU-second of this process, all its threads) is the steadier
    number on a machine shared with other jobs: waiting for a core does not count."""
    timed = steps[warmup:] or steps
    secs, pairs = sum(s[0] for s in timed), sum(s[1] for s in timed)
    cpu = sum(s[3] for s in timed)
    return {
        "timed_steps": len(timed),
        "timed_seconds": secs,
        "pairs_per_s": pairs / secs,
        "tokens_per_s": sum(s[2] for s in timed) / secs,
        "cpu_seconds": cpu,
        "pairs_per_cpu_s": pairs / cpu,
    }


class StepClock:
    """(wall, CPU) time between consecutive step ends."""

    def __init__(self):
        self.last = (time.perf_counter(), time.process_time())

    def lap(self) -> tuple[float, float]:
        now = (time.perf_counter(), time.process_time())
        wall, cpu = now[0] - self.last[0], now[1] - self.last[1]
        self.last = now
        return wall, cpu


def worker_rewardlab(name: str, spec: dict, device: str) -> dict:
    import torch

    import rewardlab.training.recipe as rl_recipe
    from rewardlab.training.train import TrainConfig, train

    work = Path(spec["work"])
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    cfg = TrainConfig(
        data=str(work / "train.jsonl"),
        eval_data=str(work / "eval.jsonl"),
        backbone=str(work / "init"),
        max_length=spec["max_length"],
        batch_size=spec["batch_size"],
        lr=spec["lr"],
        epochs=1.0,
        log_every=1,
        seed=0,
        output_dir=str(work / f"run-{name}"),
        packing="packed" in name,
        gradient_checkpointing="-ckpt" in name,
        gradient_checkpointing_every=int(name.split("-ckpt")[1].split("-")[0] or 1) if "-ckpt" in name else 1,
        eval_batch_size=16,
        precision="bf16-pure" if name.endswith("-pure") else "bf16" if device == "cuda" else "fp32",
        token_budget=spec.get("token_budget"),
    )
    # train() logs right after each optimizer step (log_every=1): time the steps there, wall and CPU
    laps, log, clock = [], rl_recipe.MetricsLog.log, [None]

    def timed_log(self, rec):
        if "pairs_per_s" in rec:
            if device == "cuda":
                torch.cuda.synchronize()
            if clock[0] is None:  # the first step: from the start of the loop, as the metrics window says
                clock[0] = StepClock()
                laps.append((rec["pairs_per_s"], None))
            else:
                laps.append(clock[0].lap())
        return log(self, rec)

    rl_recipe.MetricsLog.log = timed_log
    t0 = time.perf_counter()
    result = train(cfg)
    wall = time.perf_counter() - t0
    peak = _peak_memory(device)
    rows = [json.loads(l) for l in open(work / f"run-{name}" / "metrics.jsonl")]
    logged = [r for r in rows if "pairs_per_s" in r]  # one row per optimizer step
    n_train, bs = len(_records(work / "train.jsonl")), spec["batch_size"]
    steps = []
    for i, (r, (lap_wall, lap_cpu)) in enumerate(zip(logged, laps)):
        pairs = bs if (i < len(logged) - 1 or n_train % bs == 0) else n_train % bs  # K = 2: one pair per record
        tokens = r["tokens_per_s"] * pairs / r["pairs_per_s"]
        if lap_cpu is None:  # first step (warm-up, excluded): its wall time from the metrics window
            lap_wall, lap_cpu = pairs / r["pairs_per_s"], pairs / r["pairs_per_s"]
        steps.append((lap_wall, pairs, tokens, lap_cpu))
    out = _timed(steps, spec["warmup_steps"])
    out.update(
        peak_memory_gib=peak,
        wall_seconds=wall,
        steps=len(steps),
        final_loss=next(r["loss"] for r in reversed(rows) if "loss" in r),
        heldout_accuracy=result.final_eval["accuracy"],
        accuracy_from="rewardlab train's held-out evaluation",
    )
    return out


def _records(path: Path):
    from rewardlab.data import load_comparisons

    return load_comparisons(str(path)).records


def worker_trl(name: str, spec: dict, device: str) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, TrainerCallback
    from trl import RewardConfig, RewardTrainer

    from rewardlab.model import RewardModel

    work = Path(spec["work"])
    init = RewardModel.load(work / "init")
    train_recs = _records(work / "train.jsonl")
    # the exact token ids rewardlab trains on (template, truncation), so both trainers see the same tokens
    rows = [
        {
            "chosen_ids": init.encoder.encode(c.prompt, c.responses[c.chosen])["input_ids"],
            "rejected_ids": init.encoder.encode(c.prompt, c.responses[1 - c.chosen])["input_ids"],
        }
        for c in train_recs
    ]
    model = AutoModelForSequenceClassification.from_pretrained(work / "init", dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(work / "init")
    steps_total = -(-len(rows) // spec["batch_size"])
    args = RewardConfig(
        output_dir=str(work / f"run-{name}"),
        per_device_train_batch_size=spec["batch_size"],
        num_train_epochs=1,
        learning_rate=spec["lr"],
        lr_scheduler_type="linear",
        warmup_steps=int(0.05 * steps_total),
        weight_decay=0.0,
        max_grad_norm=1.0,
        seed=0,
        logging_steps=10,
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        gradient_checkpointing=(name == "trl"),
        bf16=(device == "cuda"),
        max_length=spec["max_length"],
        use_cpu=(device == "cpu"),
        dataloader_num_workers=0,
        disable_tqdm=True,
    )

    class Clock(TrainerCallback):
        def __init__(self):
            self.steps, self.clock, self.tokens = [], None, 0

        def on_step_begin(self, a, state, control, **kw):
            if self.clock is None:
                self.clock = StepClock()

        def on_step_end(self, a, state, control, **kw):
            if device == "cuda":
                torch.cuda.synchronize()
            wall, cpu = self.clock.lap()
            tokens = trainer._total_train_tokens
            self.steps.append((wall, spec["batch_size"], tokens - self.tokens, cpu))
            self.tokens = tokens

    clock = Clock()
    trainer = RewardTrainer(
        model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok, callbacks=[clock]
    )
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    out_train = trainer.train()
    wall = time.perf_counter() - t0
    peak = _peak_memory(device)
    # the last step may hold fewer pairs
    if clock.steps and len(rows) % spec["batch_size"]:
        s, _, t, c = clock.steps[-1]
        clock.steps[-1] = (s, len(rows) % spec["batch_size"], t, c)
    out = _timed(clock.steps, spec["warmup_steps"])
    model = trainer.model.float().eval()  # scored like rewardlab's own held-out evaluation (strict: ties lose)
    rm = RewardModel(model, init.tokenizer, init.spec)
    out.update(
        peak_memory_gib=peak,
        wall_seconds=wall,
        steps=len(clock.steps),
        final_loss=out_train.training_loss,
        heldout_accuracy=_accuracy(rm, _records(work / "eval.jsonl")),
        note="final_loss: TRL's epoch mean",
    )
    return out


def worker_score(name: str, spec: dict, device: str) -> dict:
    import torch
    from transformers import AutoModelForSequenceClassification

    from rewardlab.model import RewardModel
    from rewardlab.models import packing

    work = Path(spec["work"])
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    rm = RewardModel.load(work / "init", torch_dtype=dtype)
    rm.model.to(device).eval()
    records = _records(work / "score.jsonl")
    items = [(c.prompt, r) for c in records for r in c.responses]
    real = sum(len(rm.encoder.encode(p, r)["input_ids"]) for p, r in items)

    def run():
        if name == "score-hf-loop":  # what a transformers user writes: batches of 8 in input order, right-padded
            model = hf_model
            out = []
            for i in range(0, len(items), 8):
                feats = [rm.encoder.encode(p, r) for p, r in items[i : i + 8]]
                batch = {k: v.to(device) for k, v in rm.collate(feats, "right").items()}
                with torch.no_grad():
                    out += model(**batch).logits[:, 0].float().tolist()
            return out
        if name == "score-rewardlab-padded":
            return rm.score(items, batch_size=16)
        if name == "score-packed":
            return rm.score(items, packing=True, token_budget=spec.get("token_budget"))
        if name == "score-packed-noshare":
            with torch.no_grad():
                return packing.score_packed(rm, items, spec.get("token_budget"), share_prefix=False)
        raise ValueError(name)

    hf_model = (
        AutoModelForSequenceClassification.from_pretrained(work / "init", dtype=dtype).to(device).eval()
        if name == "score-hf-loop"
        else None
    )
    all_items, items = items, items[:16]
    run()  # warm-up on a few texts (kernels, allocator, lazy imports), the same for every method
    items = all_items
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    laps = []
    for _ in range(spec.get("score_repeats", 3)):  # a scoring pass takes seconds: the median of a few is steadier
        t0, c0 = time.perf_counter(), time.process_time()
        scores = run()
        if device == "cuda":
            torch.cuda.synchronize()
        laps.append((time.perf_counter() - t0, time.process_time() - c0))
    secs, cpu = (sorted(lap[i] for lap in laps)[len(laps) // 2] for i in (0, 1))  # medians
    np_path = work / f"scores-{name}.json"
    np_path.write_text(json.dumps(scores))
    return {
        "texts": len(items),
        "seconds": secs,
        "texts_per_s": len(items) / secs,
        "tokens_per_s": real / secs,
        "cpu_seconds": cpu,
        "texts_per_cpu_s": len(items) / cpu,
        "repeats": [list(lap) for lap in laps],
        "peak_memory_gib": _peak_memory(device),
    }


def worker_main(name: str, spec_path: str) -> None:
    import torch

    spec = json.loads(Path(spec_path).read_text())
    device = spec["device"]
    if device == "cpu" and spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    fn = worker_score if name.startswith("score-") else worker_trl if name.startswith("trl") else worker_rewardlab
    result = fn(name, spec, device)
    (Path(spec["work"]) / f"result-{name}.json").write_text(json.dumps(result, indent=2))


# ---- report --------------------------------------------------------------------------------------------------------
def derive(results: dict, info: dict, peak: dict) -> None:
    n = info["non_embedding_params"]
    for name, r in results.items():
        if "error" in r:
            continue
        flops = (2 if name.startswith("score-") else 6) * n * r["tokens_per_s"]
        r["useful_tflops"] = flops / 1e12
        r["fraction_of_peak"] = r["useful_tflops"] / peak["tflops"]
    trl = [r for n, r in results.items() if n.startswith("trl") and "pairs_per_s" in r]
    hf = results.get("score-hf-loop", {})
    for name, r in results.items():
        if trl and "pairs_per_s" in r:
            r["speedup_vs_fastest_trl"] = r["pairs_per_s"] / max(t["pairs_per_s"] for t in trl)
            if all("pairs_per_cpu_s" in t for t in trl) and "pairs_per_cpu_s" in r:
                r["cpu_time_speedup_vs_fastest_trl"] = r["pairs_per_cpu_s"] / max(t["pairs_per_cpu_s"] for t in trl)
        if name.startswith("score-") and "texts_per_s" in hf and "texts_per_s" in r:
            r["speedup_vs_hf_loop"] = r["texts_per_s"] / hf["texts_per_s"]
            if "texts_per_cpu_s" in hf and "texts_per_cpu_s" in r:
                r["cpu_time_speedup_vs_hf_loop"] = r["texts_per_cpu_s"] / hf["texts_per_cpu_s"]


def markdown(report: dict) -> str:
    info, env, peak = report["setup"], report["environment"], report["matmul_peak"]
    mem = "peak GPU memory allocated (GiB)" if report["device"] == "cuda" else "peak RSS (GiB)"
    lines = [
        f"# rewardlab training benchmark ({report['config']})",
        "",
        f"Command: `{report['command']}`  ",
        f"Date: {report['date']}  ",
        f"Hardware: {env.get('gpu') or env.get('cpu')} ({env['cpu_count']} CPUs visible, torch threads "
        f"{report['threads'] or env['torch_threads']}); load average at start {env.get('load_average_at_start')}  ",
        f"Versions: python {env['python']}, torch {env['torch']}, transformers {env['transformers']}, "
        f"trl {env['trl']}  ",
        f"Model: {info['backbone']}; {info['params'] / 1e6:.1f}M parameters, "
        f"{info['non_embedding_params'] / 1e6:.2f}M non-embedding  ",
        f"Data: {report['data']} — {info['n_train']} training pairs (1 epoch, batch {report['batch_size']}, "
        f"max length {report['max_length']}), {info['n_eval']} held-out pairs; "
        f"{info['real_tokens_per_pair']:.0f} real tokens per pair  ",
        f"Matmul peak (measured here): {peak['tflops'] * 1e3:.1f} GFLOP/s ({peak['dtype']}, n={peak['n']})",
        "",
        f"| run | pairs/s | real tokens/s | {mem} | useful TFLOP/s | of peak | held-out acc. | × fastest TRL "
        "| pairs per CPU-s | × fastest TRL (CPU time) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in report["results"].items():
        if name.startswith("score-"):
            continue
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error'][-80:]} |||||||||")
            continue
        lines.append(
            f"| {name} | {r['pairs_per_s']:.2f} | {r['tokens_per_s']:.0f} | {r['peak_memory_gib']:.2f} | "
            f"{r['useful_tflops']:.4f} | {r['fraction_of_peak']:.1%} | {r['heldout_accuracy']:.3f} | "
            f"{r.get('speedup_vs_fastest_trl', float('nan')):.2f} | {r.get('pairs_per_cpu_s', float('nan')):.2f} "
            f"| {r.get('cpu_time_speedup_vs_fastest_trl', float('nan')):.2f} |"
        )
    score = {k: v for k, v in report["results"].items() if k.startswith("score-")}
    if score:
        lines += [
            "",
            f"Scoring {info['n_score']} held-out comparisons (every response; per configuration the median of "
            f"{report.get('score_rounds', 1)} round-robin rounds of one process each, a round the median of 3 passes):",
            "",
            f"| run | texts/s | real tokens/s | {mem} | useful TFLOP/s | × HF batch-8 loop "
            "| × HF loop (CPU time) | max abs diff vs HF |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, r in score.items():
            if "error" in r:
                lines.append(f"| {name} | failed: {r['error'][-80:]} |||||||")
                continue
            lines.append(
                f"| {name} | {r['texts_per_s']:.1f} | {r['tokens_per_s']:.0f} | {r['peak_memory_gib']:.2f} | "
                f"{r['useful_tflops']:.4f} | {r.get('speedup_vs_hf_loop', float('nan')):.2f} | "
                f"{r.get('cpu_time_speedup_vs_hf_loop', float('nan')):.2f} | "
                f"{r.get('max_abs_diff_vs_hf', float('nan')):.2e} |"
            )
    lines += [
        "",
        "pairs/s and tokens/s are wall-clock rates over the steps after the warm-up ones; pairs per CPU-s "
        "divides by the CPU time of the run's process instead (steadier on a shared machine). Real tokens = "
        "unpadded length of every response (the same for every run); useful TFLOP/s = 6 × non-embedding "
        "parameters × real tokens/s (2 × for scoring). TRL runs are fed rewardlab's token ids; `trl` uses TRL's "
        "defaults (gradient checkpointing on), `trl-nockpt` turns it off.",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", choices=sorted(CONFIGS), default="cpu")
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--out", default=None, help="output folder (default perf/results/<config>)")
    p.add_argument("--work", default=None, help="scratch folder (default <out>/work, deleted unless --keep-work)")
    p.add_argument("--keep-work", action="store_true")
    p.add_argument("--backbone", default=None, help="a real backbone (e.g. smollm2-135m) instead of random weights")
    p.add_argument("--tokenizer", default="smollm2-135m")
    for key in ("shape", "runs", "score_runs"):
        p.add_argument("--" + key.replace("_", "-"), default=None)
    for key in (
        "n_train",
        "n_eval",
        "n_score",
        "batch_size",
        "max_length",
        "warmup_steps",
        "threads",
        "token_budget",
        "score_rounds",
    ):
        p.add_argument("--" + key.replace("_", "-"), type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--timeout", type=int, default=3600, help="seconds per configuration")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--spec", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker_main(args.worker, args.spec)
        return 0
    for key, value in CONFIGS[args.config].items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    if not Path(args.data).exists():
        print(f"bench: data {args.data} not found; skipping (pass --data)")
        return 0

    import shutil

    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    out = Path(args.out or HERE / "results" / args.config)
    work = Path(args.work or out / "work")
    shutil.rmtree(work, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    if args.threads and device == "cpu":
        torch.set_num_threads(args.threads)
    t0 = time.time()
    info = prepare(args, work)
    peak = matmul_peak(device)
    env = environment(device)
    spec = {
        "work": str(work),
        "device": device,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "lr": args.lr,
        "warmup_steps": args.warmup_steps,
        "threads": args.threads,
        "token_budget": args.token_budget,
    }
    (work / "spec.json").write_text(json.dumps(spec))
    # training configurations once each; scoring ones (seconds each) in score_rounds round-robin rounds, so a load
    # change on a shared machine hits every configuration alike; each keeps its median round (by seconds). The
    # report is rewritten after every configuration: a run stopped at a time limit keeps what it measured.
    names = [n for n in args.runs.split(",") if n]
    score_names = [n for n in (args.score_runs or "").split(",") if n]
    rounds: dict[str, list] = {}
    meta = {
        "config": args.config,
        "device": device,
        "data": str(args.data),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "lr": args.lr,
        "threads": args.threads,
        "token_budget": args.token_budget,
        "score_rounds": args.score_rounds,
        "setup": info,
        "matmul_peak": peak,
        "environment": env,
    }
    report = write_report(out, work, meta, rounds, t0)
    for name in names + score_names * args.score_rounds:
        print(f"bench: {name} ...", flush=True)
        t = time.time()
        try:
            r = subprocess.run(
                [sys.executable, __file__, "--worker", name, "--spec", str(work / "spec.json")],
                capture_output=True,
                text=True,
                timeout=args.timeout,
            )
            res_path = work / f"result-{name}.json"
            if r.returncode != 0 or not res_path.exists():
                res = {"error": (r.stderr or r.stdout)[-2000:]}
            else:
                res = json.loads(res_path.read_text())
                res_path.unlink()
        except subprocess.TimeoutExpired:
            res = {"error": f"timed out after {args.timeout} s"}
        rounds.setdefault(name, []).append(res)
        print(
            f"bench: {name} done in {time.time() - t:.0f} s: "
            f"{ {k: v for k, v in res.items() if k != 'error'} or res['error'][-500:] }",
            flush=True,
        )
        report = write_report(out, work, meta, rounds, t0)
    print(markdown(report))
    if not args.keep_work:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all("error" not in r for r in report["results"].values()) else 1


def write_report(out: Path, work: Path, meta: dict, rounds: dict[str, list], t0: float) -> dict:
    """bench.json and bench.md from the configurations run so far (each one's median round)."""
    results = {}
    for name, runs in rounds.items():
        ok = sorted((r for r in runs if "error" not in r), key=lambda r: r.get("seconds", 0))
        results[name] = dict(ok[len(ok) // 2]) if ok else runs[-1]
        if len(runs) > 1:
            results[name]["rounds_texts_per_s"] = [r.get("texts_per_s") for r in runs]
    ref = work / "scores-score-hf-loop.json"
    if ref.exists():
        hf = json.loads(ref.read_text())
        for name in results:
            path = work / f"scores-{name}.json"
            if name.startswith("score-") and path.exists():
                results[name]["max_abs_diff_vs_hf"] = max(abs(a - b) for a, b in zip(hf, json.loads(path.read_text())))
    derive(results, meta["setup"], meta["matmul_peak"])
    report = {
        **meta,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "results": results,
        "total_seconds": time.time() - t0,
    }
    (out / "bench.json").write_text(json.dumps(report, indent=2))
    (out / "bench.md").write_text(markdown(report))
    return report


if __name__ == "__main__":
    sys.exit(main())
