"""Bias profile and held-out accuracy of the four models that train_models.sh trains, before/after
``--augment offsetbias``; writes experiments/probes/results.json and results.md.

    PYTHONPATH=src python experiments/probes/analyse.py [--runs runs/probes-exp] [--n-boot 1000]

For each data set the held-out split is rebuilt from the run's own saved config (``load_train_eval``; the
augmentation is applied after the split, so both models of a pair share it), and the probe pairs are derived
from the *held-out* records only. The script also checks that no held-out prompt is among the training
prompts of the augmented run, and that every added off-topic negative is a training response.
Paired differences (after − before) are bootstrapped over the same pairs / records.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from rewardlab.benchmarks.base import score_records
from rewardlab.model import RewardModel
from rewardlab.probes.pairs import PROBES
from rewardlab.probes.profile import bias_profile, win_credit
from rewardlab.training.train import TrainConfig, load_train_eval

PAIRS = {
    "embedded (quickstart: `rewardlab train` defaults)": ("embedded", "embedded-offsetbias"),
    "hh-rlhf harmless-base (first 1200 pairs, 96 tokens)": ("hh", "hh-offsetbias"),
}
HERE = Path(__file__).resolve().parent


def paired_diff(a: np.ndarray, b: np.ndarray, n_boot: int, seed: int = 0) -> dict:
    """mean(b − a) with a bootstrap 95% interval over the shared items."""
    d = np.asarray(b, float) - np.asarray(a, float)
    rng = np.random.default_rng(seed)
    boots = d[rng.integers(0, d.size, size=(n_boot, d.size))].mean(axis=1)
    return {"diff": float(d.mean()), "ci95": [float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))]}


def load_cfg(run: Path) -> tuple[TrainConfig, dict]:
    summary = json.loads((run / "train_summary.json").read_text())
    names = set(TrainConfig.__dataclass_fields__)
    cfg = TrainConfig(**{k: v for k, v in summary["config"].items() if k in names})
    return cfg, summary


def accuracy_credits(rm, records) -> np.ndarray:
    scores = score_records(rm, records, 64)
    # strict pairwise accuracy per record (a tie is wrong), as train_summary.json's accuracy
    return np.array([np.mean([float(s[c.chosen] > s[j]) for j in c.rejected_indices]) for c, s in zip(records, scores)])


def analyse_model(runs: Path, run: str, held, n_boot: int) -> dict:
    """One model's held-out accuracy credits and bias profile (with per-pair credits), cached in
    ``<run>/probe-analysis.json`` so each model can be done as soon as it is trained."""
    cache = runs / run / "probe-analysis.json"
    if cache.exists():
        return json.loads(cache.read_text())
    t0 = time.time()
    rm = RewardModel.load(runs / run / "model")
    acc = accuracy_credits(rm, held)
    prof = bias_profile(rm, held, "all", seed=0, n_boot=n_boot, batch_size=64)
    pairs = {p: [win_credit(r["r_biased"], r["r_reference"]) for r in rows] for p, rows in prof.pop("pairs").items()}
    got = {
        "accuracy_credits": acc.tolist(),
        "pair_credits": pairs,
        "bias_profile": prof,
        "seconds": round(time.time() - t0, 1),
    }
    cache.write_text(json.dumps(got) + "\n")
    print(
        f"{run}: accuracy {acc.mean():.4f}",
        {p: round(s["biased_preferred"], 3) for p, s in prof["probes"].items()},
        flush=True,
    )
    return got


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", default="runs/probes-exp")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--only", default=None, help="analyse (and cache) only this run directory name, write nothing else")
    args = ap.parse_args()
    runs = Path(args.runs)
    out: dict = {"datasets": {}, "probes": list(PROBES), "n_boot": args.n_boot}
    for title, (before, after) in PAIRS.items():
        if args.only is not None and args.only not in (before, after):
            continue
        cfg_b, sum_b = load_cfg(runs / before)
        train_b, held, _ = load_train_eval(cfg_b)
        if args.only is not None:
            analyse_model(runs, args.only, held, args.n_boot)
            continue
        cfg_a, sum_a = load_cfg(runs / after)
        train_a, held_a, info_a = load_train_eval(cfg_a)
        assert [r.id for r in held] == [r.id for r in held_a], "the two runs must share the held-out split"
        held_prompts = {r.prompt_key() for r in held}
        train_prompts = {r.prompt_key() for r in train_a}
        train_responses = {x for r in train_b for x in r.responses}
        added = [r for r in train_a if r.source == "offsetbias:off_topic"]
        checks = {
            "held_out_prompts_in_augmented_training": len(held_prompts & train_prompts),
            "added_negatives_not_from_training": sum(r.responses[1] not in train_responses for r in added),
            "n_added": len(added),
            "n_train_before": len(train_b),
            "n_held_out": len(held),
        }
        entry: dict = {"checks": checks, "augment": info_a["augment"], "models": {}}
        got = {}
        for label, run, summary in (("before", before, sum_b), ("after", after, sum_a)):
            got[label] = analyse_model(runs, run, held, args.n_boot)
            fe = summary["final_eval"]
            entry["models"][label] = {
                "run": run,
                "config_augment": summary["config"].get("augment"),
                "train_summary_accuracy": fe["accuracy"],
                "train_summary_accuracy_ci95": fe["accuracy_ci95"],
                "held_out_accuracy": float(np.mean(got[label]["accuracy_credits"])),
                "bias_profile": got[label]["bias_profile"],
                "steps": summary["steps"],
                "seconds_to_probe": got[label]["seconds"],
            }
        b, a = got["before"], got["after"]
        entry["paired"] = {
            "held_out_accuracy": paired_diff(b["accuracy_credits"], a["accuracy_credits"], args.n_boot),
            **{p: paired_diff(b["pair_credits"][p], a["pair_credits"][p], args.n_boot) for p in b["pair_credits"]},
        }
        out["datasets"][title] = entry
    if args.only is not None:
        return 0
    (HERE / "results.json").write_text(json.dumps(out, indent=2) + "\n")
    (HERE / "results.md").write_text(render(out))
    print(f"wrote {HERE / 'results.json'} and {HERE / 'results.md'}")
    return 0


def _ci(v, ci) -> str:
    return "—" if v is None else (f"{v:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{v:.3f}")


def render(out: dict) -> str:
    lines = ["# Bias probes before and after `--augment offsetbias` (generated by analyse.py)", ""]
    for title, e in out["datasets"].items():
        b, a = e["models"]["before"], e["models"]["after"]
        lines += [
            f"## {title}",
            "",
            f"Held-out records: {e['checks']['n_held_out']}; training records {e['checks']['n_train_before']} "
            f"+ {e['checks']['n_added']} off-topic negatives (fraction {e['augment']['fraction']}). "
            f"Held-out prompts among the augmented run's training prompts: "
            f"{e['checks']['held_out_prompts_in_augmented_training']}; added negatives not taken from the "
            f"training responses: {e['checks']['added_negatives_not_from_training']}.",
            "",
            "| measure | before | after | after − before (paired bootstrap 95%) |",
            "|---|---|---|---|",
        ]
        d = e["paired"]["held_out_accuracy"]
        lines.append(
            f"| held-out accuracy | {_ci(b['train_summary_accuracy'], b['train_summary_accuracy_ci95'])} | "
            f"{_ci(a['train_summary_accuracy'], a['train_summary_accuracy_ci95'])} | {_ci(d['diff'], d['ci95'])} |"
        )
        for p, s in b["bias_profile"]["probes"].items():
            t = a["bias_profile"]["probes"][p]
            d = e["paired"][p]
            lines.append(
                f"| {p}: biased preferred (n={s['n']}) | {_ci(s['biased_preferred'], s['ci95'])} | "
                f"{_ci(t['biased_preferred'], t['ci95'])} | {_ci(d['diff'], d['ci95'])} |"
            )
            if s.get("control_rate") is not None:
                lines.append(
                    f"| {p}: control (no added text) | {_ci(s['control_rate'], s['control_ci95'])} | "
                    f"{_ci(t['control_rate'], t['control_ci95'])} | |"
                )
                lines.append(
                    f"| {p}: reward shift | {_ci(s['shift'], s['shift_ci95'])} | {_ci(t['shift'], t['shift_ci95'])} | |"
                )
        lines += [
            "",
            "Biased preferred: share of held-out probe pairs where the model rewards the biased variant "
            "above the chosen response (Wilson 95%). Reward shift: mean r(biased) − r(worse response), "
            "bootstrap 95%. Held-out accuracy: from the run's train_summary.json (bootstrap 95%); the paired "
            "difference is recomputed on the same held-out records.",
            "",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
