"""The `Measurement` record: timing statistics, the record itself, and reading/appending JSON lines.

Statistics follow trtexec (samples/common/sampleReporting.cpp): median = middle value (mean of the
two middle values for an even count), percentiles by nearest rank without interpolation
(index ceil(p/100 * n) - 1 of the sorted samples, which is trtexec's `n - 1 - floor((1 - p/100) n)`),
std is the population standard deviation and CV = std / mean (trtexec prints it in %, we store
the fraction). A CV above `HIGH_CV` (0.1) adds a warning to the record and the log.

Records read from a file are checked: every time a finite number >= 0 (no NaN/Infinity tokens), the
input a list of positive integers; a bad line is a `UserError` naming the file and line.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from hwbench.errors import UserError
from hwbench.io import file_problem
from hwbench.provenance import provenance

log = logging.getLogger(__name__)

HIGH_CV = 0.1
SOURCES = ("measured", "trtexec-log", "trtexec-times", "ondevice")


# ----------------------------------------------------------------------------------------- stats
def percentile(sorted_samples: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (no interpolation) of an ascending sequence, as trtexec."""
    n = len(sorted_samples)
    if n == 0:
        raise ValueError("percentile of an empty sample")
    if not 0.0 <= p <= 100.0:
        raise ValueError(f"percentile must be in [0, 100], got {p}")
    rank = math.ceil(round(p * n / 100.0, 9))  # round: 0.9 * 10 must be 9, not 9.000000000000002
    return float(sorted_samples[min(max(rank - 1, 0), n - 1)])


def median(sorted_samples: Sequence[float]) -> float:
    """Middle value; mean of the two middle values for an even count (trtexec's findMedian)."""
    n = len(sorted_samples)
    if n == 0:
        raise ValueError("median of an empty sample")
    m = n // 2
    return float(sorted_samples[m]) if n % 2 else (sorted_samples[m - 1] + sorted_samples[m]) / 2.0


def summarize(samples_ms: Iterable[float]) -> dict[str, float]:
    """min / max / median / mean / p90 / p99 / std (population) / cv of per-iteration latencies."""
    s = sorted(float(x) for x in samples_ms)
    if not s:
        raise ValueError("no samples to summarise")
    n = len(s)
    mean = math.fsum(s) / n
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in s) / n)
    return {
        "min_ms": s[0],
        "max_ms": s[-1],
        "median_ms": median(s),
        "mean_ms": mean,
        "p90_ms": percentile(s, 90),
        "p99_ms": percentile(s, 99),
        "std_ms": std,
        "cv": std / mean if mean > 0 else math.inf,
    }


# ---------------------------------------------------------------------------------------- record
@dataclass
class Measurement:
    """One latency measurement (JSON keys fixed by docs/contracts.md; extra keys are additive), with its
    provenance (time UTC, tool version, git commit, torch/onnxruntime versions, host).

    `latency_ms` is the headline figure (= `median_ms`). For TensorRT (measured, ingested or
    on-device) the headline is the GPU compute time; end-to-end (H2D + compute + D2H) and the
    other trtexec metrics are in `components`, each a `summarize()` dict.
    `warmup` is the number of warm-up iterations run (`warmup_ms` the warm-up time asked for).
    `source`: measured (here) | trtexec-log | trtexec-times (--exportTimes JSON) | ondevice.
    """

    model: str
    device: str
    backend: str
    precision: str
    input: list[int]
    warmup: int
    iters: int
    min_ms: float
    median_ms: float
    mean_ms: float
    p90_ms: float | None  # None: not in the source (trtexec < 8.5.1 prints only p99)
    p99_ms: float | None
    std_ms: float | None  # None: not in the source (trtexec logs print no std)
    cv: float | None
    latency_ms: float
    source: str
    env: dict[str, Any] = field(default_factory=dict)
    max_ms: float | None = None
    warmup_ms: float | None = None
    components: dict[str, dict[str, float]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    batch: int | None = None  # images per timed query (input[0]; a trtexec --batch=N run's N); None: unknown
    # when, by which tool version / commit, on which host the record was made (`hwbench.provenance`; for an
    # ingested trtexec log: the ingest); {} for records read from files written before it existed
    provenance: dict[str, Any] = field(default_factory=provenance)

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float], *, model: str, device: str, backend: str,
                     precision: str, input: Sequence[int], warmup: int, source: str = "measured",
                     env: Mapping[str, Any] | None = None, warmup_ms: float | None = None,
                     components: Mapping[str, Sequence[float]] | None = None) -> Measurement:
        """Summarise `samples_ms` (and per-component samples) into a record; warns on high CV."""
        st = summarize(samples_ms)
        rec = cls(model=model, device=device, backend=backend, precision=precision,
                  input=[int(v) for v in input], warmup=int(warmup), iters=len(samples_ms),
                  latency_ms=st["median_ms"], source=source, env=dict(env or {}), warmup_ms=warmup_ms,
                  components={k: summarize(v) for k, v in (components or {}).items() if len(v)},
                  batch=int(input[0]) if len(input) == 4 else None,
                  **{k: st[k] for k in ("min_ms", "median_ms", "mean_ms", "p90_ms", "p99_ms", "std_ms",
                                        "cv", "max_ms")})
        rec.check_cv()
        return rec

    def check_cv(self, threshold: float = HIGH_CV) -> None:
        """Add (once) and log a warning when the coefficient of variation exceeds `threshold`."""
        if self.cv is not None and self.cv > threshold and not any(w.startswith("high CV") for w in self.warnings):
            msg = (f"high CV {self.cv:.3f} > {threshold} ({self.model}, {self.backend}, {self.precision}): "
                   "timings are unstable; fix threads/clocks, close other work, raise --warmup-ms/--iters")
            self.warnings.append(msg)
            log.warning(msg)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Measurement:
        """Build from a JSON record; unknown keys are ignored, missing required ones are an error."""
        names = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
        missing = sorted(required - set(d))
        if missing:
            raise UserError(f"measurement record lacks {', '.join(missing)}; "
                            "write records with `hwbench measure --out` or `hwbench ingest`")
        _check_numbers(d)
        return cls(**{k: v for k, v in d.items() if k in names}, **({} if "provenance" in d else {"provenance": {}}))


