"""K attribute rewards → one score. Each scaliser is recorded in ``rewardlab.json`` (``to_json``) and used by
score, eval and serve; :data:`SCALARISERS` is the registry, :func:`parse_scaliser` reads the command-line form.

* ``weights`` — fixed weights ``Σ_k w_k r_k`` (``--weights helpfulness=0.3,correctness=0.74``; presets
  :data:`PRESETS`: ``nemotron`` (Nemotron-4-340B-Reward's RewardBench weights) and ``equal``).
* ``llama2`` — Llama 2's rule: ``R = R_safety`` if the prompt is tagged unsafe or ``R_safety < threshold``
  (0.15), else ``R_helpfulness``; then ``logit(R)``, whitened with stored mean/std when they are recorded.
* ``gate`` — the learned ArmoRM gate: ``β · g(p)ᵀ r′`` on the verbosity-debiased rewards (the gate and the
  transform live in the model; see :class:`rewardlab.multiobjective.model.AttributeRewardModel`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from rewardlab.core.errors import ModelContractError, RewardlabError
from rewardlab.core.normstats import stats_problem, whitening_problem
from rewardlab.core.specfields import checked_fields

PRESETS: dict[str, dict[str, float]] = {
    # Nemotron-4-340B-Reward model card: w over (helpfulness, correctness, coherence, complexity, verbosity)
    "nemotron": {"helpfulness": 0.3, "correctness": 0.74, "coherence": 0.46, "complexity": 0.47, "verbosity": -0.33},
}


@dataclass(frozen=True)
class FixedWeights:
    """``Σ_k w_k r_k``; attributes without a weight count 0. ``equal=True``: ``w_k = 1/K`` for every attribute."""

    weights: dict[str, float] = field(default_factory=dict)
    equal: bool = False
    kind = "weights"

    def __post_init__(self):
        bad = sorted(k for k, w in self.weights.items() if not math.isfinite(w))
        if bad:
            raise RewardlabError(f"weights: {', '.join(bad)} must be finite numbers")

    def vector(self, attributes: list[str]) -> torch.Tensor:
        if self.equal:
            return torch.full((len(attributes),), 1.0 / len(attributes))
        unknown = sorted(set(self.weights) - set(attributes))
        if unknown:
            raise RewardlabError(
                f"weights name attribute(s) {', '.join(unknown)} the model does not have "
                f"(it has {', '.join(attributes)})"
            )
        return torch.tensor([float(self.weights.get(a, 0.0)) for a in attributes])

    def __call__(self, rewards: torch.Tensor, attributes: list[str], **_) -> torch.Tensor:
        """rewards ``(N, K)`` → ``(N,)``."""
        return rewards.float() @ self.vector(attributes)

    def to_json(self) -> dict:
        return {"type": self.kind, "equal": True} if self.equal else {"type": self.kind, "weights": dict(self.weights)}


@dataclass(frozen=True)
class Llama2Rule:
    """Llama 2 (§3.2.2): safety reward where the prompt is unsafe or the safety reward is low, else helpfulness."""

    safety: str = "harmlessness"
    helpfulness: str = "helpfulness"
    threshold: float = 0.15
    whiten_mean: float | None = None  # of logit(R) on a reference set; None: not whitened
    whiten_std: float | None = None
    eps: float = 1e-6  # R is clamped to [eps, 1 - eps] before the logit
    kind = "llama2"

    def __post_init__(self):
        if not (math.isfinite(self.threshold) and 0 < self.threshold < 1):
            raise RewardlabError(f"threshold must lie in (0, 1) (R is in (0, 1)), got {self.threshold}")
        if not (math.isfinite(self.eps) and 0 < self.eps < 0.5):
            raise RewardlabError(f"eps must lie in (0, 0.5), got {self.eps}")
        if (self.whiten_mean is None) != (self.whiten_std is None):
            raise RewardlabError("whiten_mean and whiten_std are given together or not at all")
        problem = whitening_problem(self.whiten_mean, self.whiten_std)
        if problem is not None:
            raise RewardlabError(problem)

    def combined(
        self, rewards: torch.Tensor, attributes: list[str], unsafe: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``R`` ``(N,)`` before the logit."""
        for name in (self.safety, self.helpfulness):
            if name not in attributes:
                raise RewardlabError(
                    f"the Llama 2 rule reads attribute {name!r}; the model has {', '.join(attributes)}"
                )
        r_s = rewards[:, attributes.index(self.safety)].float()
        r_h = rewards[:, attributes.index(self.helpfulness)].float()
        use_safety = r_s < self.threshold
        if unsafe is not None:
            use_safety = use_safety | unsafe.bool()
        return torch.where(use_safety, r_s, r_h)

    def __call__(
        self, rewards: torch.Tensor, attributes: list[str], unsafe: torch.Tensor | None = None, **_
    ) -> torch.Tensor:
        r = self.combined(rewards, attributes, unsafe).clamp(self.eps, 1 - self.eps)
        z = torch.log(r) - torch.log1p(-r)
        if self.whiten_mean is not None:
            z = (z - self.whiten_mean) / (self.whiten_std if self.whiten_std else 1.0)
        return z

    def with_whitening(
        self, rewards: torch.Tensor, attributes: list[str], unsafe: torch.Tensor | None = None
    ) -> "Llama2Rule":
        """The same rule with mean/std of ``logit(R)`` measured on ``rewards`` (a reference set)."""
        z = Llama2Rule(self.safety, self.helpfulness, self.threshold, eps=self.eps)(rewards, attributes, unsafe)
        if len(z) < 2:
            raise RewardlabError(f"whitening needs at least two reference texts, got {len(z)}")
        mean, std = float(z.double().mean()), float(z.double().std())
        problem = stats_problem(mean, std, len(z), scale=float(z.abs().max()))
        if problem is not None:
            raise RewardlabError(f"cannot whiten with logit(R) of these {len(z)} reference texts: {problem}")
        return Llama2Rule(self.safety, self.helpfulness, self.threshold, mean, std, self.eps)

    def to_json(self) -> dict:
        return {
            "type": self.kind,
            "safety": self.safety,
            "helpfulness": self.helpfulness,
            "threshold": self.threshold,
            "whiten_mean": self.whiten_mean,
            "whiten_std": self.whiten_std,
            "eps": self.eps,
        }


