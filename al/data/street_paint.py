"""Painting the street of one drive: the static world (sky, buildings, trees, ground) and the
objects that move through it (cars, persons, poles with signs, road-works cones and barriers).

Everything is drawn on a *canvas* a few pixels larger than the frame, in planar float32
`(3, H, W)` with a uint8 label map beside it; `al.data.drives` crops each frame out of it
(ego-motion) and lights it. The geometry is a perspective street: depth `t` runs from 0 at
the horizon to 1 at the bottom row, and an object at depth `tc` stands on row
`horizon + tc * (1 - horizon)` with a size proportional to `tc`.

Classes: 0 road, 1 sidewalk, 2 building, 3 vegetation, 4 sky, 5 car, 6 person, 7 pole/sign
(traffic furniture: poles, signs, road-works cones and barriers).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CLASS_NAMES: tuple[str, ...] = ("road", "sidewalk", "building", "vegetation", "sky", "car", "person", "pole/sign")
ROAD, SIDEWALK, BUILDING, VEGETATION, SKY, CAR, PERSON, POLE = range(8)

# sky colours (top, horizon) per weather
_SKY = {"clear": ((0.25, 0.45, 0.85), (0.7, 0.8, 0.95)), "overcast": ((0.55, 0.57, 0.6), (0.8, 0.8, 0.82)),
        "dusk": ((0.3, 0.3, 0.6), (0.95, 0.6, 0.35)), "rain": ((0.35, 0.37, 0.4), (0.55, 0.56, 0.58)),
        "night": ((0.01, 0.02, 0.06), (0.08, 0.08, 0.14))}
_WALLS = np.array([(0.55, 0.3, 0.25), (0.75, 0.7, 0.6), (0.5, 0.5, 0.52), (0.85, 0.85, 0.8), (0.4, 0.35, 0.3)],
                  np.float32)
SIGN_COLOURS = ((0.8, 0.1, 0.1), (0.1, 0.2, 0.8), (0.9, 0.8, 0.1), (0.9, 0.9, 0.9))
_ORANGE = (0.95, 0.45, 0.05)


def rgb(colour: Sequence[float] | np.ndarray) -> np.ndarray:
    """A colour as a planar `(3, 1, 1)` float32 array."""
    return np.asarray(colour, np.float32).reshape(3, 1, 1)


def smooth_noise(rng: np.random.Generator, h: int, w: int, cells: tuple[int, int]) -> np.ndarray:
    """Bilinearly upsampled Gaussian grid of `cells` -> `(h, w)` low-frequency noise (std ~ 0.7)."""
    cy, cx = max(1, cells[0]), max(1, cells[1])
    grid = rng.standard_normal((cy + 1, cx + 1)).astype(np.float32)
    gy, gx = np.linspace(0, cy, h, dtype=np.float32), np.linspace(0, cx, w, dtype=np.float32)
    y0, x0 = np.minimum(gy.astype(int), cy - 1), np.minimum(gx.astype(int), cx - 1)
    fy, fx = (gy - y0)[:, None], (gx - x0)[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bot = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bot * fy


@dataclass
class Canvas:
    """The drive's world in canvas coordinates: image `(3, H, W)`, label `(H, W)`, lights `(3, H, W)`."""

    img: np.ndarray
    label: np.ndarray
    emit: np.ndarray  # light sources added after the exposure (lit windows and car lights at night)
    horizon: float
    vx: float  # vanishing point (fraction of the width)
    cb: float  # road centre at the bottom row
    rw: float  # road half-width at the bottom (fraction of the width)
    sw: float  # sidewalk width at the bottom

    @property
    def shape(self) -> tuple[int, int]:
        return self.label.shape  # type: ignore[return-value]

    def centre(self, tc: float) -> float:
        return self.vx + (self.cb - self.vx) * tc

    def row(self, tc: float) -> float:
        """Canvas row (fraction of the height) of the ground at depth `tc`."""
        return self.horizon + tc * (1 - self.horizon)

    def box(self, v0: float, v1: float, u0: float, u1: float):
        """Pixel slices covering `[v0, v1] x [u0, u1]` (fractions) and the pixel-centre grids there,
        or None when the box is off the canvas or empty."""
        h, w = self.shape
        y0, y1 = max(0, math.floor(v0 * h - 0.5)), min(h, math.ceil(v1 * h + 0.5))
        x0, x1 = max(0, math.floor(u0 * w - 0.5)), min(w, math.ceil(u1 * w + 0.5))
        if y1 <= y0 or x1 <= x0:
            return None
        v, u = _centres(h), _centres(w)
        return (slice(y0, y1), slice(x0, x1)), v[y0:y1, None], u[None, x0:x1]  # (h', 1), (1, w')

    def put(self, where, mask: np.ndarray, cls: int | None, colour: np.ndarray, *, light: bool = False) -> None:
        """Paint `colour` where `mask` is set inside the slices `where` (class `cls`; None: image only)."""
        ys, xs = where
        np.copyto((self.emit if light else self.img)[:, ys, xs], colour, where=mask)
        if cls is not None:
            np.copyto(self.label[ys, xs], np.uint8(cls), where=mask)


