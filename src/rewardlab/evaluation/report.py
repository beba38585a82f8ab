"""Write an evaluation report: ``report.json`` (everything), ``report.md`` (tables for people) and
``report.html`` (one self-contained page: the same tables plus plots, :mod:`rewardlab.evaluation.report_html`).

``results`` maps a column name (e.g. ``"untrained"``, ``"trained"``, or one per model) to a dict from
:func:`rewardlab.metrics.summary.evaluate_scores`, optionally with a ``"benchmark"`` entry (a benchmark rule's
result, :mod:`rewardlab.benchmarks`) and a ``"model"`` entry (where that column's model came from).
Every file is written atomically: to a temporary file in the same directory, then ``os.replace``, so a
reader never sees half a report.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any, Callable

from rewardlab.core.atomic import atomic_write_text, json_safe
from rewardlab.core.cells import MISSING, _get, fmt, with_ci  # noqa: F401  (importable from here as before)
from rewardlab.core.jsonstrict import dumps_strict
from rewardlab.data.record import Comparison
from rewardlab.evaluation.curves import curve_table, read_curves
from rewardlab.evaluation.report_html import render_html
from rewardlab.multiobjective.report import multiobjective_tables
from rewardlab.probes.report import bias_tables

__all__ = ["write_report", "render_markdown", "report_tables", "read_examples", "fmt"]

NO_SOURCE = "(no source)"


def _cell(text: Any) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _table(header: list[str], rows: list[list[Any]], numeric: bool = True) -> list[str]:
    """A GFM table; the first column is left-aligned, the others right-aligned when ``numeric``."""
    rule = [":---" if i == 0 or not numeric else "---:" for i in range(len(header))]
    return [_row(header), "| " + " | ".join(rule) + " |", *(_row(r) for r in rows)]


def _ties(result: dict) -> str:
    ties = _get(result, "ties")
    rate = _get(result, "tie_rate")
    if ties is None:
        return MISSING
    return f"{fmt(ties)} ({fmt(rate)})" if rate is not None else fmt(ties)


# (row label, how to read it from one evaluate_scores dict)
HEADLINE_ROWS: list[tuple[str, Callable[[dict], str]]] = [
    ("records", lambda r: fmt(_get(r, "n_records"))),
    ("pairs", lambda r: fmt(_get(r, "n_pairs"))),
    ("accuracy [95% CI]", lambda r: with_ci(_get(r, "accuracy"), _get(r, "accuracy_ci95"))),
    ("record accuracy", lambda r: fmt(_get(r, "record_accuracy"))),
    ("ties (rate)", _ties),
    ("judge-tied pairs (not counted)", lambda r: fmt(_get(r, "n_tied_pairs"))),
    ("mean margin", lambda r: fmt(_get(r, "mean_margin"))),
    ("log-loss", lambda r: fmt(_get(r, "calibration", "log_loss"))),
    ("Brier", lambda r: fmt(_get(r, "calibration", "brier"))),
    ("ECE", lambda r: fmt(_get(r, "calibration", "ece"))),
    ("reward–length Pearson", lambda r: fmt(_get(r, "length_correlation", "pearson"))),
    ("reward–length Spearman", lambda r: fmt(_get(r, "length_correlation", "spearman"))),
    ("tie policy", lambda r: fmt(_get(r, "tie_policy"))),
]


def _per_source_rows(results: dict[str, dict]) -> list[list[str]]:
    sources: dict[str, None] = {}
    for result in results.values():
        for name in _get(result, "per_source") or {}:
            sources.setdefault(name, None)
    rows = []
    for name in sources:
        row = [name if name else NO_SOURCE]
        for result in results.values():
            entry = _get(result, "per_source", name)
            if not isinstance(entry, dict):
                row.append(MISSING)
                continue
            text = with_ci(entry.get("accuracy"), entry.get("ci95"))
            if entry.get("n") is not None:
                text += f" (n={fmt(entry.get('n'))})"
            row.append(text)
        rows.append(row)
    return rows


def _with_n(entry: Any, value_key: str = "score") -> str:
    if not isinstance(entry, dict):
        return MISSING
    text = with_ci(entry.get(value_key), entry.get("ci95"))
    if entry.get("n") is not None:
        text += f" (n={fmt(entry.get('n'))})"
    return text


def _union(results: dict[str, dict], *keys: str) -> list[str]:
    names: dict[str, None] = {}
    for result in results.values():
        for name in _get(result, *keys) or {}:
            names.setdefault(name, None)
    return list(names)


def _benchmark_tables(results: dict[str, dict]) -> list[dict]:
    """Tables for results that carry a benchmark result (all columns normally share one benchmark)."""
    benches = {c: r["benchmark"] for c, r in results.items() if isinstance(_get(r, "benchmark"), dict)}
    if not benches:
        return []
    columns = list(results)
    first = next(iter(benches.values()))
    bench = lambda c: benches.get(c) or {}
    title = f"Benchmark: {first.get('title') or first.get('benchmark')} — version {first.get('version', MISSING)}"
    rows = [
        [label, *(fmt(_get(bench(c), "headline", label)) for c in columns)] for label in _union(benches, "headline")
    ]
    for name in _union(benches, "sections"):
        rows.append([f"section: {name}", *(fmt(_get(bench(c), "sections", name)) for c in columns)])
    rows.append(["tie policy", *(fmt(bench(c).get("tie_policy")) for c in columns)])
    rules = first.get("tie_rules") or {}
    text = [
        f"Tie rules used: {', '.join(f'{k}: {v}' for k, v in rules.items()) or MISSING}.",
        f"Formula source: {first.get('reference') or MISSING}.",
    ]
    if first.get("section_weights"):
        text.append(
            f"Section weights: {first['section_weights']} example counts "
            "(math-prm weighted as the code subsets together)."
        )
    notes = list(dict.fromkeys(n for b in benches.values() for n in (b.get("notes") or [])))
    text += [f"Note: {n}" for n in notes]
    tables = [{"heading": title, "header": ["metric", *columns], "rows": rows, "text": text}]
    subset_rows = [
        [name, *(_with_n(_get(bench(c), "subsets", name)) for c in columns)] for name in _union(benches, "subsets")
    ]
    if subset_rows:
        tables.append(
            {
                "heading": "Benchmark subsets",
                "header": ["subset", *columns],
                "rows": subset_rows,
                "text": ["Score [bootstrap 95% interval] (n = examples)."],
            }
        )
    models = _union(benches, "win_rates", "judge")
    if models:

        def cell(c, m):
            j = _get(bench(c), "win_rates", "judge", m, "adjusted_win_rate")
            h = _get(bench(c), "win_rates", "human", m, "adjusted_win_rate")
            return f"{fmt(j)} / {fmt(h)}"

        tables.append(
            {
                "heading": "Adjusted win rate (W + 0.5·T)/(W + L + T), judge / human",
                "header": ["model", *columns],
                "rows": [[m, *(cell(c, m) for c in columns)] for m in models],
                "text": [],
            }
        )
    return tables


def _model_table(results: dict[str, dict]) -> list[dict]:
    rows = []
    for column, result in results.items():
        model = _get(result, "model")
        if isinstance(model, dict):
            rows.append(
                [
                    column,
                    fmt(model.get("path")),
                    fmt(model.get("backbone")),
                    fmt(model.get("data_fingerprint")),
                    fmt(model.get("kind")),
                ]
            )
    if not rows:
        return []
    return [
        {
            "heading": "Models",
            "header": ["column", "path", "backbone", "training data fingerprint", "scorer"],
            "rows": rows,
            "text": [],
            "numeric": False,
        }
    ]


def report_tables(results: dict[str, dict]) -> list[dict]:
    """Every table of the report, for both renderers: ``{heading, header, rows, text[, numeric]}``."""
    columns = list(results)
    tables = [
        {
            "heading": "Summary",
            "header": ["metric", *columns],
            "rows": [[label, *(get(results[c]) for c in columns)] for label, get in HEADLINE_ROWS],
            "text": [
                "Accuracy counts a win as 1 and a tie as the tie policy says (strict: 0); intervals are "
                "bootstrap 95% over the sampled units: prompts (all records of a prompt drawn together), or "
                "benchmark items shown in both orders."
            ],
        }
    ]
    bench_tables = _benchmark_tables(results)
    tables += bench_tables
    source_rows = _per_source_rows(results)
    if source_rows and not any(t["heading"] == "Benchmark subsets" for t in bench_tables):
        tables.append(
            {"heading": "Per-source accuracy", "header": ["source", *columns], "rows": source_rows, "text": []}
        )
    tables += bias_tables(results)  # `eval --probes`: the Bias profile section (rewardlab.probes.report)
    tables += multiobjective_tables(results)  # K-output models (rewardlab.multiobjective.report)
    tables += _model_table(results)
    return tables


def _code(text: str) -> str:
    return "`" + text.replace("`", "'") + "`"


def _provenance_lines(prov: dict) -> list[str]:
    lines = ["## Provenance", ""]
    command = prov.get("command")
    if isinstance(command, (list, tuple)):
        command = shlex.join(str(c) for c in command)
    git = prov.get("git")
    if isinstance(git, dict) and git.get("commit"):
        git_text = _code(str(git["commit"]))
        if git.get("dirty"):
            git_text += " (dirty: uncommitted changes)"
    else:
        git_text = MISSING
    fingerprint = prov.get("data_fingerprint")
    lines += [
        f"- Command: {_code(command) if command else MISSING}",
        f"- Time (UTC): {prov.get('timestamp_utc') or MISSING}",
        f"- Git commit: {git_text}",
        f"- Data fingerprint: {_code(str(fingerprint)) if fingerprint else MISSING}",
        f"- Platform: {prov.get('platform') or MISSING}",
        "",
    ]
    versions = prov.get("versions") or {}
    if versions:
        lines += _table(["package", "version"], [[k, fmt(v)] for k, v in versions.items()], numeric=False)
        lines.append("")
    tok = prov.get("tokenizer")
    if isinstance(tok, dict):
        name = f" {_code(str(tok['name_or_path']))}" if tok.get("name_or_path") else ""
        sha = tok.get("chat_template_sha256")
        lines.append(
            f"Tokenizer: {tok.get('class') or MISSING}{name}; chat template sha256: "
            f"{_code(str(sha)) if sha else MISSING}"
        )
        lines.append("")
        special = tok.get("special_tokens") or {}
        token = lambda v: MISSING if _get(v, "token") is None else _code(str(_get(v, "token")))
        lines += _table(
            ["special token", "text", "id"],
            [[k, token(v), fmt(_get(v, "id"))] for k, v in special.items()],
            numeric=False,
        )
        lines.append("")
    return lines


def render_markdown(
    results: dict[str, dict],
    title: str,
    provenance: dict,
    notes: list[str] | None = None,
    curves: dict[str, list[dict]] | None = None,
    curves_note: str | None = None,
) -> str:
    """The Markdown text :func:`write_report` writes to ``report.md``; ``curves_note`` says what the training
    curves are (an evaluation report: the model's own training run, not this data)."""
    lines = [f"# {title}", ""]
    for table in report_tables(results):
        lines += [f"## {table['heading']}", ""]
        lines += _table(table["header"], table["rows"], numeric=table.get("numeric", True))
        lines.append("")
        for text in table["text"]:
            lines += [text, ""]
    for column, rows in (curves or {}).items():
        table = curve_table(rows)
        if table:
            lines += [f"## Training curves: {column}" + (" (its own training run)" if curves_note else ""), ""]
            lines += [curves_note, ""] if curves_note else []
            lines += _table(table[0], [[fmt(v) for v in row] for row in table[1]])
            lines += ["", "From the run's `metrics.jsonl` (every row is there; the report.html plots them).", ""]
    if notes:
        lines += ["## Notes", ""]
        lines += [f"- {note}" for note in notes]
        lines.append("")
    lines += _provenance_lines(provenance or {})
    return "\n".join(lines).rstrip("\n") + "\n"


_clean = json_safe  # the package's one JSON cleaner (rewardlab.core.atomic), under its old name here


def read_examples(path: str | os.PathLike) -> list[dict]:
    """The rows of a per-example JSONL file (``examples-<column>.jsonl``)."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _find_examples(out: Path, results: dict[str, dict]) -> dict[str, list[dict]]:
    found = {}
    for column in results:
        path = out / f"examples-{column}.jsonl"
        if path.is_file():
            try:
                found[column] = read_examples(path)
            except (OSError, ValueError):
                continue
    return found


def _find_curves(results: dict[str, dict], curves: dict[str, Any] | None) -> dict[str, list[dict]]:
    if curves is None:
        curves = {c: _get(r, "model", "path") for c, r in results.items() if _get(r, "model", "path")}
    found = {}
    for column, where in curves.items():
        rows = where if isinstance(where, list) else read_curves(where)
        if rows:
            found[column] = rows
    return found


def write_report(
    out_dir: str | os.PathLike,
    results: dict[str, dict],
    title: str,
    provenance: dict,
    notes: list[str] | None = None,
    *,
    examples: dict[str, list[dict]] | None = None,
    html: bool = True,
    curves: dict[str, Any] | None = None,
    curves_note: str | None = None,
) -> tuple[Path, Path]:
    """Write ``out_dir/report.json``, ``out_dir/report.md`` and (``html=True``) ``out_dir/report.html``;
    return ``(json_path, md_path)`` (the HTML is ``json_path.with_name("report.html")``).

    ``examples`` maps a column to its per-example rows (as written by
    :func:`write_examples`: ``scores``, ``chosen``, ``lengths``, ``subset``); the HTML
    plots reward histograms and reward-vs-length from them. Without it, ``out_dir/examples-<column>.jsonl``
    files are read when present. The HTML is self-contained (plots embedded as PNG); without matplotlib
    it has the tables and says the plots need it.

    ``report.json`` holds ``{"title", "results", "notes", "provenance"}`` (NaN → null). ``report.md``
    has the title, a headline table (one column per result: records, pairs, accuracy with 95% CI,
    record accuracy, reward ties, judge-tied pairs, mean margin, log-loss, Brier, ECE, reward–length Pearson and Spearman), a per-source accuracy
    table (rows = sources, columns = results), the notes and a provenance section. Numbers have 4
    decimals; a missing value is "—". ``out_dir`` is created if needed; each file is replaced atomically.

    ``curves`` maps a column to its run directory (or model directory, or metrics rows); by default each column's
    ``model.path`` is looked at. A column whose run has a ``metrics.jsonl`` gets training curves (a table in the
    Markdown, a plot in the HTML; the rows are in ``report.json`` under ``curves``). ``curves_note`` (kept in
    ``report.json`` as ``curves_note``) heads them in both: an evaluation on other data says they are the
    model's own training run, so its held-out points are not read as results on this data.
    """
    if not results:
        raise ValueError("write_report needs at least one result column")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    payload = _clean({"title": title, "results": results, "notes": list(notes or []), "provenance": provenance})
    found = _find_curves(results, curves)
    if found:
        payload["curves"] = _clean(found)
        if curves_note:
            payload["curves_note"] = curves_note
    json_path, md_path = out / "report.json", out / "report.md"
    atomic_write_text(json_path, json.dumps(payload, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    atomic_write_text(
        md_path,
        render_markdown(
            payload["results"],
            str(title),
            payload["provenance"] or {},
            payload["notes"],
            payload.get("curves"),
            payload.get("curves_note"),
        ),
    )
    if html:
        if examples is None:
            examples = _find_examples(out, results)
        atomic_write_text(out / "report.html", render_html(payload, examples, report_tables(payload["results"])))
    return json_path, md_path


# ---- the per-example file every report writes beside it ---------------------------------------------
def example_rows(
    records: list[Comparison],
    scores: list[list[float]],
    credits: list | None = None,
    pairwise: list[bool] | None = None,
) -> list[dict]:
    """One dict per example: id, subset (= source), chosen, scores, response lengths in characters, and
    for a benchmark the example's credit, whether its ``chosen`` is a real preference, and its labels."""
    rows = []
    for i, (c, s) in enumerate(zip(records, scores)):
        row = {
            "id": c.id,
            "source": c.source,
            "subset": c.source,
            "chosen": c.chosen,
            "scores": list(s),
            "lengths": [len(r) for r in c.responses],
        }
        if credits is not None:
            row["credit"] = credits[i]
        if pairwise is not None:
            row["pairwise"] = bool(pairwise[i])
        labels = {k: v for k, v in c.meta.items() if k != "prompts" and isinstance(v, (str, int, float, bool, list))}
        if labels:
            row["labels"] = labels
        rows.append(row)
    return rows


def write_examples(
    path: Path,
    records: list[Comparison],
    scores: list[list[float]],
    credits: list | None = None,
    pairwise: list[bool] | None = None,
) -> list[dict]:
    """Write :func:`example_rows` as JSONL to ``path``; return the rows."""
    rows = example_rows(records, scores, credits, pairwise)
    atomic_write_text(path, "".join(dumps_strict(row, ensure_ascii=False) + "\n" for row in rows))
    return rows
