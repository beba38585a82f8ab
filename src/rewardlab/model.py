"""The reward model, where users import it: ``from rewardlab.model import RewardModel`` (the code lives in :mod:`rewardlab.models.reward_model`; the full contract there)."""

from rewardlab.models.reward_model import RewardModel, ScoringSpec, TextEncoder

__all__ = ["RewardModel", "ScoringSpec", "TextEncoder"]
