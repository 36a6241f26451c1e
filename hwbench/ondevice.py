#!/usr/bin/env python3
"""Stand-alone on-device tools for a Jetson (or any NVIDIA GPU): latency benchmark and frame scorer.

Copy this ONE file to the device together with an ONNX model (from `hwbench export`) and run

    python3 ondevice.py bench --onnx model.onnx --fp16 --iters 200 --out records.jsonl
    python3 ondevice.py bench --onnx model.onnx --int8 --dla-core 0 --out records.jsonl
    python3 ondevice.py score --onnx s.onnx --fp16 --camera 0 --policy window-topk --budget-frames 1000 \
        --per 1d --spool /data/spool   # s.onnx: `hwbench export MODEL --score entropy --weights CKPT.pt ...`

It runs on Python 3.6 (JetPack 4.6) and needs only the standard library, numpy >= 1.13, TensorRT
8.0-10.x (shipped with JetPack; TensorRT 11 has no FP16/INT8 builder flags and is refused for them
in one line) and ONE CUDA binding, pycuda
(cuda-python needs CUDA 11+, the TX2's JetPack 4.6 has CUDA 10.2); `score --backend onnxruntime`
runs anywhere with onnxruntime instead, OpenCV/Pillow are used when present for image, video and
camera sources. It imports nothing from hwbench, al or torch. The tests run it under real Python 3.6
and 3.8 with numpy/onnxruntime of those JetPacks, under numpy 1.13.3, and against stand-ins of ten
TensorRT releases' Python API (docs/jetson-stack.md).

`score` (sections "upload policies" to "score" below): frames from a directory, video, camera or a
synthetic source arrive on a simulated real-time clock; the scorer takes those its latency allows,
an upload policy keeps the informative ones under a budget, and a crash-safe spool holds them
with a JSON-lines manifest until they are uploaded (`al ingest` reads the spools back).

`bench`: each run appends one JSON record
with the keys of `hwbench.latency.measure.Measurement` to `--out`; bring the file back and use it
with `hwbench predict --measurements records.jsonl` or in a report. Inside hwbench the same code
backs `hwbench measure --backend tensorrt` (one implementation of the TensorRT calls).

What is measured (as trtexec): per iteration, CUDA events on one stream around the H2D copies,
the enqueue of the engine and the D2H copies. The headline `latency_ms` is the median GPU compute
time; `components` holds `latency` (H2D + compute + D2H, trtexec's "Latency"), `h2d`, `d2h` and
`enqueue` (host time of the enqueue call). Warm-up runs for `--warmup-ms` of wall time first.
Engines are cached under <cache>/engines/<key>.engine (<cache>: $HWBENCH_CACHE_DIR, else $XDG_CACHE_HOME/hwbench, else ~/.cache/hwbench), the key
covering the ONNX content, input shape, precision, DLA core, GPU name and TensorRT version.

INT8: with `--calib-dir DIR` (*.npy input batches) an entropy calibrator (IInt8EntropyCalibrator2)
sets the scales and `--calib-cache FILE` keeps them; with neither, every tensor gets the fixed
dynamic range trtexec uses without calibration (inputs +-2, outputs +-4): right for latency,
meaningless for accuracy. `--int8` also enables FP16 so layers without INT8 kernels fall back to
FP16 (trtexec --int8 --fp16). The TX2 (Pascal) has no fast INT8: the builder refuses it here.
"""

import argparse
import errno
import hashlib
import json
import math
import os
import platform
import re
import signal
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

PRECISIONS = ("fp32", "fp16", "int8")
DEFAULT_WORKSPACE_MB = 1024
LATENCY_ONLY_RANGES = (2.0, 4.0)  # trtexec's dynamic ranges when INT8 runs without calibration
HIGH_CV = 0.1
PathLike = Union[str, "os.PathLike[str]"]
MIN_NUMPY = (1, 13)  # JetPack 4.6's system numpy is 1.13.3: nothing newer may be used here
ORT_TF32_OPTION = (1, 12)  # first onnxruntime whose CUDA provider knows `use_tf32` (1.10/1.11 reject it)


class BenchError(Exception):
    """Bad input or an unusable device: printed as one line `error: ...`, exit status 2."""


class Terminated(BaseException):
    """SIGTERM arrived: unwinds like KeyboardInterrupt (the spool stays consistent)."""


def version_tuple(text: str) -> Tuple[int, ...]:
    """'1.19.5' -> (1, 19, 5); '1.10.0rc1' -> (1, 10, 0); non-numeric parts end it."""
    out = []
    for part in str(text).split(".")[:3]:
        m = re.match(r"(\d+)", part)
        if not m:
            break
        out.append(int(m.group(1)))
    return tuple(out)


def check_numpy() -> Any:
    """numpy, or `BenchError` naming the minimum (a missing or too old numpy on the device)."""
    try:
        import numpy
    except ImportError:
        raise BenchError("numpy is not installed; install it with: sudo apt install python3-numpy "
                         "(or pip install numpy)") from None
    if version_tuple(numpy.__version__) < MIN_NUMPY:
        raise BenchError(f"numpy {numpy.__version__} is too old; this script needs numpy >= "
                         f"{'.'.join(map(str, MIN_NUMPY))} (pip install --upgrade numpy)")
    return numpy


def ort_cuda_options(ort_version: str, gpu: int = 0) -> Dict[str, Any]:
    """CUDA provider options: TF32 off (fp32 accuracy) where this onnxruntime knows the option;
    the 1.10/1.11 wheels (JetPack 4.6/5) reject unknown options and never use TF32 anyway."""
    opts = {"device_id": int(gpu)}  # type: Dict[str, Any]
    if version_tuple(ort_version) >= ORT_TF32_OPTION:
        opts["use_tf32"] = 0
    return opts


# ------------------------------------------------------------------------------------- stats
def percentile(sorted_samples: List[float], p: float) -> float:
    """Nearest-rank percentile (no interpolation) of an ascending list, as trtexec."""
    n = len(sorted_samples)
    if n == 0:
        raise ValueError("percentile of an empty sample")
    rank = math.ceil(round(p * n / 100.0, 9))
    return float(sorted_samples[min(max(rank - 1, 0), n - 1)])


def summarize(samples_ms: List[float]) -> Dict[str, float]:
    """min / max / median / mean / p90 / p99 / std (population) / cv, as hwbench.latency.measure."""
    s = sorted(float(x) for x in samples_ms)
    if not s:
        raise ValueError("no samples to summarise")
    n, m = len(s), len(s) // 2
    mean = math.fsum(s) / n
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in s) / n)
    return {"min_ms": s[0], "max_ms": s[-1], "median_ms": s[m] if n % 2 else (s[m - 1] + s[m]) / 2.0,
            "mean_ms": mean, "p90_ms": percentile(s, 90), "p99_ms": percentile(s, 99), "std_ms": std,
            "cv": std / mean if mean > 0 else math.inf}


# ------------------------------------------------------------------- build settings (pure logic)
class Int8Calibration(namedtuple("Int8Calibration", "data_dir cache_file max_batches")):
    """INT8 scales: from calibration batches (`data_dir` of .npy files), a saved cache, or neither
    (fixed trtexec-style ranges: latency only)."""

    __slots__ = ()

    @property
    def mode(self) -> str:
        if self.data_dir:
            return "entropy"
        if self.cache_file and Path(self.cache_file).is_file():
            return "cache"
        return "latency-only"

    def ident(self) -> str:
        """What makes engines built with this calibration differ (part of the cache key)."""
        if self.mode == "latency-only":
            return "latency-only"
        if self.mode == "cache":
            return "cache:" + file_sha256(self.cache_file)[:16]  # type: ignore[arg-type]
        files = sorted(Path(self.data_dir).glob("*.npy"))[: self.max_batches]  # type: ignore[arg-type]
        h = hashlib.sha256()
        for f in files:
            h.update(f.name.encode())
            h.update(str(f.stat().st_size).encode())
        return f"entropy:{len(files)}:{h.hexdigest()[:16]}"


Int8Calibration.__new__.__defaults__ = (None, None, 16)  # type: ignore[attr-defined]


_BUILD_FIELDS = "precision fp16 int8 dla_core gpu_fallback workspace_bytes calibration"


class BuildSettings(namedtuple("BuildSettings", _BUILD_FIELDS)):
    """Everything the TensorRT builder is told, as plain data (testable without TensorRT)."""

    __slots__ = ()

    @property
    def device_type(self) -> str:
        return "DLA" if self.dla_core is not None else "GPU"

    @property
    def builder_flags(self) -> Tuple[str, ...]:
        """Names of the trt.BuilderFlag members to set."""
        flags = []
        if self.fp16:
            flags.append("FP16")
        if self.int8:
            flags.append("INT8")
        if self.dla_core is not None and self.gpu_fallback:
            flags.append("GPU_FALLBACK")
        return tuple(flags)


def build_settings(precision: str, *, dla_core: Optional[int] = None, gpu_fallback: bool = True,
                   workspace_mb: int = DEFAULT_WORKSPACE_MB,
                   calibration: Optional["Int8Calibration"] = None) -> BuildSettings:
    """Check and translate user options into builder settings (`BenchError` on a bad combination)."""
    if precision not in PRECISIONS:
        raise BenchError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
    if dla_core is not None and dla_core < 0:
        raise BenchError(f"--dla-core must be >= 0, got {dla_core}")
    if dla_core is not None and precision == "fp32":
        raise BenchError("the DLA runs fp16 or int8 only; add --fp16 or --int8 to use --dla-core")
    if workspace_mb <= 0:
        raise BenchError(f"--workspace-mb must be > 0, got {workspace_mb}")
    if calibration is not None and precision != "int8":
        raise BenchError("INT8 calibration data given without --int8")
    if calibration is not None and calibration.data_dir and not Path(calibration.data_dir).is_dir():
        raise BenchError(f"--calib-dir {calibration.data_dir!r} is not a directory")
    if precision == "int8" and calibration is None:
        calibration = Int8Calibration()
    return BuildSettings(precision=precision, fp16=precision in ("fp16", "int8"), int8=precision == "int8",
                         dla_core=dla_core, gpu_fallback=gpu_fallback,
                         workspace_bytes=int(workspace_mb) << 20, calibration=calibration)


def network_flags(trt_major: int, explicit_batch_bit: int = 0) -> int:
    """`create_network` flags: EXPLICIT_BATCH for TensorRT < 10 (ONNX needs it), 0 from 10 on."""
    return 1 << explicit_batch_bit if trt_major < 10 else 0


def trt_major(version: str) -> int:
    m = re.match(r"(\d+)", version)
    if not m:
        raise BenchError(f"unrecognised TensorRT version {version!r}")
    return int(m.group(1))


