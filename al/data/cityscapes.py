"""Cityscapes fine annotations, 19 train classes.

Layout (the official archives leftImg8bit_trainvaltest.zip + gtFine_trainvaltest.zip):
    root/leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png
    root/gtFine/{split}/{city}/{stem}_gtFine_labelIds.png
The stored label ids (0..33) map to the 19 train ids with the official table below; everything
else is ignored (255). cityscapesscripts is not needed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from al.data.base import SEG_IGNORE_INDEX
from al.data.rooted import RootedSegmentation
from hwbench.errors import UserError

# id -> trainId for label ids 0..33, transcribed from cityscapesscripts/helpers/labels.py
# (github.com/mcordts/cityscapesScripts). 255 = ignored in training and evaluation.
# ("license plate" has id -1 and never appears in *_labelIds.png.)
ID_TO_TRAINID: tuple[int, ...] = (
    255, 255, 255, 255, 255, 255, 255,  # 0 unlabeled, 1 ego vehicle, 2 rectification border, 3 out of roi,
                                        # 4 static, 5 dynamic, 6 ground
    0, 1,            # 7 road, 8 sidewalk
    255, 255,        # 9 parking, 10 rail track
    2, 3, 4,         # 11 building, 12 wall, 13 fence
    255, 255, 255,   # 14 guard rail, 15 bridge, 16 tunnel
    5, 255,          # 17 pole, 18 polegroup
    6, 7,            # 19 traffic light, 20 traffic sign
    8, 9, 10,        # 21 vegetation, 22 terrain, 23 sky
    11, 12,          # 24 person, 25 rider
    13, 14, 15,      # 26 car, 27 truck, 28 bus
    255, 255,        # 29 caravan, 30 trailer
    16, 17, 18,      # 31 train, 32 motorcycle, 33 bicycle
)
assert len(ID_TO_TRAINID) == 34

CLASS_NAMES: tuple[str, ...] = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle",
    "bicycle",
)

SPLITS = ("train", "val", "test")
_IMG_SUFFIX = "_leftImg8bit.png"
_LAB_SUFFIX = "_gtFine_labelIds.png"


def label_lut() -> np.ndarray:
    """(256,) uint8 lookup table: stored Cityscapes label id -> train id (255 = ignore)."""
    lut = np.full(256, SEG_IGNORE_INDEX, dtype=np.uint8)
    lut[: len(ID_TO_TRAINID)] = ID_TO_TRAINID
    return lut


def _expected(split: str) -> str:
    return (f"leftImg8bit/{split}/<city>/*{_IMG_SUFFIX} and gtFine/{split}/<city>/*{_LAB_SUFFIX} "
            "(unpack leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip there)")


def index_cityscapes(root: Path, split: str) -> list[tuple[Path, Path]]:
    """Sorted `(image, label)` path pairs of one split; wrong layout -> `UserError`."""
    img_dir, lab_dir = root / "leftImg8bit" / split, root / "gtFine" / split
    if not img_dir.is_dir() or not lab_dir.is_dir():
        missing = img_dir if not img_dir.is_dir() else lab_dir
        raise UserError(f"cityscapes root {root}: {missing} is missing; expected {_expected(split)}")
    images = sorted(img_dir.glob(f"*/*{_IMG_SUFFIX}"))
    if not images:
        raise UserError(f"cityscapes root {root}: no images in {img_dir}; expected {_expected(split)}")
    pairs = []
    for img in images:
        stem = img.name[: -len(_IMG_SUFFIX)]
        lab = lab_dir / img.parent.name / f"{stem}{_LAB_SUFFIX}"
        if not lab.is_file():
            raise UserError(f"cityscapes root {root}: image {img} has no label {lab}; expected {_expected(split)}")
        pairs.append((img, lab))
    return pairs


class Cityscapes(RootedSegmentation):
    """Cityscapes fine, 19 classes. `augment` defaults to True for the train split.

    Train crops are `crop_size` (default 768x768, the common DeepLab Cityscapes recipe); eval
    images keep their 1024x2048 resolution unless `eval_size` is given.
    """

    name = "cityscapes"
    num_classes = len(CLASS_NAMES)
    class_names = CLASS_NAMES

    splits = tuple(SPLITS)
    default_crop = (768, 768)
    frame_size = (1024, 2048)  # every Cityscapes frame (H, W); used by cost estimates without decoding
    index_pairs = staticmethod(index_cityscapes)
    layout = staticmethod(_expected)
    label_lut = staticmethod(label_lut)
