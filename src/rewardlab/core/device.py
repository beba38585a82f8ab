"""Where and in what precision a command runs a model: one implementation of ``--device``, ``--dtype``,
``--attn-implementation`` and ``--quantize`` for every command that loads a model (score, eval, probe,
normalize, serve, judge). A command that trains (``train-judge``) takes :class:`TrainDeviceOptions`
(``--device``, ``--attn-implementation``): its weights are float32 and its arithmetic is ``--precision`` (auto: bf16
autocast on a GPU, fp32 on the CPU), as ``train``'s (:func:`training_precision`, :func:`resolve_training`).

Every such command's config inherits :class:`DeviceOptions` (as it inherits
:class:`rewardlab.core.contract_options.ContractOptions`); :func:`resolve` turns the options into a
:class:`Placement` (after checking them: a bad value, a device that is not there, FlashAttention-2 or
bitsandbytes not installed are refused with the reason, before any weights load), and
:func:`rewardlab.scoring.loader.load_reward_model` loads under it: every ``from_pretrained`` of a scorer reads
:func:`pretrained_kwargs` (``device_map``, ``attn_implementation``, ``quantization_config``), so the weights
are created on the device in the dtype, whatever kind of scorer it is.

``--dtype auto``: float32 on the CPU (CPU half precision is slow and rounds); on a GPU the checkpoint's recorded
``torch_dtype`` when it is a half type (bfloat16 falling back to float16 where the GPU has no bfloat16), else
bfloat16 where the GPU supports it, else float32. The choice and its reason are printed and recorded (eval's
report, serve's ``/info``).

This module imports no torch at import time (``--help`` reads the config classes from source).
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from rewardlab.core.errors import RewardlabError

DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16"}
DTYPES.update({"float16": "float16", "fp16": "float16", "half": "float16"})
ATTN_IMPLEMENTATIONS = ("eager", "sdpa", "flash_attention_2")
QUANTIZATIONS = ("4bit", "8bit")


@dataclass
class TrainDeviceOptions:
    # device
    device: str = "auto"  # auto (cuda when present, else mps, else cpu) | cpu | cuda | cuda:N | mps
    attn_implementation: str | None = None  # eager | sdpa | flash_attention_2 (default: transformers' choice)


@dataclass
class DeviceOptions(TrainDeviceOptions):
    # auto (cpu: float32; GPU: the checkpoint's torch_dtype, else bfloat16 where supported) | float32 | bfloat16 |
    # float16
    dtype: str = "auto"
    quantize: str | None = None  # 4bit (NF4) | 8bit: load the weights quantized with bitsandbytes (CUDA; CPU: >= 0.50)


def device_options(cfg) -> DeviceOptions:
    """The :class:`DeviceOptions` part of any command config (missing fields take their defaults)."""
    names = DeviceOptions.__dataclass_fields__
    return DeviceOptions(**{n: getattr(cfg, n) for n in names if hasattr(cfg, n)})


PRECISIONS = ("auto", "fp32", "bf16")  # a trainer's --precision (train adds bf16-pure: bf16 weights, fp32 masters)


@dataclass(frozen=True)
class Placement:
    """What :func:`resolve` chose: ``device`` (``cpu``, ``cuda:0``, ``mps``), ``dtype`` (a torch dtype name),
    ``why`` (how the dtype was chosen), ``attn_implementation`` and ``quantize`` (None: not asked for); a trainer's
    placement adds ``autocast`` (the ``--precision`` arithmetic over the float32 weights)."""

    device: str
    dtype: str
    why: str
    attn_implementation: str | None = None
    quantize: str | None = None
    autocast: str | None = None  # training: the dtype of the autocast arithmetic (--precision bf16), else None

    @property
    def torch_dtype(self):
        import torch  # lazy: this module stays light for --help

        return getattr(torch, self.dtype)

    @property
    def torch_autocast(self):
        """The torch dtype of a trainer's autocast (None: none)."""
        import torch  # lazy: this module stays light for --help

        return getattr(torch, self.autocast) if self.autocast else None

    def describe(self) -> dict:
        """What reports record (``placement`` in eval's provenance, serve's ``/info``)."""
        out = {
            "device": self.device,
            "dtype": self.dtype,
            "dtype_reason": self.why,
            "attn_implementation": self.attn_implementation or "default",
            "quantize": self.quantize,
        }
        return {**out, "autocast": self.autocast} if self.autocast else out

    def line(self) -> str:
        """``model on cpu in float32 (--dtype auto: float32 on the CPU)`` (printed before scoring)."""
        extra = "".join(
            f", {text}"
            for text in (
                self.attn_implementation and f"attention {self.attn_implementation}",
                self.quantize and f"{self.quantize} weights",
                self.autocast and f"{self.autocast} autocast",
            )
            if text
        )
        return f"model on {self.device} in {self.dtype} ({self.why}){extra}"


