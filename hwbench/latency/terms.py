"""Roofline terms of a (model, input) for the latency predictor (`hwbench.latency.predict`).

For a (model, input) pair, `hwbench.count` gives the per-layer table (MACs, activation elements read
and written, weight elements). With P the device's peak (ops/s) and B its memory bandwidth at the
measured precision (`profiles/`; the measured `host` profile here), every charged layer l has a
compute time c_l = 2 MACs_l / P, an activation-traffic time a_l = (in_l + out_l) bytes / B and a
weight-traffic time w_l = weight bytes / B (ms); its plain roofline time is max(c_l, a_l + w_l).
Layers fall into op classes (`OP_CLASSES`):
    conv       dense k x k convolution (k > 1, no dilation)
    dilated    dense k x k convolution with dilation > 1 (DeepLab's ASPP: 6 / 12 / 18)
    pointwise  1 x 1 convolution (groups = 1)
    depthwise  grouped / depthwise convolution
    linear     fully connected
    memory     everything else the roofline charges (norm, activation, add, pooling, resize)
Norm/activation/add rows are charged for CPU backends (eager torch runs them; onnxruntime's
fusions are absorbed by the fit) and left out for TensorRT, which fuses them. Dilated convs also
get a valid-tap compute term: c_l times the fraction of kernel taps that land inside the input
(`valid_fraction`; input sizes from a shape-only pass on the meta device). oneDNN's direct kernels
skip taps in the padding, and on the 6x12..16x32 ASPP maps most taps of dilation 12 / 18 are padding
(measured here: 576->256 3x3 at 12x24, dilation 12: 1.3 ms against 3.5 ms undilated), while for
other shapes oneDNN falls back to im2col + GEMM at the full MAC count (16x32, dilation 12: 6.3 ms).
"""

from __future__ import annotations

import functools
import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from hwbench.errors import UserError

log = logging.getLogger(__name__)

OP_CLASSES = ("conv", "dilated", "pointwise", "depthwise", "linear", "memory")
COMPUTE_CLASSES = OP_CLASSES[:-1]
FEATURES = ("overhead", "layers", *(f"compute_{k}" for k in COMPUTE_CLASSES),
            *(f"act_{k}" for k in OP_CLASSES), "weights", "spill", "compute_dilated_valid")  # design-matrix columns
FUSED_BACKENDS = {"tensorrt": True}  # roofline fuse= per backend (default False: charge norm/act/add)


class LayerTerm(NamedTuple):
    cls: str
    compute_ms: float
    act_ms: float
    weight_ms: float
    act_bytes: float  # activation working set of one call (bytes)
    valid_frac: float = 1.0  # fraction of kernel taps inside the input (convs; 1 for the rest)


@dataclass(frozen=True)
class Terms:
    """Roofline terms of one (model, input) on one device/precision/backend."""

    model: str
    input: tuple[int, ...]
    roofline_ms: float  # plain roofline latency: sum over charged layers of max(compute, memory)
    per_class: dict[str, float]  # op class -> roofline ms
    layers: tuple[LayerTerm, ...]

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    def row(self, spill_bytes: float | None = None) -> np.ndarray:
        """One design-matrix row (order `FEATURES`)."""
        f = dict.fromkeys(FEATURES, 0.0)
        f["overhead"], f["layers"] = 1.0, float(len(self.layers))
        for t in self.layers:
            if t.cls != "memory":
                f[f"compute_{t.cls}"] += t.compute_ms
            if t.cls == "dilated":
                f["compute_dilated_valid"] += t.compute_ms * t.valid_frac
            f[f"act_{t.cls}"] += t.act_ms
            f["weights"] += t.weight_ms
            if spill_bytes is not None and t.act_bytes > spill_bytes:
                f["spill"] += t.act_ms
        return np.array([f[k] for k in FEATURES])


def conv_class(groups: int, kernel_elems: int, dilation: int = 1) -> str:
    """Op class of a convolution from its groups, kernel size (kh * kw) and largest dilation."""
    if groups > 1:
        return "depthwise"
    if kernel_elems == 1:
        return "pointwise"
    return "dilated" if dilation > 1 else "conv"


def _pairs(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[-1]))


def valid_fraction(in_hw: tuple[int, int], kernel: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1) -> float:
    """Mean fraction of a conv's kernel taps that land inside the input (the rest read padding).

    oneDNN's direct convolutions skip taps in the padding, which matters for DeepLab's ASPP: dilation
    6/12/18 on a 6x12..16x32 feature map leaves most taps outside. Separable per axis.
    """
    frac = 1.0
    for n, k, s, p, d in zip(in_hw, _pairs(kernel), _pairs(stride), _pairs(padding), _pairs(dilation), strict=True):
        n_out = (n + 2 * p - d * (k - 1) - 1) // s + 1
        if n_out <= 0:
            return 0.0
        pos = np.arange(n_out)[:, None] * s - p + np.arange(k)[None, :] * d  # (out, k) input index of each tap
        frac *= float(np.mean((pos >= 0) & (pos < n)))
    return frac


def _layer_class(kind: str, category: str, module: Any) -> str:
    if category != "compute":
        return "memory"
    if "Linear" in kind or kind in ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "onnx::Gemm", "onnx::MatMul"):
        return "linear"
    groups = int(getattr(module, "groups", 1) or 1)
    k = getattr(module, "kernel_size", (3, 3))
    return conv_class(groups, int(np.prod(k)), max(_pairs(getattr(module, "dilation", 1))))


