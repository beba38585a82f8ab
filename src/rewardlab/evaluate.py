"""``rewardlab eval``: score held-out comparisons with one or more models and write a report.

Writes ``report.json`` / ``report.md`` (one column per model) and ``examples-<name>.jsonl`` with each
record's id, source and scores.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from rewardlab.data.record import Comparison


@dataclass
class EvalConfig:
    model: list[str] = field(default_factory=list)  # one or more rewardlab model directories
    data: str = ""
    format: str = "auto"
    output_dir: str = "runs/eval"
    batch_size: int = 32
    skip_invalid: bool = False
    limit: int | None = None
    seed: int = 0


def evaluate_model(rm, records: list[Comparison], batch_size: int = 32, seed: int = 0) -> tuple[dict, list]:
    from rewardlab.metrics import evaluate_scores

    scores = rm.score_comparisons(records, batch_size=batch_size)
    return evaluate_scores(records, scores, seed=seed), scores


def write_examples(path: Path, records: list[Comparison], scores: list[list[float]]) -> None:
    with open(path, "w") as f:
        for c, s in zip(records, scores):
            f.write(json.dumps({"id": c.id, "source": c.source, "chosen": c.chosen, "scores": s}) + "\n")


def model_name(path: str, taken: dict) -> str:
    name = Path(path).name if Path(path).name != "model" else Path(path).parent.name
    while name in taken:
        name += "'"
    return name


def run_eval(cfg: EvalConfig, records: list[Comparison] | None = None, skipped: list | None = None) -> Path:
    from rewardlab.data import fingerprint, load_comparisons
    from rewardlab.model import RewardModel
    from rewardlab.provenance import provenance
    from rewardlab.report import write_report

    if records is None:
        loaded = load_comparisons(cfg.data, format=cfg.format, skip_invalid=cfg.skip_invalid, limit=cfg.limit)
        records, skipped = loaded.records, loaded.skipped
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    results, tok = {}, None
    for path in cfg.model:
        rm = RewardModel.load(path)
        tok = rm.tokenizer
        name = model_name(path, results)
        results[name], scores = evaluate_model(rm, records, cfg.batch_size, cfg.seed)
        write_examples(out / f"examples-{name}.jsonl", records, scores)
    notes = [f"{len(records)} records from {cfg.data}"]
    if skipped:
        notes.append(f"{len(skipped)} invalid records skipped (--skip-invalid); first: {skipped[0]}")
    prov = provenance(config=cfg.__dict__, data_fingerprint=fingerprint(records), tokenizer=tok)
    write_report(out, results, title="rewardlab evaluation", provenance=prov, notes=notes)
    return out
