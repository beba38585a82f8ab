"""Reward models trained elsewhere: infer their scoring contract, say what was inferred, score as their authors do.

A *foreign* model is a local directory or hub id without ``rewardlab.json``: a transformers sequence
classifier (Skywork-Reward, a TRL ``RewardTrainer`` save, an encoder text-pair classifier), an OpenRLHF reward
model (a base model + ``value_head_prefix`` linear head, ``mean``/``std`` in ``config.json``), or a custom-code
model (``auto_map`` + ``--trust-remote-code``, e.g. ArmoRM's ``rewards``/``gating_output``/``score``).
:func:`rewardlab.scoring.loader.load_reward_model` is the one entry point: rewardlab-trained directories go to
:meth:`rewardlab.models.reward_model.RewardModel.load` (their checked contract) untouched.

How a foreign model's contract is inferred (each part can be overridden, see
:class:`rewardlab.core.contract_options.ContractOptions`; :class:`Contract` records the value, whether it was
inferred or given, and why):

* **text**: the tokenizer's chat template rendered as *text* over the prompt messages plus the response,
  then tokenized (as reward-bench's ``prepare_dialogue_from_tokenizer`` + its pipeline do); encoders get
  (prompt, response) as a text pair; a decoder without a chat template gets ``join``: prompt, a newline,
  the response and EOS (a guess, flagged).
* **special tokens**: the tokenizer adds its BOS/CLS, as reward-bench's pipeline does, except when the
  rendered text already starts with BOS (reward-bench then masks the duplicate; rewardlab does not add it).
* **where the reward is read**: by the model itself (transformers reads the last token that is not
  ``config.pad_token_id``); the pad token is the model's (``config.pad_token_id``, else the tokenizer's,
  else EOS as reward-bench sets it, flagged). OpenRLHF models: at the last attention-mask position, with
  position ids from the mask (``openrlhf/models/model.py`` ``_get_reward_model``).
* **length**: 2048 tokens, reward-bench's ``run_rm.py`` ``--max_length`` default, or the model's own limit
  where that is lower (tokenizer ``model_max_length``, config positions); the contract says which. Longer texts
  lose their *start* (``truncation="left"``), special tokens kept, as reward-bench's ``run_rm.py`` sets
  ``tokenizer.truncation_side = "left"`` before its pipeline (``RewardBenchPipeline`` for a model not in its
  table) tokenizes with ``truncation=True, max_length=...``. OpenRLHF models keep their own rule (the end is
  cut, EOS kept last) and their model's limit.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import safe_open
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoTokenizer

from rewardlab.core.atomic import atomic_write_text
from rewardlab.core.contract_options import TEMPLATES, TRUNCATIONS, ContractOptions
from rewardlab.core.device import pretrained_kwargs
from rewardlab.core.errors import ModelContractError
from rewardlab.core.scorer import Capabilities, LoadRequest, ScoreOptions, ScoreRow
from rewardlab.data.record import Prompt, prompt_as_messages
from rewardlab.models.reward_model import (
    ENCODER_TYPES,
    SPEC_FILE,
    RewardModel,
    ScoringSpec,
    TextEncoder,
    package_versions,
)

HUGE_MAX_LENGTH = 10**7  # tokenizers without a limit report ~1e30
FALLBACK_MAX_LENGTH = 2048  # reward-bench's run_rm.py --max_length default


@dataclass
class Part:
    value: Any
    source: str  # "inferred" | "given" | "model"
    why: str


@dataclass
class Contract:
    """How a foreign model scores text: each part's value and where it came from, plus warnings."""

    model: str
    kind: str  # "sequence-classifier" | "openrlhf" | "custom-code" | "dpo-implicit"
    parts: dict[str, Part] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def set(self, name: str, value, source: str, why: str):
        self.parts[name] = Part(value, source, why)
        return value

    def value(self, name: str):
        return self.parts[name].value

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "kind": self.kind,
            "rewardlab_json": False,
            "parts": {k: dataclasses.asdict(v) for k, v in self.parts.items()},
            "warnings": list(self.warnings),
        }

    def format(self) -> str:
        lines = [f"scoring contract for {self.model} ({self.kind}, no {SPEC_FILE}: inferred unless given):"]
        for name, p in self.parts.items():
            shown = p.value if not (isinstance(p.value, str) and len(p.value) > 60) else p.value[:57] + "..."
            lines.append(f"  {name:<19} {shown!r:<28} {p.source}: {p.why}")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def summary(self) -> str:
        inferred = [k for k, p in self.parts.items() if p.source == "inferred"]
        given = [k for k, p in self.parts.items() if p.source == "given"]
        used = self.parts.get("reward") or self.parts.get("output")
        text = (
            f"{self.model}: foreign model ({self.kind}"
            + (f", reward: {used.value}" if used is not None else "")
            + f"); contract inferred: {', '.join(inferred) or 'none'}; given: {', '.join(given) or 'none'}"
        )
        return text + (f"; warnings: {' | '.join(self.warnings)}" if self.warnings else "")


