"""The pieces of one distributed training step: the model (+ LLAL module) as one module for
DistributedDataParallel, and a differentiable gather of per-sample values across ranks.

Loss scaling. DDP averages gradients over the W ranks. Rank r holds part of the global batch and
computes `W * (sum of its valid-element losses) / (valid elements of the whole global batch)`, so
the average over ranks is exactly the single-process batch loss (mean over every valid pixel of
the global batch). The LLAL ranking loss pairs samples i and B-1-i of the global batch, so the
ranks gather the predicted and true losses (`gather_rows`, in rank order = batch order) and each
computes the same global ranking loss; the gather's backward sums the ranks' gradients (W copies of
the same gradient), which DDP's average brings back to one.
"""

from __future__ import annotations

import torch
from torch import nn

from al import distributed


class TrainStep(nn.Module):
    """model (+ aux) as one module: forward(x, detach_aux) -> (logits, predicted loss (B,) | None)."""

    def __init__(self, model: nn.Module, aux: nn.Module | None) -> None:
        super().__init__()
        self.model, self.aux = model, aux

    def forward(self, x: torch.Tensor, detach_aux: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.aux is None:
            return self.model(x), None
        logits, feats = self.model(x, return_features=True)
        aux_in = {k: v.detach() for k, v in feats.items()} if detach_aux else feats
        return logits, self.aux(aux_in).float().reshape(-1)


def wrap(step: TrainStep, device: torch.device) -> nn.Module:
    """`step` in DistributedDataParallel when a process group runs, else as is.

    Buffers are not broadcast (SyncBatchNorm keeps them equal; without it they are averaged after
    training). Every parameter must take part in the loss (true of the zoo's models: all feature
    taps lie on the path to the logits).
    """
    if not distributed.active():
        return step
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(step, device_ids=[device.index] if device.type == "cuda" else None,
                                   forward_sync_buffers=False)


class _GatherRows(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, sizes: tuple[int, ...]) -> torch.Tensor:  # noqa: ANN001
        r = distributed.rank()
        ctx.start, ctx.stop = sum(sizes[:r]), sum(sizes[:r + 1])
        full = torch.zeros(sum(sizes), dtype=x.dtype, device=x.device)
        full[ctx.start:ctx.stop] = x.detach()
        return distributed.all_reduce_sum(full)

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # noqa: ANN001
        return distributed.all_reduce_sum(g)[ctx.start:ctx.stop], None


def gather_rows(x: torch.Tensor, sizes: tuple[int, ...]) -> torch.Tensor:
    """(n_r,) per rank -> (sum sizes,) on every rank, concatenated in rank order; differentiable
    (the gradient of rank r's slice is the sum of every rank's gradient for it)."""
    if not distributed.active():
        return x
    return _GatherRows.apply(x, tuple(sizes))


def average_buffers(modules: list[nn.Module]) -> None:
    """Average every floating-point buffer (BatchNorm running statistics) over the ranks."""
    if not distributed.active():
        return
    w = distributed.world_size()
    for root in modules:
        for b in root.buffers():
            if b.is_floating_point():
                b.copy_(distributed.all_reduce_sum(b) / w)
