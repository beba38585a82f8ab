"""Multi-objective experiment on the embedded multi-attribute data (CPU, MiniLM backbone, features computed once).

Stage 1: ridge probes on frozen all-MiniLM-L6-v2 features of rated responses (rater length bias in helpfulness).
Stage 2: ArmoRM gate on held-in preference pairs, with and without verbosity debiasing (same cached features).
Held-out: per-attribute Pearson; pairwise accuracy of fixed equal weights vs the learned gate (95% Wilson
intervals); |Spearman| of score vs response length before / after debiasing. Equivalent CLI:

    rewardlab train --objective regression --stage1 ridge --backbone minilm --data embedded --embedded-size 600 \
        --output-dir runs/mo/stage1
    rewardlab train --objective gating --init-from runs/mo/stage1/model --data embedded --embedded-size 1500 \
        --eval-fraction 0.2 --gate-steps 300 --gate-batch-size 256 --output-dir runs/mo/stage2

The gate is ArmoRM's width (d→1024→1024→1024→K); it stops early on a validation tenth of the training pairs
(rewardlab.multiobjective.train.train_gate), so --gate-steps is a maximum.

Usage: python experiments/multiobjective/run.py [--out experiments/multiobjective]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from rewardlab.multiobjective.model import AttributeRewardModel  # noqa: E402
from rewardlab.multiobjective.train import _load_pairs, evaluate_pairs  # noqa: E402
from rewardlab.training.train import TrainConfig, train  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(Path(__file__).parent))
    ap.add_argument("--work", default="runs/multiobjective")
    ap.add_argument("--rated-prompts", type=int, default=600)
    ap.add_argument("--pairs", type=int, default=1500)
    ap.add_argument("--gate-steps", type=int, default=300)
    ap.add_argument("--gate-hidden", type=int, default=1024)
    ap.add_argument("--gate-batch-size", type=int, default=256)
    args = ap.parse_args()
    load_before = os.getloadavg()
    out, work = Path(args.out), Path(args.work)
    cache = str(work / "features")
    timings = {}

    t = time.perf_counter()
    s1 = train(
        TrainConfig(
            objective="regression",
            stage1="ridge",
            backbone="minilm",
            data="embedded",
            embedded_size=args.rated_prompts,
            eval_fraction=0.1,
            output_dir=str(work / "stage1"),
            feature_cache=cache,
            eval_batch_size=64,
        )
    )
    timings["stage1_seconds_incl_features_and_eval"] = round(time.perf_counter() - t, 1)

    common = dict(
        objective="gating",
        init_from=str(s1.model_dir),
        data="embedded",
        embedded_size=args.pairs,
        eval_fraction=0.2,
        gate_steps=args.gate_steps,
        gate_hidden=args.gate_hidden,
        feature_cache=cache,
        gate_batch_size=args.gate_batch_size,
        eval_batch_size=64,
    )
    t = time.perf_counter()
    debiased = train(TrainConfig(output_dir=str(work / "stage2"), **common))
    timings["stage2_seconds_incl_features_and_eval"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    raw = train(TrainConfig(output_dir=str(work / "stage2_no_debias"), debias=False, **common))
    timings["stage2_no_debias_seconds_cached_features"] = round(time.perf_counter() - t, 1)
    timings["stage1_plus_stage2_end_to_end_seconds"] = round(
        timings["stage1_seconds_incl_features_and_eval"] + timings["stage2_seconds_incl_features_and_eval"], 1
    )

    cfg = TrainConfig(data="embedded", embedded_size=args.pairs, eval_fraction=0.2)
    _, held, _ = _load_pairs(cfg)
    rm = AttributeRewardModel.load(debiased.model_dir)
    plot = out / "gate_by_source.png"
    ev = evaluate_pairs(rm, held, cache, str(s1.model_dir), 64, plot=plot)
    ev_raw = evaluate_pairs(AttributeRewardModel.load(raw.model_dir), held, cache, str(s1.model_dir), 64)

    per_source, per_source_length = {}, {}
    for src in ("harmful", "arithmetic", "keyword"):
        sub = [c for c in held if c.source == src]
        e = evaluate_pairs(rm, sub, cache, str(s1.model_dir), 64)
        per_source[src] = {n: a["accuracy"] for n, a in e["accuracy"].items()}
        per_source_length[src] = e["abs_spearman_score_vs_length"]
    results = {
        "backbone": "all-MiniLM-L6-v2 (embedded), frozen",
        "data": {
            "rated_prompts": args.rated_prompts,
            "rated_texts": 2 * args.rated_prompts,
            "pairs": args.pairs,
            "held_out_pairs": ev["accuracy"]["gate"]["n"],
        },
        "stage1_held_out": s1.summary["held_out"],
        "stage1_alphas": s1.summary["stage1"]["alphas"],
        "lambdas": debiased.summary["debias"]["lambdas"],
        "gate": debiased.summary["gate"],
        "gate_steps_max": args.gate_steps,
        "gate_steps_run": debiased.summary["gate_steps_run"],
        "gate_steps_run_without_debiasing": raw.summary["gate_steps_run"],
        "gate_batch_size": args.gate_batch_size,
        "held_out_accuracy": {n: a for n, a in ev["accuracy"].items()},
        "held_out_accuracy_gate_trained_without_debiasing": ev_raw["accuracy"]["gate"],
        "held_out_accuracy_by_source": per_source,
        "abs_spearman_score_vs_length_by_source": per_source_length,
        "abs_spearman_score_vs_length": ev["abs_spearman_score_vs_length"],
        "abs_spearman_score_vs_length_gate_trained_without_debiasing": ev_raw["abs_spearman_score_vs_length"]["gate"],
        "abs_spearman_within_pairs": ev["abs_spearman_score_vs_length_within_pairs"],
        "abs_spearman_within_pairs_gate_trained_without_debiasing": ev_raw["abs_spearman_score_vs_length_within_pairs"][
            "gate"
        ],
        "mean_gate_by_source": ev["mean_gate_by_source"],
        "timings": timings,
        "load_average_1_5_15_before": load_before,
        "load_average_1_5_15_after": os.getloadavg(),
        "cpu_note": "2 CPU cores shared with two other engineers' jobs; wall-clock, not exclusive",
    }
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# Multi-objective experiment (embedded multi-attribute data, frozen MiniLM)",
        "",
        f"Command: `python experiments/multiobjective/run.py --work {args.work}` — {json.dumps(vars(args))}",
        "",
        "## Stage 1 (ridge) held-out per attribute",
        "",
        "| attribute | n | MSE | Pearson | Spearman |",
        "|---|---|---|---|---|",
    ]
    for a, m in s1.summary["held_out"].items():
        f = lambda x: "n/a" if x is None else f"{x:.3f}"  # noqa: E731
        lines.append(f"| {a} | {m['n']} | {m['mse']:.4f} | {f(m['pearson'])} | {f(m['spearman'])} |")
    lines += [
        "",
        f"λ (verbosity debiasing, reference = training pairs): {results['lambdas']}",
        "",
        "## Held-out pairwise accuracy (95% Wilson interval)",
        "",
        "|Spearman| pooled: score vs response length over all held-out responses (as ArmoRM measures it); "
        "within pairs: score difference vs length difference of each pair.",
        "",
        "| scaliser | accuracy | 95% CI | \\|Spearman(score, length)\\| pooled | within pairs |",
        "|---|---|---|---|---|",
    ]
    for n, a in ev["accuracy"].items():
        lines.append(
            f"| {n} | {a['accuracy']:.4f} | [{a['ci95'][0]:.3f}, {a['ci95'][1]:.3f}] | "
            f"{ev['abs_spearman_score_vs_length'][n]:.3f} | "
            f"{ev['abs_spearman_score_vs_length_within_pairs'][n]:.3f} |"
        )
    a = ev_raw["accuracy"]["gate"]
    lines.append(
        f"| gate trained without debiasing | {a['accuracy']:.4f} | [{a['ci95'][0]:.3f}, {a['ci95'][1]:.3f}] | "
        f"{ev_raw['abs_spearman_score_vs_length']['gate']:.3f} | "
        f"{ev_raw['abs_spearman_score_vs_length_within_pairs']['gate']:.3f} |"
    )
    lines += [
        "",
        "## Accuracy by prompt source",
        "",
        "| source | " + " | ".join(per_source["harmful"]) + " |",
        "|---|" + "---|" * len(per_source["harmful"]),
    ]
    for src, accs in per_source.items():
        lines.append(f"| {src} | " + " | ".join(f"{v:.3f}" for v in accs.values()) + " |")
    lines += [
        "",
        "## Mean gate weight by prompt source",
        "",
        f"![gate weights]({plot.name})",
        "",
        "| source | " + " | ".join(rm.attributes) + " |",
        "|---|" + "---|" * len(rm.attributes),
    ]
    for src, w in ev["mean_gate_by_source"].items():
        lines.append(f"| {src} | " + " | ".join(f"{w[x]:.3f}" for x in rm.attributes) + " |")
    lines += ["", "## Time (wall clock on 2 CPU cores shared with two other engineers' jobs)", ""]
    lines += [f"- {k}: {v} s" for k, v in timings.items()]
    lines += [
        f"- gate steps run (early stopping, max {args.gate_steps}, batch {args.gate_batch_size}): "
        f"{results['gate_steps_run']} debiased, {results['gate_steps_run_without_debiasing']} without debiasing",
        f"- load average (1, 5, 15 min) before: {tuple(round(x, 2) for x in load_before)}, after: "
        f"{tuple(round(x, 2) for x in results['load_average_1_5_15_after'])}",
    ]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
