"""Checked reading of the files a report is built from: a damaged file is one `UserError` naming it,
read before anything is written, never a traceback half-way through the report."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hwbench.errors import UserError

FIX = "re-run the experiment with --resume to rewrite it, or delete the file"
RECORD_TYPES: dict[str, Any] = {"deployment": str, "surrogate": str, "seed": int, "metric": str, "value": float}
CHAIN_TYPES: dict[str, Any] = {**RECORD_TYPES, "generation": int}
INFO_TYPES: dict[str, Any] = {"name": str, "kind": str, "summary": str, "dataset": str, "seeds": list,
                              "deployment": list, "surrogates": list, "meta": dict,
                              "provenance": dict}
ENTROPY_TYPES: dict[str, Any] = {"pool_size": int, "train_size": int, "held_out_size": int, "train_fraction": float,
                                 "top_fraction": float, "summary": list, "ratios": list}
SUMMARY_TYPES: dict[str, Any] = {"model": str, "n": int, "mean": float, "std": float, "median": float,
                                 "top_threshold": float}


def read_object(path: Path, types: Mapping[str, Any] | None = None, *, required: bool = False) -> dict:
    """A JSON object from `path` whose keys listed in `types` have those types (all present if `required`)."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # ValueError: not JSON, or bytes that are not UTF-8
        raise UserError(f"{path} is damaged (not readable JSON); {FIX}") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path} is damaged (not a JSON object); {FIX}")
    check_fields(obj, types or {}, where=str(path), required=required)
    return obj


def read_records(path: Path, types: Mapping[str, Any]) -> list[dict]:
    """JSON lines of `path`, each an object with every key of `types`; (row, column, seed, metric) unique."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, ValueError):
        raise UserError(f"{path} is damaged (not readable text); {FIX}") from None
    out, seen = [], set()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            raise UserError(f"{path}, line {n}: not a JSON record; {FIX}") from None
        if not isinstance(rec, dict):
            raise UserError(f"{path}, line {n}: not a JSON object; {FIX}")
        check_fields(rec, types, where=f"{path}, line {n}", required=True)
        key = tuple(rec[k] for k in ("deployment", "surrogate", "seed", "metric", "generation") if k in rec)
        if key in seen:
            raise UserError(f"{path}, line {n}: a second record for {key[:3]}; {FIX}")
        seen.add(key)
        out.append(rec)
    return out


def check_entropy(obj: dict, path: Path) -> dict:
    check_fields(obj, ENTROPY_TYPES, where=str(path), required=True)
    for i, s in enumerate(obj["summary"]):
        if not isinstance(s, dict):
            raise UserError(f"{path}: summary entry {i} is not an object; {FIX}")
        check_fields(s, SUMMARY_TYPES, where=f"{path}, summary entry {i}", required=True, allow_nan=True)
    for i, r in enumerate(obj["ratios"]):
        if not isinstance(r, dict):
            raise UserError(f"{path}: ratio entry {i} is not an object; {FIX}")
        check_fields(r, {"numerator": str, "denominator": str, "ratio": float}, where=f"{path}, ratio entry {i}",
                     required=True)
    return obj


def check_fields(obj: Mapping[str, Any], types: Mapping[str, Any], *, where: str, required: bool,
                 allow_nan: bool = False) -> None:
    for key, typ in types.items():
        if key not in obj:
            if required:
                raise UserError(f"{where}: {key!r} is missing; {FIX}")
            continue
        if not _is(obj[key], typ, allow_nan):
            raise UserError(f"{where}: {key!r} is not {_NAMES.get(typ, typ.__name__)}; {FIX}")


_NAMES = {int: "an integer", float: "a finite number", str: "a string", list: "a list", dict: "an object"}


def _is(v: Any, typ: Any, allow_nan: bool) -> bool:
    if isinstance(v, bool):
        return False
    if typ is float:
        return isinstance(v, (int, float)) and (allow_nan or math.isfinite(v))
    return isinstance(v, typ)
