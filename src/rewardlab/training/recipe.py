"""The training core every trainer runs on: schedule, optimizer, update, checkpoints, metrics.

A trainer (the scalar one in :mod:`rewardlab.training.train`, multi-objective regression in
:mod:`rewardlab.multiobjective.train`, GenRM in :mod:`rewardlab.judges.train`, CLoud in
:mod:`rewardlab.judges.cloud`) owns its data, its model and its loss; it takes the rest from here, so every one
warms up, decays, clips, guards against NaN and resumes the same way:

* :func:`lr_factor` / :func:`make_scheduler` — the one LR schedule (linear warmup, then linear / cosine /
  constant);
* :func:`make_optimizer` — AdamW with decay (matrices) and no-decay (biases, norms) groups; fused only on CUDA;
* :func:`update` — clip, the non-finite guard (:class:`NonFiniteGuard`, ``--skip-nonfinite``), optimizer and
  scheduler step, zero the gradients;
* :func:`save_checkpoint` / :func:`load_checkpoint` — ``checkpoints/step-N`` (weights, optimizer, scheduler, RNG,
  the config's resume key and the data fingerprint) written through a temporary directory and a rename, read back
  exactly (the newest intact one);
* :class:`MetricsLog` — ``metrics.jsonl`` rows (rank 0) and the experiment trackers, cut back to the resumed step;
* :func:`run_steps` — the whole loop for a trainer whose step is "a loss over some items": a
  :class:`rewardlab.training.samplers.StepPlan` (which items each step takes; the one plan, re-exported here),
  the rank's share of them under ``torchrun`` (gradients summed with :func:`all_reduce_grads`), the update,
  logging, periodic checkpoints, ``--stop-after``, exact ``--resume`` and early stopping (``on_step``).
  GenRM and CLoud (:mod:`rewardlab.judges.train`), the verifiers, multi-objective regression and the gate run on
  it.

A new trainer: build the model and a ``step_loss(share, items)`` that runs the forward and the backward of its
items and returns the summed loss (and any counts to log); hand both to :func:`run_steps`. The scalar trainer writes its loop
out with the same parts, because it also packs and shards (FSDP).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from accelerate import Accelerator
from safetensors.torch import load_file, save_file

from rewardlab.core.atomic import (
    append_text,
    atomic_write_text,
    fsync_tree,
    readable_like_the_rest,
    replace_dir,
    writing,
)
from rewardlab.core.errors import RewardlabError
from rewardlab.core.finite import NonFiniteError, check_weights, step_problem
from rewardlab.core.interrupt import StopSignals, interrupted, resume_command
from rewardlab.core.jsonstrict import dumps_strict
from rewardlab.training.optim import MasterAdamW
from rewardlab.training.samplers import StepPlan

SCHEDULES = ("linear", "cosine", "constant")


# --- the engine --------------------------------------------------------------------------------------------
def make_accelerator(bf16_autocast: bool, report_to: list[str], tensorboard_dir: Path) -> Accelerator:
    """HF Accelerate for one process or a ``torchrun`` / ``accelerate launch`` world (DDP). ``cpu=True`` without a
    GPU is what makes Accelerate see a torchrun world on a machine without one (gloo)."""
    return Accelerator(
        mixed_precision="bf16" if bf16_autocast else "no",
        cpu=not torch.cuda.is_available(),
        log_with=report_to or None,
        project_dir=str(tensorboard_dir),
    )


# --- the schedule ------------------------------------------------------------------------------------------
def lr_factor(step: int, total_steps: int, warmup_ratio: float, schedule: str = "linear") -> float:
    """The learning-rate multiplier of optimizer step ``step`` (0-based) of ``total_steps``.

    ``warmup = int(warmup_ratio · total_steps)`` steps rise linearly to 1 (step s gets (s + 1) / (warmup + 1), so
    the first update is never at lr 0 and the last warmup step is just below the peak); then ``constant`` stays at
    1, ``linear`` falls to 0 at ``total_steps`` and ``cosine`` follows ½(1 + cos(π·progress)).
    """
    warmup = int(warmup_ratio * total_steps)
    if step < warmup:
        return (step + 1) / (warmup + 1)
    if schedule == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total_steps - warmup)
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * progress))
    return max(0.0, 1.0 - progress)


def make_scheduler(optimizer, total_steps: int, warmup_ratio: float, schedule: str = "linear"):
    if schedule not in SCHEDULES:
        raise RewardlabError(f"lr_schedule must be {', '.join(SCHEDULES)}, not {schedule!r}")
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, total_steps, warmup_ratio, schedule))


# --- the optimizer -----------------------------------------------------------------------------------------
def make_optimizer(
    named_parameters: Iterable[tuple[str, torch.nn.Parameter]],
    lr: float,
    weight_decay: float,
    *,
    master_weights: bool = False,
    fused: bool = False,
) -> torch.optim.AdamW:
    """AdamW over two groups: matrices (``ndim >= 2``) decay by ``weight_decay``, biases and norms do not.

    ``master_weights``: :class:`rewardlab.training.optim.MasterAdamW` (fp32 masters of bf16 weights, ``--precision
    bf16-pure``). ``fused``: torch's fused kernel (CUDA only: no per-step temporaries the size of the weights); CPU
    keeps torch's default, which the recorded losses were made with.
    """
    named = list(named_parameters)
    decay = [p for _, p in named if p.ndim >= 2]
    no_decay = [p for _, p in named if p.ndim < 2]
    adamw = MasterAdamW if master_weights else torch.optim.AdamW
    return adamw(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=lr, fused=fused
    )


# --- the update --------------------------------------------------------------------------------------------
@dataclass
class NonFiniteGuard:
    """A non-finite loss or gradient norm stops the run at that step; ``allowed > 0`` skips up to that many such
    updates first (``--skip-nonfinite``): the weights are not updated, the data position and the schedule move on."""

    allowed: int = 0
    checkpoints: Path | None = None  # where the last good checkpoint would be (named in the message)
    main: bool = True  # the process that prints the warning
    skipped: int = 0

    def admit(self, step: int, problem: str | None) -> bool:
        """True: apply the update of (1-based) ``step``; False: skip it; raises :class:`NonFiniteError` past the
        allowance."""
        if problem is None:
            return True
        self.skipped += 1
        if self.skipped > self.allowed:
            raise NonFiniteError(divergence_message(step, problem, self.checkpoints, self.allowed))
        if self.main:
            print(
                f"rewardlab: step {step}: non-finite {problem}: update skipped "
                f"({self.skipped} of at most {self.allowed}, --skip-nonfinite)",
                file=sys.stderr,
            )
        return False


def divergence_message(step: int, problem: str, ckpt_root: Path | None, allowed: int) -> str:
    ckpts = sorted(ckpt_root.glob("step-*")) if ckpt_root is not None and ckpt_root.exists() else []
    kept = f"the last good checkpoint {ckpts[-1]} is kept" if ckpts else "no checkpoint was written yet"
    skipped = f" (after skipping {allowed}, --skip-nonfinite {allowed})" if allowed else ""
    return (
        f"training diverged at step {step}: non-finite {problem}{skipped}; stopped before updating the weights, "
        f"{kept}. Lower --lr or --max-grad-norm, or pass --skip-nonfinite N to skip up to N such steps "
        "(then --resume continues from the checkpoint)"
    )


@dataclass
class UpdateResult:
    grad_norm: float | None  # before clipping; None when the step was skipped as non-finite
    problem: str | None  # what was non-finite (:func:`rewardlab.core.finite.step_problem`), or None
    applied: bool


def update(
    optimizer,
    scheduler,
    parameters,
    *,
    step: int,
    loss_sum: float,
    max_grad_norm: float,
    guard: NonFiniteGuard,
    clip: Callable = torch.nn.utils.clip_grad_norm_,
    any_process: Callable[[bool], bool] = bool,
) -> UpdateResult:
    """One optimizer step after the backward: clip the global gradient norm to ``max_grad_norm`` (0: no clipping,
    the norm is still measured for the guard), ask ``guard`` whether a non-finite loss (``loss_sum``, this
    process's) or norm allows the update, step the optimizer (or not) and the scheduler, zero the gradients.

    ``clip``: the engine's clipping (Accelerate's, FSDP2's, torch's); ``any_process(flag)``: True when ``flag`` is
    True on any process, so all processes stop or skip together.
    """
    grad_norm = clip(parameters, max_grad_norm or math.inf)
    norm = None if grad_norm is None else float(grad_norm)
    problem = step_problem(loss_sum, norm)
    if any_process(problem is not None) and problem is None:
        problem = "loss or gradient norm on another process"
    applied = guard.admit(step, problem)
    if applied:
        optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return UpdateResult(None if problem is not None else norm, problem, applied)


def any_process(accelerator) -> Callable[[bool], bool]:
    """``flag -> True if flag is True on any process`` over ``accelerator``'s world (one process: the flag)."""

    def f(flag: bool) -> bool:
        if accelerator.num_processes == 1:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=accelerator.device)
        return accelerator.reduce(t, reduction="sum").item() > 0

    return f


