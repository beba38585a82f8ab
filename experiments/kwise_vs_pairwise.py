"""K-wise Plackett-Luce MLE vs the pairwise split vs naive shuffled pairs, on data with a known reward.

Claim under test (Zhu, Jordan & Jiao 2023, "Principled RLHF from pairwise or K-wise comparisons"): for
rankings of K responses drawn from a Plackett-Luce model with a linear reward ``r(x) = θ*·x``, the K-wise
MLE is at least as accurate as the MLE that splits every ranking into its C(K,2) pairs, and both are
consistent (their error goes to 0 as the number of prompts grows).

Set-up (everything seeded): d-dimensional features ``x ~ N(0, I)``, ``θ*`` drawn at random with
``‖θ*‖ = theta_norm``; per prompt, K responses and one ranking drawn from Plackett-Luce(θ*·x) (Gumbel trick:
sort ``θ*·x + Gumbel noise``). The data of one (K, repeat) is drawn once for the largest n and the smaller
n are its prefixes. Estimators of θ (rewards are linear in the features, so θ̂ is the whole model):

(a) ``kwise``: the K-wise MLE, ``rewardlab.training.losses.plackett_luce`` minimised exactly (L-BFGS, float64);
(b) ``split``: the pairwise split, every ranking as its C(K,2) pairs with weight 1/C(K,2) per prompt —
    ``rewardlab.training.losses.allpairs_loss`` (InstructGPT eq. 6) — minimised exactly;
(c) ``shuffled``: naive pairs: all pairs of all prompts pooled, shuffled across batches, and fitted the
    way reward models are trained — minibatch Adam with a linearly decaying learning rate for a few
    epochs, each batch ``batch_prompts × C(K,2)`` pairs, loss ``rewardlab.training.losses.bradley_terry``;
(c') ``grouped``: the control for (c): the same optimiser, steps and pairs per step, but every batch holds
    whole prompts (all pairs of a prompt in the same step, weight 1/C(K,2)). (c) vs (c') is the effect of
    shuffling itself; (c') vs (b) is what the optimiser leaves on the table.

Outputs (``--out``, default ``experiments/results``): ``kwise_vs_pairwise.json`` (config, every error,
summaries), ``kwise_vs_pairwise.md`` (the table, the command, the findings) and ``kwise_vs_pairwise.png``
(‖θ̂ − θ*‖ vs number of prompts, one panel per K; needs matplotlib, skipped without it).

    python experiments/kwise_vs_pairwise.py                  # the committed results (a few minutes on CPU)
    python experiments/kwise_vs_pairwise.py --quick          # a smaller grid, seconds
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from rewardlab.training.losses import allpairs_loss, bradley_terry, plackett_luce

ESTIMATORS = ("kwise", "split", "shuffled", "grouped")
LABELS = {
    "kwise": "(a) K-wise MLE",
    "split": "(b) pairwise split, 1/C(K,2)",
    "shuffled": "(c) naive pairs, shuffled (SGD)",
    "grouped": "(c') pairs grouped by prompt (SGD)",
}
DTYPE = torch.float64


# --- data ----------------------------------------------------------------------------------------------


def generator(*key: int) -> torch.Generator:
    """A torch generator seeded by a tuple of ints (numpy's SeedSequence mixes them)."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence(list(key)).generate_state(1)[0]))


def draw_theta(d: int, norm: float, g: torch.Generator) -> torch.Tensor:
    theta = torch.randn(d, generator=g, dtype=DTYPE)
    return theta / theta.norm() * norm


def draw_rankings(n: int, k: int, theta: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``X`` ``(n, K, d)`` features and ``tier`` ``(n, K)``: the rank of each response (0 = best), drawn from
    Plackett-Luce with utilities ``X @ theta`` (sorting utilities plus Gumbel noise gives exactly PL)."""
    x = torch.randn(n, k, theta.numel(), generator=g, dtype=DTYPE)
    gumbel = -torch.log(-torch.log(torch.rand(n, k, generator=g, dtype=DTYPE)))
    order = torch.argsort(x @ theta + gumbel, dim=1, descending=True)
    tier = torch.empty_like(order)
    tier.scatter_(1, order, torch.arange(k).expand(n, k).contiguous())
    return x, tier


def ranking_pairs(tier: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Winner and loser response index of every pair of every ranking: ``(n, C(K,2))`` each."""
    k = tier.shape[1]
    i, j = torch.triu_indices(k, k, 1)
    i_wins = tier[:, i] < tier[:, j]
    return torch.where(i_wins, i, j), torch.where(i_wins, j, i)


# --- estimators -------------------------------------------------------------------------------------------


def minimise(objective, d: int) -> torch.Tensor:
    """argmin of a smooth convex ``objective(theta)`` by L-BFGS (strong Wolfe), from θ = 0."""
    theta = torch.zeros(d, dtype=DTYPE, requires_grad=True)
    opt = torch.optim.LBFGS(
        [theta], lr=1, max_iter=500, tolerance_grad=1e-10, tolerance_change=1e-14, line_search_fn="strong_wolfe"
    )

    def closure():
        opt.zero_grad()
        value = objective(theta)
        value.backward()
        return value

    opt.step(closure)
    return theta.detach()


def fit_kwise(x: torch.Tensor, tier: torch.Tensor) -> torch.Tensor:
    """(a) argmin of the mean Plackett-Luce NLL over prompts."""
    return minimise(lambda th: plackett_luce(x @ th, tier).mean(), x.shape[-1])


def fit_split(x: torch.Tensor, tier: torch.Tensor) -> torch.Tensor:
    """(b) argmin of the mean over prompts of 1/C(K,2) Σ_pairs BT (InstructGPT's all-pairs loss)."""
    w, l = ranking_pairs(tier)
    rows = torch.arange(len(x))[:, None]
    group = rows.expand_as(w).reshape(-1)

    def objective(th):
        r = x @ th
        return allpairs_loss(r[rows, w].reshape(-1), r[rows, l].reshape(-1), group, len(x)).mean()

    return minimise(objective, x.shape[-1])


def fit_sgd(
    x: torch.Tensor, tier: torch.Tensor, shuffle: bool, epochs: int, batch_prompts: int, lr: float, seed: int
) -> torch.Tensor:
    """(c) ``shuffle=True``: pairs pooled and shuffled; (c') ``False``: batches of whole prompts.

    Both: Adam from θ = 0, learning rate decaying linearly to 0, ``ceil(n / batch_prompts)`` steps per epoch
    of ``batch_prompts × C(K,2)`` pairs each, loss the mean BT over the batch's pairs (with K fixed this is
    the 1/C(K,2)-weighted per-prompt mean for grouped batches).
    """
    n, _, d = x.shape
    w, l = ranking_pairs(tier)
    c = w.shape[1]
    rows = torch.arange(n)[:, None]
    diff = x[rows, w] - x[rows, l]  # (n, C, d): r_w - r_l = θ·diff
    g = torch.Generator().manual_seed(seed)
    theta = torch.zeros(d, dtype=DTYPE, requires_grad=True)
    opt = torch.optim.Adam([theta], lr=lr)
    steps = math.ceil(n / batch_prompts)
    total, done = epochs * steps, 0
    zero = torch.zeros((), dtype=DTYPE)
    for _ in range(epochs):
        if shuffle:
            pool = diff.reshape(n * c, d)[torch.randperm(n * c, generator=g)]
            batches = [pool[s * batch_prompts * c : (s + 1) * batch_prompts * c] for s in range(steps)]
        else:
            perm = torch.randperm(n, generator=g)
            batches = [diff[perm[s * batch_prompts : (s + 1) * batch_prompts]].reshape(-1, d) for s in range(steps)]
        for batch in batches:
            for group in opt.param_groups:
                group["lr"] = lr * (1 - done / total)
            opt.zero_grad()
            bradley_terry(batch @ theta, zero).mean().backward()
            opt.step()
            done += 1
    return theta.detach()


# --- the study ----------------------------------------------------------------------------------------------


def run_study(
    ks,
    ns,
    repeats: int,
    seed: int = 0,
    d: int = 8,
    theta_norm: float = 2.0,
    sgd_epochs: int = 5,
    batch_prompts: int = 16,
    lr: float = 0.1,
    estimators=ESTIMATORS,
    log=None,
) -> dict:
    """``errors[estimator][K][n]`` = list over repeats of ‖θ̂ − θ*‖ (keys as strings, JSON-ready)."""
    fits = {
        "kwise": lambda x, t, r: fit_kwise(x, t),
        "split": lambda x, t, r: fit_split(x, t),
        "shuffled": lambda x, t, r: fit_sgd(x, t, True, sgd_epochs, batch_prompts, lr, r),
        "grouped": lambda x, t, r: fit_sgd(x, t, False, sgd_epochs, batch_prompts, lr, r),
    }
    errors = {e: {str(k): {str(n): [] for n in ns} for k in ks} for e in estimators}
    for k in ks:
        t0 = time.perf_counter()
        for rep in range(repeats):
            g = generator(seed, k, rep)
            theta = draw_theta(d, theta_norm, g)
            x_all, tier_all = draw_rankings(max(ns), k, theta, g)
            for n in ns:
                x, tier = x_all[:n], tier_all[:n]
                for e in estimators:
                    err = (fits[e](x, tier, seed * 7919 + rep) - theta).norm().item()
                    errors[e][str(k)][str(n)].append(err)
        if log:
            log(f"K={k}: {time.perf_counter() - t0:.1f}s")
    return {
        "config": {
            "ks": list(ks),
            "ns": list(ns),
            "repeats": repeats,
            "seed": seed,
            "d": d,
            "theta_norm": theta_norm,
            "sgd_epochs": sgd_epochs,
            "batch_prompts": batch_prompts,
            "lr": lr,
            "estimators": list(estimators),
        },
        "errors": errors,
    }


def mean(values) -> float:
    return float(np.mean(values))


def summarise(result: dict) -> dict:
    """Means, standard errors, ratios to (a), win rates of (a), and log-log slopes of error vs n."""
    cfg, errors = result["config"], result["errors"]
    est = cfg["estimators"]
    cells = []
    for k in cfg["ks"]:
        for n in cfg["ns"]:
            cell = {"K": k, "n": n}
            for e in est:
                v = np.array(errors[e][str(k)][str(n)])
                cell[e] = float(v.mean())
                cell[e + "_se"] = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else None
            if "kwise" in est:
                a = np.array(errors["kwise"][str(k)][str(n)])
                for e in est:
                    if e != "kwise":
                        cell[f"{e}/kwise"] = cell[e] / cell["kwise"]
                        cell[f"kwise_wins_vs_{e}"] = float(np.mean(a < np.array(errors[e][str(k)][str(n)])))
            cells.append(cell)
    slopes = {}
    for e in est:
        for k in cfg["ks"]:
            y = np.log([mean(errors[e][str(k)][str(n)]) for n in cfg["ns"]])
            slopes.setdefault(e, {})[str(k)] = float(np.polyfit(np.log(cfg["ns"]), y, 1)[0])
    by_k = {}
    if "kwise" in est:
        for k in cfg["ks"]:
            row = [c for c in cells if c["K"] == k]
            by_k[str(k)] = {f"{e}/kwise": float(np.mean([c[f"{e}/kwise"] for c in row])) for e in est if e != "kwise"}
    return {"cells": cells, "slopes": slopes, "mean_ratio_by_k": by_k}


def markdown(result: dict, summary: dict, command: str, seconds: float) -> str:
    cfg, est = result["config"], result["config"]["estimators"]
    lines = [
        "# K-wise vs pairwise reward estimation (synthetic, known θ*)",
        "",
        f"Command: `{command}` ({seconds:.0f} s on this machine's CPU).",
        "",
        f"d = {cfg['d']}, ‖θ*‖ = {cfg['theta_norm']}, {cfg['repeats']} repeats per cell (θ* and data redrawn "
        f"per repeat), seed {cfg['seed']}. SGD estimators: Adam, lr {cfg['lr']} decaying linearly to 0, "
        f"{cfg['sgd_epochs']} epochs, {cfg['batch_prompts']} prompts' worth of pairs per step.",
        "",
        "Estimators: " + "; ".join(f"{LABELS[e]}" for e in est) + ".",
        "",
        "Mean ‖θ̂ − θ*‖ (± standard error over repeats); the ratios are to (a), > 1 means (a) is better.",
        "",
    ]
    head = (
        ["K", "n"]
        + [LABELS[e].split(" ")[0] for e in est]
        + [f"{LABELS[e].split(' ')[0]}/(a)" for e in est if e != "kwise"]
    )
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in summary["cells"]:
        vals = [str(c["K"]), str(c["n"])]
        vals += [f"{c[e]:.4f} ± {c[e + '_se']:.4f}" if c[e + "_se"] is not None else f"{c[e]:.4f}" for e in est]
        vals += [f"{c[f'{e}/kwise']:.3f}" for e in est if e != "kwise"]
        lines.append("| " + " | ".join(vals) + " |")
    lines += [
        "",
        "Slope of log mean error vs log n (consistency: about −0.5):",
        "",
        "| estimator | " + " | ".join(f"K={k}" for k in cfg["ks"]) + " |",
        "|---|" + "---|" * len(cfg["ks"]),
    ]
    for e in est:
        lines.append(f"| {LABELS[e]} | " + " | ".join(f"{summary['slopes'][e][str(k)]:.2f}" for k in cfg["ks"]) + " |")
    lines += [
        "",
        "Mean over n of the error ratio to (a), by K:",
        "",
        "| K | " + " | ".join(f"{LABELS[e].split(' ')[0]}/(a)" for e in est if e != "kwise") + " |",
        "|---|" + "---|" * (len(est) - 1),
    ]
    for k, ratios in summary["mean_ratio_by_k"].items():
        lines.append(f"| {k} | " + " | ".join(f"{v:.3f}" for v in ratios.values()) + " |")
    lines += [
        "",
        "![error vs number of prompts](kwise_vs_pairwise.png)",
        "",
        "## Findings (computed from the table)",
        "",
    ]
    lines += [f"* {f}" for f in findings(result, summary)] + [""]
    return "\n".join(lines)


def findings(result: dict, summary: dict) -> list[str]:
    """Plain statements of what the numbers show, computed (so a rerun with other settings stays truthful)."""
    cfg, cells = result["config"], summary["cells"]
    est, out = cfg["estimators"], []
    if "kwise" in est and "split" in est:
        if 2 in cfg["ks"]:
            diff = max(
                abs(a - b)
                for n in cfg["ns"]
                for a, b in zip(result["errors"]["kwise"]["2"][str(n)], result["errors"]["split"]["2"][str(n)])
            )
            out.append(f"K = 2: (a) and (b) are the same estimator (largest difference over all repeats {diff:.1e}).")
        big = [c for c in cells if c["K"] >= 3]
        if big:
            wins = sum(c["kwise"] < c["split"] for c in big)
            ratios = [v["split/kwise"] for k, v in summary["mean_ratio_by_k"].items() if int(k) >= 3]
            above = sum(r > 1 for r in ratios)
            out.append(
                f"K ≥ 3: (a) has the lower mean error in {wins} of {len(big)} (K, n) cells. Averaged over n, "
                f"(b)/(a) is {min(ratios):.3f} to {max(ratios):.3f} by K ({above} of {len(ratios)} values of K "
                "above 1)."
            )
            losses = [
                (c["kwise"] - c["split"]) / max(c["kwise_se"] or 0, c["split_se"] or 0, 1e-12)
                for c in big
                if c["kwise"] >= c["split"]
            ]
            if losses:
                out.append(
                    f"In the {len(losses)} cells where (b) is not worse, (a) trails by at most "
                    f"{max(losses):.2f} standard errors."
                )
        slopes = [summary["slopes"][e][str(k)] for e in ("kwise", "split") for k in cfg["ks"]]
        out.append(
            f"Consistency: log mean error vs log n has slope {min(slopes):.2f} to {max(slopes):.2f} for (a) "
            "and (b) (the n^-1/2 rate is −0.5)."
        )
    if "shuffled" in est and "grouped" in est:
        big = [c for c in cells if c["K"] >= 3]
        wins = sum(c["shuffled"] < c["grouped"] for c in big)
        out.append(
            f"(c) vs (c'), same optimiser, steps and pairs per step: shuffled pairs have the lower mean error "
            f"in {wins} of {len(big)} cells with K ≥ 3."
        )
    if "shuffled" in est and "split" in est:
        worse = [c for c in cells if c["shuffled"] > c["split"]]
        better = [f"K={c['K']} n={c['n']}" for c in cells if c["shuffled"] <= c["split"]]
        out.append(
            f"(c) vs (b): SGD on shuffled pairs ends further from θ* than the exact minimiser of the same "
            f"pairwise objective in {len(worse)} of {len(cells)} cells"
            + (f"; closer in {'; '.join(better)}." if better else ".")
        )
    return out


def plot(result: dict, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    cfg, errors = result["config"], result["errors"]
    ks, ns = cfg["ks"], cfg["ns"]
    cols = min(4, len(ks))
    rows = math.ceil(len(ks) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False, sharey=True)
    for ax, k in zip(axes.flat, ks):
        for e in cfg["estimators"]:
            m = np.array([mean(errors[e][str(k)][str(n)]) for n in ns])
            se = np.array([np.std(errors[e][str(k)][str(n)], ddof=1) / math.sqrt(cfg["repeats"]) for n in ns])
            ax.errorbar(ns, m, yerr=se, marker="o", ms=3, capsize=2, label=LABELS[e])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"K = {k}")
        ax.grid(True, which="both", alpha=0.3)
    for ax in axes.flat[len(ks) :]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("prompts n")
    for ax in axes[:, 0]:
        ax.set_ylabel("‖θ̂ − θ*‖")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ks", type=int, nargs="+", default=list(range(2, 10)))
    p.add_argument("--ns", type=int, nargs="+", default=[100, 200, 400, 800, 1600, 3200])
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--d", type=int, default=8)
    p.add_argument("--theta-norm", type=float, default=2.0)
    p.add_argument("--sgd-epochs", type=int, default=5)
    p.add_argument("--batch-prompts", type=int, default=16)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--quick", action="store_true", help="K in {2, 5, 9}, n up to 800, 4 repeats")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = p.parse_args(argv)
    if args.quick:
        args.ks, args.ns, args.repeats = [2, 5, 9], [100, 200, 400, 800], 4
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    result = run_study(
        args.ks,
        args.ns,
        args.repeats,
        args.seed,
        args.d,
        args.theta_norm,
        args.sgd_epochs,
        args.batch_prompts,
        args.lr,
        log=lambda m: print(m, file=sys.stderr, flush=True),
    )
    seconds = time.perf_counter() - t0
    summary = summarise(result)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python experiments/kwise_vs_pairwise.py" + (
        "" if argv is None and len(sys.argv) == 1 else " " + " ".join(argv if argv is not None else sys.argv[1:])
    )
    result.update(
        summary=summary,
        command=command,
        seconds=round(seconds, 1),
        versions={"torch": torch.__version__, "numpy": np.__version__},
    )
    (out / "kwise_vs_pairwise.json").write_text(json.dumps(result, indent=1))
    (out / "kwise_vs_pairwise.md").write_text(markdown(result, summary, command, seconds))
    plotted = plot(result, out / "kwise_vs_pairwise.png")
    print((out / "kwise_vs_pairwise.md").read_text())
    print(f"wrote {out}/kwise_vs_pairwise.{{json,md{',png' if plotted else ''}}}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
