"""``rewardlab train --objective regression | gating`` and the regression → BT initialisation.

:data:`OBJECTIVES` maps an objective name to its run function ``(cfg) -> MultiObjectiveResult``; ``cfg`` is a
:class:`rewardlab.training.train.TrainConfig` (read, never changed).

* ``regression`` — a K-output head, one output per ``--attributes`` name, masked MSE (missing ratings count 0).
  ``--stage1 gradient`` trains backbone and head (AdamW); ``--stage1 ridge`` keeps the backbone frozen, caches its
  features once and fits one ridge probe per attribute in closed form (ArmoRM stage 1). Writes ``model/`` (plain
  transformers, ``num_labels=K``) and ``train_summary.json`` with held-out MSE / Pearson / Spearman per attribute;
  ``--stage1 gradient`` also ``metrics.jsonl``, with a held-out row every ``--eval-every`` steps.
* ``gating`` — ArmoRM stage 2 from ``--init-from`` a regression model: backbone and head frozen, features cached,
  λ found on ``--reference-data`` (default: the training pairs, chosen and rejected pooled), the gate trained with
  BT on the *transformed* rewards, softmax over the objectives. Writes ``model/`` (the regression directory plus
  ``gate.safetensors`` and the transform in ``rewardlab.json``) and ``split.json`` (:mod:`rewardlab.data.splits`: the
  held-out pairs of :func:`_load_pairs`, which ``rewardlab eval --run`` scores again).
* :func:`init_from_attribute` — HelpSteer2-Preference: a 1-output checkpoint whose head is the regression head's
  row for ``--init-attribute``, the starting point of a BT / Scaled BT run (``--objective preference``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from rewardlab.core import trackers
from rewardlab.core.atomic import atomic_write_text, publish_dir
from rewardlab.core.errors import RewardlabError
from rewardlab.core.jsonstrict import dumps_strict
from rewardlab.core.outputs import TRAIN_WRITES, claim_output_dir
from rewardlab.data import load_comparisons, split_by_prompt
from rewardlab.data import synthetic_attributes as sa
from rewardlab.data.ratings import RatedText, load_rated, parse_attribute_list, parse_scales
from rewardlab.data.splits import write_split
from rewardlab.models.lora import apply_lora
from rewardlab.multiobjective.debias import find_lambdas, spearman, transform_matrix
from rewardlab.multiobjective.features import cached_features
from rewardlab.multiobjective.gate import GateConfig, GatingNetwork
from rewardlab.multiobjective.losses import masked_mse, targets_and_mask
from rewardlab.multiobjective.metrics import (
    attribute_metrics,
    length_correlation,
    mean_gate_by_source,
    pair_accuracy,
    regression_eval_row,
    score_stats,
)
from rewardlab.multiobjective.model import AttributeRewardModel, find_head
from rewardlab.multiobjective.ridge import fit_ridge
from rewardlab.multiobjective.scalarise import FixedWeights, GatedSum, Llama2Rule, parse_scaliser
from rewardlab.training.recipe import (
    Checkpointing,
    LoopOptions,
    MetricsLog,
    OneProcess,
    StepPlan,
    config_defaults,
    make_accelerator,
    run_steps,
)
from rewardlab.training.train import train_inputs


@dataclass
class MultiObjectiveResult:
    model_dir: Path
    steps: int
    metrics: list[dict] = field(default_factory=list)
    final_eval: dict | None = None
    summary: dict = field(default_factory=dict)
    report: Path | None = None  # (the scalar trainer's report.md; a multi-objective run's numbers are in summary)
    data_info: dict = field(default_factory=dict)
    elapsed_s: float = 0.0
    held_out: None = None  # (the scalar trainer's report inputs; a multi-objective run writes no report.md)


def _held_out(key: str, fraction: float, seed: int) -> bool:
    h = int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:8], 16)
    return h / 0xFFFFFFFF < fraction


def _prompt_key(prompt) -> str:
    return prompt if isinstance(prompt, str) else json.dumps([[m["role"], m["content"]] for m in prompt])


# --- regression ---------------------------------------------------------------------------------------------


def load_rated_split(cfg):
    """(attributes, scales json, train items, held-out items, source description)."""
    attributes = parse_attribute_list(cfg.attributes)
    if cfg.data == "embedded":
        items = sa.generate_rated(cfg.embedded_size, seed=cfg.split_seed)
        names = list(attributes or sa.ATTRIBUTES)
        unknown = sorted(set(names) - set(sa.ATTRIBUTES))
        if unknown:
            raise RewardlabError(f"the embedded data rates {', '.join(sa.ATTRIBUTES)}, not {', '.join(unknown)}")
        idx = [sa.ATTRIBUTES.index(a) for a in names]
        items = [
            RatedText(t.prompt, t.response, tuple(t.ratings[i] for i in idx), t.source, t.id, t.unsafe) for t in items
        ]
        scales = {a: sa.SCALES[a].to_json() for a in names}
        source = f"embedded multi-attribute synthetic (prompts={cfg.embedded_size}, seed={cfg.split_seed})"
    else:
        fmt = cfg.format if cfg.format in ("helpsteer2", "nemo", "aspects", "columns") else "auto"
        rated = load_rated(cfg.data, attributes, fmt, parse_scales(cfg.attribute_scales), cfg.limit)
        items, names, scales, source = rated.items, list(rated.attributes), rated.scales_json(), cfg.data
    if cfg.eval_data:
        held = load_rated(cfg.eval_data, tuple(names), "auto", parse_scales(cfg.attribute_scales)).items
        train = items
    else:
        held = [t for t in items if _held_out(_prompt_key(t.prompt), cfg.eval_fraction, cfg.split_seed)]
        train = [t for t in items if not _held_out(_prompt_key(t.prompt), cfg.eval_fraction, cfg.split_seed)]
    if not train:
        raise RewardlabError(f"no training rows in {cfg.data}")
    return names, scales, train, held, source


def _regression_eval(rm: AttributeRewardModel, held: list[RatedText], batch_size: int) -> tuple[dict, dict | None]:
    """Per-attribute held-out metrics and the held-out mean/std of the model's scalar (its scaliser)."""
    if not held:
        return {}, None
    out = rm.score_items([(t.prompt, t.response) for t in held], batch_size=batch_size, unsafe=[t.unsafe for t in held])
    target, mask = targets_and_mask([t.ratings for t in held])
    return attribute_metrics(out.rewards, target, mask, rm.attributes), score_stats(out.score)


