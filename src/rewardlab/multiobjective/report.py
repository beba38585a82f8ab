"""The multi-objective section of ``rewardlab eval``'s report (``report.md`` / ``report.html``).

Reads ``result["multiobjective"]`` of each result column (written by ``rewardlab eval`` for models the loader
returns as multi-objective scorers: :meth:`rewardlab.multiobjective.serving.MultiObjectiveScorer.multiobjective_report`
plus ``attributes``, the per-attribute fit when the eval data carries ratings):

* per-attribute MSE, Pearson and Spearman (on the [0, 1] ratings; a column of "—" when the data has no ratings);
* pairwise accuracy under each scaliser with its 95% Wilson interval;
* |Spearman| of score vs response length (pooled, and within pairs) for each scaliser: equal weights vs equal
  weights on the debiased rewards, and the gate with and without its verbosity transform, is the length
  correlation before and after debiasing;
* mean gate weights by prompt source (a table, and a bar chart: ``gate-<column>.png`` next to the report, and
  embedded in the HTML).

Imports nothing from :mod:`rewardlab.evaluation.report` (which imports this).
"""

from __future__ import annotations

from typing import Any

HEADING = "Multi-objective"
MISSING = "—"


def _f(x: Any) -> str:
    return MISSING if x is None else f"{float(x):.4f}"


def _columns(results: dict[str, dict]) -> list[str]:
    return [c for c, r in results.items() if isinstance(r.get("multiobjective"), dict)]


def _union(results: dict[str, dict], columns: list[str], key: str) -> list[str]:
    seen: list[str] = []
    for c in columns:
        for name in results[c]["multiobjective"].get(key) or {}:
            if name not in seen:
                seen.append(name)
    return seen


def multiobjective_tables(results: dict[str, dict]) -> list[dict]:
    """The section's tables, in the report's ``{heading, header, rows, text[, numeric]}`` form ([] without one)."""
    columns = _columns(results)
    if not columns:
        return []
    mo = {c: results[c]["multiobjective"] for c in columns}
    tables = []
    attr_rows = []
    for a in _union(results, columns, "attributes"):
        for metric in ("mse", "pearson", "spearman", "n"):
            cells = []
            for c in columns:
                m = (mo[c].get("attributes") or {}).get(a)
                cells.append(
                    MISSING if not isinstance(m, dict) else (str(m.get(metric)) if metric == "n" else _f(m.get(metric)))
                )
            attr_rows.append([f"{a} {metric}", *cells])
    reasons = [f"{c}: {mo[c]['attributes_note']}" for c in columns if mo[c].get("attributes_note")]
    tables.append(
        {
            "heading": f"{HEADING}: per-attribute fit",
            "header": ["attribute metric", *columns],
            "rows": attr_rows or [["(no rated rows)", *(MISSING for _ in columns)]],
            "text": [
                "Held-out fit of each attribute output to the eval data's ratings (rescaled to [0, 1] "
                "with the model's recorded scales); MSE, Pearson and Spearman over the rated rows.",
                *reasons,
            ],
        }
    )
    acc_rows = []
    for s in _union(results, columns, "accuracy"):
        cells = []
        for c in columns:
            a = (mo[c].get("accuracy") or {}).get(s)
            cells.append(MISSING if not a else f"{_f(a.get('accuracy'))} [{_f(a['ci95'][0])}, {_f(a['ci95'][1])}]")
        acc_rows.append([s, *cells])
    tables.append(
        {
            "heading": f"{HEADING}: pairwise accuracy by scaliser",
            "header": ["scaliser", *columns],
            "rows": acc_rows,
            "text": [
                "Share of pairs the scaliser orders as labelled (strict: a tie counts as a loss), 95% Wilson interval. equal_weights: "
                "the mean of the K rewards; _debiased: of the verbosity-transformed rewards; model: the "
                "recorded scaliser; gate_without_debiasing: the gate's weights on the untransformed rewards."
            ],
        }
    )
    len_rows = []
    for s in _union(results, columns, "abs_spearman_score_vs_length"):
        len_rows.append(
            [f"{s} pooled", *(_f((mo[c].get("abs_spearman_score_vs_length") or {}).get(s)) for c in columns)]
        )
        len_rows.append(
            [
                f"{s} within pairs",
                *(_f((mo[c].get("abs_spearman_score_vs_length_within_pairs") or {}).get(s)) for c in columns),
            ]
        )
    tables.append(
        {
            "heading": f"{HEADING}: length correlation before and after debiasing",
            "header": ["scaliser", *columns],
            "rows": len_rows,
            "text": [
                "|Spearman| of the score against response length in characters: pooled over every response, "
                "and within pairs (score difference vs length difference). Before debiasing: equal_weights, "
                "gate_without_debiasing; after: equal_weights_debiased, gate."
            ],
        }
    )
    gate_rows = []
    for c in columns:
        by_source = mo[c].get("mean_gate_by_source") or {}
        for source, weights in by_source.items():
            gate_rows.append([c, source, ", ".join(f"{a} {w:.3f}" for a, w in weights.items())])
    if gate_rows:
        tables.append(
            {
                "heading": f"{HEADING}: mean gate weight by prompt source",
                "header": ["column", "source", "mean gate weights"],
                "rows": gate_rows,
                "numeric": False,
                "text": [
                    f"Bar chart: gate-{c}.png (and in report.html)."
                    for c in columns
                    if mo[c].get("mean_gate_by_source")
                ],
            }
        )
    return tables


def gate_columns(results: dict[str, dict]) -> list[str]:
    return [c for c in _columns(results) if results[c]["multiobjective"].get("mean_gate_by_source")]


def fig_gate_by_source(results: dict[str, dict]):
    """One bar-chart panel per gated column: mean gate weight per attribute for each prompt source (None: no gate)."""
    columns = gate_columns(results)
    if not columns:
        return None
    import matplotlib  # optional dependency (the report's plots)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(columns), figsize=(4.5 * len(columns), 3.2), squeeze=False)
    for ax, c in zip(axes[0], columns):
        by_source = results[c]["multiobjective"]["mean_gate_by_source"]
        sources = list(by_source)
        attributes = list(next(iter(by_source.values())))
        width = 0.8 / len(attributes)
        for k, a in enumerate(attributes):
            ax.bar([i + k * width for i in range(len(sources))], [by_source[s][a] for s in sources], width, label=a)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(sources))], sources)
        ax.set_ylabel("mean gate weight")
        ax.set_title(c, fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
