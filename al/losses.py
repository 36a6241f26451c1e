"""Losses and metrics of the task models.

Losses. The task loss is the cross-entropy averaged over all valid pixels of the batch (the
usual DeepLab loss; for classification the batch mean). `per_sample_loss` is the one
definition of a sample's loss (segmentation: mean over its valid pixels, 0 when it has none),
used as the LLAL target and by the True-Loss strategy.

mIoU. Per class IoU = TP / (TP + FP + FN) from the confusion matrix accumulated over the whole
evaluated set; classes absent from both the ground truth and the predictions (TP + FP + FN = 0)
have no IoU and are left out of the mean (reported as None).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def match_size(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Upsample segmentation logits to the label size if a model returns a smaller map."""
    if logits.dim() == 4 and logits.shape[-2:] != target.shape[-2:]:
        logits = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
    return logits


def pixel_ce(logits: torch.Tensor, target: torch.Tensor, ignore_index: int,
             label_smoothing: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-element CE (0 where ignored) and the valid mask; shapes (N,) or (N, H, W). With
    `label_smoothing` e the target is (1 - e) on the label plus e / C on every class."""
    logits = match_size(logits, target).float()
    ce = F.cross_entropy(logits, target, ignore_index=ignore_index, reduction="none", label_smoothing=label_smoothing)
    return ce, target != ignore_index


def per_sample_loss(logits: torch.Tensor, target: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """(N,) loss per sample: classification CE; segmentation mean CE over the image's valid pixels
    (an image without a valid pixel scores 0)."""
    ce, valid = pixel_ce(logits, target, ignore_index)
    if ce.dim() == 1:
        return ce * valid
    return ce.flatten(1).sum(1) / valid.flatten(1).sum(1).clamp(min=1)


def batch_losses(logits: torch.Tensor, target: torch.Tensor, ignore_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch loss = mean over all valid elements, per-sample losses (N,)) from one CE pass."""
    ce, valid = pixel_ce(logits, target, ignore_index)
    batch = ce.sum() / valid.sum().clamp(min=1)
    if ce.dim() == 1:
        return batch, ce
    return batch, ce.flatten(1).sum(1) / valid.flatten(1).sum(1).clamp(min=1)


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                     ignore_index: int = 255) -> torch.Tensor:
    """(K, K) int64 counts, rows = ground truth, columns = prediction; ignored pixels skipped."""
    valid = (target != ignore_index) & (target >= 0) & (target < num_classes)
    flat = target[valid].long() * num_classes + pred[valid].long()
    return torch.bincount(flat, minlength=num_classes * num_classes).view(num_classes, num_classes)


def miou_from_confusion(cm: torch.Tensor | np.ndarray) -> tuple[float, list[float | None]]:
    """(mIoU %, IoU % per class); a class with TP + FP + FN = 0 gets None and is not averaged."""
    cm = torch.as_tensor(cm, dtype=torch.float64).cpu()
    tp = cm.diag()
    union = cm.sum(0) + cm.sum(1) - tp  # TP + FP + FN
    present = union > 0
    iou = torch.where(present, tp / union.clamp(min=1), torch.full_like(tp, float("nan"))) * 100
    miou = float(iou[present].mean()) if bool(present.any()) else float("nan")
    return miou, [float(v) if not math.isnan(v) else None for v in iou.tolist()]
