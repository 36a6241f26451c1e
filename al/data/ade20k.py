"""ADE20K scene parsing (SceneParsing challenge 2016 release), 150 classes.

Layout (ADEChallengeData2016.zip):
    root/images/{training,validation}/*.jpg
    root/annotations/{training,validation}/*.png
`root` may be the ADEChallengeData2016 folder itself or the folder that contains it.
Annotation 0 ("other") is ignored (255); class k (1..150) becomes train id k-1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from al.data.base import SEG_IGNORE_INDEX
from al.data.rooted import RootedSegmentation
from hwbench.errors import UserError

# The 150 class names in annotation order 1..150 (objectInfo150 of the challenge release, as
# listed by mmsegmentation's ADE20KDataset).
CLASS_NAMES: tuple[str, ...] = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass",
    "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair",
    "car", "water", "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field",
    "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion",
    "base", "box", "column", "signboard", "chest of drawers", "counter", "sand", "sink", "skyscraper",
    "fireplace", "refrigerator", "grandstand", "path", "stairs", "runway", "case", "pool table",
    "pillow", "screen door", "stairway", "river", "bridge", "bookcase", "blind", "coffee table",
    "toilet", "flower", "book", "hill", "bench", "countertop", "stove", "palm", "kitchen island",
    "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus", "towel", "light",
    "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver",
    "airplane", "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman",
    "bottle", "buffet", "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy",
    "washer", "plaything", "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag",
    "minibike", "cradle", "oven", "ball", "food", "step", "tank", "trade name", "microwave", "pot",
    "animal", "bicycle", "lake", "dishwasher", "screen", "blanket", "sculpture", "hood", "sconce",
    "vase", "traffic light", "tray", "ashcan", "fan", "pier", "crt screen", "plate", "monitor",
    "bulletin board", "shower", "radiator", "glass", "clock", "flag",
)
assert len(CLASS_NAMES) == 150

SPLITS = {"train": "training", "val": "validation"}
_FOLDER = "ADEChallengeData2016"


def label_lut() -> np.ndarray:
    """(256,) uint8: annotation 0 -> 255 (ignore), k in 1..150 -> k-1, anything above -> 255."""
    lut = np.full(256, SEG_IGNORE_INDEX, dtype=np.uint8)
    lut[1:151] = np.arange(150, dtype=np.uint8)
    return lut


def _expected(split: str) -> str:
    sub = SPLITS[split]
    return (f"[{_FOLDER}/]images/{sub}/*.jpg and [{_FOLDER}/]annotations/{sub}/*.png "
            "(unpack ADEChallengeData2016.zip there)")


def index_ade20k(root: Path, split: str) -> list[tuple[Path, Path]]:
    """Sorted `(image, annotation)` pairs of one split; wrong layout -> `UserError`."""
    base = root / _FOLDER if (root / _FOLDER).is_dir() else root
    sub = SPLITS[split]
    img_dir, lab_dir = base / "images" / sub, base / "annotations" / sub
    if not img_dir.is_dir() or not lab_dir.is_dir():
        missing = img_dir if not img_dir.is_dir() else lab_dir
        raise UserError(f"ade20k root {root}: {missing} is missing; expected {_expected(split)}")
    images = sorted(p for p in img_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    if not images:
        raise UserError(f"ade20k root {root}: no .jpg images in {img_dir}; expected {_expected(split)}")
    pairs = []
    for img in images:
        lab = lab_dir / f"{img.stem}.png"
        if not lab.is_file():
            raise UserError(f"ade20k root {root}: image {img} has no annotation {lab}; expected {_expected(split)}")
        pairs.append((img, lab))
    return pairs


class ADE20K(RootedSegmentation):
    """ADE20K, 150 classes. `augment` defaults to True for the train split.

    Train crops are `crop_size` (default 512x512, the common DeepLab ADE20K recipe). Eval images
    keep their own sizes unless `eval_size` is given; `al.train.evaluate` pads a batch of
    differently sized images with ignore labels, so padding never counts.
    """

    name = "ade20k"
    num_classes = len(CLASS_NAMES)
    class_names = CLASS_NAMES

    splits = tuple(SPLITS)
    default_crop = (512, 512)
    index_pairs = staticmethod(index_ade20k)
    layout = staticmethod(_expected)
    label_lut = staticmethod(label_lut)
