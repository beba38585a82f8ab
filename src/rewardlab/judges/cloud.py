"""Critique-out-loud reward models (Ankner et al., "Critique-out-Loud Reward Models").

A :class:`CloudRewardModel` is one causal LM with a small scalar head. To score a response it first *writes a
critique* of it (generation with its own LM head), then the scalar head reads the whole text — judge prompt
(question + response) + critique — at its last token.

Training (:func:`train_cloud`): given critiques for both responses of each training pair (from a teacher:
any judge backend — a strong model behind an HTTP endpoint, or the base model itself), minimise

    loss = BT(r_chosen, r_rejected) + λ · LM(critique tokens | prompt + response)

``BT`` is the scalar trainer's Bradley-Terry loss (:func:`rewardlab.training.losses.batch_loss` over
:func:`rewardlab.training.collate.collate_pairs`): ``−log σ(r_w − r_l)`` over every strict pair of a record's ranking, tied
responses counting for neither, each pair times its record's weight, divided by the number of strict pairs.
``LM`` is the mean next-token cross-entropy over every token after the judge prompt (the prompt is masked): the
critique's tokens **and** the end-of-turn tokens the chat template writes after it (or the EOS a plain tokenizer
gets), so the model learns to write the teacher's critiques and to end them, while its head learns to read them.
``λ = lm_coef``.

A teacher critique longer than ``max_critique_tokens`` is cut there and ends with the marker ``" [...]"``
(:func:`rewardlab.judges.backends.Backend.truncate`); the LM term trains on the marker too, so a model trained on
cut critiques learns to write it. Give the teacher ``max_new_tokens`` at most ``max_critique_tokens`` (as
``train-judge`` does) to avoid cut critiques.

Saved as a plain causal-LM directory plus ``reward_head.safetensors`` and ``cloud.json`` (template, critique
length, base).
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer

from rewardlab.core.atomic import readable_like_the_rest
from rewardlab.core.device import Placement
from rewardlab.core.errors import RewardlabError
from rewardlab.data.record import Comparison, per_record
from rewardlab.judges.backends import Backend, Sampling
from rewardlab.judges.hf import HFBackend, load_causal_lm, placement_for
from rewardlab.judges.judge import Judge, _agreement_from_rewards, _reasons
from rewardlab.judges.templates import JudgeTemplate, load_template, render_question
from rewardlab.models.backbones import resolve_backbone
from rewardlab.training.collate import PairBatch, collate_pairs
from rewardlab.training.losses import batch_loss, count_units
from rewardlab.training.recipe import Checkpointing, LoopOptions, LoopResult, MetricsLog, StepPlan, run_steps

META_FILE = "cloud.json"
HEAD_FILE = "reward_head.safetensors"


class CloudRewardModel(torch.nn.Module):
    def __init__(
        self,
        lm,
        tokenizer,
        template: JudgeTemplate | str = "critique",
        head: torch.nn.Linear | None = None,
        max_critique_tokens: int = 128,
        base: str = "",
        batch_size: int = 8,
    ):
        super().__init__()
        self.lm, self.tok = lm, tokenizer
        self.template = load_template(template)
        if self.template.kind != "critique":
            raise RewardlabError(f"template {self.template.name!r} is a {self.template.kind} template, not critique")
        hidden = lm.config.hidden_size if hasattr(lm.config, "hidden_size") else lm.config.get_text_config().hidden_size
        self.head = head if head is not None else torch.nn.Linear(hidden, 1)
        self.max_critique_tokens, self.base = max_critique_tokens, base
        self._backend = HFBackend(model=lm, tokenizer=tokenizer, batch_size=batch_size)
        self.head.to(next(lm.parameters()).device)

    # ---- construction / persistence -------------------------------------------------------------
    @classmethod
    def from_base(
        cls,
        base: str = "smollm2-135m",
        *,
        template: str = "critique",
        seed: int = 0,
        device: str | None = None,
        max_critique_tokens: int = 128,
        batch_size: int = 8,
        placement: Placement | None = None,
    ) -> "CloudRewardModel":
        """``batch_size``: texts per forward when the model writes and scores critiques; ``placement``: where the
        float32 weights load (else ``device``, None: auto)."""
        path = resolve_backbone(base)
        tok = AutoTokenizer.from_pretrained(path)
        lm = load_causal_lm(path, placement or placement_for(path, device, torch.float32))
        torch.manual_seed(seed)
        hidden = lm.config.hidden_size
        head = torch.nn.Linear(hidden, 1)
        torch.nn.init.normal_(head.weight, std=1.0 / math.sqrt(hidden + 1))
        torch.nn.init.zeros_(head.bias)
        return cls(lm, tok, template, head, max_critique_tokens, base, batch_size)

    @classmethod
    def load(
        cls, path: str | Path, device: str | None = None, batch_size: int = 8, placement: Placement | None = None
    ) -> "CloudRewardModel":
        """A saved critique-out-loud model; ``placement`` (``judge``'s ``--device`` / ``--dtype`` / ...) where its
        language model loads (else ``device`` in float32); the scalar head follows it onto the device."""
        path = Path(path)
        if not (path / META_FILE).exists():
            raise RewardlabError(
                f"{path} has no {META_FILE}: not a critique-out-loud model "
                "(train one with `rewardlab train-judge --method cloud`)"
            )
        meta = json.loads((path / META_FILE).read_text())
        tok = AutoTokenizer.from_pretrained(path)
        lm = load_causal_lm(str(path), placement or placement_for(str(path), device, torch.float32))
        state = load_file(str(path / HEAD_FILE))
        head = torch.nn.Linear(state["weight"].shape[1], 1)
        head.load_state_dict(state)
        return cls(
            lm,
            tok,
            JudgeTemplate(**{**meta["template"], "candidates": tuple(meta["template"]["candidates"])}),
            head,
            meta["max_critique_tokens"],
            meta.get("base", ""),
            batch_size,
        )

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.lm.save_pretrained(path, safe_serialization=True)
        self.tok.save_pretrained(path)
        save_file({k: v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()}, str(path / HEAD_FILE))
        (path / META_FILE).write_text(
            json.dumps(
                {
                    "template": self.template.to_json(),
                    "base": self.base,
                    "max_critique_tokens": self.max_critique_tokens,
                },
                indent=2,
            )
            + "\n"
        )
        readable_like_the_rest(path)

    @property
    def backend(self):
        return self._backend

    # ---- text → ids ------------------------------------------------------------------------------
    def encode(self, messages: list[dict], critique: str) -> tuple[list[int], int]:
        """Ids of judge prompt + critique (+ the template's end of turn), and where the critique starts."""
        critique = self._backend.truncate(critique, self.max_critique_tokens, side="right")
        prefix_ids = self._backend.prompt_ids(messages)
        if self._backend.chat:
            full = self.tok.apply_chat_template(
                list(messages) + [{"role": "assistant", "content": critique}], tokenize=False
            )
            ids = self.tok(full, add_special_tokens=False)["input_ids"]
        else:
            ids = self.tok(
                self._backend.render(messages) + " " + critique + (self.tok.eos_token or ""), add_special_tokens=True
            )["input_ids"]
        if ids[: len(prefix_ids)] != prefix_ids:  # tokenisation merged across the boundary: fall back to concatenation
            tail = self.tok(critique + (self.tok.eos_token or ""), add_special_tokens=False)["input_ids"]
            ids = prefix_ids + tail
        return ids, len(prefix_ids)

    def forward(self, input_ids, attention_mask):
        """``(rewards (B,), logits (B, T, V))`` for right-padded inputs; the head reads the last real token."""
        pos = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        out = self.lm(input_ids=input_ids, attention_mask=attention_mask, position_ids=pos, output_hidden_states=True)
        h = out.hidden_states[-1]
        last = attention_mask.sum(-1) - 1
        rewards = self.head(h[torch.arange(h.shape[0], device=h.device), last].float()).squeeze(-1)
        return rewards, out.logits

    def _pad(self, seqs: Sequence[list[int]]) -> dict[str, torch.Tensor]:
        device = next(self.lm.parameters()).device
        width = max(len(s) for s in seqs)
        pad = self._backend.pad_id
        ids = torch.tensor([list(s) + [pad] * (width - len(s)) for s in seqs], dtype=torch.long, device=device)
        mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs], dtype=torch.long, device=device)
        return {"input_ids": ids, "attention_mask": mask}

    @torch.no_grad()
    def score(self, items: Sequence[tuple[list[dict], str]], batch_size: int = 8) -> list[float]:
        """Rewards of ``(judge messages, critique)`` items."""
        was = self.training
        self.eval()
        feats = [self.encode(m, c)[0] for m, c in items]
        order = sorted(range(len(feats)), key=lambda i: len(feats[i]))
        out = [0.0] * len(feats)
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            r, _ = self(**self._pad([feats[i] for i in idx]))
            for i, v in zip(idx, r.tolist()):
                out[i] = v
        self.train(was)
        return out


