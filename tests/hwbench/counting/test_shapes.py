"""hwbench.counting.shapes: every shape-only kernel against torch's own meta kernel on the same inputs."""

from __future__ import annotations

import pytest
import torch

from hwbench.counting import shapes

aten = torch.ops.aten


def _m(*shape, dtype=torch.float32, channels_last=False):
    t = torch.empty(shape, device="meta", dtype=dtype)
    return t.contiguous(memory_format=torch.channels_last) if channels_last else t


def _same(ours, ref) -> None:
    """Same structure, shapes, dtypes and strides as torch's own result."""
    if isinstance(ref, (tuple, list)):
        assert isinstance(ours, (tuple, list)) and len(ours) == len(ref)
        for a, b in zip(ours, ref, strict=True):
            _same(a, b)
        return
    assert ours is not None, "kernel declined a case it should handle"
    assert (ours.shape, ours.dtype, ours.device.type) == (ref.shape, ref.dtype, "meta")
    assert ours.stride() == ref.stride()


TABLE = shapes.kernels()

CASES = [
    (aten.native_batch_norm.default, (_m(2, 8, 5, 7), _m(8), _m(8), _m(8), _m(8), False, 0.1, 1e-5)),
    (aten.native_batch_norm.default, (_m(2, 8, 5, 7), None, None, _m(8), _m(8), True, 0.1, 1e-5)),
    (aten.upsample_bilinear2d.default, (_m(2, 3, 5, 7), [11, 13], False)),
    (aten.upsample_bilinear2d.default, (_m(1, 4, 3, 3, channels_last=True), [6, 6], True)),
    (aten.upsample_nearest2d.default, (_m(1, 4, 3, 5), [6, 10])),
    (aten.convolution.default, (_m(2, 6, 17, 19), _m(8, 3, 3, 5), _m(8), [2, 1], [1, 2], [1, 3], False, [0, 0], 2)),
    (aten.convolution.default, (_m(1, 4, 9, 9), _m(4, 1, 3, 3), None, [1, 1], [6, 6], [6, 6], False, [0, 0], 4)),
    (aten.max_pool2d_with_indices.default, (_m(2, 3, 17, 18), [3, 3], [2, 2], [1, 1], [1, 1], False)),
    (aten.max_pool2d_with_indices.default, (_m(2, 3, 17, 18), [3, 2], [2, 2], [1, 0], [1, 1], True)),
    (aten.max_pool2d_with_indices.default, (_m(1, 2, 8, 9), [2])),
    (aten.mean.dim, (_m(2, 3, 5, 7), [-1, -2], True)),
    (aten.mean.dim, (_m(2, 3, 5, 7), [1])),
    (aten.cat.default, ([_m(2, 3, 5, 7), _m(2, 4, 5, 7)], 1)),
    (aten.cat.default, ([_m(2, 3, 5), _m(1, 3, 5)],)),
    (aten.mm.default, (_m(3, 4), _m(4, 5))),
    (aten.bmm.default, (_m(2, 3, 4), _m(2, 4, 5))),
    (aten.addmm.default, (_m(5), _m(3, 4), _m(4, 5))),
    (aten.baddbmm.default, (_m(2, 3, 5), _m(2, 3, 4), _m(2, 4, 5))),
    (aten.add.Tensor, (_m(2, 3, 5, 7), _m(2, 3, 1, 1))),
    (aten.add.Tensor, (_m(3, 1, 7), _m(2, 1, 5, 1))),
    (aten.mul.Tensor, (_m(2, 3, 5, 7, channels_last=True), _m(2, 3, 1, 1))),
    (aten.mul.Tensor, (_m(2, 3), 0.5)),
    (aten.sub.Tensor, (_m(2, 3, dtype=torch.float16), _m(3, dtype=torch.float16))),
    (aten.relu.default, (_m(2, 3, 5, 7, channels_last=True),)),
    (aten.hardsigmoid.default, (_m(2, 3, 1, 1),)),
    (aten.hardtanh.default, (_m(4, 5), 0.0, 6.0)),
    (aten.gelu.default, (_m(4, 5, dtype=torch.bfloat16),)),
]


@pytest.mark.parametrize("func, args", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_kernel_matches_torch(func, args):
    _same(TABLE[func](args, {}), func(*args))


@pytest.mark.parametrize("func", [aten.hardswish_.default, aten.relu_.default, aten.add_.Tensor, aten.mul_.Tensor])
def test_inplace_kernels_return_their_input(func):
    x = _m(2, 3, 4, 4)
    args = (x,) if "Tensor" not in str(func) else (x, _m(1, 3, 1, 1))
    assert TABLE[func](args, {}) is x is func(*args)


@pytest.mark.parametrize("func, args", [
    (aten.add.Tensor, (_m(2, 3), _m(4, 3))),                          # does not broadcast: torch raises
    (aten.add_.Tensor, (_m(2, 1), _m(2, 3))),                         # in-place result would need to grow
    (aten.add.Tensor, (_m(2, 3), _m(2, 3, dtype=torch.float64))),     # type promotion: left to torch
    (aten.add.Tensor, (torch.empty(2, 3), torch.empty(2, 3))),        # real tensors
    (aten.relu.default, (_m(2, 3, dtype=torch.int64),)),              # integer input
    (aten.convolution.default, (_m(1, 4, 2, 2), _m(4, 4, 3, 3), None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1)),
    (aten.convolution.default, (_m(1, 4, 5, 5), _m(4, 3, 3, 3), None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1)),
    (aten.convolution.default, (_m(1, 4, 5, 5), _m(4, 3, 3, 3), None, [1, 1], [0, 0], [1, 1], True, [0, 0], 1)),
    (aten.max_pool2d_with_indices.default, (_m(1, 2, 8, 8), [2, 2], [2, 2], [2, 2])),  # padding > kernel / 2
    (aten.mm.default, (_m(3, 4), _m(5, 6))),
    (aten.cat.default, ([_m(2, 3), _m(2, 4)], 0)),
    (aten.mean.dim, (_m(2, 3), [0, 0])),
])
def test_kernels_decline_what_torch_must_handle(func, args):
    """Bad shapes, promotions and unusual layouts are left to torch (its own result or error)."""
    assert TABLE[func](args, {}) is None


def test_broadcast_shapes_agrees_with_torch():
    pairs = [((2, 1, 5), (3, 1)), ((), (4, 2)), ((1,), (7, 1, 1)), ((8, 1, 6, 1), (7, 1, 5))]
    for a, b in pairs:
        assert shapes.broadcast_shapes(a, b) == tuple(torch.broadcast_shapes(a, b))
    assert shapes.broadcast_shapes((2, 3), (4, 3)) is None