# ---- the text side ----------------------------------------------------------------------------------
class ForeignTextEncoder(TextEncoder):
    """:class:`TextEncoder` plus the ``join`` template and OpenRLHF's text ending."""

    def __init__(self, tokenizer, spec: ScoringSpec, openrlhf: bool = False):
        super().__init__(tokenizer, spec)
        self.openrlhf = openrlhf

    def render(self, prompt: Prompt, response: str) -> tuple[str, str, str]:
        if self.spec.template == "join":
            messages = prompt_as_messages(prompt)
            text = (
                messages[0]["content"]
                if len(messages) == 1
                else "".join(f"{m['role'].capitalize()}: {m['content']}\n\n" for m in messages).rstrip()
            )
            if self.openrlhf:  # OpenRLHF without a chat template: prompt + response (its ending added below)
                prefix, resp, suffix = text, response, ""
            else:
                sep = "" if not text or text[-1].isspace() else "\n"
                return text + sep, response, self.spec.eos_token or ""
        else:
            prefix, resp, suffix = super().render(prompt, response)
        if self.openrlhf:  # openrlhf/datasets/reward_dataset.py: text.rstrip("\n"), then " " + eos unless it ends so
            eos = self.spec.eos_token or ""
            if suffix:
                suffix = suffix.rstrip("\n")
            else:
                resp = resp.rstrip("\n")
            if eos and not (prefix + resp + suffix).endswith(eos):
                suffix += " " + eos
        return prefix, resp, suffix

    def encode(self, prompt: Prompt, response: str) -> dict:
        out = super().encode(prompt, response)
        if self.openrlhf and self.tok.eos_token_id is not None:  # the trainer keeps EOS last when it truncates
            out["input_ids"] = list(out["input_ids"])
            out["input_ids"][-1] = self.tok.eos_token_id
        return out


# ---- OpenRLHF's reward model layout ----------------------------------------------------------------
class OpenRLHFValueModel(torch.nn.Module):
    """A base transformer + ``Linear(hidden, 1, bias=False)`` named ``value_head_prefix``; the reward is the
    head's value at the last attention-mask position, position ids from the mask (``openrlhf/models/model.py``)."""

    def __init__(self, base, head: torch.nn.Linear):
        super().__init__()
        self.base, self.head, self.config = base, head, base.config

    def forward(self, input_ids, attention_mask, **_) -> torch.Tensor:
        position_ids = attention_mask.long().cumsum(-1) - 1
        position_ids = position_ids.masked_fill(attention_mask == 0, 1)
        hidden = self.base(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids
        ).last_hidden_state
        values = self.head(hidden).squeeze(-1)  # (B, T)
        last = attention_mask.size(1) - 1 - attention_mask.long().fliplr().argmax(dim=1, keepdim=True)
        return values.gather(1, last).squeeze(1)


def _state_tensor(path: Path, key: str) -> torch.Tensor | None:
    """One tensor from a directory's safetensors (or pytorch_model*.bin) weights."""
    for f in sorted(path.glob("*.safetensors")):
        with safe_open(str(f), framework="pt") as st:
            if key in st.keys():
                return st.get_tensor(key)
    for f in sorted(path.glob("pytorch_model*.bin")):
        sd = torch.load(f, map_location="cpu", weights_only=True)
        if key in sd:
            return sd[key]
    return None


def is_openrlhf(config) -> bool:
    return hasattr(config, "value_head_prefix") or hasattr(config, "normalize_reward")


