"""The reward server: FastAPI + uvicorn around one :class:`~rewardlab.models.reward_model.RewardModel` and a batching worker.

Endpoints (JSON; every error is ``{"detail": "<message>"}`` with a 4xx/5xx status):

``POST /v1/score``
    request ``{"prompt": str | "messages": [{"role", "content"}, ...], "responses": [str, ...],
    "normalize": bool?, "unsafe": bool?}``; answer ``{"rewards": [float, ...], "normalized": bool, "tokens": [int, ...],
    "model": str}`` with one reward per response, in order. ``normalize`` (default: the server's
    ``--normalize``) applies the model's saved ``(r - mean) / std`` (``rewardlab normalize``); a model
    without statistics answers 422 when asked. ``unsafe`` tags the prompt unsafe for the Llama 2 rule (all its
    responses, as a record's ``unsafe`` column does); a model that reads no such tag answers 422 to ``true``.
    The OpenAPI schema is at ``/openapi.json`` (``/docs``).
``POST /get_reward``
    OpenRLHF's remote reward model API: ``{"query": [str, ...], "prompts": [str, ...]?, "labels": ?,
    "normalize": bool?, "unsafe": [bool, ...]?}`` -> ``{"rewards": [...], "scores": [...]}`` (how queries are
    split: :mod:`rewardlab.serve.openrlhf`; ``unsafe``: one tag per query, as for ``/v1/score``).
``POST /pooling``
    vLLM's pooling API with ``task: "token_classify"``: per-token rows, and per-step rows for ``{"prompt", "steps"}``
    inputs, for a verifier (ORM / PRM); any other model answers 400 (:mod:`rewardlab.serve.verifier`, which also
    says how a verifier's ``/v1/score`` and ``/get_reward`` give the aggregate of its step scores, named).
``GET /health``
    ``{"status": "ok", "model": <the model directory as given, or its backbone>, "queued_texts": ...}``; no token
    needed; 503 while shutting down. ``/docs`` and ``/redoc`` are served with no network (:mod:`rewardlab.serve.docs`).
``GET /metrics``
    Prometheus text: requests by endpoint and status, request latency, texts, batch sizes (texts, jobs,
    tokens per forward), queue wait, forward time, queued texts, in-flight requests.

Limits: a body over ``max_request_bytes`` -> 413; more than ``max_texts`` responses/queries -> 413; a prompt or
response over ``max_text_chars`` characters -> 413; invalid JSON -> 400; a body of the wrong shape -> 422;
queue over ``max_queue_texts`` -> 503. With ``token`` set, every endpoint but ``/health`` needs
``Authorization: Bearer <token>`` (401 otherwise).

Shutdown (SIGINT/SIGTERM): uvicorn stops accepting connections and waits up to ``shutdown_timeout`` seconds
for in-flight requests; the worker keeps scoring until they are answered, then stops.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import re
import sys
import time
from contextlib import asynccontextmanager
from typing import Any, Literal

import torch
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator
from starlette.concurrency import run_in_threadpool

from rewardlab import __version__
from rewardlab.core.contract_options import contract_options
from rewardlab.core.device import device_options, resolve
from rewardlab.core.errors import ModelContractError, RewardlabError
from rewardlab.core.finite import NonFiniteError, check_weights, nonfinite_tensors
from rewardlab.core.normstats import checked_normalization
from rewardlab.multiobjective.serving import UNSAFE_KEY
from rewardlab.scoring.loader import load_reward_model
from rewardlab.serve.batcher import Batcher, QueueFull, Stopped
from rewardlab.serve.config import ServeConfig
from rewardlab.serve.docs import add_offline_docs
from rewardlab.serve.openrlhf import SplitError, split_query
from rewardlab.serve.tokenizing import TokenizerStopped, TokenizerWorker
from rewardlab.serve.verifier import add_pooling_route, serving_view

TOKEN_ENV = "REWARDLAB_SERVE_TOKEN"
UNSAFE_REFUSAL = (
    "'unsafe': true was sent but this model reads no unsafe tag (only a composed Llama 2 model or a multi-objective "
    "model whose scaliser is the llama2 rule does); drop 'unsafe' (or send false)"
)


# ---- request / response schemas -----------------------------------------------------------------
class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant", "tool"]
    content: str


class ScoreRequest(BaseModel):
    """One conversation (``prompt`` text or ``messages``) and one or more candidate responses."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"prompt": "What is 2 plus 3?", "responses": ["It is 5.", "It is 6."]},
                {
                    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi!"}],
                    "responses": ["Hello!"],
                    "normalize": True,
                },
            ]
        },
    )
    prompt: str | None = Field(None, description="the user's prompt as plain text (one user turn)")
    messages: list[Message] | None = Field(None, min_length=1, description="the conversation before the response")
    responses: list[str] = Field(..., min_length=1, description="candidate responses, each scored separately")
    normalize: StrictBool | None = Field(None, description="apply the model's saved mean/std (default: server setting)")
    unsafe: StrictBool | None = Field(
        None,
        description="the prompt is tagged unsafe (the Llama 2 rule: R_safety for every response); "
        "only for models that read the tag, 422 otherwise",
    )

    @model_validator(mode="after")
    def _one_prompt(self):
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of 'prompt' (text) or 'messages' (a list of {role, content})")
        return self


