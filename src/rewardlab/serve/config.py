"""``rewardlab serve`` options (one dataclass, like every command; no heavy imports here)."""

from __future__ import annotations

from dataclasses import dataclass

from rewardlab.core.bounds import NonNegativeFloat, Port, Positive, PositiveFloat, check_bounds
from rewardlab.core.contract_options import ContractOptions
from rewardlab.core.device import DeviceOptions
from rewardlab.core.errors import RewardlabError


@dataclass
class ServeConfig(ContractOptions, DeviceOptions):
    # model
    model: str = ""  # a rewardlab model directory (a LoRA adapter directory works too), or any reward model (rewardlab.models.foreign)
    # server
    host: str = "127.0.0.1"  # interface to listen on (127.0.0.1: this machine only)
    port: Port = 8000  # TCP port
    token: str | None = None  # bearer token required on /v1/score, /get_reward, /metrics (or $REWARDLAB_SERVE_TOKEN)
    # batching: a worker gathers queued requests into one forward
    batching: bool = True  # off: one request per forward (the load test's baseline)
    max_batch_tokens: Positive = 16384  # padded tokens (texts x longest text) per forward
    max_batch_texts: Positive = 256  # texts per forward
    max_wait_ms: NonNegativeFloat = 5.0  # how long the first queued request may wait for others to join it
    max_queue_texts: Positive = 8192  # texts waiting for a forward; beyond this requests get 503
    # a forward takes at most about this long (its tokens capped by the measured seconds per token; 0: no cap), so a
    # small request waits for about one such forward while large requests stream; single-piece requests go first
    max_forward_ms: NonNegativeFloat = 25.0
    packing: bool = (
        False  # padding-free packed forwards (rewardlab.models.packing; prompts shared by responses run once)
    )
    token_budget: Positive | None = None  # pack prompt groups into rows of this many tokens (default: a row per group)
    # request limits (4xx with a message beyond them)
    max_request_bytes: Positive = 4 * 1024 * 1024  # 413
    max_texts: Positive = 256  # responses (or queries) per request: 413
    max_text_chars: Positive = 65536  # characters in one prompt or response: 413
    # scoring
    normalize: bool = False  # default for requests that do not say (the model's saved mean/std)
    num_threads: Positive | None = None  # torch intra-op threads (default: torch's choice)
    # process
    shutdown_timeout: NonNegativeFloat = 30.0  # seconds to finish in-flight requests after SIGINT/SIGTERM
    keep_alive_timeout: PositiveFloat = 5.0  # seconds an idle keep-alive connection stays open
    body_timeout: PositiveFloat = 10.0  # seconds a request body may stall before a 408
    log_level: str = "warning"  # uvicorn log level: critical | error | warning | info | debug
    trust_modified: bool = False  # serve a model whose files differ from the hashes in rewardlab.json (/health says)

    REQUIRED = ("model",)  # options that must be given (rewardlab.commands.preflight checks them before anything loads)

    def __post_init__(self):
        check_bounds(self)  # the declared ranges bind however the config is built
        for name in (
            "max_batch_tokens",
            "max_batch_texts",
            "max_request_bytes",
            "max_texts",
            "max_text_chars",
            "max_queue_texts",
        ):
            if getattr(self, name) < 1:
                raise RewardlabError(f"{name} must be positive")
        if self.max_wait_ms < 0:
            raise RewardlabError("max_wait_ms must be >= 0")