# ---- the model ---------------------------------------------------------------------------------------
def packing_refusal(model: str) -> str:
    """Why ``--packing`` is refused for a foreign model (``load_foreign(packing=True)``, ``score(packing=True)``)."""
    return f"--packing covers rewardlab-trained models only; drop it for {model}"


class ForeignRewardModel(RewardModel):
    """A foreign model behind the :class:`RewardModel` interface (score, collate, forward, encoder), so
    evaluation, benchmarks, probes and the server use it unchanged. ``contract`` says how it scores. It never
    packs (built with ``packing=False``): :func:`load_foreign` refuses the ``--packing`` load option."""

    kind = "foreign"

    def __init__(self, model, tokenizer, spec: ScoringSpec, contract: Contract, read: Callable):
        super().__init__(model, tokenizer, spec)
        self.contract, self._read = contract, read
        self.encoder = ForeignTextEncoder(tokenizer, spec, openrlhf=contract.kind == "openrlhf")
        self.n_attributes: int | None = None  # a custom-code model's per-attribute rewards (set by the load's probe)
        self.capabilities = Capabilities(output="scalar", packing_refusal=packing_refusal(contract.model))

    def set_attributes(self, n: int | None) -> None:
        """Record the load probe's finding: the output has ``n`` per-attribute ``rewards`` (None: none)."""
        self.n_attributes = n
        output = "attributes" if n is not None else "scalar"
        self.capabilities = Capabilities(output=output, packing_refusal=self.capabilities.packing_refusal)

    @property
    def attributes(self) -> list[str]:
        return self.attribute_names() or []

    @classmethod
    def open(cls, path: str, request: LoadRequest) -> "ForeignRewardModel":
        kw = {} if request.torch_dtype is None else {"torch_dtype": request.torch_dtype}
        return load_foreign(path, request.options, packing=request.packing, **kw)

    @classmethod
    def inspect(cls, path: str, options: ContractOptions) -> str:
        return infer_contract(path, options)[3].format()

    def _output(self, input_ids, attention_mask=None, token_type_ids=None):
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        if (
            attention_mask is not None
            and self.contract.value("reward_read_at") in ("last_non_pad", "custom")
            and bool((attention_mask[:, 0] == 0).any())
        ):  # left padding: positions from the mask
            kwargs["position_ids"] = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        return self.model(**kwargs)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, **packed) -> torch.Tensor:
        if packed:
            raise ModelContractError("packed scoring covers rewardlab-trained models only")
        return self._read(self._output(input_ids, attention_mask, token_type_ids)).float()

    def attribute_names(self) -> list[str] | None:
        """Names of a custom-code model's per-attribute ``rewards`` (config id2label when it names them all)."""
        k = self.n_attributes
        if k is None:
            return None
        labels = getattr(self.model.config, "id2label", None) or {}
        names = [str(labels.get(i, labels.get(str(i), ""))) for i in range(k)]
        if len(set(names)) == k and not any(n == "" or n.startswith("LABEL_") for n in names):
            return names
        return [f"rewards[{i}]" for i in range(k)]

    @torch.no_grad()
    def attribute_scores(self, items, batch_size: int = 16) -> list[dict] | None:
        """Per-attribute rewards ``[{name: value}, ...]`` for a model whose output has ``rewards``; else None."""
        names = self.attribute_names()
        if names is None:
            return None
        device = next(self.model.parameters()).device
        feats = [self.encoder.encode(p, r) for p, r in items]
        out: list[dict] = [{} for _ in feats]
        for start in range(0, len(feats), batch_size):
            idx = list(range(start, min(start + batch_size, len(feats))))
            batch = {k: v.to(device) for k, v in self.collate([feats[i] for i in idx]).items()}
            rewards = _field(self._output(**batch), "rewards").float().tolist()
            for i, row in zip(idx, rewards):
                out[i] = dict(zip(names, row))
        return out

    def score_items(self, items: list, opts: ScoreOptions, unsafe=None) -> list[float]:
        return super().score_items(items, dataclasses.replace(opts, packing=False), unsafe)

    def score_rows(self, items, options: ScoreOptions | None = None, /, *, unsafe=None, **keywords) -> list[ScoreRow]:
        """The scalar, and for a custom-code model whose output has ``rewards`` the per-attribute rewards."""
        opts = self.options(options, keywords)
        rows: list[ScoreRow] = [{"score": s} for s in self.score(items, opts)]
        if self.capabilities.output == "attributes":
            for row, attrs in zip(rows, self.attribute_scores(items, batch_size=opts.batch_size)):
                row["attributes"] = attrs
        return rows


