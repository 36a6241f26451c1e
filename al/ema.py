"""Exponential moving average of a model's weights (`[train] ema_decay`), the training noise reducer of
issue 17: the averaged weights of a short, noisy SGD run vary less from seed to seed than its last iterate.

After update t (1-based) every trainable parameter's average becomes
`avg = d_t * avg + (1 - d_t) * param` with `d_t = min(decay, (1 + t) / (10 + t))` (the warm-up of
TensorFlow's `ExponentialMovingAverage(num_updates=t)`), starting from the initial weights; the
warm-up keeps a 50-step run from averaging in its random init. Only parameters are averaged:
BatchNorm statistics of the averaged weights must be recomputed afterwards (`al.train`'s PreciseBN).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from al.optim import param_groups

__all__ = ["WeightEMA", "ema_decay_at"]


def ema_decay_at(decay: float, update: int) -> float:
    """The decay used by update `update` (1-based): `min(decay, (1 + update) / (10 + update))`."""
    return min(decay, (1.0 + update) / (10.0 + update))


class WeightEMA:
    """Running average of the trainable parameters of `modules` (call `update` after each optimiser step)."""

    def __init__(self, modules: Sequence[nn.Module], decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema decay must be in (0, 1), got {decay}")
        self.decay = float(decay)
        self.updates = 0
        # the parameters the optimiser steps (trainable, each once), whatever their weight-decay group
        self.params: list[nn.Parameter] = [p for g in param_groups(modules, 0.0) for p in g["params"]]
        self.shadow = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def update(self) -> None:
        """Fold the current parameters into the average."""
        self.updates += 1
        w = 1.0 - ema_decay_at(self.decay, self.updates)
        if self.shadow:
            torch._foreach_lerp_(self.shadow, [p.detach() for p in self.params], w)

    @torch.no_grad()
    def copy_to(self) -> None:
        """Overwrite the parameters with their average."""
        for p, s in zip(self.params, self.shadow, strict=True):
            p.copy_(s)
