"""SyncBatchNorm for distributed training: batch statistics over the whole global batch.

On CUDA this is `torch.nn.SyncBatchNorm`. torch's version refuses CPU tensors, so CPU runs (gloo)
use `CpuSyncBatchNorm`: per-channel sums and sums of squares (float64) all-reduced over the ranks
in the forward pass, the two gradient sums all-reduced in the backward pass — the same maths as
one BatchNorm over the concatenated batch (Ioffe & Szegedy's backward with global sums). Its
float64 sums make the statistics (nearly always bit-)independent of how the batch is split, so CPU
training uses it in one process as well: torch's float32 BatchNorm and this one differ in the last
bits, and tiny-batch training amplifies such differences into different selections.

`sync_batchnorm(modules, device)` swaps the layers in place for the duration of a `with` block;
the new layers share the parameters and buffers of the old ones, so what training changes stays
in the caller's model, whose own layers come back on exit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from al import distributed


class _SyncBN(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, eps: float, factor: float):  # noqa: ANN001
        dims = [0, *range(2, x.dim())]
        c = x.shape[1]
        sum_x = x.sum(dims, dtype=torch.float64)
        sum_xx = torch.mul(x, x).sum(dims, dtype=torch.float64)
        if distributed.active():
            stats = distributed.all_reduce_sum(torch.cat([
                sum_x, sum_xx, torch.tensor([float(x.numel() // c)], dtype=torch.float64)]))  # (2C + 1,)
            sum_x, sum_xx, count = stats[:c], stats[c:2 * c], stats[-1]
        else:  # one process: the same values without the concatenation and the all-reduce's copy
            count = torch.tensor(float(x.numel() // c), dtype=torch.float64)
        mean = sum_x / count
        var = (sum_xx / count - mean * mean).clamp_(min=0)                  # biased, float64
        invstd = (var + eps).rsqrt_()
        if running_mean is not None:
            with torch.no_grad():
                unbiased = var * count / (count - 1).clamp(min=1)
                running_mean.mul_(1 - factor).add_(mean.to(running_mean.dtype), alpha=factor)
                running_var.mul_(1 - factor).add_(unbiased.to(running_var.dtype), alpha=factor)
        shape = (1, c) + (1,) * (x.dim() - 2)
        mean32, invstd32 = mean.to(x.dtype).view(shape), invstd.to(x.dtype).view(shape)
        xhat = torch.sub(x, mean32).mul_(invstd32)                           # (x - mean) * invstd, one buffer
        ctx.save_for_backward(xhat, invstd32, weight)
        ctx.count = float(count)
        if weight is None:
            return xhat
        return torch.mul(xhat, weight.view(shape)).add_(bias.view(shape))

    @staticmethod
    def backward(ctx, g):  # noqa: ANN001
        xhat, invstd, weight = ctx.saved_tensors
        dims = [0, *range(2, g.dim())]
        c = g.shape[1]
        sum_g = g.sum(dims, dtype=torch.float64)
        sum_gx = torch.mul(g, xhat).sum(dims, dtype=torch.float64)
        if distributed.active():
            glob = distributed.all_reduce_sum(torch.cat([sum_g, sum_gx]))
            glob_g, glob_gx = glob[:c], glob[c:]
        else:
            glob_g, glob_gx = sum_g, sum_gx
        shape = (1, c) + (1,) * (g.dim() - 2)
        mg = (glob_g / ctx.count).to(g.dtype).view(shape)
        mgx = (glob_gx / ctx.count).to(g.dtype).view(shape)
        scale = invstd if weight is None else invstd * weight.view(shape)
        gx = torch.sub(g, mg).sub_(torch.mul(xhat, mgx)).mul_(scale)          # (g - mg - xhat * mgx) * scale
        gw = sum_gx.to(g.dtype) if weight is not None else None
        gb = sum_g.to(g.dtype) if weight is not None else None
        return gx, gw, gb, None, None, None, None


class CpuSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training-mode statistics span every rank's part of the batch (any backend),
    from float64 sums — in one process too, so that 1 and W processes normalise identically."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {x.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        factor = 0.0
        if self.track_running_stats:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        rm = self.running_mean if self.track_running_stats else None
        rv = self.running_var if self.track_running_stats else None
        return _SyncBN.apply(x, self.weight, self.bias, rm, rv, self.eps, factor)


def _replacement(bn: nn.modules.batchnorm._BatchNorm, cuda: bool) -> nn.Module:
    cls = nn.SyncBatchNorm if cuda else CpuSyncBatchNorm
    new = cls(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
    if bn.affine:
        new.weight, new.bias = bn.weight, bn.bias                             # shared Parameters
    if bn.track_running_stats:
        new.running_mean, new.running_var = bn.running_mean, bn.running_var   # shared buffers
        new.num_batches_tracked = bn.num_batches_tracked
    new.train(bn.training)
    return new


@contextlib.contextmanager
def sync_batchnorm(modules: Sequence[nn.Module], device: torch.device) -> Iterator[int]:
    """Swap every BatchNorm of `modules` for a synchronised one until exit; yields how many."""
    cuda = torch.device(device).type == "cuda"
    swapped: list[tuple[nn.Module, str, nn.Module]] = []
    for root in modules:
        for parent in list(root.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(
                        child, (nn.SyncBatchNorm, CpuSyncBatchNorm)):
                    parent._modules[name] = _replacement(child, cuda)
                    swapped.append((parent, name, child))
    try:
        yield len(swapped)
    finally:
        for parent, name, child in reversed(swapped):
            child.train(parent._modules[name].training)
            parent._modules[name] = child

