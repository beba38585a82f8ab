"""Serving a verifier (an ORM or a PRM: a scorer kind whose ``capabilities.output`` is ``"steps"``, i.e. the
``verifier`` and ``token-classification-prm`` kinds of :mod:`rewardlab.core.kinds`).

``POST /pooling`` (vLLM's pooling API, ``task: "token_classify"``)
    request ``{"input": str | [str | {"prompt": str, "steps": [str, ...]}, ...], "task": "token_classify",
    "model": str?, "use_activation": bool?, "encoding_format": "float"?, "aggregation": str?}``; answer
    ``{"id": "pool-…", "object": "list", "created", "model", "data": [{"index", "object": "pooling", "data":
    [[p_0 … p_C-1] per token]}, …], "usage": {"prompt_tokens", "total_tokens", "completion_tokens": 0}}`` — vLLM's
    shape: one row per token of the text (σ for a one-output head, softmax over the classes otherwise; raw logits
    with ``"use_activation": false``). A ``{"prompt", "steps"}`` input (rewardlab's addition) is rendered with the
    model's recorded marker and prompt separator, and its item also carries ``text`` (the rendered text),
    ``step_token_indices``, ``step_rows`` (the rows at the step markers), ``step_scores`` (P(correct) per step,
    equal to the Python scorer's ``score_steps``), ``score`` and ``aggregation`` (the model's, or the request's).
    A plain text gets per-token rows only: its prompt's newlines cannot be told from step markers. Any other task
    is a 400 naming the one served; a model that is not a verifier answers 400 (it has no per-token output).
``POST /v1/score`` and ``POST /get_reward``
    each response (query) split into steps one per non-empty line, scored through the batching worker like every
    model (:class:`StepScorer`); the reward is the aggregate of the step scores under the model's recorded
    aggregation, named in ``/v1/score``'s ``aggregation`` and ``step_rule`` (and ``/get_reward``'s
    ``aggregation``).

Nothing is truncated: an input whose steps run past the model's ``max_length`` is a 422 (a minimum over the
first steps only would look like the whole solution's score). All tokenization runs on the server's one
tokenizer thread (:mod:`rewardlab.serve.tokenizing`); a ``/pooling`` forward runs one at a time beside the
batching worker.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import torch
from fastapi import HTTPException
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from starlette.concurrency import run_in_threadpool

from rewardlab.core.errors import ModelContractError, RewardlabError
from rewardlab.core.scorer import Capabilities
from rewardlab.serve.tokenizing import TokenizerStopped

# vLLM's pooling tasks (vllm.tasks.PoolingTask): the only one served here is token_classify
VLLM_TASKS = ("embed", "classify", "score", "token_embed", "token_classify", "encode")
SERVED_TASK = "token_classify"
VERIFIER_KINDS = "a verifier: kind verifier (rewardlab train-verifier) or token-classification-prm"


# ---- the aggregate through the batching worker ----------------------------------------------------
@dataclass
class _Spec:
    """What the server reads of a model's spec: a verifier has no reward statistics to normalise with."""

    backbone: str
    normalization: None = None