def train_regression(cfg) -> MultiObjectiveResult:
    t0 = time.perf_counter()
    names, scales, train, held, source = load_rated_split(cfg)
    torch.manual_seed(cfg.seed)
    rm = AttributeRewardModel.from_backbone(
        cfg.backbone,
        names,
        scales,
        max_length=cfg.max_length,
        padding_side=cfg.padding_side,
        truncation=cfg.truncation,
        seed=cfg.seed,
    )
    scaliser = parse_scaliser(cfg.weights) or FixedWeights(equal=True)
    if isinstance(scaliser, GatedSum):
        raise RewardlabError("--weights gate needs a gate: train one with --objective gating --init-from THIS_MODEL")
    scaliser(torch.zeros(1, len(names)), names)  # weights naming unknown attributes fail now, not after training
    rm.mo.scaliser = scaliser.to_json()
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    target, mask = targets_and_mask([t.ratings for t in train])
    history: list[dict] = []
    steps = 0
    if cfg.stage1 == "ridge":
        feats, hit = cached_features(
            rm,
            [(t.prompt, t.response) for t in train],
            cfg.feature_cache or out / "features",
            batch_size=cfg.eval_batch_size,
        )
        fit = fit_ridge(feats.head_input, target, mask, seed=cfg.seed)
        head = find_head(rm.model)
        with torch.no_grad():
            head.weight.copy_(fit.weight)
            if head.bias is not None:
                head.bias.zero_()
        rm.mo.stage1 = {
            "method": "ridge",
            "alphas": dict(zip(names, fit.alphas)),
            "val_mse": dict(zip(names, fit.val_mse)),
            "features_from_cache": hit,
        }
    elif cfg.stage1 == "gradient":
        if cfg.lora_r:  # adapters on the backbone, the K-output head in full; merged before saving
            apply_lora(
                rm, r=cfg.lora_r, alpha=cfg.lora_alpha, dropout=cfg.lora_dropout, target_modules=cfg.lora_target_modules
            )
        steps, history, finished, main = _gradient_regression(rm, train, target, mask, cfg, out, held)
        if not finished or not main:  # --stop-after (checkpoint written), or a torchrun rank other than 0
            return MultiObjectiveResult(out / "model", steps, history)
        if cfg.lora_r:
            rm.model = rm.model.merge_and_unload()
        rm.mo.stage1 = {"method": "gradient", "steps": steps, "lr": cfg.lr, "lora_r": cfg.lora_r}
    else:
        raise RewardlabError(f"stage1 must be gradient or ridge, not {cfg.stage1!r}")
    if isinstance(scaliser, Llama2Rule):  # WHITEN(LOGIT(R)): mean/std of logit(R) over (up to 2000) training rows
        ref = train[:2000]
        pred = rm.score_items([(t.prompt, t.response) for t in ref], batch_size=cfg.eval_batch_size).rewards
        rm.mo.scaliser = scaliser.with_whitening(pred, names, torch.tensor([t.unsafe for t in ref])).to_json()
    metrics, stats = _regression_eval(rm, held, cfg.eval_batch_size)
    rm.spec.normalization = stats  # `--normalize` applies it to the scalar (as the scalar trainer's held-out stats)
    model_dir = out / "model"
    rm.save(model_dir)
    summary = {
        "objective": "regression",
        "source": source,
        "attributes": names,
        "scales": scales,
        "n_train": len(train),
        "n_eval": len(held),
        "stage1": rm.mo.stage1,
        "held_out": metrics,
        "seconds": round(time.perf_counter() - t0, 2),
        "config": cfg.to_json(),
    }
    atomic_write_text(out / "train_summary.json", dumps_strict(summary, indent=2, default=str) + "\n")
    for name, m in metrics.items():
        if not m["n"]:  # no held-out row rates this attribute: nothing measured (the summary holds null)
            print(f"held-out {name}: not measured (no held-out row rates it; n=0)")
            continue
        pearson = "n/a" if m["pearson"] is None else f"{m['pearson']:.3f}"
        print(f"held-out {name}: MSE {m['mse']:.4f}, Pearson {pearson} (n={m['n']})")
    info = {"source": source, "n_read": len(train) + len(held), "n_train": len(train), "n_eval": len(held)}
    return MultiObjectiveResult(model_dir, steps, history, None, summary, data_info=info, elapsed_s=summary["seconds"])