def file_sha256(path: PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def engine_cache_key(*, model: str, onnx_sha256: str, input_shape: Optional[Tuple[int, ...]],
                     settings: BuildSettings, trt_version: str, device_name: str = "") -> str:
    """`<model>_<NxCxHxW|static>_<precision>_<gpu|dlaN>_trt<version>_<hash>`; the hash covers everything.

    `input_shape=None`: the ONNX input is static, so its shape is part of the hashed ONNX content.
    """
    dims = [int(d) for d in input_shape] if input_shape else None
    payload = {"onnx": onnx_sha256, "shape": dims, "precision": settings.precision,
               "flags": list(settings.builder_flags), "dla_core": settings.dla_core,
               "workspace": settings.workspace_bytes, "trt": trt_version, "device": device_name,
               "calibration": settings.calibration.ident() if settings.calibration else None}
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
    engine = f"dla{settings.dla_core}" if settings.dla_core is not None else "gpu"
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip("-") or "model"
    shape = "x".join(map(str, dims)) if dims else "static"
    return f"{stem}_{shape}_{settings.precision}_{engine}_trt{trt_version}_{digest}"


def default_cache_dir() -> Path:
    # the rule of hwbench.cachedir (this file runs alone on a device): $HWBENCH_CACHE_DIR, $XDG_CACHE_HOME/hwbench
    configured = os.environ.get("HWBENCH_CACHE_DIR", "").strip()
    if configured:
        return Path(configured).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return Path(xdg) / "hwbench" if xdg and os.path.isabs(xdg) else Path.home() / ".cache" / "hwbench"


def engine_cache_path(key: str, cache_dir: Optional[PathLike] = None) -> Path:
    return Path(cache_dir or default_cache_dir()) / "engines" / f"{key}.engine"


def parse_shape(text: str) -> Tuple[int, ...]:
    """'1x3x512x1024' -> (1, 3, 512, 1024)."""
    if not re.fullmatch(r"\d+(x\d+){3}", text or ""):
        raise BenchError(f"bad --shape {text!r}; expected NxCxHxW, e.g. 1x3x512x1024")
    return tuple(int(v) for v in text.split("x"))


def make_record(*, compute_ms: List[float], components: Dict[str, List[float]], model: str, device: str,
                precision: str, input_shape: Tuple[int, ...], warmup: int, warmup_ms: float,
                env: Dict[str, Any], source: str = "ondevice") -> Dict[str, Any]:
    """A record with the keys of hwbench.latency.measure.Measurement (headline = GPU compute)."""
    st = summarize(compute_ms)
    rec: Dict[str, Any] = {
        "model": model, "device": device, "backend": "tensorrt", "precision": precision,
        "input": [int(d) for d in input_shape], "warmup": int(warmup), "iters": len(compute_ms),
        **{k: st[k] for k in ("min_ms", "median_ms", "mean_ms", "p90_ms", "p99_ms", "std_ms", "cv")},
        "latency_ms": st["median_ms"], "source": source, "env": env, "max_ms": st["max_ms"],
        "warmup_ms": float(warmup_ms),
        "components": {k: summarize(v) for k, v in components.items() if v}, "warnings": [],
        "batch": int(input_shape[0]) if len(input_shape) == 4 else None,
        "provenance": device_provenance(),
    }
    if st["cv"] > HIGH_CV:
        rec["warnings"].append(f"high CV {st['cv']:.3f} > {HIGH_CV}: timings are unstable; "
                               "lock clocks (sudo jetson_clocks), raise --warmup-ms/--iters")
    return rec


def device_provenance() -> Dict[str, Any]:
    """hwbench.provenance's fields, as far as the device knows them (no checkout, no torch needed)."""
    import socket
    from importlib import import_module

    def version(name: str) -> Optional[str]:
        try:
            return str(import_module(name).__version__)
        except Exception:  # absent or broken: the record says so
            return None

    return {"time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "tool": "hwbench/ondevice.py",
            "tool_version": None, "git_commit": None, "git_dirty": None, "python": platform.python_version(),
            "torch": None, "onnxruntime": version("onnxruntime") if "onnxruntime" in sys.modules else None,
            "host": socket.gethostname(),
            "platform": "{} {} {}".format(platform.system(), platform.release(), platform.machine()).strip()}


def append_jsonl(path: PathLike, record: Dict[str, Any]) -> Path:
    """Append one record, rewriting the file atomically (temporary file + os.replace)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    old = p.read_text(encoding="utf-8") if p.is_file() else ""
    if old and not old.endswith("\n"):
        old += "\n"
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    tmp.write_text(old + json.dumps(record) + "\n", encoding="utf-8")
    os.replace(tmp, p)
    return p


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


# --------------------------------------------------------------------------------- environment
def device_env() -> Dict[str, Any]:
    """Software versions and, on a Jetson, L4T release, power mode and GPU clock (best effort)."""
    env: Dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(terse=True),
                           "machine": platform.machine()}
    try:
        import numpy

        env["numpy"] = numpy.__version__
    except ImportError:  # pragma: no cover - numpy is required at run time anyway
        pass
    tegra = Path("/etc/nv_tegra_release")
    if tegra.is_file():
        env["l4t"] = tegra.read_text(errors="replace").splitlines()[0].strip("# ").strip()
        try:
            out = subprocess.run(["nvpmodel", "-q"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                 universal_newlines=True, timeout=5).stdout
            mode = re.search(r"NV Power Mode:\s*(\S+)", out)
            if mode:
                env["power_mode"] = mode.group(1)
        except (OSError, subprocess.SubprocessError):
            pass
        for f in sorted(Path("/sys/class/devfreq").glob("*/cur_freq")):
            if "gp" in f.parent.name or "gpu" in f.parent.name:
                try:
                    env["gpu_freq_hz"] = int(f.read_text().strip())
                except (OSError, ValueError):
                    pass
                break
    return env


# ------------------------------------------------------------------- upload policies (pure logic)
# The contract shared by the device (`score`) and the fleet simulation (al/fleet): both call these
# functions, so a simulated device keeps exactly what a real one would.
#
# Stream: frames in arrival order, index i = 0, 1, 2, ... (every camera frame, scored or not),
# source timestamps t_us (integer microseconds, non-decreasing), per scored frame a finite score
# (higher = more informative), optionally an embedding (for the near-duplicate filter) and its
# size in bytes (for --budget-mb). Skipped frames (the scorer was busy) and frames with a
# non-finite score have score None: they are never kept but still advance the windows.
#
# Budget: at most `frames` kept frames and `nbytes` bytes per budget period of `period_s` seconds;
# a kept frame is charged to the period of its OWN timestamp, floor(t_us / period_us) (periods
# are aligned to timestamp 0: the epoch for wall-clock stamps, the first frame for --fps ones).
# period_s None: one period for the whole run. A frame that does not fit (frames used up, or its
# bytes exceed what is left) is dropped; a later, smaller frame may still fit the byte budget.
#
# threshold: keep frame i when score_i >= threshold, decided on arrival.
# window-topk: windows of W consecutive arrival indices (window = i // W); when a window closes
# (the first frame of a later window arrives, or the stream ends) its scored frames are ranked by
# (score desc, index asc) and the best k are offered, in that order. A window's decision is made
# when it closes, so only k candidates (not W frames) are held in memory.
# Near-duplicate filter (dedup_dist d, optional): an offered frame whose L2-normalised embedding
# lies within Euclidean distance <= d of one of the last `dedup_memory` KEPT frames is dropped
# (checked before the budget, so a duplicate costs no budget; not replaced by the next best).
# Order of checks for an offered frame: near-duplicate, then budget. Ties and order are fully
# determined by (score, index): the same stream gives the same selection.

POLICIES = ("threshold", "window-topk")


class PolicyConfig(namedtuple("PolicyConfig", "name threshold k window dedup_dist dedup_memory "
                                              "budget_frames budget_bytes period_s")):
    """Validated policy settings (build with `policy_config`)."""

    __slots__ = ()

    def period(self, t_us: int) -> int:
        """Budget period of a timestamp (0 when the budget covers the whole run)."""
        return 0 if self.period_s is None else int(t_us) // int(round(self.period_s * 1e6))


class Candidate(namedtuple("Candidate", "index t_us score embedding nbytes payload")):
    """One scored frame offered to a policy; `payload` is carried along untouched (the frame)."""

    __slots__ = ()


def policy_config(name: str, *, threshold: Optional[float] = None, k: int = 1, window: int = 30,
                  dedup_dist: Optional[float] = None, dedup_memory: int = 32,
                  budget_frames: Optional[int] = None, budget_mb: Optional[float] = None,
                  period_s: Optional[float] = None) -> PolicyConfig:
    """Check the options (`BenchError` naming the bad one) and return a `PolicyConfig`."""
    if name not in POLICIES:
        raise BenchError(f"unknown policy {name!r}; known: {', '.join(POLICIES)}")
    if name == "threshold" and (threshold is None or not math.isfinite(threshold)):
        raise BenchError("--policy threshold needs a finite --threshold (or --pool-scores FILE --quantile Q)")
    if name == "window-topk" and (k < 1 or window < 1 or k > window):
        raise BenchError(f"window-topk needs 1 <= --k <= --window, got k={k}, window={window}")
    if dedup_dist is not None and not (math.isfinite(dedup_dist) and dedup_dist >= 0):
        raise BenchError(f"--dedup-dist must be a finite number >= 0, got {dedup_dist}")
    if dedup_memory < 1:
        raise BenchError(f"--dedup-memory must be >= 1, got {dedup_memory}")
    if budget_frames is not None and budget_frames < 0:
        raise BenchError(f"--budget-frames must be >= 0, got {budget_frames}")
    if budget_mb is not None and not (math.isfinite(budget_mb) and budget_mb >= 0):
        raise BenchError(f"--budget-mb must be a finite number >= 0, got {budget_mb}")
    if period_s is not None and not (math.isfinite(period_s) and period_s > 0):
        raise BenchError(f"--per must be a positive duration, got {period_s} s")
    if period_s is not None and budget_frames is None and budget_mb is None:
        raise BenchError("--per needs --budget-frames and/or --budget-mb")
    nbytes = None if budget_mb is None else int(round(budget_mb * 1e6))
    return PolicyConfig(name, None if threshold is None else float(threshold), int(k), int(window),
                        None if dedup_dist is None else float(dedup_dist), int(dedup_memory),
                        None if budget_frames is None else int(budget_frames), nbytes,
                        None if period_s is None else float(period_s))


def parse_duration(text: str) -> float:
    """'90s' / '15m' / '1h' / '1d' / '3600' -> seconds."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([smhd]?)\s*", text or "")
    if not m or float(m.group(1)) <= 0:
        raise BenchError(f"bad duration {text!r}; expected e.g. 1h, 15m, 90s, 1d")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def threshold_from_scores(scores: Any, q: float) -> float:
    """The server-side threshold: the q-quantile (linear interpolation) of last cycle's pool scores.

    Keeping score >= this threshold keeps about a (1 - q) fraction of frames like the pool's."""
    import numpy as np

    if not 0.0 <= q <= 1.0:
        raise BenchError(f"--quantile must be in [0, 1], got {q}")
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    s = s[np.isfinite(s)]
    if s.size == 0:
        raise BenchError("no finite pool scores to take a quantile of")
    return float(np.percentile(s, 100.0 * q))


def unit(embedding: Any) -> Any:
    """L2-normalised float64 copy (a zero vector stays zero)."""
    import numpy as np

    e = np.asarray(embedding, dtype=np.float64).reshape(-1)
    n = float(np.sqrt(np.dot(e, e)))
    return e / n if n > 0 else e


