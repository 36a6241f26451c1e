"""Shared pieces of the dataset modules: image decoding, root/manifest checks, the file-backed
segmentation base class.

Every dataset is a `torch.utils.data.Dataset` with `name`, `task` ("segmentation" |
"classification"), `num_classes`, `ignore_index`, `class_names`, and `ds[i] -> (image, target)`:
image float32 `(3, H, W)` normalised with the ImageNet mean/std, target int64 `(H, W)`
(segmentation, ignored pixels = `ignore_index` = 255) or `int` (classification).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from torch.utils.data import Dataset

from hwbench.errors import UserError

logger = logging.getLogger(__name__)

# ImageNet statistics every backbone of the zoo is pre-trained with (torchvision's values).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SEG_IGNORE_INDEX = 255
CLS_IGNORE_INDEX = -100  # torch's default; classification targets are never ignored

_DECODE_ERRORS: tuple[type[BaseException], ...] = (OSError, SyntaxError, ValueError)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """ImageNet mean/std normalisation of `(3, H, W)` or `(N, 3, H, W)` floats in [0, 1]."""
    shape = (3, 1, 1) if images.dim() == 3 else (1, 3, 1, 1)
    mean = torch.tensor(IMAGENET_MEAN, dtype=images.dtype, device=images.device).view(shape)
    std = torch.tensor(IMAGENET_STD, dtype=images.dtype, device=images.device).view(shape)
    return (images - mean) / std


def load_rgb(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file with Pillow -> uint8 `(H, W, 3)`; unreadable file -> `UserError`."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.array(im.convert("RGB"))  # writable copy
    except (UnidentifiedImageError, *_DECODE_ERRORS) as e:
        raise UserError(f"cannot decode image {path}: {e}; replace or remove the file") from None


_LABEL_MODES = ("L", "P")  # 8-bit single channel: class ids 0..255


def load_label(path: str | os.PathLike, *, size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode an 8-bit single-channel label PNG -> uint8 `(H, W)`. An unreadable file, a colour (RGB/RGBA)
    or 16/32-bit image (e.g. Cityscapes' *_instanceIds.png instead of *_labelIds.png) or, when `size`
    (W, H) is given, another size than the image's -> `UserError` naming the file and the fix."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.mode not in _LABEL_MODES:
                kind = "16/32-bit" if im.mode.startswith(("I", "F")) else "colour"
                raise UserError(f"label image {path} is a {kind} image (mode {im.mode!r}); expected an 8-bit "
                                "single-channel (mode L or P) PNG of class ids")
            if size is not None and im.size != tuple(size):
                raise UserError(f"label {path} is {im.size[0]}x{im.size[1]} but its image is {size[0]}x{size[1]}; "
                                "they must match")
            arr = np.asarray(im)
    except (UnidentifiedImageError, *_DECODE_ERRORS) as e:
        raise UserError(f"cannot decode label image {path}: {e}; replace or remove the file") from None
    return arr.astype(np.uint8, copy=False)


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(W, H) of an image after decoding it fully once (`UserError` naming a corrupt file)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            return im.size
    except (UnidentifiedImageError, *_DECODE_ERRORS) as e:
        raise UserError(f"cannot decode image {path}: {e}; replace or remove the file") from None


def verify_image(path: str | os.PathLike) -> None:
    """Fully decode `path` once (used by `validate()`), raising `UserError` naming a corrupt file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
    except (UnidentifiedImageError, *_DECODE_ERRORS) as e:
        raise UserError(f"cannot decode image {path}: {e}; replace or remove the file") from None


def require_root(name: str, root: str | os.PathLike | None, expected: str) -> Path:
    """The dataset root as a `Path`; missing -> `UserError` naming the expected layout."""
    if root is None or str(root) == "":
        raise UserError(f"dataset {name!r} needs a root directory (root=... / [data] root); expected {expected}")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise UserError(f"{name} root {path} does not exist or is not a directory; expected {expected}")
    return path


