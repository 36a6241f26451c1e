"""`synthetic_streets`: a procedurally generated street-scene segmentation set (no files).

Every image is a pure function of `(seed, split, index, size)`: a perspective street (horizon
height, vanishing point, road and sidewalk widths vary), building blocks with window grids,
trees, and, in a minority of images, cars, persons and poles with signs. Lighting varies
(brightness, contrast, colour cast, sky mood, shadows, fog, blur, sensor noise), so images
differ in how hard they are, and the entropy of a trained model varies between them.

Classes: 0 road, 1 sidewalk, 2 building, 3 vegetation, 4 sky, 5 car, 6 person, 7 pole/sign.
No pixel is ignored. Image-level frequencies: car ~50 %, pole/sign ~25 %, person ~20 %.

Throughput: the whole split is rendered once on first access (vectorised numpy per image,
about 1 ms per 64x128 image) and cached in memory; `tensors()` returns the cached
`(images, targets)` pair so a trainer can index whole batches without a DataLoader.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from al.data.base import SEG_IGNORE_INDEX, check_split, normalize
from hwbench.errors import UserError

logger = logging.getLogger(__name__)

CLASS_NAMES: tuple[str, ...] = ("road", "sidewalk", "building", "vegetation", "sky", "car", "person", "pole/sign")
ROAD, SIDEWALK, BUILDING, VEGETATION, SKY, CAR, PERSON, POLE = range(8)
SPLITS = {"train": 0, "val": 1}
DEFAULT_N = {"train": 600, "val": 200}
DEFAULT_SIZE = (64, 128)  # (H, W)

# Image-level probabilities of the object classes (the rare ones).
P_CARS, P_PERSONS, P_POLES = 0.5, 0.2, 0.25


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: tuple[int, int]) -> np.ndarray:
    """Bilinearly upsampled Gaussian grid of `cells` -> `(h, w)` low-frequency noise (std ~ 0.7)."""
    cy, cx = max(1, cells[0]), max(1, cells[1])
    grid = rng.standard_normal((cy + 1, cx + 1))
    gy, gx = np.linspace(0, cy, h), np.linspace(0, cx, w)
    y0, x0 = np.minimum(gy.astype(int), cy - 1), np.minimum(gx.astype(int), cx - 1)
    fy, fx = (gy - y0)[:, None], (gx - x0)[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bot = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return (top * (1 - fy) + bot * fy).astype(np.float32)


def _rgb(colour: Sequence[float] | np.ndarray) -> np.ndarray:
    """A colour as a planar `(3, 1, 1)` float32 array."""
    return np.asarray(colour, np.float32).reshape(3, 1, 1)


def _random_colour(rng: np.random.Generator, lo: float = 0.15, hi: float = 0.9) -> np.ndarray:
    return _rgb(rng.uniform(lo, hi, 3))


class _Canvas:
    """Planar image `(3, H, W)` + label `(H, W)`; `put` paints a class where a mask is set."""

    def __init__(self, h: int, w: int) -> None:
        self.img = np.zeros((3, h, w), np.float32)
        self.label = np.full((h, w), SKY, np.uint8)

    def put(self, mask: np.ndarray, cls: int, colour: np.ndarray) -> None:
        self.img = np.where(mask, colour, self.img)
        self.label = np.where(mask, np.uint8(cls), self.label)


def render_scene(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """One scene: float32 image `(h, w, 3)` in [0, 1] and uint8 label `(h, w)`."""
    v = ((np.arange(h, dtype=np.float32) + 0.5) / h)[:, None]  # (H, 1) 0 top .. 1 bottom
    u = ((np.arange(w, dtype=np.float32) + 0.5) / w)[None, :]  # (1, W)
    yy, xx = np.arange(h)[:, None], np.arange(w)[None, :]
    px = h / 64.0  # pixel scale relative to the default height
    cv = _Canvas(h, w)

    # --- geometry ---------------------------------------------------------------------------
    horizon = rng.uniform(0.32, 0.55)
    vx = rng.uniform(0.3, 0.7)  # vanishing point
    cb = rng.uniform(0.35, 0.65)  # road centre at the bottom row
    rw = rng.uniform(0.2, 0.5)  # road half-width at the bottom (fraction of W)
    sw = rng.uniform(0.06, 0.3)  # sidewalk width at the bottom
    t = np.clip((v - horizon) / (1 - horizon), 0.0, None)  # (H, 1) depth: 0 horizon, 1 bottom
    below = v >= horizon  # (H, 1)
    centre = vx + (cb - vx) * t  # (H, 1)
    du = np.abs(u - centre)  # (H, W)
    road = below & (du < rw * t)
    side = below & ~road & (du < (rw + sw) * t)
    verge = below & ~road & ~side

    # --- sky ----------------------------------------------------------------------------------
    mood = rng.choice(3, p=[0.55, 0.3, 0.15])  # clear, overcast, dusk
    top_c, hor_c = (((0.25, 0.45, 0.85), (0.7, 0.8, 0.95)), ((0.55, 0.57, 0.6), (0.8, 0.8, 0.82)),
                    ((0.3, 0.3, 0.6), (0.95, 0.6, 0.35)))[mood]
    jitter = rng.uniform(-0.05, 0.05, 3)
    s = np.clip(v / horizon, 0, 1)[None]  # (1, H, 1)
    sky = _rgb(np.add(top_c, jitter)) * (1 - s) + _rgb(np.add(hor_c, jitter)) * s  # (3, H, 1)
    clouds = np.clip(_smooth_noise(rng, h, w, (3, 6)) - rng.uniform(0.0, 0.8), 0, 1)
    cv.img = sky + (0.9 - sky) * (0.6 * clouds)  # (3, H, W)

    # --- buildings ------------------------------------------------------------------------------
    if rng.random() < 0.85:
        widths = rng.uniform(0.06, 0.25, 16)
        edges = np.cumsum(widths) - rng.uniform(0, 0.1)
        block = np.searchsorted(edges, u[0])  # (W,) block id per column
        nb = int(block.max()) + 1
        present = rng.random(nb) < rng.uniform(0.4, 1.0)
        height = rng.uniform(0.15, 0.95, nb) * horizon
        slope = 0.3 + 0.7 * np.clip(np.abs(u[0] - vx) / 0.5, 0, 1)  # lower near the vanishing point
        top = horizon - height[block] * slope  # (W,)
        bmask = ~below & (v > top[None, :]) & present[block][None, :]
        palette = np.array([(0.55, 0.3, 0.25), (0.75, 0.7, 0.6), (0.5, 0.5, 0.52), (0.85, 0.85, 0.8),
                            (0.4, 0.35, 0.3)], np.float32)
        wall = palette[rng.integers(0, len(palette), nb)] * rng.uniform(0.8, 1.15, (nb, 1)).astype(np.float32)
        per_x, per_y = rng.integers(3, 8, nb) * px, rng.integers(3, 7, nb) * px
        win = (((xx + 7 * block[None, :]) % per_x[block][None, :]) < 0.5 * per_x[block][None, :]) & \
              (((yy + 3 * block[None, :]) % per_y[block][None, :]) < 0.5 * per_y[block][None, :])
        lit = (0.9, 0.8, 0.45) if mood == 2 else (0.15, 0.18, 0.25)
        bcol = wall[block].T[:, None, :] * (1 + 0.08 * _smooth_noise(rng, h, w, (h // 4, w // 4)))  # (3, H, W)
        if rng.random() < 0.9:
            bcol = np.where(win, _rgb(lit), bcol)
        cv.put(bmask, BUILDING, bcol)

    # --- trees (crowns above the horizon) -----------------------------------------------------
    foliage = _smooth_noise(rng, h, w, (max(2, h // 5), max(2, w // 5)))
    green = _rgb([rng.uniform(0.1, 0.3), rng.uniform(0.3, 0.55), rng.uniform(0.05, 0.2)])
    vcol = green * (0.75 + 0.35 * foliage)  # (3, H, W)
    for _ in range(min(int(rng.poisson(1.8)), 5)):
        ry = rng.uniform(0.06, 0.2)
        rx = ry * h / w * rng.uniform(0.7, 1.4)
        uc, vc = rng.uniform(0, 1), horizon - rng.uniform(0.0, 0.25)
        crown = (((u - uc) / rx) ** 2 + ((v - vc) / ry) ** 2 < 1 + 0.3 * foliage) & (v < horizon + 0.04)
        cv.put(crown, VEGETATION, vcol)

    # --- ground: road, sidewalk, verge (grass or more sidewalk) ----------------------------------
    grain = rng.random((h, w), dtype=np.float32)
    rcol = _rgb([1.0, 1.0, 1.04]) * np.float32(rng.uniform(0.25, 0.45) * (0.92 + 0.12 * grain))  # (3, H, W)
    if rng.random() < 0.7:  # dashed centre line
        dash = (du < (0.006 + 0.012 * t)) & (((np.sqrt(t) * 10 + rng.random()) % 1) < 0.5)
        rcol = np.where(dash, np.float32(0.85), rcol)
    cv.put(road, ROAD, rcol)
    scol_base = _rgb([rng.uniform(0.5, 0.7), rng.uniform(0.48, 0.65), rng.uniform(0.45, 0.6)])
    tiles = (t * 24 % 1) < 0.15  # (H, 1)
    scol = scol_base * (np.where(tiles, 0.8, 1.0) * (0.95 + 0.1 * grain)).astype(np.float32)
    cv.put(side, SIDEWALK, scol)
    if rng.random() < 0.45:
        cv.put(verge, VEGETATION, vcol * 1.1)
    else:
        cv.put(verge, SIDEWALK, scol)

    # --- objects, painted far to near ------------------------------------------------------------
    painters: list[tuple[float, Callable[[], None]]] = []

    def centre_at(tc: float) -> float:
        return vx + (cb - vx) * tc

    if rng.random() < P_CARS:
        for _ in range(int(rng.integers(1, 4))):
            tc = rng.uniform(0.2, 0.95)
            vb = horizon + tc * (1 - horizon)
            road_w = 2 * rw * tc
            cw = road_w * rng.uniform(0.3, 0.45)
            chv = cw * w * rng.uniform(0.5, 0.75) / h
            cx = centre_at(tc) + rng.uniform(-0.5, 0.5) * (road_w - cw)
            colour = _random_colour(rng)

            def car(vb=vb, cw=cw, chv=chv, cx=cx, colour=colour) -> None:
                body = (v > vb - 0.55 * chv) & (v <= vb) & (np.abs(u - cx) < cw / 2)
                cabin = (v > vb - chv) & (v <= vb - 0.55 * chv) & (np.abs(u - cx) < 0.35 * cw)
                wheels = body & (v > vb - 0.15 * chv) & (np.abs(np.abs(u - cx) - 0.32 * cw) < 0.08 * cw)
                cv.put(body, CAR, colour)
                cv.put(cabin, CAR, _rgb([0.1, 0.12, 0.18]))
                cv.put(wheels, CAR, _rgb([0.0, 0.0, 0.0]))

            painters.append((tc, car))

    def sidewalk_x(tc: float, frac: float) -> float:
        return centre_at(tc) + rng.choice([-1.0, 1.0]) * (rw + sw * frac) * tc

    if rng.random() < P_POLES:
        for _ in range(int(rng.integers(1, 3))):
            tc = rng.uniform(0.2, 0.95)
            vb, cx = horizon + tc * (1 - horizon), sidewalk_x(tc, 0.15)
            phv = rng.uniform(0.8, 1.4) * tc * (1 - horizon)
            half_px = max(0.6, 0.9 * tc * px)
            sign_c = _rgb([(0.8, 0.1, 0.1), (0.1, 0.2, 0.8), (0.9, 0.8, 0.1), (0.9, 0.9, 0.9)][rng.integers(0, 4)])
            grey = _rgb([rng.uniform(0.2, 0.5)] * 3)

            def pole(vb=vb, cx=cx, phv=phv, half_px=half_px, sign_c=sign_c, grey=grey) -> None:
                stick = (np.abs(xx - cx * w) < half_px) & (v > vb - phv) & (v <= vb)
                sign = (np.abs(xx - cx * w) < 3 * half_px) & (np.abs(v - (vb - phv)) < 2.5 * half_px / h)
                cv.put(stick, POLE, grey)
                cv.put(sign, POLE, sign_c)

            painters.append((tc, pole))

    if rng.random() < P_PERSONS:
        for _ in range(int(rng.integers(1, 3))):
            tc = rng.uniform(0.25, 0.95)
            vb, cx = horizon + tc * (1 - horizon), sidewalk_x(tc, rng.uniform(0.2, 0.8))
            phv = rng.uniform(0.4, 0.6) * tc * (1 - horizon)
            pwu = max(1.5, 0.28 * phv * h) / w  # width in u units
            cloth = _random_colour(rng, 0.05, 0.8)

            def person(vb=vb, cx=cx, phv=phv, pwu=pwu, cloth=cloth) -> None:
                torso = ((u - cx) / (pwu / 2)) ** 2 + ((v - (vb - 0.55 * phv)) / (0.28 * phv)) ** 2 < 1
                legs = (v > vb - 0.35 * phv) & (v <= vb) & (np.abs(u - cx) < 0.35 * pwu)
                head = ((u - cx) * w) ** 2 + ((v - (vb - 0.88 * phv)) * h) ** 2 < (0.12 * phv * h) ** 2 + 0.25
                cv.put(torso | legs, PERSON, cloth)
                cv.put(head, PERSON, _rgb([0.8, 0.6, 0.5]))

            painters.append((tc, person))

    for _, painter in sorted(painters, key=lambda p: p[0]):
        painter()

    # --- lighting -----------------------------------------------------------------------------
    img = cv.img
    if rng.random() < 0.5:  # cast shadow over the ground
        a, b = rng.uniform(0.0, 0.6), rng.uniform(-1.0, 1.0)
        shade = below & ((u < a + b * (v - horizon)) if rng.random() < 0.5 else (u > 1 - a - b * (v - horizon)))
        img = img * np.where(shade, np.float32(rng.uniform(0.45, 0.7)), np.float32(1.0))
    contrast, brightness = rng.uniform(0.7, 1.2), rng.uniform(0.6, 1.3)
    cast = _rgb(rng.uniform(0.85, 1.15, 3))
    img = ((img - 0.5) * np.float32(contrast) + 0.5) * (np.float32(brightness) * cast)
    if rng.random() < 0.15:  # fog, denser near the horizon
        f = np.float32(rng.uniform(0.3, 0.7)) * (1 - 0.7 * t)  # (H, 1)
        img = img + (0.75 - img) * f
    if rng.random() < 0.15:  # horizontal motion blur
        img = (img + np.roll(img, 1, axis=2) + np.roll(img, -1, axis=2)) / 3
    sigma = rng.uniform(0.005, 0.04) * np.sqrt(12.0)  # uniform noise with std sigma
    img = img + np.float32(sigma) * (rng.random((3, h, w), dtype=np.float32) - 0.5)
    img = np.clip(img, 0.0, 1.0).astype(np.float32, copy=False).transpose(1, 2, 0)  # (H, W, 3)
    return img, cv.label


def scene_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of image `index` of `split`: depends on nothing else."""
    return np.random.default_rng([int(seed), SPLITS[split], int(index)])


