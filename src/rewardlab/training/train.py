"""The training loop: read it top to bottom.

One process or many (``torchrun`` / ``accelerate launch``) run the same code through HF Accelerate.
Each optimizer step takes a *global* batch of ``batch_size`` comparisons in a seeded order; every process
takes its slice, splits it into micro-batches, and scales each micro-batch's summed loss by
``world_size / units_in_global_batch``, where a loss *unit* is what the loss averages over
(:func:`rewardlab.training.losses.count_units`: a strict pair for bt / margin / scaled_bt, a strict or tied pair for
bt_ties, a prompt for allpairs and plackett_luce). DDP averages gradients over processes, so the update equals
the mean unit loss over the whole global batch: accumulation 4×1 equals batch 1×4, and 2 processes equal 1.

Checkpoints hold weights, optimizer, scheduler and the step; the data order is a pure function of
(seed, epoch), so ``resume`` continues exactly where the run stopped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType, set_seed
from transformers.modeling_layers import GradientCheckpointingLayer

from rewardlab.core import progress, trackers
from rewardlab.core.atomic import atomic_write_text, publish_dir
from rewardlab.core.bounds import (
    Fraction,
    NonNegative,
    NonNegativeFloat,
    OpenFraction,
    Positive,
    PositiveFloat,
    Seed,
    check_bounds,
)
from rewardlab.core.cli_help import registry_choices
from rewardlab.core.device import check_attn_implementation, check_quantize, check_training_quantize, quantized_loading
from rewardlab.core.errors import RewardlabError
from rewardlab.core.finite import check_weights
from rewardlab.core.interrupt import StopSignals, interrupted, resume_command
from rewardlab.core.jsonstrict import dumps_strict
from rewardlab.core.normstats import measured
from rewardlab.core.outputs import TRAIN_WRITES, check_free_space, claim_output_dir, disk_bytes
from rewardlab.core.ownership import acquire, owns_outputs
from rewardlab.core.sharding import gather_in_order, shard_bounds
from rewardlab.data import ReadOptions, fingerprint, load_comparisons, parse_score_weights, split_by_prompt, synthetic
from rewardlab.data.formats import format_help
from rewardlab.data.record import Comparison, per_record
from rewardlab.data.splits import write_split
from rewardlab.metrics.accuracy import accuracy_summary
from rewardlab.metrics.pairs import record_pairs
from rewardlab.metrics.summary import evaluate_scores
from rewardlab.models.lora import TrainableWeights, apply_lora, prepare_quantized
from rewardlab.models.reward_model import RewardModel
from rewardlab.multiobjective.model import init_from_attribute
from rewardlab.multiobjective.options import TRAINERS as MULTIOBJECTIVE_TRAINERS
from rewardlab.multiobjective.options import MultiObjectiveOptions
from rewardlab.probes.augment import augment_records, parse_augment
from rewardlab.training.collate import collate_packed, collate_pairs, preference_pairs
from rewardlab.training.losses import LOSSES, LossOptions, LossType, batch_loss, count_units
from rewardlab.training.losses import check_options as check_loss_options
from rewardlab.training.recipe import (
    Checkpointing,
    MetricsLog,
    NonFiniteGuard,
    UpdateResult,
    any_process,
    config_defaults,
    load_checkpoint,
    make_accelerator,
    make_optimizer,
    make_scheduler,
    restored_window,
    update,
)
from rewardlab.training.recipe import save_checkpoint as recipe_save_checkpoint
from rewardlab.training.samplers import SAMPLERS, StepPlan


@dataclass
class TrainConfig(MultiObjectiveOptions):
    # data
    data: str = "embedded"  # a file / saved dataset / hub name, or "embedded" (rewardlab.data.synthetic)
    format: str = "auto"  # the input format (rewardlab.data.formats.FORMAT_SPECS)
    eval_data: str | None = None  # default: a held-out split of `data` by prompt hash
    eval_fraction: Fraction = 0.1  # share of prompts held out when eval_data is not given
    split_seed: Seed = 0  # seed of the prompt-hash split
    # skip malformed rows (counted and reported) instead of stopping at the first. Off: a model trained without
    # them would not say so (eval's default is on: its report counts what it skipped; docs/cli.md)
    skip_invalid: bool = False
    limit: Positive | None = None  # use only the first N records of `data`
    augment: str | None = (
        None  # offsetbias[:FRACTION]: add off-topic negatives built from the training split (rewardlab.probes.augment)
    )
    embedded_size: Positive = 4000  # records generated when data == "embedded"
    # model
    backbone: str = "minilm"  # embedded name (minilm, smollm2-135m), local dir or hub id
    # eager | sdpa | flash_attention_2 (default: transformers' choice), as the scoring commands' (--objective
    # preference; checked before anything loads)
    attn_implementation: str | None = None
    max_length: Positive = 256  # tokens per (prompt, response) text
    truncation: str = "prompt_left"  # prompt_left (cut the prompt's start, keep the response) | right
    padding_side: str | None = None  # default: right (encoders must be right-padded)
    # loss
    loss: str = "bt"  # the loss (rewardlab.training.losses.LOSSES, docs/losses.md)
    # adds coef · (r_w + r_l)² per pair (K-wise losses: (2·mean_k r_k)² per prompt): keeps rewards centred on 0
    center_coef: NonNegativeFloat = 0.0
    label_smoothing: Fraction = 0.0  # pairwise losses: (1 - ε)·ℓ(Δ) + ε·ℓ(-Δ)
    margin_table: str = "none"  # none (margin = margin_scale × data margin) | llama2_small | llama2_large
    margin_scale: float = 1.0  # margin loss: multiplies the margin
    tie_model: str = "davidson"  # bt_ties: davidson | rao_kupper
    tie_param: PositiveFloat | None = None  # Davidson ν (default 1) or Rao-Kupper θ (default 2)
    # plackett_luce: only the first k tiers of each ranking (a tier: the responses tied at one rank; None: all)
    top_k: Positive | None = None
    score_weights: str | None = None  # ratings → one score, e.g. "helpfulness=1,correctness=0.5"
    sampler: str = "random"  # random | grouped (all records of a prompt in one step) | tokens (by total tokens)
    max_tokens: Positive | None = None  # tokens sampler: real tokens per optimizer step
    # optimisation
    epochs: PositiveFloat = 1.0  # one epoch, as InstructGPT (Ouyang et al. 2022): reward models overfit after one
    max_steps: Positive | None = None  # stop after this many optimizer steps (overrides epochs)
    batch_size: Positive = 16  # comparisons per optimizer step, over all processes
    micro_batch_size: Positive | None = None  # comparisons per forward; default: the whole local batch
    micro_batch_tokens: Positive | None = None  # also cap a forward's real tokens (a longer comparison goes alone)
    # peak learning rate (AdamW). 5e-5 suits a full fine-tune of a pretrained backbone; the quickstart and the MiniLM
    # recipes use 1e-4 (MiniLM on the embedded data: held-out 0.878 after one epoch at 1e-4, 0.831 at 5e-5)
    lr: PositiveFloat = 5e-5
    weight_decay: NonNegativeFloat = 0.0  # AdamW weight decay of the matrices (biases and norms get none)
    warmup_ratio: Fraction = 0.05  # share of the steps spent warming up linearly
    lr_schedule: str = "linear"  # linear | cosine | constant (after warmup)
    max_grad_norm: NonNegativeFloat = 1.0  # gradient clipping (global norm); 0: no clipping
    gradient_checkpointing: bool = False  # recompute activations in the backward: less memory, ~30% more compute
    # with gradient_checkpointing: every n-th layer (1: all, least memory; 2: half, less recompute)
    gradient_checkpointing_every: Positive = 1
    # padding-free, prefix-shared forward for training and held-out scoring (rewardlab.models.packing); exact to ~1e-6 in
    # fp32. Models it does not cover run padded.
    packing: bool = False
    token_budget: Positive | None = None  # packed row width in tokens (default max(512, hidden size))
    # lora
    # LoRA (peft): lora_r > 0 trains low-rank adapters instead of all weights; the scalar head is always trained
    # and saved in full. `rewardlab export --merge` folds the adapters into a plain transformers directory.
    lora_r: NonNegative = 0
    lora_alpha: PositiveFloat = 16.0  # LoRA scaling: alpha / r
    lora_dropout: OpenFraction = 0.0  # 0: deterministic, like the rest of rewardlab's training
    lora_target_modules: list[str] | None = None  # default: every linear layer except the head
    # QLoRA: 4bit (NF4, double quantization, bf16 matmuls where the device has bfloat16) | 8bit (LLM.int8()): load the
    # backbone quantized with bitsandbytes (CUDA; CPU: bitsandbytes >= 0.50) and train LoRA adapters over it (needs
    # --lora-r; --objective preference, no --fsdp). The saved model is the adapter + the base's path (docs/training.md)
    quantize: str | None = None
    # precision
    precision: str = (
        "auto"  # auto (bf16 on GPU, fp32 on CPU) | fp32 | bf16 (autocast) | bf16-pure (bf16 weights, fp32 masters)
    )
    seed: Seed = 0  # model head init, data order, dropout
    # distributed
    # shard weights, gradients and optimizer states over the processes with PyTorch FSDP2 (rewardlab.training.fsdp; run under
    # torchrun, CPU/gloo or GPU); checkpoints are sharded, the saved model is whole
    fsdp: bool = False
    # output
    output_dir: str = "runs/rm"  # model/, checkpoints/, metrics.jsonl, train_summary.json
    log_every: Positive = 10  # steps between metrics.jsonl rows (and, without a terminal, log lines)
    # auto (a progress bar on a terminal, else one timestamped line per --log-every steps) | bar | text | json
    log_format: str = "auto"
    # a hub repo OWNER/NAME: after training, upload the model with a generated model card through huggingface_hub
    # (checked before training: a token, a hub not switched off; rewardlab.core.hub)
    push_to_hub: str | None = None
    # experiment trackers (rewardlab.core.trackers), all local: auto (tensorboard when installed) | none | a list such as
    # tensorboard,mlflow,wandb,trackio
    report_to: str = "auto"
    run_name: str | None = None  # the trackers' run name (default: the output directory's name)
    # evaluation
    eval_every: NonNegative = 0  # steps between held-out evaluations; 0: only at the end
    eval_batch_size: Positive = 32  # texts per forward when scoring the held-out split
    # checkpoints
    # steps between checkpoints (default: 500 where the trainer checkpoints; --objective gating has none; 0: none;
    # Ctrl-C / SIGTERM always write one): a killed run loses at most this many
    save_every: NonNegative | None = None
    keep_checkpoints: Positive = 2  # the newest N periodic checkpoints are kept
    resume: bool = False  # continue from the newest checkpoint in output_dir (exactly)
    overwrite: bool = False  # replace the run in a non-empty output_dir (refused without --resume or --overwrite)
    stop_after: Positive | None = None  # stop (as if killed) after this many steps; for testing resume
    # a non-finite loss or gradient norm stops the run at that step; N > 0 skips up to N such updates instead
    skip_nonfinite: NonNegative = 0

    # --help lists these fields' choices from their registries (the losses read from losses.py's source: no torch)
    HELP = {"format": format_help, "loss": lambda: registry_choices("rewardlab.training.losses", "LOSSES")}
    # fields that may differ between a run and its resumption
    RESUMABLE = (
        "resume",
        "stop_after",
        "log_every",
        "log_format",
        "push_to_hub",
        "eval_every",
        "save_every",
        "keep_checkpoints",
        "eval_batch_size",
        "report_to",
        "run_name",
        "skip_nonfinite",
        "overwrite",
        "output_dir",
    )  # output_dir: however spelt, or moved
    DEFAULT_SAVE_EVERY = 500  # periodic checkpoints when --save-every is not given (the trainers that checkpoint)

    @property
    def periodic_save_every(self) -> int:
        """Steps between periodic checkpoints: ``--save-every`` when given, else 500 (gating, which trains on cached
        features and keeps no checkpoints, gets 0: its option check refuses an explicit ``--save-every``)."""
        if self.save_every is not None:
            return self.save_every
        return 0 if self.objective == "gating" else self.DEFAULT_SAVE_EVERY

    def __post_init__(self):
        check_bounds(self)  # the declared ranges bind however the config is built
        if self.loss not in {t.value for t in LossType}:  # fail early with the list of valid names
            raise RewardlabError(f"loss must be one of {', '.join(t.value for t in LossType)}, not {self.loss!r}")
        try:
            check_loss_options(self.loss, self.loss_options())
        except ValueError as e:
            raise RewardlabError(str(e)) from None
        parse_score_weights(self.score_weights)
        parse_augment(self.augment)
        if self.sampler not in SAMPLERS:
            raise RewardlabError(f"sampler must be one of {', '.join(SAMPLERS)}, not {self.sampler!r}")
        if self.sampler == "tokens" and (self.max_tokens is None or self.max_tokens < 1):
            raise RewardlabError("sampler 'tokens' needs --max-tokens (real tokens per optimizer step)")
        if self.lr_schedule not in ("linear", "cosine", "constant"):
            raise RewardlabError(f"lr_schedule must be linear, cosine or constant, not {self.lr_schedule!r}")
        if self.truncation not in ("prompt_left", "right"):
            raise RewardlabError(f"truncation must be prompt_left or right, not {self.truncation!r}")
        if self.batch_size < 1 or (self.micro_batch_size is not None and self.micro_batch_size < 1):
            raise RewardlabError("batch_size and micro_batch_size must be positive")
        if self.micro_batch_tokens is not None and self.micro_batch_tokens < 1:
            raise RewardlabError("micro_batch_tokens must be positive")
        if self.log_format not in progress.LOG_FORMATS:
            raise RewardlabError(
                f"log_format must be one of {', '.join(progress.LOG_FORMATS)}, not {self.log_format!r}"
            )
        check_attn_implementation(self.attn_implementation)  # light: a name and an installed package
        if self.attn_implementation is not None and self.objective != "preference":
            raise RewardlabError(
                f"--attn-implementation applies to --objective preference, not {self.objective} "
                "(its model is built with transformers' default attention)"
            )
        if self.precision not in ("auto", "fp32", "bf16", "bf16-pure"):
            raise RewardlabError(f"precision must be auto, fp32, bf16 or bf16-pure, not {self.precision!r}")
        if self.gradient_checkpointing_every < 1:
            raise RewardlabError("gradient_checkpointing_every must be at least 1")
        self.check_multiobjective()
        if self.objective == "preference" and bool(self.init_from) != bool(self.init_attribute):
            raise RewardlabError("--init-from a regression model and --init-attribute go together for a preference run")
        if self.fsdp and self.precision == "bf16-pure":
            raise RewardlabError(
                "--fsdp keeps fp32 shards and computes in bf16 with --precision bf16; "
                "--precision bf16-pure is not supported with it"
            )
        check_training_quantize(  # QLoRA: --lora-r, no --fsdp, a preference model
            self.quantize, lora_r=self.lora_r, fsdp=self.fsdp, objective=self.objective, precision=self.precision
        )
        check_quantize(self.quantize)  # light: a name and an installed package
        if self.fsdp and self.lora_r:
            raise RewardlabError("--fsdp does not shard LoRA adapters; use --lora-r 0 or drop --fsdp")

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    def loss_options(self) -> LossOptions:
        return LossOptions(
            label_smoothing=self.label_smoothing,
            margin_table=self.margin_table,
            margin_scale=self.margin_scale,
            tie_model=self.tie_model,
            tie_param=self.tie_param,
            top_k=self.top_k,
        )

    def read_options(self) -> ReadOptions:
        return ReadOptions(score_weights=parse_score_weights(self.score_weights))


@dataclass
class HeldOut:
    """A finished run's held-out records, their scores and the tokenizer: what its report is written from."""

    records: list[Comparison]
    scores: list[list[float]] | None
    tokenizer: object = None