class ScoreResponse(BaseModel):
    rewards: list[float]
    normalized: bool
    tokens: list[int] = Field(description="tokens scored per response, after truncation to the model's max_length")
    model: str
    # multi-objective models only (rewardlab.multiobjective): per response, {attribute: value}
    attributes: list[dict[str, float]] | None = Field(None, description="per-attribute rewards (K-output models)")
    transformed: list[dict[str, float]] | None = Field(None, description="rewards after verbosity debiasing")
    gate: list[dict[str, float]] | None = Field(None, description="gate weights over the objectives (sum to 1)")
    # verifiers only (rewardlab.serve.verifier): how the per-step scores became the reward
    aggregation: str | None = Field(None, description="verifiers: the aggregation of the step scores (min, prod, ...)")
    step_rule: str | None = Field(None, description="verifiers: how a response was split into steps (lines)")


class OpenRLHFRequest(BaseModel):
    """OpenRLHF's remote reward request. ``labels`` and unknown fields are accepted and ignored."""

    model_config = ConfigDict(extra="allow")
    query: list[str] = Field(..., description="full prompt + response texts, as decoded by the policy")
    prompts: list[str] | None = Field(None, description="the prompt part of each query (a prefix of it)")
    labels: Any = None
    normalize: StrictBool | None = None
    unsafe: list[StrictBool] | None = Field(
        None, description="per query: its prompt is tagged unsafe (as /v1/score's unsafe; 422 for models without it)"
    )

    @model_validator(mode="after")
    def _lengths(self):
        for name in ("prompts", "unsafe"):
            got = getattr(self, name)
            if got is not None and len(got) != len(self.query):
                raise ValueError(f"{name!r} has {len(got)} items but 'query' has {len(self.query)}")
        return self


class OpenRLHFResponse(BaseModel):
    rewards: list[float]
    scores: list[float]
    aggregation: str | None = Field(None, description="verifiers: the aggregation of the step scores")