class StepScorer:
    """A verifier as the batcher runs it: ``encoder.encode(prompt, response)`` (steps one per line; the
    ``/pooling`` forms too, :meth:`~rewardlab.verifiers.model.VerifierModel.pooling_features`), ``collate``
    → padded tensors, ``self(**batch)`` → one aggregate per text [B], ``unpack`` → the rewards with their
    aggregation named."""

    def __init__(self, vm):
        self.vm, self.model, self.tokenizer, self.kind = vm, vm.model, vm.tokenizer, vm.kind
        self.encoder = self
        self.capabilities = Capabilities(output="steps", packing_refusal=vm.capabilities.packing_refusal)
        self.spec = _Spec(backbone=str(getattr(vm.model.config, "_name_or_path", "") or vm.kind))
        self.placement, self.modified_files, self.contract = vm.placement, vm.modified_files, None
        self.aggregation = vm.spec.aggregation

    def encode(self, prompt, response) -> dict:
        try:
            return self.vm.pooling_features(prompt, response)
        except ModelContractError as e:  # /v1/score and /get_reward answer 422 with this: say which response
            shown = response if isinstance(response, str) else " | ".join(response)
            raise ModelContractError(f"the text {shown[:40]!r}{'…' if len(shown) > 40 else ''}: {e}") from None

    def collate(self, feats: list[dict]) -> dict[str, torch.Tensor]:
        """``input_ids``/``attention_mask`` [B, T] (right-padded), ``steps`` [B, K] (marker indices, −1 pad),
        ``completion`` [B, 2] (first and one-past-last completion token)."""
        T, K = max(len(f["input_ids"]) for f in feats), max(len(f["steps"]) for f in feats)
        ids = torch.full((len(feats), T), self.vm.tok.pad_token_id or 0, dtype=torch.long)
        attn = torch.zeros_like(ids)
        steps = torch.full((len(feats), K), -1, dtype=torch.long)
        for b, f in enumerate(feats):
            ids[b, : len(f["input_ids"])] = torch.tensor(f["input_ids"])
            attn[b, : len(f["input_ids"])] = 1
            steps[b, : len(f["steps"])] = torch.tensor(f["steps"])
        completion = torch.tensor([f["completion"] for f in feats], dtype=torch.long)
        return {"input_ids": ids, "attention_mask": attn, "steps": steps, "completion": completion}

    def __call__(self, input_ids, attention_mask, steps, completion) -> torch.Tensor:
        probs = self.vm.correct_probability(self.vm(input_ids, attention_mask)).cpu()
        out = []
        for b in range(len(input_ids)):
            marks = [int(p) for p in steps[b] if p >= 0]
            start, end = (int(x) for x in completion[b])
            out.append(self.vm.read_scores(probs[b], marks, start, end, self.aggregation)["score"])
        return torch.tensor(out, dtype=torch.float64)

    def unpack(self, values: list) -> dict:
        return {"rewards": values, "aggregation": self.aggregation, "step_rule": "lines"}

    def normalize(self, rewards: list) -> list:
        raise ModelContractError("a verifier's scores are probabilities: normalize does not apply")

    def score(self, items, options=None, /, **keywords) -> list[float]:
        return self.vm.score(items, options, **keywords)

    def eval(self):
        self.vm.eval()
        return self

    def to(self, device):
        self.vm.to(device)
        return self


def serving_view(rm, cfg):
    """``rm`` as the server runs it: a verifier through :class:`StepScorer` (refusing ``--packing`` and
    ``--normalize`` before serving), any other kind as it is."""
    if rm.capabilities.output != "steps":
        return rm
    if cfg.packing:
        raise RewardlabError(rm.capabilities.packing_refusal or "--packing does not cover verifiers; drop --packing")
    if cfg.normalize:
        raise RewardlabError("--normalize: a verifier's scores are probabilities (no statistics apply); drop it")
    return StepScorer(rm)


