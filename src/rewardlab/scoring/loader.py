"""The one model-loading entry point for score, eval, serve, normalize, probe and inspect.

:func:`rewardlab.core.kinds.kind_of` reads which kind a model is (its ``rewardlab.json`` ``kind``; a
``multiobjective`` section; ``--ref-model``/``--ref-free`` for a DPO policy's implicit reward; no
``rewardlab.json``: a foreign reward model whose contract is inferred, printed and stored) and
:data:`rewardlab.core.kinds.KINDS` names the class that opens it. Every kind answers the one interface
(:class:`rewardlab.core.scorer.Scorer`), so no caller special-cases a kind. This module imports no kind.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import torch

from rewardlab.core import progress
from rewardlab.core.contract_options import ContractOptions
from rewardlab.core.device import DeviceOptions, placed, resolve
from rewardlab.core.errors import ModelContractError
from rewardlab.core.kinds import JUDGE_PREFIX, SPEC_FILE, get_kind, kind_of
from rewardlab.core.scorer import LoadRequest, Scorer


def announce(text: str) -> None:
    print(text, file=sys.stderr)


def is_rewardlab_dir(path: str | Path) -> bool:
    return (Path(path) / SPEC_FILE).is_file()


def load_reward_model(
    path: str,
    opts: ContractOptions | None = None,
    *,
    torch_dtype=torch.float32,
    say: Callable[[str], None] | None = announce,
    packing: bool = False,
    trust_modified: bool = False,
    expect: dict | None = None,
    devices: DeviceOptions | None = None,
) -> Scorer:
    """The one model-loading entry point: the kind :func:`~rewardlab.core.kinds.kind_of` names opens
    ``path`` (a rewardlab directory through its checked contract; a DPO policy with ``--ref-model``/
    ``--ref-free``; else a foreign reward model, whose inferred contract is told to ``say``).

    ``packing`` (the ``--packing`` load option) is decided here, once: a kind that packs is built with it (its
    ``score()`` then packs unless the caller says otherwise; architectures the packed forward does not cover
    score padded), and the kinds that cannot pack (``Capabilities.packing_refusal``) refuse it with an error
    naming ``--packing`` and the model, before any weights load.

    ``devices`` (``--device``, ``--dtype``, ``--attn-implementation``, ``--quantize``; :mod:`rewardlab.core.device`):
    checked and resolved before any weights load, the choice told to ``say``, every ``from_pretrained`` of the
    scorer run under it (the weights are created on the device in the dtype), and recorded as the scorer's
    ``placement`` (eval's provenance, serve's ``/info``). None: the CPU in ``torch_dtype``, as before."""
    placement = resolve(devices, path) if devices is not None else None
    if placement is None:
        return _load(path, opts, torch_dtype, say, packing, trust_modified, expect)
    if say is not None:
        say(f"rewardlab: {placement.line()}")
    with placed(placement):
        rm = _load(path, opts, placement.torch_dtype, say, packing, trust_modified, expect)
    if placement.quantize is None and isinstance(rm, torch.nn.Module):  # parts built outside from_pretrained
        rm.to(placement.device)  # (a gate, a value head) follow; quantized weights cannot be moved, and are placed
    rm.placement = placement.describe()
    return rm


def _load(path: str, opts, torch_dtype, say, packing: bool, trust_modified: bool, expect: dict | None) -> Scorer:
    opts = opts or ContractOptions()
    kind = get_kind(kind_of(path, opts))
    if kind.fixed_contract:
        given = opts.given()
        if given:
            flags = ", ".join("--" + k.replace("_", "-") for k in given)
            raise ModelContractError(
                f"{path} is a rewardlab model: its contract is fixed by {SPEC_FILE} and checked "
                f"on load; {flags} appl{'y' if len(given) > 1 else 'ies'} only to models without it"
            )
    request = LoadRequest(opts, torch_dtype, packing, trust_modified, expect)
    rm = kind.scorer_class().open(path, request)
    if say is not None and rm.contract is not None:
        say(rm.contract.format())
    return rm


def load_scorer(
    path: str,
    options: ContractOptions | None = None,
    trust_modified: bool = False,
    packing: bool = False,
    devices: DeviceOptions | None = None,
) -> Scorer:
    """A rewardlab model directory, any other reward model, or ``judge:SPEC`` for an LLM judge: all through
    :func:`load_reward_model` (the registry of kinds, :mod:`rewardlab.core.kinds`).

    ``packing`` (``--packing``) is a load option of reward models (the loader builds them with it, or refuses it
    for those that cannot pack); an LLM judge reads text, not padded token batches, and is loaded as it is."""
    if path.startswith(JUDGE_PREFIX):
        return load_reward_model(path, say=None)
    progress.status(f"loading the model {path}")
    # only rewardlab dirs are hashed
    return load_reward_model(path, options, trust_modified=trust_modified, packing=packing, devices=devices)


def model_provenance(path: str | None, scorer: Scorer) -> dict:
    """Where one result column's scores came from: the model path and what its ``rewardlab.json`` says
    (backbone, model type, training-data fingerprint, package versions), or the scorer's class."""
    info: dict[str, Any] = {"path": str(path) if path is not None else None, "kind": type(scorer).__name__}
    d = scorer.spec_json()
    if d is not None:
        info.update(
            {
                "backbone": d.get("backbone"),
                "model_type": d.get("model_type"),
                "data_fingerprint": d.get("data_fingerprint"),
                "pooling": d.get("pooling"),
                "template": d.get("template"),
                "max_length": d.get("max_length"),
                "versions": d.get("versions"),
            }
        )
    if scorer.placement:  # --device / --dtype as resolved (rewardlab.core.device)
        info["placement"] = dict(scorer.placement)
    if scorer.modified_files:  # loaded with --trust-modified despite these mismatches
        info["trust_modified"] = list(scorer.modified_files)
    described = scorer.describe()
    if described:
        info["describe"] = described
    return info
