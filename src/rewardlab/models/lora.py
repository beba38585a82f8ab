"""LoRA reward models (peft): adapters on the backbone, the scalar head always trained in full and saved.

``apply_lora(rm, ...)`` wraps ``rm.model`` in a ``PeftModelForSequenceClassification``: LoRA matrices on the
chosen linear layers (default: every linear layer except the head), the head (``score`` for causal LMs,
``classifier`` for BERT-style encoders) in ``modules_to_save``, so it is trainable and written with the adapter.
A trained LoRA model directory holds ``adapter_config.json`` + ``adapter_model.safetensors`` (LoRA weights and
the head), the tokenizer and ``rewardlab.json``; :meth:`RewardModel.load` rebuilds it on the base backbone
(``load_adapter_model``). ``rewardlab export --merge`` folds the adapters into the weights and writes a plain
``AutoModelForSequenceClassification`` directory (:mod:`rewardlab.commands.export`).
"""

from __future__ import annotations

import json
from pathlib import Path

from transformers import AutoConfig, AutoModelForSequenceClassification

from rewardlab.core.device import pretrained_kwargs
from rewardlab.core.errors import ModelContractError, RewardlabError
from rewardlab.models.backbones import resolve_backbone

HEAD_NAMES = ("score", "classifier")
ADAPTER_CONFIG = "adapter_config.json"


def head_name(model) -> str:
    for name in HEAD_NAMES:
        if hasattr(model, name):
            return name
    raise RewardlabError(f"cannot find the scalar head of {type(model).__name__} (looked for {HEAD_NAMES})")


def is_peft(model) -> bool:
    try:
        from peft import PeftModel  # lazy: peft is an optional dependency
    except ImportError:
        return False
    return isinstance(model, PeftModel)


def _peft():
    try:
        import peft  # lazy: peft is an optional dependency
    except ImportError as e:  # pragma: no cover - peft is in the dev/lora extras
        raise RewardlabError("LoRA needs peft: pip install 'rewardlab[lora]'") from e
    return peft


def check_target_modules(model, targets: list[str] | None) -> None:
    """Every ``--lora-target-modules`` name must name modules of ``model`` as peft matches a list (a module's full
    name, or its last dotted parts); an error lists the linear layers there are (before any training)."""
    if not targets:
        return
    names = [n for n, _ in model.named_modules() if n]
    missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
    if missing:
        import torch  # lazy: lora is imported by the loader's light paths too

        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
        raise RewardlabError(
            f"--lora-target-modules: {', '.join(repr(t) for t in missing)} names no module of this model; its linear "
            f"layers are called {', '.join(linear)}"
        )


def prepare_quantized(rm) -> None:
    """QLoRA's preparation of a backbone loaded quantized (``train --quantize``), before :func:`apply_lora`: peft's
    ``prepare_model_for_kbit_training`` freezes every weight and casts the non-quantized ones (norms, embeddings)
    to float32; the scalar head is then float32 too (LoRA's ``modules_to_save`` trains a copy of it in full).
    rewardlab's own activation checkpointing (``--gradient-checkpointing``) is left to the trainer."""
    peft = _peft()
    rm.model = peft.prepare_model_for_kbit_training(rm.model, use_gradient_checkpointing=False)
    getattr(rm.model, head_name(rm.model)).float()


class TrainableWeights:
    """What a quantized (QLoRA) run's checkpoints hold, in ``state_dict`` / ``load_state_dict`` form: the trainable
    parameters only (the LoRA matrices and the head). The frozen quantized weights are not saved: a resumed run
    rebuilds them from the base exactly as the run did when it started (bitsandbytes' quantization is deterministic),
    and their packed form (with its quantization state) does not load back into a freshly quantized model."""

    def __init__(self, model):
        self.model = model

    def state_dict(self) -> dict:
        return {n: p.detach() for n, p in self.model.named_parameters() if p.requires_grad}

    def load_state_dict(self, state: dict) -> None:
        import torch  # lazy: lora is imported by the loader's light paths too

        own = dict((n, p) for n, p in self.model.named_parameters() if p.requires_grad)
        if set(state) != set(own):
            odd = sorted(set(state) ^ set(own))
            raise KeyError(f"the checkpoint's trainable tensors are not this model's (e.g. {odd[0]})")
        with torch.no_grad():
            for name, value in state.items():
                if own[name].shape != value.shape:
                    raise ValueError(
                        f"{name}: shape {tuple(value.shape)} in the checkpoint, {tuple(own[name].shape)} here"
                    )
                own[name].copy_(value)


def apply_lora(
    rm,
    *,
    r: int,
    alpha: float,
    dropout: float = 0.0,
    target_modules: list[str] | None = None,
    gradient_checkpointing: bool = False,
) -> None:
    """Wrap ``rm.model`` with LoRA adapters in place; report trainable parameters."""
    peft = _peft()
    if r < 1:
        raise RewardlabError(f"lora_r must be positive, not {r}")
    base = rm.model
    if (
        rm.spec.pooling == "last_token"
        and rm.spec.pad_token == "<|pad|>"
        and "<|pad|>" in rm.tokenizer.added_tokens_encoder
    ):
        raise RewardlabError(
            "LoRA with a pad token added to the vocabulary is not supported (its new embedding row "
            "would not be saved with the adapter); train without --lora-r"
        )
    head = head_name(base)
    check_target_modules(base, target_modules)
    config = peft.LoraConfig(
        task_type=peft.TaskType.SEQ_CLS,
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(target_modules) if target_modules else "all-linear",
        modules_to_save=[head],
    )
    rm.model = peft.get_peft_model(base, config)
    if gradient_checkpointing:
        rm.model.enable_input_require_grads()


def load_adapter_model(path: str | Path, spec, tokenizer, torch_dtype):
    """Rebuild a saved LoRA reward model: its base backbone with a one-output head, then the adapter."""
    peft = _peft()
    path = Path(path)
    acfg = json.loads((path / ADAPTER_CONFIG).read_text())
    base = acfg.get("base_model_name_or_path")
    if not base or not Path(base).exists():
        base = resolve_backbone(spec.backbone)
    config = AutoConfig.from_pretrained(base)
    config.num_labels = 1
    config.pad_token_id = spec.pad_token_id
    model = AutoModelForSequenceClassification.from_pretrained(
        base, config=config, dtype=torch_dtype, **pretrained_kwargs()
    )
    if model.get_input_embeddings().weight.shape[0] < len(tokenizer):
        raise ModelContractError(f"{path}: the tokenizer has {len(tokenizer)} tokens, the base {base} fewer")
    model.config.pad_token_id = spec.pad_token_id
    return peft.PeftModel.from_pretrained(model, str(path), is_trainable=False)
