"""Where a training run's held-out records are recorded: ``split.json`` in the run directory.

``split.json``::

    {"rule": {"kind": "prompt_hash", "eval_fraction": 0.1, "split_seed": 0}   (or {"kind": "eval_data", "path": ...}),
     "data": ..., "format": ..., "n_train": ..., "n_eval": ...,
     "held_out_ids": [...],                 # ids of the held-out records, in order
     "held_out_fingerprint": "...",         # rewardlab.data.fingerprint of the held-out records
     "train_prompt_hashes": ["0123abcd..."]}  # first 16 hex of each training prompt's sha256, sorted

``rewardlab eval --run DIR`` (:mod:`rewardlab.evaluation.held_out`) re-reads the run's data with the run's own options, checks
that the held-out records are exactly these (same ids, same fingerprint), and evaluates them; every ``eval`` warns
when a record's prompt is among a model's ``train_prompt_hashes`` (:func:`trained_on`: the model was trained on it).
"""

from __future__ import annotations

import json
from pathlib import Path

from rewardlab.core.atomic import atomic_write_text
from rewardlab.core.errors import RewardlabError
from rewardlab.data import fingerprint

SPLIT_FILE = "split.json"
HASH_CHARS = 16


def prompt_hashes(records) -> set[str]:
    return {c.prompt_hash()[:HASH_CHARS] for c in records}


def split_payload(cfg, train_recs, eval_recs) -> dict:
    rule = (
        {"kind": "eval_data", "path": cfg.eval_data}
        if cfg.eval_data
        else {
            "kind": "prompt_hash",
            "eval_fraction": cfg.eval_fraction,
            "split_seed": cfg.split_seed,
            "how": "a prompt is held out when sha256(f'{split_seed}\\0{prompt}') read as a fraction < eval_fraction",
        }
    )
    return {
        "rule": rule,
        "data": cfg.data,
        "format": cfg.format,
        "n_train": len(train_recs),
        "n_eval": len(eval_recs),
        "held_out_ids": [c.id for c in eval_recs],
        "held_out_fingerprint": fingerprint(eval_recs),
        "train_prompt_hashes": sorted(prompt_hashes(train_recs)),
    }


def write_split(out: Path, cfg, train_recs, eval_recs) -> Path:
    path = Path(out) / SPLIT_FILE
    atomic_write_text(path, json.dumps(split_payload(cfg, train_recs, eval_recs), indent=1) + "\n")
    return path


def read_split(run_dir: str | Path) -> dict:
    path = Path(run_dir) / SPLIT_FILE
    if not path.is_file():
        raise RewardlabError(
            f"{path} does not exist: --run takes a training run directory (rewardlab train "
            "--output-dir) written by a rewardlab that records its split"
        )
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise RewardlabError(f"{path}: not valid JSON ({e})") from None


def run_dir_of(model_path: str | Path) -> Path | None:
    """The training run directory a model directory came from (``runs/x`` for ``runs/x/model``), if it has a split."""
    p = Path(model_path)
    for d in (p, p.parent):
        if (d / SPLIT_FILE).is_file():
            return d
    return None


def trained_on(model_path: str | Path, records) -> int:
    """How many of ``records`` have a prompt the model at ``model_path`` was trained on (0 when unknown)."""
    run = run_dir_of(model_path)
    if run is None:
        return 0
    try:
        hashes = set(read_split(run).get("train_prompt_hashes") or [])
    except RewardlabError:
        return 0
    return sum(c.prompt_hash()[:HASH_CHARS] in hashes for c in records)