def _device_rates(device: str, precision: str) -> tuple[float, float]:
    """(peak TOPS, bandwidth GB/s) of a device profile; nominal figures for a free-form label."""
    from hwbench.profiles import list_profiles, load_profile

    if device in list_profiles():
        prof = load_profile(device)
        for eng in ("cpu", "gpu", "gpu+dla", "dla"):
            try:
                return prof.peak_tops(precision, engine=eng), prof.mem_bw_gbps
            except UserError:
                continue
        if prof.peak:  # e.g. host measured at fp32 only: the fitted efficiencies absorb the scale
            return prof.peak[0].tops, prof.mem_bw_gbps
    log.warning("no profile figures for device %r at %s; using nominal 1 TOPS / 100 GB/s "
                "(the fitted efficiencies absorb the scale)", device, precision)
    return 1.0, 100.0


@functools.lru_cache(maxsize=256)
def _classified_layers(model: str, input_shape: tuple[int, ...],
                       num_classes: int) -> tuple[tuple[Any, str, float], ...]:
    """(LayerCount, op class, valid-tap fraction) for every row of the count table (cached per process;
    the count itself is also cached on disk, and conv input sizes come from one shape-only meta pass).
    `model` is any form `hwbench.resolve` takes (zoo name, ONNX file, callable)."""
    from hwbench.count import count as count_ops
    from hwbench.latency.roofline import layer_category
    from hwbench.resolve import resolve

    ref = resolve(model)
    c = count_ops(model, tuple(input_shape), num_classes=num_classes if ref.kind == "zoo" else None, ops="all")
    modules, conv_inputs = _conv_geometry(ref, tuple(input_shape), num_classes)
    out = []
    for layer in c.layers:
        mod = modules.get(layer.name)
        frac = 1.0
        if layer.name in conv_inputs and len(mod.kernel_size) == 2 and isinstance(mod.padding, tuple):
            frac = valid_fraction(conv_inputs[layer.name][-2:], mod.kernel_size, mod.stride, mod.padding, mod.dilation)
        out.append((layer, _layer_class(layer.kind, layer_category(layer.kind), mod), frac))
    return tuple(out)


def _conv_geometry(ref: Any, shape: tuple[int, ...], num_classes: int) -> tuple[dict[str, Any], dict[str, tuple]]:
    """(layer name -> conv module or its ONNX attributes, layer name -> conv input shape) of a resolved model."""
    import torch

    if ref.kind == "onnx":
        from hwbench.counting.onnx_graph import conv_geometry

        geo = conv_geometry(ref.graph(), shape, str(ref.path))
        return {k: g for k, (g, _) in geo.items()}, {k: s for k, (_, s) in geo.items()}
    if ref.kind == "zoo":
        from hwbench.counting.meta import input_shapes

        net, seen = input_shapes(ref.name, shape, num_classes=num_classes, types=(torch.nn.Conv2d,))
    else:  # a callable's module: one shape-only pass with meta copies of its weights
        net, seen = ref.module(), {}

        def record(q: str):
            def hook(_mod: Any, args: tuple) -> None:  # returns None: the arguments are left as they are
                seen.setdefault(q, tuple(args[0].shape))
            return hook

        hooks = [m.register_forward_pre_hook(record(q)) for q, m in net.named_modules() if isinstance(m, torch.nn.Conv2d)]
        meta = {k: torch.empty_like(t, device="meta") for k, t in [*net.named_parameters(), *net.named_buffers()]}
        try:
            with torch.no_grad():
                torch.func.functional_call(net.eval(), meta, (torch.empty(shape, device="meta"),))
        finally:
            for h in hooks:
                h.remove()
    modules = {q: m for q, m in net.named_modules() if isinstance(m, torch.nn.Conv2d)}
    return modules, {q: s for q, s in seen.items() if q in modules}


@functools.lru_cache(maxsize=512)
def layer_terms(model: str, input_shape: tuple[int, ...], *, device: str, precision: str, backend: str,
                num_classes: int = 19) -> Terms:
    """Per-layer roofline terms of a model (any `hwbench.resolve` form) at `input_shape` (N, C, H, W) on `device`."""
    from hwbench.count import ops_from_macs
    from hwbench.latency.roofline import charged
    from hwbench.profiles import BYTES_PER_ELEMENT

    tops, bw = _device_rates(device, precision)
    nbytes = BYTES_PER_ELEMENT.get(precision, 4)
    fuse = FUSED_BACKENDS.get(backend, False)
    layers, per_class = [], defaultdict(float)
    for layer, cls, frac in _classified_layers(model, tuple(input_shape), num_classes):
        if not charged(layer, fuse=fuse):
            continue
        act = (layer.input_elems + layer.output_elems) * nbytes
        t = LayerTerm(cls, ops_from_macs(layer.macs) / (tops * 1e12) * 1e3, act / (bw * 1e9) * 1e3,
                      layer.weight_elems * nbytes / (bw * 1e9) * 1e3, act / max(layer.calls, 1), frac)
        layers.append(t)
        per_class[cls] += max(t.compute_ms, t.act_ms + t.weight_ms)
    return Terms(model=model, input=tuple(int(d) for d in input_shape), roofline_ms=sum(per_class.values()),
                 per_class=dict(per_class), layers=tuple(layers))
