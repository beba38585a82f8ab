"""Options that decide how a model *without* ``rewardlab.json`` turns text into a score (no heavy imports here).

Every command that loads a model (``score``, ``eval``, ``serve``, ``normalize``, ``inspect``) takes these as
flags through its config class, which inherits :class:`ContractOptions`. ``None`` means "infer it from the
model" (:mod:`rewardlab.models.foreign`); a rewardlab-trained model's contract is fixed by its ``rewardlab.json`` and
refuses them (except ``padding_side``, which never changes a score there).
"""

from __future__ import annotations

from dataclasses import dataclass

from rewardlab.core.bounds import Bounded, NonNegative, Positive

TEMPLATES = ("chat", "plain", "join", "pair")
TRUNCATIONS = ("left", "right", "prompt_left")


@dataclass
class ContractOptions(Bounded):
    # models without rewardlab.json (foreign models, rewardlab.models.foreign): None = inferred from the model
    template: str | None = None  # chat | plain | join | pair, or a Jinja chat-template file (foreign models)
    max_length: Positive | None = (
        None  # tokens per text (foreign models; default: 2048 as reward-bench, capped by the model's limit)
    )
    truncation: str | None = (
        None  # left | right | prompt_left (foreign models; default: left, as reward-bench's run_rm.py)
    )
    padding_side: str | None = None  # right | left
    add_special_tokens: bool | None = None  # let the tokenizer add its BOS/CLS (foreign models; default: inferred)
    score_index: NonNegative | None = None  # which output of a multi-output head is the reward (foreign models)
    attribute: str | None = None  # the reward is this named output (config id2label / custom-code rewards)
    trust_remote_code: bool = False  # run a model's own modeling code (custom-code models, e.g. ArmoRM-style)
    # DPO implicit reward (rewardlab.models.implicit): --model POLICY --ref-model REF, or --ref-free
    ref_model: str | None = None  # reference policy: reward = sum over response tokens of log pi - log pi_ref
    ref_free: bool = False  # reward = sum of log pi over the response tokens (no reference model)
    beta: float | None = None  # DPO beta, reported (and multiplied in) when given; it never changes a ranking

    # the options that would change a rewardlab model's scores (refused for those)
    CONTRACT_FIELDS = (
        "template",
        "max_length",
        "truncation",
        "add_special_tokens",
        "score_index",
        "attribute",
        "ref_model",
        "beta",
    )

    def given(self) -> dict:
        """The contract options set by the user (not None / not default)."""
        out = {name: getattr(self, name) for name in self.CONTRACT_FIELDS if getattr(self, name, None) is not None}
        if getattr(self, "ref_free", False):
            out["ref_free"] = True
        return out


def contract_options(cfg) -> ContractOptions:
    """The :class:`ContractOptions` part of any command config (missing fields take their defaults)."""
    names = ContractOptions.__dataclass_fields__
    return ContractOptions(**{n: getattr(cfg, n) for n in names if hasattr(cfg, n)})
