"""The training loop: read it top to bottom.

One process or many (``torchrun`` / ``accelerate launch``) run the same code through HF Accelerate.
Each optimizer step takes a *global* batch of ``batch_size`` comparisons in a seeded order; every process
takes its slice, splits it into micro-batches, and scales each micro-batch's summed loss by
``world_size / units_in_global_batch``, where a loss *unit* is what the loss averages over
(:func:`rewardlab.losses.count_units`: a strict pair for bt / margin / scaled_bt, a strict or tied pair for
bt_ties, a prompt for allpairs and plackett_luce). DDP averages gradients over processes, so the update equals
the mean unit loss over the whole global batch: accumulation 4×1 equals batch 1×4, and 2 processes equal 1.

Checkpoints hold weights, optimizer, scheduler and the step; the data order is a pure function of
(seed, epoch), so ``resume`` continues exactly where the run stopped.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from rewardlab import progress, trackers
from rewardlab.atomic import atomic_write_text, fsync_tree, readable_like_the_rest, replace_dir
from rewardlab.bounds import Fraction, NonNegative, NonNegativeFloat, OpenFraction, Positive, PositiveFloat, Seed
from rewardlab.collate import collate_pairs
from rewardlab.data.formats import format_help
from rewardlab.data.record import Comparison
from rewardlab.errors import RewardlabError
from rewardlab.finite import NonFiniteError, check_weights, step_problem
from rewardlab.jsonstrict import dumps_strict
from rewardlab.losses import LossType, batch_loss, count_units
from rewardlab.model import RewardModel
from rewardlab.multiobjective.train import OBJECTIVES, check_options as check_multiobjective, init_from_attribute
from rewardlab.outputs import claim_output_dir
from rewardlab.packing import collate_packed
from rewardlab.probes.augment import augment_records, parse_augment
from rewardlab.run_report import write_train_report
from rewardlab.splits import write_split


@dataclass
class TrainConfig:
    # data
    data: str = "embedded"  # a file / saved dataset / hub name, or "embedded" (rewardlab.data.synthetic)
    format: str = "auto"  # the input format (rewardlab.data.formats.FORMAT_SPECS)
    eval_data: str | None = None  # default: a held-out split of `data` by prompt hash
    eval_fraction: Fraction = 0.1  # share of prompts held out when eval_data is not given
    split_seed: Seed = 0  # seed of the prompt-hash split
    skip_invalid: bool = False  # skip malformed rows (counted and reported) instead of stopping at the first
    limit: Positive | None = None  # use only the first N records of `data`
    augment: str | None = None  # offsetbias[:FRACTION]: add off-topic negatives built from the training split (rewardlab.probes.augment)
    embedded_size: Positive = 4000  # records generated when data == "embedded"
    # model
    backbone: str = "minilm"  # embedded name (minilm, smollm2-135m), local dir or hub id
    max_length: Positive = 256  # tokens per (prompt, response) text
    truncation: str = "prompt_left"  # prompt_left (cut the prompt's start, keep the response) | right
    padding_side: str | None = None  # default: right (encoders must be right-padded)
    # loss
    loss: str = "bt"  # bt | margin | scaled_bt | allpairs | plackett_luce | bt_ties (rewardlab.losses.LOSSES; docs/losses.md)
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
    lr: PositiveFloat = 5e-5  # peak learning rate (AdamW)
    weight_decay: NonNegativeFloat = 0.0  # AdamW weight decay of the matrices (biases and norms get none)
    warmup_ratio: Fraction = 0.05  # share of the steps spent warming up linearly
    lr_schedule: str = "linear"  # linear | cosine | constant (after warmup)
    max_grad_norm: NonNegativeFloat = 1.0  # gradient clipping (global norm); 0: no clipping
    gradient_checkpointing: bool = False  # recompute activations in the backward: less memory, ~30% more compute
    checkpoint_every: Positive = 1  # with gradient_checkpointing: every n-th layer (1: all, least memory; 2: half, less recompute)
    # padding-free, prefix-shared forward for training and held-out scoring (rewardlab.packing); exact to ~1e-6 in
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
    # precision
    precision: str = "auto"  # auto (bf16 on GPU, fp32 on CPU) | fp32 | bf16 (autocast) | bf16-pure (bf16 weights, fp32 masters)
    seed: Seed = 0  # model head init, data order, dropout
    # multi-objective
    # rewardlab.multiobjective: preference (a scalar BT-family model) | regression (K attribute outputs, masked
    # MSE) | gating (ArmoRM stage 2 on a regression model given by --init-from)
    objective: str = "preference"
    attributes: str | None = None  # regression: rating columns / attributes, e.g. "helpfulness,correctness"
    attribute_scales: str | None = None  # scales of attributes without a known one, e.g. "quality=0:9"
    weights: str | None = None  # regression scaliser: nemotron | equal | llama2[:...] | helpfulness=0.3,...
    stage1: str = "gradient"  # regression: gradient (train backbone + head) | ridge (frozen features, closed form)
    init_from: str | None = None  # gating: the regression model; preference: start BT from its --init-attribute
    init_attribute: str | None = None  # preference --init-from: the attribute whose output becomes the reward
    reference_data: str | None = None  # gating: pairs the verbosity λ are fitted on (default: the training pairs)
    debias: bool = True  # gating: verbosity debiasing r' = r - λ·r_verbosity before the gate
    verbosity_attribute: str = "verbosity"  # gating: the attribute whose reward measures verbosity
    debias_threshold: NonNegativeFloat = 0.03  # λ_j: smallest grid value with Spearman(r'_j, r_verbosity) <= this
    gate_hidden: Positive = 1024  # gate MLP width (ArmoRM: 1024)
    gate_layers: Positive = 3  # gate hidden layers
    gate_steps: Positive = 500  # gating: optimizer steps of the gate (backbone and probes frozen)
    gate_batch_size: Positive = 1024  # gating: pairs per gate step (on cached features)
    gate_lr: PositiveFloat = 1e-3  # gating: AdamW learning rate of the gate (cosine schedule)
    feature_cache: str | None = None  # where cached hidden states go (default: OUTPUT_DIR/features)
    # distributed
    # shard weights, gradients and optimizer states over the processes with PyTorch FSDP2 (rewardlab.fsdp; run under
    # torchrun, CPU/gloo or GPU); checkpoints are sharded, the saved model is whole
    fsdp: bool = False
    # output
    output_dir: str = "runs/rm"  # model/, checkpoints/, metrics.jsonl, train_summary.json
    log_every: Positive = 10  # steps between metrics.jsonl rows
    # experiment trackers (rewardlab.trackers), all local: auto (tensorboard when installed) | none | a list such as
    # tensorboard,mlflow,wandb,trackio
    report_to: str = "auto"
    run_name: str | None = None  # the trackers' run name (default: the output directory's name)
    # evaluation
    eval_every: NonNegative = 0  # steps between held-out evaluations; 0: only at the end
    eval_batch_size: Positive = 32  # texts per forward when scoring the held-out split
    # checkpoints
    save_every: NonNegative = 0  # steps between checkpoints; 0: only at the end
    keep_checkpoints: Positive = 2  # the newest N periodic checkpoints are kept
    resume: bool = False  # continue from the newest checkpoint in output_dir (exactly)
    overwrite: bool = False  # replace the run in a non-empty output_dir (refused without --resume or --overwrite)
    stop_after: Positive | None = None  # stop (as if killed) after this many steps; for testing resume
    # a non-finite loss or gradient norm stops the run at that step; N > 0 skips up to N such updates instead
    skip_nonfinite: NonNegative = 0

    # fields that may differ between a run and its resumption
    # --help lists these fields' choices from their registries
    HELP = {"format": format_help}
    RESUMABLE = ("resume", "stop_after", "log_every", "eval_every", "save_every", "keep_checkpoints", "eval_batch_size",
                 "report_to", "run_name", "skip_nonfinite", "overwrite", "output_dir")  # output_dir: however spelt, or moved

    def __post_init__(self):
        from rewardlab.data import parse_score_weights
        from rewardlab.losses import check_options
        from rewardlab.samplers import SAMPLERS

        if self.loss not in {t.value for t in LossType}:  # fail early with the list of valid names
            raise RewardlabError(f"loss must be one of {', '.join(t.value for t in LossType)}, not {self.loss!r}")
        try:
            check_options(self.loss, self.loss_options())
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
        if self.precision not in ("auto", "fp32", "bf16", "bf16-pure"):
            raise RewardlabError(f"precision must be auto, fp32, bf16 or bf16-pure, not {self.precision!r}")
        if self.checkpoint_every < 1:
            raise RewardlabError("checkpoint_every must be at least 1")
        if self.objective not in ("preference", *OBJECTIVES):
            raise RewardlabError(f"objective must be preference, {', '.join(OBJECTIVES)}, not {self.objective!r}")
        check_multiobjective(self)
        if self.objective == "preference" and bool(self.init_from) != bool(self.init_attribute):
            raise RewardlabError("--init-from a regression model and --init-attribute go together for a preference run")
        if self.fsdp and self.precision == "bf16-pure":
            raise RewardlabError("--fsdp keeps fp32 shards and computes in bf16 with --precision bf16; "
                                 "--precision bf16-pure is not supported with it")
        if self.fsdp and self.lora_r:
            raise RewardlabError("--fsdp does not shard LoRA adapters; use --lora-r 0 or drop --fsdp")

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    def loss_options(self):
        from rewardlab.losses import LossOptions

        return LossOptions(label_smoothing=self.label_smoothing, margin_table=self.margin_table,
                           margin_scale=self.margin_scale, tie_model=self.tie_model, tie_param=self.tie_param,
                           top_k=self.top_k)

    def read_options(self):
        from rewardlab.data import ReadOptions, parse_score_weights

        return ReadOptions(score_weights=parse_score_weights(self.score_weights))


@dataclass
class TrainResult:
    model_dir: Path
    steps: int
    metrics: list[dict] = field(default_factory=list)
    final_eval: dict | None = None
    report: Path | None = None  # report.md in the run directory (rank 0, finished runs)
    data_info: dict = field(default_factory=dict)
    elapsed_s: float = 0.0


# ---------------------------------------------------------------------------------------------
def load_train_eval(cfg: TrainConfig) -> tuple[list[Comparison], list[Comparison], dict]:
    """The training and held-out records, and a summary of what was read (skipped rows, sizes)."""
    from rewardlab.data import load_comparisons, split_by_prompt

    info: dict = {"skipped": []}
    if cfg.data == "embedded":
        from rewardlab.data import synthetic

        records = synthetic.generate(cfg.embedded_size, seed=cfg.split_seed)
        info["source"] = f"embedded synthetic (n={cfg.embedded_size}, seed={cfg.split_seed})"
    else:
        loaded = load_comparisons(cfg.data, format=cfg.format, skip_invalid=cfg.skip_invalid, limit=cfg.limit,
                                  options=cfg.read_options())
        records = loaded.records
        info["skipped"] += [str(e) for e in loaded.skipped]
        info["source"] = cfg.data
    info["n_read"] = len(records) + len(info["skipped"])
    if cfg.eval_data:
        loaded = load_comparisons(cfg.eval_data, format=cfg.format, skip_invalid=cfg.skip_invalid,
                                  options=cfg.read_options())
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
    info.update(n_train=len(train), n_eval=len(held), n_skipped=len(info["skipped"]))
    return train, held, info


def lr_lambda(cfg: TrainConfig, total_steps: int):
    warmup = int(cfg.warmup_ratio * total_steps)

    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if cfg.lr_schedule == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total_steps - warmup)
        if cfg.lr_schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * progress))
        return max(0.0, 1.0 - progress)

    return f


def make_sampler(records: list, cfg: TrainConfig, world: int, lengths: list[int] | None = None):
    """The run's :class:`rewardlab.samplers.StepSampler`: step k's global batch is ``sampler.step(k)``.

    Default ``random``: a seeded permutation per epoch, cut in batch_size chunks; with several processes,
    the last partial batch of an epoch is dropped so every process gets data. Every sampler's plan is a
    pure function of (seed, epoch). ``lengths``: real tokens of each record (for ``sampler="tokens"``).
    """
    from rewardlab.samplers import StepSampler

    try:
        return StepSampler(records, cfg.sampler, cfg.batch_size, world, cfg.seed, lengths, cfg.max_tokens)
    except ValueError as e:
        raise RewardlabError(str(e)) from None


# ---------------------------------------------------------------------------------------------
# what train writes into output_dir: --overwrite removes these (and only these) first
TRAIN_WRITES = ("model", "checkpoints", "metrics.jsonl", "train_summary.json", "tensorboard", "mlruns", "split.json",
                "report.md", "report.html", "report.json", "examples-trained.jsonl")


def train(cfg: TrainConfig, *, output_claimed: bool = False) -> TrainResult:
    """``output_claimed``: the caller already checked ``output_dir`` (:func:`rewardlab.outputs.claim_output_dir`)."""
    if cfg.objective in OBJECTIVES:  # multi-objective runs (no --resume): the same output-directory rule
        if not output_claimed:
            claim_output_dir(cfg.output_dir, overwrite=cfg.overwrite, written=TRAIN_WRITES)
        return OBJECTIVES[cfg.objective](cfg)
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    precision = cfg.precision if cfg.precision != "auto" else ("bf16" if torch.cuda.is_available() else "fp32")
    # cpu=True is what makes Accelerate see a torchrun/accelerate-launch world on a machine without a GPU
    report_to = trackers.tracker_names(cfg.report_to)
    accelerator = Accelerator(mixed_precision="bf16" if precision == "bf16" and not cfg.fsdp else "no",
                              cpu=not torch.cuda.is_available(), log_with=report_to or None,
                              project_dir=str(Path(cfg.output_dir) / "tensorboard"))
    if cfg.fsdp and accelerator.distributed_type.value in ("FSDP", "DEEPSPEED"):
        raise RewardlabError(f"--fsdp runs PyTorch FSDP2 itself: launch with torchrun or a DDP accelerate config, "
                             f"not Accelerate's {accelerator.distributed_type.value} plugin")
    world, rank, main = accelerator.num_processes, accelerator.process_index, accelerator.is_main_process
    if cfg.batch_size < world:
        raise RewardlabError(f"batch_size {cfg.batch_size} is smaller than the number of processes ({world})")
    set_seed(cfg.seed)
    t_start = time.perf_counter()
    out = Path(cfg.output_dir)
    ckpt_root = out / "checkpoints"
    if main and not output_claimed:
        claim_output_dir(out, resume=cfg.resume, overwrite=cfg.overwrite, written=TRAIN_WRITES)
    if main:
        _prepare_output_dir(out)
    if not cfg.resume and main and ckpt_root.exists() and any(ckpt_root.iterdir()):
        raise RewardlabError(f"{ckpt_root} already has checkpoints: pass --resume to continue, or another --output-dir")

    progress.status(f"reading {cfg.data}")
    train_recs, eval_recs, data_info = load_train_eval(cfg)
    from rewardlab.data import fingerprint

    progress.status(f"{data_info['n_train']} training and {data_info['n_eval']} held-out records; "
                    f"loading the backbone {cfg.backbone}")

    data_fp = fingerprint(train_recs)
    backbone = cfg.backbone
    if cfg.init_from:  # HelpSteer2-Preference: start from a regression model's attribute output
        backbone = str(init_from_attribute(cfg.init_from, cfg.init_attribute, out / "init"))
    rm = RewardModel.from_backbone(backbone, max_length=cfg.max_length, padding_side=cfg.padding_side,
                                   truncation=cfg.truncation, seed=cfg.seed)
    rm.spec.data_fingerprint = data_fp
    if cfg.gradient_checkpointing:
        enable_checkpointing(rm.model, cfg.checkpoint_every)
    if cfg.lora_r:
        from rewardlab.lora import apply_lora

        apply_lora(rm, r=cfg.lora_r, alpha=cfg.lora_alpha, dropout=cfg.lora_dropout,
                   target_modules=cfg.lora_target_modules, gradient_checkpointing=cfg.gradient_checkpointing)
    if precision == "bf16-pure":  # bf16 weights, gradients and activations; the optimizer keeps fp32 masters
        rm.model.to(torch.bfloat16)
    if main:
        _check_free_space(out, rm, cfg)
    own_group = False
    if cfg.fsdp:  # after checkpointing and before the optimizer: it must see the DTensor shards
        from rewardlab import fsdp as fsdp_engine  # torch.distributed's FSDP/DCP: ~3 s to import, only when asked

        own_group = fsdp_engine.ensure_process_group()
        fsdp_engine.shard(rm.to(accelerator.device), accelerator.device, bf16=precision == "bf16")
    features = {id(c): [rm.encoder.encode(c.prompt, r) for r in c.responses]
                for c in progress.track(train_recs, "tokenize", unit="rec")}

    n_tokens = {id(c): sum(len(f["input_ids"]) for f in features[id(c)]) for c in train_recs}
    lengths = [n_tokens[id(c)] for c in train_recs]  # tokens sampler
    sampler = make_sampler(train_recs, cfg, world, lengths)
    per_epoch = sampler.steps_per_epoch
    total_steps = cfg.max_steps or max(1, math.ceil(cfg.epochs * per_epoch))
    decay = [p for n, p in rm.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in rm.named_parameters() if p.ndim < 2]
    from rewardlab.optim import MasterAdamW

    adamw = MasterAdamW if precision == "bf16-pure" else torch.optim.AdamW
    optimizer = adamw([{"params": decay, "weight_decay": cfg.weight_decay},
                       {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr,
                      fused=accelerator.device.type == "cuda")  # no per-step temporaries the size of the
    # weights (the foreach kernels make them); CPU keeps the default, which the recorded losses were made with
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg, total_steps))

    start = 0
    if cfg.resume:
        start = _load_checkpoint(ckpt_root, cfg, data_fp, rm, optimizer, scheduler)
    if cfg.fsdp:
        model, optimizer = rm, accelerator.prepare(optimizer)
    else:
        model, optimizer = accelerator.prepare(rm, optimizer)
    model.train()
    device = accelerator.device

    metrics_path = out / "metrics.jsonl"
    if cfg.resume and main:
        _truncate_metrics(metrics_path, start)
    tb = trackers.start(accelerator, cfg, out, report_to)
    history: list[dict] = []
    bar = progress.bar(total_steps, "train", unit="step", initial=start, leave=True, delay=0)  # rank 0 draws it
    window = _new_window()
    micro = cfg.micro_batch_size or math.ceil(cfg.batch_size / world)
    loss_opts = cfg.loss_options()
    step = start
    n_nonfinite = 0
    for step in range(start, total_steps):
        step_window = {"loss": 0.0, "units": 0, "acc": 0.0, "pairs": 0, "tokens": 0}
        global_batch = [train_recs[i] for i in sampler.step(step)]
        n_units = count_units(cfg.loss, global_batch)
        local = global_batch[rank::world]
        chunks = micro_batches(local, [n_tokens[id(c)] for c in local], micro, cfg.micro_batch_tokens)
        n_real = len(chunks)
        if cfg.fsdp and world > 1:
            chunks = _equal_chunks(chunks, global_batch, world, n_tokens, micro, cfg.micro_batch_tokens)
        for ci, chunk in enumerate(chunks):
            last = ci == len(chunks) - 1
            if cfg.packing:
                batch = collate_packed(chunk, [features[id(c)] for c in chunk], rm, cfg.token_budget).to(device)
            else:
                batch = collate_pairs(chunk, [features[id(c)] for c in chunk], rm.spec.pad_token_id,
                                      rm.spec.padding_side).to(device)
            no_sync = fsdp_engine.no_sync if cfg.fsdp else accelerator.no_sync
            ctx = no_sync(model) if (not last and world > 1) else contextlib.nullcontext()
            with ctx:
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
        # max_grad_norm 0: no clipping, but the norm is still measured for the divergence guard
        clip = fsdp_engine.clip_grad_norm_ if cfg.fsdp else accelerator.clip_grad_norm_
        grad_norm = clip(model.parameters(), cfg.max_grad_norm or math.inf)
        done = step + 1
        problem = _nonfinite_step(accelerator, step_window["loss"], grad_norm)
        if problem is None:
            optimizer.step()
            for k, v in step_window.items():
                window[k] += v
        else:  # the weights are not updated; the data position and the schedule move on
            n_nonfinite += 1
            if n_nonfinite > cfg.skip_nonfinite:
                bar.close()
                raise NonFiniteError(_divergence_message(done, problem, ckpt_root, cfg.skip_nonfinite))
            if main:
                print(f"rewardlab: step {done}: non-finite {problem}: update skipped "
                      f"({n_nonfinite} of at most {cfg.skip_nonfinite}, --skip-nonfinite)", file=sys.stderr)
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        bar.update(1)

        if done % cfg.log_every == 0 or done == total_steps:
            keys = ("loss", "units", "acc", "pairs", "tokens", "r_sum", "r_n", "m_sum")
            stats = torch.tensor([float(window[k]) for k in keys], dtype=torch.float64, device=device)
            tot = dict(zip(keys, accelerator.reduce(stats, reduction="sum").tolist()))
            extremes = accelerator.gather(torch.tensor([[-window["r_min"], window["r_max"]]], dtype=torch.float64,
                                                       device=device)).max(0).values.tolist()
            dt = time.perf_counter() - window["t"]
            rec = {"step": done, "epoch": round(done / per_epoch, 4),  # None: every step of the window was skipped
                   "loss": tot["loss"] / tot["units"] if tot["units"] else None,
                   "accuracy": tot["acc"] / tot["pairs"] if tot["pairs"] else None, "lr": scheduler.get_last_lr()[0],
                   "grad_norm": None if grad_norm is None or problem is not None else float(grad_norm),
                   "pairs_per_s": tot["pairs"] / dt, "tokens_per_s": tot["tokens"] / dt,
                   **_reward_stats(tot, extremes), **({"skipped_nonfinite": n_nonfinite} if n_nonfinite else {})}
            if rec["loss"] is not None and rec["accuracy"] is not None:
                bar.set_postfix(loss=f"{rec['loss']:.4f}", acc=f"{rec['accuracy']:.3f}", pairs_s=f"{rec['pairs_per_s']:.1f}")
            _log(rec, history, metrics_path, tb, main)
            window = _new_window()
        if cfg.eval_every and done % cfg.eval_every == 0 and done != total_steps and eval_recs:
            _log({"step": done, **_eval_summary(accelerator.unwrap_model(model), eval_recs, cfg)}, history,
                 metrics_path, tb, main)
        if cfg.save_every and done % cfg.save_every == 0 and done != total_steps:
            _save_checkpoint(accelerator, ckpt_root, done, cfg, data_fp, rm, optimizer, scheduler)
        if cfg.stop_after is not None and done >= cfg.stop_after and done != total_steps:
            _save_checkpoint(accelerator, ckpt_root, done, cfg, data_fp, rm, optimizer, scheduler)
            bar.close()
            _end(accelerator, own_group)
            return TrainResult(out / "model", done, history)
    bar.close()

    rm = accelerator.unwrap_model(model)
    if precision == "bf16-pure":  # evaluate and save the fp32 masters, not their bf16 roundings
        masters = getattr(optimizer, "optimizer", optimizer).masters()
        rm.model.float()
        for p, master in masters.items():
            p.data.copy_(master)
    final_eval, scores = None, None
    if eval_recs:
        from rewardlab.metrics.summary import evaluate_scores

        progress.status(f"scoring the {len(eval_recs)} held-out records")
        scores = _score_across_processes(accelerator, rm, eval_recs, cfg.eval_batch_size, cfg.packing, cfg.token_budget)
        final_eval = evaluate_scores(eval_recs, scores, seed=cfg.seed)
        flat = np.array([s for row in scores for s in row])
        rm.spec.normalization = {"mean": float(flat.mean()), "std": float(flat.std()),
                                 "source": "held-out split responses", "n": int(flat.size)}
        _log({"step": total_steps, "eval_accuracy": final_eval["record_accuracy"],  # as eval_accuracies
              "eval_pair_accuracy": final_eval["accuracy"], "eval_n": final_eval["n_records"],
              "eval_loss": (final_eval.get("calibration") or {}).get("log_loss"),  # mean -log σ(Δ) over pairs
              "eval_mean_reward": float(flat.mean()), "eval_min_reward": float(flat.min()),
              "eval_max_reward": float(flat.max()), "eval_margin": final_eval.get("mean_margin")},
             history, metrics_path, tb, main)
    # collective under ZeRO-3 / FSDP; None otherwise
    full_state = fsdp_engine.full_state_dict(model) if cfg.fsdp else _gathered_state_dict(accelerator, model)
    if main:
        _atomic_save_model(rm, out / "model", full_state)
        summary = {"config": cfg.to_json(), "data": data_info, "data_fingerprint": data_fp, "steps": total_steps,
                   "final_eval": final_eval, "world_size": world}
        atomic_write_text(out / "train_summary.json", dumps_strict(summary, indent=2, default=str))
        write_split(out, cfg, train_recs, eval_recs)
    if tb is not None:
        tb.close()
    accelerator.wait_for_everyone()
    _end(accelerator, own_group)
    elapsed = time.perf_counter() - t_start
    report = write_train_report(out, cfg, data_info, final_eval, total_steps, elapsed, eval_recs, scores,
                                rm.tokenizer) if main else None
    return TrainResult(out / "model", total_steps, history, final_eval, report, data_info, elapsed)


# ---------------------------------------------------------------------------------------------
def _nonfinite_step(accelerator, loss_sum: float, grad_norm) -> str | None:
    """What was non-finite at this step on any process (:func:`rewardlab.finite.step_problem`), or None; every
    process gets the same answer, so all stop or skip together."""
    problem = step_problem(loss_sum, None if grad_norm is None else float(grad_norm))
    if accelerator.num_processes > 1:
        flag = torch.tensor([0.0 if problem is None else 1.0], device=accelerator.device)
        if accelerator.reduce(flag, reduction="sum").item() > 0 and problem is None:
            problem = "loss or gradient norm on another process"
    return problem


def _divergence_message(step: int, problem: str, ckpt_root: Path, allowed: int) -> str:
    ckpts = sorted(ckpt_root.glob("step-*")) if ckpt_root.exists() else []
    kept = f"the last good checkpoint {ckpts[-1]} is kept" if ckpts else "no checkpoint was written yet"
    skipped = f" (after skipping {allowed}, --skip-nonfinite {allowed})" if allowed else ""
    return (f"training diverged at step {step}: non-finite {problem}{skipped}; stopped before updating the weights, "
            f"{kept}. Lower --lr or --max-grad-norm, or pass --skip-nonfinite N to skip up to N such steps "
            "(then --resume continues from the checkpoint)")


def _end(accelerator, own_group: bool) -> None:
    accelerator.end_training()
    if own_group and torch.distributed.is_initialized():  # the world of one that --fsdp started (if Accelerate
        torch.distributed.destroy_process_group()  # has not ended it)


def _equal_chunks(chunks: list, global_batch: list, world: int, n_tokens: dict, micro: int,
                  micro_tokens: int | None) -> list:
    """``chunks`` extended with repeats of its last chunk up to the most micro-batches any process has this step:
    under FSDP every forward all-gathers the layers, so every process must run as many. The caller gives the
    repeats no gradient and does not count them."""
    counts = [len(micro_batches(part, [n_tokens[id(c)] for c in part], micro, micro_tokens))
              for part in (global_batch[r::world] for r in range(world))]
    filler = chunks[-1] if chunks else global_batch[:1]
    return chunks + [filler] * (max(counts) - len(chunks))


def _score_across_processes(accelerator, rm: RewardModel, records, batch_size: int, packing: bool = False,
                            token_budget: int | None = None) -> list[list[float]]:
    """Every response's reward, each process scoring a contiguous share, gathered to all processes in order.

    The held-out rewards (and so ``spec.normalization``) then cover every record exactly once, whatever the
    number of processes; every process runs the same number of batches (shares are padded with repeats that
    are dropped), which sharded engines (ZeRO-3, FSDP) need.
    """
    flat = [(c.prompt, r) for c in records for r in c.responses]
    world, rank = accelerator.num_processes, accelerator.process_index
    if world == 1:
        mine = rm.score(flat, batch_size=batch_size, packing=packing, token_budget=token_budget)
        gathered = mine
    else:
        from accelerate.utils import gather_object

        share = math.ceil(len(flat) / world)
        part = flat[rank * share:(rank + 1) * share]
        n_real = len(part)
        part = part + [flat[0]] * (share - n_real)
        # padded, not packed: the number of packed forwards depends on the texts, and sharded engines need
        # every process to run the same number
        mine = rm.score(part, batch_size=batch_size, packing=False)[:n_real]
        gathered = [s for chunk in gather_object([mine]) for s in chunk]
    out, i = [], 0
    for c in records:
        out.append(gathered[i:i + c.k])
        i += c.k
    return out


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
    from transformers.modeling_layers import GradientCheckpointingLayer

    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    layers = [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]
    for i, layer in enumerate(layers):
        layer.gradient_checkpointing = i % every == 0
    return [i for i, layer in enumerate(layers) if layer.gradient_checkpointing]


def _eval_summary(rm: RewardModel, records, cfg: TrainConfig) -> dict:
    scores = rm.score_comparisons(records, batch_size=cfg.eval_batch_size, packing=cfg.packing,
                                  token_budget=cfg.token_budget)
    rm.train()
    return eval_accuracies(records, scores)


def eval_accuracies(records, scores) -> dict:
    """``eval_accuracy``: record accuracy (every strict pair of a record won; plain data: the chosen response
    beats all others), ``eval_pair_accuracy``: over all strict pairs; judge-tied pairs count for neither
    (:func:`rewardlab.metrics.accuracy_summary`, strict). ``scores[i]``: the K_i rewards of ``records[i]``."""
    from rewardlab.metrics.accuracy import accuracy_summary
    from rewardlab.metrics.pairs import record_pairs

    pairs, tied = record_pairs(records)
    s = accuracy_summary(scores, [c.chosen for c in records], n_boot=0, pairs=pairs, tied=tied)
    return {"eval_accuracy": s["record_accuracy"], "eval_pair_accuracy": s["accuracy"], "eval_n": len(records)}


def _log(rec: dict, history: list, path: Path, tb, main: bool) -> None:
    history.append(rec)
    if not main:
        return
    with open(path, "a") as f:
        f.write(dumps_strict(rec) + "\n")
    if tb is not None:  # the experiment trackers (rewardlab.trackers.Run)
        tb.log(rec)


def _new_window() -> dict:
    return {"loss": 0.0, "units": 0, "acc": 0.0, "pairs": 0, "tokens": 0, "r_sum": 0.0, "r_n": 0, "m_sum": 0.0,
            "r_min": math.inf, "r_max": -math.inf, "t": time.perf_counter()}


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
    return {"mean_reward": tot["r_sum"] / tot["r_n"], "min_reward": -extremes[0], "max_reward": extremes[1],
            "margin": tot["m_sum"] / max(tot["pairs"], 1)}


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
        print(f"rewardlab: removed {len(leftovers)} temporary director(ies) left by an interrupted run in {out}",
              file=sys.stderr)


def _check_free_space(out: Path, rm: RewardModel, cfg: TrainConfig) -> None:
    """Refuse to start when ``out``'s disk cannot hold what the run will write: the model and, when checkpoints
    are kept, ``keep_checkpoints + 1`` of them (weights + AdamW's two moments each), plus 10%."""
    weights = sum(p.numel() * p.element_size() for p in rm.model.state_dict().values())
    trainable = sum(p.numel() * 4 for p in rm.parameters() if p.requires_grad)
    n_ckpt = cfg.keep_checkpoints + 1 if (cfg.save_every or cfg.stop_after) else 0
    need = int(1.1 * (weights + n_ckpt * (weights + 2 * trainable)))
    free = shutil.disk_usage(out).free
    if free < need:
        raise RewardlabError(f"--output-dir {out}: only {free / 2**20:.0f} MiB free, and this run writes about "
                             f"{need / 2**20:.0f} MiB (model + {n_ckpt} checkpoints); free space or lower "
                             "--keep-checkpoints")


def _truncate_metrics(path: Path, step: int) -> None:
    """Keep only the rows up to ``step`` (the resumed checkpoint): the steps after it are run and logged again,
    so ``metrics.jsonl`` never holds a step twice."""
    if not path.exists():
        return
    kept = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line).get("step", 0) <= step]
    atomic_write_text(path, "".join(line + "\n" for line in kept))


