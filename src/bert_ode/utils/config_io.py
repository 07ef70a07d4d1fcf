"""The one way settings are read: YAML or a mapping, plus dotted overrides, into typed dataclasses.

Every configuration of the training wing (``PretrainConfig``, ``FinetuneConfig``, ``StudyConfig``) and every
result record is a dataclass read by ``from_dict``: an unknown key is an error naming it and the keys that
exist, and each value is checked against the field's type hint (``int``, ``float``, ``bool``, ``str``,
``Literal``, ``list[...]``, ``dict[...]``, nested dataclasses, ``X | None``). The command line turns the same
dataclasses into options through transformers' ``HfArgumentParser`` (``cli.py``); ``--set KEY=VALUE``
overrides go through ``parse_value`` and ``nest``.

Why not a library: ``HfArgumentParser.parse_dict`` builds only flat dataclasses and passes values through
unchecked; OmegaConf/Hydra would be a second configuration system beside transformers' own.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

import yaml


class _Loader(yaml.SafeLoader):
    """YAML 1.1 as PyYAML reads it, except that ``5e-4`` / ``1E-4`` (exponent, no dot) are numbers as in YAML
    1.2 and Python, the way people write learning rates; PyYAML reads them as strings."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def parse_value(text: str) -> Any:
    """One ``--set`` value as YAML: ``5e-4`` -> 0.0005, ``[0,1]`` -> [0, 1], ``true`` -> True, ``rk4`` ->
    'rk4'."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError:
        return text  # not YAML (e.g. an unbalanced bracket in a path): the string as typed


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """``["train.lr=5e-4", "seeds=[0,1]"]`` -> ``{"train.lr": 0.0005, "seeds": [0, 1]}``."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected KEY=VALUE, got {item!r}")
        overrides[key.strip()] = parse_value(value)
    return overrides


def load_yaml(path: str | os.PathLike, what: str = "config") -> dict:
    """A YAML file that must hold a mapping; a clear error for unreadable or malformed files."""
    path = Path(path)
    try:
        values = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except yaml.YAMLError as error:
        raise ValueError(f"cannot parse {what} {path}: {error}") from error
    except UnicodeDecodeError as error:
        raise ValueError(
            f"cannot read {what} {path}: it is not UTF-8 text (byte {error.object[error.start]:#x} at "
            f"position {error.start}); save it as UTF-8"
        ) from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ValueError(f"{what} {path} must be a mapping of keys to values, got {type(values).__name__}")
    return values


def nest(dotted: Mapping[str, Any]) -> dict:
    """``{"train.lr": 1, "model": {"x": 2}}`` -> ``{"train": {"lr": 1}, "model": {"x": 2}}``."""
    nested: dict = {}
    for key, value in dotted.items():
        *parents, leaf = key.split(".")
        target = nested
        for part in parents:
            child = target.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"config key {key!r}: {part!r} is a value, not a section")
            target = child
        if isinstance(value, Mapping):
            # A copy: later dotted keys write into it, and the caller's mapping must stay as it was.
            target[leaf] = merge(target.get(leaf, {}) if isinstance(target.get(leaf), dict) else {}, value)
        else:
            target[leaf] = value
    return nested


def merge(base: Mapping, extra: Mapping) -> dict:
    """``base`` updated by ``extra``, recursively for mappings on both sides."""
    merged = {key: merge({}, value) if isinstance(value, Mapping) else value for key, value in base.items()}
    for key, value in extra.items():
        if isinstance(value, Mapping):
            merged[key] = merge(merged[key] if isinstance(merged.get(key), Mapping) else {}, value)
        else:
            merged[key] = value
    return merged


