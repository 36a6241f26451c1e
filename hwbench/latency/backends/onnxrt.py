"""ONNX Runtime runner: an ONNX file (given with --onnx, or the model exported here) in an
InferenceSession with all graph optimisations, sequential execution and fixed intra-op threads.

Timing: `session.run` returns only after the outputs are in host memory (also with the CUDA
provider), so a host clock around it is exact; on CUDA the figure therefore includes the H2D and
D2H copies (end-to-end), unlike the torch/TensorRT GPU figures. fp32 only: fp16/int8 on this
backend would need a converted/quantised model, which the toolkit does not produce.
"""

from __future__ import annotations

import os
import time
from typing import Any, ClassVar

import numpy as np

from hwbench.errors import UserError
from hwbench.latency.backends import Runner, RunSpec, check_shape_matches

_PROVIDERS = {"cpu": ["CPUExecutionProvider"],
              "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"]}


def select_providers(device: str, available: list[str], ort_version: str = "1.16") -> list[Any]:
    """Execution providers for `device` among `available` (CUDA with TF32 off, for fp32 accuracy, where
    onnxruntime `ort_version` knows the option: the 1.10/1.11 wheels refuse unknown options)."""
    wanted = [p for p in _PROVIDERS[device] if p in available]
    if device == "cuda" and "CUDAExecutionProvider" not in wanted:
        raise UserError("onnxruntime has no CUDAExecutionProvider here; "
                        "install it with: pip install onnxruntime-gpu, or use --backend-device cpu")
    from hwbench.ondevice import ort_cuda_options

    cuda = {k: v for k, v in ort_cuda_options(ort_version).items() if k != "device_id"}
    return [(p, cuda) if p == "CUDAExecutionProvider" else p for p in wanted]


class OrtRunner(Runner):
    name: ClassVar[str] = "onnxruntime"
    requires: ClassVar[tuple[str, ...]] = ("onnxruntime",)
    extra: ClassVar[str | None] = "ort"
    supported: ClassVar[dict[str, frozenset[str]]] = {"cpu": frozenset({"fp32"}), "cuda": frozenset({"fp32"})}
    options: ClassVar[frozenset[str]] = frozenset({"onnx"})
    needs_onnx: ClassVar[bool] = True

    def __init__(self, spec: RunSpec) -> None:
        super().__init__(spec)
        self._sess: Any = None
        self._feed: dict[str, np.ndarray] = {}
        self._providers: list[str] = []

    def prepare(self) -> None:
        import onnxruntime as ort

        path = self.onnx_file()
        check_shape_matches(path, self.spec.input_shape)
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.log_severity_level = 3
        if self.spec.threads:
            so.intra_op_num_threads = self.spec.threads
            so.inter_op_num_threads = 1
        providers = select_providers(self.spec.device, ort.get_available_providers(), ort.__version__)
        try:
            self._sess = ort.InferenceSession(str(path), sess_options=so, providers=providers)
        except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph/... types
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
            raise UserError(f"onnxruntime cannot load {path} ({first})") from None
        self._providers = self._sess.get_providers()
        inp = self._sess.get_inputs()[0]
        self._feed = {inp.name: self.random_input()}  # (N, C, H, W) float32

    def run_once(self) -> float:
        assert self._sess is not None, "call prepare() first"
        c0, t0 = time.process_time_ns(), time.perf_counter_ns()
        self._sess.run(None, self._feed)
        t1, c1 = time.perf_counter_ns(), time.process_time_ns()
        self.record_component("cpu_time", (c1 - c0) / 1e6)
        return (t1 - t0) / 1e6

    def infer(self, x: np.ndarray) -> list[np.ndarray]:
        assert self._sess is not None, "call prepare() first"
        name = self._sess.get_inputs()[0].name
        return [np.asarray(o, dtype=np.float32) for o in self._sess.run(None, {name: x.astype(np.float32)})]

    def close(self) -> None:
        self._sess = None
        self._feed = {}
        super().close()

    def threads_used(self) -> int | None:
        return self.spec.threads or os.cpu_count()

    def versions(self) -> dict[str, str]:
        import onnxruntime as ort

        return {"onnxruntime": ort.__version__}

    def env_extra(self) -> dict[str, Any]:
        return {"providers": self._providers, "timing": "host-clock(sync session.run)",
                "intra_op_threads": self.threads_used()}
