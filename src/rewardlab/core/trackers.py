"""Experiment trackers through HF Accelerate: ``--report-to tensorboard,wandb,mlflow,trackio,...`` and ``--run-name``.

Every tracker Accelerate knows can be named (``accelerate.tracking.LOGGER_TYPE_TO_CLASS``); none is required: the
default ``auto`` is TensorBoard when it is installed (what rewardlab always wrote), ``none`` is none. Everything
stays on this machine unless the user says otherwise: TensorBoard writes ``OUTPUT_DIR/tensorboard/RUN_NAME``,
MLflow a file store in ``OUTPUT_DIR/mlruns`` (unless ``$MLFLOW_TRACKING_URI`` is set), W&B runs in offline mode
(unless ``$WANDB_MODE`` is set) under ``OUTPUT_DIR``, trackio keeps its local store.

What is logged, under TRL's names so a TRL user's dashboards carry over (``train/``, ``eval/`` namespaces): the
rows of ``metrics.jsonl`` mapped by :data:`TAGS` — loss, accuracy, learning rate, gradient norm, throughput, the
reward statistics (mean / min / max reward, mean margin), held-out accuracy and loss. Counts (``eval_n``, units,
pairs) are not curves and are not logged.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from rewardlab.core.errors import RewardlabError

# metrics.jsonl key -> tracker tag (what is not here is not logged)
TAGS = {
    "loss": "train/loss",
    "accuracy": "train/accuracy",
    "lr": "train/learning_rate",
    "grad_norm": "train/grad_norm",
    "epoch": "train/epoch",
    "pairs_per_s": "train/pairs_per_second",
    "tokens_per_s": "train/tokens_per_second",
    "mean_reward": "train/mean_reward",
    "min_reward": "train/min_reward",
    "max_reward": "train/max_reward",
    "margin": "train/margin",
    "eval_accuracy": "eval/accuracy",
    "eval_record_accuracy": "eval/record_accuracy",
    "eval_loss": "eval/loss",
    "eval_mean_reward": "eval/mean_reward",
    "eval_min_reward": "eval/min_reward",
    "eval_max_reward": "eval/max_reward",
    "eval_margin": "eval/margin",
}
PIP = {
    "tensorboard": "tensorboard",
    "wandb": "wandb",
    "mlflow": "mlflow-skinny",
    "trackio": "trackio",
    "comet_ml": "comet-ml",
    "aim": "aim",
    "clearml": "clearml",
    "dvclive": "dvclive",
    "swanlab": "swanlab",
}


def _known() -> list[str]:
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS  # lazy: ~1.6 s to import; only --report-to needs it

    return list(LOGGER_TYPE_TO_CLASS)


def _installed(name: str) -> bool:
    module = {"tensorboard": "tensorboard"}.get(name, name)
    if name == "tensorboard":  # accelerate also takes tensorboardX
        return (
            importlib.util.find_spec("tensorboard") is not None or importlib.util.find_spec("tensorboardX") is not None
        )
    return importlib.util.find_spec(module) is not None


def tracker_names(report_to: str) -> list[str]:
    """The trackers ``report_to`` names (``auto``: tensorboard when installed; ``none``: none). An unknown name or
    one that is not installed stops with what to do."""
    text = (report_to or "none").strip().lower()
    if text == "none":
        return []
    if text == "auto":
        return ["tensorboard"] if _installed("tensorboard") else []
    names = [n.strip() for n in text.split(",") if n.strip()]
    known = _known()
    for n in names:
        if n not in known:
            raise RewardlabError(f"--report-to: unknown tracker {n!r}; choose from {', '.join(known)} (or auto, none)")
        if not _installed(n):
            raise RewardlabError(f"--report-to {n}: the package is not installed (pip install {PIP.get(n, n)})")
    return list(dict.fromkeys(names))


def init_kwargs(names: list[str], run_name: str, out: Path) -> dict:
    """Per-tracker arguments that keep every tracker local (see the module docstring) and name the run."""
    kw: dict = {}
    if "wandb" in names:
        os.environ.setdefault("WANDB_MODE", "offline")
        kw["wandb"] = {"name": run_name, "dir": str(out)}
    if "mlflow" in names:
        if "MLFLOW_TRACKING_URI" not in os.environ:  # a local file store (mlflow 3 asks to opt in to it)
            os.environ["MLFLOW_TRACKING_URI"] = (out / "mlruns").resolve().as_uri()
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        kw["mlflow"] = {"run_name": run_name}
    if "trackio" in names:
        kw["trackio"] = {"name": run_name}
    return kw


class Run:
    """The run's trackers: ``log(metrics row)`` sends its :func:`tagged` values (rank 0; Accelerate finishes the
    trackers in ``end_training``)."""

    def __init__(self, accelerator):
        self.accelerator = accelerator

    def log(self, rec: dict) -> None:
        values = tagged(rec)
        if values:
            self.accelerator.log(values, step=int(rec["step"]))

    def close(self) -> None:
        pass


def start(accelerator, cfg, out: Path, names: list[str]) -> Run | None:
    """Start the trackers ``names`` (the Accelerator was made with ``log_with=names``); the config is stored as the
    run's parameters. None when there are none."""
    if not names:
        return None
    run_name = cfg.run_name or Path(cfg.output_dir).resolve().name
    config = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in cfg.to_json().items()}
    accelerator.init_trackers(run_name, config=config, init_kwargs=init_kwargs(names, run_name, out))
    return Run(accelerator)


def tagged(rec: dict) -> dict:
    """The loggable values of a metrics row under their tracker tags (numbers only, counts left out)."""
    return {
        TAGS[k]: float(v)
        for k, v in rec.items()
        if k in TAGS and isinstance(v, (int, float)) and not isinstance(v, bool)
    }