# --- metrics -----------------------------------------------------------------------------------------------
@dataclass
class MetricsLog:
    """``metrics.jsonl`` (one strict-JSON row per line, written by the main process) plus the trackers."""

    path: Path | None  # None: rows kept in ``history`` only
    main: bool = True
    trackers: object | None = None  # rewardlab.core.trackers.Run
    history: list[dict] = field(default_factory=list)

    def log(self, rec: dict) -> None:
        self.history.append(rec)
        if not self.main or self.path is None:
            return
        append_text(self.path, dumps_strict(rec) + "\n")
        if self.trackers is not None:
            self.trackers.log(rec)

    def truncate(self, step: int | None, keep_unstepped: bool = True) -> None:
        """Keep only the rows up to ``step`` (the resumed checkpoint; None: every step): the steps after it are run
        and logged again, so ``metrics.jsonl`` never holds a step twice. ``keep_unstepped=False`` also drops the
        rows without a step (a trainer that runs its phases again on resume, such as train-judge's evaluation of
        the base)."""
        if not self.main or self.path is None or not self.path.exists():
            return
        lines = [line for line in self.path.read_text().splitlines() if line.strip()]
        kept = [
            line
            for line, row in zip(lines, map(json.loads, lines))
            if ("step" in row or keep_unstepped) and (step is None or row.get("step", 0) <= step)
        ]
        atomic_write_text(self.path, "".join(line + "\n" for line in kept))

    def close(self) -> None:
        if self.trackers is not None:
            self.trackers.close()