@dataclass
class TrainResult:
    model_dir: Path
    steps: int
    metrics: list[dict] = field(default_factory=list)
    final_eval: dict | None = None
    report: Path | None = None  # report.md in the run directory (written by the command: rank 0, finished runs)
    data_info: dict = field(default_factory=dict)
    elapsed_s: float = 0.0
    held_out: HeldOut | None = None  # a finished preference run on rank 0 (None after --stop-after)


# ---------------------------------------------------------------------------------------------
def check_loss_fields(loss: str, records: list[Comparison], source: str) -> None:
    """A loss that reads the data's margins (``LossSpec.needs_margin``) needs one for every training pair: said
    after the data is read, before the model loads, naming a record without one (not a failure at step 1)."""
    if not LOSSES[LossType(loss)].needs_margin:
        return
    lacking = [c for c in records if any(m is None for _, _, m in preference_pairs(c))]
    if lacking:
        raise RewardlabError(
            f"--loss {loss} needs a margin for every pair (a 'margin' column, or per-response 'scores'), but "
            f"{len(lacking)} of {len(records)} training records in {source} have none (the first: id {lacking[0].id!r})"
        )


def load_train_eval(cfg: TrainConfig) -> tuple[list[Comparison], list[Comparison], dict]:
    """The training and held-out records, and a summary of what was read (skipped rows, sizes)."""
    info: dict = {"skipped": []}
    if cfg.data == "embedded":
        records = synthetic.generate(cfg.embedded_size, seed=cfg.split_seed)
        info["source"] = f"embedded synthetic (n={cfg.embedded_size}, seed={cfg.split_seed})"
    else:
        loaded = load_comparisons(
            cfg.data, format=cfg.format, skip_invalid=cfg.skip_invalid, limit=cfg.limit, options=cfg.read_options()
        )
        records = loaded.records
        info["skipped"] += [str(e) for e in loaded.skipped]
        info["source"] = cfg.data
    info["n_read"] = len(records) + len(info["skipped"])
    if cfg.eval_data:
        loaded = load_comparisons(
            cfg.eval_data, format=cfg.format, skip_invalid=cfg.skip_invalid, options=cfg.read_options()
        )
        train, held = records, loaded.records
        info["skipped"] += [str(e) for e in loaded.skipped]
    else:
        train, held = split_by_prompt(records, cfg.eval_fraction, seed=cfg.split_seed)
    train, info["augment"] = augment_records(train, cfg.augment, cfg.seed)  # from the training side only
    # records that give the loss nothing to learn (e.g. an all-tie record under a loss that drops ties)
    usable = [c for c in train if count_units(cfg.loss, [c])]
    info["n_without_units"] = len(train) - len(usable)
    train = usable
    if not train:
        raise RewardlabError(f"no training records in {cfg.data} (for loss {cfg.loss})")
    check_loss_fields(cfg.loss, train, cfg.data)
    info.update(n_train=len(train), n_eval=len(held), n_skipped=len(info["skipped"]))
    return train, held, info


