"""The embedded drives: short camera sequences through procedurally drawn streets.

A *drive* is `n_frames` consecutive frames (default 12 at 10 fps) of one car on one street.
Everything about it is a pure function of `(seed, split, drive index, n_frames, size)`:

- per drive: the street layout (horizon, vanishing point, road and sidewalk widths, buildings,
  trees, verge), the weather (clear 45 %, overcast 25 %, dusk 10 %, rain 10 %, night 10 %),
  road works (12 %), the exposure (brightness, contrast, colour cast, fog, sensor noise), the
  ego speed and which objects are around: cars (55 % of drives), persons (20 %), poles with
  signs (25 %), road-works cones and barriers (the road-works drives);
- per frame: the car moves forward (objects approach and grow, dashes slide down), the camera
  sways a pixel or two (ego-motion), the exposure drifts by a few per cent, persons walk,
  and the sensor noise (and rain streaks) are drawn afresh. Consecutive frames are therefore
  near-duplicates, while drives differ in layout and light.

Rare scenes (night, rain, road works) and rare classes (person, pole/sign) live in a minority of
drives, as on a real fleet. Splits are sets of drives: frames of one drive never straddle two
splits (`drive_id` = "<split>-<index>").

    images, labels, info = render_drive(seed=0, split="train", drive=3, size=(64, 128))
    # images uint8 (12, 64, 128, 3), labels uint8 (12, 64, 128), info: DriveInfo
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from al.data import street_paint as sp
from hwbench.errors import UserError

SPLITS = {"train": 0, "val": 1, "test": 2, "pretrain": 3}  # "pretrain": drives only `al pretrain` sees
FPS = 10.0
DRIVE_FRAMES = 12
WEATHERS = ("clear", "overcast", "dusk", "rain", "night")
WEATHER_P = (0.45, 0.25, 0.10, 0.10, 0.10)
RARE_SCENES = ("night", "rain", "road_works")
P_ROAD_WORKS = 0.12
P_CARS, P_PERSONS, P_POLES = 0.55, 0.2, 0.25  # share of drives with such objects around


@dataclass(frozen=True)
class DriveInfo:
    """What one drive is: its id, split, weather, road works, length and camera rate."""

    drive_id: str
    split: str
    index: int
    weather: str
    road_works: bool
    n_frames: int
    fps: float = FPS

    @property
    def rare_scenes(self) -> tuple[str, ...]:
        """The rare scenes of this drive (subset of `RARE_SCENES`), e.g. ("night", "road_works")."""
        return tuple(s for s in RARE_SCENES if s == self.weather or (s == "road_works" and self.road_works))

    def timestamps_s(self) -> np.ndarray:
        """Seconds since the drive started, one per frame: `k / fps`."""
        return np.arange(self.n_frames, dtype=np.float64) / self.fps


def drive_id(split: str, index: int) -> str:
    return f"{split}-{index:05d}"


def drive_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of one drive: depends on nothing else."""
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(seed) >> 32, SPLITS[split], int(index)])


def _objects(rng: np.random.Generator, n_frames: int, speed: float, road_works: bool) -> list[tuple[str, dict]]:
    """The drive's objects: (kind, spec) with depth `tc0` at frame 0 and `dtc` per frame."""
    reach = speed * n_frames  # depth the car covers during the drive: objects may enter later
    objs: list[tuple[str, dict]] = []
    if rng.random() < P_CARS:
        for _ in range(int(rng.integers(1, 4))):
            objs.append(("car", dict(tc0=rng.uniform(0.2, 0.95), dtc=rng.uniform(-0.01, 0.012),
                                     lane=rng.uniform(-0.5, 0.5), width=rng.uniform(0.3, 0.45),
                                     height=rng.uniform(0.5, 0.75), colour=sp.rgb(rng.uniform(0.15, 0.9, 3)),
                                     lamp=sp.rgb((0.9, 0.9, 0.75) if rng.random() < 0.5 else (0.9, 0.1, 0.05)))))
    if rng.random() < P_POLES:
        for _ in range(int(rng.integers(1, 3))):
            objs.append(("pole", dict(tc0=rng.uniform(0.2 - reach, 0.95), dtc=speed, side=rng.choice([-1.0, 1.0]),
                                      height=rng.uniform(0.8, 1.4), grey=sp.rgb([rng.uniform(0.2, 0.5)] * 3),
                                      colour=sp.rgb(sp.SIGN_COLOURS[rng.integers(0, 4)]))))
    if rng.random() < P_PERSONS:
        for _ in range(int(rng.integers(1, 3))):
            objs.append(("person", dict(tc0=rng.uniform(0.25 - reach, 0.95), dtc=speed, side=rng.choice([-1.0, 1.0]),
                                        off=rng.uniform(0.2, 0.8), walk=rng.uniform(-0.03, 0.03),
                                        height=rng.uniform(0.4, 0.6), colour=sp.rgb(rng.uniform(0.05, 0.8, 3)))))
    if road_works:
        lane, tc = rng.choice([-1.0, 1.0]) * rng.uniform(0.35, 0.8), rng.uniform(0.15, 0.5)
        for _ in range(int(rng.integers(3, 7))):
            objs.append(("cone", dict(tc0=tc, dtc=speed, lane=lane, barrier=bool(rng.random() < 0.25))))
            tc += rng.uniform(0.08, 0.16)
    return objs