# --- checkpoints -------------------------------------------------------------------------------------------
@dataclass
class Checkpointing:
    """Where a run's checkpoints go and what identifies the run: ``key`` (the config fields that must not change
    on resume), ``defaults`` (a field an older checkpoint lacks was added later: its default is what that run did)
    and the training data's fingerprint."""

    root: Path
    key: dict
    defaults: dict
    data_fingerprint: str
    keep: int = 2
    sharded: bool = False  # --fsdp: weights and optimizer are torch.distributed.checkpoint shards
    # set by load_checkpoint: every process's open logging window at the resumed step (gathered_window's list)
    resumed_window: list | None = None


# --- the logging window across a kill ----------------------------------------------------------------------
# how the windows of several processes combine when a run resumes on another number of processes (default: sum)
WINDOW_COMBINE = {"r_min": min, "r_max": max}


def gathered_window(window: dict, accelerator) -> list[dict]:
    """Every process's open logging window (its sums, not its clock ``"t"``), gathered for a checkpoint, so a row
    whose window spans a kill equals the uninterrupted run's row; a non-finite value (an empty window's min/max)
    is stored as None."""
    keys = sorted(k for k in window if k != "t")
    local = torch.tensor([[float(window[k]) for k in keys]], dtype=torch.float64, device=accelerator.device)
    rows = (accelerator.gather(local) if accelerator.num_processes > 1 else local).tolist()
    return [{k: (v if math.isfinite(v) else None) for k, v in zip(keys, row)} for row in rows]


