"""Training curves for reports: the rows of a run's ``metrics.jsonl`` (training loss and accuracy every
``log_every`` steps, held-out accuracy at each ``eval_every`` and at the end), as a small Markdown table and a
plot. A model directory ``runs/x/model`` finds them in ``runs/x/metrics.jsonl``.
"""

from __future__ import annotations

import json
from pathlib import Path

METRICS_FILE = "metrics.jsonl"
# "accuracy" and "eval_accuracy" are both pair accuracies (strict pairs; ties count for neither)
SERIES = (("loss", "training loss"), ("accuracy", "training accuracy"), ("eval_accuracy", "held-out accuracy"))
MAX_TABLE_ROWS = 12


def find_metrics(path: str | Path | None) -> Path | None:
    """``metrics.jsonl`` in ``path`` or its parent (a run directory, or a model directory inside one)."""
    if not path:
        return None
    p = Path(path)
    for d in (p, p.parent):
        if (d / METRICS_FILE).is_file():
            return d / METRICS_FILE
    return None


def read_curves(path: str | Path | None) -> list[dict]:
    """The rows of the ``metrics.jsonl`` that :func:`find_metrics` finds (``[]`` when none or unreadable)."""
    found = find_metrics(path)
    if found is None:
        return []
    rows = []
    try:
        for line in found.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                if isinstance(row, dict) and isinstance(row.get("step"), (int, float)):
                    rows.append(row)
    except (OSError, ValueError):
        return []
    return rows


def series(rows: list[dict], key: str) -> tuple[list[float], list[float]]:
    """(steps, values) of one metric, in step order, skipping rows without it."""
    pts = sorted((r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float)))
    return [p[0] for p in pts], [p[1] for p in pts]


def curve_table(rows: list[dict]) -> tuple[list[str], list[list]] | None:
    """Header and at most ``MAX_TABLE_ROWS`` rows (evenly spaced, the last included) of step / loss / accuracies."""
    keys = [k for k, _ in SERIES if series(rows, k)[0]]
    if not keys:
        return None
    steps = sorted({r["step"] for r in rows if any(isinstance(r.get(k), (int, float)) for k in keys)})
    if len(steps) > MAX_TABLE_ROWS:
        stride = (len(steps) - 1) / (MAX_TABLE_ROWS - 1)
        steps = sorted({steps[round(i * stride)] for i in range(MAX_TABLE_ROWS)})
    by_step: dict = {}
    for r in rows:
        by_step.setdefault(r["step"], {}).update({k: r[k] for k in keys if isinstance(r.get(k), (int, float))})
    header = ["step", *(label for k, label in SERIES if k in keys)]
    return header, [[s, *(by_step.get(s, {}).get(k) for k in keys)] for s in steps]


def curves_figure(curves: dict[str, list[dict]]):
    """One matplotlib figure: loss (left axis panel) and accuracies (right panel) against step, per column."""
    from matplotlib.figure import Figure

    if not any(series(rows, k)[0] for rows in curves.values() for k, _ in SERIES):
        return None
    fig = Figure(figsize=(10, 3.6))
    ax_loss, ax_acc = fig.subplots(1, 2)
    for name, rows in curves.items():
        prefix = f"{name}: " if len(curves) > 1 else ""
        x, y = series(rows, "loss")
        if x:
            ax_loss.plot(x, y, label=f"{prefix}training loss")
        for key, label, style in (
            ("accuracy", "training accuracy", "-"),
            ("eval_accuracy", "held-out accuracy", "o--"),
        ):
            x, y = series(rows, key)
            if x:
                ax_acc.plot(x, y, style, label=prefix + label)
    ax_loss.set_title("Training loss")
    ax_acc.set_title("Accuracy")
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    ax_acc.set_ylim(0, 1.02)
    fig.tight_layout()
    return fig