class StreamPolicy:
    """The streaming policy of `cfg` (see the contract above). Feed every arrival to `step`, call
    `flush` at the end of the stream; both return the frames kept now, in decision order.
    `state()` / `load_state()` round-trip it through JSON between windows (nothing pending)."""

    def __init__(self, cfg: PolicyConfig) -> None:
        self.cfg = cfg
        self.usage = {}  # type: Dict[int, List[int]]  # period -> [frames, bytes] kept
        self.memory = []  # type: List[Any]  # unit embeddings of the last kept frames, oldest first
        self.window_id = None  # type: Optional[int]
        self.pending = []  # type: List[Candidate]  # window-topk: best k of the open window

    def step(self, index: int, t_us: int, score: Optional[float] = None, embedding: Any = None,
             nbytes: int = 0, payload: Any = None) -> List[Candidate]:
        out = []  # type: List[Candidate]
        ok = score is not None and math.isfinite(score)
        cand = Candidate(int(index), int(t_us), float(score), embedding, int(nbytes), payload) if ok else None
        if self.cfg.name == "threshold":
            if cand is not None and cand.score >= self.cfg.threshold and self._admit(cand):
                out.append(cand)
            return out
        out = self.advance(index)
        if cand is not None:
            self.pending.append(cand)
            self.pending.sort(key=_rank)
            del self.pending[self.cfg.k:]
        return out

    def advance(self, index: int) -> List[Candidate]:
        """Window-topk: close the open window when `index` starts a later one (returns its kept
        frames); `step` calls it first. Calling it before scoring frame `index` leaves nothing
        pending at a window start, the moment the device commits its state."""
        if self.cfg.name != "window-topk":
            return []
        w = int(index) // self.cfg.window
        out = self._close() if self.window_id is not None and w != self.window_id else []
        self.window_id = w
        return out

    def flush(self) -> List[Candidate]:
        """End of stream: decide the open window (window-topk)."""
        return self._close() if self.cfg.name == "window-topk" else []

    def window_open(self) -> bool:
        """Whether a window-topk window has undecided candidates (state() refuses then)."""
        return bool(self.pending)

    def _close(self) -> List[Candidate]:
        cands, self.pending = self.pending, []
        return [c for c in cands if self._admit(c)]

    def _admit(self, c: Candidate) -> bool:
        cfg = self.cfg
        u = None
        if cfg.dedup_dist is not None and c.embedding is not None:
            import numpy as np

            u = unit(c.embedding)
            if self.memory:
                mem = np.asarray(self.memory, dtype=np.float64)  # (M, D)
                if mem.shape[1] == u.size and float(np.min(np.sqrt(((mem - u) ** 2).sum(1)))) <= cfg.dedup_dist:
                    return False
        period = cfg.period(c.t_us)
        used = self.usage.setdefault(period, [0, 0])
        if cfg.budget_frames is not None and used[0] + 1 > cfg.budget_frames:
            return False
        if cfg.budget_bytes is not None and used[1] + c.nbytes > cfg.budget_bytes:
            return False
        used[0] += 1
        used[1] += c.nbytes
        if u is not None:
            self.memory.append(u)
            del self.memory[:-cfg.dedup_memory]
        if len(self.usage) > 1024:  # only recent periods can still be charged
            for p in sorted(self.usage)[:-1024]:
                del self.usage[p]
        return True

    def state(self) -> Dict[str, Any]:
        if self.pending:
            raise RuntimeError("policy state taken with an open window")
        return {"usage": [[p, f, b] for p, (f, b) in sorted(self.usage.items())],
                "memory": [[float(v) for v in m] for m in self.memory], "window_id": self.window_id}

    def load_state(self, st: Dict[str, Any]) -> None:
        import numpy as np

        self.usage = {int(p): [int(f), int(b)] for p, f, b in st["usage"]}
        self.memory = [np.asarray(m, dtype=np.float64) for m in st["memory"]]
        self.window_id = None if st["window_id"] is None else int(st["window_id"])
        self.pending = []


def _rank(c: Candidate) -> Tuple[float, int]:
    return (-c.score, c.index)


def select_stream(cfg: PolicyConfig, t_us: Any, scores: Any, embeddings: Any = None,
                  nbytes: Any = None) -> Any:
    """Indices kept by the policy over a whole stream, in decision order (reference loop).

    t_us: (N,) int timestamps; scores: (N,) float, NaN = not scored; embeddings: (N, D) or None;
    nbytes: (N,) int or None (0 bytes each)."""
    import numpy as np

    pol = StreamPolicy(cfg)
    s = np.asarray(scores, dtype=np.float64)
    kept = []  # type: List[int]
    for i in range(s.size):
        sc = float(s[i]) if math.isfinite(s[i]) else None
        emb = None if embeddings is None else embeddings[i]
        kept += [c.index for c in pol.step(i, int(t_us[i]), sc, emb, 0 if nbytes is None else int(nbytes[i]))]
    kept += [c.index for c in pol.flush()]
    return np.asarray(kept, dtype=np.int64)


def select_stream_fast(cfg: PolicyConfig, t_us: Any, scores: Any) -> Any:
    """`select_stream` without a near-duplicate filter or byte budget, vectorised (same result)."""
    import numpy as np

    if cfg.dedup_dist is not None or cfg.budget_bytes is not None:
        raise ValueError("select_stream_fast covers frame budgets without the near-duplicate filter")
    s = np.asarray(scores, dtype=np.float64)
    t = np.asarray(t_us, dtype=np.int64)
    idx = np.flatnonzero(np.isfinite(s))
    if cfg.name == "threshold":
        order = idx[s[idx] >= cfg.threshold]                                  # arrival order
    else:
        win = idx // cfg.window
        o = np.lexsort((idx, -s[idx], win))                                   # window, score desc, index
        order, w = idx[o], win[o]
        first = np.r_[True, w[1:] != w[:-1]]
        start = np.maximum.accumulate(np.where(first, np.arange(w.size), 0))
        order = order[np.arange(w.size) - start < cfg.k]                      # best k per window
    if cfg.budget_frames is None or order.size == 0:
        return order
    per = t[order] // int(round(cfg.period_s * 1e6)) if cfg.period_s is not None else np.zeros(order.size, np.int64)
    # rank of each offered frame within its period, in decision order (periods may interleave)
    srt = np.argsort(per, kind="mergesort")  # stable; kind="stable" needs numpy 1.15
    ps = per[srt]
    first = np.r_[True, ps[1:] != ps[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(ps.size), 0))
    rank = np.empty(order.size, np.int64)
    rank[srt] = np.arange(ps.size) - start
    return order[rank < cfg.budget_frames]


def scored_mask(t_us: Any, latency_us: Any) -> Any:
    """The real-time model: which arrivals a busy scorer can take (pure; integer microseconds).

    A frame arriving at t is scored iff t >= free_at; scoring it sets free_at = t + latency (the
    frame's own latency, or one fixed figure). Start: free. Everything else is skipped."""
    import numpy as np

    t = np.asarray(t_us, dtype=np.int64)
    lat = np.broadcast_to(np.asarray(latency_us, dtype=np.int64), t.shape)
    out = np.zeros(t.size, dtype=bool)
    free_at = None
    for i in range(t.size):
        if free_at is None or t[i] >= free_at:
            out[i] = True
            free_at = int(t[i]) + int(lat[i])
    return out


def frame_times_us(n: int, fps: float, start: int = 0) -> Any:
    """Arrival timestamps of a camera at `fps`: round(i * 1e6 / fps) µs."""
    import numpy as np

    return np.round(np.arange(start, start + n, dtype=np.float64) * 1e6 / fps).astype(np.int64)


def scored_mask_fixed(t_us: Any, latency_us: int) -> Any:
    """`scored_mask` for one fixed latency: jumps from scored frame to scored frame (searchsorted),
    so the Python loop runs once per scored frame, not once per arrival."""
    import numpy as np

    t = np.asarray(t_us, dtype=np.int64)
    out = np.zeros(t.size, dtype=bool)
    nxt = np.searchsorted(t, t + int(latency_us), side="left")  # first arrival at or after free_at
    i = 0
    while i < t.size:
        out[i] = True
        i = max(int(nxt[i]), i + 1)
    return out


# ---------------------------------------------------------------------------- TensorRT + pycuda
_CUDA_CONTEXT = {}  # type: Dict[int, Any]  # GPU index -> the pycuda context made current for it


def import_trt(gpu: int = 0) -> Tuple[Any, Any]:
    """(tensorrt, pycuda.driver) with a CUDA context current on GPU `gpu`, or `BenchError` with a hint.

    One CUDA binding: pycuda (it builds against the CUDA 10.2 of JetPack 4.6 and Python 3.6;
    cuda-python starts at CUDA 11 and Python 3.8). The context is made on `pycuda.driver.Device(gpu)`
    (an index in CUDA's enumeration; CUDA_VISIBLE_DEVICES applies) and popped at exit."""
    try:
        import tensorrt as trt
    except ImportError:
        raise BenchError("tensorrt is not installed; install it with: pip install 'hwbench[trt]' "
                         "(on Jetson it ships with JetPack: sudo apt install python3-libnvinfer)") from None
    try:
        import pycuda.driver as cuda
    except ImportError:
        raise BenchError("pycuda is not installed; install it with: pip install pycuda") from None
    if gpu < 0:
        raise BenchError(f"--gpu must be >= 0, got {gpu}")
    if gpu not in _CUDA_CONTEXT:
        try:
            cuda.init()
            count = cuda.Device.count()
        except Exception as e:  # pycuda raises its own LogicError/RuntimeError when no GPU is usable
            raise BenchError(f"no usable CUDA device ({str(e).strip()[:120]})") from None
        if gpu >= count:
            raise BenchError(f"--gpu {gpu}: this machine has {count} CUDA device(s); choose 0..{count - 1}")
        import atexit

        ctx = cuda.Device(gpu).make_context()
        _CUDA_CONTEXT[gpu] = ctx
        atexit.register(ctx.pop)
    return trt, cuda


def gpu_name(cuda: Any) -> str:
    return str(cuda.Context.get_device().name())


def _set_latency_only_ranges(trt: Any, network: Any, in_range: float, out_range: float) -> None:
    """Give every float tensor a dynamic range, as trtexec does for --int8 without calibration."""
    floats = {trt.float32, trt.float16}
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        for j in range(layer.num_inputs):
            t = layer.get_input(j)
            if t is not None and t.dtype in floats and not t.dynamic_range:
                t.set_dynamic_range(-in_range, in_range)
        for j in range(layer.num_outputs):
            t = layer.get_output(j)
            if t is not None and t.dtype in floats and not t.dynamic_range:
                t.set_dynamic_range(-out_range, out_range)


def _make_calibrator(trt: Any, cuda: Any, calib: Int8Calibration, input_shape: Tuple[int, ...]) -> Any:
    """An IInt8EntropyCalibrator2 over `calib.data_dir/*.npy` (each one input batch)."""
    import numpy as np

    files = sorted(Path(calib.data_dir).glob("*.npy"))[: calib.max_batches] if calib.data_dir else []
    if calib.data_dir and not files:
        raise BenchError(f"--calib-dir {calib.data_dir!r} holds no *.npy batches")

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.files = list(files)
            self.device_mem = cuda.mem_alloc(int(np.prod(input_shape)) * 4)

        def get_batch_size(self) -> int:
            return int(input_shape[0])

        def get_batch(self, names: List[str]) -> Optional[List[int]]:
            if not self.files:
                return None
            batch = np.load(self.files.pop(0)).astype(np.float32)
            if tuple(batch.shape) != tuple(input_shape):
                raise BenchError(f"calibration batch shape {list(batch.shape)} != input {list(input_shape)}")
            cuda.memcpy_htod(self.device_mem, np.ascontiguousarray(batch))
            return [int(self.device_mem)]

        def read_calibration_cache(self) -> Optional[bytes]:
            p = calib.cache_file
            return Path(p).read_bytes() if p and Path(p).is_file() else None

        def write_calibration_cache(self, cache: Any) -> None:
            if calib.cache_file:
                _atomic_write_bytes(Path(calib.cache_file), bytes(cache))

    return EntropyCalibrator()


TRT_SUPPORTED = "TensorRT 8.0-10.x"
TRT_INSTALL = ("on Jetson use JetPack's TensorRT (JetPack 4.6: 8.0/8.2, 5.1: 8.5, 6.x: 8.6/10.3); "
               "elsewhere pip install 'tensorrt>=8.5,<11'")


