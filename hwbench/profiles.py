"""Device profiles: what a device can do on paper, with the source of every figure.

A profile is one TOML file in `profiles/` (repository root; an installed wheel carries a copy in
`hwbench/profiles_data/`; `$HWBENCH_PROFILES` overrides the directory), loaded strictly into the frozen `DeviceProfile` (unknown keys, missing sources and
non-positive or infinite figures, and a `name` other than the file's, are `UserError`s). Throughput is stored per (precision, engine, sparse):

    precision: fp32 | fp16 | int8       engine: gpu | dla | gpu+dla | cpu       sparse: bool

in TOPS (10^12 operations per second, 2 operations per multiply-accumulate, as vendors count).
"gpu+dla" is the vendors' headline figure that adds the GPU and the deep-learning accelerators.

The `host` profile is not a file: it is measured on the current machine (a large fp32 matrix
product for peak throughput, a large copy for memory bandwidth) and cached as a readable TOML
file in `the cache folder (`hwbench.cachedir`)/host.toml`.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hwbench.errors import UserError, unknown
from hwbench.io import atomic_write_text
from hwbench.tomlconf import from_mapping, read_toml

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "int8")
ENGINES = ("gpu", "dla", "gpu+dla", "cpu")
BYTES_PER_ELEMENT = {"fp32": 4, "fp16": 2, "int8": 1}
HOST = "host"
# The three devices of the paper's Table 2, oldest first.
PAPER_DEVICES = ("tx2", "xavier_nx", "orin_nx")
# Scalar figures that need an entry in a profile's [sources] table when they are set.
_SOURCED = ("year", "generation", "power_mode", "mem_bw_gbps", "memory_gb", "paper_tops")

Precision = Literal["fp32", "fp16", "int8"]
Engine = Literal["gpu", "dla", "gpu+dla", "cpu"]


@dataclass(frozen=True)
class Peak:
    """One peak-throughput figure: `tops` at `precision` on `engine` (dense or sparse)."""

    precision: Precision
    engine: Engine
    tops: float
    source: str
    sparse: bool = False
    derived: bool = False       # True: computed from other figures (the formula is in `source`)


@dataclass(frozen=True)
class HostInfo:
    """How and where the `host` profile was measured."""

    date: str
    torch: str
    cpu: str
    threads: int
    method: str
    cuda_device: str | None = None


@dataclass(frozen=True)
class DeviceProfile:
    """A device's figures. Throughput in TOPS, bandwidth in GB/s (10^9 bytes/s), memory in GB."""

    name: str
    display_name: str
    generation: str             # GPU architecture (Pascal, Volta, Ampere) or "host"
    year: int
    power_mode: str
    mem_bw_gbps: float
    memory_gb: float
    peak: tuple[Peak, ...]
    sources: dict[str, str]     # figure name -> where it comes from
    paper_tops: float | None = None      # the TOPS the paper divides GOPs by (Table 2)
    paper_precision: Precision | None = None
    paper_engine: Engine | None = None
    dla_count: int = 0
    notes: str = ""
    measured: HostInfo | None = None

    def peak_entry(self, precision: str, engine: str = "gpu", sparse: bool = False) -> Peak:
        """The `Peak` for (precision, engine, sparse); `UserError` listing what the device has."""
        for p in self.peak:
            if (p.precision, p.engine, p.sparse) == (precision, engine, sparse):
                return p
        have = ", ".join(_peak_key(p) for p in self.peak)
        want = f"{precision}/{engine}" + ("/sparse" if sparse else "")
        why = ""
        if engine in ("dla", "gpu+dla") and self.dla_count == 0:
            why = " (it has no DLA)"
        raise UserError(f"device {self.name!r} has no {want} peak figure{why}; it has: {have}")

    def peak_tops(self, precision: str, engine: str = "gpu", sparse: bool = False) -> float:
        """Peak throughput in TOPS (2 ops per MAC) at `precision` on `engine`."""
        return self.peak_entry(precision, engine, sparse).tops

    def available(self) -> list[str]:
        """`precision/engine[/sparse]` keys of the figures this profile has."""
        return [_peak_key(p) for p in self.peak]