def restored_window(fresh: dict, saved: list[dict] | None, rank: int, world: int) -> dict:
    """The window to continue from: ``fresh`` (a new window: its types, its clock, its empty values) with this
    process's saved sums; on another number of processes, process 0 takes them all combined (:data:`WINDOW_COMBINE`)."""
    if not saved:
        return fresh
    if len(saved) == world:
        mine = saved[rank]
    elif rank == 0:
        mine = {}
        for k in saved[0]:
            values = [w[k] for w in saved if w.get(k) is not None]
            mine[k] = WINDOW_COMBINE.get(k, sum)(values) if values else None
    else:
        return fresh
    out = dict(fresh)
    for k, v in mine.items():
        if k in fresh and v is not None:
            out[k] = type(fresh[k])(v)
    return out


def config_defaults(config_class) -> dict:
    return {f.name: f.default for f in dataclasses.fields(config_class) if f.default is not dataclasses.MISSING}


def untie(state: dict) -> dict:
    """safetensors refuses tensors that share memory (tied embeddings); store each once as its own copy."""
    seen, out = {}, {}
    for k, v in state.items():
        ptr = v.data_ptr()
        out[k] = v.clone() if ptr in seen else v
        seen[ptr] = k
    return out


def save_checkpoint(
    ck: Checkpointing,
    step: int,
    accelerator,
    weights: torch.nn.Module | None,
    optimizer,
    scheduler,
    write_shards: Callable[[Path], None] | None = None,
    window: dict | None = None,
) -> Path:
    """Write ``checkpoints/step-N`` via a temporary directory and a rename: a crash leaves the old one intact; only
    the newest ``ck.keep`` are kept. ``weights``: the module whose ``state_dict`` is saved (unsharded runs);
    ``write_shards(dir)``: every process writes its shards there (sharded runs); ``window``: the open logging
    window (:func:`gathered_window`; every process passes its own)."""
    accelerator.wait_for_everyone()
    windows = gathered_window(window, accelerator) if window is not None else None
    final = ck.root / f"step-{step:08d}"
    tmp = ck.root / f".tmp-step-{step:08d}"
    temporary = (tmp,) if accelerator.is_main_process else ()
    if not ck.sharded:  # every process (DDP: the same weights), so all stop together instead of waiting on rank 0
        check_weights(weights.state_dict().items(), f"step {step}: refusing to write checkpoint {final}")
    with writing(final, temporary=temporary):  # a full disk: the temporary directory goes, the older checkpoints stay
        _write_checkpoint(ck, step, accelerator, weights, optimizer, scheduler, write_shards, final, tmp, windows)
    accelerator.wait_for_everyone()
    return final


def _write_checkpoint(
    ck, step, accelerator, weights, optimizer, scheduler, write_shards, final: Path, tmp: Path, windows=None
):
    main = accelerator.is_main_process
    if main:
        ck.root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    if ck.sharded:
        accelerator.wait_for_everyone()
        write_shards(tmp)
        accelerator.wait_for_everyone()
    if main:
        trainer = {}
        if not ck.sharded:
            state = {k: v.detach().contiguous().clone() for k, v in weights.state_dict().items()}
            save_file(untie(state), str(tmp / "model.safetensors"))
            trainer["optimizer"] = optimizer.state_dict()
        torch.save(
            {
                **trainer,
                "scheduler": scheduler.state_dict(),
                "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
            },
            tmp / "trainer.pt",
        )
        (tmp / "state.json").write_text(
            dumps_strict(
                {
                    "step": step,
                    "config": ck.key,
                    "data_fingerprint": ck.data_fingerprint,
                    **({"metrics_window": windows} if windows is not None else {}),
                },
                indent=2,
            )
        )
        readable_like_the_rest(tmp)  # safetensors writes its files 0600
        replace_dir(tmp, final)  # fsynced before the rename makes it the newest checkpoint
        fsync_tree(ck.root, files=False)
        for old in sorted(p for p in ck.root.glob("step-*"))[: -ck.keep]:
            shutil.rmtree(old, ignore_errors=True)


