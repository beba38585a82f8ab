"""Judge backends by name: one dict of builders (``BACKENDS``) and :func:`make_backend`.

Each backend module is imported only when its backend is built: ``hf`` loads torch, ``llamacpp`` an optional extra.
A new backend: a class implementing :class:`rewardlab.judges.backends.Backend` in its own module, and one builder
here.
"""

from __future__ import annotations

from typing import Callable

from rewardlab.core.errors import RewardlabError
from rewardlab.judges.backends import Backend


def _hf(model: str, o: dict) -> Backend:
    from rewardlab.judges.hf import HFBackend  # lazy: torch and transformers only for an hf backend

    return HFBackend(model, batch_size=o["batch_size"], placement=o["placement"])


def _openai(model: str, o: dict) -> Backend:
    from rewardlab.judges.openai_compat import OpenAIBackend  # lazy: httpx only for an openai backend

    if not o["base_url"]:
        raise RewardlabError("the openai backend needs --base-url (e.g. http://127.0.0.1:8000/v1)")
    return OpenAIBackend(
        o["base_url"],
        model,
        api_key_env=o["api_key_env"],
        concurrency=o["concurrency"],
        timeout=o["timeout"],
        max_retries=o["max_retries"],
        cache_dir=o["cache_dir"],
        raise_errors=o["raise_errors"],
    )


def _llamacpp(model: str, o: dict) -> Backend:
    from rewardlab.judges.llamacpp import LlamaCppBackend  # lazy: llama-cpp-python is an optional extra

    return LlamaCppBackend(model)


BACKENDS: dict[str, Callable[[str, dict], Backend]] = {"hf": _hf, "openai": _openai, "llamacpp": _llamacpp}


def make_backend(
    backend: str = "hf",
    model: str = "smollm2-135m",
    *,
    base_url: str = "",
    api_key_env: str = "OPENAI_API_KEY",
    concurrency: int = 8,
    timeout: float = 60.0,
    max_retries: int = 4,
    cache_dir: str | None = None,
    batch_size: int = 8,
    placement=None,
    raise_errors: bool = False,
) -> Backend:
    """A backend by name: ``hf`` (local transformers; ``placement``: a :class:`rewardlab.core.device.Placement`, None:
    auto), ``openai`` (needs ``base_url``), ``llamacpp``."""
    build = BACKENDS.get(backend)
    if build is None:
        raise RewardlabError(f"unknown judge backend {backend!r}; choose {', '.join(BACKENDS)}")
    return build(
        model,
        {
            "base_url": base_url,
            "api_key_env": api_key_env,
            "concurrency": concurrency,
            "timeout": timeout,
            "max_retries": max_retries,
            "cache_dir": cache_dir,
            "batch_size": batch_size,
            "placement": placement,
            "raise_errors": raise_errors,
        },
    )