def _regression_eval_row(rm: AttributeRewardModel, held: list[RatedText], batch_size: int) -> dict:
    """The held-out ``metrics.jsonl`` keys (:func:`rewardlab.multiobjective.metrics.regression_eval_row`) of the
    model as it is now: :func:`_regression_eval`'s per-attribute metrics, so the row of the last step equals the
    final ``held_out`` (up to rounding with ``--lora-r``: that one is measured after the merge). Dropout off and no
    gradient while scoring; the RNGs are not drawn from."""
    return regression_eval_row(_regression_eval(rm, held, batch_size)[0], len(held))


def _gradient_regression(
    rm, train, target, mask, cfg, out: Path, held: list[RatedText]
) -> tuple[int, list[dict], bool, bool]:
    """``--stage1 gradient`` on the training core's loop (:func:`rewardlab.training.recipe.run_steps`, as the judge trainers):
    masked MSE over the global batch,
    AdamW (decay / no-decay groups), the one LR schedule, clipping, the non-finite guard, checkpoints with exact
    ``--resume``, DDP under ``torchrun`` and ``metrics.jsonl``. Returns ``(steps, metrics rows, finished, main
    process)``; ``finished`` is False after ``--stop-after``.

    ``--eval-every N``: after every N-th step (the last one included when N divides it) the held-out rows ``held``
    (the split the end-of-run ``held_out`` is measured on; none: no evaluation, as the scalar trainer) are scored
    and a row ``{"step", "eval_loss", "eval_mse", "eval_pearson_mean", "eval_n", "eval_attributes"}`` is logged
    after that step's training row. Every process scores them (no collective: no process waits on another), the
    main one writes the row; the model is back in training mode after, and the RNGs and the data order are
    untouched, so the training losses are those of a run without ``--eval-every``. The time spent scoring is left
    out of ``rows_per_s``.

    Step s takes the records ``random_plan(seed, epoch)`` gives it (:mod:`rewardlab.training.samplers`, through
    :meth:`rewardlab.training.samplers.StepPlan.sampled`); each process its slice ``[rank::world]``, whose backward is divided by
    the labels in the global batch; the gradients are summed over the processes (``all_reduce_grads``), so the
    update is that of the masked MSE over the whole global batch (2 processes equal 1). Rows every ``log_every``
    steps carry the window's masked MSE and ``rows_per_s``."""
    if cfg.fsdp or cfg.precision == "bf16-pure":
        raise RewardlabError(
            "--objective regression --stage1 gradient runs fp32 or --precision bf16 under DDP; "
            "--fsdp and --precision bf16-pure are for preference runs"
        )
    precision = cfg.precision if cfg.precision != "auto" else ("bf16" if torch.cuda.is_available() else "fp32")
    report_to = trackers.tracker_names(cfg.report_to)
    accelerator = make_accelerator(precision == "bf16", report_to, out / "tensorboard")
    world, main, device = accelerator.num_processes, accelerator.is_main_process, accelerator.device
    feats = [rm.encode(t.prompt, t.response) for t in train]
    plan = StepPlan.sampled(train, "random", cfg.batch_size, world, cfg.seed)
    plan.total = cfg.max_steps or max(1, math.ceil(cfg.epochs * plan.steps_per_epoch))
    resume_key = {k: v for k, v in cfg.to_json().items() if k not in type(cfg).RESUMABLE}
    ckpt = Checkpointing(
        out / "checkpoints", resume_key, config_defaults(type(cfg)), _rated_fingerprint(train), cfg.keep_checkpoints
    )
    metrics = MetricsLog(out / "metrics.jsonl", main, trackers.start(accelerator, cfg, out, report_to))
    rm.to(device)
    micro = cfg.micro_batch_size or math.ceil(cfg.batch_size / world)
    clock = {"t": time.perf_counter()}  # the row's window started here (scoring held-out rows excluded)

    def step_loss(share: list[int], items: list[int]) -> dict[str, float]:
        """This process's micro-batches: the masked squared error summed over their labels, each backward divided
        by the labels of the whole step (summed over the processes: the masked MSE of the global batch)."""
        n_labels = float(mask[items].sum().clamp(min=1.0))
        loss_sum = 0.0
        for i in range(0, len(share), micro):
            chunk = share[i : i + micro]
            batch = {k: v.to(device) for k, v in rm.collate([feats[j] for j in chunk]).items()}
            m = mask[chunk].to(device)
            with accelerator.autocast():
                pred = rm(**batch)
            sq_sum = masked_mse(pred, target[chunk].to(device), m) * m.sum().clamp(min=1.0)
            accelerator.backward(sq_sum / n_labels)
            loss_sum += float(sq_sum.detach())
        return {"loss": loss_sum, "labels": float(mask[share].sum()), "rows": float(len(share))}

    def row(sums: dict[str, float], items: list[int]) -> dict:
        now = time.perf_counter()
        rec = {
            # masked MSE over the row's labels; None for a skipped non-finite step (--skip-nonfinite)
            "loss": sums["loss"] / sums["labels"] if sums.get("labels") and math.isfinite(sums["loss"]) else None,
            "rows_per_s": sums.get("rows", 0.0) / (now - clock["t"]),
        }
        clock["t"] = now
        return rec

    def on_step(done: int, last: bool) -> None:
        if cfg.eval_every and done % cfg.eval_every == 0 and held:
            t_eval = time.perf_counter()
            metrics.log({"step": done, **_regression_eval_row(rm, held, cfg.eval_batch_size)})
            rm.train()
            clock["t"] += time.perf_counter() - t_eval  # scoring is not training throughput

    opts = LoopOptions(
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        warmup_ratio=cfg.warmup_ratio,
        lr_schedule=cfg.lr_schedule,
        max_grad_norm=cfg.max_grad_norm,
        save_every=cfg.periodic_save_every,
        stop_after=cfg.stop_after,
        resume=cfg.resume,
        skip_nonfinite=cfg.skip_nonfinite,
        log_every=cfg.log_every,
    )
    rm.train()
    result = run_steps(
        plan,
        step_loss,
        row,
        module=rm.model,
        trainable=list(rm.model.named_parameters()),
        opts=opts,
        ckpt=ckpt,
        accelerator=accelerator,
        metrics=metrics,
        on_step=on_step,
        resume_as="train",
    )
    metrics.close()
    if result.finished:
        accelerator.wait_for_everyone()
    accelerator.end_training()
    rm.eval()
    return result.steps, metrics.history, result.finished, main