def critique_prompts(
    template: JudgeTemplate,
    backend: Backend,
    records: Sequence[Comparison],
    max_question_tokens: int | None = None,
    max_answer_tokens: int | None = None,
) -> list[list[dict]]:
    """One critique prompt per response, records in order."""
    out = []
    for rec in records:
        q = backend.truncate(render_question(rec.prompt), max_question_tokens, side="left")
        for resp in rec.responses:
            out.append(template.messages(question=q, answer=backend.truncate(resp, max_answer_tokens, side="right")))
    return out


def generate_critiques(
    teacher: Backend,
    template: JudgeTemplate,
    records: Sequence[Comparison],
    sampling: Sampling,
    max_question_tokens: int | None = None,
    max_answer_tokens: int | None = None,
) -> list[list[str]]:
    """``critiques[r][k]``: the teacher's critique of response k of record r (``""`` when the request failed)."""
    prompts = critique_prompts(template, teacher, records, max_question_tokens, max_answer_tokens)
    texts = teacher.generate(prompts, sampling, n=1)
    return per_record(records, [t[0] or "" for t in texts])


def cloud_features(
    model: CloudRewardModel,
    records: Sequence[Comparison],
    critiques: Sequence[Sequence[str]],
    max_question_tokens: int | None = None,
    max_answer_tokens: int | None = None,
) -> list[list[dict]]:
    """``features[b][k]``: ``{"input_ids": judge prompt + critique of response k, "critique_start": where the
    critique starts}`` for record b (what :func:`rewardlab.training.collate.collate_pairs` stacks)."""
    if len(critiques) != len(records):
        raise ValueError(f"{len(critiques)} critique rows for {len(records)} records")
    prompts = critique_prompts(model.template, model.backend, records, max_question_tokens, max_answer_tokens)
    feats, i = [], 0
    for rec, crit in zip(records, critiques):
        row = []
        for k in range(rec.k):
            ids, start = model.encode(prompts[i + k], crit[k])
            row.append({"input_ids": ids, "critique_start": start})
        feats.append(row)
        i += rec.k
    return feats


