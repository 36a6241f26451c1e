"""TensorRT runner (TensorRT 8.0-10.x Python API, buffers through pycuda).

Checked against each release's binding names without a GPU (tests/hwbench/ondevice/trt_standin.py,
test_trt_releases.py); TensorRT 11 (no BuilderFlag.FP16/INT8) runs fp32 and refuses fp16/int8 in one
line, hence the `trt` extra's `tensorrt>=8.5,<11`.

The TensorRT calls live in `hwbench.ondevice`, the stand-alone script a Jetson user copies to the
device, so that hwbench and the device run one implementation; this module adapts it to the
`Runner` interface and to hwbench's errors. The pure logic is re-exported here and unit-tested
without TensorRT:

- `build_settings(precision, dla_core=..., ...)` -> `BuildSettings` (builder flags FP16/INT8/
  GPU_FALLBACK, DLA device type and core, workspace bytes, INT8 calibration mode);
- `network_flags(trt_major, explicit_batch_bit)`: EXPLICIT_BATCH for TensorRT < 10, 0 from 10 on;
- `engine_cache_key(...)` / `engine_cache_path(...)`: engines cached under
  <cache>/engines/<key>.engine (<cache>: $HWBENCH_CACHE_DIR, else $XDG_CACHE_HOME/hwbench, else ~/.cache/hwbench), keyed by model, ONNX content,
  input shape, precision, DLA core, GPU name and TensorRT version;
- `Int8Calibration`: entropy calibration from .npy batches, a saved cache, or trtexec's fixed
  ranges (latency only).

Builder: `trt.Builder` -> `create_network(flags)` -> `OnnxParser.parse_from_file` ->
`create_builder_config()` with `set_memory_pool_limit(MemoryPoolType.WORKSPACE, ...)` (8.4+) or
`max_workspace_size` (8.2), `set_flag(BuilderFlag.FP16 / INT8 / GPU_FALLBACK)`,
`default_device_type = DeviceType.DLA`, `DLA_core` -> `build_serialized_network`. Runtime:
`Runtime.deserialize_cuda_engine`, an execution context with `set_tensor_address` +
`execute_async_v3` (8.5+/10.x) or bindings + `execute_async_v2` (8.0-8.4).
Timing (as trtexec): CUDA events around H2D, compute and D2H on one stream. `run_once()` returns
the GPU compute time (the headline); `latency` (H2D + compute + D2H), `h2d`, `d2h` and `enqueue`
go to the record's `components`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from hwbench import ondevice as _od
from hwbench.errors import UserError
from hwbench.latency.backends import Runner, RunSpec, check_shape_matches
from hwbench.ondevice import (  # noqa: F401  (re-exported pure logic)
    BenchError,
    BuildSettings,
    Int8Calibration,
    default_cache_dir,
    engine_cache_key,
    engine_cache_path,
    network_flags,
    trt_major,
)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn the stand-alone script's `BenchError` into hwbench's `UserError`."""
    try:
        yield
    except BenchError as e:
        raise UserError(str(e)) from None


def build_settings(precision: str, **kw: Any) -> BuildSettings:
    """`hwbench.ondevice.build_settings` raising `UserError`."""
    with user_errors():
        return _od.build_settings(precision, **kw)


def _build_kw(spec: RunSpec) -> dict[str, Any]:
    """Builder options of a run spec (the workspace only when the user set one)."""
    kw: dict[str, Any] = {"dla_core": spec.dla_core}
    if spec.workspace_mb is not None:
        kw["workspace_mb"] = spec.workspace_mb
    return kw


class TrtRunner(Runner):
    name: ClassVar[str] = "tensorrt"
    requires: ClassVar[tuple[str, ...]] = ("tensorrt", "pycuda")
    extra: ClassVar[str | None] = "trt"
    install_note: ClassVar[str] = "; on Jetson TensorRT ships with JetPack (sudo apt install python3-libnvinfer)"
    supported: ClassVar[dict[str, frozenset[str]]] = {"cuda": frozenset({"fp32", "fp16", "int8"})}
    options: ClassVar[frozenset[str]] = frozenset({"onnx", "dla_core"})
    needs_onnx: ClassVar[bool] = True

    @classmethod
    def check(cls, spec: RunSpec) -> None:
        super().check(spec)
        build_settings(spec.precision, **_build_kw(spec))  # DLA + fp32 etc. -> UserError

    def __init__(self, spec: RunSpec) -> None:
        super().__init__(spec)
        self._runner: _od.EngineRunner | None = None
        self._trt_version = ""
        self._engine_path = ""
        self._built = False
        self._settings: BuildSettings | None = None

    def prepare(self) -> None:
        spec = self.spec
        onnx = self.onnx_file()
        check_shape_matches(onnx, spec.input_shape)
        self._settings = build_settings(spec.precision, **_build_kw(spec))
        with user_errors():
            trt, cuda = _od.import_trt()
            data, path, shape, built = _od.get_engine(trt, cuda, onnx, self._settings, model=spec.model_name,
                                                      input_shape=tuple(spec.input_shape),
                                                      cache_dir=spec.cache_dir)
            self._runner = _od.EngineRunner(trt, cuda, data, shape, dla_core=spec.dla_core, seed=spec.seed,
                                            engine_path=str(path))
            self._runner.prepare()
        self._trt_version, self._engine_path, self._built = trt.__version__, str(path), built

    def run_once(self) -> float:
        assert self._runner is not None, "call prepare() first"
        with user_errors():
            t = self._runner.run_once()
        for k in ("latency", "h2d", "d2h", "enqueue"):
            self.record_component(k, t[k])
        return t["compute"]

    def infer(self, x: np.ndarray) -> list[np.ndarray]:
        assert self._runner is not None, "call prepare() first"
        self._runner.set_input(x)
        self.run_once()
        return [np.array(h, dtype=np.float32) for h in self._runner.outputs_host()]

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()
            self._runner = None
        super().close()

    def threads_used(self) -> int | None:
        return None

    def versions(self) -> dict[str, str]:
        return {"tensorrt": self._trt_version}

    def env_extra(self) -> dict[str, Any]:
        s = self._settings
        return {"engine": self._engine_path, "engine_built": self._built,
                "engine_device": s.device_type if s else None,
                "builder_flags": list(s.builder_flags) if s else [],
                "int8_calibration": s.calibration.mode if s and s.calibration else None,
                "timing": "cuda-events (h2d | compute | d2h on one stream)"}
