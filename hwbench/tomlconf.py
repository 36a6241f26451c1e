"""Strict TOML -> frozen dataclass loading: unknown keys and wrong types are `UserError`s.

No inheritance, no includes, no `exec`: a config is exactly what its file says (with the `--set KEY=VALUE`
items of a command that takes them, `apply_sets`) plus the dataclass defaults.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from hwbench.errors import UserError
from hwbench.io import file_problem

T = TypeVar("T")


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    why = file_problem(path)
    if why == "not found":
        raise UserError(f"no such file: {path}")
    if why is not None:
        raise UserError(f"{path} {why}; expected a TOML file")
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text (UTF-8) file; expected a TOML file") from None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path}: not valid TOML ({e})") from None
    except OSError as e:
        raise UserError(f"{path}: cannot be read ({e.strerror or e})") from None


def apply_sets(data: dict[str, Any], sets: Sequence[str], where: str = "--set") -> dict[str, Any]:
    """A copy of `data` with each `dotted.key=VALUE` of `sets` set, VALUE read as a TOML value (`6`, `true`,
    `[0, 1]`, `"auto"`) or else taken as a plain string; tables on the path are created. `UserError` (one
    line) for an item without `=` or a path through a value that is not a table."""
    import copy

    out = copy.deepcopy(data)
    for item in sets:
        key, eq, text = item.partition("=")
        parts = key.strip().split(".")
        if not eq or not all(p.strip() for p in parts):
            raise UserError(f"{where} {item!r}: expected KEY=VALUE, e.g. train.deployment.epochs=6")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text.strip()  # a bare word: a string
        table = out
        for i, p in enumerate(parts[:-1]):
            table = table.setdefault(p.strip(), {})
            if not isinstance(table, dict):
                raise UserError(f"{where} {item!r}: {'.'.join(parts[:i + 1])} is not a table")
        table[parts[-1].strip()] = value
    return out


def from_mapping(cls: type[T], data: dict[str, Any], where: str = "config") -> T:
    """Build dataclass `cls` from `data`, recursing into nested dataclass fields.

    Unknown keys, missing required keys, values of the wrong type and non-finite floats (inf, nan) raise `UserError`
    naming `where` (e.g. the file and table).
    """
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a table, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; known: {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{where}.{name}")
    missing = [n for n, f in fields.items() if n not in kwargs and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise UserError(f"{where}: missing key(s) {', '.join(map(repr, missing))}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise UserError(f"{where}: {e}") from None


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return from_mapping(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(a, value, where)
            except UserError as e:
                errors.append(str(e))
        literals = [v for a in args if typing.get_origin(a) is typing.Literal for v in typing.get_args(a)]
        if literals:  # e.g. bool | Literal["auto"]: name every choice
            names = [a.__name__ for a in args if isinstance(a, type) and a is not type(None)] + list(map(repr, literals))
            raise UserError(f"{where}: expected {' or '.join(names)}, got {type(value).__name__} {value!r}")
        raise UserError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise UserError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, list):
            raise UserError(f"{where}: expected a list, got {type(value).__name__}")
        item = args[0] if args else Any
        return tuple(_coerce(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"{where}: expected a table, got {type(value).__name__}")
        vt = args[1] if len(args) == 2 else Any
        return {k: _coerce(vt, v, f"{where}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{where}: expected a finite number, got {value!r}")
    if isinstance(tp, type) and not isinstance(value, tp) or (tp in (int, float) and isinstance(value, bool)):
        raise UserError(f"{where}: expected {tp.__name__}, got {type(value).__name__} {value!r}")
    return value