def cloud_loss(
    rewards: torch.Tensor,
    logits: torch.Tensor,
    batch: PairBatch,
    starts: Sequence[int],
    n_units: int,
    lm_coef: float,
    loss: str = "bt",
    n_lm_tokens: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(loss, bt, lm)`` of one batch: ``loss = bt + lm_coef · lm``.

    ``bt``: the preference ``loss`` of the registry (:func:`rewardlab.training.losses.batch_loss`: every strict pair of a
    ranking, ties as the loss treats them, each record's weight) summed and divided by ``n_units``
    (:func:`rewardlab.training.losses.count_units` of the step's records), as the scalar trainer does; ``lm``: the
    next-token cross-entropy over the critique tokens (and the end of turn after them) of every row, summed and
    divided by ``n_lm_tokens`` (default: this batch's count, i.e. the mean; a process's share of a step passes the
    step's count, :func:`lm_token_count`, so the processes' parts add up to the step's mean).
    rewards ``(N,)``, logits ``(N, T, V)``, ``starts[n]``: the first critique token of row n.
    """
    bt = batch_loss(loss, rewards, batch).sum() / max(n_units, 1)
    ids, mask = batch.inputs["input_ids"], batch.inputs["attention_mask"]
    labels = ids.clone()
    labels[mask == 0] = -100
    for row, start in enumerate(starts):
        labels[row, :start] = -100
    targets = labels[:, 1:].reshape(-1)
    here = int((targets != -100).sum())
    flat = logits[:, :-1].reshape(-1, logits.shape[-1]).float()
    if not here:  # no critique tokens in the batch: no LM term
        lm = torch.zeros((), device=rewards.device)
    elif n_lm_tokens is None or n_lm_tokens == here:  # the mean (bit for bit what one process computed before)
        lm = F.cross_entropy(flat, targets, ignore_index=-100)
    else:
        lm = F.cross_entropy(flat, targets, ignore_index=-100, reduction="sum") / n_lm_tokens
    return bt + lm_coef * lm, bt, lm


def lm_token_count(rows: Sequence[Sequence[dict]]) -> int:
    """The tokens :func:`cloud_loss`'s LM term predicts for these records' features: per row, every token from
    the critique's start on (the first token of a row is never predicted)."""
    return sum(len(f["input_ids"]) - max(f["critique_start"], 1) for row in rows for f in row)


def train_cloud(
    model: CloudRewardModel,
    records: Sequence[Comparison],
    critiques: Sequence[Sequence[str]],
    *,
    opts: LoopOptions,
    lm_coef: float = 0.5,
    epochs: int = 1,
    batch_size: int = 4,
    seed: int = 0,
    max_question_tokens: int | None = None,
    max_answer_tokens: int | None = None,
    loss: str = "bt",
    ckpt: Checkpointing | None = None,
    accelerator=None,
    metrics: MetricsLog | None = None,
    log=None,
) -> LoopResult:
    """Train the LM and the head on ``records`` with their ``critiques`` (:func:`cloud_loss`) on the training core
    (:func:`rewardlab.training.recipe.run_steps`: schedule, clipping, the non-finite guard, checkpoints, ``--resume``,
    ``torchrun``).

    A step takes ``batch_size`` records in a seeded order per epoch; a process's share of them is collated as the
    scalar trainer's (:func:`rewardlab.training.collate.collate_pairs`, right-padded) and its loss divided by the whole
    step's BT units and LM tokens, so the processes' gradients add up to the step's."""
    feats = cloud_features(model, records, critiques, max_question_tokens, max_answer_tokens)
    device = next(model.lm.parameters()).device
    rng, orders = random.Random(seed), []
    for _ in range(epochs):
        order = list(range(len(records)))
        rng.shuffle(order)
        orders.append(order)

    def step_loss(share: list[int], items: list[int]) -> dict[str, float]:
        if not share:
            return {"loss": 0.0, "bt": 0.0, "lm": 0.0, "won": 0.0, "pairs": 0.0}
        chunk = [records[r] for r in share]
        rows = [feats[r] for r in share]
        batch = collate_pairs(chunk, rows, model.backend.pad_id, "right").to(device)
        starts = [f["critique_start"] for row in rows for f in row]
        rewards, logits = model(**batch.inputs)
        total, bt, lm = cloud_loss(
            rewards,
            logits,
            batch,
            starts,
            count_units(loss, [records[r] for r in items]),  # the whole step's normalisers
            lm_coef,
            loss,
            n_lm_tokens=lm_token_count([feats[r] for r in items]),
        )
        total.backward()
        won = (rewards[batch.chosen_idx] > rewards[batch.rejected_idx]).float()
        return {
            "loss": total.item(),
            "bt": bt.item(),
            "lm": lm.item(),
            "won": float(won.sum()),
            "pairs": float(won.numel()),
        }

    def row(sums: dict, items: list[int]) -> dict:
        return {
            "loss": sums["loss"],
            "bt_loss": sums["bt"],
            "lm_loss": sums["lm"],
            "accuracy": sums["won"] / sums["pairs"] if sums["pairs"] else None,
        }

    return run_steps(
        StepPlan(orders, batch_size),
        step_loss,
        row,
        module=model,
        trainable=[(n, p) for n, p in model.named_parameters() if p.requires_grad],
        opts=opts,
        ckpt=ckpt,
        accelerator=accelerator,
        metrics=metrics,
        on_row=None if log is None else (lambda rec, last: log(rec, force=last)),
    )


class CritiqueJudge(Judge):
    """Critique-out-loud scorer: the model critiques each response, then its head scores prompt + response + critique."""

    mode = "critique"

    def __init__(
        self,
        model: CloudRewardModel,
        *,
        sampling: Sampling | None = None,
        max_question_tokens: int | None = None,
        max_answer_tokens: int | None = None,
        name: str | None = None,
    ):
        self.model = model
        super().__init__(
            model.backend,
            model.template,
            sampling=sampling or Sampling(max_new_tokens=model.max_critique_tokens),
            max_question_tokens=max_question_tokens,
            max_answer_tokens=max_answer_tokens,
            name=name,
        )

    def judge_records(self, records: Sequence[Comparison]) -> list[dict]:
        prompts = critique_prompts(
            self.template, self.backend, records, self.max_question_tokens, self.max_answer_tokens
        )
        texts = [t[0] or "" for t in self.backend.generate(prompts, self.sampling, n=1)]
        rewards = self.model.score(list(zip(prompts, texts)), batch_size=self.backend.batch_size)
        rows, i = [], 0
        for r, rec in enumerate(records):
            rows.append(self._row(r, rec, rewards[i : i + rec.k], critiques=texts[i : i + rec.k]))
            i += rec.k
        return rows

    def summarize(self, records, rows) -> dict:
        crit = [c for row in rows for c in row["critiques"]]
        return {
            "judge": self.describe(),
            "n_records": len(rows),
            "n_outputs": len(crit),
            "n_unparseable_outputs": sum(1 for c in crit if not c.strip()),
            "unparseable_reasons": _reasons(["empty critique" for c in crit if not c.strip()]),
            "mean_critique_chars": sum(len(c) for c in crit) / len(crit) if crit else None,
            "agreement_with_chosen": _agreement_from_rewards(records, [r["rewards"] for r in rows]),
        }
