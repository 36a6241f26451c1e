"""The pre-training source: a classification set of crops cut from the embedded drives.

Crops come from the `pretrain` split of `synthetic_streets` — drives that are never in the
pool, validation or test split — so pre-training sees no frame (and no label) of the data the
active-learning experiments select from or evaluate on, as ImageNet shares no image with
Cityscapes. Each crop is `crop x crop` pixels of a frame (edge-padded at the borders) centred
on a pixel drawn class-balanced: crop `i` is centred on a pixel of class `i mod K` (classes
absent from the rendered drives are skipped), and its label is that centre pixel's class.
The task — "what is at the centre of this patch" — asks for the local texture, colour and
context a segmentation backbone needs, and the class balance gives the rare classes (person,
pole/sign) as much weight as road and sky.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from al.data.base import CLS_IGNORE_INDEX, normalize
from al.data.drives import render_drive
from al.data.street_paint import CLASS_NAMES

SPLIT = "pretrain"


class DriveCrops(Dataset):
    """Crops `(N, 3, c, c)` (ImageNet-normalised) with centre-class targets `(N,)`; offers `tensors()`."""

    name = "synthetic_streets_crops"
    task = "classification"
    ignore_index = CLS_IGNORE_INDEX
    num_classes = len(CLASS_NAMES)
    class_names = CLASS_NAMES
    augment = False

    def __init__(self, images: torch.Tensor, targets: torch.Tensor) -> None:
        self.images, self.targets = images, targets

    def __len__(self) -> int:
        return len(self.targets)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images, self.targets

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.targets[index])


def make_crops(seed: int, n: int, *, crop: int, frame_size: tuple[int, int], drives: range,
               drive_frames: int) -> DriveCrops:
    """`n` class-balanced crops from `drives` of the `pretrain` split (pure function of the arguments)."""
    frames = [render_drive(seed, SPLIT, d, frame_size, drive_frames) for d in drives]
    images = np.concatenate([f[0] for f in frames])  # (F, H, W, 3) uint8
    labels = np.concatenate([f[1] for f in frames])  # (F, H, W) uint8
    half = crop // 2
    padded = np.pad(images, ((0, 0), (half, crop - half), (half, crop - half), (0, 0)), mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, (crop, crop), axis=(1, 2))  # (F, H+1, W+1, 3, c, c)
    rng = np.random.default_rng([int(seed), 0x9E7A, crop, n])
    flat = labels.reshape(-1)
    present = [k for k in range(len(CLASS_NAMES)) if (flat == k).any()]
    pos_by_class = {k: np.flatnonzero(flat == k) for k in present}
    classes = np.array([present[i % len(present)] for i in range(n)])
    picks = np.empty(n, np.int64)
    for k in present:
        where = classes == k
        picks[where] = pos_by_class[k][rng.integers(0, len(pos_by_class[k]), int(where.sum()))]
    f, rem = np.divmod(picks, labels.shape[1] * labels.shape[2])
    y, x = np.divmod(rem, labels.shape[2])
    cut = np.ascontiguousarray(windows[f, y, x])  # (n, 3, c, c) uint8: pixel (y, x) at the centre
    order = rng.permutation(n)  # no class runs in the stored order
    images_t = normalize(torch.from_numpy(cut[order]).float().div_(255.0))
    return DriveCrops(images_t.contiguous(), torch.from_numpy(classes[order]).long())
