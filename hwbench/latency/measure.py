"""Measured latency: the measuring loop (config, device and memory checks, timing, the record it makes).

One measurement = build the model, hand it to a backend runner (`hwbench.latency.backends`),
warm up for a fixed *time* (`warmup_ms`), then time `iters` single inferences. Each runner times
its own work correctly (CUDA events or a synchronised host clock, never a bare host clock around
asynchronous work), so this module only collects per-iteration latencies and summarises them.

Statistics and the record live in `hwbench.latency.record` (re-exported here).

Clock (`MeasureConfig.clock`): "wall" (default) is the runner's own timing. "cpu" (CPU device,
one thread only) makes the headline the process CPU time of each run: for one thread of
synchronous work it equals the wall-clock latency on an idle machine, and it is not inflated when
other processes share the cores (on this 2-core machine, shared with other jobs, torch's
2-thread wall-clock medians swung by 2-10x while single-thread CPU time repeated within ~1-5 %).
The wall-clock samples are then kept in `components["wall"]`.
"""

from __future__ import annotations

import logging
import math
import os
import platform
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwbench.count import parse_hw  # noqa: F401  (one --input parser for every command)
from hwbench.errors import UserError, unknown
from hwbench.latency.record import (  # noqa: F401  (re-exported: the record's home is hwbench.latency.record)
    HIGH_CV,
    SOURCES,
    Measurement,
    append_records,
    median,
    percentile,
    read_measurements,
    summarize,
)

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from hwbench.latency.backends import Runner

log = logging.getLogger(__name__)


PRECISIONS = ("fp32", "fp16", "int8")
DEVICES = ("cpu", "cuda")
CLOCKS = ("wall", "cpu")


# ------------------------------------------------------------------------------------------ env
def cpu_model_name() -> str:
    """CPU model from /proc/cpuinfo (Linux), else `platform.processor()`."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for key in ("model name", "Model", "Hardware", "cpu model"):
        m = re.search(rf"^{key}\s*:\s*(.+)$", text, re.MULTILINE)
        if m:
            return m.group(1).strip()
    return platform.processor() or platform.machine() or "unknown cpu"


def host_env(device: str = "cpu", *, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Where a measurement ran: device name, CPU, library versions, torch threads."""
    import torch

    env: dict[str, Any] = {
        "device_name": cpu_model_name(),
        "cpu": cpu_model_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "torch": torch.__version__,
        "numpy": _version("numpy"),
    }
    if device == "cuda" and torch.cuda.is_available():
        env["device_name"] = torch.cuda.get_device_name()
        env["cuda"] = torch.version.cuda
    env.update(extra or {})
    return env


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


# ------------------------------------------------------------------------------ device checks
def check_device_precision(device_profile: str | None, precision: str, *, engine: str = "gpu",
                           dla_from: str = "--dla-core") -> None:
    """`UserError` if `device_profile` names a profile with no peak figure for `precision`.

    Free-form labels (not a profile in `profiles/`) are not checked. `dla_from` names what asked for
    the DLA (the `--dla-core` flag, or a log that ran on one), for the message.
    """
    if precision not in PRECISIONS:
        raise unknown("precision", precision, PRECISIONS)
    if not device_profile:
        return
    try:
        from hwbench.profiles import list_profiles, load_profile
    except ImportError:  # pragma: no cover - profiles module not built yet
        return
    if device_profile == "host" or device_profile not in list_profiles():
        return  # host: measured at fp32 only; the backend checks what it can run
    prof = load_profile(device_profile)
    if engine == "dla" and not getattr(prof, "dla_count", 0):
        fix = ("drop --dla-core" if dla_from == "--dla-core"
               else "pass the --device it ran on (a profile with a DLA, e.g. xavier_nx or orin_nx)")
        raise UserError(f"device {device_profile!r} has no DLA (profiles/{device_profile}.toml) but {dla_from} "
                        f"uses one; {fix}")
    try:
        peak = prof.peak_tops(precision, engine=engine)
    except (UserError, KeyError, ValueError, TypeError):
        peak = None
    if not peak:
        have = sorted({k.split("/")[0] for k in prof.available() if k.split("/")[1] == engine})
        raise UserError(f"device {device_profile!r} has no {precision} support on its {engine} "
                        f"(profiles/{device_profile}.toml); use --precision "
                        f"{' or '.join(have) if have else 'of a device that has one'}")


