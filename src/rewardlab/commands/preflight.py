"""Setting checks before work: what a command's options name, checked before torch loads (no heavy imports here).

:func:`check_settings` runs between parsing and the command (``rewardlab.cli.main``), on the options already
validated by type and range (:mod:`rewardlab.core.settings`), and answers in well under a second with one line:

* the fields a config class lists in ``REQUIRED`` must be given (``score --model M`` without ``--data``);
* every option that names a path or a model goes through the check of its field name (:data:`FIELD_CHECKS`, one
  entry per field name, whichever command has the field): a model option must be an embedded name, an existing
  model directory (not a file, not a dataset directory, not a multi-objective model where a backbone is meant) or
  a hub id; a data option that looks like a path must exist; a cache directory must not be a file;
* a hub id is answered at once without a network (:func:`check_hub_id`): found in the local Hugging Face cache it
  is read from there (``HF_HUB_OFFLINE=1`` for this process), else it is an error naming the option, instead of a
  minute of retries and a traceback;
* the distributed environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``) must hold
  non-negative integers with ``RANK < WORLD_SIZE``;
* ``normalize`` (without ``--dry-run``) needs to write the model's ``rewardlab.json``: a read-only one is refused
  before any scoring.

Checks that need the model or the data (LoRA target modules against the model's module names, a loss's columns
against the data) run where those are loaded, before the first step (``rewardlab.training.train``).
"""

from __future__ import annotations

import ast
import json
import os
import socket
import threading
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

from rewardlab.core.errors import RewardlabError
from rewardlab.core.kinds import JUDGE_PREFIX

# the names `rewardlab.models.backbones.resolve_backbone` knows (read from its source: that module imports transformers)
_BACKBONES_MODULE = "rewardlab.models.backbones"
HUB_HOST = "huggingface.co"
NETWORK_TIMEOUT_S = 1.5  # how long the one reachability check of the hub may take
DISTRIBUTED_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


# --- what a path is ------------------------------------------------------------------------------------------
def looks_local(value: str) -> bool:
    """A path rather than a hub id or an embedded name (:func:`rewardlab.data.readers.looks_local`'s rule)."""
    from rewardlab.data.readers import looks_local as readers_looks_local  # lazy: rewardlab.data only if needed

    return readers_looks_local(value)


def _is_dataset_dir(path: Path) -> bool:
    return (path / "dataset_dict.json").is_file() or (
        (path / "dataset_info.json").is_file() and (path / "state.json").is_file()
    )


