"""The held-out records of a training run, read again exactly (what ``rewardlab eval --run runs/x`` evaluates).

The run's ``split.json`` (:mod:`rewardlab.data.splits`) lists the held-out ids and the rule; the data is read again
with the run's own options (``train_summary.json``'s config) and the run's own reader — the scalar trainer's
:func:`rewardlab.training.train.load_train_eval`, or for ``--objective gating`` the gating trainer's
:func:`rewardlab.multiobjective.train._load_pairs` — and must give those same records, or the command stops.
The model defaults to the run's own ``model/``. ``--objective regression`` runs hold out rated responses, not
pairs: they are refused (their held-out MSE / Pearson are in ``train_summary.json``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from rewardlab.core.errors import RewardlabError
from rewardlab.data import fingerprint
from rewardlab.data.splits import SPLIT_FILE, read_split
from rewardlab.multiobjective.train import _load_pairs
from rewardlab.training.train import TrainConfig, load_train_eval


def _saved_config(run_dir: Path) -> dict | None:
    """The run's ``train_summary.json`` config, or None when the run has no summary (it did not finish)."""
    path = run_dir / "train_summary.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())["config"]
    except (ValueError, KeyError, TypeError) as e:
        raise RewardlabError(f"{path}: not a training summary with a config ({e})") from None


def refuse_unpaired(run_dir: Path, saved: dict | None) -> None:
    """Stop for runs whose held-out data are not preference pairs (``--objective regression``)."""
    if saved is not None and saved.get("objective") == "regression":
        raise RewardlabError(
            f"{run_dir} is an --objective regression run: its held-out data are rated responses, not "
            "preference pairs, so eval --run has nothing to score; its held-out MSE / Pearson / Spearman per "
            f"attribute are in {run_dir / 'train_summary.json'} (held_out), or evaluate the model on pairs with "
            f"rewardlab eval --model {run_dir / 'model'} --data PAIRS"
        )


def held_out_records(cfg: TrainConfig) -> list:
    """The held-out records of a run with config ``cfg``, read by the code its trainer read them with."""
    if cfg.objective == "gating":
        return _load_pairs(cfg)[1]
    return load_train_eval(cfg)[1]


def held_out_of_run(run_dir: str | Path) -> tuple[list, dict]:
    """Exactly the held-out records of a training run, read again with the run's own options; ``(records, split)``.
    Stops when the data no longer gives the same held-out records (ids or content changed)."""
    run_dir = Path(run_dir)
    saved = _saved_config(run_dir)
    refuse_unpaired(run_dir, saved)
    split = read_split(run_dir)
    if saved is None:
        raise RewardlabError(f"{run_dir / 'train_summary.json'} does not exist: the run did not finish")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in saved.items() if k in known})
    held = held_out_records(cfg)
    if [c.id for c in held] != split["held_out_ids"] or fingerprint(held) != split["held_out_fingerprint"]:
        raise RewardlabError(
            f"{run_dir / SPLIT_FILE}: the run's data ({cfg.eval_data or cfg.data}) no longer gives "
            "the held-out records it recorded (ids or content changed)"
        )
    if not held:
        raise RewardlabError(f"{run_dir / SPLIT_FILE}: the run held out no records")
    return held, split