def _bad(option: str, value, expected: str) -> RewardlabError:
    return RewardlabError(f"--{option} {value}: {expected}")


def _device(requested: str) -> str:
    import torch  # lazy: this module stays light for --help

    name = requested.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return f"cuda:{torch.cuda.current_device()}"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    if name == "cpu":
        return "cpu"
    if name == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise _bad("device", requested, "MPS (Apple GPU) is not available on this machine")
        return "mps"
    kind, _, index = name.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise _bad("device", requested, "expected auto, cpu, cuda, cuda:N or mps")
    if not torch.cuda.is_available():
        raise _bad("device", requested, "CUDA is not available here (torch sees no GPU); use --device cpu or auto")
    n = int(index or torch.cuda.current_device())
    if n >= torch.cuda.device_count():
        raise _bad("device", requested, f"this machine has {torch.cuda.device_count()} CUDA device(s)")
    return f"cuda:{n}"


def checkpoint_dtype(model_path: str | None) -> str | None:
    """The ``torch_dtype`` (or ``dtype``) a local checkpoint's ``config.json`` records, else None."""
    if not model_path:
        return None
    try:
        config = json.loads((Path(model_path) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    value = config.get("torch_dtype") or config.get("dtype")
    return DTYPES.get(str(value).replace("torch.", "")) if value else None


def _bf16_ok(device: str) -> bool:
    import torch  # lazy: this module stays light for --help

    if device.startswith("cuda"):
        return bool(torch.cuda.is_bf16_supported())
    return device in ("cpu", "mps")


def _dtype(requested: str, device: str, model_path: str | None) -> tuple[str, str]:
    name = requested.strip().lower()
    if name != "auto":
        if name not in DTYPES:
            raise _bad("dtype", requested, "expected auto, float32, bfloat16 or float16 (or fp32, bf16, fp16)")
        dtype = DTYPES[name]
        if dtype == "bfloat16" and not _bf16_ok(device):
            raise _bad("dtype", requested, f"{device} does not support bfloat16; use float16 or float32")
        return dtype, f"--dtype {requested}"
    if device == "cpu":
        return "float32", "--dtype auto: float32 on the CPU"
    recorded = checkpoint_dtype(model_path)
    if recorded in ("bfloat16", "float16"):
        if recorded == "bfloat16" and not _bf16_ok(device):
            return "float16", f"--dtype auto: the checkpoint's bfloat16, as float16 ({device} has no bfloat16)"
        return recorded, f"--dtype auto: the checkpoint's torch_dtype {recorded}"
    if _bf16_ok(device):
        return "bfloat16", f"--dtype auto: bfloat16 on {device} (checkpoint: {recorded or 'no torch_dtype recorded'})"
    return "float32", f"--dtype auto: float32 ({device} has no bfloat16)"


def check_attn_implementation(requested: str | None) -> str | None:
    """``--attn-implementation`` checked (a known name; flash-attn installed for flash_attention_2) without torch:
    a trainer's config refuses a bad one when it is built, before anything loads."""
    return _attn(requested)


def check_without_torch(option: str, value) -> None:
    """What can be told of a device option's value before torch loads (``rewardlab.commands.preflight``): a known
    name, and the package it needs installed. Whether the machine has the device (or a GPU bfloat16) is
    :func:`resolve`'s, when the command runs."""
    if value is None:
        return
    if option == "attn_implementation":
        _attn(value)
    elif option == "quantize":
        check_quantize(value)
    elif option == "dtype" and value.strip().lower() not in ("auto", *DTYPES):
        raise _bad("dtype", value, "expected auto, float32, bfloat16 or float16 (or fp32, bf16, fp16)")
    elif option == "device":
        kind, _, index = value.strip().lower().partition(":")
        if kind not in ("auto", "cpu", "cuda", "mps") or (index and (kind != "cuda" or not index.isdigit())):
            raise _bad("device", value, "expected auto, cpu, cuda, cuda:N or mps")


def _attn(requested: str | None) -> str | None:
    if requested is None:
        return None
    if requested not in ATTN_IMPLEMENTATIONS:
        raise _bad("attn-implementation", requested, f"expected one of {', '.join(ATTN_IMPLEMENTATIONS)}")
    if requested == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        raise _bad(
            "attn-implementation",
            requested,
            "the flash-attn package is not installed (pip install flash-attn; it needs a CUDA GPU); "
            "use sdpa, PyTorch's fused attention, instead",
        )
    return requested


BNB_CPU_SINCE = (0, 50)  # the bitsandbytes release whose CPU backend rewardlab was tested with (0.50.2)


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit()) or "0"
        parts.append(int(digits))
    return tuple(parts)


def check_quantize(requested: str | None) -> str | None:
    """``--quantize``'s name and its package, without torch: None, or a known name with bitsandbytes installed."""
    if requested is None:
        return None
    if requested not in QUANTIZATIONS:
        raise _bad("quantize", requested, f"expected one of {', '.join(QUANTIZATIONS)}")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise _bad("quantize", requested, "the bitsandbytes package is not installed (pip install bitsandbytes)")
    return requested


def check_quantize_device(requested: str, device: str) -> None:
    """bitsandbytes' quantized weights run on a CUDA GPU, and on the CPU from bitsandbytes 0.50 (its CPU backend;
    tested with 0.50.2: 4-bit and 8-bit loading, scoring and LoRA training); nowhere else (MPS)."""
    if device.startswith("cuda"):
        return
    if device == "cpu":
        from importlib.metadata import version  # lazy: only with --quantize

        installed = version("bitsandbytes")
        if _version(installed) >= BNB_CPU_SINCE:
            return
        raise _bad(
            "quantize",
            requested,
            f"bitsandbytes {installed} runs quantized weights only on a CUDA GPU; its CPU backend needs "
            f"bitsandbytes {'.'.join(map(str, BNB_CPU_SINCE))} or later (pip install -U bitsandbytes)",
        )
    raise _bad("quantize", requested, f"bitsandbytes quantized weights run on a CUDA GPU or the CPU, not {device}")


def _quantize(requested: str | None, device: str) -> str | None:
    if check_quantize(requested) is None:
        return None
    check_quantize_device(requested, device)
    return requested


def quantization_config(quantize: str, compute_dtype: str):
    """The ``BitsAndBytesConfig`` of ``--quantize``: 4bit is QLoRA's (Dettmers et al. 2023): NF4 weights, double
    quantization of the scales, the matmuls in ``compute_dtype``; 8bit is LLM.int8()."""
    import torch  # lazy: this module stays light for --help
    from transformers import BitsAndBytesConfig  # lazy: only with --quantize (bitsandbytes checked)

    if quantize == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=getattr(torch, compute_dtype),
    )


