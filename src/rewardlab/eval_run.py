"""``rewardlab eval --run runs/x``: evaluate exactly the held-out records of a training run.

The run's ``split.json`` (:mod:`rewardlab.splits`) lists the held-out ids and the rule; the data is read again
with the run's own options (``train_summary.json``'s config) and must give those same records, or the command stops.
The model defaults to the run's own ``model/``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from rewardlab.data import fingerprint
from rewardlab.errors import RewardlabError
from rewardlab.evaluate import EvalConfig, run_eval
from rewardlab.splits import SPLIT_FILE, read_split
from rewardlab.train import TrainConfig, load_train_eval


def held_out_of_run(run_dir: str | Path) -> tuple[list, dict]:
    """Exactly the held-out records of a training run, read again with the run's own options; ``(records, split)``.
    Stops when the data no longer gives the same held-out records (ids or content changed)."""
    run_dir = Path(run_dir)
    split = read_split(run_dir)
    summary_path = run_dir / "train_summary.json"
    if not summary_path.is_file():
        raise RewardlabError(f"{summary_path} does not exist: the run did not finish")
    saved = json.loads(summary_path.read_text())["config"]
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in saved.items() if k in known})
    _, held, _ = load_train_eval(cfg)
    if [c.id for c in held] != split["held_out_ids"] or fingerprint(held) != split["held_out_fingerprint"]:
        raise RewardlabError(
            f"{run_dir / SPLIT_FILE}: the run's data ({cfg.eval_data or cfg.data}) no longer gives "
            "the held-out records it recorded (ids or content changed)"
        )
    if not held:
        raise RewardlabError(f"{run_dir / SPLIT_FILE}: the run held out no records")
    return held, split


def run_eval_of_run(cfg: EvalConfig) -> Path:
    if cfg.data or cfg.benchmark:
        raise RewardlabError(
            "--run evaluates the run's own held-out records: give --run or --data/--benchmark, not both"
        )
    held, split = held_out_of_run(cfg.run)
    models = cfg.model or ([] if cfg.judge else [str(Path(cfg.run) / "model")])
    where = split["rule"].get("path") or split.get("data")
    resolved = dataclasses.replace(cfg, model=models, data=[f"{where} (held-out split of {cfg.run})"])
    return run_eval(resolved, records=held, skipped=[])
