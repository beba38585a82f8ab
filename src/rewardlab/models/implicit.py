"""A DPO policy's implicit reward: ``--model POLICY --ref-model REF`` or ``--model POLICY --ref-free``.

DPO (Rafailov et al., 2023) trains a policy whose reward is ``β · log π(y|x) / π_ref(y|x)``; summed over the
response's tokens, ``r(x, y) = β Σ_t [log π(y_t | x, y_<t) − log π_ref(y_t | x, y_<t)]``. β scales every reward
alike, so it never changes a ranking: it is multiplied in and reported when given, else taken as 1.
``--ref-free`` uses ``Σ_t log π`` alone (reward-bench's ``rewardbench/dpo.py`` offers both; its ref-free
default length-normalises, rewardlab sums, as the issue's definition and the DPO reward do).

Text: the policy's chat template rendered as text (else the ``join`` layout of :mod:`rewardlab.models.foreign`);
the tokens counted are the response's and the template's tail after it (e.g. ``<|im_end|>\\n``). reward-bench
also counts the assistant header before the response; those tokens follow the same prompt for every response,
so they add the same amount to each and leave every comparison unchanged. Memory: per batch the policy runs,
its log-probabilities are kept, then the reference runs (one model's logits alive at a time).
"""

from __future__ import annotations

import dataclasses

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from rewardlab.core.contract_options import ContractOptions
from rewardlab.core.device import pretrained_kwargs
from rewardlab.core.errors import ModelContractError
from rewardlab.core.scorer import Capabilities, LoadRequest, ScoreOptions
from rewardlab.data.record import Prompt
from rewardlab.models.foreign import Contract, ForeignTextEncoder, _check_options
from rewardlab.models.reward_model import RewardModel, ScoringSpec, package_versions

PACKING_REFUSAL = "--packing does not cover the DPO implicit reward"  # load_implicit / score(packing=True)


class ImplicitTextEncoder(ForeignTextEncoder):
    """Token ids plus ``response_start``: the index of the first token whose log-probability counts."""

    def encode(self, prompt: Prompt, response: str) -> dict:
        prefix, resp, suffix = self.render(prompt, response)
        enc = self.tok(
            prefix + resp + suffix, add_special_tokens=self.spec.add_special_tokens, return_offsets_mapping=True
        )
        ids, offsets = list(enc["input_ids"]), enc["offset_mapping"]
        cut = len(prefix)
        start = next((i for i, (a, b) in enumerate(offsets) if (a, b) != (0, 0) and b > cut), len(ids))
        if start == 0:
            raise ModelContractError("no prompt token precedes the response: its first token has no log-probability")
        over = len(ids) - self.spec.max_length
        if over > 0:  # drop prompt tokens from the left (keeping leading specials), then the response's end
            head = 0
            while head < start and tuple(offsets[head]) == (0, 0):
                head += 1
            drop = min(over, max(start - head - 1, 0))
            ids, start = ids[:head] + ids[head + drop :], start - drop
            ids = ids[: self.spec.max_length]
        if start >= len(ids):
            raise ModelContractError(f"no response token fits in max_length {self.spec.max_length}")
        return {"input_ids": ids, "response_start": start}


def _sequence_logps(model, input_ids, attention_mask, response_mask) -> torch.Tensor:
    """``Σ_t log p(x_t | x_<t)`` over the tokens where ``response_mask`` is 1: ``(B,)`` from ``(B, T)``."""
    position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids).logits
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1).gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    del logits
    return (logp * response_mask[:, 1:].to(logp.dtype)).sum(-1)  # (B,)


class ImplicitRewardModel(RewardModel):
    """A DPO policy (and reference) behind the :class:`RewardModel` interface (score, collate, forward). It never
    packs (built with ``packing=False``): :func:`load_implicit` refuses the ``--packing`` load option."""

    def __init__(self, policy, ref, tokenizer, spec: ScoringSpec, contract: Contract, beta: float | None):
        super().__init__(policy, tokenizer, spec)
        self.ref, self.contract, self.beta = ref, contract, beta
        self.encoder = ImplicitTextEncoder(tokenizer, spec)

    kind = "dpo-implicit"
    capabilities = Capabilities(output="scalar", packing_refusal=PACKING_REFUSAL)

    @classmethod
    def open(cls, path: str, request: LoadRequest) -> "ImplicitRewardModel":
        kw = {} if request.torch_dtype is None else {"torch_dtype": request.torch_dtype}
        return load_implicit(path, request.options, packing=request.packing, **kw)

    @classmethod
    def inspect(cls, path: str, options: ContractOptions) -> str:
        return implicit_contract(path, options)[2].format()

    def collate(self, features: list[dict], padding_side: str | None = None) -> dict[str, torch.Tensor]:
        side = padding_side or self.spec.padding_side
        batch = super().collate([{"input_ids": f["input_ids"]} for f in features], side)
        width = batch["input_ids"].shape[1]
        mask = torch.zeros_like(batch["input_ids"])
        for i, f in enumerate(features):
            n = len(f["input_ids"])
            offset = width - n if side == "left" else 0
            mask[i, offset + f["response_start"] : offset + n] = 1
        batch["response_mask"] = mask
        return batch

    def forward(self, input_ids, attention_mask=None, response_mask=None, **unused) -> torch.Tensor:
        if response_mask is None:
            raise ModelContractError("the implicit reward needs the response mask from its own collate")
        reward = _sequence_logps(self.model, input_ids, attention_mask, response_mask)
        if self.ref is not None:
            reward = reward - _sequence_logps(self.ref, input_ids, attention_mask, response_mask)
        return reward * (self.beta if self.beta is not None else 1.0)

    def score_items(self, items: list, opts: ScoreOptions, unsafe=None) -> list[float]:
        return super().score_items(items, dataclasses.replace(opts, packing=False), unsafe)


