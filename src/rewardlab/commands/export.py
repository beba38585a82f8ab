"""``rewardlab export``: write a model as a plain ``AutoModelForSequenceClassification`` directory.

For a LoRA model (a directory with ``adapter_config.json``), ``--merge`` folds the adapters into the backbone
weights (``merge_and_unload``) and keeps the trained head, so the result needs neither peft nor rewardlab: it
is a standard checkpoint (``num_labels=1``, ``pad_token_id`` set) plus the tokenizer and ``rewardlab.json``.
A full (non-LoRA) model is re-saved as it is. The export is written to a temporary directory and renamed
into place, then checked: plain transformers loads it and its scores on a few probe texts equal the source
model's (``max_abs_diff`` is printed; over ``--tolerance`` is an error).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification

from rewardlab.core.atomic import publish_dir
from rewardlab.core.bounds import Bounded, NonNegativeFloat
from rewardlab.core.errors import RewardlabError
from rewardlab.core.hub import check_can_push, push_to_hub
from rewardlab.core.outputs import claim_output_dir
from rewardlab.models.lora import is_peft
from rewardlab.models.reward_model import RewardModel, write_spec

PROBES = [
    ("What is 2 plus 3?", "It is 5."),
    ("Name a fruit.", "An apple."),
    ((("system", "Be brief."), ("user", "Say hi.")), "Hi!"),
    ("Tell me a joke.", "No."),
]


@dataclass
class ExportConfig(Bounded):
    model: str = ""  # a rewardlab model directory (LoRA adapter or full)
    output: str = ""  # where the plain transformers directory goes (must not exist, unless --overwrite)
    merge: bool = False  # fold LoRA adapters into the weights (required for a LoRA model)
    dtype: str = "float32"  # float32 | bfloat16 | float16 of the written weights
    overwrite: bool = False  # replace an existing --output directory
    tolerance: NonNegativeFloat = 1e-4  # largest allowed |score difference| between source and export on the probes
    # a hub repo OWNER/NAME: after the check, upload the export with a generated model card (README.md) through
    # huggingface_hub (needs a token; rewardlab.core.hub)
    push_to_hub: str | None = None
    private: bool = False  # with --push-to-hub: create the repo private

    REQUIRED = (
        "model",
        "output",
    )  # options that must be given (rewardlab.commands.preflight checks them before anything loads)


def _probe_items():
    out = []
    for p, r in PROBES:
        out.append((p if isinstance(p, str) else tuple({"role": a, "content": b} for a, b in p), r))
    return out


def run_export(cfg: ExportConfig) -> dict:
    if not cfg.model or not cfg.output:
        raise RewardlabError("--model and --output are required")
    dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if cfg.dtype not in dtypes:
        raise RewardlabError(f"dtype must be one of {sorted(dtypes)}, not {cfg.dtype!r}")
    check_can_push(cfg.push_to_hub)  # before any work: a repo id, a token, a hub not switched off
    out = Path(cfg.output)
    if out.exists() and not cfg.overwrite:
        raise RewardlabError(f"{out} exists: pass --overwrite or choose another --output")
    # the directory is replaced whole by a rename (publish_dir), so it is not locked: each export lands whole
    claim_output_dir(
        out, overwrite=cfg.overwrite, flag="--output", inputs={"--model": cfg.model}, may_hold_model=True, lock=False
    )
    rm = RewardModel.load(cfg.model)
    rm.eval()
    items = _probe_items()
    before = rm.score(items)
    lora = is_peft(rm.model)
    if lora and not cfg.merge:
        raise RewardlabError(f"{cfg.model} is a LoRA adapter: pass --merge to write a plain transformers directory")
    model = rm.model.merge_and_unload() if lora else rm.model
    model = model.to(dtypes[cfg.dtype])
    model.config.num_labels = 1
    model.config.pad_token_id = rm.spec.pad_token_id

    def fill(tmp: Path) -> None:
        model.save_pretrained(tmp, safe_serialization=True)
        rm.tokenizer.save_pretrained(tmp)
        write_spec(tmp, rm.spec.to_json())  # with the hashes of the exported files

    publish_dir(out, fill)

    # the check: plain transformers, fed rewardlab's ids, gives the source model's scores
    plain = AutoModelForSequenceClassification.from_pretrained(out, dtype=torch.float32).eval()
    after = []
    with torch.no_grad():
        for p, r in items:
            enc = {k: torch.tensor([v]) for k, v in rm.encoder.encode(p, r).items()}
            after.append(plain(**enc).logits[0, 0].item())
    diff = max(abs(a - b) for a, b in zip(before, after))
    tol = cfg.tolerance if cfg.dtype == "float32" else max(cfg.tolerance, 0.05)
    if diff > tol:
        raise RewardlabError(
            f"the export's scores differ from the source model's by {diff:.3g} (> {tol}); "
            f"{out} was written but should not be used"
        )
    info = {"output": str(out), "merged": lora, "max_abs_diff": diff, "probes": len(items)}
    if cfg.push_to_hub:  # the card reads the training run the source model sits in (runs/rm for runs/rm/model)
        info["url"] = push_to_hub(out, cfg.push_to_hub, run_dir=Path(cfg.model).parent, private=cfg.private)
    return info
