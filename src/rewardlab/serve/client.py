"""A small client for ``rewardlab serve`` (httpx; sync and async).

```python
from rewardlab.serve.client import RewardClient

with RewardClient("http://127.0.0.1:8000", token="secret") as rc:
    rc.score("What is 2 plus 3?", ["It is 5.", "It is 6."])          # -> [r0, r1]
    rc.score([{"role": "user", "content": "Hi"}], ["Hello!"], normalize=True)
    rc.score("How do I pick a lock?", ["I won't help."], unsafe=True)  # a Llama 2 model's unsafe-prompt tag
    rc.get_reward(["<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\nHello!<|im_end|>"])
```

``RewardClient.reward_func()`` returns a function with TRL's reward-function signature
(``prompts``, ``completions``, ``**kwargs`` -> list of floats) for ``GRPOTrainer(reward_funcs=[...])``.
Errors from the server raise :class:`RewardServerError` with its status and message.
"""

from __future__ import annotations

from typing import Any

import httpx


class RewardServerError(RuntimeError):
    def __init__(self, status: int, detail: str):
        self.status, self.detail = status, detail
        super().__init__(f"reward server answered {status}: {detail}")


def _prompt_fields(prompt) -> dict:
    if isinstance(prompt, str):
        return {"prompt": prompt}
    return {"messages": [{"role": m["role"], "content": m["content"]} for m in prompt]}


def _check(r: httpx.Response) -> Any:
    if r.status_code >= 400:
        try:
            detail = r.json().get("detail", r.text)
        except ValueError:
            detail = r.text
        raise RewardServerError(r.status_code, str(detail))
    return r.json()


def _headers(token: str | None) -> dict:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _score_body(prompt, responses: list[str] | str, normalize: bool | None, unsafe: bool | None = None) -> dict:
    """The JSON body of ``POST /v1/score`` (``unsafe``: the prompt's Llama 2 tag, sent only when given)."""
    body = {**_prompt_fields(prompt), "responses": [responses] if isinstance(responses, str) else list(responses)}
    if normalize is not None:
        body["normalize"] = normalize
    if unsafe is not None:
        body["unsafe"] = unsafe
    return body


def _reward_body(
    queries: list[str], prompts: list[str] | None, normalize: bool | None, unsafe: list[bool] | None = None
) -> dict:
    """The JSON body of ``POST /get_reward`` (OpenRLHF's remote reward-model protocol; ``unsafe``: one tag per
    query, sent only when given)."""
    body: dict = {"query": list(queries)}
    if prompts is not None:
        body["prompts"] = list(prompts)
    if normalize is not None:
        body["normalize"] = normalize
    if unsafe is not None:
        body["unsafe"] = list(unsafe)
    return body


class RewardClient:
    """Blocking client. ``prompt`` is text or a list of ``{"role", "content"}`` messages."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        token: str | None = None,
        timeout: float = 60.0,
        client: httpx.Client | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self._http = client or httpx.Client(base_url=self.base_url, headers=_headers(token), timeout=timeout)

    def score(
        self, prompt, responses: list[str] | str, normalize: bool | None = None, unsafe: bool | None = None
    ) -> list[float]:
        body = _score_body(prompt, responses, normalize, unsafe)
        return _check(self._http.post("/v1/score", json=body))["rewards"]

    def get_reward(
        self,
        queries: list[str],
        prompts: list[str] | None = None,
        normalize: bool | None = None,
        unsafe: list[bool] | None = None,
    ) -> list[float]:
        body = _reward_body(queries, prompts, normalize, unsafe)
        return _check(self._http.post("/get_reward", json=body))["rewards"]

    def health(self) -> dict:
        return _check(self._http.get("/health"))

    def metrics(self) -> str:
        r = self._http.get("/metrics")
        if r.status_code >= 400:
            _check(r)
        return r.text

    def reward_func(self, normalize: bool | None = None):
        """A TRL-style reward function: ``f(prompts, completions, **kwargs) -> list[float]``.

        Text prompts/completions and conversational ones (lists of messages; the completion's assistant
        message is the response) are both accepted. One request per prompt; they go out one after another.
        """

        def rewardlab_reward(prompts, completions, **kwargs) -> list[float]:
            out = []
            for p, c in zip(prompts, completions):
                resp = c if isinstance(c, str) else "".join(m["content"] for m in c if m.get("role") == "assistant")
                out.extend(self.score(p, [resp], normalize=normalize))
            return out

        return rewardlab_reward

    def close(self) -> None:
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class AsyncRewardClient:
    """The same calls for asyncio code (``await client.score(...)``)."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        token: str | None = None,
        timeout: float = 60.0,
        client: httpx.AsyncClient | None = None,
        max_connections: int = 100,
    ):
        self.base_url = base_url.rstrip("/")
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._http = client or httpx.AsyncClient(
            base_url=self.base_url, headers=_headers(token), timeout=timeout, limits=limits
        )

    async def score(
        self, prompt, responses: list[str] | str, normalize: bool | None = None, unsafe: bool | None = None
    ) -> list[float]:
        body = _score_body(prompt, responses, normalize, unsafe)
        return _check(await self._http.post("/v1/score", json=body))["rewards"]

    async def get_reward(
        self,
        queries: list[str],
        prompts: list[str] | None = None,
        normalize: bool | None = None,
        unsafe: list[bool] | None = None,
    ) -> list[float]:
        body = _reward_body(queries, prompts, normalize, unsafe)
        return _check(await self._http.post("/get_reward", json=body))["rewards"]

    async def health(self) -> dict:
        return _check(await self._http.get("/health"))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.aclose()
