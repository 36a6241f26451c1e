"""Per-device frame streams sampled from the world's drives, vectorised over devices.

A device drives `hours_per_day` every day. Its day is a string of the world's drives: a random
drive entered at a random frame, then random whole drives, one after the other, played at
`world_fps` world frames per second. The camera runs at `fps` >= world_fps, so camera frame t
shows world slot floor(t * world_fps / fps) (camera frames between two world frames repeat the
earlier one: exact duplicates stand for the camera's near-duplicates).

Randomness is a counter-based hash of (seed, device id, day, draw), not a generator per device,
so a device's stream does not depend on which other devices are simulated with it: sharding the
fleet changes nothing. No Python loop per frame or per device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser, elementwise on uint64 (wrapping arithmetic)."""
    z = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def hash_uniform(seed: int, device_ids: np.ndarray, day: int, draws: int, stream: int = 0) -> np.ndarray:
    """(D, draws) uniforms in [0, 1), a pure function of (seed, device id, day, draw index, stream)."""
    d = np.asarray(device_ids, dtype=np.uint64)[:, None]
    j = np.arange(draws, dtype=np.uint64)[None, :]
    with np.errstate(over="ignore"):
        key = splitmix64(np.uint64(seed) * np.uint64(0x100000001B3) + np.uint64(stream))
        key = splitmix64(key ^ (d * np.uint64(0xD6E8FEB86659FD93)))
        key = splitmix64(key ^ (np.uint64(day) * np.uint64(0xA0761D6478BD642F)))
        h = splitmix64(key ^ (j * np.uint64(0xE7037ED1A0B428DB)))
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


@dataclass(frozen=True)
class Drives:
    """World frames grouped into drives: drive i is frames starts[i] .. starts[i] + lengths[i] - 1."""

    starts: np.ndarray   # (n_drives,) int64
    lengths: np.ndarray  # (n_drives,) int64, >= 1

    @classmethod
    def from_ids(cls, drive_id: np.ndarray) -> Drives:
        """Drives from a per-frame drive id (frames of one drive contiguous, in order)."""
        ids = np.asarray(drive_id)
        change = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        lengths = np.diff(np.r_[change, ids.size])
        return cls(change.astype(np.int64), lengths.astype(np.int64))

    @classmethod
    def blocks(cls, n_frames: int, drive_frames: int) -> Drives:
        starts = np.arange(0, n_frames, drive_frames, dtype=np.int64)
        return cls(starts, np.minimum(drive_frames, n_frames - starts).astype(np.int64))

    @property
    def n_frames(self) -> int:
        return int(self.starts[-1] + self.lengths[-1])


def world_slots(drives: Drives, device_ids: np.ndarray, day: int, slots: np.ndarray, *, seed: int) -> np.ndarray:
    """(D, len(slots)) world frame index each device sees at the given world slots of `day`."""
    device_ids = np.asarray(device_ids, dtype=np.int64)
    slots = np.asarray(slots, dtype=np.int64)
    n_dev = device_ids.size
    if n_dev == 0 or slots.size == 0:
        return np.zeros((n_dev, slots.size), dtype=np.int64)
    n_needed = int(slots.max()) + 1
    full = day_slots(drives, device_ids, day, n_needed, seed=seed)
    return full if slots.size == n_needed and np.array_equal(slots, np.arange(n_needed)) else full[:, slots]


def day_slots(drives: Drives, device_ids: np.ndarray, day: int, n_slots: int, *, seed: int) -> np.ndarray:
    """(D, n_slots) world frame of world slots 0 .. n_slots - 1 of `day` for every device."""
    n_dev = device_ids.size
    draws = n_slots // int(drives.lengths.min()) + 2                                # enough drives for the day
    u = hash_uniform(seed, device_ids, day, draws)                                  # (D, J)
    drive = np.minimum((u * drives.starts.size).astype(np.int64), drives.starts.size - 1)
    lengths = drives.lengths[drive].copy()                                          # (D, J)
    entry = np.minimum((hash_uniform(seed, device_ids, day, 1, stream=1)[:, 0] * lengths[:, 0]).astype(np.int64),
                       lengths[:, 0] - 1)                                           # (D,) first drive entered here
    lengths[:, 0] -= entry
    seg_start = np.cumsum(lengths, axis=1) - lengths                                # (D, J) first slot of segment j
    used = np.clip(n_slots - seg_start, 0, lengths)                                 # slots of the day in segment j
    first_frame = drives.starts[drive] + np.where(np.arange(draws) == 0, entry[:, None], 0)
    base = np.repeat((first_frame - seg_start).ravel(), used.ravel())              # frame = base + slot
    return base.reshape(n_dev, n_slots) + np.arange(n_slots)[None, :]


def camera_slots(frames: np.ndarray, fps: float, world_fps: float) -> np.ndarray:
    """World slot of each camera frame index: floor(t * world_fps / fps) (exact for integer ratios)."""
    t = np.asarray(frames, dtype=np.int64)
    if float(fps).is_integer() and float(world_fps).is_integer():
        return (t * int(world_fps)) // int(fps)
    return np.floor(t * (world_fps / fps) + 1e-9).astype(np.int64)