def make_plan(records: list, cfg: TrainConfig, world: int, lengths: list[int] | None = None) -> StepPlan:
    """The run's :class:`rewardlab.training.samplers.StepPlan` (``--sampler``): step k's global batch is
    ``plan.step(k)[1]``; ``plan.total`` is ``--max-steps``, else ``--epochs`` epochs (at least one step).

    Default ``random``: a seeded permutation per epoch, cut in batch_size chunks; with several processes,
    the last partial batch of an epoch is dropped so every process gets data. Every sampler's plan is a
    pure function of (seed, epoch). ``lengths``: real tokens of each record (for ``sampler="tokens"``).
    """
    try:
        plan = StepPlan.sampled(records, cfg.sampler, cfg.batch_size, world, cfg.seed, lengths, cfg.max_tokens)
    except ValueError as e:
        raise RewardlabError(str(e)) from None
    plan.total = cfg.max_steps or max(1, math.ceil(cfg.epochs * plan.steps_per_epoch))
    return plan


# ---------------------------------------------------------------------------------------------


# the trainer of each --objective, by dotted name (imported when that objective runs): the scalar trainer below
# knows no feature package; a new objective is one entry here (a multi-objective one: in
# rewardlab.multiobjective.options.TRAINERS, which --objective's check reads too) and its module
TRAINERS = {"preference": "rewardlab.training.train:train_preference", **MULTIOBJECTIVE_TRAINERS}


