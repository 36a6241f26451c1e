"""Augmentations on tensors with torch ops (no torchvision).

Segmentation train (DeepLab recipe): random scale in `scale_range` (bilinear image, nearest
label), pad to `crop_size` (image with 0 = the ImageNet mean after normalisation, label with
ignore), random crop, horizontal flip with p = 0.5. Segmentation eval: no augmentation,
optional resize to `size`. Classification train: random-resized crop (area 8-100 %, aspect
3/4-4/3) + flip; eval: resize the short side to size*256/224, centre crop.

Randomness comes from torch's global generator: deterministic after `torch.manual_seed` with
`num_workers=0`, and per worker (seeded by the DataLoader's generator) otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from al.data.base import normalize


def image_tensor(img: np.ndarray) -> torch.Tensor:
    """uint8 `(H, W, 3)` -> normalised float32 `(3, H, W)`."""
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div_(255.0)
    return normalize(x)


def _resize_pair(img: torch.Tensor, lab: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    img = F.interpolate(img[None], size=size, mode="bilinear", align_corners=False)[0]  # (3, h, w)
    lab = F.interpolate(lab[None, None].float(), size=size, mode="nearest")[0, 0].long()  # (h, w)
    return img, lab


def _uniform(lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand(()))


def _randint(n: int) -> int:
    """Uniform int in [0, n)."""
    return int(torch.randint(n, ())) if n > 1 else 0


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return (size, size)
    h, w = size
    return (int(h), int(w))


class SegTrain:
    """DeepLab training augmentation: scale, pad, crop, flip."""

    def __init__(self, crop_size: int | Sequence[int], scale_range: Sequence[float] = (0.5, 2.0),
                 ignore_index: int = 255, flip: bool = True) -> None:
        self.crop_size = _pair(crop_size)
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.ignore_index = ignore_index
        self.flip = flip

    def __call__(self, img: np.ndarray, lab: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = image_tensor(img)  # (3, H, W)
        y = torch.from_numpy(np.ascontiguousarray(lab)).long()  # (H, W)
        s = _uniform(*self.scale_range)
        h, w = y.shape
        size = (max(1, round(h * s)), max(1, round(w * s)))
        if size != (h, w):
            x, y = _resize_pair(x, y, size)
        ch, cw = self.crop_size
        ph, pw = max(ch - size[0], 0), max(cw - size[1], 0)
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), value=0.0)
            y = F.pad(y, (0, pw, 0, ph), value=self.ignore_index)
        top, left = _randint(y.shape[0] - ch + 1), _randint(y.shape[1] - cw + 1)
        x, y = x[:, top:top + ch, left:left + cw], y[top:top + ch, left:left + cw]
        if self.flip and float(torch.rand(())) < 0.5:
            x, y = x.flip(-1), y.flip(-1)
        return x.contiguous(), y.contiguous()


class SegEval:
    """Evaluation: no augmentation; optional resize to `size` (H, W)."""

    def __init__(self, size: int | Sequence[int] | None = None) -> None:
        self.size = None if size is None else _pair(size)

    def __call__(self, img: np.ndarray, lab: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = image_tensor(img)
        y = torch.from_numpy(np.ascontiguousarray(lab)).long()
        if self.size is not None and tuple(y.shape) != self.size:
            x, y = _resize_pair(x, y, self.size)
        return x, y


class ClsTrain:
    """Random-resized crop to `size` x `size` (area 8-100 %, aspect 3/4-4/3) + horizontal flip."""

    def __init__(self, size: int = 224, scale: Sequence[float] = (0.08, 1.0),
                 ratio: Sequence[float] = (3 / 4, 4 / 3)) -> None:
        self.size, self.scale, self.ratio = int(size), tuple(scale), tuple(ratio)

    def __call__(self, img: np.ndarray) -> torch.Tensor:
        x = image_tensor(img)  # (3, H, W)
        h, w = x.shape[1:]
        area = h * w
        ch, cw = h, w  # fallback: the whole image
        for _ in range(10):
            a = area * _uniform(*self.scale)
            r = math.exp(_uniform(math.log(self.ratio[0]), math.log(self.ratio[1])))
            tw, th = round(math.sqrt(a * r)), round(math.sqrt(a / r))
            if 0 < tw <= w and 0 < th <= h:
                ch, cw = th, tw
                break
        top, left = _randint(h - ch + 1), _randint(w - cw + 1)
        x = x[:, top:top + ch, left:left + cw]
        x = F.interpolate(x[None], size=(self.size, self.size), mode="bilinear", align_corners=False)[0]
        if float(torch.rand(())) < 0.5:
            x = x.flip(-1)
        return x.contiguous()


class ClsEval:
    """Resize the short side to `size * 256 / 224`, centre crop `size` x `size`; `crop=False`: resize the
    whole image to `size` x `size` (small images, whose border is part of the object)."""

    def __init__(self, size: int = 224, crop: bool = True) -> None:
        self.size = int(size)
        self.crop = bool(crop)
        self.resize = round(self.size * 256 / 224)

    def __call__(self, img: np.ndarray) -> torch.Tensor:
        x = image_tensor(img)
        h, w = x.shape[1:]
        if not self.crop:
            if (h, w) == (self.size, self.size):
                return x
            return F.interpolate(x[None], size=(self.size, self.size), mode="bilinear", align_corners=False)[0]
        s = self.resize / min(h, w)
        nh, nw = max(self.size, round(h * s)), max(self.size, round(w * s))
        x = F.interpolate(x[None], size=(nh, nw), mode="bilinear", align_corners=False)[0]
        top, left = (nh - self.size) // 2, (nw - self.size) // 2
        return x[:, top:top + self.size, left:left + self.size].contiguous()


def collate_segmentation(batch: Sequence[tuple[torch.Tensor, torch.Tensor]],
                         ignore_index: int = 255) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack `(image, label)` pairs, padding smaller ones bottom/right (image 0, label ignore).

    Lets evaluation batch images of different sizes (ADE20K); padded pixels never count.
    """
    hmax = max(int(x.shape[-2]) for x, _ in batch)
    wmax = max(int(x.shape[-1]) for x, _ in batch)
    images = torch.zeros(len(batch), 3, hmax, wmax)  # (N, 3, H, W)
    labels = torch.full((len(batch), hmax, wmax), ignore_index, dtype=torch.long)  # (N, H, W)
    for i, (x, y) in enumerate(batch):
        images[i, :, :x.shape[-2], :x.shape[-1]] = x
        labels[i, :y.shape[-2], :y.shape[-1]] = y
    return images, labels
