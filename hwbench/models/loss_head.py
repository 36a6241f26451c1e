"""The LLAL loss-prediction head (Learning Loss for Active Learning; Yoo & Kweon, CVPR 2019).

A model part (it runs on the device inside `hwbench export --score llal`), so it lives with the
models; `al.strategies.learning_loss` trains it jointly with the task model and selects with it.
State-dict keys: `branches.<i>.*` and `out.*` (unchanged from its first home in al).

Architecture:
- classification (reference): per tap global average pool -> FC(C, 128) -> ReLU; concatenate the
  four 128-d vectors -> Linear(512, 1). Pooling is adaptive, so any input size works.
- segmentation (seed paper: "dense layers replaced by convolutions, global pooling omitted"): per
  tap a 1x1 conv (C -> 128) -> BN -> ReLU at the tap's own resolution; the concatenation -> 1x1
  conv -> 1 channel gives a per-pixel loss map at the finest tap resolution, averaged per image.
  The 1x1 conv after the concatenation is one 1x1 conv per tap whose outputs are bilinearly
  upsampled and summed: the same linear map, without building the 4x128-channel concatenation.

Loss: margin ranking loss on pairs (i, B-1-i): target +1 where the first sample's true loss is
larger, else -1; loss = mean(clamp(xi - target * (pred_i - pred_j), 0)), xi = 1. Training detaches
the features fed to the head after epoch round(stop_grad_fraction * epochs) (`stop_gradient`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from hwbench.errors import UserError, unknown

TASKS = ("classification", "segmentation")


def stop_gradient(epoch: int, epochs: int, fraction: float) -> bool:
    """True when the features fed to the loss module are detached in 0-based `epoch` of `epochs`.

    Detached after epoch round(fraction · epochs), as the reference (`epoch > 120` of 200).
    """
    return epoch > math.floor(fraction * epochs + 0.5)


def margin_ranking_loss(pred: torch.Tensor, target: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """LLAL pairwise loss: pair i with B−1−i (first half vs reversed second half).

    pred, target: (B,). With B odd the middle sample is unused; B < 2 gives 0 (still differentiable).
    """
    pred, target = pred.reshape(-1), target.reshape(-1).detach()
    half = pred.shape[0] // 2
    if half == 0:
        return pred.sum() * 0.0
    pred_i, pred_j = pred[:half], pred.flip(0)[:half]
    true_i, true_j = target[:half], target.flip(0)[:half]
    sign = torch.where(true_i > true_j, 1.0, -1.0).to(pred.dtype)   # +1 where the first is larger
    return torch.clamp(margin - sign * (pred_i - pred_j), min=0).mean()


class LossPredictionModule(nn.Module):
    """Predicts one loss per sample from the model's four feature taps (see module docstring).

    forward(feats: dict tap -> (N, C, h, w) or (N, C)) -> (N,).
    """

    def __init__(self, task: str, feature_taps: Sequence[str], feature_channels: dict[str, int],
                 hidden: int = 128, *, margin: float = 1.0, weight: float = 1.0,
                 stop_grad_fraction: float = 0.6) -> None:
        super().__init__()
        if task not in TASKS:
            raise unknown("task", task, TASKS)
        missing = [t for t in feature_taps if t not in feature_channels]
        if missing or not feature_taps:
            raise UserError(f"feature_channels lacks taps {missing}; the model must declare every tap "
                            f"of feature_taps={tuple(feature_taps)}")
        if not 0.0 <= stop_grad_fraction <= 1.0:
            raise UserError(f"stop_grad_fraction must be in [0, 1], got {stop_grad_fraction}")
        self.task = task
        self.feature_taps = tuple(feature_taps)
        self.hidden = int(hidden)
        self.margin = float(margin)                     # ξ
        self.weight = float(weight)                     # λ
        self.stop_grad_fraction = float(stop_grad_fraction)
        chans = [int(feature_channels[t]) for t in self.feature_taps]
        if task == "classification":
            self.branches = nn.ModuleList(nn.Linear(c, hidden) for c in chans)
            self.out = nn.Linear(hidden * len(chans), 1)
        else:
            self.branches = nn.ModuleList(
                nn.Sequential(nn.Conv2d(c, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True))
                for c in chans)
            # the 1×1 conv over the concatenation, split per tap (bias only once)
            self.out = nn.ModuleList(nn.Conv2d(hidden, 1, 1, bias=(i == 0)) for i in range(len(chans)))

    def forward(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        xs = [feats[t] for t in self.feature_taps]
        if self.task == "classification":
            h = [F.relu(fc(x.flatten(2).mean(2) if x.dim() == 4 else x))       # GAP -> FC -> ReLU, (N, hidden)
                 for fc, x in zip(self.branches, xs, strict=True)]
            return self.out(torch.cat(h, dim=1)).squeeze(1)                     # (N,)
        size = max((x.shape[-2:] for x in xs), key=lambda s: s[0] * s[1])      # finest tap resolution
        total = None
        for branch, out, x in zip(self.branches, self.out, xs, strict=True):
            y = out(branch(x))                                                 # (N, 1, h_i, w_i)
            if y.shape[-2:] != size:
                y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
            total = y if total is None else total + y
        return total.flatten(1).mean(1)                                         # (N,) per-image mean

    def detaches(self, epoch: int, epochs: int) -> bool:
        """Whether training detaches the features fed to this module in 0-based `epoch` (`stop_gradient`)."""
        return stop_gradient(epoch, epochs, self.stop_grad_fraction)

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Margin ranking loss of predicted vs true per-sample losses (target is detached)."""
        return margin_ranking_loss(pred, target, self.margin)
