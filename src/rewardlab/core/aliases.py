"""Other trainers' option names that mean exactly what a rewardlab option means: accepted as flags (listed in
``--help`` beside the option) and as ``--config`` keys. Only exact synonyms: TRL's ``per_device_train_batch_size``
is per process while ``--batch-size`` is the whole step's over all processes, so it is a did-you-mean
(:data:`rewardlab.core.settings.SYNONYMS`), not an alias. Nothing is imported here: the parser reads it at start-up."""

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