def _rated_fingerprint(items: list[RatedText]) -> str:
    """sha256 of the training rows (prompt, response, ratings) in order: a resumed run must train on the same."""
    h = hashlib.sha256()
    for t in items:
        h.update(json.dumps([t.prompt, t.response, list(t.ratings)], sort_keys=True, default=str).encode())
    return h.hexdigest()


# --- gating -------------------------------------------------------------------------------------------------


def _load_pairs(cfg):
    if cfg.data == "embedded":
        records = sa.generate_pairs(cfg.embedded_size, seed=cfg.split_seed + 1)
        source = f"embedded multi-attribute pairs (n={cfg.embedded_size}, seed={cfg.split_seed + 1})"
    else:
        records = load_comparisons(cfg.data, format=cfg.format, limit=cfg.limit, options=cfg.read_options()).records
        source = cfg.data
    if cfg.eval_data:
        return records, load_comparisons(cfg.eval_data, format=cfg.format, options=cfg.read_options()).records, source
    train, held = split_by_prompt(records, cfg.eval_fraction, seed=cfg.split_seed)
    return train, held, source


def _texts(records) -> tuple[list[tuple], list[tuple[int, int]], list[str]]:
    """Flattened (prompt, response) items; (winner, loser) item-index pairs; each pair's source."""
    items, pairs, sources = [], [], []
    for c in records:
        base = len(items)
        items += [(c.prompt, r) for r in c.responses]
        for w, l in c.strict_pairs():
            pairs.append((base + w, base + l))
            sources.append(c.source)
    return items, pairs, sources


