"""``rewardlab normalize``: reward statistics against a reference policy, stored with the model.

InstructGPT and Stiennon et al. (2020) shift the reward model so that the SFT (reference) policy's samples
score 0 on average. ``rewardlab normalize --model DIR --data samples.jsonl`` scores a file of that policy's
samples (rows ``{"prompt": text or messages, "response": text}``; a comparison file works too, every response
is scored) and stores their mean and standard deviation in ``DIR/rewardlab.json`` under ``normalization``,
replacing the held-out statistics the trainer wrote. The file is rewritten atomically (temporary file +
rename). ``rewardlab score --normalize``, ``RewardModel.score(normalize=True)`` and the server
(``normalize: true`` per request, or ``rewardlab serve --normalize``) then return ``(r - mean) / std``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rewardlab.core.atomic import atomic_write_text
from rewardlab.core.bounds import Positive
from rewardlab.core.contract_options import ContractOptions, contract_options
from rewardlab.core.device import DeviceOptions, device_options
from rewardlab.core.errors import RewardlabError
from rewardlab.core.integrity import read_rewardlab_json
from rewardlab.core.normstats import checked_normalization, measured
from rewardlab.core.outputs import claim_in_place
from rewardlab.core.ownership import owns_outputs
from rewardlab.data import load_comparisons
from rewardlab.data.formats import format_help
from rewardlab.data.singles import single_rows
from rewardlab.models.reward_model import SPEC_FILE, ScoringSpec, sealed_json
from rewardlab.multiobjective.composed import COMPOSED_KIND, ComposedSpec
from rewardlab.scoring.loader import is_rewardlab_dir, load_reward_model


@dataclass
class NormalizeConfig(ContractOptions, DeviceOptions):
    model: str = ""  # the rewardlab model directory whose rewardlab.json is updated
    data: str = ""  # policy samples: prompt/response rows (JSONL/JSON/Parquet/CSV), or comparisons
    format: str = "auto"  # auto | single (prompt/response rows) | a comparison format (every response counts)
    batch_size: Positive = 16  # texts per forward
    limit: Positive | None = None  # use only the first N rows
    # skip malformed rows instead of stopping at the first. Off: the statistics would leave rows out silently (eval's
    # default is on: its report counts what it skipped; docs/cli.md)
    skip_invalid: bool = False
    dry_run: bool = False  # print the statistics without writing them

    REQUIRED = (
        "model",
        "data",
    )  # options that must be given (rewardlab.commands.preflight checks them before anything loads)

    HELP = {"format": lambda: format_help(comparisons_only=False)}  # --help lists the formats, `single` too


def reward_stats(rewards: list[float], what: str = "the reference rewards") -> dict:
    """Mean, std and n of ``rewards``, refused when they cannot normalise (:func:`rewardlab.core.normstats.measured`)."""
    return measured(rewards, what)


def write_normalization(model_dir: str | Path, stats: dict) -> Path:
    """Replace ``normalization`` in ``model_dir/rewardlab.json``, keeping every other field; checked (the
    statistics and the file's seal), sealed again, atomic."""
    path = Path(model_dir) / SPEC_FILE
    if not path.exists():
        raise RewardlabError(f"{model_dir} has no {SPEC_FILE}: not a rewardlab model directory")
    checked_normalization(stats, "the statistics to write")
    spec, _ = read_rewardlab_json(model_dir)  # an edited file is refused, not sealed as if rewardlab wrote it
    spec["normalization"] = stats
    if spec.get("kind") == COMPOSED_KIND:
        ComposedSpec.from_json(spec, str(path))  # a composed Llama 2 directory: still a valid one
    else:
        ScoringSpec.from_json(spec, str(path))  # still a valid spec
    atomic_write_text(path, sealed_json(spec))
    return path


@owns_outputs
def run_normalize(cfg: NormalizeConfig) -> dict:
    if not cfg.model or not cfg.data:
        raise RewardlabError("--model and --data are required")
    if not cfg.dry_run and not is_rewardlab_dir(cfg.model):
        raise RewardlabError(
            f"{cfg.model} has no rewardlab.json to store statistics in: a model trained elsewhere "
            "gets them printed with --dry-run"
        )
    if not cfg.dry_run:  # the model directory is this command's output: writable, and written by it alone
        claim_in_place(cfg.model, flag="--model", command="rewardlab normalize")
    rm = load_reward_model(cfg.model, contract_options(cfg), devices=device_options(cfg))
    singles = single_rows(cfg.data, cfg.limit) if cfg.format in ("auto", "single") else None
    if singles is not None:
        items = [(r["prompt"], r["response"]) for r in singles]
    else:
        loaded = load_comparisons(cfg.data, format=cfg.format, skip_invalid=cfg.skip_invalid, limit=cfg.limit)
        items = [(c.prompt, resp) for c in loaded.records for resp in c.responses]
    rewards = rm.score(items, batch_size=cfg.batch_size)
    stats = {**reward_stats(rewards, f"--data {cfg.data}"), "source": f"reference-policy samples: {cfg.data}"}
    if not cfg.dry_run:
        write_normalization(cfg.model, stats)
    return stats
