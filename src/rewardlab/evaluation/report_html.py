"""``report.html``: one self-contained page with the report's tables and plots.

Nothing is loaded from elsewhere: styles are inline and every plot is a PNG embedded as base64
(``<img src="data:image/png;base64,...">``), drawn with matplotlib's object API (no pyplot, no global
backend change). The plots:

* **per-subset scores** of every column (model) side by side, with bootstrap 95% intervals — the
  benchmark's subsets when the results carry a benchmark, else per-source accuracy — and the overall
  number first: the one plot that compares the models;
* **reward histograms**, chosen vs rejected responses, one panel per column;
* a **reliability diagram** of ``σ(Δr)``: per probability bin, the mean predicted probability against
  how often the first response of a randomly oriented pair was the preferred one
  (:func:`rewardlab.metrics.calibration.calibration`), one line per column, ECE in the legend;
* **reward vs length** (characters) of every response, one panel per column, with Pearson r and
  Spearman ρ in the title.

Histograms and the scatter need per-example rows (``scores``, ``chosen``, ``lengths``); without them, or
without matplotlib, the page says which plots are missing and why.
"""

from __future__ import annotations

import base64
import html
import io
import math
import shlex
from typing import Any

import numpy as np

from rewardlab.core.cells import MISSING, _get, fmt
from rewardlab.evaluation.bars import grouped_barh
from rewardlab.evaluation.curves import curves_figure
from rewardlab.metrics.statistics import length_correlation
from rewardlab.multiobjective.report import fig_gate_by_source, gate_columns
from rewardlab.probes.report import fig_bias_profile, probe_names

__all__ = ["render_html", "make_figures"]