def _gathered_state_dict(accelerator, model) -> dict | None:
    """The full weights of a sharded model (DeepSpeed ZeRO-3, FSDP), gathered on every process; None when the
    unwrapped model already holds them (one process, DDP, ZeRO-1/2). Keys are those of ``rm.model``."""
    from accelerate.utils import DistributedType

    dt = accelerator.distributed_type
    sharded = dt == DistributedType.FSDP or (
        dt == DistributedType.DEEPSPEED and accelerator.state.deepspeed_plugin.zero_stage == 3)
    if not sharded:
        return None
    state = accelerator.get_state_dict(model)
    return {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}


def _atomic_save_model(rm: RewardModel, target: Path, state_dict: dict | None = None) -> None:
    check_weights((state_dict or rm.model.state_dict()).items(), f"refusing to write {target}")
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    rm.save(tmp, state_dict=state_dict)
    replace_dir(tmp, target)


def _resume_key(cfg: TrainConfig) -> dict:
    return {k: v for k, v in cfg.to_json().items() if k not in TrainConfig.RESUMABLE}


def _save_checkpoint(accelerator, root: Path, step: int, cfg, data_fp, rm, optimizer, scheduler) -> None:
    """Write ``checkpoints/step-N`` via a temporary directory and a rename: a crash leaves the old one intact."""
    accelerator.wait_for_everyone()
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-step-{step:08d}"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    if cfg.fsdp:  # every process writes its shards of the weights and optimizer states
        from rewardlab import fsdp as fsdp_engine

        accelerator.wait_for_everyone()
        fsdp_engine.save_sharded(tmp / fsdp_engine.SHARDED_DIR, rm, optimizer)
        accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        from safetensors.torch import save_file

        trainer = {}
        if not cfg.fsdp:
            unwrapped = accelerator.unwrap_model(rm)
            state = {k: v.detach().contiguous().clone() for k, v in unwrapped.model.state_dict().items()}
            check_weights(state.items(), f"step {step}: refusing to write checkpoint {final}")
            save_file(_untie(state), str(tmp / "model.safetensors"))
            trainer["optimizer"] = optimizer.state_dict()
        torch.save({**trainer, "scheduler": scheduler.state_dict(),
                    "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                            "python": random.getstate()}}, tmp / "trainer.pt")
        (tmp / "state.json").write_text(dumps_strict({"step": step, "config": _resume_key(cfg),
                                                    "data_fingerprint": data_fp}, indent=2))
        readable_like_the_rest(tmp)  # safetensors writes its files 0600
        replace_dir(tmp, final)  # fsynced before the rename makes it the newest checkpoint
        fsync_tree(root, files=False)
        for old in sorted(p for p in root.glob("step-*"))[:-cfg.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def _untie(state: dict) -> dict:
    """safetensors refuses tensors that share memory (tied embeddings); store each once as its own copy."""
    seen, out = {}, {}
    for k, v in state.items():
        ptr = v.data_ptr()
        out[k] = v.clone() if ptr in seen else v
        seen[ptr] = k
    return out


def _read_checkpoint(ck: Path, sharded: bool = False) -> tuple[dict, dict | None, dict]:
    """``(state, weights, trainer state)`` of checkpoint directory ``ck``, all read before any is applied;
    ValueError saying what is wrong when a file is missing, truncated or garbage."""
    from safetensors.torch import load_file

    try:
        state = json.loads((ck / "state.json").read_text())
        if not isinstance(state, dict) or not isinstance(state.get("step"), int) or "config" not in state:
            raise ValueError("state.json lacks step/config")
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"state.json: {e}") from None
    weights = None
    if sharded:  # --fsdp: weights and optimizer states are torch.distributed.checkpoint shards
        if not (ck / "sharded" / ".metadata").is_file():
            raise ValueError("sharded/.metadata is missing (not an --fsdp checkpoint, or cut short)")
    else:
        try:
            weights = load_file(str(ck / "model.safetensors"))
        except Exception as e:  # safetensors raises its own error types for a truncated or garbage file
            raise ValueError(f"model.safetensors: {e}") from None
    needed = ("scheduler", "rng") if sharded else ("optimizer", "scheduler", "rng")
    try:
        trainer = torch.load(ck / "trainer.pt", weights_only=False)
        if not all(k in trainer for k in needed):
            raise ValueError(f"trainer.pt lacks one of {'/'.join(needed)}")
    except Exception as e:  # torch.load: EOFError, RuntimeError, UnpicklingError, ...
        raise ValueError(f"trainer.pt: {e}") from None
    return state, weights, trainer


def _newest_intact_checkpoint(root: Path, sharded: bool = False):
    """``(path, state, weights, trainer)`` of the newest checkpoint that reads whole, warning about each newer one
    that does not (a crash or a full disk can leave one broken); None when there are none."""
    ckpts = sorted(root.glob("step-*"))
    broken = []
    for ck in reversed(ckpts):
        try:
            return (ck, *_read_checkpoint(ck, sharded))
        except ValueError as e:
            broken.append(ck)
            print(f"rewardlab: warning: checkpoint {ck} is unreadable ({str(e).splitlines()[0][:200]}); "
                  "trying the one before it", file=sys.stderr)
    if broken:
        raise RewardlabError(f"--resume: none of the {len(broken)} checkpoints in {root} is intact; "
                             "start again with --overwrite")
    return None


def _load_checkpoint(root: Path, cfg, data_fp, rm, optimizer, scheduler) -> int:
    found = _newest_intact_checkpoint(root, cfg.fsdp) if root.exists() else None
    if found is None:
        print(f"rewardlab: --resume given but no checkpoint in {root}; starting from step 0", file=sys.stderr)
        return 0
    ck, state, weights, tr = found
    # a field the checkpoint lacks was added to TrainConfig later: its default is what that run did
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.default is not dataclasses.MISSING}
    mismatched = {k for k, v in _resume_key(cfg).items() if state["config"].get(k, defaults.get(k)) != v}
    if mismatched:
        raise RewardlabError(f"cannot resume from {ck}: config differs in {sorted(mismatched)}")
    if state.get("data_fingerprint") != data_fp:
        raise RewardlabError(f"cannot resume from {ck}: the training data changed (fingerprint differs)")
    try:
        if cfg.fsdp:
            from rewardlab import fsdp as fsdp_engine

            fsdp_engine.load_sharded(ck / fsdp_engine.SHARDED_DIR, rm, optimizer)
        else:
            rm.model.load_state_dict(weights)
            optimizer.load_state_dict(tr["optimizer"])
    except (RuntimeError, ValueError, KeyError) as e:
        raise RewardlabError(f"cannot resume from {ck}: its weights or optimizer state do not fit this model "
                             f"({str(e).splitlines()[0][:200]})") from None
    scheduler.load_state_dict(tr["scheduler"])
    torch.set_rng_state(tr["rng"]["torch"])
    np.random.set_state(tr["rng"]["numpy"])
    random.setstate(tr["rng"]["python"])
    print(f"rewardlab: resumed from {ck} (step {state['step']})", file=sys.stderr)
    return state["step"]