# ----------------------------------------------------------------------------------- measuring
@dataclass(frozen=True)
class MeasureConfig:
    """Options of one measurement (the `hwbench measure` flags)."""

    backend: str = "torch"
    precision: str = "fp32"
    device: str = "cpu"
    batch: int = 1
    warmup_ms: float = 500.0
    iters: int = 50
    threads: int | None = None
    cuda_graphs: bool = False
    channels_last: bool = False
    compile: bool = False
    onnx_path: str | None = None
    device_profile: str | None = None
    dla_core: int | None = None
    workspace_mb: int | None = None  # tensorrt builder workspace in MiB (None: default)
    num_classes: int | None = None  # None: the builder's default (19 for DeepLabv3+)
    clock: str = "wall"  # wall: host clock / device events; cpu: process CPU time (CPU, 1 thread)

    def validate(self) -> None:
        if self.precision not in PRECISIONS:
            raise unknown("precision", self.precision, PRECISIONS)
        if self.device not in DEVICES:
            raise unknown("device", self.device, DEVICES)
        if self.batch < 1:
            raise UserError(f"--batch must be >= 1, got {self.batch}")
        if self.iters < 1:
            raise UserError(f"--iters must be >= 1, got {self.iters}")
        if not (math.isfinite(self.warmup_ms) and self.warmup_ms >= 0):
            raise UserError(f"--warmup-ms must be a finite number >= 0, got {self.warmup_ms}")
        if self.threads is not None and self.threads < 1:
            raise UserError(f"--threads must be >= 1, got {self.threads}")
        if self.clock not in CLOCKS:
            raise unknown("clock", self.clock, CLOCKS)
        if self.clock == "cpu" and (self.device != "cpu" or self.threads != 1):
            raise UserError("--clock cpu needs --backend-device cpu and --threads 1 "
                            "(process CPU time is latency only for one thread of synchronous work)")


def time_runner(runner: Runner, *, warmup_ms: float, iters: int, min_warmup: int = 1,
                clock: Callable[[], float] = time.perf_counter,
                on_iter: Callable[[], None] | None = None) -> tuple[list[float], int]:
    """Warm up for `warmup_ms` of wall time (at least `min_warmup` runs), then time `iters` runs.

    Returns (per-iteration latencies in ms as reported by the runner, warm-up iterations run).
    `on_iter` is called after each timed run (progress bars).
    """
    warm = 0
    t0 = clock()
    while warm < min_warmup or (clock() - t0) * 1e3 < warmup_ms:
        runner.run_once()
        warm += 1
    runner.reset_components()
    samples = []
    for _ in range(iters):
        samples.append(float(runner.run_once()))
        if on_iter is not None:
            on_iter()
    return samples, warm