# ---- metrics ------------------------------------------------------------------------------------
class Metrics:
    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

        disable_created_metrics()  # no *_created series: they only add noise here
        r = self.registry = CollectorRegistry()
        lat = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
        self.requests = Counter("rewardlab_requests", "HTTP requests", ["endpoint", "status"], registry=r)
        self.latency = Histogram(
            "rewardlab_request_latency_seconds", "request latency", ["endpoint"], buckets=lat, registry=r
        )
        self.texts = Counter("rewardlab_texts_scored", "texts scored", registry=r)
        sizes = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
        self.batch_texts = Histogram("rewardlab_batch_texts", "texts per batched forward", buckets=sizes, registry=r)
        self.batch_jobs = Histogram(
            "rewardlab_batch_requests", "requests per batched forward", buckets=sizes, registry=r
        )
        self.batch_tokens = Histogram(
            "rewardlab_batch_tokens",
            "real tokens per batched forward",
            buckets=tuple(64 * 2**i for i in range(12)),
            registry=r,
        )
        self.padding = Counter("rewardlab_padded_tokens", "tokens run through the model including padding", registry=r)
        self.queue_wait = Histogram(
            "rewardlab_queue_wait_seconds", "time a request waited for its forward", buckets=lat, registry=r
        )
        self.forward = Histogram("rewardlab_forward_seconds", "time of one batched forward", buckets=lat, registry=r)
        self.queued = Gauge("rewardlab_queued_texts", "texts waiting for a forward", registry=r)
        self.inflight = Gauge("rewardlab_inflight_requests", "requests being handled", registry=r)

    def on_batch(self, s) -> None:
        self.texts.inc(s.n_texts)
        self.batch_texts.observe(s.n_texts)
        self.batch_jobs.observe(s.n_jobs)
        self.batch_tokens.observe(s.n_tokens)
        self.padding.inc(s.n_padded)
        self.forward.observe(s.forward_s)
        for w in s.queue_wait_s:
            self.queue_wait.observe(w)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