def _reader(kind: str, config, opts: ContractOptions, contract: Contract) -> Callable:
    """How the scalar reward is read from the model's output, recorded in ``contract``."""
    if kind == "openrlhf":
        contract.set("output", "value head", "model", "OpenRLHF value head at the last attention-mask position")
        return lambda out: out
    labels = {str(v): int(k) for k, v in (getattr(config, "id2label", None) or {}).items()}
    if kind == "custom-code":
        if opts.attribute is None and opts.score_index is None:
            contract.set("output", "score", "inferred", "custom-code outputs: the scalar is their `score`")
            return lambda out: _field(out, "score")[:, 0]
        index = opts.score_index if opts.score_index is not None else labels.get(opts.attribute)
        if index is None:
            raise ModelContractError(
                f"--attribute {opts.attribute!r} is not a named output of {contract.model} "
                f"(config id2label: {sorted(labels) or 'none'}); use --score-index I"
            )
        contract.set("output", f"rewards[:, {index}]", "given", "--score-index/--attribute on its `rewards` output")
        return lambda out: _field(out, "rewards")[:, index]
    n = int(getattr(config, "num_labels", 1))
    if opts.attribute is not None:
        if opts.attribute not in labels:
            raise ModelContractError(
                f"--attribute {opts.attribute!r}: {contract.model} has outputs "
                f"{sorted(labels, key=labels.get)} (config id2label)"
            )
        index, why = labels[opts.attribute], f"--attribute {opts.attribute}"
    elif opts.score_index is not None:
        index, why = opts.score_index, "--score-index"
    elif n == 1:
        index, why = 0, None
    else:
        raise ModelContractError(
            f"{contract.model} has {n} outputs ({sorted(labels, key=labels.get)}): say which "
            "is the reward with --score-index I or --attribute NAME"
        )
    if not 0 <= index < n:
        raise ModelContractError(f"--score-index {index} is out of range: {contract.model} has {n} output(s)")
    if why is None:
        contract.set("output", "logits[:, 0]", "inferred", "one output (num_labels=1)")
    else:
        contract.set("output", f"logits[:, {index}]", "given", why)
    return lambda out: out.logits[:, index]


def _field(out, name: str) -> torch.Tensor:
    value = getattr(out, name, None)
    if value is None and isinstance(out, dict):
        value = out.get(name)
    if value is None:
        raise ModelContractError(
            f"the model's output has no `{name}` (it has {list(out.keys()) if hasattr(out, 'keys') else type(out).__name__})"
        )
    return value if value.dim() == 2 else value.reshape(value.shape[0], -1)


def _kind(config, opts: ContractOptions, model: str) -> str:
    if is_openrlhf(config):
        return "openrlhf"
    auto_map = getattr(config, "auto_map", None) or {}
    if "AutoModelForSequenceClassification" in auto_map:
        if not opts.trust_remote_code:
            raise ModelContractError(
                f"{model} ships its own modeling code ({auto_map['AutoModelForSequenceClassification']}); "
                "pass --trust-remote-code to run it"
            )
        return "custom-code"
    archs = getattr(config, "architectures", None) or []
    if archs and not any(a.endswith("ForSequenceClassification") for a in archs):
        hint = (
            " For a DPO policy's implicit reward give --ref-model REF or --ref-free."
            if any(a.endswith("ForCausalLM") for a in archs)
            else ""
        )
        raise ModelContractError(
            f"{model} is a {', '.join(archs)}, not a reward model (no sequence-classification "
            f"head).{hint} To train a head on it: rewardlab train --backbone {model}"
        )
    return "sequence-classifier"


