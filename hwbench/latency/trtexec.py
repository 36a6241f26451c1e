"""Read trtexec output into `Measurement` records.

Three inputs are understood (formats from TensorRT's samples/common/sampleReporting.cpp):

- TensorRT 8.x / 10.x logs: a `=== Performance summary ===` block with one line per metric,
  `GPU Compute Time: min = <f> ms, max = <f> ms, mean = <f> ms, median = <f> ms, percentile(99%) = <f> ms`
  (8.5.1+ print percentile(90%), (95%) and (99%) by default; earlier ones only the `--percentile`,
  99 by default), the same for `Latency`, `End-to-End Host Latency` (8.0-8.4), `Enqueue Time`,
  `H2D Latency` and `D2H Latency`, then `Throughput: <f> qps`, `Total Host Walltime: <f> s`,
  `Total GPU Compute Time: <f> s`;
- TensorRT 7.x logs (up to ~8.0): blocks headed `Host Latency` (`Host latency` in 7.0/7.1),
  `Enqueue Time` and `GPU Compute`, with lines `min: <f> ms (end to end <f> ms)`,
  `percentile: <f> ms at 99% (end to end <f> ms at 99%)`, `throughput: <f> qps`, `walltime: <f> s`,
  `total compute time: <f> s`;
- `--exportTimes=FILE` JSON: one object per iteration (startEnqMs ... latencyMs); statistics are
  computed here (nearest-rank percentiles, as trtexec).

Lines may carry the `[MM/DD/YYYY-HH:MM:SS] [I] ` prefix. The headline of a record is the GPU
compute time (as for `hwbench measure --backend tensorrt`); the other metrics go to `components`.
A paste without a `GPU Compute Time` line but with `Latency` is read with the host latency as
headline, and the record says what is missing. Model, input shape, precision, batch, device, DLA
core and TensorRT version are taken from the log when present (the `&&&& RUNNING` or, for a
pasted tail, the `&&&& PASSED` command line, `=== Model/Build/System/Inference Options ===`,
binding lines, `=== Device Information ===`); `--model/--device/--precision/--input` override them.
Implicit-batch runs (`--batch=N`, `Batch: N`) time queries of N images: the record's `batch` is N,
its input starts with N and the per-image time is latency / N.
Log metrics carry no std, and p90 only from 8.5.1 on: those fields are null in the record. A NaN,
infinite or negative time is refused (a real trtexec log never has one).
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwbench.errors import UserError
from hwbench.io import file_problem
from hwbench.latency.measure import PRECISIONS, Measurement, check_device_precision
from hwbench.latency.trtexec_times import (  # noqa: F401  (re-exported)
    EXPORT_TIMES_KEYS,
    load_times,
    summarize_times,
    times_to_measurement,
)

log = logging.getLogger(__name__)

_F = r"(?:[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf|nan)"  # one group: safe inside alternations
_PREFIX = re.compile(r"^.*?\[[IWEVF]\]\s?")  # "[07/14/2023-11:55:18] [I] " (and "[INFO] " before it)

# one-line metrics (8.x / 10.x) -> component name
_ONE_LINE = {
    "GPU Compute Time": "gpu_compute",
    "Latency": "latency",
    "End-to-End Host Latency": "e2e_host",
    "Enqueue Time": "enqueue",
    "H2D Latency": "h2d",
    "D2H Latency": "d2h",
}
_ONE_LINE_RE = re.compile(
    rf"^(?P<name>{'|'.join(re.escape(k) for k in _ONE_LINE)}): min = (?P<min>{_F}) ms, max = (?P<max>{_F}) ms, "
    rf"mean = (?P<mean>{_F}) ms, median = (?P<median>{_F}) ms(?P<rest>.*)$")
_PCT_RE = re.compile(rf"percentile\((?P<p>{_F})%\) = (?P<v>{_F}) ms")
# multi-line blocks (7.x)
_BLOCKS = {"host latency": "latency", "enqueue time": "enqueue", "gpu compute": "gpu_compute"}  # lower case
_STAT_RE = re.compile(rf"^(?P<k>min|max|mean|median): (?P<v>{_F}) ms(?: \(end to end (?P<e>{_F}) ms\))?$")
_PCT7_RE = re.compile(rf"^percentile: (?P<v>{_F}) ms at (?P<p>{_F})%(?: \(end to end (?P<e>{_F}) ms at {_F}%\))?$")



@dataclass
class LogRun:
    """What one trtexec run in a log says: options and the performance summary."""

    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # component -> stats (ms)
    throughput_qps: float | None = None
    walltime_s: float | None = None
    gpu_total_s: float | None = None
    queries: int | None = None
    warmup: int | None = None
    warmup_ms: float | None = None
    model_path: str | None = None
    precision: str | None = None
    input_shape: list[int] | None = None
    device_name: str | None = None
    dla_core: int | None = None
    trt_version: str | None = None
    command: str | None = None
    cuda_graph: bool | None = None
    cv_percent: float | None = None
    batch: int | None = None            # implicit batch (--batch=N / "Batch: N"): images per query
    format: str = ""


def _f(text: str) -> float:
    return float(text)


def _strip(line: str) -> str:
    return _PREFIX.sub("", line.rstrip("\r\n"), count=1).strip() if "[" in line else line.strip()


def trt_version_from_tag(tag: str) -> str:
    """'8201' -> '8.2.1' (MAJOR*1000 + MINOR*100 + PATCH), '100900' -> '10.9.0' (MAJOR*10000 + ...)."""
    v = int(tag)
    major, rest = (v // 10000, v % 10000) if v >= 100000 else (v // 1000, v % 1000)
    return f"{major}.{rest // 100}.{rest % 100}"


def precision_from_text(text: str) -> str | None:
    """'FP32+FP16' -> fp16, 'FP32+INT8' / 'FP32+FP16+INT8' -> int8, 'FP32' -> fp32."""
    t = text.upper()
    if "INT8" in t or "BEST" in t:
        return "int8"
    if "FP16" in t:
        return "fp16"
    if "FP32" in t:
        return "fp32"
    return None


def _shape_from_spec(spec: str) -> list[int] | None:
    """'input:1x3x512x1024' or 'images=1x3x640x640' (first tensor) -> [1, 3, 512, 1024]."""
    m = re.search(r"(\d+(?:x\d+)+)", spec)
    return [int(d) for d in m.group(1).split("x")] if m else None


def _apply_command(run: LogRun, cmd: str) -> None:
    run.command = cmd
    opts = dict(re.findall(r"--(\w+)(?:=(\S+))?", cmd))
    if opts.get("batch", "").isdigit() and int(opts["batch"]) > 0:
        run.batch = run.batch or int(opts["batch"])
    if "onnx" in opts or "loadEngine" in opts:
        run.model_path = run.model_path or opts.get("onnx") or opts.get("loadEngine")
    flags = set(re.findall(r"--(fp16|int8|best|noTF32)\b", cmd))
    if flags & {"int8", "best"}:
        run.precision = "int8"
    elif "fp16" in flags:
        run.precision = run.precision or "fp16"
    if opts.get("shapes"):
        run.input_shape = run.input_shape or _shape_from_spec(opts["shapes"])
    if opts.get("useDLACore", "").isdigit():
        run.dla_core = int(opts["useDLACore"])
    if "useCudaGraph" in cmd:
        run.cuda_graph = True


def _apply_tag_line(run: LogRun, raw: str) -> None:
    """Version and command of a `&&&& RUNNING|PASSED|FAILED TensorRT.trtexec [TensorRT vNNNN] # ...` line,
    where the run does not have them yet (a pasted tail has only the PASSED line)."""
    m = re.search(r"\[TensorRT v(\d+)\]", raw)
    if m and not run.trt_version:
        run.trt_version = trt_version_from_tag(m.group(1))
    if "#" in raw and not run.command:
        _apply_command(run, raw.split("#", 1)[1].strip())


def parse_log(text: str) -> list[LogRun]:
    """All runs with a performance summary in a trtexec log (oldest first)."""
    runs: list[LogRun] = []
    run = LogRun()
    block: str | None = None  # current 7.x block
    for raw in text.splitlines():
        if raw.startswith("&&&& RUNNING"):
            if run.metrics:
                runs.append(run)
            run, block = LogRun(), None
            _apply_tag_line(run, raw)
            continue
        if raw.startswith(("&&&& PASSED", "&&&& FAILED")):
            _apply_tag_line(run, raw)
            continue
        line = _strip(raw)
        if not line:
            continue
        # ---- options and environment
        if m := re.match(r"^TensorRT version: (\S+)", line):
            run.trt_version = m.group(1)
        elif m := re.match(r"^Model: (.+)$", line):
            run.model_path = m.group(1).strip()
        elif m := re.match(r"^(?:ONNX|Engine|Load engine): (.+)$", line):
            run.model_path = run.model_path or m.group(1).strip()
        elif m := re.match(r"^Precision: (.+)$", line):
            run.precision = precision_from_text(m.group(1)) or run.precision
        elif m := re.match(r"^Batch: (\d+)$", line):
            run.batch = int(m.group(1)) or run.batch
        elif m := re.match(r"^Selected Device: (.+)$", line):
            run.device_name = m.group(1).strip()
        elif m := re.match(r"^DLACore: (\d+)$", line):
            run.dla_core = int(m.group(1))
        elif m := re.match(r"^Input inference shapes?\s*: (.+)$", line):
            if m.group(1).strip() != "model":
                run.input_shape = run.input_shape or _shape_from_spec(m.group(1))
        elif m := re.search(r"input binding for \S+ with dimensions (\d+(?:x\d+)*)", line, re.IGNORECASE):
            run.input_shape = [int(d) for d in m.group(1).split("x")]
        elif m := re.match(r"^CUDA Graph: (Enabled|Disabled)", line):
            run.cuda_graph = m.group(1) == "Enabled"
        elif m := re.match(rf"^Warmup completed (\d+) queries over ({_F}) ms", line):
            run.warmup, run.warmup_ms = int(m.group(1)), _f(m.group(2))
        elif m := re.match(rf"^Timing trace has (\d+) queries over ({_F}) s", line):
            run.queries = int(m.group(1)) or None
        elif m := re.search(rf"coefficient of variance = ({_F})%", line):
            run.cv_percent = _f(m.group(1))
        # ---- 8.x / 10.x summary (its lines are read with or without the header: pastes often lack it)
        elif line.startswith("=== Performance summary ==="):
            block, run.format = None, "one-line (TensorRT 8.x/10.x)"
        elif m := _ONE_LINE_RE.match(line):
            stats = {"min_ms": _f(m["min"]), "max_ms": _f(m["max"]), "mean_ms": _f(m["mean"]),
                     "median_ms": _f(m["median"])}
            for pm in _PCT_RE.finditer(m["rest"]):
                stats[f"p{_pct_name(pm['p'])}_ms"] = _f(pm["v"])
            run.metrics[_ONE_LINE[m["name"]]] = stats
            run.format = run.format or "one-line (TensorRT 8.x/10.x)"
        elif m := re.match(rf"^Throughput: ({_F}) qps", line):
            run.throughput_qps = _f(m.group(1))
        elif m := re.match(rf"^Total Host Walltime: ({_F}) s", line):
            run.walltime_s = _f(m.group(1))
        elif m := re.match(rf"^Total GPU Compute Time: ({_F}) s", line):
            run.gpu_total_s = _f(m.group(1))
        # ---- 7.x blocks
        elif line.lower() in _BLOCKS:
            block = _BLOCKS[line.lower()]
            run.format = "multi-line (TensorRT 7.x)"
        elif block and (m := _STAT_RE.match(line)):
            run.metrics.setdefault(block, {})[f"{m['k']}_ms"] = _f(m["v"])
            if m["e"] is not None:
                run.metrics.setdefault("e2e_host", {})[f"{m['k']}_ms"] = _f(m["e"])
        elif block and (m := _PCT7_RE.match(line)):
            key = f"p{_pct_name(m['p'])}_ms"
            run.metrics.setdefault(block, {})[key] = _f(m["v"])
            if m["e"] is not None:
                run.metrics.setdefault("e2e_host", {})[key] = _f(m["e"])
        elif block and (m := re.match(rf"^throughput: ({_F}) qps", line)):
            run.throughput_qps = _f(m.group(1))
        elif block and (m := re.match(rf"^walltime: ({_F}) s", line)):
            run.walltime_s = _f(m.group(1))
        elif block and (m := re.match(rf"^total compute time: ({_F}) s", line)):
            run.gpu_total_s = _f(m.group(1))
        elif block and not re.match(r"^(min|max|mean|median|percentile|throughput|walltime|total)", line):
            block = None
    if run.metrics:
        runs.append(run)
    return [r for r in runs if HEADLINES.keys() & r.metrics.keys()]


# What a record's headline is, best first: the GPU compute time, else the host latency of a paste
# that lacks the GPU line.
HEADLINES = {"gpu_compute": "GPU Compute Time", "latency": "Latency (host: H2D + compute + D2H)"}
_METRIC_NAMES = {v: k for k, v in _ONE_LINE.items()}


def check_finite(run: LogRun, source_file: str) -> None:
    """`UserError` naming the first time that is NaN, infinite or negative."""
    for comp, stats in run.metrics.items():
        for key, v in stats.items():
            if not (math.isfinite(v) and v >= 0):
                raise UserError(f"{source_file}: {_METRIC_NAMES.get(comp, comp)} {key.removesuffix('_ms')} is "
                                f"{v!r} ms; trtexec writes finite, non-negative times (is the log edited or corrupt?)")
    for name in ("throughput_qps", "walltime_s", "gpu_total_s", "warmup_ms"):
        v = getattr(run, name)
        if v is not None and not (math.isfinite(v) and v >= 0):
            raise UserError(f"{source_file}: {name} is {v!r}; expected a finite number >= 0")


def _pct_name(p: str) -> str:
    v = float(p)
    return str(int(v)) if v.is_integer() else str(v).replace(".", "_")


# ------------------------------------------------------------------------------------ records
def _model_name(path: str | None, fallback: str) -> str:
    if not path:
        return fallback
    name = Path(path.strip().strip("'\"")).name
    for ext in (".onnx", ".engine", ".plan", ".trt"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return name or fallback


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def run_to_measurement(run: LogRun, *, source_file: str, model: str | None = None, device: str | None = None,
                       precision: str | None = None, input_shape: list[int] | None = None) -> Measurement:
    """One parsed log run -> a record (headline: GPU compute time, else host latency)."""
    check_finite(run, source_file)
    head = next(k for k in HEADLINES if k in run.metrics)
    gpu = run.metrics[head]
    if "median_ms" not in gpu or "min_ms" not in gpu:
        raise UserError(f"{source_file}: the {HEADLINES[head]} block lacks min/median; is the log truncated?")
    iters = run.queries
    if iters is None and run.throughput_qps and run.walltime_s:
        iters = round(run.throughput_qps * run.walltime_s)
    mean = gpu.get("mean_ms", gpu["median_ms"])
    cv = run.cv_percent / 100.0 if run.cv_percent is not None else None
    shape = list(input_shape or run.input_shape or [])
    if run.batch and len(shape) == 3:  # implicit batch: bindings are C x H x W
        shape = [run.batch, *shape]
    batch = run.batch or (shape[0] if len(shape) == 4 else None)
    env: dict[str, Any] = {
        "device_name": run.device_name, "tensorrt": run.trt_version, "trtexec_format": run.format,
        "log_file": source_file, "command": run.command, "throughput_qps": run.throughput_qps,
        "images_per_s": run.throughput_qps * batch if run.throughput_qps is not None and batch else None,
        "total_host_walltime_s": run.walltime_s, "total_gpu_compute_s": run.gpu_total_s,
        "cuda_graph": run.cuda_graph, "dla_core": run.dla_core, "headline": HEADLINES[head],
        "per_image_median_ms": gpu["median_ms"] / batch if batch else None,
    }
    prec = precision or run.precision or "fp32"
    rec = Measurement(
        model=model or _model_name(run.model_path, Path(source_file).stem),
        device=device or (_slug(run.device_name) if run.device_name else "unknown"),
        backend="tensorrt", precision=prec, input=shape,
        warmup=run.warmup or 0, iters=iters or 0, min_ms=gpu["min_ms"], median_ms=gpu["median_ms"],
        mean_ms=mean, p90_ms=gpu.get("p90_ms"), p99_ms=gpu.get("p99_ms"), std_ms=cv * mean if cv is not None else None,
        cv=cv, latency_ms=gpu["median_ms"], source="trtexec-log", env={k: v for k, v in env.items() if v is not None},
        max_ms=gpu.get("max_ms"), warmup_ms=run.warmup_ms,
        components=dict(run.metrics), batch=batch,
    )
    if head != "gpu_compute":
        rec.warnings.append("no GPU Compute Time in the log (a partial paste?); the headline is the host Latency, "
                            "which includes H2D and D2H copies")
    if precision is None and run.precision is None:
        rec.warnings.append("precision not stated in the log; assumed fp32 (trtexec's default)")
    for w in rec.warnings:
        log.warning("%s: %s", source_file, w)
    rec.check_cv()
    return rec


def ingest(path: str | os.PathLike, *, model: str | None = None, device: str | None = None,
           precision: str | None = None, input_shape: list[int] | None = None) -> list[Measurement]:
    """Records from a trtexec log or --exportTimes JSON file (`UserError` if it is neither)."""
    p = Path(path)
    why = file_problem(p)
    if why is not None:
        raise UserError(f"file {str(p)!r} {why}; pass a trtexec log or an --exportTimes JSON file")
    if precision is not None and precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise UserError(f"cannot read {p}: {e.strerror}") from None
    items = load_times(text)
    if items is not None:
        if not items or not all(isinstance(t, dict) and all(k in t for k in EXPORT_TIMES_KEYS) for t in items):
            raise UserError(f"{p} is JSON but not trtexec --exportTimes output "
                            f"(expected an array of objects with {', '.join(EXPORT_TIMES_KEYS[-4:])} ...)")
        records = [times_to_measurement(items, source_file=p.name, model=model, device=device,
                                        precision=precision, input_shape=input_shape)]
    else:
        runs = parse_log(text)
        if not runs:
            why = "the trtexec run failed (&&&& FAILED)" if "&&&& FAILED" in text else "no performance summary found"
            raise UserError(f"{p} is not trtexec output with results ({why}); "
                            "pass a trtexec log or an --exportTimes JSON file")
        records = [run_to_measurement(r, source_file=p.name, model=model, device=device, precision=precision,
                                      input_shape=input_shape) for r in runs]
    for r in records:
        dla = r.env.get("dla_core")
        check_device_precision(device, r.precision, engine="dla" if dla is not None else "gpu",
                               dla_from=f"the log (--useDLACore={dla})")
    return records
