"""A verifier's per-token and per-step outputs as vLLM's ``token_classify`` gives them (what ``rewardlab serve``'s
``POST /pooling`` answers; :mod:`rewardlab.serve.verifier` is the HTTP side).

An input is one of:

* a **text** (``prompt=None``): tokenized as it is, with the tokenizer's own special tokens (vLLM's default
  ``add_special_tokens``), per-token rows only: the server cannot tell the prompt's newlines from step markers;
* a **solution** ``(prompt, [step, ...])``: rendered with the model's recorded step format
  (:class:`~rewardlab.verifiers.steps.StepFormat`: prompt, separator, each step followed by the marker) and
  tokenized as :meth:`~rewardlab.verifiers.model.VerifierModel.encode` does for training and scoring; per-token
  rows over the whole rendered text plus the rows at each step's marker, the step scores (P(correct), equal to
  :meth:`~rewardlab.verifiers.model.VerifierModel.score_steps`'s) and their aggregate, named;
* a **response** ``(prompt, "text")``: split into steps one per non-empty line (the model's ``step_rule``), then
  as a solution (how ``/v1/score`` and ``/get_reward`` read a response).

Per-token rows are vLLM's ``PoolerClassify`` activation over the head's logits: σ for one output, softmax over
the classes for two or three; ``activation=False`` gives the raw logits. Nothing is truncated: an input longer
than the model's ``max_length`` is refused (:class:`~rewardlab.core.errors.ModelContractError`) instead of being
scored on a part of its steps.
"""

from __future__ import annotations

import torch

from rewardlab.core.errors import ModelContractError, RewardlabError
from rewardlab.verifiers.records import STEP_RULE, prompt_text, split_lines


def features(vm, prompt, response) -> dict:
    """One input's token ids and where its steps end (see the module docstring for the three forms):
    ``{"input_ids": [...], "steps": [marker token index, ...] | None, "completion": [start, end], "text": str,
    "step_rule": "lines" | "given"}`` (a text: ``steps`` None, no step rule).
    ModelContractError (a one-line reason) for an input that cannot be scored whole."""
    limit = vm.spec.max_length
    if prompt is None:  # a text, as vLLM's /pooling reads it
        ids = vm.tok(response, add_special_tokens=True)["input_ids"]
        if len(ids) > limit:
            raise ModelContractError(f"the text has {len(ids)} tokens; the model's max_length is {limit}")
        return {"input_ids": ids, "steps": None, "completion": [0, len(ids)], "text": response, "step_rule": None}
    steps = split_lines(response) if isinstance(response, str) else list(response)
    if not steps:
        raise ModelContractError("the response has no non-empty line (no step to score)")
    if not all(isinstance(s, str) and s.strip() for s in steps):
        raise ModelContractError("every step must be a non-empty text")
    try:
        e = vm.encode(prompt, steps)
    except RewardlabError as err:  # a marker that merges with a step's text: said, never scored elsewhere
        raise ModelContractError(str(err)) from None
    cut = [k for k, p in enumerate(e.step_positions) if p is None]
    if cut:
        raise ModelContractError(
            f"steps {cut[0] + 1}-{len(steps)} of {len(steps)} lie beyond the model's max_length {limit} "
            "(an aggregate over the first steps only would look like a whole solution's score)"
        )
    return {
        "input_ids": e.ids,
        "steps": e.step_positions,
        "completion": [e.completion_start, e.end],
        "text": vm.spec.fmt.render(prompt_text(prompt), steps)[0],
        "step_rule": STEP_RULE if isinstance(response, str) else "given",
    }


def activate(logits: torch.Tensor) -> torch.Tensor:
    """vLLM's ``PoolerClassify`` over [T, C] logits: σ for one output, softmax over the classes otherwise.

    >>> activate(torch.tensor([[0.0], [2.0]])).tolist()[0], activate(torch.tensor([[0.0, 0.0]])).tolist()
    ([0.5], [[0.5, 0.5]])
    """
    return torch.sigmoid(logits) if logits.shape[-1] == 1 else torch.softmax(logits, dim=-1)


@torch.no_grad()
def token_rows(vm, feats: list[dict], activation: bool, aggregation: str) -> list[dict]:
    """Per input (``feats`` from :func:`features`): ``data`` — one row of C values per token ([T, C], vLLM's
    ``token_classify`` shape) — and for a solution ``step_token_indices``, ``step_rows`` (the rows at the
    markers), ``step_scores`` (P(correct) at each marker by the model's head), ``score`` by ``aggregation``,
    ``aggregation``, ``step_rule`` and the rendered ``text``. One forward per input, unpadded (what plain
    transformers gives for that text)."""
    was = vm.training
    vm.eval()
    device = next(vm.model.parameters()).device
    out = []
    try:
        for f in feats:
            ids = torch.tensor([f["input_ids"]], device=device)
            logits = vm(ids, torch.ones_like(ids))  # [1, T] (one output) or [1, T, C]
            raw = (logits.unsqueeze(-1) if logits.dim() == 2 else logits)[0].cpu()
            if not torch.isfinite(raw).all():
                raise ModelContractError("the model gave a non-finite output (NaN or inf) for this input")
            rows = activate(raw) if activation else raw
            item = {"data": rows.tolist(), "tokens": len(f["input_ids"])}
            if f["steps"] is not None:
                probs = vm.correct_probability(logits)[0].cpu()
                start, end = f["completion"]
                scored = vm.read_scores(probs, f["steps"], start, end, aggregation)
                item.update(
                    text=f["text"],
                    step_token_indices=list(f["steps"]),
                    step_rows=[rows[p].tolist() for p in f["steps"]],
                    step_scores=scored["step_scores"],
                    score=scored["score"],
                    aggregation=aggregation,
                    step_rule=f["step_rule"],
                )
            out.append(item)
    finally:
        vm.train(was)
    return out