def _rewardlab_spec(path: Path) -> dict | None:
    try:
        spec = json.loads((path / "rewardlab.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return spec if isinstance(spec, dict) else None


def embedded_names() -> tuple[str, ...]:
    """The embedded backbone names and their aliases (``EMBEDDED`` and ``ALIASES`` in rewardlab.models.backbones)."""
    from rewardlab.core.cli_help import _module_file  # lazy: only when an embedded name is looked up

    path = _module_file(_BACKBONES_MODULE)
    tree = ast.parse(path.read_text(encoding="utf-8")) if path is not None else ast.Module(body=[])
    names: list[str] = []
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            if stmt.targets[0].id in ("EMBEDDED", "ALIASES"):
                value = ast.literal_eval(stmt.value)
                names += list(value)
    return tuple(names)


def check_model_dir(option: str, value: str, *, backbone: bool = False) -> None:
    """``value`` (a local path) must be a directory holding a model; ``backbone``: one a new head is put on."""
    path = Path(value).expanduser()
    if not path.exists():
        raise RewardlabError(f"{option} {value}: no such directory")
    if not path.is_dir():
        raise RewardlabError(f"{option} {value}: is a file, not a model directory")
    if _is_dataset_dir(path):
        raise RewardlabError(f"{option} {value}: is a dataset directory (datasets' save_to_disk), not a model")
    markers = ("config.json", "rewardlab.json", "adapter_config.json")
    if not any((path / m).is_file() for m in markers):
        raise RewardlabError(f"{option} {value}: holds no model (no {', '.join(markers)})")
    spec = _rewardlab_spec(path) if backbone else None
    if spec is not None and spec.get("multiobjective"):
        raise RewardlabError(
            f"{option} {value}: is a multi-objective rewardlab model, not a backbone; start a preference run from it "
            "with --init-from DIR --init-attribute NAME, or gate it with --objective gating --init-from DIR"
        )


def check_model_source(option: str, value: str, *, embedded: bool, backbone: bool = False) -> None:
    """An embedded name (where ``embedded``), an existing model directory, or a hub id answerable now."""
    if embedded and value.lower() in embedded_names():
        return
    if looks_local(value) or os.path.isdir(value):
        check_model_dir(option, value, backbone=backbone)
        return
    check_hub_id(option, value, embedded)


# --- hub ids without a network -------------------------------------------------------------------------------
def hub_cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def in_hub_cache(repo_id: str) -> bool:
    snapshots = hub_cache_dir() / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    return snapshots.is_dir() and any(snapshots.iterdir())


def _offline_set() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def hub_reachable(timeout: float = NETWORK_TIMEOUT_S) -> bool:
    """One TCP connection to the hub's host (``HF_ENDPOINT``'s, if set), name lookup included, within ``timeout``."""
    host = urlparse(os.environ.get("HF_ENDPOINT") or f"https://{HUB_HOST}").hostname or HUB_HOST
    ok = [False]

    def connect():
        try:
            with socket.create_connection((host, 443), timeout=timeout):
                ok[0] = True
        except OSError:
            pass

    worker = threading.Thread(target=connect, daemon=True)  # a hanging name lookup is not waited for
    worker.start()
    worker.join(timeout)
    return ok[0]


def check_hub_id(option: str, value: str, embedded: bool = False) -> None:
    """A hub model id: fine when the hub is reachable; read from the cache (``HF_HUB_OFFLINE=1``) when it is there;
    else an error naming the option, at once."""
    names = f"an embedded name ({', '.join(sorted(set(embedded_names())))}), " if embedded else ""
    if value.count("/") > 1 or not value.strip() or value != value.strip():
        raise RewardlabError(f"{option} {value!r}: not {names}a local directory or a hub id (org/name)")
    if in_hub_cache(value):
        if _offline_set() or not hub_reachable():
            os.environ["HF_HUB_OFFLINE"] = "1"  # read from the cache now, not after a minute of retries
        return
    if _offline_set():
        raise RewardlabError(
            f"{option} {value}: not {names}a local directory; not in the Hugging Face cache "
            f"({hub_cache_dir()}); and HF_HUB_OFFLINE is set"
        )
    if not hub_reachable():
        raise RewardlabError(
            f"{option} {value}: not {names}a local directory; not in the Hugging Face cache ({hub_cache_dir()}); "
            f"and {HUB_HOST} cannot be reached (no network?)"
        )


# --- data ----------------------------------------------------------------------------------------------------
def check_data_source(option: str, value: str) -> None:
    """A data option: an existing file or directory where it looks like a path (hub dataset names are read later)."""
    if value == "embedded" or not value:
        return
    if looks_local(value) and not os.path.exists(os.path.expanduser(value)):
        raise RewardlabError(f"{option} {value}: no such file or directory")


def check_cache_dir(option: str, value: str) -> None:
    if value and os.path.exists(value) and not os.path.isdir(value):
        raise RewardlabError(f"{option} {value}: is a file; expected a directory (or a path to create one at)")


def check_existing_dir(option: str, value: str) -> None:
    if not value:
        return
    if not os.path.exists(value):
        raise RewardlabError(f"{option} {value}: no such directory")
    if not os.path.isdir(value):
        raise RewardlabError(f"{option} {value}: is a file, not a directory")


# --- the registry: field name -> its check ---------------------------------------------------------------------
def _each(values) -> list[str]:
    return [v for v in (values if isinstance(values, list) else [values]) if v]


def _reward_models(name: str, cfg, command: str) -> None:
    for value in _each(getattr(cfg, name)):
        if value.startswith(JUDGE_PREFIX) and command != "judge":  # `--model judge:SPEC`: an LLM judge (core.kinds)
            _judge_spec(f"{flag(name)} {JUDGE_PREFIX}", value[len(JUDGE_PREFIX) :])
            continue
        if command == "judge":
            if getattr(cfg, "backend", "hf") == "hf":
                check_model_source(flag(name), value, embedded=True)
            continue
        check_model_source(flag(name), value, embedded=False)


def _backbone(name: str, cfg, command: str) -> None:
    for value in _each(getattr(cfg, name)):
        check_model_source(flag(name), value, embedded=True, backbone=True)


def _policy(name: str, cfg, command: str) -> None:
    """``sample --policy``: an embedded name, a causal LM directory or a hub id answerable now."""
    for value in _each(getattr(cfg, name)):
        check_model_source(flag(name), value, embedded=True)


def _init_from(name: str, cfg, command: str) -> None:
    for value in _each(getattr(cfg, name)):
        check_model_dir(flag(name), value)


def _data(name: str, cfg, command: str) -> None:
    for value in _each(getattr(cfg, name)):
        check_data_source(flag(name), value)


def _judges(name: str, cfg, command: str) -> None:
    """``--judge`` specs: a bare model is an hf judge's model (key=value and YAML specs are read by the command)."""
    for spec in _each(getattr(cfg, name)):
        _judge_spec(flag(name), spec)


def _judge_spec(option: str, spec: str) -> None:
    """A judge spec: key=value and YAML/JSON specs are read by the command (a named spec file must exist); a bare
    value is an hf judge's model."""
    if "=" in spec or Path(spec).suffix in (".yaml", ".yml", ".json"):
        if Path(spec).suffix in (".yaml", ".yml", ".json") and "=" not in spec and not Path(spec).is_file():
            raise RewardlabError(f"{option} {spec}: no such file")
        return
    check_model_source(f"{option} (a judge model)", spec, embedded=True)


def _cache(name: str, cfg, command: str) -> None:
    check_cache_dir(flag(name), getattr(cfg, name) or "")


def _run_dir(name: str, cfg, command: str) -> None:
    check_existing_dir(flag(name), getattr(cfg, name) or "")


def _device_option(name: str, cfg, command: str) -> None:
    if command in ("export", "train-verifier"):  # their --dtype / --device are their own (checked by them)
        return
    from rewardlab.core.device import check_without_torch  # lazy: light (no torch), only when a command runs

    check_without_torch(name, getattr(cfg, name))


def _quantize_option(name: str, cfg, command: str) -> None:
    """A trainer's ``--quantize`` (QLoRA) with the options it needs and those it cannot go with (``--lora-r``, no
    ``--fsdp``, ``--objective preference``) first (the trainer's config checks the same again), then the name and
    the package as every command's."""
    if command in ("train", "quickstart"):
        from rewardlab.core.device import check_training_quantize  # lazy: light (no torch)

        check_training_quantize(
            getattr(cfg, name),
            lora_r=getattr(cfg, "lora_r", 0),
            fsdp=getattr(cfg, "fsdp", False),
            objective=getattr(cfg, "objective", "preference"),
            precision=getattr(cfg, "precision", "auto"),
        )
    _device_option(name, cfg, command)


Check = Callable[[str, object, str], None]  # (field name, config, command)
FIELD_CHECKS: dict[str, Check] = {
    "backbone": _backbone,
    "base": _backbone,
    "teacher": _backbone,
    "model": _reward_models,
    "ref_model": _reward_models,
    "safety": _init_from,
    "helpfulness": _init_from,
    "init_from": _init_from,
    "policy": _policy,
    "judge": _judges,
    "data": _data,
    "eval_data": _data,
    "reference_data": _data,
    "prompts": _data,
    "feature_cache": _cache,
    "run": _run_dir,
    "device": _device_option,  # --device / --dtype / --attn-implementation / --quantize: names and packages
    "dtype": _device_option,
    "attn_implementation": _device_option,
    "quantize": _quantize_option,
}


# --- the environment and commands' own needs ------------------------------------------------------------------
def check_distributed_env(environ=os.environ) -> None:
    """``RANK`` & co., when set, are non-negative integers (``WORLD_SIZE`` ≥ 1) and ``RANK < WORLD_SIZE``."""
    values = {}
    for name in DISTRIBUTED_ENV:
        raw = environ.get(name)
        if raw is None or raw == "":
            continue
        try:
            values[name] = int(raw.strip())
        except ValueError:
            raise RewardlabError(f"environment variable {name}={raw!r}: expected a whole number") from None
        least = 1 if name.endswith("WORLD_SIZE") else 0
        if values[name] < least:
            raise RewardlabError(f"environment variable {name}={raw!r}: must be at least {least}")
    for rank, size in (("RANK", "WORLD_SIZE"), ("LOCAL_RANK", "LOCAL_WORLD_SIZE")):
        if rank in values and size in values and values[rank] >= values[size]:
            raise RewardlabError(
                f"environment variables {rank}={values[rank]} and {size}={values[size]}: {rank} must be below {size}"
            )


def check_writable_model(cfg) -> None:
    """``normalize`` writes ``MODEL/rewardlab.json`` (a temporary file and a rename in MODEL): both must be writable."""
    if getattr(cfg, "dry_run", False) or not cfg.model or not os.path.isdir(cfg.model):
        return
    spec = os.path.join(cfg.model, "rewardlab.json")
    for path in (cfg.model, spec):
        if os.path.exists(path) and not os.access(path, os.W_OK):
            raise RewardlabError(
                f"--model {cfg.model}: {path} is read-only, and normalize writes the statistics into "
                f"{spec}; copy the model somewhere writable, or use --dry-run"
            )


COMMAND_CHECKS: dict[str, Callable[[object], None]] = {"normalize": check_writable_model}


def check_required(cls, cfg) -> None:
    """The fields ``cls.REQUIRED`` names must be given (non-empty)."""
    from rewardlab.core.cli_help import field_comments  # lazy: the help text only for an error

    for name in getattr(cls, "REQUIRED", ()):
        if not getattr(cfg, name, None):
            what = field_comments(cls).get(name, "")
            raise RewardlabError(f"{flag(name)} is required" + (f" ({what})" if what else ""))


def check_settings(command: str, cls, cfg) -> None:
    """Every check above for ``command``'s config ``cfg`` (an instance of ``cls``, the real or the light class)."""
    check_distributed_env()
    check_required(cls, cfg)
    for name, check in FIELD_CHECKS.items():
        if hasattr(cfg, name):
            check(name, cfg, command)
    extra = COMMAND_CHECKS.get(command)
    if extra is not None:
        extra(cfg)
