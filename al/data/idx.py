"""`idx`: the IDX files of the MNIST family (MNIST, Fashion-MNIST, KMNIST, EMNIST), read as shipped.

    root/train-images-idx3-ubyte[.gz]  root/train-labels-idx1-ubyte[.gz]     split "train"
    root/t10k-images-idx3-ubyte[.gz]   root/t10k-labels-idx1-ubyte[.gz]      split "test" (= "val")

`prefix` names other files of the same layout (EMNIST: `prefix = "emnist-balanced-"`, files
`emnist-balanced-train-images-idx3-ubyte.gz`, `...-test-...`). Debian's `dataset-fashion-mnist`
installs the four gzip files under /usr/share/datasets/fashion-mnist. Nothing is downloaded.

IDX layout (LeCun's format): bytes 0-1 zero, byte 2 the element type (0x08 = unsigned byte),
byte 3 the number of dimensions d, then d big-endian uint32 sizes, then the data, row-major.
Images are `(N, H, W)` uint8, labels `(N,)` uint8. Every file is checked before any array is
built: magic, dimension count, sizes (images and labels agree on N; labels < 256 classes) and
length (a truncated or over-long file is named).

Samples are single-channel images copied to 3 channels, scaled to [0, 1], optionally resized
to `size` (bilinear) and normalised with the ImageNet mean/std like every other dataset.
Training augmentation for small images (`augment`, default off): a random crop of `size` from
the image zero-padded by `pad` pixels on each side (CIFAR's recipe), plus a horizontal flip when
`flip` (right for clothes, wrong for digits). Without augmentation the split is served from
cached tensors (`tensors()`), the fast path of `al.train`.
"""

from __future__ import annotations

import functools
import gzip
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from al.data.base import CLS_IGNORE_INDEX, check_split, normalize, require_root
from hwbench.errors import UserError

SPLITS = ("train", "test", "val")
FILE_SPLIT = {"train": "train", "test": "t10k", "val": "t10k"}
UBYTE = 0x08
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")


def _expected(prefix: str, split: str) -> str:
    s = FILE_SPLIT[split] if prefix == "" else ("test" if split != "train" else "train")
    return f"{prefix}{s}-images-idx3-ubyte[.gz] and {prefix}{s}-labels-idx1-ubyte[.gz] (IDX files, MNIST layout)"


def find_file(root: Path, stem: str) -> Path | None:
    """`root/stem` or `root/stem.gz` (the plain file first), None when neither exists."""
    for name in (stem, stem + ".gz"):
        p = root / name
        if p.is_file():
            return p
    return None


def read_idx(path: str | os.PathLike, *, ndim: int) -> np.ndarray:
    """The uint8 array of an IDX file (gzip or not) with `ndim` dimensions; a malformed file -> `UserError`
    naming it (bad gzip, wrong magic / element type / dimension count, truncated or over-long data)."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise UserError(f"cannot read IDX file {path}: {e}; replace it with an intact copy") from None
    header = 4 + 4 * ndim
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise UserError(f"{path} is not an IDX file (magic {raw[:4].hex() or 'missing'}); expected the "
                        f"MNIST-family format")
    if raw[2] != UBYTE or raw[3] != ndim:
        raise UserError(f"{path}: IDX element type 0x{raw[2]:02x} with {raw[3]} dimensions; expected unsigned "
                        f"bytes (0x08) with {ndim} ({'images' if ndim == 3 else 'labels'})")
    if len(raw) < header:
        raise UserError(f"{path} is truncated inside its header ({len(raw)} bytes); replace it with an intact copy")
    shape = tuple(int(v) for v in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    need = header + int(np.prod(shape, dtype=np.int64))
    if len(raw) != need:
        what = "truncated" if len(raw) < need else "longer than its header says"
        raise UserError(f"{path} is {what}: {len(raw)} bytes for shape {'x'.join(map(str, shape))} "
                        f"(expected {need}); replace it with an intact copy")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


@functools.lru_cache(maxsize=8)
def load_split(root: str, prefix: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, H, W) uint8, labels (N,) int64) of one split, checked (see module docstring)."""
    base = Path(root)
    s = FILE_SPLIT[split] if prefix == "" else ("train" if split == "train" else "test")
    img_path = find_file(base, f"{prefix}{s}-images-idx3-ubyte")
    lab_path = find_file(base, f"{prefix}{s}-labels-idx1-ubyte")
    missing = [n for n, p in ((f"{prefix}{s}-images-idx3-ubyte", img_path), (f"{prefix}{s}-labels-idx1-ubyte",
                                                                                lab_path)) if p is None]
    if missing:
        raise UserError(f"idx root {base}: {missing[0]}[.gz] is missing; expected {_expected(prefix, split)}")
    images, labels = read_idx(img_path, ndim=3), read_idx(lab_path, ndim=1)
    if images.shape[0] != labels.shape[0]:
        raise UserError(f"{img_path} holds {images.shape[0]} images but {lab_path} {labels.shape[0]} labels; "
                        "they must belong together")
    if images.shape[0] == 0:
        raise UserError(f"{img_path} holds no images")
    return images, labels.astype(np.int64)


