"""Datasets for active learning: a small registry of builders.

    build_dataset("synthetic_streets", split="train")           # embedded, no files
    build_dataset("cityscapes", root="/data/cityscapes", split="val")

Every dataset is a `torch.utils.data.Dataset` with `name`, `task`, `num_classes`,
`ignore_index`, `class_names`; `ds[i] -> (image float32 (3, H, W) normalised, target)` with
target int64 `(H, W)` (segmentation, 255 = ignore) or `int` (classification).
The embedded sets (`synthetic_streets`, `digits`) also offer `tensors()`: the whole split as
cached `(images, targets)` tensors, which `al.train` uses to batch without a DataLoader.
"""

from __future__ import annotations

import importlib
import inspect
import os
from dataclasses import dataclass
from typing import Any

from hwbench.errors import UserError, unknown


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    task: str
    needs_root: bool
    summary: str
    target: str  # "module:Class"


DATASETS: dict[str, DatasetInfo] = {d.name: d for d in (
    DatasetInfo("cityscapes", "segmentation", True, "Cityscapes fine, 19 classes (leftImg8bit + gtFine)",
                "al.data.cityscapes:Cityscapes"),
    DatasetInfo("ade20k", "segmentation", True, "ADE20K SceneParsing, 150 classes (ADEChallengeData2016)",
                "al.data.ade20k:ADE20K"),
    DatasetInfo("folder", "classification", True, "ImageNet-style class folders root/{train,val}/<class>/*.jpg",
                "al.data.folder:ImageFolder"),
    DatasetInfo("idx", "classification", True,
                "IDX files of the MNIST family (MNIST, Fashion-MNIST, KMNIST, EMNIST), gzip or not: "
                "root/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]", "al.data.idx:IDX"),
    DatasetInfo("synthetic_streets", "segmentation", False,
                "embedded drives of street scenes, 8 classes, 600/240/240 frames (train/val/test) of 64x128",
                "al.data.synthetic:SyntheticStreets"),
    DatasetInfo("digits", "classification", False, "embedded sklearn handwritten digits, 10 classes, 32x32",
                "al.data.digits:Digits"),
)}


def list_datasets() -> list[str]:
    return sorted(DATASETS)


def dataset_class(name: str) -> type:
    if name not in DATASETS:
        raise unknown("dataset", name, DATASETS)
    module, cls = DATASETS[name].target.split(":")
    return getattr(importlib.import_module(module), cls)


def build_dataset(name: str, *, root: str | os.PathLike | None = None, split: str = "train", **kw: Any):
    """Instantiate dataset `name`; unknown name or option -> `UserError` listing the valid ones."""
    cls = dataset_class(name)
    options = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "root", "split")]
    bad = sorted(set(kw) - set(options))
    if bad:
        raise UserError(f"dataset {name!r}: unknown option(s) {', '.join(map(repr, bad))}; "
                        f"known: {', '.join(options)}")
    return cls(root, split, **kw)


__all__ = ["DATASETS", "DatasetInfo", "build_dataset", "dataset_class", "list_datasets"]