def check_trt_release(trt: Any, settings: BuildSettings) -> None:
    """One line naming the release and what to install when this TensorRT lacks what `settings` need
    (TensorRT 11 removed BuilderFlag.FP16/INT8 and the INT8 calibrators: strongly typed networks only)."""
    version = str(getattr(trt, "__version__", "?"))
    major = trt_major(version)
    if major < 8:
        raise BenchError(f"TensorRT {version} is too old for this script ({TRT_SUPPORTED}); {TRT_INSTALL}")
    flags = getattr(trt, "BuilderFlag", None)
    missing = [f for f in settings.builder_flags if not hasattr(flags, f)]
    if missing:
        raise BenchError(f"TensorRT {version} has no BuilderFlag.{'/'.join(missing)} (--fp16/--int8 need "
                         f"{TRT_SUPPORTED}); {TRT_INSTALL}")
    if settings.int8 and settings.calibration is not None and settings.calibration.mode != "latency-only" \
            and not hasattr(trt, "IInt8EntropyCalibrator2"):
        raise BenchError(f"TensorRT {version} has no INT8 calibrator (IInt8EntropyCalibrator2); {TRT_INSTALL}")


def _keep_reductions_fp32(trt: Any, network: Any, config: Any) -> int:
    """Reduce layers (a score's sum over 128x256 pixels reaches ~1e5 > fp16's 65504) run and output
    in fp32 under --fp16/--int8: layer precision + the builder flag that makes TensorRT obey it
    (OBEY_PRECISION_CONSTRAINTS from 8.2, STRICT_TYPES in 8.0). Returns the number of layers pinned."""
    reduce_type = getattr(getattr(trt, "LayerType", None), "REDUCE", None)
    flag = getattr(trt.BuilderFlag, "OBEY_PRECISION_CONSTRAINTS", None) or getattr(trt.BuilderFlag, "STRICT_TYPES", None)
    if reduce_type is None or flag is None:
        return 0
    pinned = 0
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if layer.type == reduce_type:
            layer.precision = trt.float32
            for j in range(layer.num_outputs):
                layer.set_output_type(j, trt.float32)
            pinned += 1
    if pinned:
        config.set_flag(flag)
    return pinned


def build_engine(trt: Any, cuda: Any, onnx_path: PathLike, settings: BuildSettings,
                 input_shape: Optional[Tuple[int, ...]]) -> Tuple[bytes, Tuple[int, ...]]:
    """Parse the ONNX file and build a serialized engine; returns (engine bytes, input shape)."""
    check_trt_release(trt, settings)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    major = trt_major(trt.__version__)
    bit = int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH) if major < 10 else 0
    network = builder.create_network(network_flags(major, bit))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)] or ["unknown parser error"]
        raise BenchError(f"TensorRT cannot parse {onnx_path}: {errors[0].splitlines()[0][:200]}")
    config = builder.create_builder_config()
    if hasattr(config, "set_memory_pool_limit"):  # TensorRT >= 8.4
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, settings.workspace_bytes)
    else:  # TensorRT 8.2 (JetPack 4.6)
        config.max_workspace_size = settings.workspace_bytes
    if settings.fp16 and not getattr(builder, "platform_has_fast_fp16", True):
        raise BenchError("this GPU has no fast fp16; use fp32")
    if settings.int8 and not getattr(builder, "platform_has_fast_int8", True):
        raise BenchError("this GPU has no fast int8 (e.g. TX2 / Pascal); use --fp16")
    for flag in settings.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    if settings.fp16:
        _keep_reductions_fp32(trt, network, config)
    if settings.dla_core is not None:
        n = int(getattr(builder, "num_DLA_cores", 0))
        if settings.dla_core >= n:
            raise BenchError(f"--dla-core {settings.dla_core}: this device has {n} DLA core(s)")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = settings.dla_core

    inp = network.get_input(0)
    model_shape = tuple(int(d) for d in inp.shape)
    dynamic = any(d < 0 for d in model_shape)
    if input_shape is None:
        if dynamic:
            raise BenchError(f"{onnx_path} has a dynamic input {list(model_shape)}; pass --shape NxCxHxW")
        input_shape = model_shape
    elif not dynamic and tuple(input_shape) != model_shape:
        raise BenchError(f"{onnx_path} expects input {list(model_shape)}, not {list(input_shape)}")
    profile = None
    if dynamic:
        profile = builder.create_optimization_profile()
        profile.set_shape(inp.name, input_shape, input_shape, input_shape)
        config.add_optimization_profile(profile)

    if settings.int8 and settings.calibration is not None:
        if settings.calibration.mode == "latency-only":
            _set_latency_only_ranges(trt, network, *LATENCY_ONLY_RANGES)
        else:
            config.int8_calibrator = _make_calibrator(trt, cuda, settings.calibration, tuple(input_shape))
            if profile is not None:
                config.set_calibration_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BenchError("TensorRT could not build the engine (see its log above)")
    return bytes(serialized), tuple(int(d) for d in input_shape)


def get_engine(trt: Any, cuda: Any, onnx_path: PathLike, settings: BuildSettings, *,
               model: str, input_shape: Optional[Tuple[int, ...]], cache_dir: Optional[PathLike] = None,
               rebuild: bool = False) -> Tuple[bytes, Path, Optional[Tuple[int, ...]], bool]:
    """Engine from the cache, else built and cached. Returns (bytes, path, input shape, built).

    Without `input_shape` (a static ONNX input) the key says "static": the shape is fixed by the
    ONNX content, which the key hashes; the shape is then None on a cache hit (read it from the engine).
    """
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise BenchError(f"ONNX file {str(onnx_path)!r} not found")
    key = engine_cache_key(model=model, onnx_sha256=file_sha256(onnx_path), input_shape=input_shape,
                           settings=settings, trt_version=trt.__version__, device_name=gpu_name(cuda))
    path = engine_cache_path(key, cache_dir)
    if path.is_file() and not rebuild:
        return path.read_bytes(), path, input_shape, False
    data, shape = build_engine(trt, cuda, onnx_path, settings, input_shape)
    _atomic_write_bytes(path, data)
    return data, path, shape, True


class EngineRunner:
    """Runs a deserialized engine with page-locked host buffers and per-iteration CUDA events."""

    def __init__(self, trt: Any, cuda: Any, engine_bytes: bytes, input_shape: Optional[Tuple[int, ...]], *,
                 dla_core: Optional[int] = None, seed: int = 0, engine_path: str = "") -> None:
        self.trt, self.cuda = trt, cuda
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        if dla_core is not None:
            self.runtime.DLA_core = dla_core
        self.engine = self.runtime.deserialize_cuda_engine(engine_bytes)
        if self.engine is None:
            where = f" {engine_path}" if engine_path else ""
            raise BenchError(f"corrupt or incompatible TensorRT engine{where}; delete it or pass --rebuild")
        self.input_shape = tuple(input_shape) if input_shape else None  # None: static, read from the engine
        self.seed = seed
        self.context: Any = None
        self.stream: Any = None
        self.inputs: List[Tuple[Any, Any]] = []  # (host, device)
        self.outputs: List[Tuple[Any, Any]] = []
        self.bindings = []  # type: List[int]
        self.output_names = []  # type: List[str]
        self.events: List[Any] = []
        self.v3 = False

    def prepare(self) -> None:
        import numpy as np

        trt, cuda, engine = self.trt, self.cuda, self.engine
        self.context = engine.create_execution_context()
        self.stream = cuda.Stream()
        self.events = [cuda.Event() for _ in range(4)]
        rng = np.random.RandomState(self.seed)  # not default_rng: numpy 1.13 (JetPack 4.6) lacks it
        self.v3 = hasattr(self.context, "execute_async_v3") and hasattr(engine, "num_io_tensors")
        if self.v3:  # TensorRT >= 8.5: named tensors
            names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
            io = [(n, engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT) for n in names]
            for n, is_in in io:
                if is_in and any(d < 0 for d in engine.get_tensor_shape(n)):
                    if self.input_shape is None:
                        raise BenchError("the engine has a dynamic input; pass --shape NxCxHxW")
                    self.context.set_input_shape(n, self.input_shape)
            for n, is_in in io:
                shape = tuple(self.context.get_tensor_shape(n))
                if is_in and self.input_shape is None:
                    self.input_shape = shape
                host, dev = self._alloc(shape, trt.nptype(engine.get_tensor_dtype(n)), is_in, rng)
                self.context.set_tensor_address(n, int(dev))
                if not is_in:
                    self.output_names.append(n)
        else:  # TensorRT 8.0-8.4: bindings
            for i in range(engine.num_bindings):
                is_in = engine.binding_is_input(i)
                if is_in and any(d < 0 for d in engine.get_binding_shape(i)):
                    if self.input_shape is None:
                        raise BenchError("the engine has a dynamic input; pass --shape NxCxHxW")
                    self.context.set_binding_shape(i, self.input_shape)
            for i in range(engine.num_bindings):
                shape = tuple(self.context.get_binding_shape(i))
                if engine.binding_is_input(i) and self.input_shape is None:
                    self.input_shape = shape
                self._alloc(shape, trt.nptype(engine.get_binding_dtype(i)), engine.binding_is_input(i), rng)
                if not engine.binding_is_input(i):
                    self.output_names.append(engine.get_binding_name(i))

    def _alloc(self, shape: Tuple[int, ...], dtype: Any, is_input: bool, rng: Any) -> Tuple[Any, Any]:
        import numpy as np

        host = self.cuda.pagelocked_empty(shape, dtype)
        if is_input:
            host[...] = rng.standard_normal(shape).astype(dtype) if np.issubdtype(dtype, np.floating) else 0
        dev = self.cuda.mem_alloc(max(host.nbytes, 1))
        (self.inputs if is_input else self.outputs).append((host, dev))
        self.bindings.append(int(dev))
        return host, dev

    def run_once(self) -> Dict[str, float]:
        """One inference; returns h2d / compute / d2h / latency (sum) / enqueue times in ms."""
        cuda, s, ev = self.cuda, self.stream, self.events
        ev[0].record(s)
        for host, dev in self.inputs:
            cuda.memcpy_htod_async(dev, host, s)
        ev[1].record(s)
        t0 = time.perf_counter()
        if self.v3:
            ok = self.context.execute_async_v3(stream_handle=s.handle)
        else:
            ok = self.context.execute_async_v2(bindings=self.bindings, stream_handle=s.handle)
        enqueue_ms = (time.perf_counter() - t0) * 1e3
        ev[2].record(s)
        for host, dev in self.outputs:
            cuda.memcpy_dtoh_async(host, dev, s)
        ev[3].record(s)
        ev[3].synchronize()
        if not ok:
            raise BenchError("TensorRT execution failed (see its log above)")
        h2d, compute, d2h = ev[1].time_since(ev[0]), ev[2].time_since(ev[1]), ev[3].time_since(ev[2])
        return {"h2d": h2d, "compute": compute, "d2h": d2h, "latency": h2d + compute + d2h,
                "enqueue": enqueue_ms}

    def outputs_host(self) -> List[Any]:
        return [h for h, _ in self.outputs]

    def set_input(self, x: Any) -> None:
        host = self.inputs[0][0]
        host[...] = x.astype(host.dtype).reshape(host.shape)

    def close(self) -> None:
        for _, dev in self.inputs + self.outputs:
            dev.free()
        self.inputs, self.outputs, self.bindings = [], [], []
        self.context = self.engine = self.runtime = None


