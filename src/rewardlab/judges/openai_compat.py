"""Judge backend for any OpenAI-compatible ``/v1/chat/completions`` endpoint (vLLM, llama.cpp server, hosted APIs).

* **Concurrency**: up to ``concurrency`` requests in flight (a thread pool over one ``httpx.Client``).
* **Retries**: timeouts, connection errors, HTTP 408/409/429 and 5xx are retried up to ``max_retries`` times with
  exponential backoff (``backoff · 2^attempt``, capped at ``backoff_max``, plus up to 25% jitter; a numeric
  ``Retry-After`` header is honoured within the cap). Other 4xx answers fail at once.
* **Timeouts**: ``timeout`` seconds per request (connect, read, write, pool).
* **Cache**: with ``cache_dir``, every successful answer is stored on disk under the sha256 of
  ``(model, messages, sampling settings, request kind)``; the same request is then answered from disk without
  touching the network. A sampled request's key includes its seed, so the K samples of a prompt are K entries.
* **Failures**: with ``raise_errors=True`` a request that still fails raises :class:`BackendError`; with
  ``False`` its reply is ``None`` (the judge counts it as unparseable, reason "backend error") and the message
  is kept in :meth:`stats`.
* **Sampling**: ``temperature``, ``top_p``, ``max_tokens`` and ``seed`` (``sampling.seed + sample index``) are
  sent; K samples are K requests, so servers that ignore ``n`` work too.
* **Token probabilities**: ``max_tokens=1, logprobs=true, top_logprobs=k`` (default 20); the candidates'
  probabilities are read from ``choices[0].logprobs.content[0].top_logprobs``. An ``assistant_prefix`` is sent as a
  partial assistant message with vLLM's ``continue_final_message`` (other servers may not support prefilling).

The API key is read from the environment variable ``api_key_env`` (never stored in the cache or outputs).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import httpx

from rewardlab.core import progress
from rewardlab.core.atomic import atomic_write_text
from rewardlab.judges.backends import Backend, BackendError, Messages, Sampling, candidate_logprobs

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class DiskCache:
    """JSON values under ``dir/ab/<sha256>.json``, written atomically (temp file + rename)."""

    def __init__(self, directory: str | os.PathLike):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def key(payload: dict) -> str:
        text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def _path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.json"

    def get(self, key: str) -> Any:
        path = self._path(key)
        try:
            return json.loads(path.read_text(encoding="utf-8"))["value"]
        except (OSError, ValueError, KeyError):
            return None

    def put(self, key: str, value: Any, meta: dict | None = None) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps({"value": value, "request": meta}, ensure_ascii=False), fsync=False)


def normalize_base_url(url: str) -> str:
    url = url.rstrip("/")
    for tail in ("/chat/completions", "/completions"):
        if url.endswith(tail):
            url = url[: -len(tail)]
    return url


class OpenAIBackend(Backend):
    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        timeout: float = 60.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        backoff_max: float = 20.0,
        cache_dir: str | os.PathLike | None = None,
        raise_errors: bool = True,
        top_logprobs: int = 20,
        extra_body: dict | None = None,
    ):
        self.base_url, self.model_id = normalize_base_url(base_url), model
        self.concurrency, self.max_retries = max(1, int(concurrency)), max(0, int(max_retries))
        self.backoff, self.backoff_max, self.timeout = backoff, backoff_max, timeout
        self.raise_errors, self.top_logprobs, self.extra_body = raise_errors, top_logprobs, dict(extra_body or {})
        key = api_key if api_key is not None else os.environ.get(api_key_env or "", "")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout),
            headers=headers,
            limits=httpx.Limits(max_connections=self.concurrency),
        )
        self.cache = DiskCache(cache_dir) if cache_dir else None
        self._lock = threading.Lock()
        self._stats = {"requests": 0, "http_calls": 0, "retries": 0, "cache_hits": 0, "failures": 0}
        self.errors: list[str] = []

    # ---- plumbing ------------------------------------------------------------------------------------
    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._stats[key] += n

    def _post(self, payload: dict) -> dict:
        last = ""
        for attempt in range(self.max_retries + 1):
            self._count("http_calls")
            wait = None
            try:
                r = self.client.post("/chat/completions", json=payload)
            except httpx.TimeoutException as e:
                last = f"timeout after {self.timeout:g}s ({type(e).__name__})"
            except httpx.TransportError as e:
                last = f"connection error: {e}"
            else:
                if r.status_code == 200:
                    try:
                        return r.json()
                    except ValueError:
                        last = "invalid JSON in the answer"
                elif r.status_code in RETRY_STATUS:
                    last = f"HTTP {r.status_code}: {r.text[:200]}"
                    try:
                        wait = float(r.headers.get("retry-after", ""))
                    except ValueError:
                        wait = None
                else:
                    raise BackendError(
                        f"{self.base_url}/chat/completions answered HTTP {r.status_code}: {r.text[:300]}"
                    )
            if attempt < self.max_retries:
                self._count("retries")
                delay = min(self.backoff_max, wait if wait is not None else self.backoff * 2**attempt)
                time.sleep(delay * (1 + 0.25 * random.random()))
        raise BackendError(f"{self.base_url}/chat/completions failed after {self.max_retries + 1} attempt(s): {last}")

    def _request(self, payload: dict, kind: str, extract) -> Any:
        self._count("requests")
        key = None
        if self.cache is not None:
            key = DiskCache.key({"kind": kind, **payload})
            hit = self.cache.get(key)
            if hit is not None:
                self._count("cache_hits")
                return hit
        try:
            value = extract(self._post({**payload, **self.extra_body}))
        except (BackendError, KeyError, IndexError, TypeError, ValueError) as e:
            self._count("failures")
            message = str(e) if isinstance(e, BackendError) else f"unexpected answer format: {e!r}"
            with self._lock:
                self.errors.append(message)
            if self.raise_errors:
                raise BackendError(message) from e
            return None
        if self.cache is not None and value is not None:
            self.cache.put(key, value, meta={"kind": kind, "model": self.model_id})
        return value

    def _map(self, fn, items: list) -> list:
        if self.concurrency == 1 or len(items) <= 1:
            return [fn(x) for x in progress.track(items, "judge requests", unit="req")]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items))) as pool:
            return list(progress.track(pool.map(fn, items), "judge requests", total=len(items), unit="req"))

    @staticmethod
    def _messages(messages: Messages, assistant_prefix: str) -> list[dict]:
        out = [{"role": m["role"], "content": m["content"]} for m in messages]
        if assistant_prefix:
            out.append({"role": "assistant", "content": assistant_prefix})
        return out

    # ---- the interface -------------------------------------------------------------------------------
    def generate(self, prompts: Sequence[Messages], sampling: Sampling, n: int = 1) -> list[list[str | None]]:
        def one(job):
            p, s = job
            payload = {
                "model": self.model_id,
                "messages": self._messages(prompts[p], ""),
                "max_tokens": sampling.max_new_tokens,
                "temperature": sampling.temperature,
                "top_p": sampling.top_p,
            }
            if not sampling.greedy:
                payload["seed"] = sampling.seed + s
            return self._request(payload, "chat", lambda body: body["choices"][0]["message"]["content"] or "")

        jobs = [(p, s) for p in range(len(prompts)) for s in range(n)]
        flat = self._map(one, jobs)
        return [flat[p * n : (p + 1) * n] for p in range(len(prompts))]

    def next_token_logprobs(
        self, prompts: Sequence[Messages], candidates: Sequence[str], assistant_prefix: str = ""
    ) -> list[dict[str, float] | None]:
        def extract(body):
            content = body["choices"][0]["logprobs"]["content"]
            first = content[0]
            top = [(e["token"], float(e["logprob"])) for e in first.get("top_logprobs") or []]
            top.append((first["token"], float(first["logprob"])))
            seen, uniq = set(), []
            for tok, lp in top:
                if tok not in seen:
                    seen.add(tok)
                    uniq.append([tok, lp])
            return uniq

        def one(p):
            payload = {
                "model": self.model_id,
                "messages": self._messages(prompts[p], assistant_prefix),
                "max_tokens": 1,
                "temperature": 0.0,
                "logprobs": True,
                "top_logprobs": self.top_logprobs,
            }
            if assistant_prefix:
                payload.update(add_generation_prompt=False, continue_final_message=True)
            top = self._request(payload, "top_logprobs", extract)
            return None if top is None else candidate_logprobs([(t, lp) for t, lp in top], candidates)

        return self._map(one, list(range(len(prompts))))

    def stats(self) -> dict:
        with self._lock:
            out = dict(self._stats)
            out["errors"] = self.errors[:20]
        return out

    def describe(self) -> dict:
        return {
            "backend": self.name,
            "model": self.model_id,
            "base_url": self.base_url,
            "concurrency": self.concurrency,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "cache_dir": str(self.cache.dir) if self.cache else None,
        }

    def close(self) -> None:
        self.client.close()
