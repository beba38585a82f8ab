"""AdamW with fp32 master weights for bf16 parameters (``--precision bf16-pure``).

Memory per parameter, weights + gradients + optimizer state, for ``N`` parameters:

* ``--precision bf16`` (autocast over fp32 weights): 4 (fp32 weight) + 4 (fp32 gradient) + 8 (AdamW moments)
  + 2 (the bf16 copy autocast makes of every weight and autograd keeps for the backward) = 18 bytes;
* ``--precision bf16-pure``: 2 (bf16 weight) + 2 (bf16 gradient) + 4 (fp32 master) + 8 (moments) = 16 bytes,
  and activations are bf16 without casts.

bf16 weights alone cannot be trained at reward-model learning rates: a bf16 number has 8 significant bits, so an
update smaller than ~2⁻⁹ of a weight rounds away (``1.0 + 1e-4`` is ``1.0`` in bf16). :class:`MasterAdamW` keeps
an fp32 copy of every low-precision parameter in its state, applies AdamW to that copy with the fp32 gradient,
and rounds the result into the parameter; fp32 parameters are updated as plain AdamW does (bit-identical).
The masters are part of ``state_dict()``, so checkpoints and ``--resume`` keep them exactly.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch


class MasterAdamW(torch.optim.AdamW):
    """:class:`torch.optim.AdamW` whose arithmetic runs on fp32 masters of low-precision parameters."""

    def __init__(self, params, *args, **kwargs):
        super().__init__(params, *args, **kwargs)
        self._master: dict[torch.nn.Parameter, torch.Tensor] = {}

    def _params(self) -> list:
        return [p for g in self.param_groups for p in g["params"]]

    @contextmanager
    def _masters_in_place(self):
        """Temporarily put each low-precision parameter's fp32 master (created on first use) in its place, and its
        gradient in fp32; on exit round the masters into the parameters and restore them."""
        swapped = []
        for p in self._params():
            if p.dtype == torch.float32 or p.grad is None:
                continue
            if p not in self._master:
                self._master[p] = p.detach().float().clone()
            swapped.append((p, p.data, p.grad))
            p.data, p.grad = self._master[p], p.grad.float()
        try:
            yield
        finally:
            for p, low, low_grad in swapped:
                low.copy_(p.data)
                p.data, p.grad = low, low_grad

    @torch.no_grad()
    def step(self, closure=None):
        with self._masters_in_place():
            return super().step(closure)

    def state_dict(self) -> dict:
        out = super().state_dict()
        out["masters"] = {i: self._master[p] for i, p in enumerate(self._params()) if p in self._master}
        return out

    def load_state_dict(self, state_dict: dict) -> None:
        """torch casts loaded floating-point state to each parameter's dtype; with the parameters standing in as
        fp32 for the load, the moments stay fp32."""
        state_dict = dict(state_dict)
        masters = state_dict.pop("masters", {})
        low = [(p, p.data) for p in self._params() if p.dtype != torch.float32]
        for p, data in low:
            p.data = data.float()
        try:
            super().load_state_dict(state_dict)
        finally:
            for p, data in low:
                p.data = data
        params = self._params()
        self._master = {
            params[int(i)]: m.to(device=params[int(i)].device, dtype=torch.float32).clone() for i, m in masters.items()
        }

    def masters(self) -> dict[torch.nn.Parameter, torch.Tensor]:
        """The fp32 master of every low-precision parameter updated at least once."""
        return dict(self._master)
