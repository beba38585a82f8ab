"""The best-of-N report: ``scores.jsonl`` (every sample's proxy and gold scores), ``report.json`` (all numbers,
each with how it was made), ``report.md`` and ``report.html`` (the tables and plots, in the style of eval's
report: :mod:`rewardlab.evaluation.report_html`'s page styles, embedded PNGs, provenance).

Plots: gold vs √KL (with the Gao fit), gold vs n, proxy vs n and proxy vs √KL, one line per scorer (each proxy
and each ensemble) with its bootstrap 95% band, and gold vs n per task. Every √KL axis names the KL it uses.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from rewardlab.bon.kl import KL_METHODS
from rewardlab.core.atomic import atomic_write_text
from rewardlab.core.cells import fmt
from rewardlab.core.jsonstrict import dumps_strict
from rewardlab.core.provenance import provenance
from rewardlab.evaluation.report_html import _CSS, PALETTE, _e, _png, _provenance_html, _table_html
from rewardlab.scoring.sharding import is_main_process

KL_AXIS = {"bound": "√KL, KL = log n − (n−1)/n (bound)", "estimate": "√KL, KL = Beirami et al. estimate"}


def _ci(value, ci) -> str:
    if ci is None:
        return fmt(value)
    return f"{fmt(value)} [{fmt(ci[0])}, {fmt(ci[1])}]"


def summary_rows(results: dict) -> list[list[str]]:
    """One row per scorer: gold at n = 1, the best gold and its n, gold and proxy at the largest n, the Gao fit."""
    rows = []
    ns = results["ns"]
    for name, e in results["scorers"].items():
        c, g = e["curve"], e.get("gao", {})
        best = int(np.argmax(c["gold"]))
        gao = "—" if "skipped" in g else f"α {fmt(g['alpha'])}, β {fmt(g['beta'])}"
        if "skipped" in g:
            nstar = g["skipped"]
        elif g["n_star"] is not None:
            nstar = fmt(g["n_star"]) + (
                f" [{fmt(g['n_star_ci'][0])}, {fmt(g['n_star_ci'][1])}]" if g["n_star_ci"] else ""
            )
        else:
            nstar = g["shape"]
        if "skipped" not in g and g.get("inside_share") is not None:
            # the interval is over the resamples that peak inside the measured n only: say how many those are
            nstar += f"; {g['inside_share']:.0%} of resamples peak inside the measured n"
        rows.append(
            [
                name,
                _ci(c["gold"][0], c["gold_ci"][0] if c["gold_ci"] else None),
                f"{fmt(c['gold'][best])} (n = {ns[best]})",
                _ci(c["gold"][-1], c["gold_ci"][-1] if c["gold_ci"] else None),
                _ci(c["proxy"][-1], c["proxy_ci"][-1] if c["proxy_ci"] else None),
                gao,
                nstar,
            ]
        )
    return rows


SUMMARY_HEADER = [
    "scorer",
    "gold, n = 1",
    "best gold (n)",
    "gold, largest n",
    "proxy, largest n",
    "Gao fit",
    "n* [95%]",
]


def curve_rows(results: dict) -> tuple[list[str], list[list[str]]]:
    names = list(results["scorers"])
    first = results["scorers"][names[0]]["kl"]
    header = ["n", "KL bound", "KL estimate"] + [f"gold: {n}" for n in names] + [f"proxy: {n}" for n in names]
    rows = []
    for k, n in enumerate(results["ns"]):
        row = [str(n), fmt(first["bound"][k]), fmt(first["estimate"][k])]
        for name in names:
            c = results["scorers"][name]["curve"]
            row.append(_ci(c["gold"][k], c["gold_ci"][k] if c["gold_ci"] else None))
        for name in names:
            c = results["scorers"][name]["curve"]
            row.append(_ci(c["proxy"][k], c["proxy_ci"][k] if c["proxy_ci"] else None))
        rows.append(row)
    return header, rows


def notes(results: dict) -> list[str]:
    first = next(iter(results["scorers"].values()))
    f = results["gold_failures"]
    out = [
        f"Estimator: {first['curve']['estimator']}.",
        f"Aggregation: {first['curve']['aggregation']}; intervals: {first['curve']['interval'] or 'none (--n-boot 0)'}.",
        f"Gold: {results['gold']}. Gold failures: {f['samples']} samples, {f['prompts_left_out']} prompts left out "
        f"({results['n_prompts_analysed']} of {results['n_prompts']} analysed); rule: {f['rule']}.",
        f"KL on the √KL axes and in the Gao fit: {results['kl_plotted']} = {KL_METHODS[results['kl_plotted']]}. "
        f"KL estimate: {KL_METHODS['estimate']}.",
    ]
    g = first.get("gao", {})
    if "fit" in g:
        out.append(f"Gao fit: {g['fit']}; interval: {g['interval'] or 'none'}.")
    for name, e in results["scorers"].items():
        out.append(f"{name}: {e['made_by']}.")
    return out


def _band(ax, x, c, key, color, label):
    ax.plot(x, c[key], marker="o", ms=3, color=color, label=label)
    if c.get(f"{key}_ci"):
        ci = np.asarray(c[f"{key}_ci"], dtype=float)
        ax.fill_between(x, ci[:, 0], ci[:, 1], color=color, alpha=0.15, lw=0)


def make_figures(results: dict) -> list[dict]:
    """``[{id, title, caption, png | None, missing}]``."""
    try:
        from matplotlib.figure import Figure  # lazy: matplotlib is an optional dependency
    except ImportError:
        return [
            {
                "id": "bon",
                "title": "Best-of-n plots",
                "caption": "",
                "png": None,
                "missing": "matplotlib is not installed (pip install 'rewardlab[plots]')",
            }
        ]
    ns = np.asarray(results["ns"], dtype=float)
    kl = results["kl_plotted"]
    figs = []

    fig = Figure(figsize=(11, 4), layout="constrained")
    a1, a2 = fig.subplots(1, 2)
    for i, (name, e) in enumerate(results["scorers"].items()):
        color = PALETTE[i % len(PALETTE)]
        d = np.sqrt(np.asarray(e["kl"][kl], dtype=float))
        _band(a1, d, e["curve"], "gold", color, name)
        g = e.get("gao", {})
        if "alpha" in g:
            dd = np.linspace(0, d.max(), 100)
            a1.plot(dd, e["curve"]["gold"][0] + dd * (g["alpha"] - g["beta"] * dd), ls="--", lw=1, color=color)
        _band(a2, ns, e["curve"], "gold", color, name)
    a1.set(xlabel=KL_AXIS[kl], ylabel="gold reward of best-of-n", title="gold vs √KL (dashed: Gao fit)")
    a2.set(xscale="log", xlabel="n (log scale)", ylabel="gold reward of best-of-n", title="gold vs n")
    a2.set_xticks(ns, [str(int(n)) for n in ns])
    a2.minorticks_off()
    a1.legend(fontsize=8)
    figs.append(
        {
            "id": "gold",
            "title": "Gold reward of best-of-n",
            "caption": f"Mean over prompts of the unbiased estimate, bootstrap 95% band over prompts. Left: against √KL ({KL_METHODS[kl]}), the Gao fit gold(1) + d(α − βd) dashed; right: against n.",
            "png": _png(fig),
            "missing": None,
        }
    )

    fig = Figure(figsize=(11, 4), layout="constrained")
    a1, a2 = fig.subplots(1, 2)
    for i, (name, e) in enumerate(results["scorers"].items()):
        color = PALETTE[i % len(PALETTE)]
        d = np.sqrt(np.asarray(e["kl"][kl], dtype=float))
        _band(a1, d, e["curve"], "proxy", color, name)
        _band(a2, ns, e["curve"], "proxy", color, name)
    a1.set(xlabel=KL_AXIS[kl], ylabel="proxy score of best-of-n", title="proxy vs √KL")
    a2.set(xscale="log", xlabel="n (log scale)", ylabel="proxy score of best-of-n", title="proxy vs n")
    a2.set_xticks(ns, [str(int(n)) for n in ns])
    a2.minorticks_off()
    a1.legend(fontsize=8)
    figs.append(
        {
            "id": "proxy",
            "title": "Proxy score of best-of-n",
            "caption": "Each scorer's own score of the sample it picks (ensembles: the combined score), mean over prompts, bootstrap 95% band.",
            "png": _png(fig),
            "missing": None,
        }
    )

    tasks = sorted({t for e in results["scorers"].values() for t in e.get("by_task", {})})
    if tasks:
        cols = min(3, len(tasks))
        rows = -(-len(tasks) // cols)
        fig = Figure(figsize=(11, 3.2 * rows), layout="constrained")
        axes = np.atleast_1d(fig.subplots(rows, cols)).reshape(-1)
        for ax, t in zip(axes, tasks):
            for i, (name, e) in enumerate(results["scorers"].items()):
                if t in e.get("by_task", {}):
                    _band(ax, ns, e["by_task"][t], "gold", PALETTE[i % len(PALETTE)], name)
            ax.set(xscale="log", title=f"{t} ({e['by_task'][t]['n_prompts']} prompts)", xlabel="n", ylabel="gold")
            ax.set_xticks(ns, [str(int(n)) for n in ns])
            ax.minorticks_off()
        for ax in axes[len(tasks) :]:
            ax.set_visible(False)
        axes[0].legend(fontsize=7)
        figs.append(
            {
                "id": "tasks",
                "title": "Gold vs n per task",
                "caption": "The same estimate on each task's prompts alone (bootstrap 95% band over that task's prompts).",
                "png": _png(fig),
                "missing": None,
            }
        )
    return figs


def render_markdown(results: dict, prov: dict) -> str:
    header, rows = curve_rows(results)
    lines = [
        "# Best-of-n report",
        "",
        f"{results['n_prompts_analysed']} prompts × N = {results['samples_per_prompt']['min']}"
        f"–{results['samples_per_prompt']['max']} samples.",
        "",
        "## Summary",
        "",
    ]
    lines += _md_table(SUMMARY_HEADER, summary_rows(results))
    lines += ["", "## Curves", ""] + _md_table(header, rows)
    lines += ["", "## Notes", ""] + [f"* {n}" for n in notes(results)]
    lines += [
        "",
        "## Provenance",
        "",
        f"* command: `{' '.join(prov['command'])}`",
        f"* time (UTC): {prov['timestamp_utc']}",
    ]
    return "\n".join(lines) + "\n"


def _md_table(header, rows) -> list[str]:
    esc = lambda x: str(x).replace("|", "\\|")  # noqa: E731
    return ["| " + " | ".join(map(esc, header)) + " |", "|" + "---|" * len(header)] + [
        "| " + " | ".join(map(esc, r)) + " |" for r in rows
    ]


def render_html(results: dict, prov: dict) -> str:
    header, rows = curve_rows(results)
    body = [
        "<h1>Best-of-n report</h1>",
        f'<p class="small">{results["n_prompts_analysed"]} prompts × N = {results["samples_per_prompt"]["min"]}–'
        f"{results['samples_per_prompt']['max']} samples; gold: {_e(results['gold'])}. The numbers are also in "
        "<code>report.json</code> and <code>report.md</code>; every sample's scores in <code>scores.jsonl</code>.</p>",
        "<h2>Summary</h2>",
        _table_html(SUMMARY_HEADER, summary_rows(results)),
        "<h2>Plots</h2>",
    ]
    for f in make_figures(results):
        if f["png"]:
            body.append(
                f'<figure id="plot-{_e(f["id"])}" data-plot="{_e(f["id"])}"><img alt="{_e(f["title"])}" '
                f'src="data:image/png;base64,{f["png"]}"><figcaption><b>{_e(f["title"])}.</b> {_e(f["caption"])}'
                "</figcaption></figure>"
            )
        else:
            body.append(f'<p class="small missing">{_e(f["title"])}: {_e(f["missing"])}.</p>')
    body += [
        "<h2>Curves</h2>",
        _table_html(header, rows),
        "<h2>Notes</h2><ul>" + "".join(f'<li class="small">{_e(n)}</li>' for n in notes(results)) + "</ul>",
        "<h2>Provenance</h2>",
        _provenance_html(prov),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Best-of-n report</title>'
        f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def write_bon_report(out: Path, cfg, results: dict, sets, proxies: dict, gold: list) -> None:
    """All four files (process 0 only, when data-parallel)."""
    if not is_main_process():
        return
    out.mkdir(parents=True, exist_ok=True)
    prov = provenance(asdict(cfg))
    lines = []
    for k, s in enumerate(sets):
        lines.append(dumps_strict({"id": s.id, "proxy": {n: rows[k] for n, rows in proxies.items()}, "gold": gold[k]}))
    atomic_write_text(out / "scores.jsonl", "\n".join(lines) + "\n")
    atomic_write_text(
        out / "report.json",
        json.dumps(json.loads(dumps_strict({"results": results, "provenance": prov})), indent=1) + "\n",
    )
    atomic_write_text(out / "report.md", render_markdown(results, prov))
    atomic_write_text(out / "report.html", render_html(results, prov))