def read_checkpoint(ck: Path, sharded: bool = False) -> tuple[dict, dict | None, dict]:
    """``(state, weights, trainer state)`` of checkpoint directory ``ck``, all read before any is applied;
    ValueError saying what is wrong when a file is missing, truncated or garbage."""
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


def newest_intact_checkpoint(root: Path, sharded: bool = False):
    """``(path, state, weights, trainer)`` of the newest checkpoint that reads whole, warning about each newer one
    that does not (a crash or a full disk can leave one broken); None when there are none."""
    ckpts = sorted(root.glob("step-*"))
    broken = []
    for ck in reversed(ckpts):
        try:
            return (ck, *read_checkpoint(ck, sharded))
        except ValueError as e:
            broken.append(ck)
            print(
                f"rewardlab: warning: checkpoint {ck} is unreadable ({str(e).splitlines()[0][:200]}); "
                "trying the one before it",
                file=sys.stderr,
            )
    if broken:
        raise RewardlabError(
            f"--resume: none of the {len(broken)} checkpoints in {root} is intact; start again with --overwrite"
        )
    return None


def load_checkpoint(
    ck: Checkpointing,
    weights: torch.nn.Module | None,
    optimizer,
    scheduler,
    read_shards: Callable[[Path], None] | None = None,
) -> int:
    """Restore the newest intact checkpoint under ``ck.root`` into ``weights`` (or, sharded, through
    ``read_shards(dir)``), ``optimizer``, ``scheduler`` and the RNGs; returns its step (0: none found). Refuses a
    checkpoint of another config (``ck.key``) or other training data."""
    found = newest_intact_checkpoint(ck.root, ck.sharded) if ck.root.exists() else None
    if found is None:
        print(f"rewardlab: --resume given but no checkpoint in {ck.root}; starting from step 0", file=sys.stderr)
        return 0
    path, state, saved_weights, tr = found
    mismatched = {k for k, v in ck.key.items() if state["config"].get(k, ck.defaults.get(k)) != v}
    if mismatched:
        raise RewardlabError(f"cannot resume from {path}: config differs in {sorted(mismatched)}")
    if state.get("data_fingerprint") != ck.data_fingerprint:
        raise RewardlabError(f"cannot resume from {path}: the training data changed (fingerprint differs)")
    try:
        if ck.sharded:
            read_shards(path)
        else:
            weights.load_state_dict(saved_weights)
            optimizer.load_state_dict(tr["optimizer"])
    except (RuntimeError, ValueError, KeyError) as e:
        raise RewardlabError(
            f"cannot resume from {path}: its weights or optimizer state do not fit this model "
            f"({str(e).splitlines()[0][:200]})"
        ) from None
    scheduler.load_state_dict(tr["scheduler"])
    torch.set_rng_state(tr["rng"]["torch"])
    np.random.set_state(tr["rng"]["numpy"])
    random.setstate(tr["rng"]["python"])
    ck.resumed_window = state.get("metrics_window")
    print(f"rewardlab: resumed from {path} (step {state['step']})", file=sys.stderr)
    return state["step"]


# --- the loop ----------------------------------------------------------------------------------------------
@dataclass
class LoopOptions:
    """What :func:`run_steps` takes from a trainer's config (the same names as ``rewardlab train``'s options)."""

    lr: float
    weight_decay: float = 0.0
    warmup_ratio: float = 0.0
    lr_schedule: str = "linear"
    max_grad_norm: float = 1.0
    save_every: int = 0  # steps between checkpoints (0: none but --stop-after's)
    stop_after: int | None = None  # stop as if killed after this many steps, leaving a checkpoint
    resume: bool = False
    skip_nonfinite: int = 0
    log_every: int = 1  # steps per metrics row: the sums of the applied steps in between (a trainer opts in)

    @classmethod
    def from_config(cls, cfg) -> "LoopOptions":
        """The fields of a trainer's config that have these names (``log_every`` excepted: 1, a row per step,
        unless the trainer passes its own)."""
        return cls(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(cls) if f.name != "log_every"})