def time_engine(runner: EngineRunner, *, warmup_ms: float, iters: int) -> Tuple[Dict[str, List[float]], int]:
    """Warm up for `warmup_ms` of wall time (>= 1 run), then time `iters` runs."""
    warm, t0 = 0, time.perf_counter()
    while warm < 1 or (time.perf_counter() - t0) * 1e3 < warmup_ms:
        runner.run_once()
        warm += 1
    samples: Dict[str, List[float]] = {"compute": [], "latency": [], "h2d": [], "d2h": [], "enqueue": []}
    for _ in range(iters):
        for k, v in runner.run_once().items():
            samples[k].append(v)
    return samples, warm


def bench(onnx: str, *, precision: str = "fp32", dla_core: Optional[int] = None, gpu_fallback: bool = True,
          iters: int = 200, warmup_ms: float = 500.0, shape: Optional[Tuple[int, ...]] = None,
          model: Optional[str] = None, device: Optional[str] = None, cache_dir: Optional[str] = None,
          calibration: Optional["Int8Calibration"] = None, workspace_mb: int = DEFAULT_WORKSPACE_MB,
          rebuild: bool = False, gpu: int = 0) -> Dict[str, Any]:
    """Build (or load) the engine on GPU `gpu`, time it, and return one record."""
    if iters < 1:
        raise BenchError(f"--iters must be >= 1, got {iters}")
    settings = build_settings(precision, dla_core=dla_core, gpu_fallback=gpu_fallback,
                              workspace_mb=workspace_mb, calibration=calibration)
    trt, cuda = import_trt(gpu)
    model = model or Path(onnx).stem
    data, path, in_shape, built = get_engine(trt, cuda, onnx, settings, model=model, input_shape=shape,
                                             cache_dir=cache_dir, rebuild=rebuild)
    runner = EngineRunner(trt, cuda, data, in_shape, dla_core=dla_core, engine_path=str(path))
    try:
        runner.prepare()
        samples, warm = time_engine(runner, warmup_ms=warmup_ms, iters=iters)
        in_shape = runner.input_shape or ()
    finally:
        runner.close()
    name = gpu_name(cuda)
    env = {**device_env(), "device_name": name, "tensorrt": trt.__version__, "engine": str(path),
           "engine_built": built, "engine_device": settings.device_type, "builder_flags": list(settings.builder_flags),
           "int8_calibration": settings.calibration.mode if settings.calibration else None,
           "timing": "cuda-events (h2d | enqueue | d2h on one stream)"}
    compute = samples.pop("compute")
    return make_record(compute_ms=compute, components=samples, model=model,
                       device=device or re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-"),
                       precision=precision, input_shape=in_shape, warmup=warm, warmup_ms=warmup_ms, env=env)


# --------------------------------------------------------------------------- frame sources
# A source yields `Frame`s in arrival order from index `start` (a resumed run restarts there).
# Directory: files sorted by name, or by the timestamps of a manifest (`--timestamps FILE`, lines
# "NAME SECONDS" or "NAME,SECONDS"; NAME relative to the directory); without one a frame i
# arrives at round(i * 1e6 / fps) µs. Video file / camera / GStreamer pipeline: OpenCV (cv2),
# imported only then. Synthetic: seeded frames for tests and dry runs.
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".npy")


class Frame(namedtuple("Frame", "index t_us frame_id data ext")):
    """One arrival: index, source time (µs), id, the encoded bytes kept in the spool, extension."""

    __slots__ = ()


def decode_image(data: bytes, ext: str) -> Any:
    """Encoded frame -> (H, W, 3) uint8 RGB: .npy with numpy, images with OpenCV or else Pillow."""
    import io

    import numpy as np

    if ext == ".npy":
        try:
            img = np.load(io.BytesIO(data), allow_pickle=False)
        except Exception as e:  # numpy raises ValueError/OSError/EOFError on corrupt files
            raise BenchError(f"corrupt .npy frame ({str(e).splitlines()[0][:80]})") from None
    else:
        img = _decode_with_cv2(data)
        if img is None:
            try:
                from PIL import Image
            except ImportError:
                raise BenchError(f"reading {ext} frames needs OpenCV (python3-opencv, shipped with JetPack) "
                                 "or Pillow; or give .npy frames") from None
            try:
                img = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
            except Exception as e:  # Pillow raises UnidentifiedImageError/OSError on corrupt files
                why = re.sub(r"\s*<_io\.BytesIO object at 0x[0-9a-fA-F]+>", "", str(e).splitlines()[0] if str(e) else "")
                raise BenchError(f"corrupt {ext} frame ({why[:80] or type(e).__name__})") from None
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8 or 0 in img.shape:
        raise BenchError(f"a frame must be an (H, W, 3) uint8 image, got {img.dtype} {list(img.shape)}")
    return img


def _decode_with_cv2(data: bytes) -> Any:
    try:
        import cv2
    except ImportError:
        return None
    import numpy as np

    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise BenchError("corrupt image frame (OpenCV cannot decode it)")
    return img[:, :, ::-1]  # BGR -> RGB


class DirSource:
    """Frames of a directory, sorted by name or by a timestamp manifest."""

    def __init__(self, root: str, fps: float, timestamps: Optional[str] = None) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise BenchError(f"--frames {root!r} is not a directory of frames")
        if timestamps is None and (self.root / "manifest.jsonl").is_file():
            timestamps = str(self.root / "manifest.jsonl")  # a frame directory of `al data drives`
        if timestamps:
            self.items = _read_timestamps(self.root, timestamps)
        else:
            names = sorted(p.name for p in self.root.iterdir() if p.suffix.lower() in IMAGE_EXTS and p.is_file())
            t = frame_times_us(len(names), fps)
            self.items = [(n, int(t[i])) for i, n in enumerate(names)]
        if not self.items:
            raise BenchError(f"--frames {root!r} holds no frames ({', '.join(IMAGE_EXTS)})")
        for name, _ in self.items:  # check first: an empty file is a frame that cannot be decoded
            p = self.root / name
            if p.stat().st_size == 0:
                raise BenchError(f"frame {str(p)!r} is empty (0 bytes); remove or replace it")

    def where(self, fr: "Frame") -> str:
        return str(self.root / self.items[fr.index][0])

    def describe(self) -> Dict[str, Any]:
        h = hashlib.sha256(json.dumps(self.items).encode()).hexdigest()[:16]
        return {"kind": "frames", "path": str(self.root.resolve()), "n": len(self.items), "list": h}

    def frames(self, start: int) -> Any:
        for i in range(start, len(self.items)):
            name, t_us = self.items[i]
            path = self.root / name
            try:
                data = path.read_bytes()
            except OSError as e:
                raise BenchError(f"cannot read frame {str(path)!r} ({e.strerror}); was it removed?") from None
            yield Frame(i, t_us, Path(name).stem, data, path.suffix.lower())


def _read_timestamps(root: Path, manifest: str) -> List[Tuple[str, int]]:
    try:
        lines = Path(manifest).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise BenchError(f"cannot read timestamps {manifest!r} ({e}); expected lines 'NAME SECONDS'") from None
    items = []
    for no, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            if line.lstrip().startswith("{"):  # JSON lines: {"file": ..., "timestamp_s": ...}
                rec = json.loads(line)
                name, sec = rec["file"], float(rec["timestamp_s"])
                if not isinstance(name, str):
                    raise ValueError
            else:
                parts = line.replace(",", " ").split()
                name, sec = parts[0], float(parts[1])
                if len(parts) != 2:
                    raise ValueError
            if not math.isfinite(sec) or sec < 0:
                raise ValueError
        except (ValueError, IndexError, KeyError, TypeError, AttributeError):
            raise BenchError(f"timestamps {manifest}:{no}: expected 'NAME SECONDS' or JSON with 'file' and "
                             "'timestamp_s' (a finite time >= 0)") from None
        p = (root / name).resolve()
        if root.resolve() not in p.parents or not p.is_file():
            raise BenchError(f"timestamps {manifest}:{no}: {name!r} is not a frame inside {str(root)!r}")
        items.append((str(p.relative_to(root.resolve())), int(round(sec * 1e6))))
    items.sort(key=lambda it: (it[1], it[0]))
    return items


class SyntheticSource:
    """`n` seeded frames (H, W) of drifting smooth patterns with scene cuts every `scene` frames."""

    def __init__(self, n: int, hw: Tuple[int, int], fps: float, seed: int = 0, scene: int = 45) -> None:
        if n < 1:
            raise BenchError(f"--synthetic must be >= 1 frames, got {n}")
        if seed < 0:
            raise BenchError(f"--seed must be >= 0, got {seed}")
        self.n, self.hw, self.fps, self.seed, self.scene = n, hw, fps, seed, scene
        self.t = frame_times_us(n, fps)

    def describe(self) -> Dict[str, Any]:
        return {"kind": "synthetic", "n": self.n, "hw": list(self.hw), "seed": self.seed, "fps": self.fps}

    def frames(self, start: int) -> Any:
        import io

        import numpy as np

        h, w = self.hw
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
        for i in range(start, self.n):
            s = i // self.scene
            rs = np.random.RandomState([self.seed, s])
            fx, fy, ph = rs.uniform(0.5, 6, 3), rs.uniform(0.5, 6, 3), rs.uniform(0, 6.3, 3)
            drift = (i % self.scene) * 0.05
            img = np.stack([127.5 * (1 + np.sin(fx[c] * xx / w * 6.28 + fy[c] * yy / h * 6.28 + ph[c] + drift))
                            for c in range(3)], axis=2)
            img += np.random.RandomState([self.seed, s, i]).normal(0, 4, img.shape)
            buf = io.BytesIO()
            np.save(buf, np.clip(img, 0, 255).astype(np.uint8))
            yield Frame(i, int(self.t[i]), f"syn{i:07d}", buf.getvalue(), ".npy")


class DeviceClock:
    """The clock of live sources: µs since the spool's first start (`epoch_unix_s`, wall time),
    monotonic within a process and never behind `last_us` (the last committed reading), so it
    goes on across restarts (and wall-clock steps back) instead of restarting at 0."""

    wall = staticmethod(time.time)
    mono = staticmethod(time.monotonic)

    def __init__(self, epoch_unix_s: Optional[float] = None, last_us: int = 0) -> None:
        self.epoch = self.wall() if epoch_unix_s is None else float(epoch_unix_s)
        self.last = int(last_us)
        self.base_us = max(self.last, int((self.wall() - self.epoch) * 1e6))
        self.mono0 = self.mono()

    def now_us(self) -> int:
        self.last = max(self.last, self.base_us + int((self.mono() - self.mono0) * 1e6))
        return self.last

    def state(self) -> Dict[str, Any]:
        return {"epoch_unix_s": self.epoch, "last_us": self.last}


