"""MAC formulas per ATen operator, applied to the shapes the meta counter sees.

What is counted (`ops=`):
- `convlinear` (the paper's "GOPs"): convolution (N x prod(weight shape) x prod(output spatial);
  transposed: input spatial), mm/addmm/bmm/baddbmm (M x K x N per matrix). Bias adds are not counted.
- `all` adds fvcore's default handles: batch norm (eval: 2 per element with affine, else 1;
  training: 5 / 4), group/layer norm (5 per element with affine, else 4), nearest upsampling
  (1 per output element), bilinear upsampling and grid sampling (4 per output element), adaptive
  average pooling (1 per input element; `mean` counts the same, because adaptive pooling to 1x1
  reaches the dispatcher as a mean).
- Everything else that does arithmetic (add, mul, activations such as hardswish, max pooling ...)
  is listed as unsupported (operator -> number of calls), fvcore-style: reported, not hidden.
  Pure data movement and metadata ops (view, cat, copy, relu, clamp ...; fvcore's ignore list)
  are neither counted nor reported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

OPS_MODES = ("convlinear", "all")


def numel(shape: Sequence[int]) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _conv_macs(args: tuple, out: Any) -> int:
    # convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups)
    x, w = args[0], args[1]
    transposed = bool(args[6]) if len(args) > 6 else False
    spatial = (x.shape if transposed else out.shape)[2:]
    return int(x.shape[0]) * numel(w.shape) * numel(spatial)


def _mm_macs(args: tuple, out: Any) -> int:          # mm(a (M, K), b (K, N)); bmm(a (B, M, K), b (B, K, N))
    return numel(args[0].shape) * int(args[1].shape[-1])


def _addmm_macs(args: tuple, out: Any) -> int:       # addmm(bias, a, b); baddbmm(bias, a, b)
    return numel(args[1].shape) * int(args[2].shape[-1])


def _batch_norm_macs(args: tuple, out: Any) -> int:
    # native_batch_norm(x, w, b, mean, var, training, ...); _legit_no_training has no flag (eval)
    training = next((a for a in args[1:] if isinstance(a, bool)), False)
    affine = args[1] is not None
    per_elem = (5 if affine else 4) if training else (2 if affine else 1)
    return numel(args[0].shape) * per_elem


def _norm_macs(weight_index: int) -> Callable[[tuple, Any], int]:
    def handle(args: tuple, out: Any) -> int:
        affine = len(args) > weight_index and args[weight_index] is not None
        return numel(args[0].shape) * (5 if affine else 4)
    return handle


def _per_output(scale: int) -> Callable[[tuple, Any], int]:
    def handle(args: tuple, out: Any) -> int:
        first = out[0] if isinstance(out, (tuple, list)) else out
        return scale * numel(first.shape)
    return handle


def _per_input(args: tuple, out: Any) -> int:
    return numel(args[0].shape)


Handle = Callable[[tuple, Any], int]
# ATen overload-packet name -> MAC formula. The paper's "GOPs": convolutions and matrix products.
CONVLINEAR_HANDLES: dict[str, Handle] = {
    "convolution": _conv_macs,
    "_convolution": _conv_macs,
    "mm": _mm_macs,
    "bmm": _mm_macs,
    "addmm": _addmm_macs,
    "baddbmm": _addmm_macs,
}
# Added by ops="all" (fvcore's default handles, same formulas).
EXTRA_HANDLES: dict[str, Handle] = {
    "native_batch_norm": _batch_norm_macs,
    "_native_batch_norm_legit": _batch_norm_macs,
    "_native_batch_norm_legit_no_training": _batch_norm_macs,
    "native_group_norm": _norm_macs(1),
    "native_layer_norm": _norm_macs(2),
    "upsample_nearest2d": _per_output(1),
    "upsample_bilinear2d": _per_output(4),
    "grid_sampler_2d": _per_output(4),
    "_adaptive_avg_pool2d": _per_input,
    "mean": _per_input,
}
# No arithmetic (metadata, allocation, data movement) or ignored by fvcore: neither counted nor
# reported as unsupported. Mirrors fvcore's _IGNORED_OPS at the dispatcher level.
IGNORED_OPS = frozenset({
    "view", "_unsafe_view", "reshape", "t", "transpose", "permute", "expand", "slice", "select",
    "squeeze", "unsqueeze", "unsqueeze_", "alias", "detach", "as_strided", "unbind", "split",
    "split_with_sizes", "chunk", "narrow", "flatten", "contiguous", "clone", "_to_copy", "copy_",
    "to", "lift_fresh", "empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided",
    "zeros", "zeros_like", "new_zeros", "ones", "ones_like", "new_ones", "full", "full_like",
    "new_full", "arange", "cat", "stack", "constant_pad_nd", "relu", "relu_", "clamp", "clamp_",
    "clamp_min", "clamp_min_", "dropout", "eq", "ge", "gt", "floor", "floor_divide", "remainder",
    "index", "index_put_", "gather", "masked_fill", "max", "nonzero", "roll", "bitwise_not",
    "bitwise_and", "fill_", "zero_", "scalar_tensor", "_local_scalar_dense", "sym_size", "sym_stride",
})
# Dispatcher name -> the name fvcore's JIT trace reports, so both counters list the same ops.
FVCORE_NAME = {"max_pool2d_with_indices": "max_pool2d", "max_pool3d_with_indices": "max_pool3d"}
# fvcore operator names of EXTRA_HANDLES (ignored, not "unsupported", when only conv/linear count).
FVCORE_EXTRA = ("aten::batch_norm", "aten::group_norm", "aten::layer_norm", "aten::instance_norm",
                "aten::upsample_nearest2d", "aten::upsample_bilinear2d", "aten::adaptive_avg_pool2d",
                "aten::grid_sampler", "aten::mean")


def handles(ops: str) -> dict[str, Handle]:
    """The MAC formulas in force for `ops` ("convlinear" or "all")."""
    return {**CONVLINEAR_HANDLES, **EXTRA_HANDLES} if ops == "all" else dict(CONVLINEAR_HANDLES)
