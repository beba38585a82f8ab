"""``rewardlab inspect``: the contract a model gets and why, from the kind that would open it
(:mod:`rewardlab.core.kinds`; a foreign model's contract is inferred from its config and tokenizer, no weights
loaded)."""

from __future__ import annotations

from dataclasses import dataclass

from rewardlab.core.contract_options import ContractOptions, contract_options
from rewardlab.core.errors import ModelContractError
from rewardlab.core.kinds import get_kind, kind_of


@dataclass
class InspectConfig(ContractOptions):
    model: str = ""  # a model directory or hub id (rewardlab-trained or not)


def run_inspect(cfg: InspectConfig) -> str:
    """The contract a model gets and why (foreign models: from config and tokenizer, no weights loaded)."""
    if not cfg.model:
        raise ModelContractError("give the model: rewardlab inspect MODEL (or --model MODEL)")
    opts = contract_options(cfg)
    return get_kind(kind_of(cfg.model, opts)).scorer_class().inspect(cfg.model, opts)
