"""The default job: untrained model on the held-out split, train, trained model on the same split, one report."""

from __future__ import annotations

import time
from pathlib import Path

from rewardlab.core import progress
from rewardlab.core.outputs import TRAIN_WRITES, claim_output_dir
from rewardlab.core.ownership import owns_outputs
from rewardlab.core.provenance import provenance
from rewardlab.data import fingerprint
from rewardlab.evaluation.report import write_examples, write_report
from rewardlab.evaluation.scores import evaluate_model
from rewardlab.models.reward_model import RewardModel
from rewardlab.training.train import TrainConfig, load_train_eval, train, train_inputs

QUICKSTART_WRITES = TRAIN_WRITES + (
    "examples-untrained.jsonl",
    "examples-trained.jsonl",
    "report.md",
    "report.html",
    "report.json",
)


@owns_outputs
def run_quickstart(cfg: TrainConfig) -> Path:
    t0 = time.perf_counter()
    out = claim_output_dir(
        cfg.output_dir,
        resume=cfg.resume,
        overwrite=cfg.overwrite,
        written=QUICKSTART_WRITES,
        inputs=train_inputs(cfg),
        command="rewardlab quickstart",
    )
    out.mkdir(parents=True, exist_ok=True)
    _, held, info = load_train_eval(cfg)
    untrained = RewardModel.from_backbone(
        cfg.backbone, max_length=cfg.max_length, padding_side=cfg.padding_side, truncation=cfg.truncation, seed=cfg.seed
    )
    progress.status(f"scoring the {len(held)} held-out records with the untrained model")
    before, before_scores = evaluate_model(untrained, held, cfg.eval_batch_size, cfg.seed)
    write_examples(out / "examples-untrained.jsonl", held, before_scores)
    del untrained
    t_train = time.perf_counter()
    result = train(cfg, output_claimed=True)
    t_train = time.perf_counter() - t_train
    trained = RewardModel.load(result.model_dir)
    progress.status(f"scoring the {len(held)} held-out records with the trained model")
    after, after_scores = evaluate_model(trained, held, cfg.eval_batch_size, cfg.seed)
    write_examples(out / "examples-trained.jsonl", held, after_scores)
    notes = [
        f"data: {info['source']}; {info['n_train']} training and {info['n_eval']} held-out records "
        f"(split by prompt hash, no prompt on both sides); {info['n_skipped']} invalid records skipped",
        f"backbone: {cfg.backbone}; {result.steps} optimizer steps of {cfg.batch_size} comparisons, "
        f"{cfg.epochs} epoch(s), loss {cfg.loss}, lr {cfg.lr}",
        f"training took {t_train:.0f} s; the whole job {time.perf_counter() - t0:.0f} s",
        f"trained model: {result.model_dir}",
    ]
    prov = provenance(config=cfg.to_json(), data_fingerprint=fingerprint(held), tokenizer=trained.tokenizer)
    _, md = write_report(
        out,
        {"untrained": before, "trained": after},
        title="rewardlab quickstart: held-out accuracy before and after training",
        provenance=prov,
        notes=notes,
        curves={"trained": out},
    )
    return Path(md)