def infer_contract(path: str, opts: ContractOptions | None = None):
    """``(tokenizer, config, ScoringSpec, Contract)`` for a foreign model, reading only its config and tokenizer."""
    opts = opts or ContractOptions()
    _check_options(opts)
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=opts.trust_remote_code)
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=opts.trust_remote_code)
    except (OSError, ValueError) as e:
        raise ModelContractError(f"cannot load {path} as a transformers model: {str(e).splitlines()[0]}") from e
    kind = _kind(config, opts, path)
    c = Contract(model=str(path), kind=kind)
    is_encoder = config.model_type in ENCODER_TYPES and not getattr(config, "is_decoder", False)
    # text template
    chat = getattr(tok, "chat_template", None) or None
    if opts.template is not None:
        if Path(opts.template).is_file():
            chat = Path(opts.template).read_text()
            template = c.set("template", "chat", "given", f"--template {opts.template} (a chat-template file)")
        else:
            template = c.set("template", opts.template, "given", "--template")
            if template == "chat" and not chat:
                raise ModelContractError(
                    f"--template chat: {path}'s tokenizer has no chat template "
                    "(give a Jinja file with --template FILE, or join/plain/pair)"
                )
    elif is_encoder:
        template = c.set(
            "template", "pair", "inferred", f"{config.model_type} is an encoder: (prompt, response) as a text pair"
        )
    elif chat:
        template = c.set(
            "template",
            "chat",
            "inferred",
            "the tokenizer's chat template, rendered as text then tokenized (as reward-bench)",
        )
    else:
        why = (
            "no chat template: prompt + response + ' ' + EOS, as OpenRLHF's reward dataset joins them"
            if kind == "openrlhf"
            else "no chat template: prompt, newline, response, EOS"
        )
        template = c.set("template", "join", "inferred", why)
        c.warnings.append(
            "no chat template: the text layout (join) is a guess; check how the model was trained "
            "and give --template plain|join or a chat-template file"
        )
    # pad token and where the reward is read
    pad_id = getattr(config, "pad_token_id", None)
    if isinstance(pad_id, list):
        pad_id = pad_id[0]
    if pad_id is not None:
        c.set("pad_token_id", pad_id, "model", "config.pad_token_id")
    elif tok.pad_token_id is not None:
        pad_id = c.set("pad_token_id", tok.pad_token_id, "inferred", "config has none: the tokenizer's pad token")
    elif tok.eos_token_id is not None:
        pad_id = c.set(
            "pad_token_id", tok.eos_token_id, "inferred", "no pad token anywhere: EOS (as reward-bench sets it)"
        )
    else:
        raise ModelContractError(
            f"{path} has no pad, EOS or config pad token id: batched scoring cannot find the reward"
        )
    pad_token = tok.convert_ids_to_tokens(int(pad_id))
    pooling = "cls" if is_encoder and kind != "openrlhf" else ("last_mask" if kind == "openrlhf" else "last_non_pad")
    pooling = "custom" if kind == "custom-code" else pooling
    where = {
        "cls": "the model's own pooler ([CLS], first token)",
        "custom": "the model's own code decides",
        "last_mask": "OpenRLHF: value at the last attention-mask position",
        "last_non_pad": "transformers: the last token that is not the pad token",
    }[pooling]
    c.set("reward_read_at", pooling, "model", where)
    if pooling == "last_non_pad" and pad_id == tok.eos_token_id:
        c.warnings.append(
            f"pad == eos ({pad_token!r}): transformers reads the reward at the last token that is not "
            f"{pad_token!r}, so a text ending in it is read before it (as reward-bench does)"
        )
    if pooling == "last_non_pad" and chat and template == "chat" and pad_token and pad_token in chat:
        c.warnings.append(
            f"the pad token {pad_token!r} occurs in the chat template: where it ends the text the "
            "reward is read before it"
        )
    # padding side
    if opts.padding_side is not None:
        side = c.set("padding_side", opts.padding_side, "given", "--padding-side")
        if pooling == "cls" and side == "left":
            raise ModelContractError("--padding-side left: encoders read [CLS] at position 0 and must be right-padded")
    else:
        side = c.set("padding_side", "right", "inferred", "right padding: positions as in an unbatched forward")
    # special tokens
    probe = tok("a", add_special_tokens=True)["input_ids"]
    adds_bos = tok.bos_token_id is not None and tok.bos_token_id in probe[:1]
    if opts.add_special_tokens is not None:
        if template == "pair" and not opts.add_special_tokens:
            raise ModelContractError(
                "--no-add-special-tokens: a text pair is always encoded with the tokenizer's "
                "[CLS]/[SEP] (template pair)"
            )
        add = c.set("add_special_tokens", opts.add_special_tokens, "given", "--add-special-tokens")
    elif template == "chat" and adds_bos and chat and _renders_bos(tok, chat):
        add = c.set(
            "add_special_tokens",
            False,
            "inferred",
            "the template writes BOS itself (reward-bench masks the tokenizer's duplicate BOS)",
        )
    elif kind == "openrlhf":
        add = c.set("add_special_tokens", False, "model", "OpenRLHF tokenizes with add_special_tokens=False")
    else:
        add = c.set(
            "add_special_tokens", True, "inferred", "the tokenizer's own BOS/CLS/SEP, as reward-bench's pipeline"
        )
    # length: reward-bench's run_rm.py passes max_length=2048 (its --max_length default) to the tokenizer, whatever
    # the model; a model with fewer positions cannot take 2048 tokens, so its own limit caps it
    if opts.max_length is not None:
        max_length = c.set("max_length", opts.max_length, "given", "--max-length")
    else:
        limits = [
            (v, name)
            for v, name in (
                (tok.model_max_length, "tokenizer model_max_length"),
                (getattr(config, "max_position_embeddings", None), "config max_position_embeddings"),
                (getattr(config, "n_positions", None), "config n_positions"),
            )
            if isinstance(v, int) and 0 < v < HUGE_MAX_LENGTH
        ]
        if kind == "openrlhf":  # OpenRLHF's trainer cuts at its --max_len; the model's limit is the known bound
            if limits:
                max_length = c.set("max_length", min(limits)[0], "model", min(limits)[1])
            else:
                max_length = c.set(
                    "max_length", FALLBACK_MAX_LENGTH, "inferred", "the model states none: 2048 (a guess)"
                )
                c.warnings.append("the model states no max length: 2048 is a guess (give --max-length)")
        elif limits and min(limits)[0] < FALLBACK_MAX_LENGTH:
            max_length = c.set(
                "max_length",
                min(limits)[0],
                "model",
                f"{min(limits)[1]} {min(limits)[0]}, below reward-bench's --max_length default 2048 "
                "(reward-bench would fail on longer texts)",
            )
        else:
            max_length = c.set(
                "max_length",
                FALLBACK_MAX_LENGTH,
                "inferred",
                "reward-bench's run_rm.py --max_length default 2048"
                + (f" (the model allows {min(limits)[0]}: {min(limits)[1]})" if limits else " (the model states none)"),
            )
    if opts.truncation:
        truncation = c.set("truncation", opts.truncation, "given", "--truncation")
    elif kind == "openrlhf":
        truncation = c.set(
            "truncation",
            "right",
            "inferred",
            "OpenRLHF's reward dataset cuts the end (truncation=True) and keeps EOS last",
        )
    else:
        truncation = c.set(
            "truncation",
            "left",
            "inferred",
            "longer texts lose their start, special tokens kept: reward-bench's run_rm.py sets "
            "tokenizer.truncation_side='left'",
        )
    normalization = None
    if kind == "openrlhf" and getattr(config, "mean", None) is not None:
        normalization = {
            "mean": float(config.mean),
            "std": float(getattr(config, "std", 1.0) or 1.0),
            "source": "config.json mean/std (OpenRLHF)",
        }
        c.set(
            "normalization",
            normalization,
            "model",
            "OpenRLHF's stored mean/std, applied with --normalize (its "
            f"--reward.normalize_enable; saved normalize_reward={getattr(config, 'normalize_reward', None)})",
        )
    spec = ScoringSpec(
        # "foreign-*": rewardlab's own pooling rules (and its packed fast path) never apply to these models
        backbone=str(path),
        model_type=config.model_type,
        pooling=f"foreign-{pooling}",
        template=template,
        chat_template=chat if template == "chat" else None,
        add_special_tokens=bool(add),
        bos_token=tok.bos_token,
        eos_token=tok.eos_token,
        pad_token=pad_token,
        pad_token_id=int(pad_id),
        padding_side=side,
        max_length=int(max_length),
        truncation=truncation,
        normalization=normalization,
        versions=package_versions(),
    )
    return tok, config, spec, c


