"""The files that decide how text becomes a score are hashed when a model is saved and checked when it loads.

``rewardlab.json`` (``file_hashes``) records the sha256 of every such file in the model directory: the
tokenizer files, the chat template, ``config.json``, the weights (and a LoRA adapter's). Loading recomputes
them and refuses a directory where one is missing, changed or added, naming the file: a deleted
``tokenizer.json`` would otherwise load a slow tokenizer that maps every word to ``[UNK]``, and an edited one
silently change every score. ``--trust-modified`` loads it anyway; the mismatch is then reported (stderr and
the report's provenance), never silent. ``rewardlab.json`` itself is not hashed: its scoring fields are
checked against the tokenizer and config at load (:meth:`rewardlab.model.RewardModel.load`) and its values
against the trainer's ranges (:func:`check_spec_values`).
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from rewardlab.bounds import Positive
from rewardlab.errors import ModelContractError
from rewardlab.settings import Sourced, validate

# the files of a model directory that take part in scoring (fnmatch patterns, top level only)
SCORING_FILES = (
    "config.json",
    "tokenizer*.json",
    "tokenizer.model",
    "*.model",
    "vocab.*",
    "merges.txt",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template*",
    "*.safetensors",
    "*.safetensors.index.json",
    "adapter_config.json",
    "*.bin",
    "*.tiktoken",
    "head.*",
)


def scoring_files(path: str | os.PathLike) -> list[str]:
    path = Path(path)
    return sorted(
        p.name for p in path.iterdir() if p.is_file() and any(fnmatch.fnmatch(p.name, pat) for pat in SCORING_FILES)
    )


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def file_hashes(path: str | os.PathLike) -> dict[str, str]:
    """``{file name: sha256}`` of the scoring files in model directory ``path``."""
    path = Path(path)
    return {name: sha256_file(path / name) for name in scoring_files(path)}


def modified_files(path: str | os.PathLike, recorded: dict[str, str]) -> list[str]:
    """One line per scoring file that is missing, changed or not recorded; empty when the directory is intact."""
    path = Path(path)
    present = set(scoring_files(path))
    out = []
    for name, digest in sorted(recorded.items()):
        if name not in present:
            out.append(f"{name} is missing")
        elif sha256_file(path / name) != digest:
            out.append(f"{name} was modified (sha256 differs from rewardlab.json)")
    out += [f"{name} was added (not recorded in rewardlab.json)" for name in sorted(present - set(recorded))]
    return out


def verify_model_dir(
    path: str | os.PathLike, recorded: dict[str, str] | None, *, trust_modified: bool = False, warn=None
) -> list[str]:
    """Check ``path`` against ``recorded`` (None: a model saved before hashes were recorded, not checked).

    Raises :class:`ModelContractError` naming every mismatch, unless ``trust_modified``: then the mismatches
    are handed to ``warn`` and returned, for the caller to record."""
    if recorded is None:
        return []
    problems = modified_files(path, recorded)
    if problems and not trust_modified:
        raise ModelContractError(
            f"{path}: the model directory does not match rewardlab.json: "
            + "; ".join(problems)
            + " (pass --trust-modified to load it anyway; the reports will say so)"
        )
    if problems and warn is not None:
        warn(
            f"rewardlab: warning: {path} was modified and is loaded because of --trust-modified: " + "; ".join(problems)
        )
    return problems


@dataclass
class SpecValues:
    """The rewardlab.json values that the trainer takes as options, with the trainer's ranges and messages."""

    max_length: Positive
    truncation: str
    padding_side: str | None
    pooling: str

    def __post_init__(self):
        if self.truncation not in ("prompt_left", "right"):  # as TrainConfig
            raise ModelContractError(f"truncation must be prompt_left or right, not {self.truncation!r}")
        if self.padding_side not in ("left", "right"):
            raise ModelContractError(f"padding_side must be left or right, not {self.padding_side!r}")
        if self.pooling == "cls" and self.padding_side != "right":
            raise ModelContractError("padding_side: encoders read [CLS] at position 0 and must be right-padded")


def check_spec_values(spec, source: str) -> None:
    """Refuse a rewardlab.json value the trainer would refuse, naming ``source: key`` (e.g. an edited
    ``max_length: 0`` or ``truncation: "middle"``)."""
    values = {k: getattr(spec, k) for k in ("max_length", "truncation", "padding_side", "pooling")}
    validate(SpecValues, Sourced(values, {k: f"{source}: {k}" for k in values}))
