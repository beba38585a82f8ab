"""Declared ranges (rewardlab.core.bounds) bind however a config is built: from flags, YAML, or in Python."""

from __future__ import annotations

import math

import pytest

from rewardlab.core.bounds import out_of_bounds
from rewardlab.core.errors import RewardlabError


def test_a_config_built_in_python_is_checked():
    from rewardlab.training.train import TrainConfig

    with pytest.raises(RewardlabError, match=r"TrainConfig: lr = -1.0: must be > 0.0"):
        TrainConfig(lr=-1.0)
    with pytest.raises(RewardlabError, match=r"warmup_ratio = 1.5: must be <= 1.0"):
        TrainConfig(warmup_ratio=1.5)
    with pytest.raises(RewardlabError, match=r"gate_lr = 0.0: must be > 0.0"):  # the multi-objective section too
        TrainConfig(gate_lr=0.0)
    with pytest.raises(RewardlabError, match=r"lr = nan: must be finite"):
        TrainConfig(lr=math.nan)
    assert TrainConfig(lr=1e-3, max_steps=None).lr == 1e-3  # an optional field left out is not checked


@pytest.mark.parametrize(
    "module, name, field, value",
    [
        ("rewardlab.commands.evaluate", "EvalConfig", "n_boot", -1),
        ("rewardlab.serve.config", "ServeConfig", "port", 70000),
        ("rewardlab.commands.score", "ScoreConfig", "batch_size", 0),
        ("rewardlab.commands.export", "ExportConfig", "tolerance", -1.0),
        ("rewardlab.judges.train", "TrainJudgeConfig", "lr", -1.0),
    ],
)
def test_every_command_config_binds_its_ranges(module, name, field, value):
    import importlib

    cls = getattr(importlib.import_module(module), name)
    import dataclasses

    if field not in {f.name for f in dataclasses.fields(cls)}:
        pytest.skip(f"{name} has no {field}")
    with pytest.raises(RewardlabError, match=rf"{name}: {field} = {value!r}: must be"):
        cls(**{field: value})


def test_out_of_bounds_names_each_problem():
    """lr = 0 breaks Gt(0); eval_fraction = 2 breaks Le(1): two problems, in field order."""
    from rewardlab.training.train import TrainConfig

    cfg = TrainConfig()
    object.__setattr__(cfg, "lr", 0.0)
    object.__setattr__(cfg, "eval_fraction", 2.0)
    assert out_of_bounds(cfg) == ["eval_fraction = 2.0: must be <= 1.0", "lr = 0.0: must be > 0.0"]
