"""``rewardlab compose``: write a composed Llama 2 model directory over two reward models
(:mod:`rewardlab.multiobjective.composed` describes the directory and how it scores)."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from rewardlab.core.atomic import atomic_write_bytes
from rewardlab.core.bounds import Bounded, Positive
from rewardlab.core.errors import RewardlabError
from rewardlab.core.outputs import claim_output_dir
from rewardlab.core.ownership import owns_outputs
from rewardlab.data.singles import single_rows
from rewardlab.models.reward_model import SPEC_FILE
from rewardlab.multiobjective.composed import (
    COMPOSED_KIND,
    NAMES,
    ComposedLlama2Scorer,
    ComposedSpec,
    sha256_of,
    write_composed_spec,
)
from rewardlab.multiobjective.scalarise import Llama2Rule


@dataclass
class ComposeConfig(Bounded):
    safety: str = ""  # the safety reward model directory (a rewardlab model)
    helpfulness: str = ""  # the helpfulness reward model directory (a rewardlab model)
    output_dir: str = ""  # where the composed rewardlab.json is written (no weights are copied)
    threshold: float = 0.15  # R = R_safety where R_safety < threshold (or the prompt is tagged unsafe)
    safety_attribute: str | None = None  # read this output of a K-output safety model (default: its scalar, sigmoid)
    helpfulness_attribute: str | None = None  # likewise for the helpfulness model
    reference_data: str | None = None  # prompt/response rows: whiten logit(R) with their mean/std
    batch_size: Positive = 16  # texts per forward while whitening
    overwrite: bool = False  # replace an existing OUT/rewardlab.json

    REQUIRED = (
        "safety",
        "helpfulness",
        "output_dir",
    )  # options that must be given (rewardlab.commands.preflight checks them before anything loads)


@owns_outputs
def run_compose(cfg: ComposeConfig) -> Path:
    if not (cfg.safety and cfg.helpfulness and cfg.output_dir):
        raise RewardlabError("give --safety DIR, --helpfulness DIR and --output-dir OUT")
    if not (math.isfinite(cfg.threshold) and 0 < cfg.threshold < 1):
        raise RewardlabError(f"--threshold must lie in (0, 1) (R is in (0, 1)), got {cfg.threshold}")
    out = Path(cfg.output_dir)
    if (out / SPEC_FILE).exists() and not cfg.overwrite:
        raise RewardlabError(f"{out / SPEC_FILE} exists; pass --overwrite to replace it")
    claim_output_dir(
        out,
        overwrite=True,  # only OUT/rewardlab.json is written; its existence is checked above
        inputs={"--safety": cfg.safety, "--helpfulness": cfg.helpfulness, "--reference-data": cfg.reference_data},
        may_hold_model=_holds_composed(out),  # a composition is replaced; any other model is refused
        command="rewardlab compose",
    )
    members = {}
    for name, path, attribute in (
        ("safety", cfg.safety, cfg.safety_attribute),
        ("helpfulness", cfg.helpfulness, cfg.helpfulness_attribute),
    ):
        where = Path(path)
        if not (where / SPEC_FILE).is_file():
            raise RewardlabError(f"--{name} {path}: not a rewardlab model directory (no {SPEC_FILE})")
        members[name] = {
            "path": os.path.relpath(where.resolve(), out.resolve()),
            "rewardlab_json_sha256": sha256_of(where / SPEC_FILE),
            "attribute": attribute,
            "squash": "none" if attribute else "sigmoid",
        }
    spec = ComposedSpec(
        members["safety"],
        members["helpfulness"],
        Llama2Rule(threshold=cfg.threshold, safety="safety", helpfulness="helpfulness").to_json(),
    )
    out.mkdir(parents=True, exist_ok=True)
    before = (out / SPEC_FILE).read_bytes() if (out / SPEC_FILE).is_file() else None
    try:
        write_composed_spec(out, spec.to_json())
        scorer = ComposedLlama2Scorer.load(out)  # the members load (and their attributes exist) before anything else
        if cfg.reference_data:
            rows = single_rows(cfg.reference_data)
            if not rows:
                raise RewardlabError(f"--reference-data {cfg.reference_data}: expected prompt/response rows")
            r = scorer.rewards([(x["prompt"], x["response"]) for x in rows], cfg.batch_size)
            rule = scorer.rule.with_whitening(r, list(NAMES), torch.tensor([x["unsafe"] for x in rows]))
            spec.scaliser = rule.to_json()
            write_composed_spec(out, spec.to_json())
    except BaseException:  # a failed compose leaves what was there before (or nothing)
        if before is None:
            (out / SPEC_FILE).unlink(missing_ok=True)
        else:
            atomic_write_bytes(out / SPEC_FILE, before)
        raise
    return out


def _holds_composed(out: Path) -> bool:
    try:
        return json.loads((out / SPEC_FILE).read_text()).get("kind") == COMPOSED_KIND
    except (OSError, ValueError, AttributeError):
        return False
