"""`digits`: scikit-learn's handwritten digits (1,797 8x8 images, 10 classes; ships with sklearn).

Images are scaled to [0, 1] (pixel / 16), upsampled bilinearly to `size` x `size` (default
32, so the ResNet classifiers see a CIFAR-sized input), copied to 3 channels and normalised
with the ImageNet mean/std. The train/val split is stratified and fixed by `seed`
(default 80 % / 20 % per class: 1,438 / 359 images).

Fast path: `tensors()` returns the cached `(images (N, 3, S, S), targets (N,))` pair.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from al.data.base import CLS_IGNORE_INDEX, check_split, normalize
from hwbench.errors import UserError

SPLITS = ("train", "val")
CLASS_NAMES: tuple[str, ...] = tuple(str(d) for d in range(10))


def split_indices(targets: np.ndarray, val_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Stratified, seeded split of sample indices -> {"train": sorted idx, "val": sorted idx}."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for k in np.unique(targets):
        idx = np.flatnonzero(targets == k)
        rng.shuffle(idx)
        n_val = int(round(len(idx) * val_fraction))
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return {"train": np.sort(np.concatenate(train)), "val": np.sort(np.concatenate(val))}


def load_scans() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as `(images (1797, 8, 8) float64 in 0..16, targets (1797,) int64)`.

    Read straight from the CSV that ships inside scikit-learn (what `load_digits` parses), so a
    process that only needs the scans does not import scikit-learn (~3 CPU-s with SciPy);
    `load_digits` is the fallback when that file is not where it is expected."""
    import gzip
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("sklearn")
    if spec is None:
        raise UserError("the digits data set ships with scikit-learn, which is not installed; install it with: "
                        "pip install 'hwbench[digits]'")
    csv = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz" if spec else None
    if csv is not None and csv.is_file():
        with gzip.open(csv, "rt") as f:
            data = np.loadtxt(f, delimiter=",")  # (1797, 65): 64 pixels, then the label
        return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images, bunch.target.astype(np.int64)


@functools.lru_cache(maxsize=8)
def _cached(split: str, size: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    scans, labels = load_scans()
    images, targets = scans.astype(np.float32) / 16.0, labels  # (1797, 8, 8)
    idx = split_indices(targets, val_fraction, seed)[split]
    x = torch.from_numpy(images[idx])[:, None]  # (N, 1, 8, 8)
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp_(0, 1)
    x = normalize(x.expand(-1, 3, -1, -1)).contiguous()  # (N, 3, S, S)
    return x, torch.from_numpy(targets[idx])


class Digits(Dataset):
    """Embedded 10-class classification set; `ds[i] == (tensors()[0][i], int(tensors()[1][i]))`."""

    name = "digits"
    task = "classification"
    num_classes = 10
    ignore_index = CLS_IGNORE_INDEX
    class_names = CLASS_NAMES
    augment = False

    def __init__(self, root: str | None = None, split: str = "train", *, size: int = 32,
                 val_fraction: float = 0.2, seed: int = 0) -> None:
        if root not in (None, ""):
            raise UserError("digits ships with scikit-learn and takes no root; drop the root setting")
        self.split = check_split(self.name, split, SPLITS)
        if not 8 <= int(size) <= 512:
            raise UserError(f"digits: size must be in 8..512, got {size}")
        if not 0.0 < float(val_fraction) < 1.0:
            raise UserError(f"digits: val_fraction must be in (0, 1), got {val_fraction}")
        self.size, self.val_fraction, self.seed = int(size), float(val_fraction), int(seed)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All samples: images float32 `(N, 3, S, S)` normalised, targets int64 `(N,)`. Read-only."""
        return _cached(self.split, self.size, self.val_fraction, self.seed)

    def __len__(self) -> int:
        return int(self.tensors()[1].shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x, y = self.tensors()
        return x[index], int(y[index])
