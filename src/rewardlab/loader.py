"""The one model-loading entry point for score, eval, serve, normalize, probe and inspect.

A directory with ``rewardlab.json`` goes through its checked contract (:meth:`RewardModel.load`, unchanged); one
whose ``rewardlab.json`` has a ``multiobjective`` section (K attribute outputs, or a composed Llama 2 pair of
models) becomes a :class:`rewardlab.multiobjective.serving.MultiObjectiveScorer`, which scores with its recorded
scaliser through the same interface (``score``, ``normalize``, ``score_comparisons``; ``score_rows`` adds the
per-attribute rewards and gate weights);
``--ref-model``/``--ref-free`` make a DPO policy's implicit reward (:mod:`rewardlab.implicit`); anything else
is a foreign reward model whose contract is inferred, printed and stored (:mod:`rewardlab.foreign`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from rewardlab.contract_options import ContractOptions, contract_options
from rewardlab.device import DeviceOptions, placed, resolve
from rewardlab.errors import ModelContractError
from rewardlab.foreign import infer_contract, load_foreign
from rewardlab.implicit import implicit_contract, load_implicit
from rewardlab.integrity import parse_rewardlab_json
from rewardlab.model import SPEC_FILE, RewardModel, ScoringSpec
from rewardlab.multiobjective.composed import COMPOSED_KIND, ComposedLlama2Scorer
from rewardlab.multiobjective.serving import MultiObjectiveScorer


def announce(text: str) -> None:
    print(text, file=sys.stderr)


def is_rewardlab_dir(path: str | Path) -> bool:
    return (Path(path) / SPEC_FILE).is_file()


def _spec_json(path: str | Path) -> dict:
    """The JSON object of ``path``'s ``rewardlab.json`` (a malformed one: an error naming the file)."""
    return parse_rewardlab_json(path)


def load_reward_model(
    path: str,
    opts: ContractOptions | None = None,
    *,
    torch_dtype=torch.float32,
    say: Callable[[str], None] | None = announce,
    packing: bool = False,
    devices: DeviceOptions | None = None,
    **load_kwargs,
):
    """The one model-loading entry point: a rewardlab directory through its checked contract
    (:meth:`RewardModel.load`, ``load_kwargs`` passed on), a DPO policy with ``--ref-model``/``--ref-free``
    (:mod:`rewardlab.implicit`), else a foreign reward model; the inferred contract is told to ``say``.

    ``packing`` (the ``--packing`` load option) is decided here, once: a :class:`RewardModel` is built with it
    (its ``score()`` then packs unless the caller says otherwise; architectures the packed forward does not
    cover score padded), and the scorers that cannot pack (multi-objective, composed, implicit, foreign
    models) refuse it with an error naming ``--packing`` and the model.

    ``devices`` (``--device``, ``--dtype``, ``--attn-implementation``, ``--quantize``; :mod:`rewardlab.device`):
    checked and resolved before any weights load, the choice told to ``say``, every ``from_pretrained`` of the
    scorer run under it (the weights are created on the device in the dtype), and recorded as the scorer's
    ``placement`` (eval's provenance, serve's ``/info``). None: the CPU in ``torch_dtype``, as before."""
    placement = resolve(devices, path) if devices is not None else None
    if placement is None:
        return _load(path, opts, torch_dtype, say, packing, load_kwargs)
    if say is not None:
        say(f"rewardlab: {placement.line()}")
    with placed(placement):
        rm = _load(path, opts, placement.torch_dtype, say, packing, load_kwargs)
    if placement.quantize is None and callable(getattr(rm, "to", None)):  # parts built outside from_pretrained
        rm.to(placement.device)  # (a gate, a value head) follow; quantized weights cannot be moved, and are placed
    rm.placement = placement.describe()
    return rm