MAX_SCATTER = 4000
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1140px;color:#222;padding:0 16px}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0;font-size:.92em}th,td{border:1px solid #ddd;padding:4px 8px;vertical-align:top}
th{background:#f4f6f8;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:12px 0 24px}figure img{max-width:100%;border:1px solid #eee}figcaption{font-size:.9em;color:#555;margin-top:4px}
p.small,li.small{font-size:.9em;color:#444}code{background:#f4f6f8;padding:1px 4px;border-radius:3px}
.missing{color:#a33}
"""


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", facecolor="white")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _num(x: Any) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


# ----------------------------------------------------------------------------------------------
# plot data


def _subset_values(results: dict[str, dict]) -> tuple[str, list[str], dict[str, dict[str, tuple]]]:
    """(what, group names, {column: {group: (value, low, high)}})."""
    benchmark = any(isinstance(_get(r, "benchmark"), dict) for r in results.values())
    values: dict[str, dict[str, tuple]] = {}
    groups: dict[str, None] = {}
    for column, result in results.items():
        row: dict[str, tuple] = {}
        if benchmark:
            bench = _get(result, "benchmark") or {}
            head = bench.get("headline") or {}
            if head:
                label, value = next(iter(head.items()))
                row[label if label.lower().startswith("overall") else f"overall: {label}"] = (_num(value), None, None)
            entries = [(name, e.get("score"), e.get("ci95")) for name, e in (bench.get("subsets") or {}).items()]
        else:
            ci = result.get("accuracy_ci95") or [None, None]
            row["overall accuracy"] = (_num(result.get("accuracy")), _num(ci[0]), _num(ci[1]))
            entries = [
                (name or "(no source)", e.get("accuracy"), e.get("ci95"))
                for name, e in (result.get("per_source") or {}).items()
            ]
        for name, value, ci in entries:
            ci = ci if isinstance(ci, (list, tuple)) and len(ci) == 2 else [None, None]
            row[str(name)] = (_num(value), _num(ci[0]), _num(ci[1]))
        for name in row:
            groups.setdefault(name, None)
        values[column] = row
    what = "benchmark score" if benchmark else "accuracy"
    return what, list(groups), values


def _pairs(rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    chosen, rejected = [], []
    for row in rows:
        scores = row.get("scores") or []
        c = row.get("chosen")
        if not row.get("pairwise", True) or c is None or not 0 <= int(c) < len(scores):
            continue
        chosen.append(float(scores[int(c)]))
        rejected += [float(s) for j, s in enumerate(scores) if j != int(c)]
    return np.asarray(chosen, dtype=np.float64), np.asarray(rejected, dtype=np.float64)


def _reward_lengths(rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    rewards, lengths = [], []
    for row in rows:
        scores, lens = row.get("scores") or [], row.get("lengths") or []
        if len(scores) == len(lens):
            rewards += [float(s) for s in scores]
            lengths += [float(n) for n in lens]
    return np.asarray(rewards, dtype=np.float64), np.asarray(lengths, dtype=np.float64)


# ----------------------------------------------------------------------------------------------
# figures


def _fig_subsets(results: dict[str, dict]):
    from matplotlib.figure import Figure  # lazy: matplotlib is an optional dependency

    what, groups, values = _subset_values(results)
    if not groups:
        return None
    columns = list(results)
    n_g, n_c = len(groups), len(columns)
    height = 0.32 * n_g * max(1, n_c) ** 0.5 + 1.4
    fig = Figure(figsize=(10, min(max(height, 2.6), 30)), layout="constrained")
    ax = fig.subplots()
    grouped_barh(ax, groups, columns, values, PALETTE)
    ax.set_yticklabels(groups, fontsize=8)
    top = [x for c in values.values() for v in c.values() for x in (v[0], v[2]) if x is not None]
    ax.set_xlim(min(0.0, *top) if top else 0.0, max(1.0, *top) if top else 1.0)
    ax.axvline(0.5, color="#999", lw=0.8, ls="--")
    ax.set_xlabel(f"{what} (bars: bootstrap 95% interval)")
    ax.set_title(f"Per-subset {what} by model")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def _panel_grid(n: int, panel_height: float):
    """A figure of ``n`` small panels, three to a row; returns it and its ``n`` axes (the grid's spare ones hidden)."""
    from matplotlib.figure import Figure  # lazy: matplotlib is an optional dependency

    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(3.6 * cols + 0.6, panel_height * rows + 0.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def _fig_histograms(examples: dict[str, list[dict]], columns: list[str]):
    panels = [(c, *_pairs(examples[c])) for c in columns if c in examples]
    panels = [p for p in panels if p[1].size and p[2].size]
    if not panels:
        return None
    fig, axes = _panel_grid(len(panels), 3.0)
    for ax, (column, chosen, rejected) in zip(axes, panels):
        both = np.concatenate([chosen, rejected])
        lo, hi = float(both.min()), float(both.max())
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        bins = np.linspace(lo, hi, 31)
        ax.hist(rejected, bins=bins, alpha=0.55, color="#d62728", label=f"rejected (n={rejected.size})", density=True)
        ax.hist(chosen, bins=bins, alpha=0.55, color="#2ca02c", label=f"chosen (n={chosen.size})", density=True)
        ax.set_title(column, fontsize=10)
        ax.set_xlabel("reward")
        ax.legend(fontsize=7)
    fig.suptitle("Reward histograms: chosen vs rejected", fontsize=11)
    return fig


def _fig_reliability(results: dict[str, dict]):
    from matplotlib.figure import Figure  # lazy: matplotlib is an optional dependency

    lines = []
    for k, (column, result) in enumerate(results.items()):
        bins = _get(result, "calibration", "bins") or []
        pts = [
            (b["mean_p"], b["mean_label"], b["count"])
            for b in bins
            if isinstance(b, dict) and b.get("mean_p") is not None and b.get("mean_label") is not None
        ]
        if pts:
            lines.append((k, column, pts, _get(result, "calibration", "ece")))
    if not lines:
        return None
    fig = Figure(figsize=(5.6, 5.0), layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="#999", ls="--", lw=1, label="perfect calibration")
    for k, column, pts, ece in lines:
        xs, ys, ns = zip(*pts)
        total = sum(ns)
        sizes = [20 + 300 * n / total for n in ns]
        ece_text = "—" if ece is None else f"{ece:.3f}"
        ax.plot(xs, ys, color=PALETTE[k % len(PALETTE)], lw=1.2, label=f"{column} (ECE {ece_text})")
        ax.scatter(xs, ys, s=sizes, color=PALETTE[k % len(PALETTE)], alpha=0.7, edgecolor="white")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("predicted P(first is preferred) = σ(r_first − r_second), bin mean")
    ax.set_ylabel("observed frequency the first is preferred")
    ax.set_title("Reliability diagram of σ(Δr) (marker size ∝ pairs in bin)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    return fig


def _fig_length(examples: dict[str, list[dict]], results: dict[str, dict], columns: list[str]):
    panels = []
    for column in columns:
        if column not in examples:
            continue
        rewards, lengths = _reward_lengths(examples[column])
        if rewards.size:
            corr = _get(results.get(column), "length_correlation") or length_correlation(rewards, lengths)
            panels.append((column, rewards, lengths, corr))
    if not panels:
        return None
    fig, axes = _panel_grid(len(panels), 3.1)
    rng = np.random.default_rng(0)
    for k, (ax, (column, rewards, lengths, corr)) in enumerate(zip(axes, panels)):
        idx = np.arange(rewards.size)
        if idx.size > MAX_SCATTER:
            idx = np.sort(rng.choice(idx, MAX_SCATTER, replace=False))
        ax.scatter(lengths[idx], rewards[idx], s=6, alpha=0.35, color=PALETTE[k % len(PALETTE)], edgecolor="none")
        p, s = _num(corr.get("pearson")), _num(corr.get("spearman"))
        ptxt = "—" if p is None else f"{p:+.2f}"
        stxt = "—" if s is None else f"{s:+.2f}"
        ax.set_title(f"{column}: Pearson r {ptxt}, Spearman ρ {stxt}", fontsize=9)
        ax.set_xlabel("response length (characters)")
        ax.set_ylabel("reward")
        if lengths.size and lengths.max() > 50 * max(lengths.min(), 1):
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
    fig.suptitle("Reward vs response length", fontsize=11)
    return fig


def make_figures(results: dict[str, dict], examples: dict[str, list[dict]] | None = None) -> list[dict]:
    """``[{id, title, caption, png (base64) | None, missing (why) | None}]`` in page order."""
    examples = examples or {}
    columns = list(results)
    specs = [
        (
            "subsets",
            "Per-subset scores, all models",
            "Each bar is one model; the whiskers are bootstrap 95% intervals; the first group is the overall number.",
            lambda: _fig_subsets(results),
            None,
        ),
        (
            "histograms",
            "Reward histograms: chosen vs rejected",
            "Density of the reward given to preferred (green) and other (red) responses.",
            lambda: _fig_histograms(examples, columns),
            "per-example rewards",
        ),
        (
            "reliability",
            "Reliability diagram of σ(Δr)",
            "Pairs randomly oriented, binned by predicted probability; a calibrated model lies on the diagonal.",
            lambda: _fig_reliability(results),
            "calibration bins",
        ),
        (
            "length",
            "Reward vs response length",
            "Every response; a strong correlation is a sign of length bias.",
            lambda: _fig_length(examples, results, columns),
            "per-example rewards and lengths",
        ),
    ]
    if probe_names(results):  # `eval --probes`
        specs.append(
            (
                "bias",
                "Bias profile",
                "Per probe, the share of pairs in which each model prefers the biased "
                "variant (whiskers: Wilson 95% intervals); 0.5 = cannot tell, lower is better.",
                lambda: fig_bias_profile(results),
                "bias profile",
            )
        )
    if gate_columns(results):  # multi-objective models with a gate (rewardlab.multiobjective.report)
        specs.append(
            (
                "gate",
                "Mean gate weight by prompt source",
                "Per prompt source, the mean weight the learned "
                "gate gives each attribute (weights sum to 1 over the attributes).",
                lambda: fig_gate_by_source(results),
                "gate weights",
            )
        )
    try:
        import matplotlib  # lazy: matplotlib is an optional dependency  # noqa: F401
    except ImportError:
        return [
            {
                "id": i,
                "title": t,
                "caption": c,
                "png": None,
                "missing": "matplotlib is not installed (pip install 'rewardlab[plots]')",
            }
            for i, t, c, _, _ in specs
        ]
    out = []
    for fig_id, title, caption, make, needs in specs:
        fig = make()
        if fig is None:
            out.append(
                {
                    "id": fig_id,
                    "title": title,
                    "caption": caption,
                    "png": None,
                    "missing": f"no {needs or 'data'} for this plot",
                }
            )
        else:
            out.append({"id": fig_id, "title": title, "caption": caption, "png": _png(fig), "missing": None})
    return out


# ----------------------------------------------------------------------------------------------
# page


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _table_html(header: list[str], rows: list[list[Any]], numeric: bool = True) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            cls = ' class="num"' if numeric and i > 0 else ""
            cells.append(f"<td{cls}>{_e(cell)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _provenance_html(prov: dict) -> str:
    command = prov.get("command")
    if isinstance(command, (list, tuple)):
        command = shlex.join(str(c) for c in command)
    git = prov.get("git")
    git_text = MISSING
    if isinstance(git, dict) and git.get("commit"):
        git_text = str(git["commit"]) + (" (dirty: uncommitted changes)" if git.get("dirty") else "")
    items = [
        ("Command", command or MISSING),
        ("Time (UTC)", prov.get("timestamp_utc") or MISSING),
        ("Git commit", git_text),
        ("Data fingerprint", prov.get("data_fingerprint") or MISSING),
        ("Platform", prov.get("platform") or MISSING),
    ]
    parts = ["<ul>"] + [f'<li class="small"><b>{_e(k)}:</b> <code>{_e(v)}</code></li>' for k, v in items] + ["</ul>"]
    versions = prov.get("versions") or {}
    if versions:
        parts.append(_table_html(["package", "version"], [[k, fmt(v)] for k, v in versions.items()], numeric=False))
    tok = prov.get("tokenizer")
    if isinstance(tok, dict):
        parts.append(
            f'<p class="small">Tokenizer: {_e(tok.get("class") or MISSING)} '
            f"<code>{_e(tok.get('name_or_path') or '')}</code>; chat template sha256: "
            f"<code>{_e(tok.get('chat_template_sha256') or MISSING)}</code></p>"
        )
    return "\n".join(parts)


def _curve_figures(curves: dict[str, list[dict]] | None, note: str | None = None) -> list[dict]:
    """The training-curves plot (first on the page) when the report has a run's metrics.jsonl rows; ``note``
    (report.json ``curves_note``) leads its caption and marks the title (the model's own training run)."""
    if not curves:
        return []
    title, caption = (
        "Training curves" + (" (the model's own training run)" if note else ""),
        (
            (f"{note} " if note else "") + "Training loss and accuracy (every log_every steps) and held-out accuracy "
            "(at each eval_every and at the end), from the run's metrics.jsonl."
        ),
    )
    try:
        fig = curves_figure(curves)
    except ImportError:
        return [
            {
                "id": "curves",
                "title": title,
                "caption": caption,
                "png": None,
                "missing": "matplotlib is not installed (pip install 'rewardlab[plots]')",
            }
        ]
    if fig is None:
        return []
    return [{"id": "curves", "title": title, "caption": caption, "png": _png(fig), "missing": None}]


def render_html(payload: dict, examples: dict[str, list[dict]] | None, tables: list[dict]) -> str:
    """The page for ``payload`` = ``{"title", "results", "notes", "provenance"}`` (as in report.json), with the
    report's ``tables`` (:func:`rewardlab.evaluation.report.report_tables` of its results)."""
    results = payload.get("results") or {}
    title = str(payload.get("title") or "rewardlab report")
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="small">Columns: {_e(", ".join(results))}. Everything on this page is embedded; '
        "the numbers are also in <code>report.json</code> and <code>report.md</code>.</p>",
    ]
    figures = make_figures(results, examples)
    first = [t for t in tables if t["heading"] == "Summary" or t["heading"].startswith("Benchmark")]
    rest = [t for t in tables if t not in first]
    for table in first:
        body.append(f"<h2>{_e(table['heading'])}</h2>")
        body.append(_table_html(table["header"], table["rows"], numeric=table.get("numeric", True)))
        body += [f'<p class="small">{_e(t)}</p>' for t in table["text"]]
    body.append("<h2>Plots</h2>")
    figures = _curve_figures(payload.get("curves"), payload.get("curves_note")) + figures
    for fig in figures:
        if fig["png"]:
            body.append(
                f'<figure id="plot-{_e(fig["id"])}" data-plot="{_e(fig["id"])}">'
                f'<img alt="{_e(fig["title"])}" src="data:image/png;base64,{fig["png"]}">'
                f"<figcaption><b>{_e(fig['title'])}.</b> {_e(fig['caption'])}</figcaption></figure>"
            )
        else:
            body.append(
                f'<p class="small missing" data-missing-plot="{_e(fig["id"])}">{_e(fig["title"])}: '
                f"{_e(fig['missing'])}.</p>"
            )
    for table in rest:
        body.append(f"<h2>{_e(table['heading'])}</h2>")
        body.append(_table_html(table["header"], table["rows"], numeric=table.get("numeric", True)))
        body += [f'<p class="small">{_e(t)}</p>' for t in table["text"]]
    notes = payload.get("notes") or []
    if notes:
        body.append("<h2>Notes</h2><ul>" + "".join(f'<li class="small">{_e(n)}</li>' for n in notes) + "</ul>")
    body.append("<h2>Provenance</h2>")
    body.append(_provenance_html(payload.get("provenance") or {}))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
