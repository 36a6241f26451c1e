"""PyTorch runner: eager (optionally torch.compile'd) model on CPU or CUDA.

Timing: on CPU a forward pass is synchronous, so a `perf_counter_ns` pair around it is exact; on
CUDA two `torch.cuda.Event`s are recorded around the forward and the end event is synchronised
(`elapsed_time`). fp16 runs on CUDA only (`.half()` model and input); the CPU backend refuses fp16
(x86 CPUs here have no fast fp16 matrix path, so such a number would measure emulation) and int8.
Options: `--cuda-graphs` (capture one forward into a CUDA graph and replay it: removes launch
overhead), `--channels-last` (NHWC memory format for model and input), `--compile` (torch.compile).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch

from hwbench.errors import UserError
from hwbench.latency.backends import Runner, RunSpec


class TorchRunner(Runner):
    name: ClassVar[str] = "torch"
    requires: ClassVar[tuple[str, ...]] = ("torch",)
    supported: ClassVar[dict[str, frozenset[str]]] = {
        "cpu": frozenset({"fp32"}),
        "cuda": frozenset({"fp32", "fp16"}),
    }
    options: ClassVar[frozenset[str]] = frozenset({"cuda_graphs", "channels_last", "compile"})
    needs_module: ClassVar[bool] = True

    @classmethod
    def check(cls, spec: RunSpec) -> None:
        super().check(spec)
        if spec.device == "cuda" and not torch.cuda.is_available():
            raise UserError("--backend-device cuda: no CUDA device visible to torch; use --backend-device cpu")
        if spec.cuda_graphs and spec.device != "cuda":
            raise UserError("--cuda-graphs needs --backend-device cuda")

    def __init__(self, spec: RunSpec) -> None:
        super().__init__(spec)
        self._fn: Callable[[], Any] | None = None
        self._model: torch.nn.Module | None = None
        self._x: torch.Tensor | None = None
        self._threads_before: int | None = None
        self._events: tuple[Any, Any] | None = None
        self._graph: Any = None

    def prepare(self) -> None:
        spec = self.spec
        if spec.module is None:
            raise UserError("--backend torch needs a model")
        if spec.threads:
            self._threads_before = torch.get_num_threads()
            torch.set_num_threads(spec.threads)
        torch.manual_seed(spec.seed)
        device = torch.device(spec.device)
        dtype = torch.float16 if spec.precision == "fp16" else torch.float32
        model = spec.module.eval().to(device=device, dtype=dtype)
        x = torch.from_numpy(self.random_input()).to(device=device, dtype=dtype)  # (N, C, H, W)
        if spec.channels_last:
            model = model.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        if spec.compile:
            model = torch.compile(model)
        self._model, self._x = model, x
        self._fn = lambda: model(x)
        if spec.compile:  # compile now, so a compiler failure is reported before timing starts
            try:
                with torch.inference_mode():
                    self._fn()
            except Exception as e:  # inductor raises many types (missing C++ compiler, lowering errors)
                first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
                raise UserError(f"torch.compile failed ({first}); run without --compile") from None
        if spec.device == "cuda":
            self._events = (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
            if spec.cuda_graphs:
                self._capture_graph()

    def _capture_graph(self) -> None:
        """Warm up on a side stream, then capture one forward into a CUDA graph (static input)."""
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), torch.inference_mode():
            for _ in range(3):
                self._fn()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.cuda.graph(graph):
            self._fn()
        self._graph = graph
        self._fn = graph.replay

    def run_once(self) -> float:
        assert self._fn is not None, "call prepare() first"
        with torch.inference_mode():
            if self._events is None:  # CPU: synchronous, host clock is exact
                c0, t0 = time.process_time_ns(), time.perf_counter_ns()
                self._fn()
                t1, c1 = time.perf_counter_ns(), time.process_time_ns()
                self.record_component("cpu_time", (c1 - c0) / 1e6)
                return (t1 - t0) / 1e6
            start, end = self._events
            start.record()
            self._fn()
            end.record()
            end.synchronize()
            return float(start.elapsed_time(end))

    def infer(self, x: np.ndarray) -> list[np.ndarray]:
        assert self._model is not None and self._x is not None, "call prepare() first"
        t = torch.from_numpy(np.ascontiguousarray(x)).to(device=self._x.device, dtype=self._x.dtype)
        if self.spec.channels_last:
            t = t.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            out = self._model(t)
        outs = out if isinstance(out, (tuple, list)) else [out]
        return [o.detach().float().cpu().numpy() for o in outs]

    def close(self) -> None:
        self._fn = self._graph = self._model = self._x = None
        if self._threads_before is not None:
            torch.set_num_threads(self._threads_before)
            self._threads_before = None
        super().close()

    def threads_used(self) -> int | None:
        return self.spec.threads or torch.get_num_threads()

    def versions(self) -> dict[str, str]:
        return {"torch": torch.__version__}

    def env_extra(self) -> dict[str, Any]:
        timing = "cuda-events" if self.spec.device == "cuda" else "host-clock(sync)"
        return {"timing": timing, "cuda_graphs": self.spec.cuda_graphs,
                "channels_last": self.spec.channels_last, "compile": self.spec.compile}
