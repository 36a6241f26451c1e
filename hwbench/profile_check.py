"""Checking a device-profile file: every problem at once (`hwbench profiles --check FILE`), one line each.

Sources are required only for the figures a latency mode or verdict uses: every peak (peak, roofline),
`mem_bw_gbps` (roofline), `memory_gb` (deploy) and `paper_tops` (paper).
"""

from __future__ import annotations

import dataclasses
import math
import os
import typing
from pathlib import Path

from hwbench.device_profile import DeviceProfile, Peak, peak_key
from hwbench.errors import UserError
from hwbench.tomlconf import _coerce as coerce
from hwbench.tomlconf import from_mapping, read_toml

# Scalar figures a [sources] table may describe; those a latency mode or verdict uses must be described.
_SOURCED = ("year", "generation", "power_mode", "mem_bw_gbps", "memory_gb", "paper_tops")
_SOURCE_REQUIRED = ("mem_bw_gbps", "memory_gb", "paper_tops")


def check_profile(path: str | os.PathLike) -> tuple[list[str], DeviceProfile | None]:
    """Every problem of a profile file (one line each, naming the file and the fix), and the profile when
    there are none. A file that is not valid TOML is one problem."""
    path = Path(path)
    where = str(path)
    data = read_toml(path)
    problems: list[str] = []
    fields = {f.name: f for f in dataclasses.fields(DeviceProfile)}
    unknown_keys = sorted(set(data) - set(fields))
    if unknown_keys:
        problems.append(f"{where}: unknown key(s) {', '.join(map(repr, unknown_keys))}; known: {', '.join(fields)} "
                        "(see profiles/TEMPLATE.toml)")
    missing = [n for n, f in fields.items() if n not in data and f.default is dataclasses.MISSING]
    if missing:
        problems.append(f"{where}: missing key(s) {', '.join(map(repr, missing))} (see profiles/TEMPLATE.toml)")
    values = {}
    for key, value in data.items():
        if key not in fields:
            continue
        if key == "peak" and isinstance(value, list):
            peaks = []
            for i, entry in enumerate(value):
                try:
                    peaks.append(from_mapping(Peak, entry, f"{where}: peak[{i}]"))
                except UserError as e:
                    problems.append(str(e))
            values[key] = tuple(peaks)
            continue
        try:
            values[key] = coerce(typing.get_type_hints(DeviceProfile)[key], value, f"{where}: {key}")
        except UserError as e:
            problems.append(str(e))
    if "name" in values and values["name"] != path.stem:
        problems.append(f"{where}: name {values['name']!r} differs from the file name; "
                        f"rename the file to {values['name']}.toml or set name = {path.stem!r}")
    # the checks on values, also where other keys are missing or mistyped (placeholders stand in for those,
    # and their own complaints are dropped): every problem in one run
    absent = [k for k in ("mem_bw_gbps", "memory_gb", "peak", "sources") if k not in values]
    stand_in = {"name": path.stem, "mem_bw_gbps": 1.0, "memory_gb": 1.0, "peak": (), "sources": {}}
    try:
        prof = DeviceProfile(**{**stand_in, **values})
    except (TypeError, ValueError) as e:
        return [*problems, f"{where}: {e}"], None
    problems += [p for p in profile_problems(prof, where)
                 if not any(p.startswith(f"{where}: {k} ") for k in absent)
                 and not (("peak" in absent or data.get("peak")) and "no [[peak]]" in p)]
    return problems, (None if problems or missing else prof)


def _positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


def validate(prof: DeviceProfile, where: str) -> None:
    """`UserError` with the first of `profile_problems`."""
    problems = profile_problems(prof, where)
    if problems:
        raise UserError(problems[0])


def profile_problems(prof: DeviceProfile, where: str) -> list[str]:
    """Checks the dataclass types cannot express: positive figures, sources, no duplicates (all of them)."""
    out = []
    for fname in ("mem_bw_gbps", "memory_gb"):
        if not _positive(getattr(prof, fname)):
            out.append(f"{where}: {fname} must be a positive finite number, got {getattr(prof, fname)!r}")
    if prof.paper_tops is not None:
        if not _positive(prof.paper_tops):
            out.append(f"{where}: paper_tops must be a positive finite number, got {prof.paper_tops!r}")
        if prof.paper_precision is None or prof.paper_engine is None:
            out.append(f"{where}: paper_tops needs paper_precision and paper_engine "
                       "(what the paper's TOPS figure counts)")
    if not prof.peak:
        out.append(f"{where}: no [[peak]] figures; add at least one (e.g. precision = \"fp16\", engine = \"gpu\")")
    seen = set()
    for i, p in enumerate(prof.peak):
        if not _positive(p.tops):
            out.append(f"{where}: peak[{i}] ({peak_key(p)}) tops must be a positive finite number, got {p.tops!r}")
        if not p.source.strip():
            out.append(f"{where}: peak[{i}] ({peak_key(p)}) has an empty source; say where the figure comes from")
        if p.engine in ("dla", "gpu+dla") and prof.dla_count == 0:
            out.append(f"{where}: peak[{i}] uses engine {p.engine!r} but dla_count is 0")
        key = peak_key(p)
        if key in seen:
            out.append(f"{where}: peak figure {key} appears twice")
        seen.add(key)
    for fname in _SOURCE_REQUIRED:
        if getattr(prof, fname) is not None and not prof.sources.get(fname, "").strip():
            out.append(f"{where}: {fname} has no source; add it to the [sources] table")
    extra = sorted(set(prof.sources) - set(_SOURCED) - {"dla_count"})
    if extra:
        out.append(f"{where}: [sources] has unknown key(s) {', '.join(map(repr, extra))}; "
                   f"known: {', '.join(_SOURCED + ('dla_count',))}")
    return out
