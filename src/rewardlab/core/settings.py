"""One validation layer for every command's options, from flags and YAML alike.

A command's options are the fields of a typed dataclass config; the field annotations (with the ranges of
:mod:`rewardlab.core.bounds`) are the whole specification. :func:`validate` hands the merged values to pydantic,
built once per config class from those annotations, then constructs the dataclass (whose ``__post_init__``
checks the choices that depend on registries, such as the loss name). Nothing here hand-writes a coercion:

* YAML ``lr: 1e-4`` (a string to PyYAML) is the number 1e-4; ``"5"`` for an int is 5, ``1.5`` is an error;
* booleans are true/false/yes/no/on/off/1/0 (any case) and anything else is an error, never "truthy";
* every float is finite; a range declared on the field is enforced (``batch_size >= 1``, fractions in [0, 1]);
* each error names the option and where it came from: ``--max-steps`` or ``cfg.yaml: max_steps``;
* an unknown YAML key is refused with a did-you-mean (``learning_rate`` -> ``lr``).

The sources of values: flags (:func:`rewardlab.cli.build_config`), a YAML (or JSON) file (:func:`read_yaml`: a
``--config``, a judge spec file, a judge template file) and ``key=value,…`` text (:func:`read_key_values`: a
judge spec for ``eval --judge``). All of them end in :func:`validate`, so the same option gets the same error
whichever way it was given.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import typing
from pathlib import Path

import pydantic

from rewardlab.core.errors import RewardlabError

# How other trainers spell some options (transformers' TrainingArguments, TRL): the did-you-mean for them.
SYNONYMS = {
    "learning_rate": "lr",
    "learningrate": "lr",
    "num_train_epochs": "epochs",
    "num_epochs": "epochs",
    "per_device_train_batch_size": "batch_size",
    "train_batch_size": "batch_size",
    "per_device_eval_batch_size": "eval_batch_size",
    "lr_scheduler_type": "lr_schedule",
    "warmup": "warmup_ratio",
    "grad_clip": "max_grad_norm",
    "clip_grad_norm": "max_grad_norm",
    "max_seq_length": "max_length",
    "max_len": "max_length",
    "model_name_or_path": "backbone",
    "dataset": "data",
    "train_data": "data",
    "train_file": "data",
    "eval_file": "eval_data",
    "output": "output_dir",
    "out_dir": "output_dir",
    "logging_steps": "log_every",
    "save_steps": "save_every",
    "eval_steps": "eval_every",
    "save_total_limit": "keep_checkpoints",
    "gradient_accumulation_steps": "micro_batch_size",
    "model_path": "model",
    "input": "data",
    "output_file": "output",
    # one name per concept across commands: what another command (or trainer) calls the same thing
    "base": "backbone",
    "base_model": "backbone",
    "model": "backbone",  # train, train-judge: the model trained is the backbone (score/eval/serve: --model)
    "backbone": "model",  # score, eval, serve, judge: the model run is --model
    "bf16": ("precision", "dtype"),  # a trainer: --precision bf16; a scoring command: --dtype bfloat16
    "fp16": ("precision", "dtype"),
    "mixed_precision": "precision",
    "torch_dtype": ("dtype", "precision"),
    "dtype": "precision",  # train, train-judge (their weights are float32; --precision is the arithmetic)
    "precision": "dtype",  # score, eval, judge, serve, probe, normalize
    "load_in_4bit": "quantize",
    "load_in_8bit": "quantize",
    "device_map": "device",
}


def synonym(key: str, names) -> str | None:
    """The option of ``names`` that :data:`SYNONYMS` says ``key`` means (the first of several that is there)."""
    guesses = SYNONYMS.get(key, ())
    return next((g for g in ((guesses,) if isinstance(guesses, str) else guesses) if g in names), None)


_CONFIG = pydantic.ConfigDict(allow_inf_nan=False, coerce_numbers_to_str=True, extra="forbid", strict=False)


@dataclasses.dataclass(frozen=True)
class Sourced:
    """Where each supplied value came from: ``sources[name]`` is ``--flag-name`` or ``file.yaml: name``."""

    values: dict
    sources: dict


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


@functools.lru_cache(maxsize=None)
def _adapter(cls) -> pydantic.TypeAdapter:
    """A pydantic adapter over the fields of dataclass ``cls``: the annotations with their declared ranges."""
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        fields[f.name] = (hints[f.name], ...)
    model = pydantic.create_model(f"{cls.__name__}Settings", __config__=_CONFIG, **fields)
    return pydantic.TypeAdapter(model)


def _defaults(cls) -> dict:
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def _is_list(tp) -> bool:
    tp = _strip_optional(tp)
    return typing.get_origin(tp) is list


def _strip_optional(tp):
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) is typing.Union or type(tp).__name__ == "UnionType":
        return args[0] if len(args) == 1 else tp
    return tp


def did_you_mean(key: str, names) -> str:
    """`` (did you mean 'lr'?)`` for a misspelt or foreign option name, else ``""``."""
    names = list(names)
    guess = synonym(key, names)
    if guess is None:
        close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
        guess = close[0] if close else None
    return f" (did you mean {guess!r}?)" if guess else ""


def known_options(cls, items, where) -> Sourced:
    """``items`` (``(key, value)`` pairs; ``-`` in a key is ``_``) as options of dataclass ``cls``, each sourced as
    ``where(key)``; every unknown key refused at once, each with a did-you-mean."""
    from rewardlab.core.aliases import (  # lazy: other names for the same options, read per file
        ALIASES,
        renamed_in,
        renamed_note,
        renamed_value,
    )

    names = [f.name for f in dataclasses.fields(cls)]
    renamed = renamed_in(cls)
    values, sources, problems = {}, {}, []
    for key, value in items:
        name = str(key).replace("-", "_")
        if name not in names and ALIASES.get(name) in names:
            name = ALIASES[name]
        elif name not in names and name in renamed:  # a deprecated earlier name: set the option, with a note
            old = name
            name, new_value = renamed_value(old, value, cls)
            renamed_note(where(key), name, value=None if renamed[old][1] is None else new_value)
            value = new_value
        if name in values:
            problems.append(f"{where(key)}: the same option as {sources[name]}; give it once")
            continue
        if name not in names:
            problems.append(f"{where(key)}: unknown option{did_you_mean(name, names)}")
            continue
        values[name] = value
        sources[name] = where(key)
    if problems:
        raise RewardlabError("\n".join(problems) + f"\nvalid options: {', '.join(sorted(names))}")
    return Sourced(values, sources)


def read_yaml(cls, path: str | Path) -> Sourced:
    """The options in a YAML (or JSON) file, each sourced as ``file.yaml: key``; unknown keys refused."""
    import yaml  # lazy: settings is on the light --help start-up path, and only a --config file needs PyYAML

    path = Path(path)
    if not path.is_file():
        raise RewardlabError(
            f"--config: {path} does not exist" if not path.exists() else f"--config: {path} is not a file"
        )
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise RewardlabError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        raise RewardlabError(f"{path}{where}: not valid YAML ({getattr(e, 'problem', None) or e})") from None
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        raise RewardlabError(f"{path}: expected a mapping of option: value, got a {type(loaded).__name__}")
    return known_options(cls, loaded.items(), lambda key: f"{path}: {key}")


def read_key_values(cls, text: str, what: str) -> Sourced:
    """``key=value,key=value`` as options of ``cls``, each sourced as ``<what>: key``; unknown keys refused.

    Values stay text for :func:`validate` to convert (``"64"`` → 64, ``"yes"`` → True, ``"many"`` for an int is an
    error); ``none`` / ``null`` is None. Empty parts are skipped; a part without ``=`` is an error."""
    items = []
    for part in text.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep:
            raise RewardlabError(f"{what}: expected key=value, got {part!r}")
        value = value.strip()
        items.append((key.strip(), None if value.lower() in ("none", "null") else value))
    return known_options(cls, items, lambda key: f"{what}: {key}")


def _describe(err: dict) -> str:
    msg = err["msg"]
    if err["type"] == "finite_number":
        msg = "must be a finite number"
    msg = msg.removeprefix("Input ")
    return f"{msg[0].lower()}{msg[1:]}, got {err['input']!r}" if "input" in err else msg


def validate(cls, *layers: Sourced):
    """``cls`` built from its defaults and then each layer (later layers win), every value validated.

    Raises :class:`RewardlabError` listing every bad option with its source; a list option given a single
    YAML scalar is that one-element list."""
    hints = typing.get_type_hints(cls)
    values, sources = _defaults(cls), {}
    for layer in layers:
        for k, v in layer.values.items():
            if _is_list(hints.get(k)) and isinstance(v, (str, int, float)):
                v = [v]
            values[k] = v
            sources[k] = layer.sources.get(k, flag_name(k))
    try:
        clean = _adapter(cls).validate_python(values)
    except pydantic.ValidationError as e:
        lines = []
        for err in e.errors(include_url=False):
            name = str(err["loc"][0]) if err["loc"] else "?"
            where = sources.get(name, f"default of {name}")
            lines.append(f"{where}: {_describe(err)}")
        lines = list(dict.fromkeys(lines))
        raise RewardlabError(lines[0] if len(lines) == 1 else "invalid options:\n  " + "\n  ".join(lines)) from None
    kwargs = {f.name: getattr(clean, f.name) for f in dataclasses.fields(cls) if f.init}
    try:
        return cls(**kwargs)
    except RewardlabError as e:  # a registry choice or a cross-field rule: say which supplied options it names
        named = [sources[k] for k in sources if k in str(e) or flag_name(k) in str(e)]
        if named and not any(s in str(e) for s in named):
            raise RewardlabError(f"{'; '.join(named)}: {e}") from None
        raise
    except (TypeError, ValueError) as e:
        raise RewardlabError(str(e)) from None
