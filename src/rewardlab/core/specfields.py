"""Typed reading of the sections of ``rewardlab.json``: a malformed file (``[]``, ``null``, a section missing a key,
a value of the wrong type, an unknown key) is a :class:`ModelContractError` naming the file and the field, never a
``TypeError`` from a constructor.

:func:`checked_fields` reads a dataclass's fields and their annotations (``str``, ``int``, ``float``, ``bool``,
``dict[K, V]``, ``list[T]``, ``X | None``) and checks a JSON object against them.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing

from rewardlab.core.errors import ModelContractError


def _shown(value) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fits(value, tp) -> bool:
    if tp is typing.Any:
        return True
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if tp is dict or origin is dict:
        if not isinstance(value, dict):
            return False
        if not args:
            return True
        return all(_fits(k, args[0]) and _fits(v, args[1]) for k, v in value.items())
    if tp is list or origin is list:
        if not isinstance(value, list):
            return False
        return not args or all(_fits(v, args[0]) for v in value)
    return True  # a type this reader does not check (none in rewardlab.json)


def _describe(tp) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if tp is type(None):
        return "null"
    if origin is dict:
        return f"an object of {_describe(args[1])}" if args else "an object"
    if origin is list:
        return f"a list of {_describe(args[0])}" if args else "a list"
    names = {str: "text", int: "a whole number", float: "a number", bool: "true or false", dict: "an object"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def kind_of(value) -> str:
    return {
        list: "a list",
        type(None): "null",
        str: "text",
        bool: "true/false",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)


def checked_fields(cls, d, source: str, section: str = "") -> dict:
    """``d`` when it is a JSON object with every required field of dataclass ``cls``, each of its annotated type,
    and no other; else :class:`ModelContractError` naming ``source`` and ``section.field``."""
    where = section or "the file"
    if not isinstance(d, dict):
        raise ModelContractError(f"{source}: {where} must be a JSON object, got {kind_of(d)} ({_shown(d)})")
    hints = typing.get_type_hints(cls)
    names = set()
    for f in dataclasses.fields(cls):
        names.add(f.name)
        name = f"{section}.{f.name}" if section else f.name
        if f.name not in d:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ModelContractError(f"{source}: {name} is missing")
            continue
        if not _fits(d[f.name], hints[f.name]):
            raise ModelContractError(f"{source}: {name} must be {_describe(hints[f.name])}, got {_shown(d[f.name])}")
    unknown = sorted(set(d) - names)
    if unknown:
        raise ModelContractError(
            f"{source}: {where} has unknown field(s) {unknown} (written by a newer rewardlab, or edited?)"
        )
    return d