def gate_scores(gate: GatingNetwork, prompt_hidden: torch.Tensor, transformed: torch.Tensor) -> torch.Tensor:
    return gate(prompt_hidden, transformed)[0]


VAL_FRACTION = 0.1  # of the training pairs, held back to stop the gate early
VAL_EVERY = 20  # steps between validation checks
PATIENCE = 3  # checks without a better validation loss before stopping
MIN_VAL_PAIRS = 20  # fewer training pairs than 10× this: no validation split, all steps run


def _pair_delta(gate: GatingNetwork, prompt_hidden, transformed, w, l, shared: bool) -> torch.Tensor:
    if shared:
        return gate_scores(gate, prompt_hidden[w], transformed[w] - transformed[l])
    return gate_scores(gate, prompt_hidden[w], transformed[w]) - gate_scores(gate, prompt_hidden[l], transformed[l])


def train_gate(
    prompt_hidden: torch.Tensor,
    transformed: torch.Tensor,
    pairs: torch.Tensor,
    gate_cfg: GateConfig,
    steps: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    seed: int,
    skip_nonfinite: int = 0,
) -> tuple[GatingNetwork, list]:
    """BT on ``β gᵀ r′`` of winner minus loser; pairs ``(P, 2)`` item indices; AdamW + cosine (ArmoRM), on the
    training core's loop (:func:`rewardlab.training.recipe.run_steps`: the one optimizer, schedule, update and
    non-finite guard; ``skip_nonfinite`` as ``--skip-nonfinite``), in this process alone, no checkpoints.

    Step s draws ``min(batch_size, P)`` training pairs with replacement from a generator seeded with ``seed``
    (:func:`_gate_plan`). Early stopping: with at least ``10 × MIN_VAL_PAIRS`` pairs, a seeded ``VAL_FRACTION`` of
    them is held back; every ``VAL_EVERY`` steps the BT loss on them is measured (dropout off), training stops
    after ``PATIENCE`` checks without improvement, and the gate with the best validation loss is returned.
    ``steps`` is the most steps (the cosine schedule spans them). ``history`` rows (every 50th step from the first,
    the last, and each check) carry ``step``, ``loss``, ``beta`` and ``val_loss`` where measured."""
    torch.manual_seed(seed)
    gate = GatingNetwork(gate_cfg)
    # Chosen and rejected of a pair share the prompt, so (causal LMs, and encoders reading the prompt alone) the same
    # gate input: one gate forward per pair, β gᵀ(r′_w − r′_l), half the work and one dropout mask per prompt.
    shared = torch.equal(prompt_hidden[pairs[:, 0]], prompt_hidden[pairs[:, 1]])
    val = None
    if len(pairs) >= 10 * MIN_VAL_PAIRS:
        perm = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(seed + 1))
        n_val = max(MIN_VAL_PAIRS, int(VAL_FRACTION * len(pairs)))
        val, pairs = pairs[perm[:n_val]], pairs[perm[n_val:]]
    history: list[dict] = []
    state = {"loss": math.nan, "best": math.inf, "best_state": None, "bad_checks": 0}

    def step_loss(share: list[int], items: list[int]) -> dict[str, float]:
        idx = torch.tensor(share, dtype=torch.long)
        loss = torch.nn.functional.softplus(
            -_pair_delta(gate, prompt_hidden, transformed, pairs[idx, 0], pairs[idx, 1], shared)
        ).mean()
        loss.backward()
        state["loss"] = float(loss.detach())
        return {"loss": state["loss"]}

    def on_step(done: int, last: bool) -> bool:
        """The history row of step ``done`` and the validation check; True: stop early."""
        row = None
        if (done - 1) % 50 == 0 or last:
            row = {"step": done, "loss": state["loss"], "beta": float(gate.logit_scale.detach())}
        if val is not None and (done % VAL_EVERY == 0 or last):
            gate.eval()
            with torch.no_grad():
                val_loss = float(
                    torch.nn.functional.softplus(
                        -_pair_delta(gate, prompt_hidden, transformed, val[:, 0], val[:, 1], shared)
                    ).mean()
                )
            gate.train()
            row = row or {"step": done, "loss": state["loss"], "beta": float(gate.logit_scale.detach())}
            row["val_loss"] = val_loss
            if val_loss < state["best"] - 1e-4:
                state["best"], state["bad_checks"] = val_loss, 0
                state["best_state"] = {k: v.detach().clone() for k, v in gate.state_dict().items()}
            else:
                state["bad_checks"] += 1
        if row is not None:
            history.append(row)
        if val is not None and state["bad_checks"] >= PATIENCE:
            history.append({"step": done, "stopped_early": True, "best_val_loss": state["best"]})
            return True
        return False

    run_steps(
        _gate_plan(len(pairs), steps, batch_size, seed),
        step_loss,
        lambda sums, items: {},  # the gate's rows are its own (on_step): step, loss, beta, val_loss
        module=gate,
        trainable=list(gate.named_parameters()),
        # no clipping (ArmoRM's); the cosine schedule without warmup; the core's guard (--skip-nonfinite)
        opts=LoopOptions(
            lr=lr, weight_decay=weight_decay, lr_schedule="cosine", max_grad_norm=0.0, skip_nonfinite=skip_nonfinite
        ),
        accelerator=OneProcess(),
        on_step=on_step,
    )
    if state["best_state"] is not None:
        gate.load_state_dict(state["best_state"])
    gate.eval()
    return gate, history


