"""Summarize one run of experiments/bon/run.sh: OUT/results.json and OUT/results.md.

Reads OUT/report/report.json and scores.jsonl (rewardlab bon), OUT/pairs-stats.json, OUT/proxy-*/train_summary.json
and OUT/times.tsv. Adds what the report does not hold:

* a paired bootstrap over prompts (same resamples for both n) of gold(best observed n) − gold(N) for every scorer:
  "peak established" needs its 95% interval above 0 and the Gao fit to peak inside the measured n in at least
  97.5% of the report's bootstrap resamples (its n* interval is taken over those only); the best observed n is
  itself picked by looking, so the drop is optimistic: it is a check, not a test;
* the oracle (gold selects its own best of n: the ceiling best-of-n could reach) and each proxy's pairwise accuracy
  against the gold on the best-of-n prompts' samples (pairs of one prompt whose gold differs; proxy ties count 1/2);
* wall / process CPU time per step and the load averages seen.

Every curve is recomputed from scores.jsonl with rewardlab's estimator and checked against report.json.

    python experiments/bon/summarize.py OUT
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from pathlib import Path

import numpy as np

from rewardlab.bon.ensemble import combine
from rewardlab.metrics.best_of_n import expected_best_of_n

N_BOOT, SEED, LAM = 2000, 0, 0.5


def per_prompt(proxy_rows, gold_rows, ns):
    """Shape (prompts, len(ns)): each prompt's exact E[gold of best-of-n]."""
    return np.array([[expected_best_of_n(p, g, n)[1] for n in ns] for p, g in zip(proxy_rows, gold_rows)])


def split(flat, sizes):
    out, at = [], 0
    for k in sizes:
        out.append(list(flat[at : at + k]))
        at += k
    return out


def pair_accuracy(proxy_rows, gold_rows):
    """Share of same-prompt sample pairs with different gold that the proxy orders like the gold (ties 1/2)."""
    right = total = 0.0
    for p, g in zip(proxy_rows, gold_rows):
        for i, j in itertools.combinations(range(len(g)), 2):
            if g[i] == g[j]:
                continue
            total += 1
            right += 0.5 if p[i] == p[j] else float((p[i] > p[j]) == (g[i] > g[j]))
    return right / total if total else None


def main() -> None:
    out = Path(sys.argv[1])
    report = json.loads((out / "report" / "report.json").read_text())["results"]
    rows = [json.loads(x) for x in (out / "report" / "scores.jsonl").read_text().splitlines() if x.strip()]
    ns = report["ns"]
    N = max(ns)
    gold_rows = [r["gold"] for r in rows]
    sizes = [len(g) for g in gold_rows]
    names = sorted(rows[0]["proxy"])
    proxies = {k: [r["proxy"][k] for r in rows] for k in names}
    members = np.array([[x for r in rows for x in r["proxy"][k]] for k in names])  # (M, S)
    scorers = dict(proxies)
    for obj in ("mean", "min", "uwo"):
        scorers[f"ensemble-{obj}"] = split(combine(members, obj, lam=LAM, standardize=True).tolist(), sizes)

    rng = np.random.default_rng(SEED)
    boot = rng.integers(0, len(rows), size=(N_BOOT, len(rows)))
    results = {}
    for name, prox in scorers.items():
        rep = report["scorers"][name]
        g = per_prompt(prox, gold_rows, ns)  # (P, K)
        assert np.allclose(g.mean(0), rep["curve"]["gold"], atol=1e-9), f"{name}: recomputed gold differs"
        k_best = int(np.argmax(g.mean(0)))
        drop = g[:, k_best] - g[:, -1]
        drops = drop[boot].mean(1)
        gain = g[:, -1] - g[:, 0]
        gains = gain[boot].mean(1)
        gao = rep["gao"]
        inside = gao.get("inside_share") or 0.0
        established = bool(k_best < len(ns) - 1 and np.quantile(drops, 0.025) > 0 and inside >= 0.975)
        if established:
            verdict = "peak established"
        elif k_best < len(ns) - 1:
            verdict = f"gold highest at n = {ns[k_best]}, but its drop to n = {N} is not significant"
        else:
            verdict = f"no peak: gold highest at n = {N}"
        results[name] = {
            "made_by": rep["made_by"],
            "gold": dict(zip(map(str, ns), rep["curve"]["gold"])),
            "gold_ci": dict(zip(map(str, ns), rep["curve"]["gold_ci"])),
            "proxy": dict(zip(map(str, ns), rep["curve"]["proxy"])),
            "proxy_ci": dict(zip(map(str, ns), rep["curve"]["proxy_ci"])),
            "best_observed_n": ns[k_best],
            "gain_1_to_N": float(gain.mean()),
            "gain_1_to_N_ci": [float(np.quantile(gains, 0.025)), float(np.quantile(gains, 0.975))],
            "drop_best_to_N": float(drop.mean()),
            "drop_best_to_N_ci": [float(np.quantile(drops, 0.025)), float(np.quantile(drops, 0.975))],
            "gao": {
                k: gao.get(k)
                for k in (
                    "alpha",
                    "beta",
                    "d_star",
                    "kl_star",
                    "n_star",
                    "n_star_ci",
                    "peak_past_largest_n",
                    "peaked_share",
                    "inside_share",
                    "shape",
                )
            },  # fmt: skip
            "pair_accuracy_vs_gold": pair_accuracy(prox, gold_rows),
            "verdict": verdict,
        }
    oracle = per_prompt(gold_rows, gold_rows, ns).mean(0)

    times = [line.split("\t") for line in (out / "times.tsv").read_text().splitlines()[1:] if line.strip()]
    steps = [
        {
            "step": t[0],
            "wall_s": float(t[1]),
            "cpu_s": float(t[2]) + float(t[3]),
            "load_before": t[4],
            "load_after": t[5],
        }
        for t in times
    ]
    loads = [float(s[k].split()[0]) for s in steps for k in ("load_before", "load_after")]
    trains = {}
    for k in names:
        f = out / k / "train_summary.json"
        if f.exists():
            s = json.loads(f.read_text())
            fe, data = s.get("final_eval") or {}, s.get("data") or {}
            trains[k] = {
                "steps": s.get("steps"),
                "train_pairs": data.get("n_train"),
                "own_split_pairs": data.get("n_eval"),
                "own_split_accuracy": fe.get("accuracy"),
            }
    samples = json.loads((out / "samples.jsonl").open().readline())["sampling"]
    summary = {
        "what": "best-of-n over-optimization on the embedded tasks (experiments/bon/run.sh)",
        "sampling": samples,
        "prompts": report["n_prompts"],
        "samples_per_prompt": report["samples_per_prompt"],
        "ns": ns,
        "kl_plotted": report["kl_plotted"],
        "kl_bound": dict(zip(map(str, ns), report["scorers"][names[0]]["kl"]["bound"])),
        "kl_estimate": dict(zip(map(str, ns), report["scorers"][names[0]]["kl"]["estimate"])),
        "kl_estimate_by_scorer_at_N": {k: v["kl"]["estimate"][-1] for k, v in report["scorers"].items()},
        "pairs": json.loads((out / "pairs-stats.json").read_text()),
        "proxy_training": trains,
        "oracle_gold": dict(zip(map(str, ns), oracle.tolist())),
        "scorers": results,
        "peak_rule": "peak established: gold(best observed n) - gold(N) > 0 with a paired 95% bootstrap interval over "
        f"prompts ({N_BOOT} resamples, seed {SEED}) above 0, and the Gao fit peaking inside the measured n in at "
        "least 97.5% of the report's bootstrap resamples (inside_share)",
        "times": steps,
        "total_wall_s": sum(s["wall_s"] for s in steps),
        "total_cpu_s": sum(s["cpu_s"] for s in steps),
        "load_average_1min": {"min": min(loads), "max": max(loads)},
        "cpus": os.cpu_count(),
    }
    (out / "results.json").write_text(json.dumps(summary, indent=1) + "\n")
    (out / "results.md").write_text(markdown(summary))


