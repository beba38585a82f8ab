"""The registry of scorer kinds: which class loads a model, keyed by what its ``rewardlab.json`` says.

:func:`kind_of` reads the key — the ``kind`` field of ``rewardlab.json``; without one, ``multiobjective`` when the
file has a ``multiobjective`` section, else ``reward-model``; ``dpo-implicit`` when ``--ref-model``/``--ref-free``
is given; ``foreign`` when there is no ``rewardlab.json``; ``judge`` for a ``judge:SPEC`` model — and
:data:`KINDS` names the class. The table holds dotted names, imported when a kind is first used, so this module
(and :mod:`rewardlab.scoring.loader`, which consults it) imports no kind: the loader sits below the kinds it lists.

A new kind = its module (a :class:`~rewardlab.core.scorer.Scorer` subclass with ``open`` and ``inspect``)
+ one :class:`Kind` entry here (+ the ``kind`` value its training writes into ``rewardlab.json``).
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path

from rewardlab.core.contract_options import ContractOptions
from rewardlab.core.errors import ModelContractError
from rewardlab.core.integrity import parse_rewardlab_json

SPEC_FILE = (
    "rewardlab.json"  # the same name as rewardlab.models.reward_model.SPEC_FILE (checked by tests/test_scoring.py)
)
JUDGE_PREFIX = "judge:"  # `--model judge:SPEC` / eval's `--judge SPEC`: an LLM judge (rewardlab.judges.run)


@dataclass(frozen=True)
class Kind:
    """One scorer kind: its registry name, where its class lives, and what it is."""

    name: str
    target: str  # "module:Class", a Scorer subclass with open(path, request) and inspect(path, options)
    about: str  # one line for docs and errors
    fixed_contract: bool = True  # rewardlab.json fixes how it scores: the contract flags (--template, ...) are refused

    def scorer_class(self) -> type:
        """The class (a Scorer subclass, or an opener such as the judges') that opens this kind."""
        module, _, attr = self.target.partition(":")
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("reward-model", "rewardlab.models.reward_model:RewardModel", "a rewardlab-trained scalar reward model"),
        Kind(
            "multiobjective",
            "rewardlab.multiobjective.serving:MultiObjectiveScorer",
            "K attribute outputs scored by the recorded scaliser (fixed weights, Llama 2 rule or a gate)",
        ),
        Kind(
            "llama2-composed",
            "rewardlab.multiobjective.composed:ComposedLlama2Scorer",
            "two reward models (safety, helpfulness) under the Llama 2 rule",
        ),
        Kind(
            "foreign",
            "rewardlab.models.foreign:ForeignRewardModel",
            "a reward model trained elsewhere; its contract is inferred, printed and stored",
            fixed_contract=False,
        ),
        Kind(
            "dpo-implicit",
            "rewardlab.models.implicit:ImplicitRewardModel",
            "a DPO policy's implicit reward (--ref-model REF or --ref-free)",
            fixed_contract=False,
        ),
        Kind("judge", "rewardlab.judges.run:JudgeKind", "an LLM judge (judge:SPEC)", fixed_contract=False),
        Kind(
            "verifier",
            "rewardlab.verifiers.model:VerifierModel",
            "an outcome or process reward model (ORM / PRM): per-step scores and a named aggregation",
        ),
        Kind(
            "token-classification-prm",
            "rewardlab.verifiers.model:PlainTokenClassificationPRM",
            "a token-classification PRM trained elsewhere (e.g. TRL's PRMTrainer), no rewardlab.json",
            fixed_contract=False,
        ),
    )
}


def read_spec(path: str | Path) -> dict | None:
    """``rewardlab.json`` of a model directory as JSON, or None when there is none."""
    if not (Path(path) / SPEC_FILE).is_file():
        return None
    return parse_rewardlab_json(path)  # a malformed one: an error naming the file (rewardlab.core.integrity)


def kind_of(path: str, options: ContractOptions | None = None) -> str:
    """The registry key of the model at ``path`` (see the module docstring); an unknown recorded kind is an error."""
    options = options or ContractOptions()
    if path.startswith(JUDGE_PREFIX):
        return "judge"
    if options.ref_model is not None or options.ref_free:
        return "dpo-implicit"
    spec = read_spec(path)
    if spec is None:
        return "token-classification-prm" if _token_classifier(path) else "foreign"
    name = spec.get("kind") or ("multiobjective" if spec.get("multiobjective") else "reward-model")
    if name not in KINDS:
        raise ModelContractError(
            f"{Path(path) / SPEC_FILE}: kind {name!r} is not a scorer kind this rewardlab knows ({', '.join(KINDS)})"
        )
    return name


def _token_classifier(path: str) -> bool:
    """A local directory whose config.json names a ``*ForTokenClassification`` architecture (read as JSON)."""
    try:
        archs = json.loads((Path(path) / "config.json").read_text()).get("architectures") or []
    except (OSError, ValueError, AttributeError):
        return False
    return any(isinstance(a, str) and a.endswith("ForTokenClassification") for a in archs)


def get_kind(name: str) -> Kind:
    if name not in KINDS:
        raise ModelContractError(f"unknown scorer kind {name!r} (known: {', '.join(KINDS)})")
    return KINDS[name]