def training_compute_dtype(device: str) -> str:
    """A quantized trainer's 4-bit matmul dtype: bfloat16 where ``device`` has it, else float16 on a GPU, else float32."""
    if _bf16_ok(device):
        return "bfloat16"
    return "float16" if device.startswith("cuda") else "float32"


def quantized_loading(quantize: str, device: str) -> dict:
    """The ``from_pretrained`` keywords of a quantized trainer's backbone on ``device`` (checked): the
    ``quantization_config`` (4bit: matmuls in :func:`training_compute_dtype`) and ``device_map`` (the weights are
    quantized where they are created); ``describe``: what was chosen, for the status line and the run's summary."""
    check_quantize_device(quantize, device)
    compute = training_compute_dtype(device)
    how = "LLM.int8()" if quantize == "8bit" else f"NF4, double quantization, {compute} matmuls"
    return {"quantization_config": quantization_config(quantize, compute), "device_map": {"": device}, "describe": how}


def check_training_quantize(quantize: str | None, *, lora_r: int, fsdp: bool, objective: str, precision: str) -> None:
    """``train --quantize`` (QLoRA) with the rest of a training config, without torch: it trains LoRA adapters over
    a frozen quantized backbone of a preference model, on one device per process."""
    if quantize is None:
        return
    if quantize not in QUANTIZATIONS:
        raise _bad("quantize", quantize, f"expected one of {', '.join(QUANTIZATIONS)}")
    flag = f"--quantize {quantize}"
    if objective != "preference":
        raise RewardlabError(f"{flag} applies to --objective preference, not {objective}")
    if fsdp:
        raise RewardlabError(f"{flag} and --fsdp do not go together: FSDP does not shard quantized weights; drop one")
    if not lora_r:
        raise RewardlabError(
            f"{flag} trains LoRA adapters over the frozen quantized backbone (QLoRA): it needs --lora-r > 0 "
            "(e.g. --lora-r 16); quantized weights themselves cannot be trained"
        )
    if precision == "bf16-pure":
        raise RewardlabError(f"{flag} keeps the adapters and the head in float32: use --precision auto, fp32 or bf16")