def _peak_key(p: Peak) -> str:
    return f"{p.precision}/{p.engine}" + ("/sparse" if p.sparse else "")


# ------------------------------------------------------------------------------------ locating
def profiles_dir() -> Path:
    """`$HWBENCH_PROFILES`, else the copy an installed wheel carries (`hwbench/profiles_data/`),
    else `profiles/` at the repository root (a checkout or an editable install)."""
    env = os.environ.get("HWBENCH_PROFILES")
    if env:
        return Path(env)
    package = Path(__file__).resolve().parent
    packaged = package / "profiles_data"
    return packaged if packaged.is_dir() else package.parent / "profiles"


def _file_profiles() -> list[str]:
    """Names of the profile files, sorted; `UserError` when there are none (a broken install)."""
    d = profiles_dir()
    names = sorted(p.stem for p in d.glob("*.toml") if p.is_file()) if d.is_dir() else []
    names = [n for n in names if n != HOST]
    if not names:
        hint = ("set HWBENCH_PROFILES to a directory of profile files" if os.environ.get("HWBENCH_PROFILES")
                else "the installation lacks its profiles; reinstall hwbench or set HWBENCH_PROFILES")
        raise UserError(f"no device profiles in {d}; {hint}")
    return names


def cache_dir() -> Path:
    """`$HWBENCH_CACHE_DIR`, else `$XDG_CACHE_HOME/hwbench`, else `~/.cache/hwbench` (`hwbench.cachedir`)."""
    from hwbench.cachedir import cache_root

    return cache_root()


def host_cache_path() -> Path:
    return cache_dir() / "host.toml"


def list_profiles() -> list[str]:
    """Names of the profile files (sorted) plus `host`."""
    return [*_file_profiles(), HOST]


# ------------------------------------------------------------------------------------- loading
def load_profile(name_or_path: str | os.PathLike, *, refresh: bool = False) -> DeviceProfile:
    """Load a profile by name (`tx2`, `host`, ...) or from a TOML file path.

    `host` is measured on first use and cached; `refresh=True` measures it again.
    Unknown names raise `UserError` listing the valid ones.
    """
    text = os.fspath(name_or_path)
    if text == HOST:
        return _load_host(refresh)
    path = Path(text)
    if path.suffix == ".toml" or os.sep in text or path.is_file():
        return _load_file(path)
    candidate = profiles_dir() / f"{text}.toml"
    if candidate.exists() and not candidate.is_file():
        raise UserError(f"{candidate} is not a file; a device profile is one TOML file")
    if not candidate.is_file():
        raise unknown("device", text, list_profiles())
    return _load_file(candidate)


def _load_file(path: Path) -> DeviceProfile:
    data = read_toml(path)
    where = str(path)
    prof = from_mapping(DeviceProfile, data, where)
    validate(prof, where)
    if prof.name != path.stem:
        raise UserError(f"{where}: name {prof.name!r} differs from the file name; "
                        f"rename the file to {prof.name}.toml or set name = {path.stem!r}")
    return prof


def _positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


