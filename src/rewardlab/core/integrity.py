"""The files that decide how text becomes a score are hashed when a model is saved and checked when it loads.

``rewardlab.json`` (``file_hashes``) records the sha256 of every such file in the model directory: the
tokenizer files, the chat template, ``config.json``, the weights (and a LoRA adapter's). Loading recomputes
them and refuses a directory where one is missing, changed or added, naming the file: a deleted
``tokenizer.json`` would otherwise load a slow tokenizer that maps every word to ``[UNK]``, and an edited one
silently change every score. ``--trust-modified`` loads it anyway; the mismatch is then reported (stderr and
the report's provenance), never silent.

``rewardlab.json`` itself is the rest of the contract (template, max_length, truncation, the scaliser weights, the
gate's temperature, the debiasing transform, a composition's threshold and roles, the normalisation statistics,
``file_hashes`` themselves): every writer seals it (:func:`seal`: ``contract_hashes``, the sha256 of every other
top-level field) and every reader checks the seal (:func:`read_rewardlab_json`), naming each field that was
modified, removed or added. A file without the seal (``file_hashes`` and ``contract_hashes`` both deleted, or
written by hand) is refused the same way; ``--trust-modified`` loads it anyway, warned and recorded. Its values are
then checked against the trainer's ranges (:func:`check_spec_values`) and, being JSON, its shape against the typed
sections (:mod:`rewardlab.core.specfields`): a malformed file is an error naming the field, never a traceback.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from rewardlab.core.bounds import Positive
from rewardlab.core.errors import ModelContractError
from rewardlab.core.settings import Sourced, validate
from rewardlab.core.specfields import kind_of

CONTRACT_FILE = "rewardlab.json"
SEAL = "contract_hashes"  # {top-level field: sha256 of its canonical JSON}, every field but itself

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


# ---- rewardlab.json: the sealed contract --------------------------------------------------------------------
def _canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _digest(value) -> str:
    return hashlib.sha256(_canonical(value)).hexdigest()


def seal(spec: dict) -> dict:
    """``spec`` (JSON values only) with :data:`SEAL` recomputed over every other top-level field."""
    body = {k: v for k, v in spec.items() if k != SEAL}
    return {**body, SEAL: {k: _digest(v) for k, v in sorted(body.items())}}


def seal_problems(spec: dict) -> list[str]:
    """One line per field that differs from the seal (modified, removed, added); the seal itself missing or
    malformed is one line. Empty when ``spec`` is as rewardlab wrote it."""
    recorded = spec.get(SEAL)
    if recorded is None:
        return [
            f"it carries no {SEAL} (the seal rewardlab writes with every model): edited, written by hand or by an "
            "older rewardlab; its fields cannot be checked"
            + ("" if spec.get("file_hashes") is not None else ", and without file_hashes neither can its files")
        ]
    if not isinstance(recorded, dict) or not all(isinstance(v, str) for v in recorded.values()):
        return [f"{SEAL} is not an object of sha256 digests"]
    out = []
    for name, digest in sorted(recorded.items()):
        if name not in spec:
            out.append(f"field {name!r} was removed")
        else:
            try:
                same = _digest(spec[name]) == digest
            except ValueError:  # NaN/Infinity: never written by rewardlab
                same = False
            if not same:
                out.append(f"field {name!r} was modified")
    out += [f"field {name!r} was added" for name in sorted(set(spec) - set(recorded) - {SEAL})]
    return out


def parse_rewardlab_json(path: str | os.PathLike) -> dict:
    """The JSON object in model directory ``path``'s ``rewardlab.json``; :class:`ModelContractError` naming the file
    when it is missing, unreadable, not JSON or not an object (``[]``, ``null``)."""
    file = Path(path) / CONTRACT_FILE
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelContractError(f"{path} has no {CONTRACT_FILE}: not a rewardlab model directory") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ModelContractError(f"{file}: cannot read it ({getattr(e, 'strerror', None) or e})") from None
    try:
        spec = json.loads(text)
    except ValueError as e:
        raise ModelContractError(f"{file} is not valid JSON: {e}") from None
    if not isinstance(spec, dict):
        raise ModelContractError(f"{file}: the file must be a JSON object, got {kind_of(spec)}")
    return spec


def read_rewardlab_json(path: str | os.PathLike, *, trust_modified: bool = False, warn=None) -> tuple[dict, list[str]]:
    """``(spec, problems)``: the sealed contract of model directory ``path``, checked against its seal. A broken
    seal is a :class:`ModelContractError` naming every field, unless ``trust_modified`` (then ``warn`` is told and
    the problems are returned for the reports)."""
    spec = parse_rewardlab_json(path)
    problems = [f"{CONTRACT_FILE}: {p}" for p in seal_problems(spec)]
    if problems and not trust_modified:
        raise ModelContractError(
            f"{Path(path) / CONTRACT_FILE}: the scoring contract does not match its seal: "
            + "; ".join(p.split(": ", 1)[1] for p in problems)
            + " (pass --trust-modified to load it anyway; the reports will say so)"
        )
    if problems and warn is not None:
        warn(
            f"rewardlab: warning: {path} is loaded despite its {CONTRACT_FILE} because of --trust-modified: "
            + "; ".join(problems)
        )
    return {k: v for k, v in spec.items() if k != SEAL}, problems