def resolve(opts: DeviceOptions, model_path: str | None = None) -> Placement:
    """The :class:`Placement` ``opts`` ask for, checked (a :class:`RewardlabError` naming the option and the
    reason otherwise); ``model_path``: where ``--dtype auto`` reads the checkpoint's ``torch_dtype``."""
    attn = _attn(opts.attn_implementation)  # package checks first: they need no torch
    device = _device(opts.device)
    quantize = _quantize(opts.quantize, device)
    dtype, why = _dtype(opts.dtype, device, model_path)
    return Placement(device=device, dtype=dtype, why=why, attn_implementation=attn, quantize=quantize)


def training_precision(requested: str, device: str) -> tuple[str, str]:
    """``(fp32 | bf16, why)`` for a trainer's ``--precision`` on ``device`` (auto: bf16 autocast on a CUDA GPU that
    has bfloat16, else fp32)."""
    name = requested.strip().lower()
    if name not in PRECISIONS:
        raise _bad("precision", requested, f"expected one of {', '.join(PRECISIONS)}")
    if name != "auto":
        if name == "bf16" and not _bf16_ok(device):
            raise _bad("precision", requested, f"{device} does not support bfloat16; use fp32")
        return name, f"--precision {requested}"
    if device.startswith("cuda") and _bf16_ok(device):
        return "bf16", f"--precision auto: bf16 autocast on {device}"
    return "fp32", f"--precision auto: fp32 on {device}"


def resolve_training(opts: TrainDeviceOptions, precision: str, device: str | None = None) -> Placement:
    """A trainer's :class:`Placement`: the checked ``--device`` (``device``, when given, wins: the process's device
    under ``torchrun``), ``--attn-implementation``, float32 weights and ``--precision``'s autocast."""
    attn = _attn(opts.attn_implementation)
    if device is not None and device.partition(":")[0] == "cpu":  # Accelerate's name for a CPU process under torchrun
        device = "cpu"  # is "cpu:0"; a CPU has no index to keep
    where = _device(device or opts.device)
    arithmetic, why = training_precision(precision, where)
    return Placement(
        device=where,
        dtype="float32",
        why=f"a trainer keeps float32 weights; {why}",
        attn_implementation=attn,
        autocast="bfloat16" if arithmetic == "bf16" else None,
    )


_ACTIVE: contextvars.ContextVar[Placement | None] = contextvars.ContextVar("rewardlab_placement", default=None)


@contextlib.contextmanager
def placed(placement: Placement | None):
    """Every ``from_pretrained`` of a scorer inside reads this placement (:func:`pretrained_kwargs`)."""
    token = _ACTIVE.set(placement)
    try:
        yield placement
    finally:
        _ACTIVE.reset(token)


def pretrained_kwargs() -> dict:
    """The ``from_pretrained`` keywords of the active placement (none outside :func:`placed`): ``device_map``
    (the weights are created on the device), ``attn_implementation`` and a bitsandbytes ``quantization_config``.
    The dtype travels as the loaders' own ``torch_dtype`` argument."""
    p = _ACTIVE.get()
    if p is None:
        return {}
    out: dict = {"device_map": {"": p.device}}
    if p.attn_implementation:
        out["attn_implementation"] = p.attn_implementation
    if p.quantize:
        out["quantization_config"] = quantization_config(p.quantize, p.dtype)
    return out
