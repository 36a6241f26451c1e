"""Image sizes a dataset trains and evaluates at, read from the dataset itself (no training, no model).

Used by the plan (`al.experiments.plan`: costs each dataset at its real size) and by the automatic
recipes (`al.recipes`: a stem by input size)."""

from __future__ import annotations

from typing import Any

import numpy as np


def _own_size(ds: Any) -> tuple[int, int] | None:
    """(H, W) of a dataset that knows its image size (`image_hw`: IDX) or serves cached tensors (digits)."""
    hw = getattr(ds, "image_hw", None)
    if hw is not None:
        return int(hw[0]), int(hw[1])
    tensors = getattr(ds, "tensors", None)
    if callable(tensors):
        x = tensors()[0]                                      # (N, 3, H, W)
        return int(x.shape[-2]), int(x.shape[-1])
    return None


def train_size(ds: Any) -> tuple[int, int]:
    """(H, W) a training sample has: the dataset's own size, else the augmentation's crop, else the eval size."""
    own = _own_size(ds)
    if own is not None:
        return own
    t = getattr(ds, "transform", None)
    for attr in ("crop_size", "size"):
        v = getattr(t, attr, None)
        if v is not None:
            return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))
    return eval_size(ds, fallback=(224, 224))


def eval_size(ds: Any, *, fallback: tuple[int, int], sample: int = 16) -> tuple[int, int]:
    """(H, W) evaluated: a fixed resize if the transform has one, else the dataset's fixed frame size
    (Cityscapes: 1024x2048), else the mean pixel count of up to `sample` image headers (same aspect
    as the first), else `fallback` (unreadable or empty files)."""
    own = _own_size(ds)
    if own is not None:
        return own
    t = getattr(ds, "transform", None)
    v = getattr(t, "size", None)
    if v is not None:
        return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))
    frame = getattr(ds, "frame_size", None)
    if frame is not None:
        return int(frame[0]), int(frame[1])
    path_of = getattr(ds, "image_path", None)
    if not callable(path_of) or len(ds) == 0:
        return fallback
    from PIL import Image

    sizes = []
    for i in np.linspace(0, len(ds) - 1, min(sample, len(ds))).astype(int):
        try:
            with Image.open(path_of(int(i))) as im:
                sizes.append(im.size[::-1])                    # (H, W)
        except Exception:  # noqa: BLE001 - an unreadable header falls back to the crop size
            return fallback
    h0, w0 = sizes[0]
    area = float(np.mean([h * w for h, w in sizes]))
    scale = (area / (h0 * w0)) ** 0.5
    return max(1, round(h0 * scale)), max(1, round(w0 * scale))