def validate(prof: DeviceProfile, where: str) -> None:
    """Checks the dataclass types cannot express: positive figures, sources, no duplicates."""
    for fname in ("mem_bw_gbps", "memory_gb"):
        if not _positive(getattr(prof, fname)):
            raise UserError(f"{where}: {fname} must be a positive finite number, got {getattr(prof, fname)!r}")
    if prof.paper_tops is not None:
        if not _positive(prof.paper_tops):
            raise UserError(f"{where}: paper_tops must be a positive finite number, got {prof.paper_tops!r}")
        if prof.paper_precision is None or prof.paper_engine is None:
            raise UserError(f"{where}: paper_tops needs paper_precision and paper_engine "
                            "(what the paper's TOPS figure counts)")
    if not prof.peak:
        raise UserError(f"{where}: no [[peak]] figures; add at least one")
    seen = set()
    for i, p in enumerate(prof.peak):
        if not _positive(p.tops):
            raise UserError(f"{where}: peak[{i}] ({_peak_key(p)}) tops must be a positive finite number, "
                            f"got {p.tops!r}")
        if not p.source.strip():
            raise UserError(f"{where}: peak[{i}] ({_peak_key(p)}) has an empty source")
        if p.engine in ("dla", "gpu+dla") and prof.dla_count == 0:
            raise UserError(f"{where}: peak[{i}] uses engine {p.engine!r} but dla_count is 0")
        key = _peak_key(p)
        if key in seen:
            raise UserError(f"{where}: peak figure {key} appears twice")
        seen.add(key)
    for fname in _SOURCED:
        if getattr(prof, fname) is not None and not prof.sources.get(fname, "").strip():
            raise UserError(f"{where}: {fname} has no source; add it to the [sources] table")
    extra = sorted(set(prof.sources) - set(_SOURCED) - {"dla_count"})
    if extra:
        raise UserError(f"{where}: [sources] has unknown key(s) {', '.join(map(repr, extra))}; "
                        f"known: {', '.join(_SOURCED + ('dla_count',))}")


# ---------------------------------------------------------------------------------------- host
def _load_host(refresh: bool) -> DeviceProfile:
    path = host_cache_path()
    if path.is_file() and not refresh:
        try:
            return _load_file(path)
        except UserError as e:
            log.warning("ignoring unreadable host profile cache (%s); measuring again", e)
    prof = measure_host()
    atomic_write_text(path, host_toml(prof))
    log.info("host profile measured and cached in %s", path)
    return prof


def _best_seconds(fn, *, warmup: int, reps: int, sync=None) -> float:
    """Best wall time of `reps` calls of `fn` after `warmup` calls (synchronised if `sync`)."""
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        best = min(best, time.perf_counter() - t0)
    return best


def measure_host(*, matmul_n: int = 2048, copy_mib: int = 256, reps: int = 5) -> DeviceProfile:
    """Measure this machine: fp32 matmul peak (CPU, and the CUDA GPU if present) and copy bandwidth.

    Peak = 2·n³ / best time of an n×n fp32 matrix product (warm-up, then best of `reps`).
    Bandwidth = 2 · bytes / best time of copying a `copy_mib` MiB buffer (read + write).
    """
    import torch

    peaks: list[Peak] = []
    a = torch.randn(matmul_n, matmul_n)
    b = torch.randn(matmul_n, matmul_n)
    out = torch.empty(matmul_n, matmul_n)
    t = _best_seconds(lambda: torch.mm(a, b, out=out), warmup=2, reps=reps)
    flops = 2 * matmul_n**3
    peaks.append(Peak("fp32", "cpu", flops / t / 1e12,
                      f"measured: best of {reps} {matmul_n}x{matmul_n} fp32 torch.mm, 2*n^3/t", False, False))

    n_elem = copy_mib * 2**20 // 4
    src = torch.ones(n_elem)
    dst = torch.empty(n_elem)
    t = _best_seconds(lambda: dst.copy_(src), warmup=1, reps=reps)
    bw_gbps = 2 * n_elem * 4 / t / 1e9
    mem_gb = _host_memory_gb()

    cuda_name = None
    mem_src = f"measured: best of {reps} copies of a {copy_mib} MiB fp32 buffer, (read+write bytes)/t"
    if torch.cuda.is_available():
        cuda_name = torch.cuda.get_device_name(0)
        peaks.extend(_measure_cuda(matmul_n=max(matmul_n, 8192), reps=reps))

    info = HostInfo(
        date=datetime.datetime.now().isoformat(timespec="seconds"),
        torch=torch.__version__,
        cpu=_cpu_name(),
        threads=torch.get_num_threads(),
        method="peak: best-of-reps matrix product after warm-up; bandwidth: best-of-reps buffer copy",
        cuda_device=cuda_name,
    )
    prof = DeviceProfile(
        name=HOST, display_name=f"this machine ({info.cpu})", generation="host",
        year=datetime.date.today().year, power_mode="as running",
        mem_bw_gbps=round(bw_gbps, 3), memory_gb=round(mem_gb, 3), peak=tuple(peaks),
        sources={"year": "date of measurement", "generation": "measured on this machine",
                 "power_mode": "whatever the OS governor runs at", "mem_bw_gbps": mem_src,
                 "memory_gb": "os.sysconf(SC_PHYS_PAGES * SC_PAGE_SIZE)"},
        notes="measured host profile; re-measure with `hwbench profiles host --refresh`",
        measured=info,
    )
    validate(prof, "host measurement")
    return prof