class VideoSource:
    """A video file, camera index or GStreamer pipeline through OpenCV. Video files use their own
    timestamps (CAP_PROP_POS_MSEC); cameras and pipelines the `DeviceClock` at capture (a live
    camera cannot be replayed: a resumed run continues with new frames, numbered on from `start`)."""

    def __init__(self, spec: str, kind: str, fps: float) -> None:
        try:
            import cv2
        except ImportError:
            raise BenchError("--video/--camera/--gstreamer need OpenCV (python3-opencv, shipped with JetPack)") from None
        if kind == "camera" and not re.fullmatch(r"\d+", spec):
            raise BenchError(f"--camera takes a camera index (0, 1, ...), got {spec!r}; use --gstreamer for a pipeline")
        self.cv2, self.spec, self.kind, self.fps = cv2, spec, kind, fps
        self.live = kind != "video"
        self.clock = None  # type: Optional[DeviceClock]  # set by score_stream from the spool state

    def describe(self) -> Dict[str, Any]:
        return {"kind": self.kind, "spec": self.spec}

    def frames(self, start: int) -> Any:
        cv2 = self.cv2
        if self.kind == "camera":
            cap = cv2.VideoCapture(int(self.spec))
        elif self.kind == "gstreamer":
            cap = cv2.VideoCapture(self.spec, cv2.CAP_GSTREAMER)
        else:
            cap = cv2.VideoCapture(self.spec)
        if not cap.isOpened():
            raise BenchError(f"OpenCV cannot open {self.kind} {self.spec!r}")
        live = self.live
        clock = self.clock if self.clock is not None else DeviceClock()
        i = start
        try:
            if not live and start:
                cap.set(cv2.CAP_PROP_POS_FRAMES, start)
            while True:
                ok, img = cap.read()
                if not ok:
                    return
                if live:
                    t_us = clock.now_us()
                else:
                    ms = cap.get(cv2.CAP_PROP_POS_MSEC)
                    t_us = int(round(ms * 1e3)) if ms and math.isfinite(ms) else int(round(i * 1e6 / self.fps))
                ok, enc = cv2.imencode(".jpg", img, [int(cv2.IMWRITE_JPEG_QUALITY), 95])
                if not ok:
                    raise BenchError("OpenCV could not encode a frame as JPEG")
                yield Frame(i, t_us, f"{self.kind}{i:09d}", enc.tobytes(), ".jpg")
                i += 1
        finally:
            cap.release()


