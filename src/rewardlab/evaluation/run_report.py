"""What a training run leaves for the user besides the model: ``report.md`` / ``report.json`` / ``report.html`` in
the run directory (held-out metrics, what was read and skipped, training curves), and the short summary the
terminal shows for any report. (``split.json``: :mod:`rewardlab.data.splits`.)
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from rewardlab.core.cells import _get, fmt, with_ci
from rewardlab.core.provenance import provenance
from rewardlab.evaluation.report import write_examples, write_report
from rewardlab.evaluation.truncation import truncation_line


# ---------------------------------------------------------------------------------------------
def skip_reasons(skipped: list[str], top: int = 3) -> list[str]:
    """The most common reasons among skipped-row messages (``file, line 6, field 'x': why`` → ``field 'x': why``)."""

    def reason(msg: str) -> str:
        parts = [p for p in msg.split(", ") if not p.startswith(("line ", "row "))]
        return ", ".join(parts[1:]) if len(parts) > 1 else msg

    counts = Counter(reason(m) for m in skipped)
    return [f"{n} × {r}" for r, n in counts.most_common(top)]


def train_notes(data_info: dict, steps: int, elapsed_s: float, cfg) -> list[str]:
    n_read = data_info.get("n_read")
    notes = [
        f"data: {data_info.get('source')}" + (f"; {n_read} records read" if n_read is not None else ""),
        f"skipped {data_info.get('n_skipped', 0)} invalid rows"
        + (": " + "; ".join(skip_reasons(data_info.get("skipped") or [])) if data_info.get("skipped") else ""),
        f"split: {data_info.get('n_train')} training, {data_info.get('n_eval')} held-out records "
        + (
            f"(from {cfg.eval_data})"
            if cfg.eval_data
            else f"(by prompt hash, eval_fraction {cfg.eval_fraction}, split_seed {cfg.split_seed}; split.json)"
        ),
    ]
    if data_info.get("n_without_units"):
        notes.append(
            f"{data_info['n_without_units']} training records left out: nothing to learn under loss {cfg.loss}"
        )
    notes.append(
        f"{steps} optimizer steps of {cfg.batch_size} comparisons, loss {cfg.loss}, lr {cfg.lr}, "
        f"backbone {cfg.backbone}; {elapsed_s:.0f} s"
    )
    if getattr(cfg, "quantize", None):
        notes.append(
            f"QLoRA: the backbone loaded {cfg.quantize} with bitsandbytes (frozen), LoRA r={cfg.lora_r} adapters and "
            "the float32 head trained; the held-out scores above were made over the quantized backbone, the saved "
            "adapter loads on the full-precision base (`score --quantize` reloads it quantized)"
        )
    return notes


def write_train_report(
    out: Path,
    cfg,
    data_info: dict,
    final_eval: dict | None,
    steps: int,
    elapsed_s: float,
    eval_recs=None,
    scores=None,
    tokenizer=None,
) -> Path:
    """``out/report.{json,md,html}`` for a finished run; returns the Markdown path."""
    results = {"trained": final_eval} if final_eval else {"trained": {"n_records": 0}}
    if final_eval and eval_recs is not None and scores is not None:
        write_examples(Path(out) / "examples-trained.jsonl", eval_recs, scores)
    prov = provenance(config=cfg.to_json(), data_fingerprint=None, tokenizer=tokenizer)
    _, md = write_report(
        out,
        results,
        title=f"rewardlab train: {Path(cfg.output_dir).name}",
        provenance=prov,
        notes=train_notes(data_info, steps, elapsed_s, cfg),
        curves={"trained": Path(out)},
    )
    return Path(md)


def summary_table(results: dict[str, dict]) -> str:
    """A few lines for the terminal: one row per column of a report (records, pairs, accuracy [95% CI], and the
    benchmark's headline score when there is one)."""
    rows = [["", "records", "pairs", "accuracy [95% CI]", "benchmark"]]
    named = set()
    for name, r in results.items():
        headline = _get(r, "benchmark", "headline")
        bench = next(iter(headline.values()), None) if isinstance(headline, dict) and headline else None
        if bench is not None:
            named.add(next(iter(headline)))
        rows.append(
            [
                name,
                fmt(_get(r, "n_records")),
                fmt(_get(r, "n_pairs")),
                with_ci(_get(r, "accuracy"), _get(r, "accuracy_ci95")),
                fmt(bench),
            ]
        )
    if all(row[4] == "—" for row in rows[1:]):
        rows = [row[:4] for row in rows]
    elif len(named) == 1:  # the column says which headline it is (e.g. a partial RewardBench copy says so)
        rows[0][4] = named.pop()
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
        for row in rows
    )


def report_summary(report_dir: str | Path) -> str:
    """The terminal's summary of a written report: the table, one line per model on the texts it saw cut to its
    max_length (:mod:`rewardlab.evaluation.truncation`), and the report's paths."""
    report_dir = Path(report_dir)
    payload: dict[str, Any] = json.loads((report_dir / "report.json").read_text())
    results = payload.get("results") or {}
    cut = [
        line
        for name, result in results.items()
        if isinstance(result, dict)
        for line in [truncation_line(name, result.get("truncation"))]
        if line
    ]
    return (
        summary_table(results)
        + "".join(f"\ntruncated: {line}" for line in cut)
        + f"\nreport: {report_dir / 'report.md'} (and {'report.html, ' * (report_dir / 'report.html').exists()}report.json)"
    )


def train_summary(result, cfg) -> str:
    """What ``rewardlab train`` prints at the end: records read and skipped (why), split sizes, steps, elapsed time,
    held-out metrics, and where the model and the report are."""
    info = result.data_info or {}
    lines = [
        f"read {info.get('n_read', '?')} records from {info.get('source', cfg.data)}; "
        f"skipped {info.get('n_skipped', 0)}"
        + (f" ({'; '.join(skip_reasons(info.get('skipped') or []))})" if info.get("skipped") else ""),
        f"split: {info.get('n_train')} training, {info.get('n_eval')} held-out records"
        + (
            f"; {info['n_without_units']} left out (nothing to learn under loss {cfg.loss})"
            if info.get("n_without_units")
            else ""
        ),
        f"trained {result.steps} steps in {result.elapsed_s:.0f} s",
    ]
    if result.final_eval:
        lines += ["", summary_table({"held-out": result.final_eval})]
    lines += ["", f"model:  {result.model_dir}"]
    if result.report is not None:
        lines.append(f"report: {result.report} (and report.html, report.json)")
    return "\n".join(lines)