def from_dict(cls, values: Any, where: str = "config"):
    """An instance of dataclass ``cls`` from a mapping, checked key by key against the field types.

    ``where`` names the mapping in errors (``train`` gives ``train.lr``). Fields missing from ``values`` keep
    their defaults; a field without a default must be present.
    """
    if isinstance(values, cls):
        return values
    if not isinstance(values, Mapping):
        raise ValueError(f"{where} must be a mapping, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        section = "the config" if where in ("config", "") else where
        raise ValueError(
            f"unknown config key {_join(where, unknown[0])!r}: {section} has unknown key(s) {unknown}; "
            f"allowed: {', '.join(sorted(fields))}"
        )
    hints = _type_hints(cls)
    kwargs = {
        name: convert(values[name], hints[name], _join(where, name)) for name in fields if name in values
    }
    missing = [name for name, f in fields.items() if name not in kwargs and _required(f)]
    if missing:
        raise ValueError(f"{where} needs {', '.join(_join(where, name) for name in missing)}")
    return cls(**kwargs)


def convert(value: Any, hint: Any, key: str) -> Any:
    """``value`` checked against the type ``hint`` (and converted where it is lossless: int -> float)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or hint is object:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return convert(value, option, key)
            except ValueError as error:
                errors.append(error)
        raise errors[0]
    if origin is Literal:
        if value not in args:
            raise ValueError(f"{key}={value!r} is invalid; allowed values: {', '.join(map(repr, args))}")
        return value
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, key)
    if origin in (list, tuple) or hint in (list, tuple):
        return _convert_list(value, args, key)
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping):
            raise ValueError(f"config key {key!r} must be a mapping, got {value!r}")
        value_hint = args[1] if len(args) == 2 else Any
        return {k: convert(v, value_hint, _join(key, str(k))) for k, v in value.items()}
    return _convert_scalar(value, hint, key)


def _convert_list(value: Any, args: tuple, key: str) -> list:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"config key {key!r} must be a list, got {value!r}")
    item_hint = args[0] if args else Any
    return [convert(item, item_hint, f"{key}[{i}]") for i, item in enumerate(value)]


_SCALAR_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _convert_scalar(value: Any, hint: Any, key: str) -> Any:
    if hint is str and isinstance(value, os.PathLike):
        return os.fspath(value)
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, float) and value.is_integer():
        return int(value)  # 1e6 tokens
    if hint in _SCALAR_NAMES and not (
        isinstance(value, hint) and not (hint is int and isinstance(value, bool))
    ):
        raise ValueError(f"config key {key!r} must be {_SCALAR_NAMES[hint]}, got {value!r}")
    return value


@dataclass(frozen=True)
class Bounds:
    """The allowed range of a number field, declared in its metadata (``bounded``) and checked by
    ``check_bounds`` wherever the config is built; a list field's items are checked one by one."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself not allowed
    high_open: bool = False
    min_items: int | None = None  # a list field: at least this many items

    def contains(self, value: float) -> bool:
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below and value == value  # NaN is in no range

    def __str__(self) -> str:
        if self.low is None and self.high is None:
            return "any value"
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.low is None:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"in {left}{self.low:g}, {self.high:g}{right}"


def bounded(
    default: Any = dataclasses.MISSING,
    *,
    low=None,
    high=None,
    low_open=False,
    high_open=False,
    min_items: int | None = None,
    help: str | None = None,  # noqa: A002 - the name HfArgumentParser reads from field metadata
    **kwargs,
):
    """The one way a config field is declared: its default, the range its values must lie in (``None``, for an
    optional field, always may; a list's items one by one, and ``min_items``), and its ``help`` text (what the
    generated command-line options and the settings tables show). ``check_bounds`` checks it."""
    metadata = {**kwargs.pop("metadata", {}), "bounds": Bounds(low, high, low_open, high_open, min_items)}
    if help is not None:
        metadata["help"] = help
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


def check_bounds(instance, where: str = "") -> None:
    """Raises ``ValueError`` naming the key, the value and the allowed range for the first field out of
    range."""
    for f in dataclasses.fields(instance):
        _check_field_bounds(f, getattr(instance, f.name), where)


def _check_field_bounds(f: dataclasses.Field, value: Any, where: str) -> None:
    bounds = f.metadata.get("bounds")
    if bounds is None or value is None or isinstance(value, (bool, str)):
        return
    if bounds.min_items is not None and isinstance(value, (list, tuple)) and len(value) < bounds.min_items:
        raise ValueError(
            f"{_join(where, f.name)}={value!r} is invalid; it must name at least {bounds.min_items} "
            f"value{'s' if bounds.min_items > 1 else ''}"
        )
    for item in value if isinstance(value, (list, tuple)) else [value]:
        if isinstance(item, (int, float)) and not isinstance(item, bool) and not bounds.contains(item):
            raise ValueError(f"{_join(where, f.name)}={value!r} is invalid; it must be {bounds}")


class CheckedFields:
    """A config dataclass whose fields are checked against their type hints and ``bounded`` ranges on
    construction (``check_fields`` at the end of ``__post_init__``) and again on every later assignment, as
    ``BertOdeConfig`` does: ``config.batch_size = 0`` is refused as ``Config(batch_size=0)`` is, and
    ``seeds=5`` or ``seeds="012"`` is an error naming the field, not a ``TypeError`` later."""

    def check_fields(self) -> None:
        hints = _type_hints(type(self))
        for f in dataclasses.fields(self):
            value = convert(getattr(self, f.name), hints[f.name], f.name)
            _check_field_bounds(f, value, "")
            object.__setattr__(self, f.name, value)
        object.__setattr__(self, "_fields_checked", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if self.__dict__.get("_fields_checked"):
            f = next((f for f in dataclasses.fields(self) if f.name == name), None)
            if f is not None:
                value = convert(value, _type_hints(type(self))[name], name)
                _check_field_bounds(f, value, "")
        object.__setattr__(self, name, value)


def check_output_dir(path: str | os.PathLike | None, key: str) -> None:
    """Refuses, before any work, an output folder that cannot be made: one that is a file, one below a file,
    or one whose nearest existing folder is not writable."""
    if path is None:
        return
    target = Path(path)
    for existing in (target, *target.parents):
        if not existing.exists():
            continue
        if not existing.is_dir():
            where = "is a file" if existing == target else f"is below {existing}, a file"
            raise ValueError(f"{key}={str(path)!r} cannot be an output folder: it {where}")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise ValueError(f"{key}={str(path)!r} cannot be an output folder: {existing} is not writable")
        return


def settings_rows(cls, prefix: str) -> list[list[str]]:
    """One row per field of a config dataclass: dotted key, default and what values are allowed (the type,
    the ``Literal`` choices and the ``bounded`` range), for the README's reference table."""
    rows = []
    for f in dataclasses.fields(cls):
        hint = _type_hints(cls)[f.name]
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        allowed = _describe_type(hint)
        bounds = f.metadata.get("bounds")
        if bounds is not None and (bounds.low is not None or bounds.high is not None):
            allowed += f", {bounds}"
        if bounds is not None and bounds.min_items:
            allowed += f", at least {bounds.min_items}"
        rows.append([f"`{prefix}{f.name}`", f"`{_plain(default)!r}`".replace("'", ""), allowed])
    return rows


def _describe_type(hint: Any) -> str:
    """A type hint in words: ``int or null``, ``one of: triangle, cosine``, ``list of float``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return "one of: " + ", ".join(map(str, args))
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _describe_type(a) for a in args)
    if origin in (list, tuple):
        return f"list of {_describe_type(args[0])}" if args else "list"
    if origin is dict:
        return "mapping"
    return getattr(hint, "__name__", str(hint))


def to_dict(instance) -> dict:
    """A dataclass as plain JSON/YAML-ready data (tuples become lists)."""
    return _plain(dataclasses.asdict(instance))


def _plain(value):
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return str(value)
    return value


@functools.cache
def _type_hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _required(field: dataclasses.Field) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


def _join(where: str, key: str) -> str:
    return key if where in ("config", "") else f"{where}.{key}"
