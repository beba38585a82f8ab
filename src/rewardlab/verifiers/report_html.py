"""The HTML page of ``eval-verifier --benchmark candidates``: every model side by side (top-1, pairwise, the
baselines, each with its 95% interval) and one figure, best-of-n accuracy against n for every model with its
bootstrap band and the oracle / majority-vote / random lines. Reads the report dict the JSON holds; the numbers
are the same ones (nothing recomputed)."""

from __future__ import annotations

from rewardlab.evaluation.report_html import _CSS, PALETTE, _e, _png, _table_html

BASELINE_STYLE = {"oracle": ("#2ca02c", ":"), "majority_vote": ("#555555", "--"), "random": ("#999999", "-.")}


def _cell(v: dict | None) -> str:
    if not isinstance(v, dict) or v.get("value") is None:
        return "—"
    ci = v.get("ci95")
    return f"{v['value']:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def fig_best_of_n(results: dict):
    """Best-of-n accuracy vs n (log-2 axis) per model, bands = the report's 95% intervals; the baselines (the same
    for every model: they depend on the candidates only) as horizontal lines. None without a curve."""
    from matplotlib.figure import Figure  # lazy: matplotlib is an optional dependency

    curves = {name: r["best_of_n"] for name, r in results.items() if r.get("best_of_n", {}).get("ns")}
    if not curves:
        return None
    fig = Figure(figsize=(10, 4.6), layout="constrained")
    ax = fig.subplots()
    for k, (name, c) in enumerate(curves.items()):
        color = PALETTE[k % len(PALETTE)]
        ax.plot(c["ns"], c["accuracy"], marker="o", color=color, label=name)
        lo, hi = zip(*c["ci95"])
        ax.fill_between(c["ns"], lo, hi, color=color, alpha=0.15)
    baselines = next(iter(results.values())).get("baselines", {})
    for name, (color, style) in BASELINE_STYLE.items():
        value = baselines.get(name, {}).get("value")
        if value is not None:
            ax.axhline(value, color=color, ls=style, lw=1, label=f"{name} {value:.3f}")
    ax.set_xscale("log", base=2)
    ns = sorted({n for c in curves.values() for n in c["ns"]})
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.set_xlabel("n (candidates drawn per problem)")
    ax.set_ylabel("best-of-n accuracy")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def candidates_html(report: dict) -> str:
    results = report["results"]
    rows = [
        [name, _cell(r.get("top1")), _cell(r.get("pairwise")), r.get("aggregation", "—")] for name, r in results.items()
    ]
    baselines = next(iter(results.values()), {}).get("baselines", {})
    base_rows = [[name, _cell(v)] for name, v in baselines.items()]
    estimator = next(iter(results.values()), {}).get("best_of_n", {}).get("estimator", "")
    try:
        fig = fig_best_of_n(results)
        figure = (
            f'<figure><img alt="best-of-n accuracy vs n" src="data:image/png;base64,{_png(fig)}"/>'
            f"<figcaption><b>Best-of-n accuracy.</b> {_e(estimator)}; bands: 95% percentile bootstrap over problems. "
            "Lines: the baselines (they depend on the candidates only).</figcaption></figure>"
            if fig is not None
            else ""
        )
    except ImportError:
        figure = "<p class=small>matplotlib is not installed (pip install 'rewardlab[plots]'): no figure.</p>"
    return (
        "<!doctype html><html><head><meta charset=utf-8><title>eval-verifier: candidates</title>"
        f"<style>{_CSS}</style></head><body>"
        f"<h1>Best-of-n on fixed candidates</h1><p class=small>{_e(report['data'])}: {report['problems']} problems, "
        f"{report['solutions']} solutions. The same numbers are in the JSON and Markdown reports beside this page.</p>"
        "<h2>Models</h2>"
        + _table_html(
            ["model (aggregation)", "top-1 = best-of-N [95%]", "pairwise [95%]", "how scored"], rows, numeric=False
        )
        + "<p class=small>Top-1: the correctness of each problem's highest-scored solution (ties averaged); pairwise: "
        "within a problem, the share of (correct, incorrect) pairs ordered correctly (ties ½).</p>"
        "<h2>Baselines</h2>"
        + _table_html(["baseline", "value [95%]"], base_rows, numeric=False)
        + "<h2>Plot</h2>"
        + figure
        + "</body></html>\n"
    )
