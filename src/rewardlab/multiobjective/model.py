"""A K-output reward model: a plain ``AutoModelForSequenceClassification`` (``num_labels=K``, ``id2label`` naming
the attributes) plus what turns its K outputs into one score, recorded in ``rewardlab.json`` under
``multiobjective`` (:class:`MultiObjectiveSpec`).

Plain transformers loads the directory and, fed :meth:`AttributeRewardModel.encode`'s ids, gives the same K
attribute rewards (the normalised [0, 1] ratings; ``scales`` map them back). This class, the documented custom
head, adds after a gating run (``gate.safetensors``): the gate weights ``g`` (softmax over the K objectives, read
at the hidden state where the final user turn ends), the transformed rewards ``r′ = r @ T`` (verbosity
debiasing) and the gated score ``β · gᵀ r′``.

Where the gate reads (``prompt_end``): the last token of the templated prompt *without* the assistant header
(chat templates: the prompt rendered alone, ``add_generation_prompt=False``; plain: the conversation text before
``Assistant:``). In a causal LM that state does not depend on the response. With ``truncation="prompt_left"`` the
index follows the tokens the truncation drops. An encoder reads both segments bidirectionally, so for text-pair
models the gate reads the final ``[SEP]`` of the prompt encoded *alone* (``prompt_ids``, an extra short forward),
which keeps the gate a function of the prompt only, as in ArmoRM.
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rewardlab.core.atomic import readable_like_the_rest
from rewardlab.core.device import pretrained_kwargs
from rewardlab.core.errors import ModelContractError, RewardlabError
from rewardlab.core.finite import check_weights
from rewardlab.core.integrity import check_spec_values, read_rewardlab_json, verify_model_dir
from rewardlab.core.specfields import checked_fields
from rewardlab.data.record import Prompt, prompt_as_messages
from rewardlab.models.reward_model import SPEC_FILE, RewardModel, ScoringSpec, TextEncoder, pad_batch, write_spec
from rewardlab.multiobjective.gate import GateConfig, GatingNetwork
from rewardlab.multiobjective.scalarise import FixedWeights, Scaliser, scaliser_from_json

GATE_FILE = "gate.safetensors"
HEAD_NAMES = ("score", "classifier")  # single-Linear heads of decoder and BERT-style sequence classifiers


@dataclass
class MultiObjectiveSpec:
    attributes: list[str]
    scales: dict[str, list[float]]  # attribute -> [low, high] of the original ratings
    scaliser: dict = field(default_factory=lambda: FixedWeights(equal=True).to_json())
    transform: list[list[float]] | None = None  # K×K: r′ = r @ T (verbosity debiasing); None = identity
    debias: dict | None = None  # {"attribute", "lambdas", "threshold", "reference"}
    gate: dict | None = None  # GateConfig fields
    stage1: dict | None = None  # how the head was fitted ({"method": "ridge", "alphas": [...]} or gradient)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict, source: str = SPEC_FILE) -> "MultiObjectiveSpec":
        """The section read from ``source``, every field of its type and its values usable (the scaliser, the gate's
        settings, a K×K finite transform), else :class:`ModelContractError` naming ``multiobjective.<field>``."""
        mo = cls(**checked_fields(cls, d, source, "multiobjective"))
        k = len(mo.attributes)
        if k == 0 or len(set(mo.attributes)) != k:
            raise ModelContractError(f"{source}: multiobjective.attributes must be distinct names, got {mo.attributes}")
        for name, bounds in mo.scales.items():
            if len(bounds) != 2 or not all(math.isfinite(b) for b in bounds) or not bounds[0] < bounds[1]:
                raise ModelContractError(f"{source}: multiobjective.scales.{name} must be [low, high], got {bounds}")
        if mo.transform is not None and (
            len(mo.transform) != k
            or any(len(row) != k for row in mo.transform)
            or not all(math.isfinite(x) for row in mo.transform for x in row)
        ):
            raise ModelContractError(f"{source}: multiobjective.transform must be a finite {k}×{k} matrix")
        if mo.gate is not None:
            gate = GateConfig(**checked_fields(GateConfig, mo.gate, source, "multiobjective.gate"))
            if not (math.isfinite(gate.temperature) and gate.temperature > 0):
                raise ModelContractError(
                    f"{source}: multiobjective.gate.temperature must be a finite number > 0, got {gate.temperature}"
                )
            for name in ("input_dim", "hidden", "n_hidden"):
                if getattr(gate, name) < 1:
                    raise ModelContractError(
                        f"{source}: multiobjective.gate.{name} must be ≥ 1, got {getattr(gate, name)}"
                    )
            if not 0 <= gate.dropout < 1:
                raise ModelContractError(
                    f"{source}: multiobjective.gate.dropout must lie in [0, 1), got {gate.dropout}"
                )
            if gate.n_objectives != k:
                raise ModelContractError(f"{source}: multiobjective.gate.n_objectives is {gate.n_objectives}, not {k}")
        scaliser_from_json(mo.scaliser, source, "multiobjective.scaliser")
        return mo


def find_head(model) -> torch.nn.Linear:
    for name in HEAD_NAMES:
        head = getattr(model, name, None)
        if isinstance(head, torch.nn.Linear):
            return head
    raise ModelContractError(
        f"{type(model).__name__} has no single-Linear head ({' or '.join(HEAD_NAMES)}); "
        "closed-form stage 1 and feature caching need one"
    )


@dataclass
class MultiScores:
    """Outputs for N texts: ``rewards`` ``(N, K)`` raw head outputs, ``transformed`` ``(N, K)`` (= rewards without a
    transform), ``gate`` ``(N, K)`` softmax weights or None, ``score`` ``(N,)`` from the model's scaliser."""

    rewards: torch.Tensor
    transformed: torch.Tensor
    gate: torch.Tensor | None
    score: torch.Tensor


