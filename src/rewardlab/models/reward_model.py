"""The reward model contract: a Hugging Face backbone with a scalar head, and exactly how text becomes a score.

A rewardlab model directory is a standard ``AutoModelForSequenceClassification`` checkpoint
(``num_labels=1``) plus ``rewardlab.json`` (:class:`ScoringSpec`), which records every choice that turns
(prompt, response) into token ids and a number. Plain transformers loads the directory and, fed the ids
that :meth:`TextEncoder.encode` produces, gives the same scores.

Where the reward is read (the pooling rule):

* causal LMs (``pooling="last_token"``): at the **last non-padding token** of the rendered text, i.e. the
  final token the template writes after the response (for ChatML templates the newline after
  ``<|im_end|>``). transformers' heads find that token as the rightmost id that is not
  ``config.pad_token_id``, so the pad id must never occur in real text. Many chat tokenizers set
  pad == eos (SmolLM2: ``<|im_end|>``, which every turn contains); rewardlab then picks a special token
  that the template does not use (e.g. ``<|endoftext|>``) or adds ``<|pad|>``, and records it.
  Either padding side gives the same score: position ids are computed from the attention mask.
* encoders (``pooling="cls"``): the model's own [CLS] pooler, prompt and response as a text pair,
  always right-padded (absolute positions and CLS pooling require the first token to be real).

Truncation (``truncation="prompt_left"``, the default): when a text exceeds ``max_length``, tokens are
dropped from the *start of the prompt* first (keeping a leading BOS), so the whole response and the end
of the prompt survive; only if the response alone is too long is the response cut from its right, keeping
the template's closing tokens. ``truncation="right"`` cuts the end like a plain tokenizer would.
``truncation="left"`` (foreign models' default, as reward-bench's ``run_rm.py`` sets ``tokenizer.truncation_side
= "left"``) cuts the start of the text like a tokenizer with ``truncation_side="left"``: the tokenizer's added
special tokens (and a BOS the template itself writes) stay, the text's first tokens go.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from rewardlab.core.atomic import atomic_write_text, readable_like_the_rest
from rewardlab.core.device import pretrained_kwargs
from rewardlab.core.errors import ModelContractError
from rewardlab.core.finite import check_weights
from rewardlab.core.integrity import (
    SEAL,
    check_spec_values,
    file_hashes,
    parse_rewardlab_json,
    read_rewardlab_json,
    seal,
    verify_model_dir,
)
from rewardlab.core.jsonstrict import dumps_strict
from rewardlab.core.kinds import SPEC_FILE as _KINDS_SPEC_FILE
from rewardlab.core.normstats import normalize_with
from rewardlab.core.progress import bar as progress_bar
from rewardlab.core.progress import track
from rewardlab.core.provenance import library_versions
from rewardlab.core.scorer import Capabilities, LoadRequest, ScoreOptions, Scorer
from rewardlab.core.specfields import checked_fields
from rewardlab.data.record import Prompt, prompt_as_messages
from rewardlab.models.backbones import resolve_backbone
from rewardlab.models.layout import pad_batch  # noqa: F401  (importable from here as before)
from rewardlab.models.lora import load_adapter_model
from rewardlab.models.packing import packed_forward, packing_support, score_packed

SPEC_FILE = _KINDS_SPEC_FILE  # "rewardlab.json"
SPEC_VERSION = 1
_SENTINEL = "\u2063RLRESPONSE\u2063"
PAD_CANDIDATES = ("<|endoftext|>", "<pad>", "[PAD]", "<|pad|>", "<|finetune_right_pad_id|>")


@dataclass
class ScoringSpec:
    """Everything that decides how text becomes a score. Saved as ``rewardlab.json``."""

    backbone: str
    model_type: str
    pooling: str  # "last_token" | "cls"
    template: str  # "chat" (tokenizer's chat template), "plain" (User:/Assistant: text), "pair" (encoder text pair)
    chat_template: str | None
    add_special_tokens: bool  # whether the tokenizer's own BOS/CLS/SEP are added when tokenizing
    bos_token: str | None
    eos_token: str | None
    pad_token: str
    pad_token_id: int
    padding_side: str  # "right" | "left"
    max_length: int
    truncation: str = "prompt_left"  # "prompt_left" | "right" | "left" (foreign models: a tokenizer cut on the left)
    normalization: dict | None = None  # {"mean": float, "std": float} applied by score(normalize=True)
    data_fingerprint: str | None = None
    versions: dict = field(default_factory=dict)
    format_version: int = SPEC_VERSION
    # attribute names, scales, scaliser, gate and debiasing of a K-output model (rewardlab.multiobjective)
    multiobjective: dict | None = None
    file_hashes: dict | None = None  # sha256 of the scoring files (rewardlab.core.integrity); None: not recorded

    # Fields that change which ids or which number a text gets. Loading refuses a mismatch in these.
    CONTRACT = (
        "pooling",
        "template",
        "chat_template",
        "add_special_tokens",
        "bos_token",
        "eos_token",
        "pad_token",
        "pad_token_id",
        "truncation",
    )

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict, source: str = SPEC_FILE) -> "ScoringSpec":
        """The spec in ``d`` (a ``rewardlab.json`` object read from ``source``): every field of its type, or a
        :class:`ModelContractError` naming the file and the field (:func:`rewardlab.core.specfields.checked_fields`)."""
        if isinstance(d, dict):
            d = {k: v for k, v in d.items() if k != SEAL}
        return cls(**checked_fields(cls, d, source))


def sealed_json(spec: dict) -> str:
    """The text of a ``rewardlab.json`` holding ``spec``, sealed (:func:`rewardlab.core.integrity.seal`)."""
    return dumps_strict(seal(json.loads(dumps_strict(spec))), indent=2, ensure_ascii=False) + "\n"


def write_spec(path: Path, spec: dict) -> None:
    """Write ``path/rewardlab.json`` with ``spec`` and the hashes of the scoring files now in ``path``, sealed."""
    atomic_write_text(path / SPEC_FILE, sealed_json({**spec, "file_hashes": file_hashes(path)}))


def _plain_conversation(messages: list[dict]) -> str:
    return "".join(f"{m['role'].capitalize()}: {m['content']}\n\n" for m in messages)


class TextEncoder:
    """Turns (prompt, response) into token ids following a :class:`ScoringSpec`."""

    def __init__(self, tokenizer, spec: ScoringSpec):
        self.tok, self.spec = tokenizer, spec

    def render(self, prompt: Prompt, response: str) -> tuple[str, str, str]:
        """Split the full text into (prefix, response, suffix) strings; their concatenation is what is tokenized."""
        messages = prompt_as_messages(prompt)
        if self.spec.template == "chat":
            full = self.tok.apply_chat_template(
                messages + [{"role": "assistant", "content": _SENTINEL}],
                tokenize=False,
                chat_template=self.spec.chat_template,
            )
            prefix, sep, suffix = full.partition(_SENTINEL)
            if not sep:
                raise ModelContractError("the chat template dropped the assistant message; cannot score with it")
            return prefix, response, suffix
        if self.spec.template == "plain":
            return _plain_conversation(messages) + "Assistant: ", response, self.spec.eos_token or ""
        if self.spec.template == "pair":
            text = messages[0]["content"] if len(messages) == 1 else _plain_conversation(messages).rstrip()
            return text, response, ""
        raise ModelContractError(f"unknown template {self.spec.template!r}")

    def encode(self, prompt: Prompt, response: str) -> dict:
        """Return ``{"input_ids": [...], "token_type_ids": [...]?}`` truncated to ``max_length``."""
        prefix, response, suffix = self.render(prompt, response)
        if self.spec.template == "pair":
            return self._encode_pair(prefix, response)
        text = prefix + response + suffix
        enc = self.tok(text, add_special_tokens=self.spec.add_special_tokens, return_offsets_mapping=True)
        ids = enc["input_ids"]
        if len(ids) <= self.spec.max_length:
            return {"input_ids": ids}
        if self.spec.truncation == "right":
            return {"input_ids": ids[: self.spec.max_length]}
        if self.spec.truncation == "left":
            return {"input_ids": self._truncate_left(text)}
        return {
            "input_ids": self._truncate_prompt_left(
                ids, enc["offset_mapping"], len(prefix), len(prefix) + len(response)
            )
        }

    def _truncate_prompt_left(self, ids, offsets, resp_start: int, resp_end: int) -> list[int]:
        # Tokens are in text order: [BOS added by the tokenizer] [prompt] [response] [template tail].
        # A token belongs to the part in which its text starts; added specials have the span (0, 0).
        head = 0
        while self.spec.add_special_tokens and head < len(ids) and tuple(offsets[head]) == (0, 0):
            head += 1
        n_prompt = head
        while n_prompt < len(ids) and tuple(offsets[n_prompt]) != (0, 0) and offsets[n_prompt][0] < resp_start:
            n_prompt += 1
        n_resp = n_prompt
        while n_resp < len(ids) and tuple(offsets[n_resp]) != (0, 0) and offsets[n_resp][0] < resp_end:
            n_resp += 1
        head_ids, prompt_ids, resp_ids, tail_ids = ids[:head], ids[head:n_prompt], ids[n_prompt:n_resp], ids[n_resp:]
        keep_prompt = self.spec.max_length - len(head_ids) - len(resp_ids) - len(tail_ids)
        if keep_prompt >= 0:
            return head_ids + prompt_ids[len(prompt_ids) - keep_prompt :] + resp_ids + tail_ids
        keep_resp = max(self.spec.max_length - len(head_ids) - len(tail_ids), 1)
        return (head_ids + resp_ids[:keep_resp] + tail_ids)[-self.spec.max_length :]

    def untruncated_length(self, prompt: Prompt, response: str) -> int:
        """Tokens the text would have before any cut to ``max_length`` (more than ``max_length``: it is cut)."""
        prefix, response, suffix = self.render(prompt, response)
        if self.spec.template == "pair":
            return len(self.tok(prefix, response)["input_ids"])
        return len(self.tok(prefix + response + suffix, add_special_tokens=self.spec.add_special_tokens)["input_ids"])

    def _truncate_left(self, text: str) -> list[int]:
        """The text's ids cut on the left to ``max_length``, as ``tokenizer(text, truncation=True, max_length=L)``
        with ``truncation_side="left"`` cuts them: the tokenizer's added special tokens stay. Without added
        special tokens, a BOS that the template writes first stays too (reward-bench's tokenizer adds its own
        BOS there and the template's is the one cut)."""
        limit = self.spec.max_length
        if self.spec.add_special_tokens:
            side = self.tok.truncation_side
            self.tok.truncation_side = "left"
            try:
                return list(self.tok(text, add_special_tokens=True, truncation=True, max_length=limit)["input_ids"])
            finally:
                self.tok.truncation_side = side
        ids = list(self.tok(text, add_special_tokens=False)["input_ids"])
        bos = self.tok.bos_token_id
        if bos is not None and ids and ids[0] == bos and limit > 1:
            return [bos] + ids[len(ids) - (limit - 1) :]
        return ids[len(ids) - limit :]

    def _encode_pair(self, prompt_text: str, response: str) -> dict:
        truncation = "only_first" if self.spec.truncation == "prompt_left" else "longest_first"
        side = self.tok.truncation_side
        self.tok.truncation_side = "left" if self.spec.truncation in ("prompt_left", "left") else "right"
        try:
            enc = self.tok(prompt_text, response, truncation=truncation, max_length=self.spec.max_length)
        except Exception:  # response alone longer than max_length
            self.tok.truncation_side = "right"
            enc = self.tok(prompt_text, response, truncation="longest_first", max_length=self.spec.max_length)
        finally:
            self.tok.truncation_side = side
        out = {"input_ids": enc["input_ids"]}
        if "token_type_ids" in enc:
            out["token_type_ids"] = enc["token_type_ids"]
        return out


def _choose_pad(tokenizer, chat_template: str | None) -> tuple[str, bool]:
    """Pick a pad token that never occurs in rendered text. Returns (token, whether it must be added)."""
    pad = tokenizer.pad_token
    used = {tokenizer.eos_token, tokenizer.bos_token}
    in_template = lambda t: chat_template is not None and t in chat_template
    if pad is not None and pad not in used and not in_template(pad):
        return pad, False
    vocab = tokenizer.get_vocab()
    for cand in PAD_CANDIDATES + ((tokenizer.unk_token,) if tokenizer.unk_token else ()):
        if cand in vocab and cand not in used and not in_template(cand):
            return cand, False
    return "<|pad|>", True


def package_versions() -> dict:
    """The versions recorded in ``rewardlab.json`` (a subset of :func:`rewardlab.core.provenance.library_versions`)."""
    versions = library_versions()
    return {k: versions[k] for k in ("rewardlab", "torch", "transformers", "accelerate", "python")}


def normalized(stats: dict | None, rewards: list, source: str = SPEC_FILE) -> list:
    """``(r − mean) / std`` with a model's ``normalization`` statistics, checked first
    (:func:`rewardlab.core.normstats.checked_normalization`: a negative, zero, non-finite or rounding-noise std is an
    error naming ``source``, never a silent "normalised" answer); in rows ``[score, part, …]`` (a multi-objective
    server row) only the score changes."""
    return normalize_with(stats, rewards, source)


class RewardModel(torch.nn.Module, Scorer):
    """A sequence-classification model with one output, its tokenizer and its :class:`ScoringSpec`
    (scorer kind ``reward-model``: scalar, pointwise, packs where the packed forward covers it)."""

    kind = "reward-model"
    capabilities = Capabilities(output="scalar", pointwise=True, packs=True)

    def __init__(
        self,
        model,
        tokenizer,
        spec: ScoringSpec,
        *,
        packing: bool = False,
        modified_files: list[str] | None = None,
    ):
        super().__init__()
        self.model, self.tokenizer, self.spec = model, tokenizer, spec
        # scoring files loaded despite a hash mismatch (--trust-modified)
        self.modified_files: list[str] = list(modified_files or [])
        self.encoder = TextEncoder(tokenizer, spec)
        # what score(packing=None) does: the --packing load option, decided when the scorer is built
        self.packing = packing
        self._packing_support: tuple | None = None  # (key, (mode, why)), see packing_mode()

    def packing_mode(self) -> str | None:
        """``"causal"`` / ``"encoder"`` when the packed forward covers this model, else None (:func:`packing_support`).
        Decided once per model: kept until the wrapped model or its attention implementation changes."""
        return self._packing_decision()[0]

    def _packing_decision(self) -> tuple[str | None, str]:
        key = (id(self.model), getattr(self.model.config, "_attn_implementation", None))
        if self._packing_support is None or self._packing_support[0] != key:
            self._packing_support = (key, packing_support(self.model, self.spec))
        return self._packing_support[1]

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_backbone(
        cls,
        backbone: str,
        *,
        max_length: int = 512,
        padding_side: str | None = None,
        truncation: str = "prompt_left",
        use_chat_template: bool = True,
        torch_dtype: torch.dtype = torch.float32,
        seed: int | None = None,
        attn_implementation: str | None = None,
        load_kwargs: dict | None = None,
    ) -> "RewardModel":
        """Put a fresh scalar head on any causal-LM or encoder checkpoint (local dir, embedded name or hub id);
        ``attn_implementation``: transformers' attention kernel (eager, sdpa, flash_attention_2; None: its choice);
        ``load_kwargs``: more ``from_pretrained`` keywords (``train --quantize``: ``quantization_config``,
        ``device_map``; :func:`rewardlab.core.device.quantized_loading`)."""
        path = resolve_backbone(backbone)
        tok = AutoTokenizer.from_pretrained(path)
        config = AutoConfig.from_pretrained(path)
        is_encoder = not getattr(config, "is_decoder", False) and config.model_type in ENCODER_TYPES
        chat = tok.chat_template if (use_chat_template and getattr(tok, "chat_template", None)) else None
        if is_encoder:
            pad, add = tok.pad_token, False
            template, pooling, side = "pair", "cls", "right"
            if padding_side == "left":
                raise ModelContractError("encoders read [CLS] at position 0 and must be right-padded")
        else:
            pad, add = _choose_pad(tok, chat)
            template, pooling, side = ("chat" if chat else "plain"), "last_token", (padding_side or "right")
        if add:
            tok.add_special_tokens({"pad_token": pad})
        tok.pad_token = pad
        config.num_labels = 1
        config.pad_token_id = tok.pad_token_id
        for attr in (
            "hidden_dropout_prob",
            "attention_probs_dropout_prob",
            "attention_dropout",
            "dropout",
            "resid_pdrop",
            "embd_pdrop",
            "attn_pdrop",
            "classifier_dropout",
        ):
            if getattr(config, attr, None):  # dropout off: deterministic training and scoring
                setattr(config, attr, 0.0)
        if seed is not None:
            torch.manual_seed(seed)  # the new head's initialisation
        attention = {"attn_implementation": attn_implementation} if attn_implementation else {}
        model = AutoModelForSequenceClassification.from_pretrained(
            path, config=config, dtype=torch_dtype, **attention, **(load_kwargs or {})
        )
        if add:
            model.resize_token_embeddings(len(tok))
        model.config.pad_token_id = tok.pad_token_id
        probe = tok("a", add_special_tokens=True)["input_ids"]
        add_special = not (
            chat and tok.bos_token and chat.lstrip().startswith("{{ bos_token") and tok.bos_token_id in probe
        )
        spec = ScoringSpec(
            backbone=backbone,
            model_type=config.model_type,
            pooling=pooling,
            template=template,
            chat_template=chat,
            add_special_tokens=add_special,
            bos_token=tok.bos_token,
            eos_token=tok.eos_token,
            pad_token=pad,
            pad_token_id=tok.pad_token_id,
            padding_side=side,
            max_length=max_length,
            truncation=truncation,
            versions=package_versions(),
        )
        return cls(model, tok, spec)

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        expect: dict | None = None,
        torch_dtype=torch.float32,
        trust_modified: bool = False,
        packing: bool = False,
    ) -> "RewardModel":
        """Load a saved directory; ``expect`` (field -> value) must match ``rewardlab.json`` or loading refuses.

        The scoring files must match the hashes in ``rewardlab.json`` (:mod:`rewardlab.core.integrity`); with
        ``trust_modified`` a mismatch is warned about and kept in ``rm.modified_files`` for the reports.
        ``packing``: what :meth:`score` does when its caller does not say (``packing=None``), e.g. evaluation."""
        path = Path(path)
        spec_path = path / SPEC_FILE
        if not spec_path.exists():
            raise ModelContractError(
                f"{path} has no {SPEC_FILE}: not a rewardlab model directory "
                "(use `rewardlab train --backbone` to start from a plain checkpoint)"
            )
        warn = lambda m: print(m, file=sys.stderr)  # noqa: E731
        raw, sealed = read_rewardlab_json(path, trust_modified=trust_modified, warn=warn)
        spec = ScoringSpec.from_json(raw, str(spec_path))
        if spec.format_version > SPEC_VERSION:
            raise ModelContractError(f"{spec_path}: format_version {spec.format_version} is newer than this rewardlab")
        modified = sealed + verify_model_dir(path, spec.file_hashes, trust_modified=trust_modified, warn=warn)
        check_spec_values(spec, str(spec_path))
        try:
            tok = AutoTokenizer.from_pretrained(path)
        except (OSError, ValueError) as e:
            raise ModelContractError(f"{path}: cannot load the tokenizer: {str(e).splitlines()[0]}") from None
        if (path / "adapter_config.json").exists():  # a LoRA model (rewardlab.models.lora): base backbone + adapter
            model = load_adapter_model(path, spec, tok, torch_dtype)
        else:
            model = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch_dtype, **pretrained_kwargs())
        check_weights(model.state_dict().items(), f"{path}: refusing to load")
        problems = []
        if tok.pad_token != spec.pad_token or tok.pad_token_id != spec.pad_token_id:
            problems.append(
                f"tokenizer pad token {tok.pad_token!r}/{tok.pad_token_id} != {spec.pad_token!r}/{spec.pad_token_id}"
            )
        if spec.pooling == "last_token" and model.config.pad_token_id != spec.pad_token_id:
            problems.append(f"config.pad_token_id {model.config.pad_token_id} != {spec.pad_token_id}")
        if model.config.num_labels != 1:
            problems.append(
                f"num_labels is {model.config.num_labels}, a reward model has 1"
                + (
                    " (a multi-objective model: load it with rewardlab.multiobjective.AttributeRewardModel)"
                    if spec.multiobjective
                    else ""
                )
            )
        if spec.template == "chat" and tok.chat_template != spec.chat_template:
            problems.append("the tokenizer's chat template differs from the one the model was trained with")
        for key, value in (expect or {}).items():
            if value is not None and getattr(spec, key) != value:
                problems.append(f"{key}: model was trained with {getattr(spec, key)!r}, asked for {value!r}")
        if problems:
            raise ModelContractError(f"{spec_path} does not match: " + "; ".join(problems))
        rm = cls(model, tok, spec, packing=packing, modified_files=modified)
        rm.spec_source = str(spec_path)
        return rm

    def save(self, path: str | Path, state_dict: dict | None = None) -> None:
        """Write the directory; ``state_dict`` (keys of ``self.model``) overrides the weights, e.g. the full
        weights gathered from a ZeRO-3/FSDP-sharded model."""
        path = Path(path)
        check_weights((state_dict or self.model.state_dict()).items(), f"refusing to write {path}")
        path.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(path, safe_serialization=True, state_dict=state_dict)
        self.tokenizer.save_pretrained(path)
        write_spec(path, self.spec.to_json())
        readable_like_the_rest(path)

    # ---- forward and scoring --------------------------------------------------------------------
    def forward(self, input_ids, attention_mask=None, token_type_ids=None, **packed) -> torch.Tensor:
        """Rewards ``(B,)`` for a padded batch ``(B, T)``, or ``(N,)`` for packed inputs
        (``position_ids`` + ``packed_*`` from :mod:`rewardlab.models.packing`; then ``attention_mask`` is not used)."""
        if packed:
            mode, why = self._packing_decision()
            if mode is None:
                raise ModelContractError(f"packed inputs given but packing does not cover this model: {why}")
            return packed_forward(self.model, mode, input_ids, token_type_ids=token_type_ids, **packed)
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        if self.spec.pooling == "last_token":
            kwargs["position_ids"] = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        return self.model(**kwargs).logits[:, 0].float()

    def collate(self, features: list[dict], padding_side: str | None = None) -> dict[str, torch.Tensor]:
        return pad_batch(features, self.spec.pad_token_id, padding_side or self.spec.padding_side)

    @torch.no_grad()
    def score_items(self, items: list, opts: ScoreOptions, unsafe=None) -> list[float]:
        """Score (prompt, response) pairs (:meth:`Scorer.score`). Batches are length-sorted to cut padding; order
        is preserved.

        ``opts.packing=True``: padding-free rows (a row per prompt group, or groups packed into rows of
        ``opts.token_budget`` tokens), each prompt's tokens computed once for all its responses
        (:func:`rewardlab.models.packing.score_packed`; models it does not cover take this padded path).
        ``None``: what the model was built with (``RewardModel(..., packing=)`` / ``load(..., packing=)``, the
        ``--packing`` load option; default False), so callers that only pass ``batch_size`` (evaluation, the
        benchmarks, the probes) score the way the command asked."""
        packing = self.packing if opts.packing is None else opts.packing
        was_training = self.training
        self.eval()
        if packing and self.packing_mode() is not None:
            try:
                return score_packed(self, items, opts.token_budget)
            finally:
                self.train(was_training)
        device = next(self.model.parameters()).device
        feats = [self.encoder.encode(p, r) for p, r in track(items, "tokenize", unit="text")]
        order = sorted(range(len(feats)), key=lambda i: len(feats[i]["input_ids"]))
        out = [0.0] * len(feats)
        with progress_bar(len(order), "score", unit="text") as bar:
            for start in range(0, len(order), opts.batch_size):
                idx = order[start : start + opts.batch_size]
                batch = {k: v.to(device) for k, v in self.collate([feats[i] for i in idx], opts.padding_side).items()}
                for i, r in zip(idx, self(**batch).tolist()):
                    out[i] = r
                bar.update(len(idx))
        self.train(was_training)
        return out

    spec_source = SPEC_FILE  # where the spec was read (load): what a refusal of its statistics names

    def normalize(self, rewards: list[float]) -> list[float]:
        return normalized(self.spec.normalization, rewards, self.spec_source)

    def spec_json(self) -> dict:
        return self.spec.to_json()

    def text_encoder(self) -> "TextEncoder":
        return self.encoder

    # ---- the scorer kind (rewardlab.core.kinds) ----------------------------------------------
    @classmethod
    def open(cls, path: str, request: LoadRequest) -> "RewardModel":
        kw = {} if request.torch_dtype is None else {"torch_dtype": request.torch_dtype}
        return cls.load(
            path, expect=request.expect, trust_modified=request.trust_modified, packing=request.packing, **kw
        )

    @classmethod
    def inspect(cls, path: str, options=None) -> str:
        spec = ScoringSpec.from_json(parse_rewardlab_json(path), str(Path(path) / SPEC_FILE))
        lines = [f"scoring contract for {path}: rewardlab model, fixed by its {SPEC_FILE} (checked on load)"]
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


ENCODER_TYPES = {
    "bert",
    "roberta",
    "deberta",
    "deberta-v2",
    "distilbert",
    "electra",
    "xlm-roberta",
    "mpnet",
    "modernbert",
    "albert",
}