def check_split(name: str, split: str, known: Sequence[str]) -> str:
    if split not in known:
        raise UserError(f"{name}: unknown split {split!r}; known: {', '.join(known)}")
    return split


def inside_root(root: Path, rel: str, where: str) -> Path:
    """`root / rel` for a relative path read from a file; refuses absolute paths and `..` escapes."""
    p = PurePosixPath(rel.replace("\\", "/"))
    escape = UserError(f"{where}: path {rel!r} escapes the dataset root {root}; use paths relative to it")
    if p.is_absolute():
        raise escape
    parts: list[str] = []
    for part in p.parts:
        if part == "..":
            if not parts:
                raise escape
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    if not parts:
        raise UserError(f"{where}: empty path entry")
    return root.joinpath(*parts)


def read_manifest(root: Path, manifest: str | os.PathLike, where: str) -> list[Path]:
    """Image paths listed one per line (relative to `root`; `#` comments and blank lines skipped)."""
    mpath = Path(manifest).expanduser()
    if not mpath.is_absolute() and not mpath.exists():
        mpath = inside_root(root, str(manifest), where)
    if not mpath.is_file():
        raise UserError(f"{where}: manifest {manifest} not found; give a text file of image paths "
                        f"relative to {root}")
    try:
        text = mpath.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{where}: manifest {mpath} is not a text (UTF-8) file; give one image path per line") from None
    if "\0" in text:
        raise UserError(f"{where}: manifest {mpath} holds NUL bytes; give a text file of one image path per line")
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(inside_root(root, line, f"{mpath}:{i}"))
    if not out:
        raise UserError(f"{where}: manifest {mpath} lists no images")
    return out


def apply_manifest(pairs: list[tuple[Path, Path]], root: Path, manifest: str | os.PathLike | None,
                   where: str) -> list[tuple[Path, Path]]:
    """Restrict (and order) indexed `(image, label)` pairs to those a manifest lists."""
    if manifest is None:
        return pairs
    by_image = {os.path.normpath(img): (img, lab) for img, lab in pairs}
    chosen = []
    for p in read_manifest(root, manifest, where):
        key = os.path.normpath(p)
        if key not in by_image:
            raise UserError(f"{where}: manifest entry {p} is not an indexed image of this split")
        chosen.append(by_image[key])
    return chosen


class FileSegmentation(Dataset):
    """Base of the file-backed segmentation sets: `(image, label-id PNG)` pairs + a label LUT.

    Subclasses set `name`, `num_classes`, `class_names` and pass the indexed pairs and a
    256-entry uint8 lookup table mapping stored ids to train ids (255 = ignore).
    """

    task = "segmentation"
    ignore_index = SEG_IGNORE_INDEX
    name = "segmentation"
    num_classes = 0
    class_names: tuple[str, ...] = ()

    def __init__(self, pairs: list[tuple[Path, Path]], lut: np.ndarray, transform) -> None:
        self.pairs = pairs
        self.lut = lut  # (256,) uint8: stored id -> train id
        self.transform = transform

    def __len__(self) -> int:
        return len(self.pairs)

    def image_path(self, index: int) -> Path:
        return self.pairs[index][0]

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Raw decoded sample: uint8 image `(H, W, 3)` and train-id label `(H, W)`."""
        img_path, lab_path = self.pairs[index]
        img = load_rgb(img_path)
        lab = self.lut[load_label(lab_path)]
        if lab.shape != img.shape[:2]:
            raise UserError(f"label {lab_path} is {lab.shape[1]}x{lab.shape[0]} but image {img_path} is "
                            f"{img.shape[1]}x{img.shape[0]}; they must match")
        return img, lab

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        img, lab = self.read(index)
        return self.transform(img, lab)

    def validate(self) -> None:
        """Decode every file once, with the checks of `read`: the first corrupt image, or label that is
        not single-channel 8-bit ids of its image's size, raises `UserError` naming it."""
        for img_path, lab_path in self.pairs:
            load_label(lab_path, size=image_size(img_path))