def _paint_objects(cv: sp.Canvas, objs: list[tuple[str, dict]], k: int, night: bool) -> None:
    """Paint every object visible in frame `k`, far to near."""
    placed = []
    for kind, spec in objs:
        tc = spec["tc0"] + k * spec["dtc"]
        if 0.12 <= tc <= 1.1:
            placed.append((tc, kind, spec))
    for tc, kind, spec in sorted(placed, key=lambda p: p[0]):
        if kind == "car":
            sp.paint_car(cv, spec, tc, night)
        elif kind == "person":
            sp.paint_person(cv, dict(spec, off=spec["off"] + k * spec["walk"]), tc)
        elif kind == "pole":
            sp.paint_pole(cv, spec, tc)
        else:
            sp.paint_cone(cv, spec, tc)


def _exposure(rng: np.random.Generator, weather: str) -> dict:
    """Drive-level exposure: contrast, brightness, colour cast, desaturation, noise std, fog."""
    contrast, brightness = rng.uniform(0.7, 1.2), rng.uniform(0.6, 1.3)
    desat, sigma = 0.0, rng.uniform(0.005, 0.04)
    if weather == "dusk":
        brightness = rng.uniform(0.5, 0.9)
    elif weather == "rain":
        contrast, brightness, desat, sigma = rng.uniform(0.55, 0.85), rng.uniform(0.45, 0.8), 0.5, rng.uniform(0.02, 0.05)
    elif weather == "night":
        contrast, brightness, sigma = rng.uniform(0.8, 1.1), rng.uniform(0.2, 0.35), rng.uniform(0.04, 0.08)
    fog_p = {"overcast": 0.25, "rain": 0.5}.get(weather, 0.05)
    fog = rng.uniform(0.3, 0.7) if rng.random() < fog_p else 0.0
    return dict(contrast=contrast, brightness=brightness, cast=sp.rgb(rng.uniform(0.85, 1.15, 3)), desat=desat,
                sigma=sigma, fog=fog)