def _load(path: str, opts, torch_dtype, say, packing: bool, load_kwargs: dict):
    opts = opts or ContractOptions()
    if opts.ref_model is not None or opts.ref_free:
        rm = load_implicit(path, opts, torch_dtype=torch_dtype, packing=packing)
    elif is_rewardlab_dir(path):
        given = {k: v for k, v in opts.given().items()}
        if given:
            flags = ", ".join("--" + k.replace("_", "-") for k in given)
            raise ModelContractError(
                f"{path} is a rewardlab model: its contract is fixed by {SPEC_FILE} and checked "
                f"on load; {flags} appl{'y' if len(given) > 1 else 'ies'} only to models without it"
            )
        spec = _spec_json(path)
        if spec.get("kind") == COMPOSED_KIND:  # two reward models under the Llama 2 rule
            return ComposedLlama2Scorer.load(path, torch_dtype=torch_dtype, packing=packing, **load_kwargs)
        if spec.get("kind") == "verifier":  # an ORM / PRM (rewardlab.verifiers): per-step scores + aggregate
            from rewardlab.verifiers.model import VerifierModel  # lazy: the verifier package only when used

            return VerifierModel.load(path, torch_dtype=torch_dtype, **load_kwargs)
        if spec.get("multiobjective"):  # K attribute outputs, scored by the recorded scaliser
            return MultiObjectiveScorer.load(path, torch_dtype=torch_dtype, packing=packing, **load_kwargs)
        return RewardModel.load(path, torch_dtype=torch_dtype, packing=packing, **load_kwargs)
    else:
        from rewardlab.verifiers.model import (
            VerifierModel,
            is_plain_token_classifier,
        )  # lazy: the verifier package only when used

        if is_plain_token_classifier(path):  # a token-classification PRM trained elsewhere (TRL's PRMTrainer)
            vm = VerifierModel.load_plain(path)
            if say is not None:
                say(
                    f"{path}: a token-classification PRM without rewardlab.json: {vm.spec.head} head, marker "
                    f"{vm.spec.fmt.marker!r} (checked per solution), aggregation {vm.spec.aggregation}"
                )
            return vm
        rm = load_foreign(path, opts, torch_dtype=torch_dtype, packing=packing)
    if say is not None:
        say(rm.contract.format())
    return rm


# ---- rewardlab inspect ---------------------------------------------------------------------------------
@dataclass
class InspectConfig(ContractOptions):
    model: str = ""  # a model directory or hub id (rewardlab-trained or not)


def run_inspect(cfg: InspectConfig) -> str:
    """The contract a model gets and why (foreign models: from config and tokenizer, no weights loaded)."""
    if not cfg.model:
        raise ModelContractError("give the model: rewardlab inspect MODEL (or --model MODEL)")
    opts = contract_options(cfg)
    if opts.ref_model is not None or opts.ref_free:
        return implicit_contract(cfg.model, opts)[2].format()
    if is_rewardlab_dir(cfg.model) and _spec_json(cfg.model).get("kind") == COMPOSED_KIND:
        d = _spec_json(cfg.model)
        lines = [
            f"scoring contract for {cfg.model}: a composed Llama 2 model ({SPEC_FILE}); each member is "
            "scored with its own contract"
        ]
        for name in ("safety", "helpfulness"):
            m = d.get(name) or {}
            lines.append(f"  {name:<19} {m.get('path')!r} (attribute {m.get('attribute')!r}, {m.get('squash')})")
        lines.append(f"  {'scaliser':<19} {d.get('scaliser')!r}")
        return "\n".join(lines)
    if is_rewardlab_dir(cfg.model):
        spec = ScoringSpec.from_json(_spec_json(cfg.model), str(Path(cfg.model) / SPEC_FILE))
        lines = [f"scoring contract for {cfg.model}: rewardlab model, fixed by its {SPEC_FILE} (checked on load)"]
        for name in (
            "template",
            "pooling",
            "add_special_tokens",
            "pad_token",
            "pad_token_id",
            "padding_side",
            "max_length",
            "truncation",
            "normalization",
        ):
            lines.append(f"  {name:<19} {getattr(spec, name)!r}")
        return "\n".join(lines)
    return infer_contract(cfg.model, opts)[3].format()