@functools.lru_cache(maxsize=16)
def _centres(n: int) -> np.ndarray:
    """Pixel centres of `n` pixels as fractions of the extent: `(n,)` float32 (read-only)."""
    c = (np.arange(n, dtype=np.float32) + 0.5) / n
    c.setflags(write=False)
    return c


def paint_world(rng: np.random.Generator, h: int, w: int, weather: str, road_works: bool) -> Canvas:
    """The static street of one drive on an `(h, w)` canvas: sky, buildings, trees and ground."""
    v = ((np.arange(h, dtype=np.float32) + 0.5) / h)[:, None]  # (H, 1) 0 top .. 1 bottom
    u = ((np.arange(w, dtype=np.float32) + 0.5) / w)[None, :]  # (1, W)
    yy, xx = np.arange(h)[:, None], np.arange(w)[None, :]
    px = h / 64.0  # pixel scale relative to the default height
    night = weather == "night"
    cv = Canvas(np.zeros((3, h, w), np.float32), np.full((h, w), SKY, np.uint8), np.zeros((3, h, w), np.float32),
                horizon=rng.uniform(0.32, 0.55), vx=rng.uniform(0.3, 0.7), cb=rng.uniform(0.35, 0.65),
                rw=rng.uniform(0.2, 0.5), sw=rng.uniform(0.06, 0.3))
    t = np.clip((v - cv.horizon) / (1 - cv.horizon), 0.0, None)  # (H, 1) depth
    below = v >= cv.horizon  # (H, 1)
    du = np.abs(u - (cv.vx + (cv.cb - cv.vx) * t))  # (H, W)
    road = below & (du < cv.rw * t)
    side = below & ~road & (du < (cv.rw + cv.sw) * t)
    everything = (slice(None), slice(None))

    # sky
    top_c, hor_c = _SKY[weather]
    jitter = rng.uniform(-0.05, 0.05, 3) * (0.2 if night else 1.0)
    s = np.clip(v / cv.horizon, 0, 1)[None]  # (1, H, 1)
    sky = rgb(np.add(top_c, jitter)) * (1 - s) + rgb(np.add(hor_c, jitter)) * s  # (3, H, 1)
    clouds = np.clip(smooth_noise(rng, h, w, (3, 6)) - rng.uniform(0.0, 0.8), 0, 1)
    cv.img[:] = sky + ((0.15 if night else 0.9) - sky) * (0.6 * clouds)

    # buildings with window grids
    if rng.random() < 0.85:
        edges = np.cumsum(rng.uniform(0.06, 0.25, 16)) - rng.uniform(0, 0.1)
        block = np.searchsorted(edges, u[0])  # (W,) block id per column
        nb = int(block.max()) + 1
        present = rng.random(nb) < rng.uniform(0.4, 1.0)
        height = rng.uniform(0.15, 0.95, nb) * cv.horizon
        slope = 0.3 + 0.7 * np.clip(np.abs(u[0] - cv.vx) / 0.5, 0, 1)  # lower near the vanishing point
        bmask = ~below & (v > (cv.horizon - height[block] * slope)[None, :]) & present[block][None, :]
        wall = _WALLS[rng.integers(0, len(_WALLS), nb)] * rng.uniform(0.8, 1.15, (nb, 1)).astype(np.float32)
        per_x, per_y = rng.integers(3, 8, nb) * px, rng.integers(3, 7, nb) * px
        win = (((xx + 7 * block[None, :]) % per_x[block][None, :]) < 0.5 * per_x[block][None, :]) & \
              (((yy + 3 * block[None, :]) % per_y[block][None, :]) < 0.5 * per_y[block][None, :])
        bcol = wall[block].T[:, None, :] * (1 + 0.08 * smooth_noise(rng, h, w, (h // 4, w // 4)))  # (3, H, W)
        if rng.random() < 0.9:
            lit = (0.9, 0.8, 0.45) if weather == "dusk" else (0.15, 0.18, 0.25)
            bcol = np.where(win, rgb(lit), bcol)
        cv.put(everything, bmask, BUILDING, bcol)
        if night:  # some windows are lit: light sources, visible whatever the exposure
            lit_win = bmask & win & (rng.random((h, w)) < 0.35)
            cv.put(everything, lit_win, None, rgb((0.55, 0.45, 0.2)), light=True)

    # trees (crowns above the horizon)
    foliage = smooth_noise(rng, h, w, (max(2, h // 5), max(2, w // 5)))
    vcol = rgb([rng.uniform(0.1, 0.3), rng.uniform(0.3, 0.55), rng.uniform(0.05, 0.2)]) * (0.75 + 0.35 * foliage)
    for _ in range(min(int(rng.poisson(1.8)), 5)):
        ry = rng.uniform(0.06, 0.2)
        rx = ry * h / w * rng.uniform(0.7, 1.4)
        uc, vc = rng.uniform(0, 1), cv.horizon - rng.uniform(0.0, 0.25)
        crown = (((u - uc) / rx) ** 2 + ((v - vc) / ry) ** 2 < 1 + 0.3 * foliage) & (v < cv.horizon + 0.04)
        cv.put(everything, crown, VEGETATION, vcol)

    # ground: road (fresh asphalt patches at road works; wet sheen in rain), sidewalk, verge
    grain = rng.random((h, w), dtype=np.float32)
    rcol = rgb([1.0, 1.0, 1.04]) * np.float32(rng.uniform(0.25, 0.45)) * (0.92 + 0.12 * grain)  # (3, H, W)
    if road_works:
        patch = (np.abs(u - cv.vx - rng.uniform(-0.2, 0.2)) < 0.25) & (t > rng.uniform(0.2, 0.6))
        rcol = np.where(patch, rcol * 0.55, rcol)
    if weather == "rain":  # the sky reflected in the wet road, strongest far away
        rcol = rcol + (0.6 - rcol) * (0.45 * (1 - t) * (0.7 + 0.3 * foliage))
    cv.put(everything, road, ROAD, rcol)
    scol_base = rgb([rng.uniform(0.5, 0.7), rng.uniform(0.48, 0.65), rng.uniform(0.45, 0.6)])
    tiles = (t * 24 % 1) < 0.15  # (H, 1)
    scol = scol_base * (np.where(tiles, 0.8, 1.0) * (0.95 + 0.1 * grain)).astype(np.float32)
    cv.put(everything, side, SIDEWALK, scol)
    verge = below & ~road & ~side
    if rng.random() < 0.45:
        cv.put(everything, verge, VEGETATION, vcol * 1.1)
    else:
        cv.put(everything, verge, SIDEWALK, scol)
    if rng.random() < 0.5:  # a cast shadow over the ground (image only)
        a, b = rng.uniform(0.0, 0.6), rng.uniform(-1.0, 1.0)
        edge = a + b * (v - cv.horizon)
        shade = below & ((u < edge) if rng.random() < 0.5 else (u > 1 - edge))
        cv.img *= np.where(shade, np.float32(rng.uniform(0.45, 0.7)), np.float32(1.0))
    return cv


# --------------------------------------------------------------------------------------------------
# objects: `spec` holds what was drawn for the drive, `tc` the depth in this frame


def paint_car(cv: Canvas, spec: dict, tc: float, night: bool) -> None:
    road_w = 2 * cv.rw * tc
    cw = road_w * spec["width"]
    chv = cw * cv.shape[1] * spec["height"] / cv.shape[0]
    vb, cx = cv.row(tc), cv.centre(tc) + spec["lane"] * (road_w - cw)
    got = cv.box(vb - chv, vb, cx - cw / 2, cx + cw / 2)
    if got is None:
        return
    where, v, u = got
    du = np.abs(u - cx)
    body = (v > vb - 0.55 * chv) & (du < cw / 2)
    cabin = (v <= vb - 0.55 * chv) & (du < 0.35 * cw)
    wheels = body & (v > vb - 0.15 * chv) & (np.abs(du - 0.32 * cw) < 0.08 * cw)
    cv.put(where, body, CAR, spec["colour"])
    cv.put(where, cabin, CAR, rgb((0.1, 0.12, 0.18)))
    cv.put(where, wheels, CAR, rgb((0.0, 0.0, 0.0)))
    if night:  # head- or tail-lights
        lamps = (np.abs(v - (vb - 0.35 * chv)) < max(0.07 * chv, 0.5 / cv.shape[0])) & \
                (np.abs(du - 0.36 * cw) < max(0.07 * cw, 0.5 / cv.shape[1]))
        cv.put(where, lamps, None, spec["lamp"], light=True)


def paint_person(cv: Canvas, spec: dict, tc: float) -> None:
    h, w = cv.shape
    phv = spec["height"] * tc * (1 - cv.horizon)
    pwu = max(1.5, 0.28 * phv * h) / w  # width in u units
    vb = cv.row(tc)
    cx = cv.centre(tc) + spec["side"] * (cv.rw + cv.sw * spec["off"]) * tc
    got = cv.box(vb - phv, vb, cx - pwu, cx + pwu)
    if got is None:
        return
    where, v, u = got
    torso = ((u - cx) / (pwu / 2)) ** 2 + ((v - (vb - 0.55 * phv)) / (0.28 * phv)) ** 2 < 1
    legs = (v > vb - 0.35 * phv) & (np.abs(u - cx) < 0.35 * pwu)
    head = ((u - cx) * w) ** 2 + ((v - (vb - 0.88 * phv)) * h) ** 2 < (0.12 * phv * h) ** 2 + 0.25
    cv.put(where, torso | legs, PERSON, spec["colour"])
    cv.put(where, head, PERSON, rgb((0.8, 0.6, 0.5)))


def paint_pole(cv: Canvas, spec: dict, tc: float) -> None:
    h, w = cv.shape
    vb = cv.row(tc)
    cx = cv.centre(tc) + spec["side"] * (cv.rw + cv.sw * 0.15) * tc
    phv = spec["height"] * tc * (1 - cv.horizon)
    half = max(0.6, 0.9 * tc * h / 64.0) / w  # half-width in u units
    got = cv.box(vb - phv - 2.5 * half * w / h, vb, cx - 3 * half, cx + 3 * half)
    if got is None:
        return
    where, v, u = got
    stick = (np.abs(u - cx) < half) & (v > vb - phv)
    sign = (np.abs(u - cx) < 3 * half) & (np.abs(v - (vb - phv)) < 2.5 * half * w / h)
    cv.put(where, stick, POLE, spec["grey"])
    cv.put(where, sign, POLE, spec["colour"])


def paint_cone(cv: Canvas, spec: dict, tc: float) -> None:
    """A road-works cone on the road (orange, one white band), or a striped barrier board."""
    h, w = cv.shape
    vb, road_w = cv.row(tc), 2 * cv.rw * tc
    cx = cv.centre(tc) + spec["lane"] * road_w / 2
    if spec["barrier"]:
        bw, bh = 0.35 * road_w, 0.12 * road_w * w / h
        got = cv.box(vb - bh, vb, cx - bw / 2, cx + bw / 2)
        if got is None:
            return
        where, v, u = got
        legs = np.abs(np.abs(u - cx) - 0.4 * bw) < max(0.03 * bw, 0.5 / w)
        board = (v < vb - 0.45 * bh) & (np.abs(u - cx) < bw / 2)
        stripes = ((u - cx) * w + (v * h)) % max(2.0, 0.2 * bw * w) < max(1.0, 0.1 * bw * w)
        cv.put(where, legs, POLE, rgb((0.3, 0.3, 0.3)))
        cv.put(where, board & stripes, POLE, rgb(_ORANGE))
        cv.put(where, board & ~stripes, POLE, rgb((0.95, 0.95, 0.95)))
        return
    ch = 0.14 * road_w * w / h
    cwu = 0.05 * road_w
    got = cv.box(vb - ch, vb, cx - cwu, cx + cwu)
    if got is None:
        return
    where, v, u = got
    frac = (vb - v) / ch  # 0 at the foot, 1 at the tip
    cone = np.abs(u - cx) < np.maximum(cwu * (1 - frac), 0.5 / w)
    band = (frac > 0.45) & (frac < 0.65)
    cv.put(where, cone, POLE, rgb(_ORANGE))
    cv.put(where, cone & band, POLE, rgb((0.95, 0.95, 0.95)))
