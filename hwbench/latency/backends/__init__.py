"""Backend runners for measured latency, one small class per backend (Polygraphy style).

A runner is built from a `RunSpec`, then `prepare()` (load/compile the model, allocate inputs),
`run_once()` (one inference; returns its latency in ms, timed with device events or a host clock
around *synchronous* work), `infer(x)` (outputs for a given input, for correctness checks) and
`close()`. `Runner.check(spec)` rejects an unsupported device / precision / option with a one-line
`UserError` before any heavy work; `Runner.available()` says whether the optional packages it needs
are installed. Runner classes are registered by dotted path and imported only when asked for.
"""

from __future__ import annotations

import importlib
import importlib.util
import tempfile
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hwbench.errors import UserError, missing_package, unknown
from hwbench.onnxfile import check_onnx_file, check_shape_matches, onnx_input_shape  # noqa: F401 (API)

BACKENDS: dict[str, str] = {
    "torch": "hwbench.latency.backends.torch:TorchRunner",
    "onnxruntime": "hwbench.latency.backends.onnxrt:OrtRunner",
    "tensorrt": "hwbench.latency.backends.tensorrt:TrtRunner",
}

# Why a precision is refused, by precision (device-independent part of the message).
_PRECISION_HINTS = {
    "int8": "int8 needs a TensorRT engine: use --backend tensorrt --backend-device cuda (or ingest a trtexec --int8 log)",
    "fp16": "CPUs here have no fast fp16 path; use --precision fp32, or --backend-device cuda / --backend tensorrt",
}


def _importable(module: str) -> bool:
    """Whether `module` can be imported, without importing it (None in sys.modules = blocked)."""
    import sys

    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def list_backends() -> list[str]:
    return list(BACKENDS)


def get_runner_class(name: str) -> type[Runner]:
    """Runner class registered under `name` (`UserError` listing the known ones otherwise)."""
    if name not in BACKENDS:
        raise unknown("backend", name, BACKENDS)
    module, _, cls = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


@dataclass(frozen=True)
class RunSpec:
    """What to run and how: model, input shape (N, C, H, W), precision, device and options."""

    model_name: str
    input_shape: tuple[int, ...]
    precision: str = "fp32"
    device: str = "cpu"
    threads: int | None = None
    cuda_graphs: bool = False
    channels_last: bool = False
    compile: bool = False
    onnx_path: str | None = None
    dla_core: int | None = None
    workspace_mb: int | None = None  # tensorrt builder workspace (None: the on-device default)
    module: Any = None  # torch.nn.Module in eval mode (torch backend; exported for ONNX backends)
    cache_dir: str | None = None
    seed: int = 0

    def with_module(self, module: Any) -> RunSpec:
        return replace(self, module=module)


class Runner:
    """Base class: lifecycle, capability checks, per-component timing samples."""

    name: ClassVar[str] = "base"
    requires: ClassVar[tuple[str, ...]] = ()  # importable module names needed at run time
    extra: ClassVar[str | None] = None  # pip extra of hwbench that installs them
    supported: ClassVar[Mapping[str, frozenset[str]]] = {}  # device -> precisions
    options: ClassVar[frozenset[str]] = frozenset()  # which of cuda_graphs/channels_last/compile/onnx/dla_core
    needs_module: ClassVar[bool] = False  # needs the torch module itself
    needs_onnx: ClassVar[bool] = False  # needs an ONNX file (given with --onnx, or exported here)
    install_note: ClassVar[str] = ""

    def __init__(self, spec: RunSpec) -> None:
        self.spec = spec
        self._components: dict[str, list[float]] = defaultdict(list)
        self._tmp: tempfile.TemporaryDirectory | None = None

    # ---- capability checks (class level, cheap)
    @classmethod
    def available(cls) -> bool:
        """True when every package in `requires` can be imported."""
        return all(_importable(m) for m in cls.requires)

    @classmethod
    def missing(cls) -> UserError | None:
        for m in cls.requires:
            if not _importable(m):
                err = missing_package(m, cls.extra)
                return UserError(f"{err} (needed by --backend {cls.name}){cls.install_note}")
        return None

    @classmethod
    def check(cls, spec: RunSpec) -> None:
        """`UserError` for a missing package, unsupported device/precision or option."""
        err = cls.missing()
        if err is not None:
            raise err
        if spec.device not in cls.supported:
            raise UserError(f"--backend {cls.name} does not run on --backend-device {spec.device}; "
                            f"supported: {', '.join(cls.supported)}")
        ok = cls.supported[spec.device]
        if spec.precision not in ok:
            hint = _PRECISION_HINTS.get(spec.precision, "")
            raise UserError(f"--backend {cls.name} on {spec.device} does not support {spec.precision} "
                            f"(supported: {', '.join(sorted(ok))}); {hint}".rstrip("; "))
        for opt, flag in (("cuda_graphs", "--cuda-graphs"), ("channels_last", "--channels-last"),
                          ("compile", "--compile"), ("onnx", "--onnx"), ("dla_core", "--dla-core")):
            value = getattr(spec, "onnx_path" if opt == "onnx" else opt)
            if value not in (None, False) and opt not in cls.options:
                raise UserError(f"{flag} does not apply to --backend {cls.name}")

    # ---- lifecycle
    def prepare(self) -> None:
        raise NotImplementedError

    def run_once(self) -> float:
        """Run one inference; return its latency in ms."""
        raise NotImplementedError

    def infer(self, x: np.ndarray) -> list[np.ndarray]:
        """Outputs (float32 numpy) for input `x` of shape `spec.input_shape`."""
        raise NotImplementedError

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- reporting
    def versions(self) -> dict[str, str]:
        """Library versions for the record's `env` (e.g. {'onnxruntime': '1.20.1'})."""
        return {}

    def env_extra(self) -> dict[str, Any]:
        """Other facts for `env` (providers, timing method, engine path ...)."""
        return {}

    def threads_used(self) -> int | None:
        import torch

        return torch.get_num_threads()

    def record_component(self, name: str, ms: float) -> None:
        self._components[name].append(float(ms))

    def component_samples(self) -> dict[str, list[float]]:
        return {k: list(v) for k, v in self._components.items()}

    def reset_components(self) -> None:
        self._components.clear()

    # ---- helpers for ONNX-based runners
    def random_input(self, dtype: Any = np.float32) -> np.ndarray:
        rng = np.random.default_rng(self.spec.seed)
        return rng.standard_normal(self.spec.input_shape).astype(dtype)  # (N, C, H, W)

    def onnx_file(self) -> Path:
        """The ONNX file to run: `--onnx PATH` (checked), else the module exported to a temp dir."""
        if self.spec.onnx_path:
            return check_onnx_file(self.spec.onnx_path)
        if self.spec.module is None:
            raise UserError(f"--backend {self.name} needs a model or --onnx FILE")
        from hwbench.export import export_onnx

        self._tmp = tempfile.TemporaryDirectory(prefix="hwbench-onnx-")
        return export_onnx(self.spec.module, self.spec.input_shape,
                           Path(self._tmp.name) / f"{self.spec.model_name}.onnx")
