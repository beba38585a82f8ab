"""The multi-objective section of ``rewardlab train``'s options: its own typed config, which
:class:`rewardlab.training.train.TrainConfig` takes in (a base class: ``--help`` lists these fields under their sections, and
every field is a flag). Imports nothing heavy: ``--help`` reads it from source.

:meth:`MultiObjectiveOptions.check_multiobjective` fails before any model loads: the objective is known, the
attribute list, scales and scaliser parse, the gate sizes are positive, and the options a multi-objective run
cannot honour (``--packing``; for gating, whose gate trains on cached features in one go, ``--save-every`` /
``--stop-after`` / ``--resume``) are refused naming the option.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from rewardlab.core.bounds import Bounded, NonNegativeFloat, Positive, PositiveFloat
from rewardlab.core.errors import RewardlabError

# the multi-objective trainers of ``--objective``, by dotted name (imported when that objective runs);
# rewardlab.training.train.TRAINERS is the scalar trainer's "preference" plus these
TRAINERS = {
    "regression": "rewardlab.multiobjective.train:train_regression_run",
    "gating": "rewardlab.multiobjective.train:train_gating_run",
}
OBJECTIVE_NAMES = tuple(TRAINERS)  # the multi-objective objectives


@dataclass
class MultiObjectiveOptions(Bounded):
    # multi-objective
    # rewardlab.multiobjective: preference (a scalar BT-family model) | regression (K attribute outputs, masked
    # MSE) | gating (ArmoRM stage 2 on a regression model given by --init-from)
    objective: str = "preference"
    attributes: str | None = None  # regression: rating columns / attributes, e.g. "helpfulness,correctness"
    attribute_scales: str | None = None  # scales of attributes without a known one, e.g. "quality=0:9"
    weights: str | None = None  # regression scaliser: nemotron | equal | llama2[:...] | helpfulness=0.3,...
    stage1: str = "gradient"  # regression: gradient (train backbone + head) | ridge (frozen features, closed form)
    init_from: str | None = None  # gating: the regression model; preference: start BT from its --init-attribute
    init_attribute: str | None = None  # preference --init-from: the attribute whose output becomes the reward
    reference_data: str | None = None  # gating: pairs the verbosity λ are fitted on (default: the training pairs)
    debias: bool = True  # gating: verbosity debiasing r' = r - λ·r_verbosity before the gate
    verbosity_attribute: str = "verbosity"  # gating: the attribute whose reward measures verbosity
    debias_threshold: NonNegativeFloat = 0.03  # λ_j: smallest grid value with Spearman(r'_j, r_verbosity) <= this
    gate_hidden: Positive = 1024  # gate MLP width (ArmoRM: 1024)
    gate_layers: Positive = 3  # gate hidden layers
    gate_steps: Positive = 500  # gating: optimizer steps of the gate (backbone and probes frozen)
    gate_batch_size: Positive = 1024  # gating: pairs per gate step (on cached features)
    gate_lr: PositiveFloat = 1e-3  # gating: AdamW learning rate of the gate (cosine schedule)
    feature_cache: str | None = None  # where cached hidden states go (default: OUTPUT_DIR/features)

    def check_multiobjective(self) -> None:
        """Fail before any model loads (see the module docstring). Reads ``packing``, ``save_every``,
        ``stop_after`` and ``resume`` of the config this section is part of."""
        from rewardlab.data.ratings import parse_attribute_list, parse_scales  # lazy: --help stays light
        from rewardlab.multiobjective.scalarise import parse_scaliser  # lazy: --help stays light (torch)

        objectives = ("preference", *OBJECTIVE_NAMES)  # rewardlab.training.train.TRAINERS' keys
        if self.objective not in objectives:
            raise RewardlabError(f"objective must be {', '.join(objectives)}, not {self.objective!r}")
        parse_attribute_list(self.attributes)
        parse_scales(self.attribute_scales)
        parse_scaliser(self.weights)
        if self.stage1 not in ("gradient", "ridge"):
            raise RewardlabError(f"stage1 must be gradient or ridge, not {self.stage1!r}")
        if self.objective in OBJECTIVE_NAMES and getattr(self, "packing", False):
            raise RewardlabError(
                f"--packing does not cover --objective {self.objective} yet (K-output rows are padded; "
                "ridge and gating read cached features); drop --packing"
            )
        if self.objective == "gating":  # the options a run gives that gating would otherwise leave unused
            defaults = {f.name: f.default for f in dataclasses.fields(self)}
            given = [
                flag
                for flag, name in (("--save-every", "save_every"), ("--stop-after", "stop_after"))
                if getattr(self, name, None) not in (None, 0, defaults.get(name))
            ]
            if given:
                raise RewardlabError(
                    f"{' and '.join(given)} {'do' if len(given) > 1 else 'does'} not apply to --objective gating: "
                    "the gate trains on cached features in one go and has no checkpoints (its final save is "
                    f"atomic); drop {'them' if len(given) > 1 else 'it'}"
                )
