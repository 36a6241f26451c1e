"""Shape-only kernels for the meta counter.

On the meta device most operators are cheap C++ shape functions, but some are torch's Python
decompositions (batch norm, bilinear resize, the element-wise activations, broadcasting add/mul,
mean), which cost 0.1-7 ms per call and import `torch._dynamo` on first use. For those the counter
builds the output tensors here from shapes alone. Each kernel returns None when it does not apply
(a non-meta or integer input, unusual arguments); the caller then runs the operator's own kernel,
so errors (bad shapes) still come from torch. `tests/hwbench/counting` checks every kernel against
torch's own on the same inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Kernel = Callable[[tuple, dict], Any]

# Element-wise operators whose output has the input's shape and dtype (floating inputs), with any
# extra arguments scalars. In-place variants return their first argument, as torch does.
UNARY = ("relu", "relu6", "hardswish", "hardsigmoid", "sigmoid", "tanh", "silu", "gelu", "hardtanh",
         "leaky_relu", "elu", "mish", "softplus", "neg", "exp", "sqrt", "rsqrt", "reciprocal", "abs",
         "clamp", "clamp_min", "clamp_max")
BINARY = ("add", "sub", "mul", "div")


def _float_meta(t: Any) -> bool:
    import torch

    return isinstance(t, torch.Tensor) and t.is_meta and t.is_floating_point()


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, (int, float, bool, str))


def _empty(shape: Any, like: Any, *, memory_format: Any = None) -> Any:
    """A new meta tensor (torch.empty is a C++ kernel; empty_like / new_empty are Python refs on meta)."""
    import torch

    return torch.empty(tuple(shape), dtype=like.dtype, device=like.device,
                       memory_format=memory_format or torch.contiguous_format)


def _like(x: Any) -> Any:
    """`torch.empty_like(x)` (preserving its memory format) without the Python ref where it can."""
    import torch

    if x.is_contiguous():
        return _empty(x.shape, x)
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
        return _empty(x.shape, x, memory_format=torch.channels_last)
    return torch.empty_like(x)


def batch_norm(args: tuple, kwargs: dict) -> Any:
    """native_batch_norm(x, w, b, running_mean, running_var, training, momentum, eps): output like
    the input, per-channel saved mean and inverse std (float32 for half inputs)."""
    import torch

    x = args[0]
    if kwargs or not _float_meta(x) or x.dim() < 2:
        return None
    stat = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    c = x.shape[1]
    return _like(x), torch.empty((c,), dtype=stat, device=x.device), torch.empty((c,), dtype=stat, device=x.device)


def resize(args: tuple, kwargs: dict) -> Any:
    """upsample_{bilinear,nearest}2d.default(x, output_size, ...): (N, C, *output_size)."""
    import torch

    x, size = args[0], args[1] if len(args) > 1 else None
    if kwargs or not _float_meta(x) or x.dim() != 4 or not _sizes(size, 2) or not all(_scalar(a) for a in args[2:]):
        return None
    fmt = torch.channels_last if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last) \
        else torch.contiguous_format
    return _empty((*x.shape[:2], *size), x, memory_format=fmt)


def _sizes(v: Any, n: int) -> bool:
    return isinstance(v, (list, tuple)) and len(v) == n and all(isinstance(s, int) and s > 0 for s in v)


def unary(args: tuple, kwargs: dict) -> Any:
    x = args[0]
    if not _float_meta(x) or not all(_scalar(a) for a in (*args[1:], *kwargs.values())):
        return None
    return _like(x)


def unary_inplace(args: tuple, kwargs: dict) -> Any:
    x = args[0]
    if not _float_meta(x) or not all(_scalar(a) for a in (*args[1:], *kwargs.values())):
        return None
    return x


def broadcast_shapes(a: tuple, b: tuple) -> tuple | None:
    """numpy/torch broadcasting of two shapes, or None when they do not broadcast."""
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    out = []
    for x, y in zip(a, b, strict=True):
        if x != y and x != 1 and y != 1:
            return None
        out.append(y if x == 1 else x)
    return tuple(out)


def convolution(args: tuple, kwargs: dict) -> Any:
    """convolution(x, w, bias, stride, padding, dilation, transposed, output_padding, groups) for
    plain (not transposed) 2-D convolutions of contiguous inputs: (N, C_out, H_out, W_out) with
    H_out = (H + 2p - d (k - 1) - 1) // s + 1. Anything else (or a shape torch rejects) -> None."""
    if kwargs or len(args) != 9:
        return None
    x, w, bias, stride, padding, dilation, transposed, _, groups = args
    if transposed or not (_float_meta(x) and _float_meta(w) and x.dtype == w.dtype) or x.dim() != 4 or w.dim() != 4:
        return None
    if not (x.is_contiguous() and w.is_contiguous()) or not isinstance(groups, int) or groups < 1:
        return None
    if bias is not None and not (_float_meta(bias) and bias.dtype == x.dtype and tuple(bias.shape) == (w.shape[0],)):
        return None
    if w.shape[1] * groups != x.shape[1] or w.shape[0] % groups:
        return None
    if not all(isinstance(v, (list, tuple)) and len(v) == 2 for v in (stride, padding, dilation)):
        return None
    out = []
    for size, k, s, p, d in zip(x.shape[2:], w.shape[2:], stride, padding, dilation, strict=True):
        if s < 1 or p < 0 or d < 1 or size + 2 * p < d * (k - 1) + 1:
            return None
        out.append((size + 2 * p - d * (k - 1) - 1) // s + 1)
    return _empty((x.shape[0], w.shape[0], *out), x)


def _pair(v: Any, empty: Any = None) -> tuple[int, int] | None:
    if isinstance(v, int):
        return v, v
    if isinstance(v, (list, tuple)) and all(isinstance(x, int) for x in v):
        if len(v) == 0 and empty is not None:
            return empty
        if len(v) in (1, 2):
            return (v[0], v[-1])
    return None


def _pool_size(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """ATen's pooling_output_shape."""
    out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def max_pool2d(args: tuple, kwargs: dict) -> Any:
    """max_pool2d_with_indices(x, kernel_size, stride, padding, dilation, ceil_mode) of a contiguous
    (N, C, H, W) input: (output, int64 indices) of the pooled shape."""
    import torch

    if kwargs or not 2 <= len(args) <= 6:
        return None
    x = args[0]
    if not _float_meta(x) or x.dim() != 4 or not x.is_contiguous():
        return None
    k = _pair(args[1])
    s = _pair(args[2] if len(args) > 2 else [], empty=k)
    p = _pair(args[3] if len(args) > 3 else 0)
    d = _pair(args[4] if len(args) > 4 else 1)
    ceil_mode = args[5] if len(args) > 5 else False
    if k is None or s is None or p is None or d is None or not isinstance(ceil_mode, bool):
        return None
    if min(*k, *s, *d) < 1 or min(p) < 0 or p[0] > k[0] // 2 or p[1] > k[1] // 2:
        return None
    out = [_pool_size(x.shape[2 + i], k[i], s[i], p[i], d[i], ceil_mode) for i in range(2)]
    if min(out) < 1:
        return None
    shape = (*x.shape[:2], *out)
    return _empty(shape, x), torch.empty(shape, dtype=torch.int64, device=x.device)


def _broadcast(args: tuple, kwargs: dict) -> tuple | None:
    import torch

    if len(args) != 2 or any(k != "alpha" or not _scalar(v) for k, v in kwargs.items()):
        return None
    a, b = args
    if not _float_meta(a):
        return None
    if isinstance(b, torch.Tensor):
        if not (b.is_meta and b.dtype == a.dtype):
            return None
        return broadcast_shapes(a.shape, b.shape)  # None: torch raises its own error
    return tuple(a.shape) if isinstance(b, (int, float)) and not isinstance(b, bool) else None


def binary(args: tuple, kwargs: dict) -> Any:
    """add/sub/mul/div of two same-dtype float meta tensors (broadcast) or a tensor and a number."""
    shape = _broadcast(args, kwargs)
    if shape is None:
        return None
    a = args[0]
    return _like(a) if shape == tuple(a.shape) else _empty(shape, a)


def binary_inplace(args: tuple, kwargs: dict) -> Any:
    shape = _broadcast(args, kwargs)
    return args[0] if shape is not None and shape == tuple(args[0].shape) else None


def mean(args: tuple, kwargs: dict) -> Any:
    """mean.dim(x, dim, keepdim=False): the reduced shape (no dtype argument)."""
    x = args[0]
    if not _float_meta(x) or len(args) > 3 or set(kwargs) - {"keepdim"}:
        return None
    dims = args[1] if len(args) > 1 else None
    keep = kwargs.get("keepdim", args[2] if len(args) > 2 else False)
    nd = x.dim()
    if dims is None or (isinstance(dims, (list, tuple)) and len(dims) == 0):
        dims = range(nd)
    if not isinstance(dims, (list, tuple, range)) or not all(isinstance(d, int) and -nd <= d < nd for d in dims):
        return None
    reduced = {d % nd for d in dims}
    if len(reduced) != len(dims) or not isinstance(keep, bool):
        return None
    shape = [1 if i in reduced else s for i, s in enumerate(x.shape) if keep or i not in reduced]
    return _empty(shape, x)


def cat(args: tuple, kwargs: dict) -> Any:
    """cat(tensors, dim=0) of same-dtype float meta tensors that agree in every other dimension."""
    import torch

    ts = args[0] if args else None
    dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
    if set(kwargs) - {"dim"} or not isinstance(ts, (list, tuple)) or not ts or not isinstance(dim, int):
        return None
    first = ts[0]
    if not all(_float_meta(t) and t.dtype == first.dtype and t.dim() == first.dim() for t in ts) or first.dim() == 0:
        return None
    nd = first.dim()
    if not -nd <= dim < nd:
        return None
    dim %= nd
    if any(t.shape[:dim] != first.shape[:dim] or t.shape[dim + 1:] != first.shape[dim + 1:] for t in ts):
        return None
    shape = (*first.shape[:dim], sum(t.shape[dim] for t in ts), *first.shape[dim + 1:])
    channels_last = nd == 4 and all(not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last)
                                    for t in ts)
    return _empty(shape, first, memory_format=torch.channels_last if channels_last else None)


def _matmul_shape(a: Any, b: Any, batched: bool) -> tuple | None:
    nd = 3 if batched else 2
    if not (_float_meta(a) and _float_meta(b) and a.dtype == b.dtype and a.dim() == nd == b.dim()):
        return None
    if a.shape[-1] != b.shape[-2] or (batched and a.shape[0] != b.shape[0]):
        return None
    return (*a.shape[:-1], b.shape[-1])


def matmul(batched: bool) -> Kernel:
    """mm(a (M, K), b (K, N)) -> (M, N); bmm(a (B, M, K), b (B, K, N)) -> (B, M, N)."""
    def kernel(args: tuple, kwargs: dict) -> Any:
        if kwargs or len(args) != 2:
            return None
        shape = _matmul_shape(args[0], args[1], batched)
        return None if shape is None else _empty(shape, args[0])
    return kernel


def matmul_add(batched: bool) -> Kernel:
    """addmm(bias, a, b, beta=, alpha=) / baddbmm: the product's shape; the bias must broadcast to it."""
    def kernel(args: tuple, kwargs: dict) -> Any:
        if len(args) != 3 or set(kwargs) - {"beta", "alpha"} or not all(_scalar(v) for v in kwargs.values()):
            return None
        bias, a, b = args
        shape = _matmul_shape(a, b, batched)
        if shape is None or not _float_meta(bias) or bias.dtype != a.dtype:
            return None
        return _empty(shape, a) if broadcast_shapes(bias.shape, shape) == shape else None
    return kernel


def kernels() -> dict:
    """OpOverload -> shape-only kernel, for the overloads that exist in this torch."""
    import torch

    aten = torch.ops.aten
    table: dict = {aten.native_batch_norm.default: batch_norm,
                   aten.convolution.default: convolution,
                   aten.upsample_bilinear2d.default: resize,
                   aten.upsample_nearest2d.default: resize,
                   aten.mean.dim: mean,
                   aten.cat.default: cat,
                   aten.max_pool2d_with_indices.default: max_pool2d,
                   aten.mm.default: matmul(batched=False),
                   aten.bmm.default: matmul(batched=True),
                   aten.addmm.default: matmul_add(batched=False),
                   aten.baddbmm.default: matmul_add(batched=True)}
    for name in UNARY:
        for op, kernel in ((name, unary), (f"{name}_", unary_inplace)):
            packet = getattr(aten, op, None)
            if packet is not None and "default" in packet.overloads():
                table[packet.default] = kernel
    for name in BINARY:
        for op, kernel in ((name, binary), (f"{name}_", binary_inplace)):
            packet = getattr(aten, op)
            for overload in ("Tensor", "Scalar"):
                if overload in packet.overloads():
                    table[getattr(packet, overload)] = kernel
    return table