@dataclass(frozen=True)
class GatedSum:
    """``Σ_k g_k r′_k`` with ``g`` already scaled by β (the model computes both)."""

    kind = "gate"

    def __call__(
        self, rewards: torch.Tensor, attributes: list[str], gate: torch.Tensor | None = None, **_
    ) -> torch.Tensor:
        if gate is None:
            raise RewardlabError(
                "the gate scaliser needs a model with a trained gate (rewardlab train --objective gating)"
            )
        return (gate.float() * rewards.float()).sum(-1)

    def to_json(self) -> dict:
        return {"type": self.kind}


SCALARISERS = {"weights": FixedWeights, "llama2": Llama2Rule, "gate": GatedSum}
Scaliser = FixedWeights | Llama2Rule | GatedSum


def scaliser_from_json(d: dict, source: str = "rewardlab.json", section: str = "scaliser") -> Scaliser:
    """The recorded scaliser ``d`` (read from ``source``, at ``section``): every field of its type and value, else
    :class:`ModelContractError` naming ``source: section.field``."""
    if not isinstance(d, dict):
        raise ModelContractError(f"{source}: {section} must be an object with a type, got {d!r}")
    kind = d.get("type")
    if kind not in SCALARISERS:
        raise ModelContractError(
            f"{source}: {section}.type: unknown scaliser type {kind!r}; known: {', '.join(SCALARISERS)}"
        )
    cls = SCALARISERS[kind]
    fields = checked_fields(cls, {k: v for k, v in d.items() if k != "type"}, source, section)
    try:
        return cls(**fields)
    except RewardlabError as e:
        raise ModelContractError(f"{source}: {section}: {e}") from None


def _pairs(text: str, what: str) -> dict[str, str]:
    out = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise RewardlabError(f"{what}: expected name=value pairs separated by commas, got {part.strip()!r}")
        out[name.strip()] = value.strip()
    return out


def _float(value: str, what: str) -> float:
    try:
        x = float(value)
    except ValueError:
        x = float("nan")
    if not math.isfinite(x):
        raise RewardlabError(f"{what}: expected a finite number, got {value!r}")
    return x


def parse_scaliser(text: str | None) -> Scaliser | None:
    """Command-line form → scaliser. ``None``/"" → None.

    ``nemotron`` | ``equal`` | ``gate`` | ``helpfulness=0.3,correctness=0.74`` (fixed weights) |
    ``llama2`` or ``llama2:safety=harmlessness,helpfulness=helpfulness,threshold=0.15``.
    """
    if text is None or not str(text).strip():
        return None
    text = str(text).strip()
    if text in PRESETS:
        return FixedWeights(dict(PRESETS[text]))
    if text == "equal":
        return FixedWeights(equal=True)
    if text == "gate":
        return GatedSum()
    if text.split(":", 1)[0] == "llama2":
        opts = _pairs(text.split(":", 1)[1], "--weights llama2") if ":" in text else {}
        unknown = sorted(set(opts) - {"safety", "helpfulness", "threshold"})
        if unknown:
            raise RewardlabError(
                f"--weights llama2: unknown option(s) {unknown}; valid: safety, helpfulness, threshold"
            )
        kw: dict = {k: v for k, v in opts.items() if k != "threshold"}
        if "threshold" in opts:
            kw["threshold"] = _float(opts["threshold"], "--weights llama2 threshold")
        return Llama2Rule(**kw)
    return FixedWeights({k: _float(v, f"--weights {k}") for k, v in _pairs(text, "--weights").items()})