def train_inputs(cfg: TrainConfig) -> dict:
    """What a run reads, which its output directory must not be nor replace (:func:`rewardlab.core.outputs.claim_output_dir`)."""
    return {"--data": cfg.data, "--eval-data": cfg.eval_data, "--backbone": cfg.backbone, "--init-from": cfg.init_from}


@owns_outputs
def train(cfg: TrainConfig, *, output_claimed: bool = False) -> TrainResult:
    """Train ``cfg.objective``'s model (:data:`TRAINERS`). ``output_claimed``: the caller already checked
    ``output_dir`` (:func:`rewardlab.core.outputs.claim_output_dir`). The run's report is written by the command that
    asked for it (``rewardlab train``: :func:`rewardlab.evaluation.run_report.write_train_report` from the result)."""
    module, _, name = TRAINERS[cfg.objective].partition(":")
    with progress.logging_as(cfg.log_format):  # every bar of the run (tokenizing, held-out scoring) follows it
        return getattr(importlib.import_module(module), name)(cfg, output_claimed=output_claimed)


def train_preference(cfg: TrainConfig, *, output_claimed: bool = False) -> TrainResult:
    """Set up, run the steps (logging, evaluating and checkpointing between them), then evaluate and save."""
    run = setup(cfg, output_claimed)
    try:
        return _run_steps(run)
    except BaseException:  # a stopped run (divergence, a fault) ends the engine too: the caller may train again
        _end(run.accelerator, run.own_group)
        raise


def _run_steps(run: ScalarRun) -> TrainResult:
    """The steps of :func:`train` (logging, evaluating and checkpointing between them), then :func:`finish`."""
    cfg = run.cfg
    mode = progress.log_mode(cfg.log_format)  # a bar on a terminal; timestamped lines (or JSON) in a file
    bar = progress.bar(
        run.total_steps, "train", unit="step", initial=run.start, leave=True, delay=0, show=mode == "bar", mode=mode
    )  # rank 0 draws it
    lines = progress.StepLog(mode, run.total_steps, run.start)
    window = restored_window(_new_window(), run.ckpt.resumed_window, run.accelerator.process_index, run.world)
    with contextlib.closing(bar), StopSignals() as signals:  # Ctrl-C / SIGTERM: after the step, a checkpoint
        for step in range(run.start, run.total_steps):
            done = step + 1
            update_result = train_step(run, step, window)
            bar.update(1)
            if done % cfg.log_every == 0 or done == run.total_steps:
                rec = log_window(run, window, done, update_result)
                lines.log(rec)
                if rec["loss"] is not None and rec["accuracy"] is not None:
                    bar.set_postfix(
                        loss=f"{rec['loss']:.4f}", acc=f"{rec['accuracy']:.3f}", pairs_s=f"{rec['pairs_per_s']:.1f}"
                    )
                window = _new_window()
            if done == run.total_steps:
                break
            if cfg.eval_every and done % cfg.eval_every == 0 and run.eval_recs:
                run.metrics.log({"step": done, **evaluate(run)})
            stop = cfg.stop_after is not None and done >= cfg.stop_after
            signalled = signals.agreed(run.accelerator)
            written = None
            every = cfg.periodic_save_every
            periodic = every and done % every == 0 and not _plugin_sharded(run.accelerator)
            if periodic or stop or signalled:  # (ZeRO-3 / Accelerate FSDP: no periodic ones, docs/scale-out.md)
                written = save_checkpoint(run, done, window)
            if signalled:
                bar.close()
                command = resume_command("train", cfg.output_dir)
                raise interrupted(signals.received, done, run.total_steps, str(written), command)
            if stop:
                _end(run.accelerator, run.own_group)
                return TrainResult(run.out / "model", done, run.metrics.history)
    return finish(run)


@dataclass
class ScalarRun:
    """What a scalar (preference) run holds between its steps; built once by :func:`setup`, never its config."""

    cfg: TrainConfig
    accelerator: Accelerator
    precision: str  # fp32 | bf16 | bf16-pure (auto resolved)
    out: Path
    rm: RewardModel  # the unwrapped model
    model: torch.nn.Module  # what the engine runs (DDP wrapper, FSDP root, or rm)
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    plan: StepPlan  # step k's global batch is plan.step(k)[1]
    train_recs: list[Comparison]
    eval_recs: list[Comparison]
    data_info: dict
    features: dict  # id(record) -> its encoded responses
    n_tokens: dict  # id(record) -> real tokens of all its responses
    total_steps: int
    start: int  # the first step to run (> 0 on resume)
    metrics: MetricsLog
    ckpt: Checkpointing
    guard: NonFiniteGuard
    own_group: bool  # --fsdp started a world of one that must be ended
    t_start: float

    @property
    def world(self) -> int:
        return self.accelerator.num_processes

    @property
    def main(self) -> bool:
        return self.accelerator.is_main_process