# ------------------------------------------------------------------------------ preprocessing
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def resize_bilinear(img: Any, h: int, w: int) -> Any:
    """(H, W, C) -> (h, w, C) float64, bilinear with half-pixel centres (torch align_corners=False)."""
    import numpy as np

    H, W = img.shape[:2]
    if (H, W) == (h, w):
        return img.astype(np.float64)

    def axis(n_in: int, n_out: int) -> Tuple[Any, Any, Any]:
        src = np.maximum((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0.0)
        i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        return i0, np.minimum(i0 + 1, n_in - 1), src - i0

    y0, y1, wy = axis(H, h)
    x0, x1, wx = axis(W, w)
    a = img.astype(np.float64)
    top = a[y0][:, x0] * (1 - wx)[None, :, None] + a[y0][:, x1] * wx[None, :, None]
    bot = a[y1][:, x0] * (1 - wx)[None, :, None] + a[y1][:, x1] * wx[None, :, None]
    return top * (1 - wy)[:, None, None] + bot * wy[:, None, None]


def preprocess(img: Any, hw: Tuple[int, int]) -> Any:
    """(H, W, 3) uint8 RGB -> (1, 3, h, w) float32: resize, /255, ImageNet mean/std (as al.data)."""
    import numpy as np

    x = resize_bilinear(img, hw[0], hw[1]) / 255.0
    x = (x - np.asarray(IMAGENET_MEAN)) / np.asarray(IMAGENET_STD)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


# ---------------------------------------------------------------------------------- engines
class OrtEngine:
    """ONNX Runtime on the CPU (or CUDA when its provider is installed), one frame per run."""

    backend = "onnxruntime"

    def __init__(self, onnx: str, threads: Optional[int] = 1, gpu: int = 0) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise BenchError("onnxruntime is not installed; install it with: pip install onnxruntime") from None
        so = ort.SessionOptions()
        so.log_severity_level = 3
        if threads:
            so.intra_op_num_threads = so.inter_op_num_threads = int(threads)
        providers = ["CPUExecutionProvider"]  # type: List[Any]
        if "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, ("CUDAExecutionProvider", ort_cuda_options(ort.__version__, gpu)))
        try:
            self.sess = ort.InferenceSession(str(onnx), sess_options=so, providers=providers)
        except Exception as e:  # ORT raises its own Fail/InvalidGraph/NoSuchFile errors
            raise BenchError(f"ONNX Runtime cannot load {onnx} ({str(e).strip().splitlines()[0][:120]})") from None
        inp = self.sess.get_inputs()[0]
        self.input_name = inp.name
        self.input_shape = tuple(d if isinstance(d, int) else -1 for d in inp.shape)
        self.output_names = [o.name for o in self.sess.get_outputs()]
        self.device = "cpu" if self.sess.get_providers()[0] == "CPUExecutionProvider" else f"cuda:{gpu}"
        self.precision = "fp32"
        self.label = f"onnxruntime {ort.__version__} {self.sess.get_providers()[0]}"
        self.sha256 = hashlib.sha256((file_sha256(onnx) + self.label).encode()).hexdigest()  # no separate plan

    def infer(self, x: Any) -> Dict[str, Any]:
        return dict(zip(self.output_names, self.sess.run(None, {self.input_name: x})))

    def close(self) -> None:
        self.sess = None


class TrtEngine:
    """TensorRT (engine built from the ONNX file and cached, as `bench`), one frame per run."""

    backend = "tensorrt"

    def __init__(self, onnx: str, *, precision: str, dla_core: Optional[int], gpu: int,
                 cache_dir: Optional[str], workspace_mb: int = DEFAULT_WORKSPACE_MB) -> None:
        settings = build_settings(precision, dla_core=dla_core, workspace_mb=workspace_mb)
        trt, cuda = import_trt(gpu)
        data, path, shape, _ = get_engine(trt, cuda, onnx, settings, model=Path(onnx).stem, input_shape=None,
                                          cache_dir=cache_dir)
        self.runner = EngineRunner(trt, cuda, data, shape, dla_core=dla_core, engine_path=str(path))
        self.runner.prepare()
        self.input_shape = tuple(self.runner.input_shape or ())
        self.output_names = list(self.runner.output_names)
        self.device = f"{gpu_name(cuda)} (gpu {gpu})" + (f" dla{dla_core}" if dla_core is not None else "")
        self.precision = precision
        self.label = f"tensorrt {trt.__version__} {path.name}"
        self.sha256 = hashlib.sha256(data).hexdigest()  # the serialized plan

    def infer(self, x: Any) -> Dict[str, Any]:
        import numpy as np

        self.runner.set_input(x)
        self.runner.run_once()
        return {n: np.array(h, dtype=np.float32) for n, h in zip(self.output_names, self.runner.outputs_host())}

    def close(self) -> None:
        self.runner.close()


# ------------------------------------------------------------------------------------ spool
# SPOOL/frames/<index>_<id><ext>: the kept frames, byte for byte as the source gave them.
# SPOOL/manifest.jsonl: one JSON line per kept frame still listed (see `Spool.entry`).
# SPOOL/state.json: the commit point: settings, next frame index, real-time clock, policy state,
#   counters (evictions of this commit included) and the manifest entries. A commit writes (1) the
#   new frame files, (2) the state, (3) the manifest, each to a temporary file that is fsync'ed and
#   renamed over the old one, then (4) deletes evicted files. A restart rewrites the manifest from
#   the state, deletes files the state does not list, and replays the source from the state's next
#   index: the replay keeps the same frames (deterministic clock and policy), so no manifest line
#   is lost or duplicated. Half-states a kill can leave: state new + manifest old (the restart
#   rewrites the manifest); no state yet + an empty manifest and no frames (a spool of an older
#   version killed at its first commit, manifest first): started afresh.
# Live sources (camera, GStreamer) stamp frames on a device clock kept in the state: wall time
# since the spool's first start, never behind the last committed frame, so a restarted scorer is
# not "busy" with the old process's frame and budget periods keep counting real time.
# Disk: the frames' bytes are kept <= --spool-max-mb by evicting, at each commit, the frame with
# the lowest score (the oldest among equal scores) that is still in the spool; frames an uploader
# already removed (sent) no longer count. Their manifest lines go with them.
STATE_VERSION = 1


def _fsync_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically; on failure (disk full) no temporary file is left."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(str(tmp), "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(str(tmp), str(path))
    except BaseException:
        try:
            os.unlink(str(tmp))
        except OSError:
            pass
        raise


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _exists(path: Path, dir_only: bool = False) -> bool:
    """Path.exists/is_dir that say False on a symlink loop (Python 3.6's raise ELOOP)."""
    try:
        return path.is_dir() if dir_only else path.exists()
    except OSError:
        return False


class Spool:
    """The upload spool directory (see above)."""

    def __init__(self, root: str, settings: Dict[str, Any], max_bytes: Optional[int]) -> None:
        self.root = Path(root)
        if _exists(self.root) and not _exists(self.root, dir_only=True):
            raise BenchError(f"--spool {root!r} exists and is not a directory")
        self.frames_dir = self.root / "frames"
        self.settings, self.max_bytes = settings, max_bytes
        self.state = None  # type: Optional[Dict[str, Any]]

    def check(self) -> bool:
        """Before any work: the directory can be created (or is one). Returns whether it existed."""
        existed = _exists(self.root, dir_only=True)
        try:
            self.frames_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            why = e.strerror or type(e).__name__
            raise BenchError(f"--spool {str(self.root)!r} cannot be created ({why}: {e.filename or self.root}); "
                             "give a directory path you can write") from None
        if not os.access(str(self.root), os.W_OK | os.X_OK):
            raise BenchError(f"--spool {str(self.root)!r} is not writable; give a directory you can write")
        return existed

    def remove_if_empty_new(self) -> None:
        """Undo `check` + the first commit of a run that failed before keeping anything."""
        st = self.state
        if st is not None and st.get("entries"):
            return
        for p in [self.root / "state.json", self.root / "manifest.jsonl"] + list(self.root.glob(".*.tmp")):
            if p.exists():
                p.unlink()
        for d in (self.frames_dir, self.root):
            try:
                d.rmdir()
            except OSError:
                return

    def open(self) -> Optional[Dict[str, Any]]:
        """The saved state after reconciling the files with it (None: a new spool)."""
        self.frames_dir.mkdir(parents=True, exist_ok=True)
        path = self.root / "state.json"
        if not path.exists():
            manifest = self.root / "manifest.jsonl"
            if manifest.exists() and manifest.stat().st_size == 0 and not any(self.frames_dir.iterdir()):
                manifest.unlink()  # killed between an empty manifest and the first state (older versions)
            if manifest.exists() or any(self.frames_dir.iterdir()):
                raise BenchError(f"{self.root} has frames or a manifest but no state.json; not a spool of this "
                                 "script (use an empty or new --spool directory)")
            for p in self.root.glob(".*.tmp"):
                p.unlink()
            return None
        try:
            st = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(st, dict) or st.get("version") != STATE_VERSION:
                raise ValueError("unknown state version")
            st["entries"], st["next_index"], st["policy"]  # noqa: B018  (present)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
            raise BenchError(f"{path} is corrupt ({str(e)[:80]}); move the spool away and start a new one") from None
        if st.get("settings") != self.settings:
            diff = sorted(k for k in set(st.get("settings", {})) | set(self.settings)
                          if st.get("settings", {}).get(k) != self.settings.get(k))
            raise BenchError(f"{self.root} holds a run with other settings ({', '.join(diff)}); "
                             "resume with the same options or use another --spool directory")
        self.state = st
        self._write_manifest(st["entries"])
        self._clean({e["file"] for e in st["entries"]})
        return st

    def _clean(self, keep: set) -> None:
        for p in self.frames_dir.iterdir():
            if "frames/" + p.name not in keep:
                p.unlink()
        for p in self.root.glob(".*.tmp"):
            p.unlink()

    def _write_manifest(self, entries: List[Dict[str, Any]]) -> None:
        text = "".join(json.dumps(e, sort_keys=True, allow_nan=False) + "\n" for e in entries)
        path = self.root / "manifest.jsonl"
        if not path.exists() or path.read_text(encoding="utf-8", errors="replace") != text:
            _fsync_write(path, text.encode("utf-8"))

    def commit(self, state: Dict[str, Any], new: List[Tuple[Dict[str, Any], bytes]]) -> int:
        """Persist `state` plus the newly kept frames (entry, bytes); returns the number evicted
        (already added to `state["counters"]["evicted"]`, so the committed count is exact)."""
        entries = list(state["entries"])
        for entry, data in new:
            _fsync_write(self.root / entry["file"], data)
            entries.append(entry)
        gone = self._evict(entries)
        if new or gone:
            _fsync_dir(self.frames_dir)
        state["entries"] = entries
        state["counters"]["evicted"] += len(gone)
        state["version"], state["settings"] = STATE_VERSION, self.settings
        _fsync_write(self.root / "state.json", json.dumps(state, sort_keys=True, allow_nan=False).encode("utf-8"))
        _fsync_dir(self.root)
        self._write_manifest(entries)
        for e in gone:
            p = self.root / e["file"]
            if p.exists():
                p.unlink()
        self.state = state
        return len(gone)

    def _evict(self, entries: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        if self.max_bytes is None:
            return []
        present = [e for e in entries if (self.root / e["file"]).exists()]
        used = sum(e["bytes"] for e in present)
        gone = []
        for e in sorted(present, key=lambda e: (e["score"], e["t_us"], e["index"])):
            if used <= self.max_bytes:
                break
            gone.append(e)
            used -= e["bytes"]
        ids = {id(e) for e in gone}
        entries[:] = [e for e in entries if id(e) not in ids]
        return gone


# ------------------------------------------------------------------------------------- score
def read_pool_scores(path: str) -> Any:
    """Last cycle's pool scores: a .npy array, a JSON list, a manifest (JSON lines with "score") or
    numbers separated by white space."""
    import numpy as np

    p = Path(path)
    try:
        if p.suffix == ".npy":
            return np.load(str(p), allow_pickle=False).astype(np.float64).reshape(-1)
        text = p.read_text(encoding="utf-8")
        if text.lstrip().startswith("["):
            return np.asarray(json.loads(text), dtype=np.float64).reshape(-1)
        if text.lstrip().startswith("{"):
            return np.asarray([json.loads(line)["score"] for line in text.splitlines() if line.strip()],
                              dtype=np.float64)
        return np.asarray([float(v) for v in text.split()], dtype=np.float64)
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise BenchError(f"cannot read --pool-scores {path!r} ({str(e)[:80]}); give .npy, a JSON list, "
                         "a manifest.jsonl or numbers") from None


def policy_label(cfg: PolicyConfig) -> str:
    """A short description of the policy for the manifest."""
    parts = [cfg.name]
    if cfg.name == "threshold":
        parts.append(f"t={cfg.threshold:.6g}")
    else:
        parts.append(f"k={cfg.k}/W={cfg.window}")
    if cfg.dedup_dist is not None:
        parts.append(f"dedup={cfg.dedup_dist:g}x{cfg.dedup_memory}")
    if cfg.budget_frames is not None:
        parts.append(f"frames<={cfg.budget_frames}")
    if cfg.budget_bytes is not None:
        parts.append(f"bytes<={cfg.budget_bytes}")
    if cfg.period_s is not None:
        parts.append(f"per {cfg.period_s:g}s")
    return " ".join(parts)


def _outputs(out: Dict[str, Any]) -> Tuple[Optional[float], Any]:
    """(score or None when not finite, embedding float32 (D,)) of one frame."""
    import numpy as np

    s = np.asarray(out["score"], dtype=np.float64).reshape(-1)
    e = np.asarray(out["embedding"], dtype=np.float32).reshape(-1) if "embedding" in out else np.zeros(0, np.float32)
    if s.size != 1:
        raise BenchError(f"the engine returned {s.size} scores for one frame; export with --batch 1")
    v = float(s[0])
    return (v if math.isfinite(v) and bool(np.all(np.isfinite(e))) else None), e


def score_stream(source: Any, engine: Any, spool: Spool, cfg: PolicyConfig, *, latency: str,
                 commit_every: int = 300, max_frames: Optional[int] = None, device_id: str = "",
                 model_sha256: str = "") -> Dict[str, Any]:
    """Run the scorer over `source` into `spool`; returns the final counters (see module docs)."""
    import numpy as np

    if "score" not in engine.output_names:
        raise BenchError("the model has no 'score' output; export it with `hwbench export MODEL --score entropy`")
    shape = engine.input_shape
    if len(shape) != 4 or shape[0] != 1 or any(d < 1 for d in shape):
        raise BenchError(f"the model input must be static 1x3xHxW, got {list(shape)}; re-export without --dynamic")
    hw = (int(shape[2]), int(shape[3]))
    st = spool.open()
    if st is not None and st.get("done"):
        return dict(st["counters"], done=True, resumed=True, already_complete=True, latency_us=st["latency_us"])
    policy = StreamPolicy(cfg)
    if st is None:
        st = {"next_index": 0, "free_at_us": None, "latency_us": None, "entries": [], "done": False,
              "counters": {"seen": 0, "scored": 0, "skipped": 0, "invalid": 0, "kept": 0, "evicted": 0}}
        resumed = False
    else:
        policy.load_state(st["policy"])
        resumed = True
    c = st["counters"]
    fixed_us = None  # type: Optional[int]
    if latency not in ("auto", "measured"):
        fixed_us = int(round(float(latency) * 1000))
    label = policy_label(cfg)
    common = {"device": engine.device, "device_id": device_id, "precision": engine.precision, "policy": label,
              "model_sha256": model_sha256, "engine_sha256": engine.sha256, "engine": engine.label}

    def save(next_index: int, kept: List[Candidate], done: bool = False) -> None:
        new = []
        for cand in kept:
            fr = cand.payload
            emb = np.asarray(cand.embedding, dtype=np.float32)
            fname = "frames/" + f"{fr.index:09d}_" + re.sub(r"[^A-Za-z0-9._-]+", "-", fr.frame_id)[:80] + fr.ext
            entry = dict(common, frame_id=fr.frame_id, index=fr.index, t_us=fr.t_us, source_ts=fr.t_us / 1e6,
                         score=cand.score, embedding=[float(v) for v in emb],
                         embedding_sha256=hashlib.sha256(emb.astype("<f4").tobytes()).hexdigest(),
                         content_sha256=hashlib.sha256(fr.data).hexdigest(), file=fname, bytes=len(fr.data))
            new.append((entry, fr.data))
        c["kept"] += len(new)
        st.update(next_index=next_index, free_at_us=free_at, policy=policy.state(), done=done)
        if clock is not None:
            st["clock"] = clock.state()
        spool.commit(st, new)

    free_at = st["free_at_us"]  # type: Optional[int]
    clock = None  # type: Optional[DeviceClock]
    if getattr(source, "live", False):
        clock = DeviceClock(**st["clock"]) if st.get("clock") else DeviceClock()
        source.clock = clock
    if not resumed:
        save(0, [])  # state.json first: from now on the directory is a spool that a restart resumes
    since = 0
    last = st["next_index"]
    for fr in source.frames(st["next_index"]):
        if max_frames is not None and fr.index >= max_frames:
            break
        last = fr.index + 1
        released = policy.advance(fr.index)
        if cfg.name == "window-topk" and fr.index % cfg.window == 0 and fr.index > st["next_index"]:
            save(fr.index, released)
            since = 0
        elif released:  # pragma: no cover - advance releases only at window starts
            raise RuntimeError("policy released frames off a window boundary")
        c["seen"] += 1
        if free_at is not None and fr.t_us < free_at:
            c["skipped"] += 1
            continue
        def process(fr: Frame = fr) -> Tuple[Optional[float], Any]:
            try:
                img = decode_image(fr.data, fr.ext)
            except BenchError as e:
                where = source.where(fr) if hasattr(source, "where") else fr.frame_id
                raise BenchError(f"frame {where!r}: {e}") from None
            return _outputs(engine.infer(preprocess(img, hw)))

        t0 = time.perf_counter()
        score, emb = process()
        took_us = int(round((time.perf_counter() - t0) * 1e6))
        if fixed_us is not None:
            lat = fixed_us
        elif latency == "auto":
            if st["latency_us"] is None:
                st["latency_us"] = calibrate_latency_us(process)
            lat = st["latency_us"]
        else:
            lat = took_us
        free_at = fr.t_us + lat
        c["scored"] += 1
        if score is None:
            c["invalid"] += 1
        kept = policy.step(fr.index, fr.t_us, score, emb, len(fr.data), fr)
        since += 1
        if kept or (cfg.name == "threshold" and since >= commit_every):
            save(fr.index + 1, kept)
            since = 0
    save(last, policy.flush(), done=True)
    return dict(c, done=st["done"], resumed=resumed, latency_us=fixed_us or st["latency_us"])


def calibrate_latency_us(process: Any, warmup: int = 3, iters: int = 10) -> int:
    """Median wall time (µs) of `iters` runs of `process()` (decode + preprocess + inference of one
    frame) after `warmup` runs: the `auto` latency, measured once and kept in the spool state."""
    for _ in range(warmup):
        process()
    ts = []
    for _ in range(iters):
        t0 = time.perf_counter()
        process()
        ts.append(time.perf_counter() - t0)
    return int(round(sorted(ts)[len(ts) // 2] * 1e6))


# ------------------------------------------------------------------------------------------- CLI
class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line `error: ...` (exit 2), not the whole usage."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        self.exit(2, f"error: {message}; see {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="ondevice.py", description="TensorRT latency benchmark (stand-alone).")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    b = sub.add_parser("bench", help="build/load a TensorRT engine from an ONNX file and time it")
    b.add_argument("--onnx", required=True, help="ONNX model (e.g. from `hwbench export`)")
    b.add_argument("--fp16", action="store_true", help="enable FP16 kernels")
    b.add_argument("--int8", action="store_true", help="enable INT8 kernels (with FP16 fallback)")
    b.add_argument("--dla-core", type=int, default=None, help="run on this DLA core (needs --fp16/--int8)")
    b.add_argument("--no-gpu-fallback", action="store_true", help="fail instead of running DLA-unsupported layers on the GPU")
    b.add_argument("--iters", type=int, default=200, help="timed iterations (default 200)")
    b.add_argument("--warmup-ms", type=float, default=500.0, help="warm-up wall time in ms (default 500)")
    b.add_argument("--shape", default=None, help="input shape NxCxHxW (needed for a dynamic ONNX input)")
    b.add_argument("--model", default=None, help="model name in the record (default: ONNX file stem)")
    b.add_argument("--device", default=None, help="device label in the record, e.g. tx2, xavier-nx (default: GPU name)")
    b.add_argument("--calib-dir", default=None, help="INT8 calibration batches (*.npy, one input each)")
    b.add_argument("--calib-cache", default=None, help="INT8 calibration cache file (read if present, written after calibration)")
    b.add_argument("--workspace-mb", type=int, default=DEFAULT_WORKSPACE_MB, help="builder workspace in MiB")
    b.add_argument("--cache-dir", default=None, help="engine cache (default $HWBENCH_CACHE_DIR, else $XDG_CACHE_HOME/hwbench, else ~/.cache/hwbench)")
    b.add_argument("--rebuild", action="store_true", help="ignore a cached engine")
    b.add_argument("--gpu", type=int, default=0, help="CUDA device index (default 0)")
    b.add_argument("--out", default=None, help="append the record to this JSON-lines file")
    b.add_argument("--json", action="store_true", help="print the record as JSON")
    add_score_parser(sub)
    return p


def add_score_parser(sub: Any) -> None:
    s = sub.add_parser("score", help="score a camera/frame stream with an exported scoring graph and spool the "
                                     "frames worth uploading under an upload budget")
    s.add_argument("--onnx", required=True, help="scoring graph from `hwbench export MODEL --score entropy`")
    s.add_argument("--backend", default="tensorrt", choices=("tensorrt", "onnxruntime"),
                   help="tensorrt (default; the device) or onnxruntime (anywhere)")
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--frames", help="directory of frames (.png .jpg .bmp .ppm .npy), sorted by name")
    src.add_argument("--video", help="video file (OpenCV)")
    src.add_argument("--camera", help="camera index (OpenCV)")
    src.add_argument("--gstreamer", help="GStreamer pipeline ending in appsink (OpenCV built with GStreamer)")
    src.add_argument("--synthetic", type=int, help="N seeded synthetic frames (tests, dry runs)")
    s.add_argument("--timestamps", help="--frames: each frame's time, lines 'NAME SECONDS' or JSON lines {file, timestamp_s} "
                                         "(default: DIR/manifest.jsonl of `al data drives` when present, else names sorted at --fps)")
    s.add_argument("--fps", type=float, default=30.0, help="camera rate when the source has no timestamps (default 30)")
    s.add_argument("--latency-ms", default="auto",
                   help="scorer latency per frame for the real-time model: a number (fixed; runs repeat exactly), "
                        "auto (default: median of 10 timed frames, measured once and kept in the spool) or "
                        "measured (each frame's own time; live use)")
    s.add_argument("--policy", default="window-topk", choices=POLICIES, help="upload policy (default window-topk)")
    s.add_argument("--k", type=int, default=1, help="window-topk: frames kept per window (default 1)")
    s.add_argument("--window", type=int, default=30, help="window-topk: window length in frames (default 30)")
    s.add_argument("--threshold", type=float, help="threshold: keep frames scoring >= this")
    s.add_argument("--pool-scores", help="threshold: last cycle's pool scores (.npy, JSON list, manifest, numbers)")
    s.add_argument("--quantile", type=float, default=0.9, help="threshold = this quantile of --pool-scores (default 0.9)")
    s.add_argument("--dedup-dist", type=float, help="drop frames within this distance (unit embeddings) of a recent kept one")
    s.add_argument("--dedup-memory", type=int, default=32, help="kept frames the near-duplicate filter remembers (default 32)")
    s.add_argument("--budget-frames", type=int, help="at most N kept frames per --per (default: no limit)")
    s.add_argument("--budget-mb", type=float, help="at most this many MB (1e6 bytes) of frames per --per")
    s.add_argument("--per", help="budget period, e.g. 1h, 15m, 1d (default: the whole run)")
    s.add_argument("--spool", required=True, help="upload spool directory (created; a rerun resumes it)")
    s.add_argument("--spool-max-mb", type=float, help="bound on the spooled frames' MB; lowest scores evicted first")
    s.add_argument("--max-frames", type=int, help="stop after this many arrivals")
    s.add_argument("--seed", type=int, default=0, help="--synthetic: seed (default 0)")
    s.add_argument("--device-id", default=None, help="this device's name in the manifest (default: host name)")
    s.add_argument("--gpu", type=int, default=0, help="CUDA device index (default 0)")
    s.add_argument("--fp16", action="store_true", help="tensorrt: FP16 kernels")
    s.add_argument("--int8", action="store_true", help="tensorrt: INT8 kernels (latency-only ranges without calibration)")
    s.add_argument("--dla-core", type=int, default=None, help="tensorrt: run on this DLA core")
    s.add_argument("--cache-dir", default=None, help="tensorrt: engine cache directory")
    s.add_argument("--threads", type=int, default=1, help="onnxruntime: CPU threads (default 1: repeatable)")
    s.add_argument("--json", action="store_true", help="print the summary as JSON")


def run_score(args: argparse.Namespace) -> Dict[str, Any]:
    """`score`: check the options, open source, engine and spool, run `score_stream`."""
    if args.latency_ms not in ("auto", "measured"):
        try:
            ms = float(args.latency_ms)
        except ValueError:
            ms = -1.0
        if not (math.isfinite(ms) and ms >= 0):
            raise BenchError(f"--latency-ms must be a number >= 0, auto or measured; got {args.latency_ms!r}")
    if not (math.isfinite(args.fps) and args.fps > 0):
        raise BenchError(f"--fps must be a positive number, got {args.fps}")
    if args.threads is not None and args.threads < 1:
        raise BenchError(f"--threads must be >= 1, got {args.threads}")
    for flag, v in (("--max-frames", args.max_frames), ("--spool-max-mb", args.spool_max_mb)):
        if v is not None and not (math.isfinite(v) and v > 0):
            raise BenchError(f"{flag} must be positive, got {v}")
    threshold = args.threshold
    if args.policy == "threshold" and threshold is None and args.pool_scores:
        threshold = threshold_from_scores(read_pool_scores(args.pool_scores), args.quantile)
    cfg = policy_config(args.policy, threshold=threshold, k=args.k, window=args.window, dedup_dist=args.dedup_dist,
                        dedup_memory=args.dedup_memory, budget_frames=args.budget_frames, budget_mb=args.budget_mb,
                        period_s=parse_duration(args.per) if args.per else None)
    if not Path(args.onnx).is_file():
        raise BenchError(f"--onnx {args.onnx!r} not found; export one with `hwbench export MODEL --score entropy`")
    precision = precision_from_flags(args.fp16, args.int8)
    if args.backend == "onnxruntime" and (precision != "fp32" or args.dla_core is not None):
        raise BenchError("--fp16/--int8/--dla-core apply to --backend tensorrt only")
    check_numpy()
    spool = Spool(args.spool, {}, None)
    existed = spool.check()
    try:
        return _score_in(args, cfg, precision, spool)
    except BenchError:
        if not existed:
            spool.remove_if_empty_new()  # nothing half-written: a failed first run leaves no spool
        raise


def _score_in(args: argparse.Namespace, cfg: PolicyConfig, precision: str, spool: "Spool") -> Dict[str, Any]:
    if args.backend == "onnxruntime":
        engine = OrtEngine(args.onnx, threads=args.threads, gpu=args.gpu)  # type: Any
    else:
        engine = TrtEngine(args.onnx, precision=precision, dla_core=args.dla_core, gpu=args.gpu,
                           cache_dir=args.cache_dir)
    try:
        shape = engine.input_shape
        if args.frames:
            source = DirSource(args.frames, args.fps, args.timestamps)  # type: Any
        elif args.synthetic is not None:
            source = SyntheticSource(args.synthetic, (int(shape[2]), int(shape[3])) if len(shape) == 4 else (64, 128),
                                     args.fps, seed=args.seed)
        else:
            kind = "video" if args.video else "camera" if args.camera is not None else "gstreamer"
            source = VideoSource(args.video or args.camera or args.gstreamer, kind, args.fps)
        model_sha = file_sha256(args.onnx)
        settings = {"onnx_sha256": model_sha, "source": source.describe(), "policy": list(cfg), "fps": args.fps,
                    "latency_ms": args.latency_ms, "backend": args.backend, "precision": precision,
                    "dla_core": args.dla_core, "threads": args.threads, "max_frames": args.max_frames,
                    "spool_max_mb": args.spool_max_mb}
        spool.settings = settings
        spool.max_bytes = None if args.spool_max_mb is None else int(args.spool_max_mb * 1e6)
        out = score_stream(source, engine, spool, cfg, latency=args.latency_ms, max_frames=args.max_frames,
                           device_id=args.device_id or platform.node(), model_sha256=model_sha)
    finally:
        engine.close()
    out["spool"] = str(spool.root)
    out["manifest_lines"] = len(spool.state["entries"]) if spool.state else 0
    out["policy"] = policy_label(cfg)
    return out


def precision_from_flags(fp16: bool, int8: bool) -> str:
    return "int8" if int8 else "fp16" if fp16 else "fp32"


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    old = None
    try:  # SIGTERM unwinds like Ctrl-C (main thread only; a caller's handler is restored after)
        old = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:
        pass
    try:
        return _main(parser, args)
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)


def _main(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.command == "score":
        return _main_score(args)
    if args.command != "bench":
        parser.print_help()
        return 2
    try:
        calibration = None
        if args.calib_dir or args.calib_cache:
            calibration = Int8Calibration(data_dir=args.calib_dir, cache_file=args.calib_cache)
        rec = bench(args.onnx, precision=precision_from_flags(args.fp16, args.int8), dla_core=args.dla_core,
                    gpu_fallback=not args.no_gpu_fallback, iters=args.iters, warmup_ms=args.warmup_ms,
                    shape=parse_shape(args.shape) if args.shape else None, model=args.model, device=args.device,
                    cache_dir=args.cache_dir, calibration=calibration, workspace_mb=args.workspace_mb,
                    rebuild=args.rebuild, gpu=args.gpu)
    except BenchError as e:
        print(f"error: {str(e).splitlines()[0] if str(e) else 'bad input'}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Terminated) as e:
        print("interrupted" if isinstance(e, KeyboardInterrupt) else "terminated", file=sys.stderr)
        return 130 if isinstance(e, KeyboardInterrupt) else 143
    if args.out:
        append_jsonl(args.out, rec)
    if args.json:
        print(json.dumps(rec))
    else:
        c = rec["components"].get("latency", {})
        print(f"{rec['model']} {'x'.join(map(str, rec['input']))} {rec['precision']} on {rec['env']['device_name']}: "
              f"GPU compute median {rec['median_ms']:.3f} ms (p90 {rec['p90_ms']:.3f}, p99 {rec['p99_ms']:.3f}, "
              f"cv {rec['cv']:.3f}); H2D+compute+D2H median {c.get('median_ms', float('nan')):.3f} ms; "
              f"{rec['iters']} iters")
        for w in rec["warnings"]:
            print(f"warning: {w}", file=sys.stderr)
    return 0


def _main_score(args: argparse.Namespace) -> int:
    try:
        out = run_score(args)
    except BenchError as e:
        print(f"error: {str(e).splitlines()[0] if str(e) else 'bad input'}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Terminated) as e:
        what = "interrupted" if isinstance(e, KeyboardInterrupt) else "terminated (SIGTERM)"
        print(f"{what}; the spool is consistent: run the same command to resume", file=sys.stderr)
        return 130 if isinstance(e, KeyboardInterrupt) else 143
    except OSError as e:  # the disk, not the input: one line, and the spool stays resumable
        where = e.filename or args.spool
        if e.errno == errno.ENOSPC:
            print(f"error: disk full writing {str(where)!r} (No space left on device); free space or lower "
                  "--spool-max-mb, then run the same command to resume", file=sys.stderr)
        else:
            print(f"error: {e.strerror or type(e).__name__}: {str(where)!r}; the spool is consistent: fix it and "
                  "run the same command to resume", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({**out, "provenance": device_provenance()}, sort_keys=True))
    else:
        state = "already complete" if out.get("already_complete") else "resumed, done" if out.get("resumed") else "done"
        print(f"{state}: seen {out['seen']}, scored {out['scored']}, skipped {out['skipped']} (scorer busy), "
              f"invalid {out['invalid']}, kept {out['kept']}, evicted {out['evicted']}; "
              f"{out['manifest_lines']} frames in {out['spool']}/manifest.jsonl [{out['policy']}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
