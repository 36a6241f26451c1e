"""trtexec `--exportTimes=FILE` JSON -> a `Measurement` (statistics computed here: nearest-rank
percentiles, as trtexec). One object per iteration with the keys of `EXPORT_TIMES_KEYS`; the headline
is `computeMs`. A value that is not a finite number, or a negative compute time, is a `UserError`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hwbench.errors import UserError
from hwbench.latency.record import Measurement, summarize

EXPORT_TIMES_KEYS = ("startEnqMs", "endEnqMs", "startH2dMs", "endH2dMs", "startComputeMs", "endComputeMs",
                     "startD2hMs", "endD2hMs", "h2dMs", "computeMs", "d2hMs", "latencyMs")


def times_to_measurement(items: list[dict[str, Any]], *, source_file: str, model: str | None = None,
                         device: str | None = None, precision: str | None = None,
                         input_shape: list[int] | None = None) -> Measurement:
    """An --exportTimes JSON array -> a record; stats computed here (headline: computeMs)."""
    bad = next((k for t in items for k in EXPORT_TIMES_KEYS
                if not (isinstance(t[k], (int, float)) and not isinstance(t[k], bool) and math.isfinite(t[k]))), None)
    if bad:
        raise UserError(f"{source_file}: {bad} holds a value that is not a finite number; is the file edited?")
    compute = [float(t["computeMs"]) for t in items]
    if min(compute) < 0:
        raise UserError(f"{source_file}: negative computeMs; trtexec writes non-negative times")
    comps: dict[str, list[float]] = {
        "latency": [float(t["latencyMs"]) for t in items],
        "h2d": [float(t["h2dMs"]) for t in items],
        "d2h": [float(t["d2hMs"]) for t in items],
        "enqueue": [float(t["endEnqMs"]) - float(t["startEnqMs"]) for t in items],
    }
    if all("endToEndMs" in t for t in items):
        comps["e2e_host"] = [float(t["endToEndMs"]) for t in items]
    rec = Measurement.from_samples(
        compute, model=model or Path(source_file).stem, device=device or "unknown", backend="tensorrt",
        precision=precision or "fp32", input=list(input_shape or []), warmup=0, source="trtexec-times",
        env={"times_file": source_file, "span_ms": float(items[-1]["endD2hMs"]) - float(items[0]["startH2dMs"])},
        components=comps)
    if precision is None:
        rec.warnings.append("precision unknown for --exportTimes data; assumed fp32 (pass --precision)")
    return rec


def load_times(text: str) -> list[dict[str, Any]] | None:
    """The parsed --exportTimes array, or None when `text` is not JSON at all."""
    stripped = text.lstrip()
    if not stripped.startswith(("[", "{")):
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, list) else [data]



def summarize_times(items: list[dict[str, Any]], key: str = "computeMs") -> dict[str, float]:
    """Statistics of one --exportTimes field (for tests and notebooks)."""
    return summarize([float(t[key]) for t in items])