def setup(cfg: TrainConfig, output_claimed: bool = False) -> ScalarRun:
    """The engine (Accelerate; FSDP2 with ``--fsdp``), the output directory, the data, the model, optimizer and
    schedule, and (``--resume``) the newest checkpoint."""
    precision = cfg.precision if cfg.precision != "auto" else ("bf16" if torch.cuda.is_available() else "fp32")
    report_to = trackers.tracker_names(cfg.report_to)
    accelerator = make_accelerator(
        precision == "bf16" and not cfg.fsdp, report_to, Path(cfg.output_dir) / "tensorboard"
    )
    if cfg.fsdp and accelerator.distributed_type.value in ("FSDP", "DEEPSPEED"):
        raise RewardlabError(
            f"--fsdp runs PyTorch FSDP2 itself: launch with torchrun or a DDP accelerate config, "
            f"not Accelerate's {accelerator.distributed_type.value} plugin"
        )
    world, main = accelerator.num_processes, accelerator.is_main_process
    if cfg.batch_size < world:
        raise RewardlabError(f"batch_size {cfg.batch_size} is smaller than the number of processes ({world})")
    set_seed(cfg.seed)
    t_start = time.perf_counter()
    out = Path(cfg.output_dir)
    ckpt_root = out / "checkpoints"
    if main and not output_claimed:
        claim_output_dir(
            out,
            resume=cfg.resume,
            overwrite=cfg.overwrite,
            written=TRAIN_WRITES,
            inputs=train_inputs(cfg),
            command="rewardlab train",
        )
    elif not main:
        acquire(out, "rewardlab train")  # every process of the run holds the directory (rank 0 claimed it)
    if main:
        _prepare_output_dir(out)
    if not cfg.resume and main and ckpt_root.exists() and any(ckpt_root.iterdir()):
        raise RewardlabError(f"{ckpt_root} already has checkpoints: pass --resume to continue, or another --output-dir")

    progress.status(f"reading {cfg.data}")
    train_recs, eval_recs, data_info = load_train_eval(cfg)
    progress.status(
        f"{data_info['n_train']} training and {data_info['n_eval']} held-out records; "
        f"loading the backbone {cfg.backbone}"
    )
    data_fp = fingerprint(train_recs)
    backbone = cfg.backbone
    quantized = {}
    if cfg.quantize:  # on this process's device (bitsandbytes checked there: CUDA, or the CPU from 0.50)
        quantized = quantized_loading(cfg.quantize, str(accelerator.device))
        progress.status(f"loading the backbone in {cfg.quantize} on {accelerator.device} ({quantized['describe']})")
        quantized = {k: v for k, v in quantized.items() if k != "describe"}
    if cfg.init_from:  # HelpSteer2-Preference: start from a regression model's attribute output
        backbone = str(init_from_attribute(cfg.init_from, cfg.init_attribute, out / "init"))
    rm = RewardModel.from_backbone(
        backbone,
        max_length=cfg.max_length,
        padding_side=cfg.padding_side,
        truncation=cfg.truncation,
        seed=cfg.seed,
        attn_implementation=cfg.attn_implementation,
        load_kwargs=quantized,
    )
    rm.spec.data_fingerprint = data_fp
    if cfg.quantize:  # QLoRA: the quantized weights frozen, norms and the head in float32, before the adapters
        prepare_quantized(rm)
    if cfg.gradient_checkpointing:
        enable_checkpointing(rm.model, cfg.gradient_checkpointing_every)
    if cfg.lora_r:
        apply_lora(
            rm,
            r=cfg.lora_r,
            alpha=cfg.lora_alpha,
            dropout=cfg.lora_dropout,
            target_modules=cfg.lora_target_modules,
            gradient_checkpointing=cfg.gradient_checkpointing,
        )
    if precision == "bf16-pure":  # bf16 weights, gradients and activations; the optimizer keeps fp32 masters
        rm.model.to(torch.bfloat16)
    if main:
        _check_free_space(out, rm, cfg)
    own_group = False
    if cfg.fsdp:  # after checkpointing and before the optimizer: it must see the DTensor shards
        own_group = _fsdp().ensure_process_group()
        _fsdp().shard(rm.to(accelerator.device), accelerator.device, bf16=precision == "bf16")
    features = {
        id(c): [rm.encoder.encode(c.prompt, r) for r in c.responses]
        for c in progress.track(train_recs, "tokenize", unit="rec")
    }
    n_tokens = {id(c): sum(len(f["input_ids"]) for f in features[id(c)]) for c in train_recs}
    plan = make_plan(train_recs, cfg, world, [n_tokens[id(c)] for c in train_recs])
    total_steps = plan.total
    optimizer = make_optimizer(
        rm.named_parameters(),
        cfg.lr,
        cfg.weight_decay,
        master_weights=precision == "bf16-pure",
        fused=accelerator.device.type == "cuda",
    )
    scheduler = make_scheduler(optimizer, total_steps, cfg.warmup_ratio, cfg.lr_schedule)

    ckpt = Checkpointing(
        ckpt_root, _resume_key(cfg), config_defaults(TrainConfig), data_fp, cfg.keep_checkpoints, sharded=cfg.fsdp
    )
    start = 0
    if cfg.resume:
        start = load_checkpoint(
            ckpt,
            _checkpointed(cfg, rm.model),
            optimizer,
            scheduler,
            read_shards=lambda d: _fsdp().load_sharded(d / _fsdp().SHARDED_DIR, rm, optimizer),
        )
    if cfg.fsdp:
        model, optimizer = rm, accelerator.prepare(optimizer)
    else:
        model, optimizer = accelerator.prepare(rm, optimizer)
    model.train()
    metrics = MetricsLog(out / "metrics.jsonl", main, trackers.start(accelerator, cfg, out, report_to))
    if cfg.resume:
        metrics.truncate(start)
    return ScalarRun(
        cfg,
        accelerator,
        precision,
        out,
        rm,
        model,
        optimizer,
        scheduler,
        plan,
        train_recs,
        eval_recs,
        data_info,
        features,
        n_tokens,
        total_steps,
        start,
        metrics,
        ckpt,
        NonFiniteGuard(cfg.skip_nonfinite, ckpt_root, main),
        own_group,
        t_start,
    )