def measure(model: str | nn.Module, input_hw: tuple[int, int], config: MeasureConfig, *,
            model_name: str | None = None, on_iter: Callable[[], None] | None = None) -> Measurement:
    """Measure one model at one input size with one backend; returns the record."""
    from hwbench.latency.backends import RunSpec, get_runner_class

    config.validate()
    cls = get_runner_class(config.backend)
    engine = "dla" if config.dla_core is not None else ("cpu" if config.device == "cpu" else "gpu")
    check_device_precision(config.device_profile, config.precision, engine=engine)
    name = model_name or (model if isinstance(model, str) else type(model).__name__)
    shape = (config.batch, 3, int(input_hw[0]), int(input_hw[1]))  # (N, C, H, W)
    spec = RunSpec(model_name=name, input_shape=shape, precision=config.precision, device=config.device,
                   threads=config.threads, cuda_graphs=config.cuda_graphs,
                   channels_last=config.channels_last, compile=config.compile,
                   onnx_path=config.onnx_path, dla_core=config.dla_core, workspace_mb=config.workspace_mb)
    cls.check(spec)  # unsupported device/precision/options -> UserError before any heavy work
    builds = cls.needs_module or (cls.needs_onnx and not config.onnx_path)
    check_memory(model if builds else None, shape, device=config.device, num_classes=config.num_classes)
    try:
        if builds:
            spec = spec.with_module(_build_module(model, config.num_classes))
        with cls(spec) as runner:
            runner.prepare()
            samples, warm = time_runner(runner, warmup_ms=config.warmup_ms, iters=config.iters, on_iter=on_iter)
            env = host_env(config.device, extra={"backend": runner.name, **runner.versions(),
                                                 **runner.env_extra()})
            env["torch_threads"] = runner.threads_used()
            env["clock"] = config.clock
            components = runner.component_samples()
    except (MemoryError, RuntimeError) as e:
        if isinstance(e, RuntimeError) and not _OOM.search(str(e)):
            raise
        raise UserError(f"out of memory measuring {name} at {shape[2]}x{shape[3]} (batch {shape[0]}) on "
                        f"{config.device}; use a smaller --input or --batch") from None
    if config.clock == "cpu":  # headline = process CPU time; the wall-clock samples stay as a component
        samples, components["wall"] = components.pop("cpu_time"), samples
    else:
        components.pop("cpu_time", None)
    device_label = config.device_profile or ("host" if config.device == "cpu" else _slug(env["device_name"]))
    rec = Measurement.from_samples(samples, model=name, device=device_label, backend=runner.name,
                                   precision=config.precision, input=shape, warmup=warm, env=env,
                                   warmup_ms=config.warmup_ms, components=components)
    return rec


_OOM = re.compile(r"out of memory|can't allocate memory|failed to allocate|bad_alloc", re.IGNORECASE)


def available_memory_bytes(device: str = "cpu") -> int | None:
    """Memory a measurement may use: MemAvailable (Linux) or free pages on CPU, free memory on CUDA."""
    if device == "cuda":
        import torch

        return int(torch.cuda.mem_get_info()[0]) if torch.cuda.is_available() else None
    try:
        m = re.search(r"^MemAvailable:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE)
        if m:
            return int(m.group(1)) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(model: str | nn.Module | None, shape: Sequence[int], *, device: str = "cpu",
                 num_classes: int | None = None) -> None:
    """`UserError` when one fp32 inference at `shape` cannot fit in the memory available now.

    Small inputs pass at once; a large one is sized by counting the model on the meta device
    (weights + peak live activations, `hwbench.count`), so an impossible --input is refused in a
    line instead of being killed by the OS half-way through allocating.
    """
    avail = available_memory_bytes(device)
    if not avail:
        return
    input_bytes = math.prod(shape) * 4
    if input_bytes * 64 < avail:
        return
    need = input_bytes
    if isinstance(model, str):
        from hwbench.count import count

        c = count(model, tuple(shape), num_classes=num_classes)
        need = (c.weight_elems + c.peak_activation_elems) * 4
    if need > avail:
        raise UserError(f"an input of {shape[2]}x{shape[3]} (batch {shape[0]}) needs about {need / 1e9:,.1f} GB on "
                        f"{device}, more than the {avail / 1e9:,.1f} GB available; use a smaller --input or --batch")


def _build_module(model: str | nn.Module, num_classes: int | None) -> nn.Module:
    if not isinstance(model, str):
        return model.eval()
    import torch

    from hwbench.models import create_model

    torch.manual_seed(0)  # same weights every time: exported ONNX files (and cached engines) repeat
    kw = {} if num_classes is None else {"num_classes": num_classes}
    return create_model(model, **kw).eval()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "device"