class OneProcess:
    """What :func:`run_steps` reads of an Accelerator, for a loop that runs in this process alone whatever the
    launcher: the gate (:mod:`rewardlab.multiobjective.train`) trains on its cached features in one process."""

    num_processes = 1
    process_index = 0
    is_main_process = True
    device = torch.device("cpu")

    def wait_for_everyone(self) -> None:
        pass


@dataclass
class LoopResult:
    steps: int  # the last step run
    finished: bool  # False after --stop-after
    history: list[dict]  # this invocation's rows (a resumed run: the steps after the checkpoint)


def all_reduce_grads(parameters: list[torch.nn.Parameter], world: int) -> None:
    """Sum every parameter's gradient over the ``torchrun`` world (a parameter a process left without one counts
    as zeros there), so each process holds the gradient of the whole step's loss. One process: nothing."""
    if world == 1:
        return
    for p in parameters:
        if not p.requires_grad:  # frozen (LoRA's base weights): no gradient to sum, none to invent
            continue
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        torch.distributed.all_reduce(p.grad)


def run_steps(
    plan: StepPlan,
    step_loss: Callable[[list[int], list[int]], dict[str, float]],
    row: Callable[[dict[str, float], list[int]], dict],
    *,
    module: torch.nn.Module,
    trainable: list[tuple[str, torch.nn.Parameter]],
    opts: LoopOptions,
    ckpt: Checkpointing | None = None,
    accelerator=None,
    metrics: MetricsLog | None = None,
    on_row: Callable[[dict, bool], None] | None = None,
    on_step: Callable[[int, bool], bool | None] | None = None,
    resume_as: str = "train-judge",
) -> LoopResult:
    """Train ``trainable`` (``module``'s parameters that learn; ``module``'s state is what checkpoints hold) for
    ``plan.total`` steps.

    Step s: the process's share ``items[rank::world]`` of ``items = plan.step(s)`` goes to ``step_loss(share,
    items)``, which runs the forward and the backward of the share (its loss divided by the whole step's
    normaliser, so the summed gradient is the whole step's) and returns sums (``"loss"``: its part of the step's
    loss; any counts); the gradients are summed over the processes (:func:`all_reduce_grads`), :func:`update`
    steps; the sums, added over the processes, become a ``metrics.jsonl`` row through ``row(sums, items)`` plus
    step, epoch, lr, grad_norm and seconds (``on_row(row, last)`` sees it too). With ``opts.log_every`` > 1 a row
    is written every ``log_every`` steps (and at the last), from the sums of the applied steps since the last row
    (a skipped non-finite step adds nothing: ``row`` sees empty sums if all were skipped); with 1, each step's. ``on_step(done, last)``
    runs after every step's row (held-out evaluation), before its checkpoint; when it returns True the run ends
    there, finished (early stopping: the gate's validation loss; every process must return the same). Checkpoints every ``opts.save_every`` steps and at
    ``opts.stop_after``; ``opts.resume`` continues from the newest intact one, exactly.

    Library use: without ``ckpt`` there are no checkpoints (``save_every``, ``stop_after`` and ``resume`` are then
    refused), without ``accelerator`` one process, without ``metrics`` no file (the rows are returned)."""
    if ckpt is None and (opts.save_every or opts.stop_after is not None or opts.resume):
        raise RewardlabError("save_every, stop_after and resume need a checkpoint directory")
    accelerator = accelerator or make_accelerator(False, [], Path("."))
    metrics = metrics or MetricsLog(None)
    world, rank, main = accelerator.num_processes, accelerator.process_index, accelerator.is_main_process
    if plan.batch_size < world:
        raise RewardlabError(f"batch_size {plan.batch_size} is smaller than the number of processes ({world})")
    if ckpt is not None and not opts.resume and ckpt.root.exists() and any(ckpt.root.iterdir()):
        raise RewardlabError(f"{ckpt.root} already has checkpoints: pass --resume to continue, or --overwrite")
    params = [p for _, p in trainable]
    on_cuda = bool(params) and params[0].device.type == "cuda"  # the model's device (--device cpu on a GPU machine)
    optimizer = make_optimizer(trainable, opts.lr, opts.weight_decay, fused=on_cuda)
    scheduler = make_scheduler(optimizer, plan.total, opts.warmup_ratio, opts.lr_schedule)
    start = load_checkpoint(ckpt, module, optimizer, scheduler) if opts.resume else 0
    if opts.resume:
        metrics.truncate(start)
    guard = NonFiniteGuard(opts.skip_nonfinite, ckpt.root if ckpt is not None else None, main)
    module.train()
    history, t0 = [], time.perf_counter()
    window: dict[str, float] = {}
    if opts.resume and ckpt.resumed_window:  # the open window spans the stop: its sums (already summed over the
        # processes, so the same on each; any number of processes may resume) continue, so the row equals the
        # uninterrupted run's
        window = {k: float(v) for k, v in ckpt.resumed_window[0].items() if v is not None}
    # Ctrl-C / SIGTERM: the step finishes, a checkpoint, Interrupted (exit 130); without a checkpoint directory
    # there is nothing to resume from, so a signal stops the run at once, as it would any program
    with StopSignals() if ckpt is not None else contextlib.nullcontext(StopSignals()) as signals:
        for s in range(start, plan.total):
            done = s + 1
            epoch, items = plan.step(s)
            sums = step_loss(items[rank::world], items)
            all_reduce_grads(params, world)
            result = update(
                optimizer,
                scheduler,
                params,
                step=done,
                loss_sum=sums["loss"],
                max_grad_norm=opts.max_grad_norm,
                guard=guard,
                any_process=any_process(accelerator),
            )
            if world > 1:
                values = torch.tensor(list(sums.values()), dtype=torch.float64, device=accelerator.device)
                sums = dict(zip(sums, accelerator.reduce(values, reduction="sum").tolist()))
            if opts.log_every == 1:
                window = sums  # a row per step: this step's sums (a skipped step's too: its row says so)
            elif result.applied:  # a skipped step adds nothing to a window of several
                window = {k: window.get(k, 0.0) + v for k, v in sums.items()}
            if done % opts.log_every == 0 or done == plan.total:
                rec = {
                    "step": done,
                    "epoch": epoch,
                    **row(window, items),
                    "lr": scheduler.get_last_lr()[0],
                    "grad_norm": result.grad_norm,
                    "seconds": time.perf_counter() - t0,
                    **({"skipped_nonfinite": guard.skipped} if guard.skipped else {}),
                }
                metrics.log(rec)
                history.append(rec)
                window = {}
                if on_row is not None:
                    on_row(rec, done == plan.total)
            if on_step is not None and on_step(done, done == plan.total):
                module.eval()
                return LoopResult(done, True, history)
            if done == plan.total:
                break
            stop = opts.stop_after is not None and done >= opts.stop_after
            signalled = signals.agreed(accelerator)
            written = "none (no checkpoint directory)"
            if ckpt is not None and ((opts.save_every and done % opts.save_every == 0) or stop or signalled):
                written = str(save_checkpoint(ckpt, done, accelerator, module, optimizer, scheduler, window=window))
            if signalled:
                module.eval()
                command = resume_command(resume_as, str(ckpt.root.parent) if ckpt is not None else ".")
                raise interrupted(signals.received, done, plan.total, written, command)
            if stop:
                module.eval()
                return LoopResult(done, False, history)
    module.eval()
    return LoopResult(plan.total, True, history)