_TIMES = ("min_ms", "median_ms", "mean_ms", "latency_ms")
_OPTIONAL_TIMES = ("p90_ms", "p99_ms", "std_ms", "cv", "max_ms", "warmup_ms")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_numbers(d: Mapping[str, Any]) -> None:
    """`UserError` unless every time is a finite number >= 0 and the input a list of positive ints."""
    for k in _TIMES:
        if not (_is_number(d[k]) and d[k] >= 0):
            raise UserError(f"{k} is {d[k]!r}; expected a finite number of ms >= 0")
    for k in _OPTIONAL_TIMES:
        if d.get(k) is not None and not (_is_number(d[k]) and d[k] >= 0):
            raise UserError(f"{k} is {d[k]!r}; expected a finite number >= 0 or null")
    shape = d["input"]
    if not (isinstance(shape, list) and all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                                            for v in shape)):
        raise UserError(f"input is {shape!r}; expected a list of positive integers (N, C, H, W)")
    if d.get("batch") is not None and not (isinstance(d["batch"], int) and d["batch"] > 0):
        raise UserError(f"batch is {d['batch']!r}; expected a positive integer or null")
    for k in ("iters", "warmup"):
        if not (isinstance(d[k], int) and not isinstance(d[k], bool) and d[k] >= 0):
            raise UserError(f"{k} is {d[k]!r}; expected an integer >= 0")


def read_measurements(path: str | os.PathLike) -> list[Measurement]:
    """Read a JSON-lines file of measurement records (`UserError` naming the line if absent or malformed)."""
    import json

    p = Path(path)
    why = file_problem(p)
    if why is not None:
        raise UserError(f"measurements file {str(p)!r} {why}; write one with `hwbench measure --out DIR`")
    records = []
    try:
        with open(p, encoding="utf-8") as f:
            for i, text in enumerate(f, 1):
                if not text.strip():
                    continue
                try:
                    d = json.loads(text, parse_constant=_reject_constant)
                    if not isinstance(d, dict):
                        raise UserError(f"a JSON {type(d).__name__}, not a record")
                    records.append(Measurement.from_dict(d))
                except (json.JSONDecodeError, TypeError) as e:
                    raise UserError(f"{p}:{i}: not a measurement record ({e.__class__.__name__}); "
                                    "write records with `hwbench measure --out` or `hwbench ingest`") from None
                except UserError as e:
                    raise UserError(f"{p}:{i}: {e}") from None
    except UnicodeDecodeError:
        raise UserError(f"{p} is not a text (UTF-8) file; expected JSON lines of measurements") from None
    return records


def _reject_constant(name: str) -> float:
    raise UserError(f"{name} is not a number; expected finite times in ms")


def append_records(path: str | os.PathLike, records: Iterable[Measurement]) -> Path:
    """Append records to a JSON-lines file (the whole file is rewritten atomically)."""
    import json

    from hwbench.io import read_jsonl, write_jsonl

    p = Path(path)
    try:
        old = list(read_jsonl(p)) if p.is_file() else []
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{p} exists but is not a JSON-lines file of records ({e.__class__.__name__}); "
                        "choose another --out or move the file away") from None
    return write_jsonl(p, old + [r.to_dict() for r in records])