def fmt(x, ci=None):
    return f"{x:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def markdown(s) -> str:
    ns = s["ns"]
    show = [n for n in ns if n in (1, 4, 16, max(ns))] if len(ns) > 4 else ns
    lines = [
        "# Best-of-n results (experiments/bon)",
        "",
        f"{s['prompts']} prompts x N = {s['samples_per_prompt']['max']} samples (SmolLM2-135M-Instruct, temperature "
        f"{s['sampling'].get('temperature')}, <= {s['sampling'].get('max_new_tokens')} new tokens); proxies: MiniLM BT "
        f"on {s['pairs']['pairs']} gold-labelled pairs of the policy's samples of {s['pairs']['train_prompts']} other "
        f"prompts, {s['pairs']['flip_share']:.1%} of the labels flipped. Gold = the embedded checkers. Mean over "
        "prompts of the unbiased best-of-n estimate, 95% percentile bootstrap over prompts.",
        "",
        "KL (nats) at n = "
        + ", ".join(f"{n}: bound {s['kl_bound'][str(n)]:.3f} / estimate {s['kl_estimate'][str(n)]:.3f}" for n in show)
        + f"; plots and fits use the {s['kl_plotted']}.",
        "",
        "| scorer | pair acc. vs gold | "
        + " | ".join(f"gold n = {n}" for n in show)
        + " | gain 1 -> N | drop best -> N | Gao n* [95%] | verdict |",
        "|---" * (len(show) + 6) + "|",
    ]
    for name, r in s["scorers"].items():
        acc = r["pair_accuracy_vs_gold"]
        g = r["gao"]
        nstar = (
            "no peak (beta <= 0)"
            if g["n_star"] is None and not g["peak_past_largest_n"]
            else "past N"
            if g["n_star"] is None
            else fmt(g["n_star"], g["n_star_ci"])
        )
        lines.append(
            f"| {name} | {'' if acc is None else f'{acc:.3f}'} | "
            + " | ".join(fmt(r["gold"][str(n)], r["gold_ci"][str(n)]) for n in show)
            + f" | {fmt(r['gain_1_to_N'], r['gain_1_to_N_ci'])} | {fmt(r['drop_best_to_N'], r['drop_best_to_N_ci'])}"
            f" (best n = {r['best_observed_n']}) | {nstar} | {r['verdict']} |"
        )
    lines += [
        "| oracle (gold picks) | 1 | "
        + " | ".join(f"{s['oracle_gold'][str(n)]:.3f}" for n in show)
        + " | | | | ceiling |",
        "",
        f"Rule: {s['peak_rule']}.",
        "",
        "| step | wall (s) | process CPU, user + sys (s) | load average before | after |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {t['step']} | {t['wall_s']:.1f} | {t['cpu_s']:.1f} | {t['load_before']} | {t['load_after']} |"
        for t in s["times"]
    ]
    lines += [
        f"| **total** | **{s['total_wall_s']:.0f}** | **{s['total_cpu_s']:.0f}** | "
        f"1-min load {s['load_average_1min']['min']:.1f}-{s['load_average_1min']['max']:.1f} | "
        f"{s['cpus']} CPUs |",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
