"""Statistics that make the embedded drives a model of fleet data (README "The embedded drives").

- near-duplicate rate: the share of consecutive frame pairs of a drive that are near-duplicates
  (mean absolute difference of 8x16 block-mean thumbnails <= `NEAR_DUP_THUMB` in [0, 1] units,
  and the same class on >= `NEAR_DUP_LABEL` of the pixels), against the same test on random
  pairs of frames from different drives;
- class frequencies per split: share of pixels, of frames and of drives where a class occurs;
- rare scenes: the share of drives with night, rain or road works.

Pure array maths over `(images uint8 (N, H, W, 3), labels uint8 (N, H, W), drive ids (N,))`;
`split_stats` / `dataset_stats` render the splits and collect everything.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

NEAR_DUP_THUMB = 0.05
NEAR_DUP_LABEL = 0.85
THUMB_HW = (8, 16)


def thumbnails(images: np.ndarray, hw: tuple[int, int] = THUMB_HW) -> np.ndarray:
    """Block means of uint8 `(N, H, W, 3)` -> float32 `(N, h, w, 3)` in [0, 1] (H, W cropped to multiples)."""
    n, hh, ww, c = images.shape
    by, bx = max(1, hh // hw[0]), max(1, ww // hw[1])
    ty, tx = hh // by, ww // bx
    x = images[:, :ty * by, :tx * bx].astype(np.float32).reshape(n, ty, by, tx, bx, c)
    return x.mean((2, 4)) / 255.0


def pair_distances(images: np.ndarray, labels: np.ndarray, a: np.ndarray, b: np.ndarray,
                   thumbs: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For index pairs `(a[i], b[i])`: thumbnail distance `(P,)` and label agreement `(P,)`."""
    t = thumbnails(images) if thumbs is None else thumbs
    dist = np.abs(t[a] - t[b]).mean((1, 2, 3))
    agree = (labels[a] == labels[b]).mean((1, 2))
    return dist, agree


def is_near_duplicate(dist: np.ndarray, agree: np.ndarray) -> np.ndarray:
    return (dist <= NEAR_DUP_THUMB) & (agree >= NEAR_DUP_LABEL)


def near_duplicate_rate(images: np.ndarray, labels: np.ndarray, drive_ids: Sequence[str], *,
                        lag: int = 1, random_pairs: int = 2000, seed: int = 0) -> dict:
    """Near-duplicate share of frame pairs `lag` apart within a drive, and of random cross-drive pairs."""
    ids = np.asarray(drive_ids)
    n = len(ids)
    thumbs = thumbnails(images)
    a = np.arange(max(0, n - lag))
    a = a[ids[a] == ids[a + lag]]  # both frames in the same drive
    within = is_near_duplicate(*pair_distances(images, labels, a, a + lag, thumbs)) if a.size else np.zeros(0, bool)
    rng = np.random.default_rng(seed)
    p = rng.integers(0, n, (random_pairs, 2))
    p = p[ids[p[:, 0]] != ids[p[:, 1]]]
    across = is_near_duplicate(*pair_distances(images, labels, p[:, 0], p[:, 1], thumbs)) if len(p) else np.zeros(0, bool)
    return {"lag": lag, "within_pairs": int(a.size), "within_rate": float(within.mean()) if a.size else None,
            "across_pairs": int(len(p)), "across_rate": float(across.mean()) if len(p) else None}


def class_frequencies(labels: np.ndarray, drive_ids: Sequence[str], class_names: Sequence[str]) -> list[dict]:
    """Per class: share of pixels, of frames containing it and of drives containing it."""
    k = len(class_names)
    ids = np.asarray(drive_ids)
    pix = np.bincount(labels.reshape(-1), minlength=k)[:k] / labels.size
    present = np.stack([(labels == c).reshape(len(labels), -1).any(1) for c in range(k)], 1)  # (N, K)
    drives = np.unique(ids)
    per_drive = np.stack([present[ids == d].any(0) for d in drives])  # (D, K)
    return [{"class": name, "pixel_share": float(pix[c]), "frame_share": float(present[:, c].mean()),
             "drive_share": float(per_drive[:, c].mean())} for c, name in enumerate(class_names)]


def rare_scene_shares(infos: Sequence) -> dict[str, float]:
    """Share of drives with each rare scene, and with any of them (`DriveInfo.rare_scenes`)."""
    from al.data.drives import RARE_SCENES

    n = max(1, len(infos))
    out = {s: sum(s in d.rare_scenes for d in infos) / n for s in RARE_SCENES}
    out["any"] = sum(bool(d.rare_scenes) for d in infos) / n
    return out


def split_stats(ds) -> dict:
    """Every statistic of one `SyntheticStreets` split."""
    from al.data.synthetic import generate

    images, labels = generate(ds.seed, ds.split, len(ds), ds.size, ds.drive_frames)
    return {"split": ds.split, "frames": len(ds), "drives": len(ds.drives), "drive_frames": ds.drive_frames,
            "near_duplicates": near_duplicate_rate(images, labels, ds.drive_ids),
            "near_duplicates_lag_max": near_duplicate_rate(images, labels, ds.drive_ids, lag=ds.drive_frames - 1),
            "rare_scenes": rare_scene_shares(ds.drives),
            "weather": {w: sum(d.weather == w for d in ds.drives) / len(ds.drives)
                        for w in sorted({d.weather for d in ds.drives})},
            "classes": class_frequencies(labels, ds.drive_ids, ds.class_names)}


def dataset_stats(*, seed: int = 0, size: Sequence[int] = (64, 128), drive_frames: int | None = None,
                  n: dict[str, int] | None = None) -> list[dict]:
    """`split_stats` of the train (pool), val and test splits of `synthetic_streets`."""
    from al.data.drives import DRIVE_FRAMES
    from al.data.synthetic import DEFAULT_N, SyntheticStreets

    sizes = {**DEFAULT_N, **(n or {})}
    return [split_stats(SyntheticStreets(split=s, n=sizes[s], size=size, seed=seed,
                                         drive_frames=drive_frames or DRIVE_FRAMES)) for s in sizes]
