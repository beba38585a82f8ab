"""Hidden states computed once: for each (prompt, response), the head input, the prompt-end state and the K rewards.

:func:`compute_features` runs the frozen model once over the texts (length-sorted batches, input order kept).
:func:`cached_features` stores the result in ``cache_dir`` under a key made of the model's weights file, its
``rewardlab.json`` contract and the texts, so stage 1 (ridge) and stage 2 (gate) re-run in seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from rewardlab.data.record import Prompt


@dataclass
class Features:
    rewards: torch.Tensor  # (N, K) head outputs
    head_input: torch.Tensor  # (N, d) what the head reads (head(head_input) == rewards)
    prompt_hidden: torch.Tensor  # (N, d) final-layer state where the final user turn ends (the gate's input)


@torch.no_grad()
def compute_features(rm, items: list[tuple[Prompt, str]], batch_size: int = 32) -> Features:
    was = rm.training
    rm.eval()
    feats = [rm.encode(p, r) for p, r in items]
    order = sorted(range(len(feats)), key=lambda i: len(feats[i]["input_ids"]))
    parts: list[tuple[list[int], tuple]] = []
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        parts.append((idx, rm.features(rm.collate([feats[i] for i in idx]))))
    rm.train(was)
    out = []
    for j in range(3):
        width = parts[0][1][j].shape[1]
        t = torch.zeros(len(items), width)
        for idx, tensors in parts:
            t[idx] = tensors[j].cpu()
        out.append(t)
    return Features(*out)


def _key(model_dir: str | Path | None, rm, items) -> str:
    h = hashlib.sha256()
    if model_dir is not None:
        for name in ("model.safetensors", "rewardlab.json"):
            path = Path(model_dir) / name
            if path.exists():
                st = path.stat()
                h.update(f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode())
    contract = {k: getattr(rm.spec, k) for k in rm.spec.CONTRACT}
    h.update(json.dumps([rm.spec.backbone, rm.spec.max_length, contract], sort_keys=True, default=str).encode())
    for p, r in items:
        h.update(json.dumps([p if isinstance(p, str) else list(p), r], ensure_ascii=False).encode())
    return h.hexdigest()[:24]


def cached_features(
    rm, items: list[tuple[Prompt, str]], cache_dir: str | Path | None, model_dir=None, batch_size: int = 32
) -> tuple[Features, bool]:
    """``(features, whether they came from the cache)``; ``cache_dir=None`` computes without caching."""
    if cache_dir is None:
        return compute_features(rm, items, batch_size), False
    path = Path(cache_dir) / f"features-{_key(model_dir, rm, items)}.pt"
    if path.exists():
        d = torch.load(path, weights_only=True)
        return Features(d["rewards"], d["head_input"], d["prompt_hidden"]), True
    f = compute_features(rm, items, batch_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save({"rewards": f.rewards, "head_input": f.head_input, "prompt_hidden": f.prompt_hidden}, tmp)
    os.replace(tmp, path)
    return f, False