def generate(seed: int, split: str, n: int, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Render images 0..n-1 of a split: uint8 images `(n, H, W, 3)` and uint8 labels `(n, H, W)`."""
    h, w = size
    images = np.empty((n, h, w, 3), np.uint8)
    labels = np.empty((n, h, w), np.uint8)
    for i in range(n):
        img, lab = render_scene(scene_rng(seed, split, i), h, w)
        images[i] = np.round(img * 255.0)
        labels[i] = lab
    return images, labels


@functools.lru_cache(maxsize=8)
def _cached(seed: int, split: str, n: int, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = generate(seed, split, n, size)
    x = normalize(torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)).contiguous()  # (N, 3, H, W)
    y = torch.from_numpy(labels).long()  # (N, H, W)
    logger.debug("synthetic_streets %s: rendered %d images of %dx%d", split, n, *size)
    return x, y


class SyntheticStreets(Dataset):
    """Embedded street-scene segmentation set; see the module docstring.

    `n` images per split (default 600 train / 200 val), `size` (H, W) (default 64x128),
    `seed` picks the world. No augmentation: `ds[i]` equals `ds.tensors()[k][i]`.
    """

    name = "synthetic_streets"
    task = "segmentation"
    num_classes = len(CLASS_NAMES)
    ignore_index = SEG_IGNORE_INDEX
    class_names = CLASS_NAMES
    augment = False

    def __init__(self, root: str | None = None, split: str = "train", *, n: int | None = None,
                 size: Sequence[int] = DEFAULT_SIZE, seed: int = 0) -> None:
        if root not in (None, ""):
            raise UserError("synthetic_streets is generated in memory and takes no root; drop the root setting")
        self.split = check_split(self.name, split, tuple(SPLITS))
        self.n = DEFAULT_N[split] if n is None else int(n)
        if self.n < 1:
            raise UserError(f"synthetic_streets: n must be >= 1, got {self.n}")
        if len(size) != 2 or min(size) < 16:
            raise UserError(f"synthetic_streets: size must be [H, W] with both >= 16, got {list(size)}")
        self.size = (int(size[0]), int(size[1]))
        self.seed = int(seed)

    def __len__(self) -> int:
        return self.n

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All samples at once: images float32 `(N, 3, H, W)` normalised, targets int64 `(N, H, W)`.

        Cached and shared between instances with the same settings: treat as read-only.
        """
        return _cached(self.seed, self.split, self.n, self.size)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.tensors()
        return x[index], y[index]

    def raw(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Image `index` as uint8 `(H, W, 3)` plus its label `(H, W)` (for plots)."""
        img, lab = render_scene(scene_rng(self.seed, self.split, index), *self.size)
        return np.round(img * 255.0).astype(np.uint8), lab