def _renders_bos(tok, chat: str) -> bool:
    try:
        text = tok.apply_chat_template(
            [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
            tokenize=False,
            chat_template=chat,
        )
    except Exception:
        return False
    return bool(tok.bos_token) and text.startswith(tok.bos_token)


def _check_options(opts: ContractOptions) -> None:
    if opts.template is not None and opts.template not in TEMPLATES and not Path(opts.template).is_file():
        raise ModelContractError(
            f"--template {opts.template!r}: expected one of {', '.join(TEMPLATES)} or a chat-template file"
        )
    if opts.truncation is not None and opts.truncation not in TRUNCATIONS:
        raise ModelContractError(f"--truncation {opts.truncation!r}: expected one of {', '.join(TRUNCATIONS)}")
    if opts.padding_side is not None and opts.padding_side not in ("left", "right"):
        raise ModelContractError(f"--padding-side {opts.padding_side!r}: expected left or right")
    if opts.max_length is not None and opts.max_length < 2:
        raise ModelContractError(f"--max-length {opts.max_length}: must be at least 2")
    if opts.score_index is not None and opts.attribute is not None:
        raise ModelContractError("give --score-index or --attribute, not both")


def load_foreign(
    path: str, opts: ContractOptions | None = None, torch_dtype=torch.float32, packing: bool = False
) -> ForeignRewardModel:
    """Load a foreign reward model with its inferred (or given) contract; ``packing=True`` (the ``--packing``
    load option) is refused before its weights load (:func:`packing_refusal`)."""
    opts = opts or ContractOptions()
    tok, config, spec, contract = infer_contract(path, opts)
    if packing:
        raise ModelContractError(packing_refusal(contract.model))
    try:
        if contract.kind == "openrlhf":
            prefix = getattr(config, "value_head_prefix", "score")
            weight = _state_tensor(Path(path), f"{prefix}.weight")
            if weight is None:
                raise ModelContractError(f"{path}: OpenRLHF config but no `{prefix}.weight` value head in its weights")
            base = AutoModel.from_pretrained(path, dtype=torch_dtype, **pretrained_kwargs())
            head = torch.nn.Linear(weight.shape[-1], 1, bias=False, dtype=torch_dtype, device=base.device)
            head.weight.data.copy_(weight.reshape(1, -1))
            model = OpenRLHFValueModel(base, head)
        else:
            model = AutoModelForSequenceClassification.from_pretrained(
                path, dtype=torch_dtype, trust_remote_code=opts.trust_remote_code, **pretrained_kwargs()
            )
    except (OSError, ValueError) as e:
        raise ModelContractError(f"cannot load {path}'s weights: {str(e).splitlines()[0]}") from e
    if contract.kind != "openrlhf":
        model.config.pad_token_id = spec.pad_token_id  # transformers finds the reward by it
    model.eval()
    read = _reader(contract.kind, model.config, opts, contract)
    rm = ForeignRewardModel(model, tok, spec, contract, read)
    if contract.kind == "custom-code":  # one probe forward: does it give per-attribute rewards, and how many?
        with torch.no_grad():
            probe = rm._output(**rm.collate([rm.encoder.encode("a", "b")]))
        rewards = getattr(probe, "rewards", None)
        rm.set_attributes(int(rewards.shape[-1]) if isinstance(rewards, torch.Tensor) and rewards.dim() == 2 else None)
        try:
            read(probe)
        except ModelContractError as e:
            raise ModelContractError(f"{path}: {e}") from None
        contract.set(
            "attributes",
            rm.attribute_names(),
            "model",
            "its `rewards` output, written per response by `score`" if rm.n_attributes else "none",
        )
    return rm


def contract_of(scorer) -> dict | None:
    """The contract a loaded scorer reports (foreign and implicit models), for reports and score outputs."""
    return scorer.contract.to_json() if scorer.contract is not None else None


def write_contract(path: Path, scorer) -> Path | None:
    """Write ``scorer``'s contract next to an output file (``scores.jsonl`` -> ``scores.contract.json``)."""
    data = contract_of(scorer)
    if data is None:
        return None
    out = path.with_name(path.name.rsplit(".", 1)[0] + ".contract.json")
    atomic_write_text(out, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    return out
