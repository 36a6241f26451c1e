"""Per-layer roofline: each layer takes max(compute time, memory time); the model is the sum.

    compute_ms(layer) = 2 * MACs / (peak TOPS * 1e12) * 1e3
    memory_ms(layer)  = bytes / (bandwidth GB/s * 1e9) * 1e3
    bytes(layer)      = (input + output + weight elements) * bytes per element of the precision

Layers are the rows of `hwbench.count.CountResult.layers` (leaf modules plus operators called
directly in a non-leaf forward). With `fuse=True` (default) norm, activation and element-wise
rows are left out: an inference engine such as TensorRT folds batch norm into the convolution
weights and fuses activations and residual adds into the convolution's epilogue, so they move no
extra bytes. `fuse=False` charges them too (an eager, unfused runtime). No-op rows (Identity,
Dropout at inference, Flatten) are always left out. Everything else (pooling, resizing, unknown
kinds) is charged its bytes: it is memory-bound on every device here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hwbench.count import LayerCount, ops_from_macs

# Layer kind (module class name or "aten::<op>") -> category.
_CATEGORY: dict[str, str] = {}
for _k in ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d", "Linear",
           "Bilinear", "aten::convolution", "aten::_convolution", "aten::mm", "aten::addmm", "aten::bmm",
           "aten::baddbmm"):
    _CATEGORY[_k] = "compute"
for _k in ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm", "FrozenBatchNorm2d", "GroupNorm",
           "LayerNorm", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "aten::native_batch_norm",
           "aten::_native_batch_norm_legit", "aten::_native_batch_norm_legit_no_training",
           "aten::native_group_norm", "aten::native_layer_norm"):
    _CATEGORY[_k] = "norm"
for _k in ("ReLU", "ReLU6", "Hardswish", "Hardsigmoid", "Sigmoid", "SiLU", "GELU", "Tanh", "LeakyReLU", "PReLU",
           "ELU", "Mish", "Softplus", "Hardtanh", "aten::relu", "aten::relu_", "aten::hardswish",
           "aten::hardswish_", "aten::hardsigmoid", "aten::hardsigmoid_", "aten::sigmoid", "aten::sigmoid_",
           "aten::silu", "aten::silu_", "aten::gelu", "aten::hardtanh", "aten::hardtanh_", "aten::tanh",
           "aten::clamp", "aten::clamp_min"):
    _CATEGORY[_k] = "activation"
for _k in ("aten::add", "aten::add_", "aten::mul", "aten::mul_", "aten::sub", "aten::sub_", "aten::div",
           "aten::div_"):
    _CATEGORY[_k] = "elementwise"
for _k in ("Identity", "Dropout", "Dropout2d", "Dropout1d", "Flatten", "Unflatten"):
    _CATEGORY[_k] = "noop"

# ONNX operators (`hwbench.counting.onnx_graph` rows are "onnx::<Op>"), same categories.
for _cat, _ops in (("compute", ("Conv", "ConvTranspose", "Gemm", "MatMul")),
                   ("norm", ("BatchNormalization", "LayerNormalization", "GroupNormalization", "InstanceNormalization")),
                   ("activation", ("Relu", "Clip", "HardSwish", "HardSigmoid", "Sigmoid", "Tanh", "LeakyRelu", "PRelu",
                                   "Elu", "Selu", "Softplus", "Gelu", "Erf", "Mish", "Max", "Min")),
                   ("elementwise", ("Add", "Sub", "Mul", "Div")),
                   ("noop", ("Identity", "Dropout", "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Shape", "Constant",
                             "Cast", "Transpose", "Expand", "Gather", "Slice"))):
    for _k in _ops:
        _CATEGORY[f"onnx::{_k}"] = _cat

FUSED_CATEGORIES = frozenset({"norm", "activation", "elementwise"})


def layer_category(kind: str) -> str:
    """compute | norm | activation | elementwise | noop | other (pooling, resize, unknown)."""
    return _CATEGORY.get(kind, "other")


@dataclass(frozen=True)
class LayerTime:
    name: str
    kind: str
    compute_ms: float
    memory_ms: float
    bytes_moved: int

    @property
    def latency_ms(self) -> float:
        return max(self.compute_ms, self.memory_ms)

    @property
    def bound(self) -> str:
        return "compute" if self.compute_ms >= self.memory_ms else "memory"


@dataclass(frozen=True)
class Roofline:
    latency_ms: float
    compute_ms: float       # sum of the layers' compute times
    memory_ms: float        # sum of the layers' memory times
    bytes_moved: int
    layers: tuple[LayerTime, ...]

    @property
    def memory_bound_share(self) -> float:
        """Fraction of the roofline latency spent in memory-bound layers."""
        if self.latency_ms <= 0:
            return 0.0
        return sum(t.latency_ms for t in self.layers if t.bound == "memory") / self.latency_ms


def layer_bytes(layer: LayerCount, bytes_per_elem: int) -> int:
    """Bytes a layer reads and writes: activations in and out plus its weights."""
    return (layer.input_elems + layer.output_elems + layer.weight_elems) * bytes_per_elem


def charged(layer: LayerCount, *, fuse: bool = True) -> bool:
    """Whether the roofline charges this layer (see the module docstring)."""
    cat = layer_category(layer.kind)
    if cat == "noop":
        return False
    if fuse and cat in FUSED_CATEGORIES:
        return False
    return True


def roofline(layers: Iterable[LayerCount], *, tops: float, mem_bw_gbps: float, bytes_per_elem: int,
             fuse: bool = True) -> Roofline:
    """Sum over charged layers of max(2*MACs / peak, bytes / bandwidth), in ms."""
    if tops <= 0 or mem_bw_gbps <= 0 or bytes_per_elem <= 0:
        raise ValueError("tops, mem_bw_gbps and bytes_per_elem must be positive")
    times = []
    for layer in layers:
        if not charged(layer, fuse=fuse):
            continue
        nbytes = layer_bytes(layer, bytes_per_elem)
        compute_ms = ops_from_macs(layer.macs) / (tops * 1e12) * 1e3
        memory_ms = nbytes / (mem_bw_gbps * 1e9) * 1e3
        times.append(LayerTime(layer.name, layer.kind, compute_ms, memory_ms, nbytes))
    return Roofline(latency_ms=sum(t.latency_ms for t in times), compute_ms=sum(t.compute_ms for t in times),
                    memory_ms=sum(t.memory_ms for t in times), bytes_moved=sum(t.bytes_moved for t in times),
                    layers=tuple(times))