# ---- ASGI middlewares (plain ASGI: cheaper per request than BaseHTTPMiddleware) --------------------
class Observe:
    """Count requests by endpoint and status, time them, track in-flight requests."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        endpoint = path if path in _KNOWN else "other"
        status = [500]

        async def send_wrapper(msg):
            if msg["type"] == "http.response.start":
                status[0] = msg["status"]
            await send(msg)

        self.metrics.inflight.inc()
        t0 = time.perf_counter()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.inflight.dec()
            self.metrics.requests.labels(endpoint, str(status[0])).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - t0)


# ---- the bearer token, before anything reads the body ---------------------------------------------
class RequireToken:
    """401 (JSON) for every path but ``/health`` without ``Authorization: Bearer <token>``: the docs and the
    OpenAPI schema too, and before the body is read or parsed."""

    def __init__(self, app, token: str | None):
        self.app, self.token = app, token

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or self.token is None or scope.get("path") == "/health":
            return await self.app(scope, receive, send)
        given = [v for k, v in scope.get("headers") or [] if k.lower() == b"authorization"]
        got = given[0].decode("latin-1") if len(given) == 1 else ""  # two Authorization headers: neither counts
        scheme, _, value = got.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            value.strip().encode("latin-1"), self.token.encode("latin-1")
        ):
            return await _send_json(
                send,
                401,
                "missing or wrong bearer token (send 'Authorization: Bearer <token>')",
                extra=[(b"www-authenticate", b"Bearer")],
            )
        return await self.app(scope, receive, send)


# ---- the ASGI body limit --------------------------------------------------------------------------
class BodyLimit:
    """413 for a body over ``limit`` bytes: by Content-Length up front, or while reading a chunked body;
    408 when the client stops sending its body for ``timeout`` seconds (a half-sent request never holds a
    worker or the shutdown). The body is read here, then replayed to the app."""

    def __init__(self, app, limit: int, timeout: float | None = None):
        self.app, self.limit, self.timeout = app, limit, timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await _send_json(
                send, 413, f"request body of {int(declared)} bytes is over the limit of {self.limit} bytes"
            )
        timed = _timed_receive(receive, self.timeout) if self.timeout else receive
        body, messages = 0, []
        while True:  # buffer up to the limit, then replay
            try:
                msg = await timed()
            except _BodyTimeout as e:
                return await _send_json(send, 408, str(e))
            messages.append(msg)
            if msg["type"] != "http.request":
                break
            body += len(msg.get("body", b""))
            if body > self.limit:
                return await _send_json(send, 413, f"request body is over the limit of {self.limit} bytes")
            if not msg.get("more_body", False):
                break

        twice = _duplicated_key(b"".join(m.get("body", b"") for m in messages), headers)
        if twice is not None:  # JSON would keep the last one silently: which one was meant?
            return await _send_json(send, 400, f"the key {twice!r} appears twice in one JSON object")

        async def replay():
            return messages.pop(0) if messages else await receive()

        return await self.app(scope, replay, send)


def _duplicated_key(body: bytes, headers: dict) -> str | None:
    """The first key a JSON body gives twice in one object, else None (not JSON: the app answers that)."""
    if not body or b"json" not in headers.get(b"content-type", b"application/json"):
        return None
    found: list[str] = []

    def pairs(items):
        keys = [k for k, _ in items]
        if len(set(keys)) != len(keys) and not found:
            found.append(next(k for i, k in enumerate(keys) if k in keys[:i]))
        return dict(items)

    try:
        json.loads(body, object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        return None
    return found[0] if found else None


class _BodyTimeout(Exception):
    pass


def _timed_receive(receive, timeout: float):
    async def timed():
        try:
            return await asyncio.wait_for(receive(), timeout)
        except asyncio.TimeoutError:
            raise _BodyTimeout(f"the request body stalled for {timeout:g} s (--body-timeout)") from None

    return timed


async def _send_json(send, status: int, detail: str, extra: list | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *(extra or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# ---- the app ------------------------------------------------------------------------------------
def _validation_message(errors) -> str:
    parts = []
    for e in errors:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
        parts.append(f"{loc}: {e.get('msg')}" if loc else str(e.get("msg")))
    return "; ".join(parts)


def create_app(cfg: ServeConfig, rm=None) -> FastAPI:
    """The FastAPI app for ``cfg`` (loads ``cfg.model`` unless a loaded ``rm`` is given)."""
    if rm is None:  # --device/--dtype/...: the weights are loaded onto the device (rewardlab.core.device)
        rm = load_reward_model(
            cfg.model, contract_options(cfg), trust_modified=cfg.trust_modified, devices=device_options(cfg)
        )
    else:  # a model loaded by the caller: moved to --device
        rm.to(resolve(device_options(cfg)).device)
    rm = serving_view(rm, cfg)  # a verifier: its steps' aggregate through the batcher (rewardlab.serve.verifier)
    caps = rm.capabilities  # what this kind does (rewardlab.core.scorer), declared, never probed
    if not caps.batched_forward:
        raise RewardlabError(f"{cfg.model or 'this model'} ({rm.kind}) cannot be served: it has no batched forward")
    if cfg.packing and caps.forward_rows:  # said before serving, not per request
        # the batcher's packed path reads one value per text; a scalar kind it does not cover scores padded
        raise RewardlabError(caps.packing_refusal or f"--packing does not cover {rm.kind} models; drop --packing")
    if cfg.normalize:  # --normalize with statistics that cannot normalise: refused before serving
        checked_normalization(rm.spec.normalization, f"{cfg.model}/rewardlab.json")
    rm.eval()
    check_weights(rm.model.state_dict().items(), f"{cfg.model or 'model'}: refusing to serve")
    rm.score([("probe", "probe")], batch_size=1)  # a model that cannot score refuses to start (NonFiniteError)
    if hasattr(rm.model.config, "use_cache"):
        rm.model.config.use_cache = False  # scoring is one forward: no KV cache to build
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    token = serve_token(cfg)
    model_name = served_model_name(cfg.model, rm)
    metrics = Metrics()
    batcher = Batcher(
        rm,
        batching=cfg.batching,
        max_batch_tokens=cfg.max_batch_tokens,
        max_batch_texts=cfg.max_batch_texts,
        max_wait_ms=cfg.max_wait_ms,
        max_queue_texts=cfg.max_queue_texts,
        on_batch=metrics.on_batch,
        packing=cfg.packing,
        token_budget=cfg.token_budget,
        max_forward_ms=cfg.max_forward_ms,
    )
    tokenizer = TokenizerWorker(lambda p, r: rm.encoder.encode(p, r))  # the only thread that tokenizes
    extra_ends = tuple(t for t in (rm.tokenizer.eos_token, rm.tokenizer.pad_token) if t)
    state = {"draining": False, "failure": None}

    @asynccontextmanager
    async def lifespan(app):
        tokenizer.start()
        batcher.start()
        yield
        # uvicorn runs this after in-flight requests were answered (or shutdown_timeout passed)
        state["draining"] = True
        await run_in_threadpool(tokenizer.stop, cfg.shutdown_timeout)
        await run_in_threadpool(batcher.stop, cfg.shutdown_timeout)

    app = FastAPI(
        title="rewardlab reward server",
        version=_version(),
        lifespan=lifespan,
        description=_plain_doc(__doc__.split("\n\n")[0]),
        docs_url=None,
        redoc_url=None,
    )
    add_offline_docs(app)  # Swagger UI / ReDoc from a package, not a CDN
    app.state.batcher, app.state.metrics, app.state.rm, app.state.config = batcher, metrics, rm, cfg
    app.add_middleware(BodyLimit, limit=cfg.max_request_bytes, timeout=cfg.body_timeout)
    app.add_middleware(RequireToken, token=token)  # before the body is read
    app.add_middleware(Observe, metrics=metrics)  # outermost: 401s and 413s are counted too

    async def check_token(request: Request):
        if token is None:
            return
        given = request.headers.getlist("authorization")
        got = given[0] if len(given) == 1 else ""
        scheme, _, value = got.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            value.strip().encode("latin-1"), token.encode("latin-1")
        ):
            raise HTTPException(
                401,
                "missing or wrong bearer token (send 'Authorization: Bearer <token>')",
                headers={"WWW-Authenticate": "Bearer"},
            )

    auth = [Depends(check_token)]

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        bad = [e for e in errors if e.get("type") == "json_invalid"]
        if bad:
            where = bad[0].get("loc", ("body", "?"))[-1]
            why = (bad[0].get("ctx") or {}).get("error", "JSON decode error")
            return JSONResponse({"detail": f"the body is not valid JSON ({why} at character {where})"}, 400)
        return JSONResponse({"detail": _validation_message(errors)}, 422)

    @app.exception_handler(Exception)
    async def on_error(request: Request, exc: Exception):  # every error answer is JSON {"detail": ...}
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}: {exc}"}, 500)

    def check_sizes(texts: list[str], what: str) -> None:
        if len(texts) > cfg.max_texts:
            raise HTTPException(413, f"{len(texts)} {what} in one request; the limit is {cfg.max_texts}")
        for i, t in enumerate(texts):
            if len(t) > cfg.max_text_chars:
                raise HTTPException(413, f"{what}[{i}] has {len(t)} characters; the limit is {cfg.max_text_chars}")
            try:
                t.encode("utf-8")
            except UnicodeEncodeError:
                raise HTTPException(
                    400, f"{what}[{i}] holds a lone UTF-16 surrogate (a \\ud800-\\udfff escape), which is not text"
                ) from None

    def wants_norm(flag: bool | None) -> bool:
        """Whether to normalise; 422 when asked for and the model's statistics cannot (missing, or refused by
        :func:`rewardlab.core.normstats.checked_normalization`), so "normalized": true is never said of raw rewards."""
        norm = cfg.normalize if flag is None else flag
        if norm and not rm.spec.normalization:
            raise HTTPException(
                422,
                "normalize was asked for but this model has no normalisation statistics "
                "(run `rewardlab normalize --model DIR --data samples.jsonl`)",
            )
        if norm:
            try:
                checked_normalization(rm.spec.normalization, f"{cfg.model}/rewardlab.json")
            except ModelContractError as e:
                raise HTTPException(422, f"normalize was asked for but {e}") from None
        return norm

    def wants_tags(tags: list[bool] | None) -> list[bool] | None:
        """Per text: the prompt's unsafe tag, or None (no tag set); 422 for ``true`` on a model that cannot read it."""
        if tags is None or not any(tags):
            return None  # false everywhere: the untagged answer, for every model
        if not caps.reads_unsafe_tags:
            raise HTTPException(422, UNSAFE_REFUSAL)
        return tags

    async def encode_all(items, tags: list[bool] | None = None) -> list[dict]:
        """The items' features from the tokenizer's own thread (the event loop never waits on a lock)."""
        try:
            feats = await asyncio.wrap_future(tokenizer.submit(items))
        except TokenizerStopped as e:
            raise HTTPException(503, str(e))
        if tags is not None:  # travels with each text into the model's collate (rewardlab.multiobjective.serving)
            feats = [{**f, UNSAFE_KEY: t} for f, t in zip(feats, tags)]
        return feats

    async def score_items(items, normalize: bool, tags: list[bool] | None = None) -> tuple[list[float], list[dict]]:
        feats = await encode_all(items, tags)
        try:
            fut = batcher.submit(feats, items if cfg.packing else None)
        except QueueFull as e:
            raise HTTPException(503, str(e), headers={"Retry-After": "1"})
        except Stopped as e:
            raise HTTPException(503, str(e))
        try:
            rewards = await asyncio.wrap_future(fut)
        except NonFiniteError as e:  # an error answer, never a null reward; unhealthy when the weights broke
            if nonfinite_tensors(rm.model.state_dict().items()):
                state["failure"] = str(e)
            raise HTTPException(500, str(e))
        return (rm.normalize(rewards) if normalize else rewards), feats

    @app.post(
        "/v1/score",
        response_model=ScoreResponse,
        dependencies=auth,
        responses={400: {}, 401: {}, 413: {}, 422: {}, 503: {}},
    )
    async def score(req: ScoreRequest) -> ScoreResponse:
        """Score one or more responses to one prompt or conversation."""
        check_sizes(req.responses, "responses")
        if req.prompt is not None:
            check_sizes([req.prompt], "prompt")
            prompt: Any = req.prompt
        else:
            check_sizes([m.content for m in req.messages], "messages")
            prompt = tuple({"role": m.role, "content": m.content} for m in req.messages)
        norm = wants_norm(req.normalize)
        tags = wants_tags(None if req.unsafe is None else [req.unsafe] * len(req.responses))
        try:
            rewards, feats = await score_items([(prompt, r) for r in req.responses], norm, tags)
        except ModelContractError as e:
            raise HTTPException(422, str(e))
        return ScoreResponse(
            **rm.unpack(rewards),  # {"rewards"} and, for kinds with forward_rows, the named parts
            normalized=norm,
            tokens=[len(f["input_ids"]) for f in feats],
            model=model_name,
        )

    @app.post(
        "/get_reward",
        response_model=OpenRLHFResponse,
        dependencies=auth,
        responses={400: {}, 401: {}, 413: {}, 422: {}, 503: {}},
    )
    async def get_reward(req: OpenRLHFRequest) -> OpenRLHFResponse:
        """OpenRLHF's remote reward model API (``--remote_rm_url http://host:port/get_reward``)."""
        check_sizes(req.query, "query")
        if req.prompts is not None:
            check_sizes(req.prompts, "prompts")
        norm = wants_norm(req.normalize)
        tags = wants_tags(req.unsafe)
        items = []
        for i, q in enumerate(req.query):
            try:
                items.append(split_query(q, req.prompts[i] if req.prompts else None, extra_ends))
            except SplitError as e:
                raise HTTPException(422, f"query[{i}]: {e}")
        try:
            rewards, _ = await score_items(items, norm, tags)
        except ModelContractError as e:
            raise HTTPException(422, str(e))
        parts = rm.unpack(rewards)  # the scalar: for K-output kinds, the model's scaliser; verifiers: the aggregate
        return OpenRLHFResponse(rewards=parts["rewards"], scores=parts["rewards"], aggregation=parts.get("aggregation"))

    add_pooling_route(app, rm, model_name=model_name, tokenizer=tokenizer, auth=auth, check_sizes=check_sizes)

    @app.get("/health")
    async def health():
        ok = batcher.alive() and not state["draining"] and state["failure"] is None
        body = {
            "status": "ok" if ok else "unavailable",
            **({"detail": state["failure"]} if state["failure"] else {}),
            "model": model_name,
            "queued_texts": batcher.queued_texts(),
            "batching": cfg.batching,
            "normalization": bool(rm.spec.normalization),
            "device": str(batcher.device),
            **({"placement": rm.placement} if rm.placement else {}),
            "torch_threads": torch.get_num_threads(),
            **({"trust_modified": list(rm.modified_files)} if rm.modified_files else {}),
        }
        if rm.contract is not None:  # a foreign model: the contract it is scored with
            body["contract"] = rm.contract.to_json()
        return JSONResponse(body, 200 if ok else 503)

    @app.get("/metrics", dependencies=auth)
    async def prometheus():
        metrics.queued.set(batcher.queued_texts())
        data, ctype = metrics.render()
        return Response(data, media_type=ctype)

    return app