def train_step(run: ScalarRun, step: int, window: dict) -> UpdateResult:
    """Optimizer step ``step`` (0-based): this process's share of the global batch in micro-batches, each
    backward scaled so the update is the mean unit loss over the whole global batch, then :func:`recipe.update`.
    The step's statistics go into the logging ``window`` (its loss and accuracy only when the update was applied)."""
    cfg, accelerator, model, rm = run.cfg, run.accelerator, run.model, run.rm
    world, rank = run.world, accelerator.process_index
    step_window = {"loss": 0.0, "units": 0, "acc": 0.0, "pairs": 0, "tokens": 0}
    global_batch = [run.train_recs[i] for i in run.plan.step(step)[1]]
    n_units = count_units(cfg.loss, global_batch)
    local = global_batch[rank::world]
    micro = cfg.micro_batch_size or math.ceil(cfg.batch_size / world)
    chunks = micro_batches(local, [run.n_tokens[id(c)] for c in local], micro, cfg.micro_batch_tokens)
    n_real = len(chunks)
    if cfg.fsdp and world > 1:
        chunks = _equal_chunks(chunks, global_batch, world, run.n_tokens, micro, cfg.micro_batch_tokens)
    loss_opts = cfg.loss_options()
    no_sync = _fsdp().no_sync if cfg.fsdp else accelerator.no_sync
    for ci, chunk in enumerate(chunks):
        last = ci == len(chunks) - 1
        feats = [run.features[id(c)] for c in chunk]
        if cfg.packing:
            batch = collate_packed(chunk, feats, rm, cfg.token_budget).to(accelerator.device)
        else:
            batch = collate_pairs(chunk, feats, rm.spec.pad_token_id, rm.spec.padding_side).to(accelerator.device)
        with no_sync(model) if (not last and world > 1) else contextlib.nullcontext():
            with accelerator.autocast():
                rewards = model(**batch.inputs)
            losses = batch_loss(cfg.loss, rewards, batch, cfg.center_coef, loss_opts)
            if ci >= n_real:  # a repeat that only keeps this process in step with the others: no gradient
                accelerator.backward(losses.sum() * 0.0)
                continue
            accelerator.backward(losses.sum() * world / n_units)
        step_window["loss"] += losses.detach().sum().item()
        step_window["units"] += len(losses)
        step_window["acc"] += (rewards[batch.chosen_idx] > rewards[batch.rejected_idx]).sum().item()
        step_window["pairs"] += len(batch.chosen_idx)
        step_window["tokens"] += batch.n_tokens
        _add_reward_stats(window, rewards.detach().float(), batch)
    result = update(
        run.optimizer,
        run.scheduler,
        model.parameters(),
        step=step + 1,
        loss_sum=step_window["loss"],
        max_grad_norm=cfg.max_grad_norm,
        guard=run.guard,
        clip=_fsdp().clip_grad_norm_ if cfg.fsdp else accelerator.clip_grad_norm_,
        any_process=any_process(accelerator),
    )
    if result.applied:
        for k, v in step_window.items():
            window[k] += v
    return result


def log_window(run: ScalarRun, window: dict, done: int, last: UpdateResult) -> dict:
    """The metrics row of the steps since the last one (summed over processes), logged; returned."""
    accelerator, device = run.accelerator, run.accelerator.device
    keys = ("loss", "units", "acc", "pairs", "tokens", "r_sum", "r_n", "m_sum")
    stats = torch.tensor([float(window[k]) for k in keys], dtype=torch.float64, device=device)
    tot = dict(zip(keys, accelerator.reduce(stats, reduction="sum").tolist()))
    extremes = (
        accelerator.gather(torch.tensor([[-window["r_min"], window["r_max"]]], dtype=torch.float64, device=device))
        .max(0)
        .values.tolist()
    )
    dt = time.perf_counter() - window["t"]
    n_skipped = run.guard.skipped
    rec = {
        "step": done,
        "epoch": round(done / run.plan.steps_per_epoch, 4),
        # None: every step of the window was skipped
        "loss": tot["loss"] / tot["units"] if tot["units"] else None,
        "accuracy": tot["acc"] / tot["pairs"] if tot["pairs"] else None,
        "lr": run.scheduler.get_last_lr()[0],
        "grad_norm": last.grad_norm,
        "pairs_per_s": tot["pairs"] / dt,
        "tokens_per_s": tot["tokens"] / dt,
        **_reward_stats(tot, extremes),
        **({"skipped_nonfinite": n_skipped} if n_skipped else {}),
    }
    run.metrics.log(rec)
    return rec


def evaluate(run: ScalarRun) -> dict:
    """Held-out accuracies between steps (:func:`eval_accuracies`), the model back in training mode."""
    rm = run.accelerator.unwrap_model(run.model)
    scores = rm.score_comparisons(
        run.eval_recs, batch_size=run.cfg.eval_batch_size, packing=run.cfg.packing, token_budget=run.cfg.token_budget
    )
    rm.train()
    return eval_accuracies(run.eval_recs, scores)


def save_checkpoint(run: ScalarRun, step: int, window: dict | None = None) -> Path:
    """Checkpoint ``step``; ``window``: the open logging window, so the row that spans a kill is exact on resume."""
    fsdp = run.cfg.fsdp
    write_shards = (lambda d: _fsdp().save_sharded(d / _fsdp().SHARDED_DIR, run.rm, run.optimizer)) if fsdp else None
    weights = None if fsdp else _checkpointed(run.cfg, run.accelerator.unwrap_model(run.rm).model)
    return recipe_save_checkpoint(
        run.ckpt, step, run.accelerator, weights, run.optimizer, run.scheduler, write_shards, window=window
    )


