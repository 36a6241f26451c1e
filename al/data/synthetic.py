"""`synthetic_streets`: the embedded drives as a segmentation set (no files, nothing downloaded).

A split is a sequence of drives (`al.data.drives`): frames `0..L-1` are drive 0, `L..2L-1`
drive 1, and so on (`L = drive_frames`, default 12 at 10 fps); a split of `n` frames has
`ceil(n / L)` drives, the last one cut short when `n` is not a multiple of `L`. The splits
(train = the pool, val, test) are disjoint sets of drives, never of frames. Consecutive frames
of a drive are near-duplicates; rare scenes (night, rain, road works) and rare classes (person,
pole/sign) live in a minority of drives — a small model of fleet data (README "The embedded
drives"; `al data stats synthetic_streets` prints its statistics).

Classes: 0 road, 1 sidewalk, 2 building, 3 vegetation, 4 sky, 5 car, 6 person, 7 pole/sign.
No pixel is ignored.

Every frame is a pure function of `(seed, split, index, size, drive_frames)`. Each frame
carries its `drive_id`, `frame_index` (within the drive) and `timestamp_s` (seconds since the
drive started): `ds.frame_info(i)`, or the arrays `ds.drive_ids`, `ds.frame_indices`,
`ds.timestamps_s`. For a stream of frames or a directory of frames with a timestamp manifest,
see `al.data.drive_io`.

Throughput: the whole split is rendered once on first access (one street per drive, objects
and light per frame; about 1 ms per 64x128 frame on a busy 2-core CPU) and cached in memory;
`tensors()` returns the cached `(images, targets)` pair so a trainer can index whole batches
without a DataLoader.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from al.data.base import SEG_IGNORE_INDEX, check_split, normalize
from al.data.drives import DRIVE_FRAMES, DriveInfo, cached_drive, drive_info, render_drive
from al.data.street_paint import CAR, CLASS_NAMES, PERSON, POLE  # noqa: F401  (re-exported)
from hwbench.errors import UserError

logger = logging.getLogger(__name__)

DEFAULT_N = {"train": 600, "val": 240, "test": 240}  # the splits; their drives are disjoint
MAX_SIDE = 4096  # pixels per side of a frame
DEFAULT_SIZE = (64, 128)  # (H, W)


def _check_memory(n: int, size: tuple[int, int]) -> None:
    """`UserError` before any frame is rendered when the split's frames would not fit in this machine's
    memory (uint8 images and labels, 4 bytes a pixel, and the float32 tensors training makes: 16 more)."""
    need = n * size[0] * size[1] * 20
    try:
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not POSIX: no check
        return
    if need > have:
        raise UserError(f"synthetic_streets: {n} frames of {size[0]}x{size[1]} need about {need / 2**30:.0f} GiB, "
                        f"more than this machine's {have / 2**30:.0f} GiB; change [data.options] size or the "
                        "number of images")


def generate(seed: int, split: str, n: int, size: tuple[int, int],
             drive_frames: int = DRIVE_FRAMES) -> tuple[np.ndarray, np.ndarray]:
    """Render frames 0..n-1 of a split: uint8 images `(n, H, W, 3)` and uint8 labels `(n, H, W)`."""
    h, w = size
    images = np.empty((n, h, w, 3), np.uint8)
    labels = np.empty((n, h, w), np.uint8)
    for d in range(-(-n // drive_frames)):
        lo, hi = d * drive_frames, min(n, (d + 1) * drive_frames)
        img, lab, _ = render_drive(seed, split, d, (h, w), drive_frames)
        images[lo:hi], labels[lo:hi] = img[:hi - lo], lab[:hi - lo]
    return images, labels


def frame(seed: int, split: str, index: int, size: tuple[int, int],
          drive_frames: int = DRIVE_FRAMES) -> tuple[np.ndarray, np.ndarray]:
    """Frame `index` of a split alone: uint8 image `(H, W, 3)` and label `(H, W)` (copies)."""
    img, lab, _ = cached_drive(seed, split, index // drive_frames, tuple(size), drive_frames)
    return img[index % drive_frames].copy(), lab[index % drive_frames].copy()


@functools.lru_cache(maxsize=8)
def _cached(seed: int, split: str, n: int, size: tuple[int, int],
            drive_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = generate(seed, split, n, size, drive_frames)
    x = normalize(torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)).contiguous()  # (N, 3, H, W)
    y = torch.from_numpy(labels).long()  # (N, H, W)
    logger.debug("synthetic_streets %s: rendered %d frames of %dx%d", split, n, *size)
    return x, y


class SyntheticStreets(Dataset):
    """The embedded drives as a segmentation set; see the module docstring.

    `n` frames per split (default 600 train / 240 val / 240 test: 50 / 20 / 20 drives of 12),
    `size` (H, W) (default 64x128), `seed` picks the world, `drive_frames` the frames per drive.
    No augmentation: `ds[i]` equals `ds.tensors()[k][i]`.
    """

    name = "synthetic_streets"
    task = "segmentation"
    num_classes = len(CLASS_NAMES)
    ignore_index = SEG_IGNORE_INDEX
    class_names = CLASS_NAMES
    augment = False

    def __init__(self, root: str | None = None, split: str = "train", *, n: int | None = None,
                 size: Sequence[int] = DEFAULT_SIZE, seed: int = 0, drive_frames: int = DRIVE_FRAMES) -> None:
        if root not in (None, ""):
            raise UserError("synthetic_streets is generated in memory and takes no root; drop the root setting")
        self.split = check_split(self.name, split, tuple(DEFAULT_N))
        self.n = DEFAULT_N[split] if n is None else int(n)
        if self.n < 1:
            raise UserError(f"synthetic_streets: n must be >= 1, got {self.n}")
        if len(size) != 2 or min(size) < 16 or max(size) > MAX_SIDE:
            raise UserError(f"synthetic_streets: size must be [H, W] with both between 16 and {MAX_SIDE}, got "
                            f"{list(size)}; change [data.options] size")
        if int(drive_frames) < 1:
            raise UserError(f"synthetic_streets: drive_frames must be >= 1, got {drive_frames}")
        if int(seed) < 0:
            raise UserError(f"synthetic_streets: seed must be a non-negative integer, got {seed}")
        self.size = (int(size[0]), int(size[1]))
        _check_memory(self.n, self.size)
        self.seed = int(seed)
        self.drive_frames = int(drive_frames)
        k = np.arange(self.n)
        self.drive_index = k // self.drive_frames  # (N,) drive of each frame (index within the split)
        self.frame_indices = k % self.drive_frames  # (N,) frame within its drive
        self.timestamps_s = self.frame_indices / np.float64(self.drives[0].fps)  # (N,) since the drive started
        self.drive_ids = np.array([d.drive_id for d in self.drives])[self.drive_index]  # (N,) str

    @functools.cached_property
    def drives(self) -> list[DriveInfo]:
        """The split's drives in order (the last one may be cut short by `n`)."""
        nd = -(-self.n // self.drive_frames)
        return [drive_info(self.seed, self.split, d, self.drive_frames) for d in range(nd)]

    def __len__(self) -> int:
        return self.n

    def frame_info(self, index: int) -> dict:
        """`{"drive_id", "frame_index", "timestamp_s", "weather", "rare_scenes"}` of frame `index`."""
        d = self.drives[int(self.drive_index[index])]
        return {"drive_id": d.drive_id, "frame_index": int(self.frame_indices[index]),
                "timestamp_s": float(self.timestamps_s[index]), "weather": d.weather,
                "rare_scenes": list(d.rare_scenes)}

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All samples at once: images float32 `(N, 3, H, W)` normalised, targets int64 `(N, H, W)`.

        Cached and shared between instances with the same settings: treat as read-only.
        """
        return _cached(self.seed, self.split, self.n, self.size, self.drive_frames)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.tensors()
        return x[index], y[index]

    def raw(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame `index` as uint8 `(H, W, 3)` plus its label `(H, W)` (for plots)."""
        if not -self.n <= index < self.n:
            raise IndexError(f"frame {index} out of range for {self.n} frames")
        return frame(self.seed, self.split, index % self.n, self.size, self.drive_frames)
