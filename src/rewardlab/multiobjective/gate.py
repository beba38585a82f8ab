"""ArmoRM's gating network: prompt representation → weights over the K objectives.

``g(p) = softmax(MLP(p) / τ)`` with the softmax over the **last** axis, the K objectives, for any number of
leading axes. (ArmoRM's released stage-2 script feeds ``(B, 2, d)`` and takes ``softmax(dim=1)``, which
normalises over chosen/rejected instead; RLHFlow issue #54.) The score multiplies by a learnable scale β
(``logit_scale``, initialised to 1), which is kept apart from the weights so they always sum to 1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch


@dataclass(frozen=True)
class GateConfig:
    input_dim: int
    n_objectives: int
    hidden: int = 1024  # ArmoRM: 1024
    n_hidden: int = 3  # hidden layers (ArmoRM: d→1024→1024→1024→K)
    dropout: float = 0.2
    temperature: float = 10.0  # τ

    def to_json(self) -> dict:
        return asdict(self)


class GatingNetwork(torch.nn.Module):
    def __init__(self, cfg: GateConfig):
        super().__init__()
        if cfg.n_hidden < 1 or cfg.hidden < 1 or cfg.temperature <= 0:
            raise ValueError(f"gate needs n_hidden >= 1, hidden >= 1 and temperature > 0, got {cfg}")
        self.cfg = cfg
        layers: list[torch.nn.Module] = []
        width = cfg.input_dim
        for _ in range(cfg.n_hidden):
            layers += [torch.nn.Linear(width, cfg.hidden), torch.nn.ReLU(), torch.nn.Dropout(cfg.dropout)]
            width = cfg.hidden
        layers.append(torch.nn.Linear(width, cfg.n_objectives))
        self.mlp = torch.nn.Sequential(*layers)
        self.logit_scale = torch.nn.Parameter(torch.ones(1))  # β

    def weights(self, prompt_hidden: torch.Tensor) -> torch.Tensor:
        """``(..., d)`` → ``(..., K)``, non-negative and summing to 1 over K for every example."""
        return torch.softmax(self.mlp(prompt_hidden.float()) / self.cfg.temperature, dim=-1)

    def forward(self, prompt_hidden: torch.Tensor, rewards: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Gated score ``β · gᵀ r`` ``(...,)`` and the weights ``g`` ``(..., K)``; rewards ``(..., K)`` (transformed)."""
        g = self.weights(prompt_hidden)
        return self.logit_scale[0] * (g * rewards.float()).sum(-1), g
