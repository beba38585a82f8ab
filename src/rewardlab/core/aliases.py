"""Other names for rewardlab's options, accepted as flags and as ``--config`` / judge-spec keys. Nothing rewardlab is
imported here: the parser reads it at start-up.

* :data:`ALIASES`: other trainers' names that mean exactly what a rewardlab option means (listed in ``--help``
  beside the option). Only exact synonyms: TRL's ``per_device_train_batch_size`` is per process while
  ``--batch-size`` is the whole step's over all processes, so it is a did-you-mean
  (:data:`rewardlab.core.settings.SYNONYMS`), not an alias.
* :data:`RENAMED`: rewardlab's own earlier names, from before one name per concept across commands. They keep
  working where the command had them, with a one-line note on stderr naming the option to use
  (:func:`renamed_note`); ``--help`` lists them as deprecated.
"""

from __future__ import annotations

import sys

ALIASES = {  # alias -> rewardlab's field (a command without that field gets no alias)
    "learning_rate": "lr",  # transformers/TRL: the peak learning rate of AdamW
    "num_train_epochs": "epochs",  # passes over the training data (fractions allowed in both)
    "logging_steps": "log_every",  # steps between logged rows
    "save_steps": "save_every",  # steps between checkpoints
    "eval_steps": "eval_every",  # steps between held-out evaluations
    "save_total_limit": "keep_checkpoints",  # the newest N checkpoints are kept
    "model_name_or_path": "backbone",  # TRL's scripts: the model to put the reward head on
    "num_return_sequences": "n",  # transformers' generate: samples per prompt (`sample --n`, which torchrun's and
    # accelerate's own parsers take for an ambiguous abbreviation of theirs: --nnodes, --nproc-per-node, …)
}

# old name -> (the field it sets, the config classes that had the old name, {old value: new value} or None).
# A value map turns an old boolean flag into the new option's value: `--bf16` / `--no-bf16` (a YAML `bf16: true` /
# `false`; null was "auto") are `--precision bf16` / `fp32`.
RENAMED = {
    "base": ("backbone", ("TrainJudgeConfig",), None),  # train-judge's name for train's --backbone
    "bf16": ("precision", ("TrainJudgeConfig",), {True: "bf16", False: "fp32", None: "auto"}),  # train's --precision
}

_NOTED: set = set()  # the notes printed by this command (one each: flags and a --config file are read twice)


def renamed_in(config_class) -> dict:
    """The :data:`RENAMED` entries of ``config_class`` (by class name: the --help stand-ins share the real names)."""
    name = getattr(config_class, "__name__", "")
    return {old: (new, values) for old, (new, classes, values) in RENAMED.items() if name in classes}


def renamed_value(old: str, value, config_class):
    """``(field, value)`` that the old option ``old`` given as ``value`` stands for in ``config_class``."""
    new, values = renamed_in(config_class)[old]
    if values is None:
        return new, value
    try:
        return new, values[value]
    except (KeyError, TypeError):  # e.g. a YAML `bf16: maybe` or a list: the new option's check names the value
        return new, value


def renamed_note(given: str, new: str, value=None) -> str:
    """Print (once per command) and return the one-line deprecation note for the old option ``given`` (``--base``,
    ``cfg.yaml: base``) that now is ``new`` (``backbone``; ``value``: the value an old boolean flag stands for)."""
    target = "--" + new.replace("_", "-") + ("" if value is None else f" {value}")
    text = f"rewardlab: {given} is a deprecated name; use {target} (the same option; the old name will be removed)"
    if text not in _NOTED:
        _NOTED.add(text)
        print(text, file=sys.stderr, flush=True)
    return text


def forget_notes() -> None:
    """A new command (``rewardlab.cli.main``, also called in-process by tests) notes again."""
    _NOTED.clear()