_KNOWN = {"/v1/score", "/get_reward", "/pooling", "/health", "/metrics"}


def _plain_doc(text: str) -> str:
    """A docstring paragraph for /docs: Sphinx roles (``:class:`~a.b.C```) become ``C``."""
    return re.sub(r":\w+:`~?([\w.]+)`", lambda m: f"`{m.group(1).rsplit('.', 1)[-1]}`", text)


def serve_token(cfg: ServeConfig, environ=os.environ) -> str | None:
    """The bearer token: ``--token``, else ``$REWARDLAB_SERVE_TOKEN``, else none. An empty or blank one (an unset
    shell variable in ``--token "$TOKEN"``) is an error, never a server left open."""
    for value, where in ((cfg.token, "--token"), (environ.get(TOKEN_ENV), TOKEN_ENV)):
        if value is None:
            continue
        if not value.strip() or value != value.strip():
            raise RewardlabError(
                f"{where} is empty or has surrounding blanks; a server meant to need a token would accept "
                "requests it should not (give the token itself, or leave both unset for no token)"
            )
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise RewardlabError(f"{where}: an HTTP header carries latin-1 text only; use ASCII") from None
        return value
    return None


def served_model_name(path: str, rm) -> str:
    """What ``/health`` and every answer call the model: the directory as given (``runs/hh/model``), else the
    model's backbone (hub id or directory) — never just ``model``."""
    return os.path.normpath(path) if path else str(rm.spec.backbone)


