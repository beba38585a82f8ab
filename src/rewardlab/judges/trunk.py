"""Frozen-trunk caching for judge training: run the frozen lower decoder blocks once per prompt.

When only the last ``n_top`` blocks of a causal LM are trained (``rewardlab train-judge --train-layers N``),
the hidden state entering block ``L − N`` of a prompt never changes. :class:`TrunkCachedBackend` stores it
(keyed by the prompt's token ids) the first time the prompt is seen — while the untrained base is evaluated, or
before the first training step — and afterwards runs only the top blocks: further epochs and the evaluation of
the trained judge cost about ``N / L`` of a full forward pass.

It works by handing the cached states to the model as ``inputs_embeds`` with its block list temporarily cut to
the top blocks, so masks, rotary positions, the final norm and the LM head are the model's own. Construction
checks on a probe prompt that the split forward pass equals the full one and refuses otherwise (e.g. Gemma,
which rescales ``inputs_embeds``).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Sequence

import torch

from rewardlab.core.errors import RewardlabError
from rewardlab.judges.hf import HFBackend


def _blocks(model):
    base = getattr(model, "model", None)
    layers = getattr(base, "layers", None)
    if base is None or layers is None or not hasattr(base, "embed_tokens"):
        raise RewardlabError(
            f"trunk caching needs a decoder with model.layers (Llama, Qwen, Mistral); got {type(model).__name__}"
        )
    return base, layers


class TrunkCachedBackend(HFBackend):
    """An :class:`HFBackend` over the same model that caches the input of the top ``n_top`` blocks."""

    def __init__(self, backend: HFBackend, n_top: int, check: bool = True):
        self.__dict__.update(backend.__dict__)  # same model, tokenizer, settings
        self.base, layers = _blocks(self.model)
        if not 0 < n_top <= len(layers):
            raise RewardlabError(f"n_top must be in 1..{len(layers)}, got {n_top}")
        self.all_layers = layers
        self.lower = torch.nn.ModuleList(list(layers)[: len(layers) - n_top])
        self.upper = torch.nn.ModuleList(list(layers)[len(layers) - n_top :])
        self.store: dict[tuple, torch.Tensor] = {}
        self.hits = self.misses = 0
        if check:
            self._self_check()

    @contextmanager
    def _only(self, blocks):
        self.base.layers = blocks
        try:
            yield
        finally:
            self.base.layers = self.all_layers

    def _pos(self, mask):
        return (mask.cumsum(-1) - 1).clamp(min=0)

    @torch.no_grad()
    def _lower_states(self, seqs: Sequence[list[int]]) -> list[torch.Tensor]:
        """The (unpadded) hidden states entering the top blocks, one ``(T, H)`` tensor per sequence."""
        batch = self._batch(seqs)
        if len(self.lower) == 0:
            with self.autocast_context():
                h = self.base.embed_tokens(batch["input_ids"])
        else:
            captured = {}
            hook = self.lower[-1].register_forward_hook(
                lambda mod, args, out: captured.__setitem__("h", out[0] if isinstance(out, tuple) else out)
            )
            try:
                with self._only(self.lower), self.autocast_context():
                    self.base(**batch, position_ids=self._pos(batch["attention_mask"]), use_cache=False)
            finally:
                hook.remove()
            h = captured["h"]
        width = batch["input_ids"].shape[1]
        return [h[r, width - len(s) :].detach() for r, s in enumerate(seqs)]

    def states(self, seqs: Sequence[list[int]], store: bool = True) -> list[torch.Tensor]:
        out: list[torch.Tensor | None] = [None] * len(seqs)
        todo = []
        for i, s in enumerate(seqs):
            hit = self.store.get(tuple(s))
            if hit is not None:
                out[i] = hit
                self.hits += 1
            else:
                todo.append(i)
        self.misses += len(todo)
        for start in range(0, len(todo), self.batch_size):
            idx = todo[start : start + self.batch_size]
            for i, h in zip(idx, self._lower_states([seqs[i] for i in idx])):
                out[i] = h
                if store:
                    self.store[tuple(seqs[i])] = h
        return out

    def upper_logits(self, states: Sequence[torch.Tensor]) -> torch.Tensor:
        """Next-token logits ``(B, vocab)`` from cached states, left-padded; gradients flow into the top blocks."""
        width = max(h.shape[0] for h in states)
        hidden = states[0].shape[1]
        emb = torch.zeros((len(states), width, hidden), dtype=states[0].dtype, device=self.device)
        mask = torch.zeros((len(states), width), dtype=torch.long, device=self.device)
        for r, h in enumerate(states):
            emb[r, width - h.shape[0] :] = h
            mask[r, width - h.shape[0] :] = 1
        with self._only(self.upper), self.autocast_context():
            out = self.model(
                inputs_embeds=emb, attention_mask=mask, position_ids=self._pos(mask), logits_to_keep=1, use_cache=False
            )
        return out.logits[:, -1].float()

    def last_logits(self, seqs: Sequence[list[int]]) -> torch.Tensor:
        return self.upper_logits(self.states(seqs))

    def _self_check(self) -> None:
        probe = [
            self.tok("The quick brown fox jumps over the lazy dog.", add_special_tokens=False)["input_ids"],
            self.tok("Hi", add_special_tokens=False)["input_ids"],
        ]
        with torch.no_grad():
            full = HFBackend.last_logits(self, probe)
            split = self.upper_logits(self.states(probe, store=False))
        tol = 5e-2 if self.autocast is not None else 1e-3
        if not torch.allclose(full, split, atol=tol, rtol=0):
            raise RewardlabError(
                f"trunk caching does not reproduce the full forward pass of {type(self.model).__name__} "
                f"(max |diff| {float((full - split).abs().max()):.3g}); train without --cache-trunk"
            )
        self.hits = self.misses = 0

    def describe(self) -> dict:
        return {**super().describe(), "trunk_cache": {"top_blocks": len(self.upper), "cached_prompts": len(self.store)}}