# ---- POST /pooling --------------------------------------------------------------------------------
class PoolingRequest(BaseModel):
    """vLLM's pooling request (``input`` form) with rewardlab's ``{"prompt", "steps"}`` inputs and ``aggregation``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"input": "What is 2 plus 3?\n2 plus 3 is 5.\nA: 5\n", "task": "token_classify"},
                {
                    "input": [{"prompt": "What is 2 plus 3?", "steps": ["2 plus 3 is 5.", "A: 5"]}],
                    "task": "token_classify",
                },
            ]
        },
    )
    model: str | None = Field(None, description="the served model's name (as /health gives it); optional")
    input: Any = Field(..., description='a text, or a list of texts and {"prompt": str, "steps": [str, ...]} objects')
    task: str | None = Field(None, description="vLLM's pooling task; only token_classify is served (the default)")
    use_activation: StrictBool | None = Field(None, description="σ / softmax per token (default); false: raw logits")
    encoding_format: str = Field("float", description="only float")
    aggregation: str | None = Field(
        None, description="for step inputs: min, prod, last, mean, ... (default: the model's)"
    )
    user: str | None = None
    priority: int | None = None


def parse_inputs(raw: Any) -> list[tuple]:
    """``(None, text)`` or ``(prompt, [steps])`` per input; HTTPException 422 naming the input and field."""
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise HTTPException(422, "input: an empty list (give a text or a {prompt, steps} object)")
    out = []
    for i, x in enumerate(items):
        where = f"input[{i}]" if isinstance(raw, list) else "input"
        if isinstance(x, str):
            out.append((None, x))
            continue
        if not isinstance(x, dict):
            raise HTTPException(
                422, f'{where}: expected a text or {{"prompt": str, "steps": [str, ...]}}, got {type(x).__name__}'
            )
        extra = sorted(set(x) - {"prompt", "steps"})
        if extra:
            raise HTTPException(422, f"{where}: unknown field(s) {', '.join(extra)}; a step input has prompt and steps")
        if "steps" not in x:
            raise HTTPException(
                422,
                f"{where}: 'steps' is missing: per-step rows need the solution's steps (a list of texts) "
                "next to 'prompt' (or send the whole text as a string for per-token rows only)",
            )
        if not isinstance(x.get("prompt"), str):
            raise HTTPException(422, f"{where}: 'prompt' must be a text")
        steps = x["steps"]
        if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
            raise HTTPException(422, f"{where}: 'steps' must be a non-empty list of texts")
        out.append((x["prompt"], steps))
    return out


def check_task(req: PoolingRequest, rm, model_name: str) -> None:
    """The request's task, model and encoding against what is served; HTTPException naming why."""
    task = req.task or SERVED_TASK
    if task not in VLLM_TASKS:
        raise HTTPException(400, f"unknown task {task!r}: vLLM's pooling tasks are {', '.join(VLLM_TASKS)}; "
                            f"this server serves {SERVED_TASK}")  # fmt: skip
    if rm.capabilities.output != "steps":
        raise HTTPException(
            400,
            f"task {task!r} on /pooling needs per-token outputs, and this server's model ({rm.kind}) gives one "
            f"score per response: /pooling is served for {VERIFIER_KINDS}; use POST /v1/score",
        )
    if task != SERVED_TASK:
        raise HTTPException(400, f"task {task!r} is not served here: /pooling serves {SERVED_TASK} (per-token rows); "
                            "one score per response: POST /v1/score")  # fmt: skip
    if req.model is not None and req.model != model_name:
        raise HTTPException(404, f"the model {req.model!r} is not served here (this server serves {model_name!r})")
    if req.encoding_format != "float":
        raise HTTPException(400, f"encoding_format {req.encoding_format!r}: only 'float' is served")


def add_pooling_route(app, rm, *, model_name: str, tokenizer, auth, check_sizes) -> None:
    """``POST /pooling`` on ``app`` for the served ``rm`` (a :class:`StepScorer`, or any other kind: 400)."""
    one_at_a_time = asyncio.Lock()  # a /pooling forward at a time, beside the batching worker

    @app.post("/pooling", dependencies=auth, responses={400: {}, 401: {}, 404: {}, 413: {}, 422: {}, 503: {}})
    async def pooling(req: PoolingRequest) -> dict:
        """vLLM's ``/pooling`` with ``task: token_classify``: per-token rows, and per-step rows for step inputs."""
        check_task(req, rm, model_name)
        items = parse_inputs(req.input)
        check_sizes([s if p is None else "\n".join([p, *s]) for p, s in items], "inputs")  # count and characters
        if req.aggregation is not None:
            try:
                rm.vm.check_aggregation(req.aggregation)
            except ValueError as e:
                raise HTTPException(422, f"aggregation: {e}") from None
        feats = []
        for i, (where, fut) in enumerate((i, tokenizer.submit([it])) for i, it in enumerate(items)):
            try:  # one submission per input, so a refusal names its input
                feats += await asyncio.wrap_future(fut)
            except TokenizerStopped as e:
                raise HTTPException(503, str(e)) from None
            except ModelContractError as e:
                raise HTTPException(
                    422, f"input[{where}]: {e}" if isinstance(req.input, list) else f"input: {e}"
                ) from None
        aggregation = req.aggregation
        activation = True if req.use_activation is None else req.use_activation
        async with one_at_a_time:
            try:
                rows = await run_in_threadpool(rm.vm.token_rows, feats, activation, aggregation)
            except ModelContractError as e:
                raise HTTPException(500, str(e)) from None
        n = sum(len(f["input_ids"]) for f in feats)
        return {
            "id": f"pool-{uuid.uuid4().hex}",
            "object": "list",
            "created": int(time.time()),
            "model": model_name,
            "data": [
                {"index": i, "object": "pooling", **{k: v for k, v in r.items() if k != "tokens"}}
                for i, r in enumerate(rows)
            ],  # fmt: skip
            "usage": {"prompt_tokens": n, "total_tokens": n, "completion_tokens": 0, "prompt_tokens_details": None},
        }