class IDX(Dataset):
    """Classification from IDX files; `ds[i] -> (image float32 (3, size, size) normalised, label int)`."""

    name = "idx"
    task = "classification"
    ignore_index = CLS_IGNORE_INDEX

    def __init__(self, root: str | os.PathLike | None, split: str = "train", *, size: int | None = None,
                 augment: bool = False, pad: int = 2, flip: bool = False, prefix: str = "",
                 num_classes: int | None = None, class_names: list[str] | None = None) -> None:
        split = check_split(self.name, split, SPLITS)
        path = require_root(self.name, root, _expected(prefix, split))
        images, labels = load_split(str(path.resolve()), str(prefix), split)
        native = int(images.shape[1])
        self.size = native if size is None else int(size)
        if not 4 <= self.size <= 1024:
            raise UserError(f"idx: size must be in 4..1024, got {self.size}")
        if not 0 <= int(pad) <= self.size // 2:
            raise UserError(f"idx: pad must be in 0..{self.size // 2} (half the image), got {pad}")
        k = int(labels.max()) + 1 if num_classes is None else int(num_classes)
        if k < int(labels.max()) + 1:
            raise UserError(f"idx: num_classes = {k} but the labels go up to {int(labels.max())}; raise it or drop it")
        names = tuple(class_names) if class_names else (FASHION_CLASSES if "fashion" in str(path).lower() and k == 10
                                                        else tuple(str(i) for i in range(k)))
        if len(names) != k:
            raise UserError(f"idx: class_names lists {len(names)} names for {k} classes; give one per class")
        self.root, self.split, self.prefix = path, split, str(prefix)
        self.num_classes, self.class_names = k, names
        self.augment, self.pad, self.flip = bool(augment), int(pad), bool(flip)
        self.image_hw = (self.size, self.size)
        self._images, self._labels = images, labels
        if not self.augment:
            self.tensors = self._tensors  # the fast path of al.train: whole split as cached tensors

    def _tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All samples: images float32 `(N, 3, S, S)` normalised, targets int64 `(N,)`."""
        return _as_tensors(str(self.root.resolve()), self.prefix, self.split, self.size)

    def __len__(self) -> int:
        return int(self._labels.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x = _to_float(self._images[index][None], self.size)[0]  # (3, S, S)
        if self.augment:
            x = pad_crop_flip(x, self.pad, self.flip)
        return x, int(self._labels[index])


def _to_float(images: np.ndarray, size: int) -> torch.Tensor:
    """uint8 `(N, H, W)` -> normalised float32 `(N, 3, size, size)`."""
    x = torch.from_numpy(np.array(images, dtype=np.float32)).div_(255.0)[:, None]  # (N, 1, H, W)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp_(0, 1)
    return normalize(x.expand(-1, 3, -1, -1)).contiguous()


@functools.lru_cache(maxsize=4)
def _as_tensors(root: str, prefix: str, split: str, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = load_split(root, prefix, split)
    return _to_float(images, size), torch.from_numpy(labels)


def pad_crop_flip(x: torch.Tensor, pad: int, flip: bool) -> torch.Tensor:
    """Random crop of `x`'s size from `x` zero-padded by `pad` (0 = the mean after normalisation), then a
    horizontal flip with p = 0.5 when `flip`. Uses torch's global RNG (seeded per sample by `al.crn`)."""
    _, h, w = x.shape
    if pad:
        x = F.pad(x, (pad, pad, pad, pad))
        top, left = (int(v) for v in torch.randint(2 * pad + 1, (2,)))
        x = x[:, top:top + h, left:left + w]
    if flip and float(torch.rand(())) < 0.5:
        x = x.flip(-1)
    return x.contiguous()