def _measure_cuda(*, matmul_n: int, reps: int) -> list[Peak]:
    """fp32/fp16 matmul peak on CUDA device 0, timed with CUDA events after warm-up."""
    import torch

    out = []
    for precision, dtype in (("fp32", torch.float32), ("fp16", torch.float16)):
        a = torch.randn(matmul_n, matmul_n, device="cuda", dtype=dtype)
        b = torch.randn(matmul_n, matmul_n, device="cuda", dtype=dtype)
        for _ in range(3):
            torch.mm(a, b)
        torch.cuda.synchronize()
        best = float("inf")
        for _ in range(reps):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            torch.mm(a, b)
            end.record()
            end.synchronize()
            best = min(best, start.elapsed_time(end) / 1e3)
        tops = 2 * matmul_n**3 / best / 1e12
        out.append(Peak(precision, "gpu", tops, f"measured: best of {reps} {matmul_n}x{matmul_n} "
                        f"{precision} torch.mm on {torch.cuda.get_device_name(0)} (CUDA events)"))
    return out


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown cpu"


def _host_memory_gb() -> float:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 1e9
    except (ValueError, OSError, AttributeError):
        return 1.0


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(str(v))  # a JSON string is a valid TOML basic string


def host_toml(prof: DeviceProfile) -> str:
    """A readable TOML file for a measured profile (same schema as `profiles/*.toml`)."""
    lines = ["# Measured by `hwbench` on this machine; delete or use --refresh to re-measure.", ""]
    for k in ("name", "display_name", "generation", "year", "power_mode", "mem_bw_gbps", "memory_gb",
              "notes"):
        lines.append(f"{k} = {_toml_value(getattr(prof, k))}")
    lines += ["", "[sources]"]
    lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in prof.sources.items()]
    if prof.measured is not None:
        lines += ["", "[measured]"]
        for k, v in vars(prof.measured).items():
            if v is not None:
                lines.append(f"{k} = {_toml_value(v)}")
    for p in prof.peak:
        lines += ["", "[[peak]]"]
        for k in ("precision", "engine", "sparse", "tops", "derived", "source"):
            lines.append(f"{k} = {_toml_value(getattr(p, k))}")
    return "\n".join(lines) + "\n"


def describe(prof: DeviceProfile) -> dict:
    """A flat record of the main figures (for tables and `--json`)."""
    rec = {"name": prof.name, "display_name": prof.display_name, "generation": prof.generation,
           "year": prof.year, "power_mode": prof.power_mode, "mem_bw_gbps": prof.mem_bw_gbps,
           "memory_gb": prof.memory_gb, "paper_tops": prof.paper_tops, "dla_count": prof.dla_count}
    for p in prof.peak:
        rec[f"tops_{_peak_key(p).replace('/', '_')}"] = p.tops
    return rec