def _gate_plan(n_pairs: int, steps: int, batch_size: int, seed: int) -> StepPlan:
    """``steps`` steps of ``min(batch_size, n_pairs)`` pair indices each, drawn with replacement (one epoch of a
    :class:`rewardlab.training.samplers.StepPlan`): step s takes the s-th draw of a generator seeded with ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    size = min(batch_size, n_pairs)
    order = [i for _ in range(steps) for i in torch.randint(n_pairs, (size,), generator=gen).tolist()]
    return StepPlan([order], size)


def train_gating(cfg) -> MultiObjectiveResult:
    t0 = time.perf_counter()
    if not cfg.init_from:
        raise RewardlabError(
            "--objective gating needs --init-from a regression model (rewardlab train --objective regression)"
        )
    train_recs, held_recs, source = _load_pairs(cfg)  # the data first: a file the gate cannot learn from says so
    items, pairs, _ = _texts(train_recs)
    if not pairs:
        raise RewardlabError(
            f"--objective gating: the {len(train_recs)} training records of {source} hold no strict pair (every "
            "ranking is a tie, or there are none); the gate learns from preferences"
        )
    rm = AttributeRewardModel.load(cfg.init_from)
    names = rm.attributes
    if cfg.verbosity_attribute not in names and cfg.debias:
        raise RewardlabError(
            f"--verbosity-attribute {cfg.verbosity_attribute!r} is not an attribute of {cfg.init_from} "
            f"({', '.join(names)}); name one or pass --no-debias"
        )
    out = Path(cfg.output_dir)
    cache = cfg.feature_cache or out / "features"
    feats, hit = cached_features(rm, items, cache, model_dir=cfg.init_from, batch_size=cfg.eval_batch_size)
    if cfg.reference_data:
        ref_items = _texts(load_comparisons(cfg.reference_data, format="auto").records)[0]
        ref_rewards = cached_features(rm, ref_items, cache, model_dir=cfg.init_from, batch_size=cfg.eval_batch_size)[
            0
        ].rewards
        reference = cfg.reference_data
    else:
        ref_rewards, reference = feats.rewards, f"the training pairs ({source}), chosen and rejected pooled"
    k = len(names)
    if cfg.debias:
        v = names.index(cfg.verbosity_attribute)
        lambdas = find_lambdas(ref_rewards.numpy(), v, cfg.debias_threshold)
        transform = transform_matrix(lambdas, v)
        rm.mo.debias = {
            "attribute": cfg.verbosity_attribute,
            "lambdas": dict(zip(names, lambdas.tolist())),
            "threshold": cfg.debias_threshold,
            "reference": reference,
            "n_reference": len(ref_rewards),
        }
    else:
        transform = np.eye(k)
        rm.mo.debias = None
    rm.mo.transform = transform.tolist()
    transformed = feats.rewards @ torch.tensor(transform, dtype=torch.float32)
    gate_cfg = GateConfig(
        input_dim=feats.prompt_hidden.shape[1], n_objectives=k, hidden=cfg.gate_hidden, n_hidden=cfg.gate_layers
    )
    gate, history = train_gate(
        feats.prompt_hidden,
        transformed,
        torch.tensor(pairs),
        gate_cfg,
        cfg.gate_steps,
        cfg.gate_batch_size,
        cfg.gate_lr,
        cfg.weight_decay,
        cfg.seed,
        skip_nonfinite=cfg.skip_nonfinite,
    )
    rm.gate = gate
    rm.mo.scaliser = GatedSum().to_json()
    held = evaluate_pairs(rm, held_recs, cache, cfg.init_from, cfg.eval_batch_size) if held_recs else {}
    rm.spec.normalization = held.get("model_score_stats")  # the gated scalar's held-out mean/std (--normalize)
    model_dir = out / "model"

    def write(tmp: Path) -> None:  # the stage-1 files, then the gated model over them
        shutil.copytree(cfg.init_from, tmp, ignore=shutil.ignore_patterns("gate.safetensors"), dirs_exist_ok=True)
        rm.save(tmp)

    publish_dir(model_dir, write)  # never a half-written model, nor the ungated stage-1 copy (rewardlab.core.atomic)
    summary = {
        "objective": "gating",
        "source": source,
        "init_from": cfg.init_from,
        "attributes": names,
        "n_train_pairs": len(pairs),
        "features_from_cache": hit,
        "debias": rm.mo.debias,
        "gate": gate_cfg.to_json(),
        "beta": float(gate.logit_scale.detach()),
        "history": history,
        "held_out": held,
        "gate_steps_run": history[-1]["step"] if history else cfg.gate_steps,
        "seconds": round(time.perf_counter() - t0, 2),
        "config": cfg.to_json(),
    }
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "train_summary.json", dumps_strict(summary, indent=2, default=str) + "\n")
    write_split(out, cfg, train_recs, held_recs)  # `eval --run` re-reads the held-out pairs with _load_pairs
    final = None
    if held:
        final = {"accuracy": held["accuracy"]["gate"]["accuracy"], "n_records": len(held_recs)}
        for name, acc in held["accuracy"].items():
            print(
                f"held-out pairwise accuracy ({name}): {acc['accuracy']:.4f} "
                f"[{acc['ci95'][0]:.3f}, {acc['ci95'][1]:.3f}] on {acc['n']} pairs"
            )
    info = {
        "source": source,
        "n_read": len(train_recs) + len(held_recs),
        "n_train": len(train_recs),
        "n_eval": len(held_recs),
    }
    steps = summary["gate_steps_run"]
    return MultiObjectiveResult(model_dir, steps, history, final, summary, data_info=info, elapsed_s=summary["seconds"])


def evaluate_pairs(
    rm: AttributeRewardModel, records, cache=None, model_dir=None, batch_size: int = 32, plot=None
) -> dict:
    """Pairwise accuracy under each scaliser (equal weights raw and transformed, the model's own, Llama 2 rule when
    the attributes allow), |Spearman| of score vs length (responses pooled, as ArmoRM measures it, and within pairs:
    of the score difference vs the length difference, which prompt kinds of different lengths do not confound),
    the mean/std of the model's score over the responses (``model_score_stats``), and mean gate weights by prompt
    source."""
    items, pairs, _ = _texts(records)
    feats, _ = cached_features(rm, items, cache, model_dir=model_dir, batch_size=batch_size)
    unsafe = torch.tensor([bool(c.meta.get("unsafe", False)) for c in records for _ in c.responses])
    res = rm.outputs(feats.rewards, feats.prompt_hidden, unsafe)
    w = torch.tensor([p[0] for p in pairs])
    l = torch.tensor([p[1] for p in pairs])
    equal = FixedWeights(equal=True)
    scored = {
        "equal_weights": equal(res.rewards, rm.attributes),
        "equal_weights_debiased": equal(res.transformed, rm.attributes),
        "model": res.score,
    }
    if {"harmlessness", "helpfulness"} <= set(rm.attributes):
        scored["llama2_rule"] = Llama2Rule()(res.rewards, rm.attributes, unsafe=unsafe)
    if res.gate is not None:
        scored["gate"] = res.score
        scored["gate_without_debiasing"] = rm.gate.logit_scale.detach()[0] * (res.gate * res.rewards).sum(-1)
    responses = [r for _, r in items]
    dlen = [len(responses[a]) - len(responses[b]) for a, b in pairs]
    out = {
        "accuracy": {n: pair_accuracy(s[w], s[l]) for n, s in scored.items()},
        "abs_spearman_score_vs_length": {n: abs(length_correlation(s, responses)) for n, s in scored.items()},
        "abs_spearman_score_vs_length_within_pairs": {
            n: abs(spearman((s[w] - s[l]).double().numpy(), dlen)) for n, s in scored.items()
        },
        "model_score_stats": score_stats(res.score),
    }
    if res.gate is not None:
        item_sources = [c.source for c in records for _ in c.responses]
        out["mean_gate_by_source"] = mean_gate_by_source(res.gate, item_sources, rm.attributes, plot)
    return out


# --- the entry points of `rewardlab train --objective regression | gating` (rewardlab.training.train.TRAINERS) -------------
def _claim(cfg, output_claimed: bool, resumable: bool) -> None:
    """The scalar trainer's output-directory rule: refuse ``--resume`` of a run without checkpoints; rank 0
    claims ``output_dir`` (empty, or ``--overwrite`` / ``--resume``)."""
    if cfg.resume and not resumable:
        raise RewardlabError(
            f"--resume continues preference and --objective regression --stage1 gradient runs; "
            f"--objective {cfg.objective} --stage1 {cfg.stage1} has no checkpoints"
        )
    if not output_claimed and int(os.environ.get("RANK", "0")) == 0:  # torchrun: rank 0 claims
        claim_output_dir(
            cfg.output_dir,
            resume=cfg.resume if resumable else None,
            overwrite=cfg.overwrite,
            written=TRAIN_WRITES,
            inputs=train_inputs(cfg),
            command="rewardlab train",
        )


def train_regression_run(cfg, *, output_claimed: bool = False) -> MultiObjectiveResult:
    _claim(cfg, output_claimed, resumable=cfg.stage1 == "gradient")  # the runs with checkpoints
    return train_regression(cfg)


def train_gating_run(cfg, *, output_claimed: bool = False) -> MultiObjectiveResult:
    _claim(cfg, output_claimed, resumable=False)
    return train_gating(cfg)


OBJECTIVES = {"regression": train_regression, "gating": train_gating}