def render_drive(seed: int, split: str, drive: int, size: tuple[int, int],
                 n_frames: int = DRIVE_FRAMES) -> tuple[np.ndarray, np.ndarray, DriveInfo]:
    """All frames of one drive: uint8 images `(L, H, W, 3)`, uint8 labels `(L, H, W)`, its `DriveInfo`.

    The arrays are read-only (`cached_drive` shares them).
    """
    h, w = int(size[0]), int(size[1])
    if n_frames < 1:
        raise UserError(f"a drive needs at least one frame, got n_frames={n_frames}")
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    info = drive_info(seed, split, drive, n_frames)
    weather, road_works = info.weather, info.road_works
    rng = drive_rng(seed, split, drive)
    my, mx = max(1, h // 32), max(2, w // 32)  # canvas margins: room for the camera to sway
    world = sp.paint_world(rng, h + 2 * my, w + 2 * mx, weather, road_works)
    speed = rng.uniform(0.012, 0.03)  # depth covered per frame
    objs = _objects(rng, n_frames, speed, road_works)
    ex = _exposure(rng, weather)
    night = weather == "night"

    # per-frame camera: sway (integer pixel offsets into the canvas), exposure drift, dash phase
    k = np.arange(n_frames)
    period, phase = rng.uniform(8, 30, 2), rng.uniform(0, 2 * np.pi, 2)
    ox = mx + np.round(rng.integers(0, mx + 1) * np.sin(2 * np.pi * k / period[0] + phase[0])).astype(int)
    oy = my + np.round(rng.integers(0, my + 1) * np.sin(2 * np.pi * k / period[1] + phase[1])).astype(int)
    gain = np.exp(np.cumsum(rng.normal(0.0, 0.015, n_frames))).astype(np.float32)
    dashed = rng.random() < 0.7
    dash_phase = rng.random() - k * speed * 6.0

    hc, wc = world.shape
    v = ((np.arange(hc, dtype=np.float32) + 0.5) / hc)[:, None]
    t = np.clip((v - world.horizon) / (1 - world.horizon), 0.0, None)  # (Hc, 1) depth
    du = np.abs(((np.arange(wc, dtype=np.float32) + 0.5) / wc)[None, :] - (world.vx + (world.cb - world.vx) * t))
    dash_y, dash_x = np.nonzero((du < (0.006 + 0.012 * t)) & (world.label == sp.ROAD)) if dashed else ((), ())
    dash_pos = np.sqrt(t[dash_y, 0]) * 10  # (P,) along the road
    fog = np.float32(ex["fog"]) * (1 - 0.7 * t) if ex["fog"] else None  # (Hc, 1)

    imgs = np.empty((n_frames, 3, h, w), np.float32)
    emits = np.empty((n_frames, 3, h, w), np.float32) if night else None
    labels = np.empty((n_frames, h, w), np.uint8)
    for i in range(n_frames):
        cv = sp.Canvas(world.img.copy(), world.label.copy(), world.emit.copy() if night else world.emit,
                       world.horizon, world.vx, world.cb, world.rw, world.sw)
        if dashed:
            on = ((dash_pos + dash_phase[i]) % 1) < 0.5
            cv.img[:, dash_y[on], dash_x[on]] = 0.85
        _paint_objects(cv, objs, i, night)
        img = cv.img if fog is None else cv.img + (0.75 - cv.img) * fog
        ys, xs = slice(oy[i], oy[i] + h), slice(ox[i], ox[i] + w)
        imgs[i], labels[i] = img[:, ys, xs], cv.label[ys, xs]
        if emits is not None:
            emits[i] = cv.emit[:, ys, xs]

    # exposure, vectorised over the frames: x * scale + offset per frame and channel
    scale = (np.float32(ex["brightness"]) * gain)[:, None, None, None] * ex["cast"]  # (L, 3, 1, 1)
    offset = scale * np.float32(0.5 * (1 - ex["contrast"]))
    x = np.multiply(imgs, scale * np.float32(ex["contrast"]), out=imgs)
    x += offset
    if ex["desat"]:
        x += (x.mean(1, keepdims=True) - x) * np.float32(ex["desat"])
    if emits is not None:
        x += emits
    if weather == "rain":  # streaks, drawn afresh every frame
        drops = rng.random((n_frames, h, w), dtype=np.float32) < 0.006
        streak = drops | np.roll(drops, 1, axis=1) | np.roll(drops, 2, axis=1)
        x += np.float32(0.25) * streak[:, None]
    # sensor noise, uniform with std sigma, drawn afresh every frame; then [0, 1] -> uint8
    amp = np.float32(ex["sigma"] * np.sqrt(12.0))
    noise = rng.random((n_frames, 3, h, w), dtype=np.float32)
    noise *= amp
    x += noise
    x *= np.float32(255.0)
    x += np.float32(0.5 - 127.5 * amp)  # centres the noise; +0.5 rounds on the cast
    np.clip(x, 0.0, 255.0, out=x)
    images = np.ascontiguousarray(x.astype(np.uint8).transpose(0, 2, 3, 1))  # (L, H, W, 3)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels, info


@functools.lru_cache(maxsize=4)
def cached_drive(seed: int, split: str, drive: int, size: tuple[int, int],
                 n_frames: int = DRIVE_FRAMES) -> tuple[np.ndarray, np.ndarray, DriveInfo]:
    """`render_drive` with the last few drives kept (frame-by-frame access renders each drive once)."""
    return render_drive(seed, split, drive, size, n_frames)


def drive_info(seed: int, split: str, drive: int, n_frames: int = DRIVE_FRAMES) -> DriveInfo:
    """The `DriveInfo` of one drive without rendering it.

    Weather and road works are stratified over the drives of a split (golden-ratio sequences
    from a per-split random start), so every run of ~10 consecutive drives holds each rare
    scene at close to its share, whatever the seed: a validation split of 20 drives has
    about 2 night, 2 rain and 2-3 road-works drives.
    """
    start = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(seed) >> 32, SPLITS[split], 2**31]).random(2)
    u = (start[0] + drive * 0.6180339887498949) % 1.0
    weather = WEATHERS[min(int(np.searchsorted(np.cumsum(WEATHER_P), u, side="right")), len(WEATHERS) - 1)]
    road_works = bool((start[1] + drive * 0.7548776662466927) % 1.0 < P_ROAD_WORKS)
    return DriveInfo(drive_id(split, drive), split, int(drive), weather, road_works, int(n_frames))
