"""Segmentation sets that live on disk under one root (Cityscapes, ADE20K): the shared constructor.

A subclass names its layout: `name`, `splits`, `default_crop`, and three static functions,
`index_pairs(root, split) -> [(image, label), ...]`, `layout(split) -> str` (the expected layout, for
errors) and `label_lut() -> (256,) uint8` (file label id -> train id, 255 = ignore).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from al.data.base import SEG_IGNORE_INDEX, FileSegmentation, apply_manifest, check_split, require_root
from al.data.transforms import SegEval, SegTrain


class RootedSegmentation(FileSegmentation):
    """`augment` defaults to True for the train split: DeepLab's random scale, pad, crop and flip."""

    splits: ClassVar[Sequence[str]]
    default_crop: ClassVar[tuple[int, int]]
    index_pairs: ClassVar[Callable[[Path, str], list[tuple[Path, Path]]]]
    layout: ClassVar[Callable[[str], str]]
    label_lut: ClassVar[Callable[[], np.ndarray]]

    def __init__(self, root: str | os.PathLike | None, split: str = "train", *, augment: bool | None = None,
                 crop_size: int | Sequence[int] | None = None, scale_range: Sequence[float] = (0.5, 2.0),
                 eval_size: int | Sequence[int] | None = None, manifest: str | os.PathLike | None = None,
                 validate: bool = False) -> None:
        split = check_split(self.name, split, tuple(self.splits))
        path = require_root(self.name, root, type(self).layout(split))
        pairs = apply_manifest(type(self).index_pairs(path, split), path, manifest, f"{self.name} {split}")
        augment = split == "train" if augment is None else augment
        crop = self.default_crop if crop_size is None else crop_size
        transform = SegTrain(crop, scale_range, SEG_IGNORE_INDEX) if augment else SegEval(eval_size)
        super().__init__(pairs, type(self).label_lut(), transform)
        self.root, self.split, self.augment = path, split, augment
        if validate:
            self.validate()
