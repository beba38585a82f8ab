"""Evaluation of K-output models: per-attribute regression fit, pairwise accuracy under each scaliser, length bias.

* :func:`attribute_metrics` — per attribute, on the rated rows only: MSE, Pearson, Spearman (scipy).
* :func:`regression_eval_row` — the held-out keys of a regression run's ``metrics.jsonl`` row, from those.
* :func:`pair_accuracy` — share of pairs where the chosen response scores higher (ties count ½), with a 95%
  Wilson interval.
* :func:`length_correlation` — Spearman of score against response length in characters.
* :func:`mean_gate_by_source` — mean gate weight per attribute for each prompt source (and a PNG bar chart).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from scipy.stats import pearsonr

from rewardlab.multiobjective.debias import spearman


def _safe(f, a, b) -> float | None:
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(f(a, b))


def attribute_metrics(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, attributes: list[str]) -> dict:
    out = {}
    for k, name in enumerate(attributes):
        rows = mask[:, k] > 0
        p, t = pred[rows, k].double().numpy(), target[rows, k].double().numpy()
        out[name] = {
            "n": int(rows.sum()),
            "mse": float(((p - t) ** 2).mean()) if len(p) else None,
            "pearson": _safe(lambda a, b: pearsonr(a, b).statistic, p, t),
            "spearman": _safe(spearman, p, t),
        }
    return out


def regression_eval_row(per_attribute: dict, n_rows: int) -> dict:
    """The ``metrics.jsonl`` keys of a held-out evaluation of a K-output model (``--eval-every``), from
    :func:`attribute_metrics`' dict over ``n_rows`` held-out rows:

    * ``eval_loss`` — the masked MSE over all held-out labels (the training ``loss``, on the held-out rows):
      ``Σ_k n_k·mse_k / Σ_k n_k``; None when no row is rated;
    * ``eval_mse`` — the mean over attributes (those with a label) of the per-attribute MSE;
    * ``eval_pearson_mean`` — the mean of the per-attribute Pearson r where it is defined (None where none is);
    * ``eval_n`` — ``n_rows``;
    * ``eval_attributes`` — ``per_attribute`` itself (``{attribute: {n, mse, pearson, spearman}}``, what
      ``train_summary.json``'s ``held_out`` holds at the end).
    """
    rated = [m for m in per_attribute.values() if m["n"]]
    pearson = [m["pearson"] for m in per_attribute.values() if m["pearson"] is not None]
    labels = sum(m["n"] for m in rated)
    return {
        "eval_loss": sum(m["n"] * m["mse"] for m in rated) / labels if labels else None,
        "eval_mse": sum(m["mse"] for m in rated) / len(rated) if rated else None,
        "eval_pearson_mean": sum(pearson) / len(pearson) if pearson else None,
        "eval_n": n_rows,
        "eval_attributes": per_attribute,
    }


def wilson(successes: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval for a proportion (``successes`` may hold ½ for ties)."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def pair_accuracy(chosen: torch.Tensor, rejected: torch.Tensor) -> dict:
    """chosen, rejected ``(P,)`` scores → ``{"accuracy", "ci95", "n"}``: strict, a tie counts as a loss (eval's
    default tie policy, so this agrees with the report's headline accuracy)."""
    wins = float((chosen > rejected).sum())
    n = len(chosen)
    return {"accuracy": wins / n if n else None, "ci95": list(wilson(wins, n)), "n": n}


def score_stats(scores: torch.Tensor) -> dict:
    """``{"mean", "std", "n", "source"}`` of scores ``(N,)`` (population std), as ``rewardlab.json``'s ``normalization``."""
    x = scores.double()
    return {
        "mean": float(x.mean()),
        "std": float(x.std(unbiased=False)),
        "n": int(x.numel()),
        "source": "held-out split responses",
    }


def length_correlation(scores: torch.Tensor, responses: list[str]) -> float:
    return spearman(scores.double().numpy(), [len(r) for r in responses])


def mean_gate_by_source(
    gate: torch.Tensor, sources: list[str], attributes: list[str], plot: str | Path | None = None
) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for s in sorted(set(sources)):
        rows = torch.tensor([x == s for x in sources])
        out[s] = dict(zip(attributes, gate[rows].mean(0).tolist()))
    if plot is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(1.6 + 1.2 * len(out), 3.2))
        width = 0.8 / len(attributes)
        for k, a in enumerate(attributes):
            ax.bar([i + k * width for i in range(len(out))], [out[s][a] for s in out], width, label=a)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(out))], list(out))
        ax.set_ylabel("mean gate weight")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(plot, dpi=100)
        plt.close(fig)
    return out
