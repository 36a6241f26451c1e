"""Device profiles: what a device can do on paper, with the source of every figure.

A profile is one TOML file (`profiles/TEMPLATE.toml` documents every field with its unit). Profiles are found
on a search path: the directories in `$HWBENCH_PROFILES` (separated by `os.pathsep`, first wins), then the
shipped ones (`profiles/` at the repository root; an installed wheel carries a copy in
`hwbench/profiles_data/`). A user profile with a shipped name wins over the shipped one; `--device FILE.toml`
loads any file. Loading is strict (`check_profile` lists every problem of a file at once: unknown keys, wrong
types, non-positive or infinite figures, a `name` other than the file's, a missing source). Sources are
required only for the figures a latency mode or verdict uses: every peak (peak, roofline), `mem_bw_gbps`
(roofline), `memory_gb` (deploy) and `paper_tops` (paper); `year`, `generation` and `power_mode` are optional
and so are their sources. Throughput is stored per (precision, engine, sparse):

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
import os
import platform
import time
from pathlib import Path

from hwbench.device_profile import (  # noqa: F401  (re-exported: the profile types' public home was here)
    BYTES_PER_ELEMENT,
    ENGINES,
    PRECISIONS,
    DeviceProfile,
    Engine,
    HostInfo,
    Peak,
    Precision,
    peak_key,
)
from hwbench.errors import UserError, unknown
from hwbench.io import atomic_write_text
from hwbench.profile_check import check_profile, profile_problems, validate  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)


HOST = "host"
# The three devices of the paper's Table 2, oldest first.
PAPER_DEVICES = ("tx2", "xavier_nx", "orin_nx")
TEMPLATE = "TEMPLATE"  # profiles/TEMPLATE.toml documents the format; it is not a device


# ------------------------------------------------------------------------------------ locating
def shipped_dir() -> Path:
    """The profiles that come with hwbench: the copy an installed wheel carries (`hwbench/profiles_data/`),
    else `profiles/` at the repository root (a checkout or an editable install)."""
    package = Path(__file__).resolve().parent
    packaged = package / "profiles_data"
    return packaged if packaged.is_dir() else package.parent / "profiles"


def profiles_dir() -> Path:
    """The shipped profiles' directory (kept for callers that want one directory; see `search_path`)."""
    return shipped_dir()


def search_path() -> list[Path]:
    """Where profiles are looked for, first wins: each directory in `$HWBENCH_PROFILES`, then the shipped one."""
    env = os.environ.get("HWBENCH_PROFILES", "")
    user = [Path(p) for p in env.split(os.pathsep) if p]
    for d in user:
        if not d.is_dir():
            raise UserError(f"HWBENCH_PROFILES names {str(d)!r}, which is not a directory; point it at a directory "
                            f"of profile files (several: separated by {os.pathsep!r}) or unset it")
    return list(dict.fromkeys([*user, shipped_dir()]))


def profile_files() -> dict[str, Path]:
    """Profile name -> file, over the search path (a name found twice: the first directory's)."""
    found: dict[str, Path] = {}
    for d in search_path():
        if not d.is_dir():
            continue
        for p in sorted(d.glob("*.toml")):
            if p.is_file() and p.stem not in (HOST, TEMPLATE):
                found.setdefault(p.stem, p)
    return found


def _file_profiles() -> list[str]:
    """Names of the profile files, sorted; `UserError` when there are none (a broken install)."""
    names = sorted(profile_files())
    if not names:
        raise UserError(f"no device profiles in {', '.join(map(str, search_path()))}; the installation lacks its "
                        "profiles: reinstall hwbench, or put profile files in a directory named by HWBENCH_PROFILES")
    return names


def cache_dir() -> Path:
    """`$HWBENCH_CACHE_DIR`, else `$XDG_CACHE_HOME/hwbench`, else `~/.cache/hwbench` (`hwbench.cachedir`)."""
    from hwbench.cachedir import cache_root

    return cache_root()


def host_cache_path() -> Path:
    return cache_dir() / "host.toml"


def list_profiles() -> list[str]:
    """Names of the profile files on the search path (sorted) plus `host`."""
    return [*_file_profiles(), HOST]


def profile_origin(name: str) -> str:
    """Where a profile comes from: "shipped", "user: <file>" (found on HWBENCH_PROFILES), "measured" (host)."""
    if name == HOST:
        return "measured"
    path = profile_files().get(name)
    if path is None:
        return "file"
    return "shipped" if path.parent.resolve() == shipped_dir().resolve() else f"user: {path}"


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
    for d in search_path():
        candidate = d / f"{text}.toml"
        if candidate.exists() and not candidate.is_file():
            raise UserError(f"{candidate} is not a file; a device profile is one TOML file")
    found = profile_files().get(text)
    if found is None:
        raise unknown("device", text, list_profiles())
    return _load_file(found)


def _load_file(path: Path) -> DeviceProfile:
    problems, prof = check_profile(path)
    if problems:
        more = f" ({len(problems) - 1} more problem(s): `hwbench profiles --check {path}` lists them all)" \
            if len(problems) > 1 else ""
        raise UserError(problems[0] + more)
    assert prof is not None
    return prof


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

    load_1m = _load_1m()  # before the measurement adds its own load
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
        load_1m=None if load_1m is None else round(load_1m, 2),
        cores=os.cpu_count(),
    )
    if info.busy():
        log.warning("the host was measured under a %s: its peak reads low; "
                    "`hwbench profiles host --refresh` on an idle machine", info.load_text())
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


def _load_1m() -> float | None:
    """The OS's 1-minute load average (None where the OS has none)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


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
        rec[f"tops_{peak_key(p).replace('/', '_')}"] = p.tops
    return rec