def finish(run: ScalarRun) -> TrainResult:
    """After the last step: score the held-out split (its rewards set the model's normalisation), save the model,
    the summary, the split and the report."""
    cfg, accelerator, out, total_steps = run.cfg, run.accelerator, run.out, run.total_steps
    rm = accelerator.unwrap_model(run.model)
    if run.precision == "bf16-pure":  # evaluate and save the fp32 masters, not their bf16 roundings
        masters = getattr(run.optimizer, "optimizer", run.optimizer).masters()
        rm.model.float()
        for p, master in masters.items():
            p.data.copy_(master)
    final_eval, scores = None, None
    if run.eval_recs:
        progress.status(f"scoring the {len(run.eval_recs)} held-out records")
        scores = _score_across_processes(
            accelerator, rm, run.eval_recs, cfg.eval_batch_size, cfg.packing, cfg.token_budget
        )
        final_eval = evaluate_scores(run.eval_recs, scores, seed=cfg.seed)
        flat = np.array([s for row in scores for s in row])
        try:  # statistics that could not normalise (constant held-out scores) are not written, and it is said
            rm.spec.normalization = {
                **measured([float(x) for x in flat], "the held-out rewards"),
                "source": "held-out split responses",
            }
        except RewardlabError as e:
            rm.spec.normalization = None
            if run.main:
                print(f"rewardlab: warning: no normalisation statistics recorded: {e}", file=sys.stderr)
        run.metrics.log(
            {
                "step": total_steps,
                **_accuracy_keys(final_eval["accuracy"], final_eval["record_accuracy"], final_eval["n_records"]),
                "eval_loss": (final_eval.get("calibration") or {}).get("log_loss"),  # mean -log σ(Δ), pairs
                "eval_mean_reward": float(flat.mean()),
                "eval_min_reward": float(flat.min()),
                "eval_max_reward": float(flat.max()),
                "eval_margin": final_eval.get("mean_margin"),
            }
        )
    # collective under ZeRO-3 / FSDP; None otherwise
    full_state = _fsdp().full_state_dict(run.model) if cfg.fsdp else _gathered_state_dict(accelerator, run.model)
    if run.main:
        _atomic_save_model(rm, out / "model", full_state)
        summary = {
            "config": cfg.to_json(),
            "data": run.data_info,
            "data_fingerprint": run.ckpt.data_fingerprint,
            "steps": total_steps,
            "final_eval": final_eval,
            "world_size": run.world,
        }
        atomic_write_text(out / "train_summary.json", dumps_strict(summary, indent=2, default=str))
        write_split(out, cfg, run.train_recs, run.eval_recs)
    run.metrics.close()
    accelerator.wait_for_everyone()
    _end(accelerator, run.own_group)
    elapsed = time.perf_counter() - run.t_start
    held_out = HeldOut(run.eval_recs, scores, rm.tokenizer) if run.main else None  # what the report reads
    return TrainResult(
        out / "model", total_steps, run.metrics.history, final_eval, None, run.data_info, elapsed, held_out
    )


# ---------------------------------------------------------------------------------------------
def _fsdp():
    from rewardlab.training import (
        fsdp,  # lazy: torch.distributed's FSDP/DCP take ~3 s to import; only --fsdp runs pay it
    )

    return fsdp


def _checkpointed(cfg: TrainConfig, model):
    """What a checkpoint saves and restores of ``model``: all its weights; with ``--quantize`` the trainable ones
    (:class:`rewardlab.models.lora.TrainableWeights`: the frozen quantized backbone is rebuilt from the base)."""
    return TrainableWeights(model) if cfg.quantize else model


def _end(accelerator, own_group: bool) -> None:
    accelerator.end_training()
    if own_group and torch.distributed.is_initialized():  # the world of one that --fsdp started (if Accelerate
        torch.distributed.destroy_process_group()  # has not ended it)


def _equal_chunks(
    chunks: list, global_batch: list, world: int, n_tokens: dict, micro: int, micro_tokens: int | None
) -> list:
    """``chunks`` extended with repeats of its last chunk up to the most micro-batches any process has this step:
    under FSDP every forward all-gathers the layers, so every process must run as many. The caller gives the
    repeats no gradient and does not count them."""
    counts = [
        len(micro_batches(part, [n_tokens[id(c)] for c in part], micro, micro_tokens))
        for part in (global_batch[r::world] for r in range(world))
    ]
    filler = chunks[-1] if chunks else global_batch[:1]
    return chunks + [filler] * (max(counts) - len(chunks))


def _score_across_processes(
    accelerator, rm: RewardModel, records, batch_size: int, packing: bool = False, token_budget: int | None = None
) -> list[list[float]]:
    """Every response's reward, each process scoring a contiguous share, gathered to all processes in order.

    The held-out rewards (and so ``spec.normalization``) then cover every record exactly once, whatever the
    number of processes; every process runs the same number of batches (shares are padded with repeats that
    are dropped), which sharded engines (ZeRO-3, FSDP) need.
    """
    flat = [(c.prompt, r) for c in records for r in c.responses]
    world, rank = accelerator.num_processes, accelerator.process_index
    if world == 1:
        return per_record(records, rm.score(flat, batch_size=batch_size, packing=packing, token_budget=token_budget))
    lo, hi = shard_bounds(len(flat), rank, world)  # rewardlab.core.sharding: the blocks data-parallel scoring uses
    part = flat[lo:hi]
    n_real = len(part)
    part = part + [flat[0]] * (shard_bounds(len(flat), 0, world)[1] - n_real)  # every share as long as the first
    # padded, not packed: the number of packed forwards depends on the texts, and sharded engines need
    # every process to run the same number
    mine = list(rm.score(part, batch_size=batch_size, packing=False)[:n_real])
    return per_record(records, gather_in_order(mine, rank, world))


def micro_batches(records: list, tokens: list[int], max_records: int, max_tokens: int | None = None) -> list[list]:
    """Consecutive chunks of a process's share of a step, each at most ``max_records`` comparisons and, when given,
    ``max_tokens`` real tokens (``tokens[i]``: all responses of ``records[i]``); a comparison longer than
    ``max_tokens`` forms a chunk alone. Every loss is summed over the step's units before the update, so the
    split changes memory and speed, not the update (tested against one chunk)."""
    chunks, cur, cur_tokens = [], [], 0
    for rec, n in zip(records, tokens):
        if cur and (len(cur) == max_records or (max_tokens is not None and cur_tokens + n > max_tokens)):
            chunks.append(cur)
            cur, cur_tokens = [], 0
        cur.append(rec)
        cur_tokens += n
    return chunks + [cur] if cur else chunks


