"""Sharded training with PyTorch FSDP2 (``torch.distributed.fsdp.fully_shard``): ``rewardlab train --fsdp``.

Each transformer layer (every :class:`transformers.modeling_layers.GradientCheckpointingLayer`) is its own FSDP
unit and the :class:`rewardlab.models.reward_model.RewardModel` is the root (embeddings, final norm, the scalar head). Parameters,
gradients and AdamW states are ``DTensor`` shards over the processes; a layer's weights are all-gathered for its
forward and backward, gradients are reduce-scattered (averaged over processes, as DDP does), so the update and the
per-step losses equal one process's (tested: 2 gloo processes on CPU against 1).

This is PyTorch's own engine driven directly, not Accelerate's FSDP plugin: on a machine without a GPU the plugin
runs every rank as a world of one. ``Accelerator(cpu=True)`` still starts the ``torchrun`` world (gloo) and does
the logging reductions; one process without ``torchrun`` gets a gloo world of one here.

* Mixed precision: with ``precision="bf16"`` (the default on GPU) a :class:`MixedPrecisionPolicy` computes in bf16
  with fp32 shards, fp32 gradient reduction and fp32 rewards. ``bf16-pure`` and LoRA are refused with ``--fsdp``.
* Checkpoints: ``checkpoints/step-N/sharded/`` written by ``torch.distributed.checkpoint`` (each process its own
  shards of the weights and the optimizer states); resume loads them into the sharded model exactly.
* The saved model: the full state dict, gathered to CPU on every process and written by the main one, is a plain
  ``AutoModelForSequenceClassification`` checkpoint.
* The packed forward (:mod:`rewardlab.models.packing`) sees the ``FSDP…`` layer classes and runs whole layers (their
  forward all-gathers the weights) instead of reading the last layer's weights itself.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard
from torch.distributed.tensor import DTensor
from transformers.modeling_layers import GradientCheckpointingLayer

from rewardlab.core.finite import NonFiniteError, nonfinite_tensors

SHARDED_DIR = "sharded"  # inside checkpoints/step-N


def ensure_process_group() -> bool:
    """Start a gloo world of one when no process group exists (one process, no ``torchrun``); True if started."""
    if dist.is_initialized():
        return False
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    return True


def shard(rm, device: torch.device, bf16: bool) -> int:
    """``fully_shard`` every transformer layer of ``rm.model``, then ``rm`` itself; returns the number of layers."""
    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    mp = (
        MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if bf16 else MixedPrecisionPolicy()
    )
    layers = [m for m in rm.model.modules() if isinstance(m, GradientCheckpointingLayer)]
    for layer in layers:
        fully_shard(layer, mesh=mesh, mp_policy=mp)
    fully_shard(rm, mesh=mesh, mp_policy=mp)
    return len(layers)


def is_sharded(module) -> bool:
    return isinstance(module, FSDPModule)


@contextlib.contextmanager
def no_sync(model):
    """Accumulate gradients locally (no reduce-scatter) for the micro-batches before a step's last one."""
    model.set_requires_gradient_sync(False)
    try:
        yield
    finally:
        model.set_requires_gradient_sync(True)


def clip_grad_norm_(parameters, max_norm: float) -> torch.Tensor:
    """Clip by the global gradient norm over all shards; returns that norm (a plain tensor)."""
    norm = torch.nn.utils.clip_grad_norm_(list(parameters), max_norm)
    return norm.full_tensor() if isinstance(norm, DTensor) else norm


def full_state_dict(rm) -> dict[str, torch.Tensor]:
    """The whole model's weights on CPU, keys of ``rm.model`` (collective: every process calls it)."""
    state = get_model_state_dict(rm, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return {k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")}


def check_shards_finite(state: dict, where: str) -> None:
    """Every process checks its own shards and all learn the count (collective): raise :class:`NonFiniteError`
    naming ``where`` and the first bad tensors on every process when any shard anywhere holds a NaN or ±Inf."""
    local = [(k, v.to_local() if isinstance(v, DTensor) else v) for k, v in state.items() if torch.is_tensor(v)]
    bad = nonfinite_tensors(local)
    count = torch.tensor([float(len(bad))], device=local[0][1].device if local else "cpu")
    dist.all_reduce(count)
    if count.item():
        named = f": {', '.join(bad[:3])}" if bad else " (on another process)"
        raise NonFiniteError(f"{where}: non-finite (NaN/Inf) weights in {int(count.item())} shard(s){named}")


def save_sharded(path: Path, rm, optimizer) -> None:
    """Each process writes its shards of the weights and optimizer states under ``path`` (collective), after
    :func:`check_shards_finite`: no checkpoint holds a non-finite weight (the unsharded ones are checked too)."""
    optimizer = getattr(optimizer, "optimizer", optimizer)  # Accelerate's wrapper
    model_state = get_model_state_dict(rm)
    step_dir = path.parent  # checkpoints/.tmp-step-N, renamed to step-N once written
    check_shards_finite(model_state, f"refusing to write checkpoint {step_dir.with_name(step_dir.name[5:])}")
    dcp.save({"model": model_state, "optim": get_optimizer_state_dict(rm, optimizer)}, checkpoint_id=str(path))


def load_sharded(path: Path, rm, optimizer) -> None:
    """Load :func:`save_sharded`'s shards into the sharded model and its optimizer (collective)."""
    optimizer = getattr(optimizer, "optimizer", optimizer)
    state = {"model": get_model_state_dict(rm), "optim": get_optimizer_state_dict(rm, optimizer)}
    dcp.load(state, checkpoint_id=str(path))
    set_model_state_dict(rm, state["model"])
    set_optimizer_state_dict(rm, optimizer, state["optim"])
