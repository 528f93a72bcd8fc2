"""Typed configuration: TOML tables -> dataclasses, with errors that name file, key and allowed values.

Every config class is a plain ``@dataclass`` with one docstring line per field (in the class
docstring or as attribute docstrings). :func:`from_dict` validates a mapping into it: unknown keys,
wrong types and missing required fields raise :class:`~anchorvoice.errors.ConfigError`. Nested
dataclasses, ``list[...]``, ``dict[str, ...]``, ``X | None`` and ``Literal[...]`` are understood.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from anchorvoice.errors import ConfigError

T = TypeVar("T")


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file; a missing file or a syntax error becomes a ConfigError naming the file."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"file not found: {p} (check the path)", source=str(p)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", source=str(p)) from None


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _check(value: Any, tp: Any, *, source: str | None, key: str) -> Any:
    """Return ``value`` converted to ``tp`` or raise ConfigError."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check(value, arg, source=source, key=key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(
            f"expected {' or '.join(_type_name(a) for a in args)}, got {value!r}", source=source, key=key
        )
    if origin is typing.Literal:
        if value not in args:
            allowed = ", ".join(repr(a) for a in args)
            raise ConfigError(f"{value!r} is not allowed; choose one of {allowed}", source=source, key=key)
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"expected a list, got {value!r}", source=source, key=key)
        inner = args[0] if args else Any
        items = [_check(v, inner, source=source, key=f"{key}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"expected a table, got {value!r}", source=source, key=key)
        inner = args[1] if len(args) == 2 else Any
        return {str(k): _check(v, inner, source=source, key=f"{key}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, Mapping):
            raise ConfigError(f"expected a table, got {value!r}", source=source, key=key)
        return from_dict(tp, value, source=source, prefix=key)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"expected a number, got {value!r}", source=source, key=key)
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"expected an integer, got {value!r}", source=source, key=key)
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"expected true or false, got {value!r}", source=source, key=key)
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"expected a string, got {value!r}", source=source, key=key)
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"expected {_type_name(tp)}, got {value!r}", source=source, key=key)
    return value


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_dict(cls: type[T], data: Mapping[str, Any], *, source: str | None = None, prefix: str = "") -> T:
    """Validate ``data`` into dataclass ``cls``; errors name ``source`` and the dotted key."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        allowed = ", ".join(sorted(fields)) or "(none)"
        key = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        raise ConfigError(f"unknown key {unknown[0]!r}; allowed keys: {allowed}", source=source, key=key)
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        key = f"{prefix}.{name}" if prefix else name
        if name in data:
            kwargs[name] = _check(data[name], hints[name], source=source, key=key)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError("required key is missing", source=source, key=key)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(str(exc), source=source, key=prefix or None) from None


def to_dict(obj: Any) -> dict[str, Any]:
    """Dataclass -> plain dict (None values dropped, so the result can be written as TOML)."""
    raw = dataclasses.asdict(obj)

    def strip(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if x is not None}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v

    return typing.cast(dict[str, Any], strip(raw))


def coerce_field(cls: type, key: str, value: Any, *, source: str | None = None) -> Any:
    """Validate one field of dataclass ``cls`` (used for live parameter changes)."""
    fields = {f.name for f in dataclasses.fields(cls)}
    if key not in fields:
        allowed = ", ".join(sorted(fields)) or "(none)"
        raise ConfigError(f"unknown parameter {key!r}; allowed: {allowed}", source=source, key=key)
    return _check(value, _hints(cls)[key], source=source, key=key)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        if isinstance(v, float) and not (v == v and abs(v) != float("inf")):
            raise ValueError("TOML cannot store NaN or inf")
        return repr(v)
    if isinstance(v, str):
        escaped = v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
        return f'"{escaped}"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _toml_key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else _toml_value(k)


def dump_toml(data: Mapping[str, Any]) -> str:
    """Write a nested mapping as TOML (tables for nested mappings; None values skipped)."""
    lines: list[str] = []

    def table(prefix: str, d: Mapping[str, Any]) -> None:
        scalars = {k: v for k, v in d.items() if v is not None and not isinstance(v, Mapping)}
        tables = {k: v for k, v in d.items() if isinstance(v, Mapping)}
        if prefix and (scalars or not tables):
            lines.append(f"\n[{prefix}]")
        for k, v in scalars.items():
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
        for k, v in tables.items():
            table(f"{prefix}.{_toml_key(k)}" if prefix else _toml_key(k), v)

    table("", data)
    return "\n".join(lines).lstrip("\n") + "\n"
