"""ImageNet-style classification folders: root/{train,val}/<class>/*.{jpg,jpeg,png}.

Small images (28-64 px: Fashion-MNIST or CIFAR exported to folders): `image_size` at their own size,
`crop_scale = [0.64, 1.0]` (or `augment = false`) so training crops keep most of the object, and
`eval_crop = false` to resize to `image_size` without ImageNet's 256/224 border crop.

Classes are the sorted sub-folder names of `root/train` (so train and val share class indices;
a val class missing from train is an error). Files are sorted, extensions case-insensitive.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset

from al.data.base import CLS_IGNORE_INDEX, apply_manifest, check_split, load_rgb, require_root, verify_image
from al.data.transforms import ClsEval, ClsTrain
from hwbench.errors import UserError

SPLITS = ("train", "val")
EXTENSIONS = (".jpg", ".jpeg", ".png")


def _expected(split: str) -> str:
    return f"{split}/<class>/*.jpg|*.jpeg|*.png (one sub-folder per class, ImageNet layout)"


def _classes(split_dir: Path) -> list[str]:
    return sorted(p.name for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


class ImageFolder(Dataset):
    """Image classification from class folders. `augment` defaults to True for train."""

    task = "classification"
    ignore_index = CLS_IGNORE_INDEX
    name = "folder"

    def __init__(self, root: str | os.PathLike | None, split: str = "train", *, image_size: int = 224,
                 augment: bool | None = None, manifest: str | os.PathLike | None = None,
                 validate: bool = False, crop_scale: Sequence[float] = (0.08, 1.0), eval_crop: bool = True) -> None:
        split = check_split(self.name, split, SPLITS)
        path = require_root(self.name, root, _expected(split))
        split_dir = path / split
        if not split_dir.is_dir():
            raise UserError(f"folder root {path}: {split_dir} is missing; expected {_expected(split)}")
        train_dir = path / "train"
        classes = _classes(train_dir) if train_dir.is_dir() else _classes(split_dir)
        if not classes:
            raise UserError(f"folder root {path}: no class folders in {split_dir}; expected {_expected(split)}")
        extra = sorted(set(_classes(split_dir)) - set(classes))
        if extra:
            raise UserError(f"folder root {path}: classes {', '.join(extra[:5])} of {split} are not in train; "
                            "both splits need the same class folders")
        samples: list[tuple[Path, int]] = []
        for k, cls in enumerate(classes):
            cdir = split_dir / cls
            if cdir.is_dir():
                files = sorted(p for p in cdir.iterdir() if p.suffix.lower() in EXTENSIONS and p.is_file())
                samples.extend((p, k) for p in files)
        if not samples:
            raise UserError(f"folder root {path}: no images under {split_dir}; expected {_expected(split)}")
        if manifest is not None:
            by_path = {p: (p, k) for p, k in samples}
            pairs = apply_manifest([(p, p) for p, _ in samples], path, manifest, f"folder {split}")
            samples = [by_path[p] for p, _ in pairs]
        self.root, self.split = path, split
        self.samples = samples
        self.class_names = tuple(classes)
        self.num_classes = len(classes)
        lo, hi = (float(v) for v in crop_scale)
        if not 0 < lo <= hi <= 1:
            raise UserError(f"folder: crop_scale must be [min, max] area shares with 0 < min <= max <= 1, got "
                            f"{list(crop_scale)}")
        self.augment = split == "train" if augment is None else augment
        self.transform = ClsTrain(image_size, scale=(lo, hi)) if self.augment else ClsEval(image_size, crop=eval_crop)
        if validate:
            self.validate()

    def __len__(self) -> int:
        return len(self.samples)

    def image_path(self, index: int) -> Path:
        return self.samples[index][0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, target = self.samples[index]
        return self.transform(load_rgb(path)), target

    def validate(self) -> None:
        """Decode every file once; the first corrupt one raises `UserError` naming it."""
        for path, _ in self.samples:
            verify_image(path)
