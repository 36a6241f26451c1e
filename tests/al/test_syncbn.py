"""`al.syncbn` in one process: the CPU SyncBatchNorm against a line-by-line reference of its maths (bit for
bit: the faster buffer handling must not move a single bit) and against torch's BatchNorm (to rounding)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from al.syncbn import CpuSyncBatchNorm, sync_batchnorm


class _Reference(torch.autograd.Function):
    """The float64-statistics BatchNorm written as plainly as possible (the previous implementation)."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, eps, factor):  # noqa: ANN001
        dims = [0, *range(2, x.dim())]
        c = x.shape[1]
        count = torch.tensor(float(x.numel() // c), dtype=torch.float64)
        mean = x.sum(dims, dtype=torch.float64) / count
        var = ((x * x).sum(dims, dtype=torch.float64) / count - mean * mean).clamp(min=0)
        invstd = (var + eps).rsqrt()
        if running_mean is not None:
            unbiased = var * count / (count - 1).clamp(min=1)
            running_mean.mul_(1 - factor).add_(mean.to(running_mean.dtype), alpha=factor)
            running_var.mul_(1 - factor).add_(unbiased.to(running_var.dtype), alpha=factor)
        shape = (1, c) + (1,) * (x.dim() - 2)
        xhat = (x - mean.to(x.dtype).view(shape)) * invstd.to(x.dtype).view(shape)
        ctx.save_for_backward(xhat, invstd.to(x.dtype).view(shape), weight)
        ctx.count = float(count)
        return xhat if weight is None else xhat * weight.view(shape) + bias.view(shape)

    @staticmethod
    def backward(ctx, g):  # noqa: ANN001
        xhat, invstd, weight = ctx.saved_tensors
        dims = [0, *range(2, g.dim())]
        shape = (1, g.shape[1]) + (1,) * (g.dim() - 2)
        sum_g = g.sum(dims, dtype=torch.float64)
        sum_gx = (g * xhat).sum(dims, dtype=torch.float64)
        mg = (sum_g / ctx.count).to(g.dtype).view(shape)
        mgx = (sum_gx / ctx.count).to(g.dtype).view(shape)
        scale = invstd if weight is None else invstd * weight.view(shape)
        gx = (g - mg - xhat * mgx) * scale
        return gx, None if weight is None else sum_gx.to(g.dtype), None if weight is None else sum_g.to(g.dtype), \
            None, None, None, None


def _run(layer: nn.Module, x: torch.Tensor, g: torch.Tensor, reference: bool) -> list[torch.Tensor]:
    x = x.clone().requires_grad_(True)
    if reference:
        layer.num_batches_tracked.add_(1)
        factor = 1.0 / float(layer.num_batches_tracked) if layer.momentum is None else layer.momentum
        y = _Reference.apply(x, layer.weight, layer.bias, layer.running_mean, layer.running_var, layer.eps, factor)
    else:
        y = layer(x)
    y.backward(g)
    grads = [x.grad] + ([layer.weight.grad, layer.bias.grad] if layer.affine else [])
    return [y.detach(), *grads, layer.running_mean.clone(), layer.running_var.clone()]


@pytest.mark.parametrize("shape", [(5, 3), (4, 6, 7), (3, 4, 5, 6), (2, 16, 9, 11)])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_cpu_syncbn_is_the_reference_bit_for_bit(shape, affine, momentum) -> None:
    outs = []
    for reference in (False, True):
        layer = CpuSyncBatchNorm(shape[1], affine=affine, momentum=momentum)
        if affine:
            with torch.no_grad():
                layer.weight.copy_(torch.linspace(0.5, 1.5, shape[1]))
                layer.bias.copy_(torch.linspace(-0.2, 0.3, shape[1]))
        per_step = []
        step_gen = torch.Generator().manual_seed(11)
        for _ in range(3):  # running statistics accumulate over steps
            x = torch.randn(shape, generator=step_gen) * 3 + 1
            g = torch.randn(shape, generator=step_gen)
            if affine:
                layer.weight.grad = layer.bias.grad = None
            per_step += _run(layer, x, g, reference)
        outs.append(per_step)
    ours, ref = outs
    assert len(ours) == len(ref)
    assert all(torch.equal(a, b) for a, b in zip(ours, ref, strict=True))


def test_cpu_syncbn_matches_torch_batchnorm() -> None:
    torch.manual_seed(0)
    ref = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 1))
    ours = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 1))
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(6, 3, 10, 12)
    ref(x).square().mean().backward()
    with sync_batchnorm([ours], torch.device("cpu")) as n:
        assert n == 1 and isinstance(ours[1], CpuSyncBatchNorm)
        ours(x).square().mean().backward()
    assert isinstance(ours[1], nn.BatchNorm2d) and not isinstance(ours[1], CpuSyncBatchNorm)  # swapped back
    for (name, a), b in zip(ref.state_dict().items(), ours.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float(), rtol=1e-5, atol=1e-6), name
    for a, b in zip(ref.parameters(), ours.parameters(), strict=True):
        assert torch.allclose(a.grad, b.grad, rtol=1e-4, atol=1e-6)
