"""A minimal OpenAI-compatible chat server over a local :class:`~rewardlab.judges.hf.HFBackend`.

For development and tests: it lets the HTTP judge backend talk to a real server on loopback that serves a
local model (e.g. a judge trained with ``rewardlab train-judge``). Endpoints: ``GET /v1/models`` and
``POST /v1/chat/completions`` with ``messages``, ``max_tokens``, ``temperature``, ``top_p``, ``seed`` and
``logprobs`` / ``top_logprobs`` (for the first generated token). One request at a time reaches the model.
"""

import threading
import time
import uuid

from rewardlab.judges.backends import Sampling


def make_openai_app(backend, model_name: str | None = None):
    from fastapi import FastAPI, HTTPException, Request  # lazy: fastapi only for the judge server

    app = FastAPI(title="rewardlab judge server")
    lock = threading.Lock()
    name = model_name or backend.model_id

    @app.get("/v1/models")
    def models():
        return {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "rewardlab"}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise HTTPException(400, "messages must be a non-empty list")
        prefix = ""
        if body.get("continue_final_message") and messages[-1].get("role") == "assistant":
            prefix, messages = messages[-1]["content"], messages[:-1]
        max_tokens = int(body.get("max_tokens") or 256)
        temperature = float(body.get("temperature") if body.get("temperature") is not None else 1.0)
        sampling = Sampling(
            temperature=temperature,
            top_p=float(body.get("top_p") or 1.0),
            max_new_tokens=max_tokens,
            seed=int(body.get("seed") or 0),
        )
        choice: dict = {"index": 0, "finish_reason": "stop"}

        def work():
            with lock:
                text = backend.generate([messages], sampling, n=1, assistant_prefix=prefix)[0][0] or ""
                lp = None
                if body.get("logprobs"):
                    k = int(body.get("top_logprobs") or 1)
                    top = backend.top_next_tokens([messages], k=max(1, k), assistant_prefix=prefix)[0]
                    lp = {
                        "content": [
                            {
                                "token": top[0][0],
                                "logprob": top[0][1],
                                "top_logprobs": [{"token": t, "logprob": v} for t, v in top],
                            }
                        ]
                    }
                return text, lp

        import anyio  # lazy: comes with fastapi (the optional [serve] extra)

        text, lp = await anyio.to_thread.run_sync(work)
        choice["message"] = {"role": "assistant", "content": text}
        if lp is not None:
            choice["logprobs"] = lp
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": name,
            "choices": [choice],
        }

    return app