def implicit_contract(path: str, opts: ContractOptions):
    """``(tokenizer, ScoringSpec, Contract)`` for a policy scored by its implicit reward."""
    _check_options(opts)
    if opts.ref_free and opts.ref_model is not None:
        raise ModelContractError("give --ref-model REF or --ref-free, not both")
    if opts.score_index is not None or opts.attribute is not None:
        raise ModelContractError("--score-index/--attribute apply to reward heads, not to a DPO implicit reward")
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=opts.trust_remote_code)
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=opts.trust_remote_code)
    except (OSError, ValueError) as e:
        raise ModelContractError(f"cannot load {path} as a transformers model: {str(e).splitlines()[0]}") from e
    c = Contract(model=str(path), kind="dpo-implicit")
    what = (
        "sum over response tokens of log pi - log pi_ref" if not opts.ref_free else "sum over response tokens of log pi"
    )
    c.set("reward", what, "given", "--ref-free" if opts.ref_free else f"--ref-model {opts.ref_model}")
    c.set("ref_model", opts.ref_model, "given", "reference policy" if opts.ref_model else "none (--ref-free)")
    c.set(
        "beta",
        opts.beta,
        "given" if opts.beta is not None else "inferred",
        "multiplies every reward; rankings unchanged"
        if opts.beta is not None
        else "not given: rewards are in nats (beta = 1)",
    )
    chat = getattr(tok, "chat_template", None) or None
    if opts.template is not None:
        template = c.set("template", opts.template, "given", "--template")
    elif chat:
        template = c.set("template", "chat", "inferred", "the policy's chat template, rendered as text")
    else:
        template = c.set("template", "join", "inferred", "no chat template: prompt, newline, response, EOS")
        c.warnings.append("no chat template: the text layout (join) is a guess")
    if template == "chat" and not chat:
        raise ModelContractError(f"--template chat: {path}'s tokenizer has no chat template")
    c.set(
        "tokens_counted",
        "response + template tail",
        "inferred",
        "from the response's first token to the end of the text",
    )
    add = opts.add_special_tokens if opts.add_special_tokens is not None else True
    c.set(
        "add_special_tokens",
        add,
        "given" if opts.add_special_tokens is not None else "inferred",
        "--add-special-tokens" if opts.add_special_tokens is not None else "the tokenizer's own BOS",
    )
    limits = [
        v
        for v in (
            tok.model_max_length,
            getattr(config, "max_position_embeddings", None),
            getattr(config, "n_positions", None),
        )
        if isinstance(v, int) and 0 < v < 10**7
    ]
    max_length = opts.max_length or (min(limits) if limits else 2048)
    c.set(
        "max_length",
        max_length,
        "given" if opts.max_length else "model",
        "--max-length" if opts.max_length else "the model's positions",
    )
    c.set("truncation", "prompt_left", "inferred", "prompt tokens dropped from the left first, then the response's end")
    side = opts.padding_side or "right"
    c.set("padding_side", side, "given" if opts.padding_side else "inferred", "positions come from the mask either way")
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    c.set("pad_token_id", pad_id, "inferred", "fills padding only (masked out of attention and of the sum)")
    spec = ScoringSpec(
        backbone=str(path),
        model_type=config.model_type,
        pooling="sequence_logprob",
        template=template,
        chat_template=chat if template == "chat" else None,
        add_special_tokens=bool(add),
        bos_token=tok.bos_token,
        eos_token=tok.eos_token,
        pad_token=tok.convert_ids_to_tokens(int(pad_id)),
        pad_token_id=int(pad_id),
        padding_side=side,
        max_length=int(max_length),
        truncation="prompt_left",
        versions=package_versions(),
    )
    return tok, spec, c


def load_implicit(
    path: str, opts: ContractOptions, torch_dtype=torch.float32, packing: bool = False
) -> ImplicitRewardModel:
    """Load the policy (and reference) as one scorer; the reference must share the policy's vocabulary.
    ``packing=True`` (the ``--packing`` load option) is refused before any weights load."""
    tok, spec, contract = implicit_contract(path, opts)
    if packing:
        raise ModelContractError(PACKING_REFUSAL)

    def lm(p):
        try:
            return AutoModelForCausalLM.from_pretrained(
                p, dtype=torch_dtype, trust_remote_code=opts.trust_remote_code, **pretrained_kwargs()
            ).eval()
        except (OSError, ValueError) as e:
            raise ModelContractError(f"cannot load {p} as a causal LM: {str(e).splitlines()[0]}") from e

    policy = lm(path)
    ref = None
    if opts.ref_model is not None:
        ref_tok = AutoTokenizer.from_pretrained(opts.ref_model, trust_remote_code=opts.trust_remote_code)
        if ref_tok.get_vocab() != tok.get_vocab():
            raise ModelContractError(
                f"--ref-model {opts.ref_model} has another vocabulary than {path}: the log-ratio needs the same tokens"
            )
        ref = lm(opts.ref_model)
    return ImplicitRewardModel(policy, ref, tok, spec, contract, opts.beta)