def _version() -> str:
    return __version__


def make_server(cfg: ServeConfig, rm=None):
    """A ``uvicorn.Server`` for ``cfg`` (``server.run()`` blocks; set ``server.should_exit`` to stop it)."""
    import uvicorn

    app = create_app(cfg, rm)
    config = uvicorn.Config(
        app,
        host=cfg.host,
        port=cfg.port,
        log_level=cfg.log_level,
        timeout_graceful_shutdown=cfg.shutdown_timeout,
        timeout_keep_alive=cfg.keep_alive_timeout,
        access_log=False,
        lifespan="on",
    )
    return uvicorn.Server(config)


def run_serve(cfg: ServeConfig) -> None:
    if not cfg.model:
        raise RewardlabError("--model is required (a rewardlab model directory)")
    serve_token(cfg)  # a blank token is refused before the model loads
    server = make_server(cfg)
    print(
        f"rewardlab serve: {cfg.model} on http://{cfg.host}:{cfg.port} "
        f"(batching {'on' if cfg.batching else 'off'}{', token required' if serve_token(cfg) else ''})",
        flush=True,
    )
    try:
        server.run()  # SIGINT/SIGTERM: in-flight requests answered, the batcher stopped, then the signal re-raised
    except KeyboardInterrupt:  # Ctrl-C, after that clean shutdown: say so and end now, without a traceback
        print("rewardlab serve: stopped (SIGINT); in-flight requests were answered", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(130)  # not sys.exit: the interpreter's final garbage collection of the model took ~10 s here