def enable_checkpointing(model, every: int = 1) -> list[int]:
    """Activation checkpointing (non-reentrant) of every ``every``-th transformer layer (layers 0, n, 2n, ...);
    returns their indices. Selective by layer, as torchtune's ``ac_freq``: a checkpointed layer keeps only its input
    and recomputes the rest in the backward; the others keep all their activations."""
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    layers = [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]
    for i, layer in enumerate(layers):
        layer.gradient_checkpointing = i % every == 0
    return [i for i, layer in enumerate(layers) if layer.gradient_checkpointing]


def eval_accuracies(records, scores) -> dict:
    """``eval_accuracy``: pair accuracy, over every strict pair of the records; ``eval_record_accuracy``: the share
    of records all of whose strict pairs are won (plain data: the chosen response beats all others); judge-tied
    pairs count for neither (:func:`rewardlab.metrics.accuracy_summary`, strict). For K = 2 the two are equal.
    ``scores[i]``: the K_i rewards of ``records[i]``."""
    pairs, tied = record_pairs(records)
    s = accuracy_summary(scores, [c.chosen for c in records], n_boot=0, pairs=pairs, tied=tied)
    return _accuracy_keys(s["accuracy"], s["record_accuracy"], len(records))


def _accuracy_keys(pair_accuracy: float, record_accuracy: float, n: int) -> dict:
    """What train writes: "accuracy" is always pair accuracy, the record-level one is "record_accuracy"."""
    return {"eval_accuracy": pair_accuracy, "eval_record_accuracy": record_accuracy, "eval_n": n}


def _new_window() -> dict:
    return {
        "loss": 0.0,
        "units": 0,
        "acc": 0.0,
        "pairs": 0,
        "tokens": 0,
        "r_sum": 0.0,
        "r_n": 0,
        "m_sum": 0.0,
        "r_min": math.inf,
        "r_max": -math.inf,
        "t": time.perf_counter(),
    }


def _add_reward_stats(window: dict, rewards: torch.Tensor, batch) -> None:
    """TRL's reward statistics over a logging window: every reward's sum / min / max, the chosen-minus-other margin."""
    if not bool(torch.isfinite(rewards).all()):  # a diverged step (the divergence guard reports it)
        return
    if rewards.numel():
        window["r_sum"] += rewards.sum().item()
        window["r_n"] += rewards.numel()
        window["r_min"] = min(window["r_min"], rewards.min().item())
        window["r_max"] = max(window["r_max"], rewards.max().item())
    window["m_sum"] += (rewards[batch.chosen_idx] - rewards[batch.rejected_idx]).sum().item()


def _reward_stats(tot: dict, extremes: list[float]) -> dict:
    if not tot["r_n"]:
        return {}
    return {
        "mean_reward": tot["r_sum"] / tot["r_n"],
        "min_reward": -extremes[0],
        "max_reward": extremes[1],
        "margin": tot["m_sum"] / max(tot["pairs"], 1),
    }


def _prepare_output_dir(out: Path) -> None:
    """Create ``out``, prove it is writable, and remove what a killed run left behind: temporary model and
    checkpoint directories (``.model.tmp<pid>``, ``.model.old<pid>``, ``checkpoints/.tmp-step-*``)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as e:
        raise RewardlabError(f"--output-dir {out} is not writable: {e.strerror or e}") from None
    leftovers = [*out.glob(".model.tmp*"), *out.glob(".model.old*"), *(out / "checkpoints").glob(".tmp-step-*")]
    for p in leftovers:
        shutil.rmtree(p, ignore_errors=True)
    if leftovers:
        print(
            f"rewardlab: removed {len(leftovers)} temporary director(ies) left by an interrupted run in {out}",
            file=sys.stderr,
        )


def _check_free_space(out: Path, rm: RewardModel, cfg: TrainConfig) -> None:
    """Refuse to start when ``out``'s disk cannot hold what the run will write: the model and, when checkpoints
    are kept, ``keep_checkpoints + 1`` of them (weights + AdamW's two moments each), plus 10%."""
    weights = sum(p.numel() * p.element_size() for p in rm.model.state_dict().values())
    trainable = sum(p.numel() * 4 for p in rm.parameters() if p.requires_grad)
    n_ckpt = cfg.keep_checkpoints + 1 if (cfg.periodic_save_every or cfg.stop_after) else 0
    need = int(1.1 * (weights + n_ckpt * (weights + 2 * trainable)))
    # what the run already has there (its checkpoints on --resume, its model) is not written again on top
    have = disk_bytes([out / "model", out / "checkpoints"])
    check_free_space(
        out, need, "--output-dir", have=have, what=f"model + {n_ckpt} checkpoints; or lower --keep-checkpoints"
    )


def _plugin_sharded(accelerator) -> bool:
    """Accelerate's DeepSpeed ZeRO-3 or FSDP plugin (not ``--fsdp``): the weights are sharded by the engine."""
    dt = accelerator.distributed_type
    return dt == DistributedType.FSDP or (
        dt == DistributedType.DEEPSPEED and accelerator.state.deepspeed_plugin.zero_stage == 3
    )


def _gathered_state_dict(accelerator, model) -> dict | None:
    """The full weights of a sharded model (DeepSpeed ZeRO-3, FSDP), gathered on every process; None when the
    unwrapped model already holds them (one process, DDP, ZeRO-1/2). Keys are those of ``rm.model``."""
    if not _plugin_sharded(accelerator):
        return None
    state = accelerator.get_state_dict(model)
    return {k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")}


def _atomic_save_model(rm: RewardModel, target: Path, state_dict: dict | None = None) -> None:
    check_weights((state_dict or rm.model.state_dict()).items(), f"refusing to write {target}")
    publish_dir(target, lambda tmp: rm.save(tmp, state_dict=state_dict))


def _resume_key(cfg: TrainConfig) -> dict:
    return {k: v for k, v in cfg.to_json().items() if k not in TrainConfig.RESUMABLE}