class AttributeRewardModel(torch.nn.Module):
    def __init__(
        self,
        model,
        tokenizer,
        spec: ScoringSpec,
        mo: MultiObjectiveSpec,
        gate: GatingNetwork | None = None,
        modified_files: list[str] | None = None,
    ):
        super().__init__()
        self.model, self.tokenizer, self.spec, self.mo, self.gate = model, tokenizer, spec, mo, gate
        self.encoder = TextEncoder(tokenizer, spec)
        # scoring files loaded despite a hash mismatch (--trust-modified)
        self.modified_files: list[str] = list(modified_files or [])

    @property
    def attributes(self) -> list[str]:
        return list(self.mo.attributes)

    # ---- construction --------------------------------------------------------------------------------
    @classmethod
    def from_backbone(
        cls,
        backbone: str,
        attributes: list[str],
        scales: dict[str, list[float]],
        *,
        max_length: int = 512,
        padding_side: str | None = None,
        truncation: str = "prompt_left",
        seed: int | None = None,
    ) -> "AttributeRewardModel":
        """A fresh K-output head on any backbone (built as a 1-output rewardlab model, then the head is widened)."""
        base = RewardModel.from_backbone(
            backbone, max_length=max_length, padding_side=padding_side, truncation=truncation, seed=seed
        )
        config = base.model.config
        config.num_labels = len(attributes)
        config.id2label = dict(enumerate(attributes))
        config.label2id = {a: i for i, a in enumerate(attributes)}
        config.problem_type = "regression"
        if seed is not None:
            torch.manual_seed(seed)
        model = AutoModelForSequenceClassification.from_config(config)
        state = {
            k: v
            for k, v in base.model.state_dict().items()
            if k in model.state_dict() and model.state_dict()[k].shape == v.shape
        }
        missing = [k for k in model.state_dict() if k not in state]
        model.load_state_dict(state, strict=False)
        if any(not k.startswith(HEAD_NAMES) for k in missing):
            raise ModelContractError(f"widening the head left backbone weights unset: {missing[:4]}")
        mo = MultiObjectiveSpec(list(attributes), dict(scales))
        base.spec.multiobjective = mo.to_json()
        return cls(model, base.tokenizer, base.spec, mo)

    @classmethod
    def load(
        cls, path: str | Path, *, torch_dtype=torch.float32, trust_modified: bool = False
    ) -> "AttributeRewardModel":
        """Load a saved directory. The scoring files (weights, tokenizer, config, ``gate.safetensors``) must match the
        hashes in ``rewardlab.json`` (:mod:`rewardlab.core.integrity`); ``trust_modified`` loads a mismatch anyway (warned,
        kept in ``modified_files``). The gate and the scaliser always run in float32."""
        path = Path(path)
        spec_path = path / SPEC_FILE
        if not spec_path.exists():
            raise ModelContractError(f"{path} has no {SPEC_FILE}: not a rewardlab model directory")
        warn = lambda m: print(m, file=sys.stderr)  # noqa: E731
        raw, sealed = read_rewardlab_json(path, trust_modified=trust_modified, warn=warn)
        spec = ScoringSpec.from_json(raw, str(spec_path))
        if not spec.multiobjective:
            raise ModelContractError(
                f"{spec_path} has no 'multiobjective' section: a single-output model "
                "(load it with rewardlab.models.reward_model.RewardModel)"
            )
        modified = sealed + verify_model_dir(path, spec.file_hashes, trust_modified=trust_modified, warn=warn)
        check_spec_values(spec, str(spec_path))
        mo = MultiObjectiveSpec.from_json(spec.multiobjective, str(spec_path))
        try:
            tok = AutoTokenizer.from_pretrained(path)
        except (OSError, ValueError) as e:
            raise ModelContractError(f"{path}: cannot load the tokenizer: {str(e).splitlines()[0]}") from None
        model = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch_dtype, **pretrained_kwargs())
        check_weights(model.state_dict().items(), f"{path}: refusing to load")
        names = [model.config.id2label[i] for i in range(model.config.num_labels)]
        if names != mo.attributes:
            raise ModelContractError(
                f"{path}/config.json labels {names} differ from {SPEC_FILE} attributes {mo.attributes}"
            )
        if tok.pad_token_id != spec.pad_token_id:
            raise ModelContractError(f"tokenizer pad id {tok.pad_token_id} != {spec.pad_token_id} in {SPEC_FILE}")
        gate = None
        if mo.gate is not None:
            if not (path / GATE_FILE).exists():
                raise ModelContractError(f"{SPEC_FILE} describes a gate but {path / GATE_FILE} is missing")
            gate = GatingNetwork(GateConfig(**mo.gate))
            try:
                gate.load_state_dict(load_file(str(path / GATE_FILE)))
            except (RuntimeError, ValueError, OSError) as e:  # shapes of another gate, a truncated file
                raise ModelContractError(
                    f"{path / GATE_FILE} does not fit {SPEC_FILE} multiobjective.gate {mo.gate}: "
                    f"{str(e).splitlines()[0][:200]}"
                ) from None
            check_weights(gate.state_dict().items(), f"{path / GATE_FILE}: refusing to load")
        rm = cls(model, tok, spec, mo, gate, modified_files=modified)
        rm.scaliser()  # a bad scaliser record fails at load, not at the first request
        return rm

    def save(self, path: str | Path) -> None:
        """Write the directory: plain transformers files, ``gate.safetensors`` when there is a gate, and
        ``rewardlab.json`` with the hashes of every scoring file (gate included)."""
        path = Path(path)
        check_weights(self.model.state_dict().items(), f"refusing to write {path}")
        if self.gate is not None:
            check_weights(self.gate.state_dict().items(), f"refusing to write {path} (the gate)")
        path.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(path, safe_serialization=True)
        self.tokenizer.save_pretrained(path)
        if self.gate is not None:
            self.mo.gate = self.gate.cfg.to_json()
            save_file({k: v.contiguous() for k, v in self.gate.state_dict().items()}, str(path / GATE_FILE))
        elif (path / GATE_FILE).exists():
            (path / GATE_FILE).unlink()  # a stale gate would be hashed as part of this model
        self.spec.multiobjective = self.mo.to_json()
        write_spec(path, self.spec.to_json())
        readable_like_the_rest(path)

    def scaliser(self) -> Scaliser:
        return scaliser_from_json(self.mo.scaliser)

    def transform_matrix(self) -> torch.Tensor:
        k = len(self.attributes)
        return torch.eye(k) if self.mo.transform is None else torch.tensor(self.mo.transform, dtype=torch.float32)

    # ---- encoding -----------------------------------------------------------------------------------
    def encode(self, prompt: Prompt, response: str) -> dict:
        """:meth:`TextEncoder.encode`'s ids plus ``prompt_end``, the index the gate reads."""
        enc = self.encoder.encode(prompt, response)
        if self.spec.template == "pair":  # the prompt alone; the gate reads its last token ([SEP])
            text = self.encoder.render(prompt, response)[0]
            enc["prompt_ids"] = self.tokenizer(text, truncation=True, max_length=self.spec.max_length)["input_ids"]
            enc["prompt_end"] = len(enc["prompt_ids"]) - 1
        else:
            enc["prompt_end"] = self._prompt_end(prompt, response, enc)
        return enc

    def _prompt_end(self, prompt: Prompt, response: str, enc: dict) -> int:
        prefix, resp, suffix = self.encoder.render(prompt, response)
        if self.spec.template == "chat":
            alone = self.tokenizer.apply_chat_template(
                prompt_as_messages(prompt), tokenize=False, chat_template=self.spec.chat_template
            )
            boundary = len(alone) if prefix.startswith(alone) else len(prefix)
        else:  # plain: "User: …\n\nAssistant: "
            boundary = len(prefix) - len("Assistant: ")
        full = self.tokenizer(
            prefix + resp + suffix, add_special_tokens=self.spec.add_special_tokens, return_offsets_mapping=True
        )
        spans = full["offset_mapping"]
        index = max((i for i, s in enumerate(spans) if tuple(s) != (0, 0) and s[0] < boundary), default=0)
        dropped = len(full["input_ids"]) - len(enc["input_ids"])
        if dropped and self.spec.truncation == "prompt_left":
            index -= dropped
        return min(max(index, 0), len(enc["input_ids"]) - 1)

    def collate(self, features: list[dict], padding_side: str | None = None) -> dict[str, torch.Tensor]:
        side = padding_side or self.spec.padding_side
        batch = pad_batch(
            [{k: v for k, v in f.items() if k not in ("prompt_end", "prompt_ids")} for f in features],
            self.spec.pad_token_id,
            side,
        )
        width = batch["input_ids"].shape[1]
        shift = [width - len(f["input_ids"]) if side == "left" else 0 for f in features]
        if "prompt_ids" in features[0]:  # encoders: the prompt alone, right-padded
            prompts = pad_batch([{"input_ids": f["prompt_ids"]} for f in features], self.spec.pad_token_id, "right")
            batch["prompt_input_ids"], batch["prompt_attention_mask"] = prompts["input_ids"], prompts["attention_mask"]
            shift = [0] * len(features)
        batch["prompt_end"] = torch.tensor([f["prompt_end"] + s for f, s in zip(features, shift)], dtype=torch.long)
        return batch

    # ---- forward ------------------------------------------------------------------------------------
    def _kwargs(self, batch: dict) -> dict:
        kwargs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        if "token_type_ids" in batch:
            kwargs["token_type_ids"] = batch["token_type_ids"]
        if self.spec.pooling == "last_token":
            kwargs["position_ids"] = (batch["attention_mask"].long().cumsum(-1) - 1).clamp(min=0)
        return kwargs

    def forward(self, input_ids, attention_mask, token_type_ids=None, **_) -> torch.Tensor:
        """Attribute rewards ``(B, K)`` (what plain transformers gives as ``logits``)."""
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            batch["token_type_ids"] = token_type_ids
        return self.model(**self._kwargs(batch)).logits.float()

    def features(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(rewards (B, K), head input (B, d), prompt-end hidden state (B, d))`` in one forward.

        The head input is what the single-Linear head reads at the pooled token, so ``head(x) == rewards``."""
        head = find_head(self.model)
        seen: list[torch.Tensor] = []
        hook = head.register_forward_hook(lambda mod, args, out: seen.append(args[0]))
        try:
            out = self.model(**self._kwargs(batch), output_hidden_states=True)
        finally:
            hook.remove()
        x = seen[0]
        rows = torch.arange(x.shape[0])
        if x.ndim == 3:  # decoder heads score every position; HF pools the rightmost non-pad token
            ids = batch["input_ids"]
            non_pad = (ids != self.model.config.pad_token_id).int()
            last = (torch.arange(ids.shape[1], device=ids.device) * non_pad).argmax(-1)
            x = x[rows, last]
        hidden = out.hidden_states[-1]
        if "prompt_input_ids" in batch:  # encoders: the prompt encoded alone
            hidden = self.model.base_model(
                input_ids=batch["prompt_input_ids"], attention_mask=batch["prompt_attention_mask"]
            ).last_hidden_state
        return out.logits.float(), x.float(), hidden[rows, batch["prompt_end"].to(hidden.device)].float()

    def outputs(
        self, rewards: torch.Tensor, prompt_hidden: torch.Tensor | None, unsafe: torch.Tensor | None = None
    ) -> MultiScores:
        """Scaliser outputs from raw rewards ``(N, K)`` and (for a gate) prompt hidden states ``(N, d)``."""
        rewards = rewards.float().cpu()
        transformed = rewards @ self.transform_matrix()
        gate = None
        if self.gate is not None and prompt_hidden is not None:
            self.gate.eval()
            with torch.no_grad():  # the gate runs where it lives (a served model may be on a GPU); results on CPU
                gate = self.gate.weights(prompt_hidden.to(self.gate.logit_scale.device)).float().cpu()
        scaliser = self.scaliser()
        if scaliser.kind == "gate":
            if gate is None:
                raise RewardlabError("this model's scaliser is the gate, but it has no gate")
            score = self.gate.logit_scale.detach().cpu()[0] * (gate * transformed).sum(-1)
        else:
            score = scaliser(rewards, self.attributes, unsafe=unsafe)
        return MultiScores(rewards.float(), transformed, gate, score.float())

    @torch.no_grad()
    def score_items(
        self,
        items: list[tuple[Prompt, str]],
        batch_size: int = 16,
        unsafe: list[bool] | None = None,
        padding_side: str | None = None,
    ) -> MultiScores:
        was = self.training
        self.eval()
        feats = [self.encode(p, r) for p, r in items]
        order = sorted(range(len(feats)), key=lambda i: len(feats[i]["input_ids"]))
        k, rewards, hidden = len(self.attributes), torch.zeros(len(items), len(self.attributes)), None
        device = next(self.model.parameters()).device
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = {n: v.to(device) for n, v in self.collate([feats[i] for i in idx], padding_side).items()}
            if self.gate is not None:
                r, _, h = self.features(batch)
                if hidden is None:
                    hidden = torch.zeros(len(items), h.shape[1])
                hidden[idx] = h.cpu()
            else:
                r = self(**batch)
            rewards[idx] = r.cpu().reshape(len(idx), k)
        self.train(was)
        tags = None if unsafe is None else torch.tensor(unsafe, dtype=torch.bool)
        return self.outputs(rewards, hidden, tags)


def output_rows(rm: AttributeRewardModel, scores: MultiScores) -> list[dict]:
    """Per-text JSON fields: ``attributes`` {attribute: reward}, ``transformed`` (after debiasing), ``gate`` {attribute:
    weight} when the model has one, and ``score`` from the model's scaliser."""
    names = rm.attributes
    rows = []
    for i in range(len(scores.score)):
        row = {"score": float(scores.score[i]), "attributes": dict(zip(names, scores.rewards[i].tolist()))}
        if rm.mo.transform is not None:
            row["transformed"] = dict(zip(names, scores.transformed[i].tolist()))
        if scores.gate is not None:
            row["gate"] = dict(zip(names, scores.gate[i].tolist()))
        rows.append(row)
    return rows


# --- regression → BT ----------------------------------------------------------------------------------------
def init_from_attribute(model_dir: str, attribute: str, out_dir: Path) -> Path:
    """A 1-output checkpoint (no ``rewardlab.json``: a plain backbone for ``RewardModel.from_backbone``) whose head is
    the regression head's row for ``attribute``, so its reward equals that attribute's output."""
    rm = AttributeRewardModel.load(model_dir)
    if attribute not in rm.attributes:
        raise RewardlabError(
            f"--init-attribute {attribute!r} is not an attribute of {model_dir} ({', '.join(rm.attributes)})"
        )
    k = rm.attributes.index(attribute)
    head = find_head(rm.model)
    with torch.no_grad():
        weight = head.weight[k : k + 1].clone()
        bias = None if head.bias is None else head.bias[k : k + 1].clone()
        new = torch.nn.Linear(head.in_features, 1, bias=bias is not None)
        new.weight.copy_(weight)
        if bias is not None:
            new.bias.copy_(bias)
    for name in ("score", "classifier"):
        if getattr(rm.model, name, None) is head:
            setattr(rm.model, name, new)
    rm.model.config.num_labels = 1
    rm.model.config.id2label = {0: attribute}
    rm.model.config.label2id = {attribute: 0}
    rm.model.num_labels = 1
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rm.model.save_pretrained(out_dir, safe_serialization=True)
    rm.tokenizer.save_pretrained(out_dir)
    return out_dir
