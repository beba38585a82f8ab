"""An :class:`AttributeRewardModel` behind the reward server's batcher (:mod:`rewardlab.serve`).

The batcher calls ``rm.encoder.encode``, ``rm.collate`` and ``rm(**batch).tolist()``. This adapter answers
each text with a row ``[score, r_1..r_K, r′_1..r′_K, g_1..g_K]`` (gate weights 0 without a gate), which
:func:`unpack` turns into the server's answer: ``score`` for ``/get_reward`` (and ``rewards`` of ``/v1/score``),
and per-attribute rewards, transformed rewards and gate weights for ``/v1/score``.
"""
from __future__ import annotations

import torch

from rewardlab.multiobjective.model import AttributeRewardModel


class _Encoder:
    def __init__(self, rm: AttributeRewardModel):
        self.rm = rm

    def encode(self, prompt, response) -> dict:
        return self.rm.encode(prompt, response)


class ServingModel(torch.nn.Module):
    multiobjective = True

    def __init__(self, rm: AttributeRewardModel):
        super().__init__()
        self.inner = rm
        self.model, self.tokenizer, self.spec = rm.model, rm.tokenizer, rm.spec
        self.encoder = _Encoder(rm)

    @property
    def attributes(self) -> list[str]:
        return self.inner.attributes

    def collate(self, features: list[dict], padding_side: str | None = None) -> dict[str, torch.Tensor]:
        return self.inner.collate(features)

    def forward(self, **batch) -> torch.Tensor:
        rm = self.inner
        if rm.gate is not None:
            rewards, _, hidden = rm.features(batch)
        else:
            rewards, hidden = rm(**batch), None
        out = rm.outputs(rewards.cpu(), None if hidden is None else hidden.cpu())
        gate = out.gate if out.gate is not None else torch.zeros_like(out.rewards)
        return torch.cat([out.score[:, None], out.rewards, out.transformed, gate], dim=1)

    def normalize(self, rewards):
        raise NotImplementedError("multi-objective models have no normalisation statistics")


def unpack(rows: list[list[float]], attributes: list[str], has_gate: bool) -> dict:
    k = len(attributes)
    out = {"rewards": [r[0] for r in rows],
           "attributes": [dict(zip(attributes, r[1:1 + k])) for r in rows],
           "transformed": [dict(zip(attributes, r[1 + k:1 + 2 * k])) for r in rows]}
    out["gate"] = [dict(zip(attributes, r[1 + 2 * k:1 + 3 * k])) for r in rows] if has_gate else None
    return out


def load_for_serving(path: str) -> ServingModel:
    return ServingModel(AttributeRewardModel.load(path))


class MultiObjectiveScorer:
    """A K-output model as a ``rewardlab eval`` scorer: pointwise ``score`` is the model's scaliser, and
    :meth:`multiobjective_report` adds accuracy under every scaliser, length correlations and the gate plot."""

    pointwise = True

    def __init__(self, rm: AttributeRewardModel):
        self.rm, self.spec, self.tokenizer = rm, rm.spec, rm.tokenizer

    @classmethod
    def load(cls, path: str) -> "MultiObjectiveScorer":
        return cls(AttributeRewardModel.load(path))

    def score(self, items, batch_size: int = 32) -> list[float]:
        return self.rm.score_items(list(items), batch_size=batch_size).score.tolist()

    def describe(self) -> dict:
        return {"attributes": self.rm.attributes, "scaliser": self.rm.mo.scaliser, "debias": self.rm.mo.debias}

    def multiobjective_report(self, records, plot=None, batch_size: int = 32) -> dict:
        from rewardlab.multiobjective.train import evaluate_pairs

        return evaluate_pairs(self.rm, records, None, None, batch_size, plot=plot if self.rm.gate is not None else None)


def multiobjective_note(name: str, report: dict) -> str:
    """One report line: accuracy [95% CI] and |Spearman(score, length)| under each scaliser."""
    parts = [f"{s} {a['accuracy']:.3f} [{a['ci95'][0]:.3f}, {a['ci95'][1]:.3f}] |ρ_len| "
             f"{report['abs_spearman_score_vs_length'][s]:.3f}" for s, a in report["accuracy"].items()]
    return f"{name} (multi-objective): " + "; ".join(parts)
